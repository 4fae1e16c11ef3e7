"""chat.* Web API methods: the bot posting, editing and deleting messages."""

from __future__ import annotations

from typing import Any

from sandbox.args import Args
from sandbox.messages import check_content
from sandbox.models import BOT_ID, BOT_USER_ID, ApiError, RateLimited
from sandbox.refusals import Refused
from sandbox.state import SandboxState


def parse_blocks(args: Args) -> list[dict[str, Any]] | None:
    try:
        blocks = args.structured("blocks", "invalid_blocks")
    except ApiError:
        raise Refused("invalid_blocks", "blocks is not valid JSON [json-pointer:/blocks]") from None
    if blocks is not None and not isinstance(blocks, list):
        raise Refused("invalid_blocks", "blocks must be a list [json-pointer:/blocks]")
    return blocks


def parse_metadata(args: Args) -> dict[str, Any] | None:
    try:
        metadata = args.structured("metadata", "invalid_metadata_format")
    except ApiError:
        raise Refused("invalid_metadata_format", "metadata is not valid JSON") from None
    if metadata is None:
        return None
    if (
        not isinstance(metadata, dict)
        or not isinstance(metadata.get("event_type"), str)
        or not isinstance(metadata.get("event_payload"), dict)
    ):
        raise Refused(
            "invalid_metadata_format", "metadata needs a string event_type and an event_payload object"
        )
    return {"event_type": metadata["event_type"], "event_payload": metadata["event_payload"]}


def post_message(state: SandboxState, args: Args) -> dict[str, Any]:
    channel = state.resolve_target(args.required("channel"))
    if state.rate_limit_per_channel and not state.rate_limiter.allow(channel.id):
        raise RateLimited(1)
    message = state.post(
        channel,
        user=BOT_USER_ID,
        bot_id=BOT_ID,
        text=args.text("text"),
        blocks=parse_blocks(args),
        thread_ts=args.text("thread_ts") or None,
        metadata=parse_metadata(args),
        broadcast=args.flag("reply_broadcast"),
    )
    return {
        "channel": channel.id,
        "ts": message.ts,
        "message": channel.render(message, include_metadata=True),
    }


def update(state: SandboxState, args: Args) -> dict[str, Any]:
    channel = state.channel(args.required("channel"))
    message = state.message(channel, args.required("ts"))
    if message.user != BOT_USER_ID:
        raise ApiError("cant_update_message")
    if channel.is_archived:
        raise ApiError("is_archived")
    state.update(message, text=args.text("text"), blocks=parse_blocks(args), metadata=parse_metadata(args))
    return {
        "channel": channel.id,
        "ts": message.ts,
        "text": message.text,
        "message": channel.render(message, include_metadata=True),
    }


def delete(state: SandboxState, args: Args) -> dict[str, Any]:
    channel = state.channel(args.required("channel"))
    message = state.message(channel, args.required("ts"))
    if message.user != BOT_USER_ID:
        raise ApiError("cant_delete_message")
    state.delete(channel, message)
    return {"channel": channel.id, "ts": message.ts}


def post_ephemeral(state: SandboxState, args: Args) -> dict[str, Any]:
    channel = state.resolve_target(args.required("channel"))
    user = state.user(args.required("user"))
    if channel.is_archived:
        raise ApiError("is_archived")
    text, blocks = args.text("text"), parse_blocks(args)
    check_content(text, blocks)
    ephemeral = state.add_ephemeral(
        "chat.postEphemeral",
        user.id,
        channel.id,
        text or "",
        blocks=blocks,
        thread_ts=args.text("thread_ts") or None,
    )
    return {"message_ts": ephemeral.ts}


def get_permalink(state: SandboxState, args: Args) -> dict[str, Any]:
    channel = state.channel(args.required("channel"))
    message = state.message(channel, args.required("message_ts"))
    return {"channel": channel.id, "permalink": state.permalink(channel, message)}


METHODS = {
    "chat.postMessage": post_message,
    "chat.update": update,
    "chat.delete": delete,
    "chat.postEphemeral": post_ephemeral,
    "chat.getPermalink": get_permalink,
}
