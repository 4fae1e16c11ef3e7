"""conversations.* Web API methods, answered from the sandbox state as the bot sees it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sandbox.args import Args, invalid_arguments, paginate
from sandbox.models import BOT_USER_ID, MAX_PURPOSE, ApiError, Channel, Message, is_user_id
from sandbox.state import SandboxState

CHANNEL_TYPES = frozenset({"public_channel", "private_channel", "mpim", "im"})


def _channel_arg(state: SandboxState, args: Args, key: str = "channel") -> Channel:
    return state.channel(args.required(key))


def _not_for_ims(channel: Channel) -> None:
    if channel.is_im:
        raise ApiError("method_not_supported_for_channel_type")


def create(state: SandboxState, args: Args) -> dict[str, Any]:
    if not args.has("name"):
        raise invalid_arguments("missing required field: name")
    name = args.text("name") or ""
    channel = state.create_channel(name, is_private=args.flag("is_private"))
    return {"channel": channel.to_api()}


def info(state: SandboxState, args: Args) -> dict[str, Any]:
    return {"channel": _channel_arg(state, args).to_api()}


def list_(state: SandboxState, args: Args) -> dict[str, Any]:
    types = set(args.id_list("types") or ["public_channel"])
    if not types <= CHANNEL_TYPES:
        raise ApiError("invalid_types")
    exclude_archived = args.flag("exclude_archived")
    visible = []
    for channel in state.channels.values():
        if channel.is_im:
            wanted = "im" in types
        elif channel.is_private:
            wanted = "private_channel" in types and BOT_USER_ID in channel.members
        else:
            wanted = "public_channel" in types
        if wanted and not (exclude_archived and channel.is_archived):
            visible.append(channel)
    page, cursor = paginate(visible, args)
    return {"channels": [c.to_api() for c in page], "response_metadata": {"next_cursor": cursor}}


def members(state: SandboxState, args: Args) -> dict[str, Any]:
    channel = _channel_arg(state, args)
    page, cursor = paginate(list(channel.members), args)
    return {"members": page, "response_metadata": {"next_cursor": cursor}}


def join(state: SandboxState, args: Args) -> dict[str, Any]:
    channel = _channel_arg(state, args)
    _not_for_ims(channel)
    if channel.is_archived:
        raise ApiError("is_archived")
    if BOT_USER_ID in channel.members:
        return {
            "channel": channel.to_api(),
            "warning": "already_in_channel",
            "response_metadata": {"warnings": ["already_in_channel"]},
        }
    if channel.is_private:
        raise ApiError("method_not_supported_for_channel_type")
    channel.members.append(BOT_USER_ID)
    return {"channel": channel.to_api()}


def leave(state: SandboxState, args: Args) -> dict[str, Any]:
    channel = _channel_arg(state, args)
    _not_for_ims(channel)
    if BOT_USER_ID not in channel.members:
        return {"not_in_channel": True}
    channel.members.remove(BOT_USER_ID)
    return {}


def archive(state: SandboxState, args: Args) -> dict[str, Any]:
    channel = _channel_arg(state, args)
    _not_for_ims(channel)
    if channel.is_archived:
        raise ApiError("already_archived")
    if BOT_USER_ID not in channel.members:
        raise ApiError("not_in_channel")
    channel.is_archived = True
    return {}


def unarchive(state: SandboxState, args: Args) -> dict[str, Any]:
    channel = _channel_arg(state, args)
    _not_for_ims(channel)
    if not channel.is_archived:
        raise ApiError("not_archived")
    channel.is_archived = False
    return {}


def rename(state: SandboxState, args: Args) -> dict[str, Any]:
    channel = _channel_arg(state, args)
    _not_for_ims(channel)
    if not args.has("name"):
        raise invalid_arguments("missing required field: name")
    state.rename_channel(channel, args.text("name") or "")
    return {"channel": channel.to_api()}


def _set_description(state: SandboxState, args: Args, field: str) -> dict[str, Any]:
    channel = _channel_arg(state, args)
    _not_for_ims(channel)
    value = args.text(field)
    if value is None:
        raise invalid_arguments(f"missing required field: {field}")
    if len(value) > MAX_PURPOSE:
        raise ApiError("too_long")
    if channel.is_archived:
        raise ApiError("is_archived")
    setattr(channel, field, {"value": value, "creator": BOT_USER_ID, "last_set": int(state.now())})
    return {"channel": channel.to_api(), field: value}


def set_purpose(state: SandboxState, args: Args) -> dict[str, Any]:
    return _set_description(state, args, "purpose")


def set_topic(state: SandboxState, args: Args) -> dict[str, Any]:
    return _set_description(state, args, "topic")


def invite(state: SandboxState, args: Args) -> dict[str, Any]:
    channel = _channel_arg(state, args)
    users = args.id_list("users")
    if not users:
        raise ApiError("no_user")
    _not_for_ims(channel)
    if channel.is_archived:
        raise ApiError("is_archived")
    if BOT_USER_ID not in channel.members:
        raise ApiError("not_in_channel")
    if not all(is_user_id(user) for user in users):
        raise ApiError("user_not_found")
    if BOT_USER_ID in users:
        raise ApiError("cant_invite_self")
    new = [user for user in dict.fromkeys(users) if user not in channel.members]
    if not new:
        raise ApiError("already_in_channel")
    for user in new:
        state.user(user)
        channel.members.append(user)
    return {"channel": channel.to_api()}


def kick(state: SandboxState, args: Args) -> dict[str, Any]:
    channel = _channel_arg(state, args)
    user = args.required("user")
    if user == BOT_USER_ID:
        raise ApiError("cant_kick_self")
    if user not in channel.members:
        raise ApiError("not_in_channel")
    channel.members.remove(user)
    return {}


def open_(state: SandboxState, args: Args) -> dict[str, Any]:
    if args.has("channel"):
        dm = _channel_arg(state, args)
        existed = True
    else:
        users = args.id_list("users")
        if not users:
            raise ApiError("users_list_not_supplied")
        if len(users) > 1:
            raise ApiError("not_supported", detail="the sandbox opens one-to-one DMs only")
        dm, existed = state.open_dm(users[0])
    out: dict[str, Any] = {"channel": dm.to_api() if args.flag("return_im") else {"id": dm.id}}
    if existed:
        out.update(no_op=True, already_open=True)
    return out


def _in_range(ts: str, oldest: Decimal | None, latest: Decimal | None, inclusive: bool) -> bool:
    value = Decimal(ts)
    if oldest is not None and (value < oldest or (value == oldest and not inclusive)):
        return False
    return not (latest is not None and (value > latest or (value == latest and not inclusive)))


def _window(args: Args) -> tuple[Decimal | None, Decimal | None, bool]:
    oldest = args.ts("oldest", "invalid_ts_oldest")
    latest = args.ts("latest", "invalid_ts_latest")
    return oldest, latest, args.flag("inclusive")


def _page(channel: Channel, messages: list[Message], args: Args, default_limit: int) -> dict[str, Any]:
    page, cursor = paginate(messages, args, default_limit)
    with_metadata = args.flag("include_all_metadata")
    return {
        "messages": [channel.render(m, include_metadata=with_metadata) for m in page],
        "has_more": bool(cursor),
        "response_metadata": {"next_cursor": cursor},
    }


def _readable(channel: Channel) -> Channel:
    """Like Slack: a bot reads the history of channels it is a member of (and its DMs)."""
    if not channel.is_im and BOT_USER_ID not in channel.members:
        raise ApiError("not_in_channel")
    return channel


def history(state: SandboxState, args: Args) -> dict[str, Any]:
    channel = _readable(_channel_arg(state, args))
    oldest, latest, inclusive = _window(args)
    messages = [m for m in reversed(state.history(channel)) if _in_range(m.ts, oldest, latest, inclusive)]
    return {**_page(channel, messages, args, 100), "pin_count": 0, "channel_actions_count": 0}


def replies(state: SandboxState, args: Args) -> dict[str, Any]:
    channel = _readable(_channel_arg(state, args))
    parent, *rest = state.thread(channel, args.required("ts"))
    oldest, latest, inclusive = _window(args)
    messages = [parent, *(m for m in rest if _in_range(m.ts, oldest, latest, inclusive))]
    return _page(channel, messages, args, 1000)


METHODS = {
    "conversations.create": create,
    "conversations.info": info,
    "conversations.list": list_,
    "conversations.members": members,
    "conversations.join": join,
    "conversations.leave": leave,
    "conversations.archive": archive,
    "conversations.unarchive": unarchive,
    "conversations.rename": rename,
    "conversations.setPurpose": set_purpose,
    "conversations.setTopic": set_topic,
    "conversations.invite": invite,
    "conversations.kick": kick,
    "conversations.open": open_,
    "conversations.history": history,
    "conversations.replies": replies,
}
