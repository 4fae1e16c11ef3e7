"""Slack activities for the incident channel and broadcasts, each safe to retry.

Idempotency: channel creation recognises the channel a previous attempt made (`name_taken` on a channel
our bot created); posts go through `SlackBase._post_once` (activities.slack_base).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import slack_render as render
from activities.slack_base import SlackBase
from activities.slack_errors import SlackCallError
from activities.telemetry import count_failure, count_updates
from domain.effects import (
    AnnounceRequest,
    CallLinkRequest,
    ChannelRef,
    ChannelSetup,
    CreateChannelRequest,
    Delivery,
    MessageInfo,
    MessageRequest,
    NoteRequest,
    OverviewRequest,
)
from domain.naming import channel_name

MAX_NAME_SUFFIX = 20


class SlackActivities(SlackBase):
    """Channels, overviews, announcements and notes: the incident's Slack side."""

    async def _deliver(self, channel: str, work: Callable[[], Awaitable[str]]) -> Delivery:
        """Runs one channel's part; a channel-specific failure is reported, not raised. `work` is called
        here, so a part cancelled before it starts (the attempt cancelled) leaves nothing half-made."""
        try:
            return Delivery(channel_id=channel, ts=await work())
        except SlackCallError as err:
            if err.per_channel:
                activity.logger.warning(
                    "Slack refused channel %s: %s", channel, err.error, extra={"slack_error": err.error}
                )
                count_failure(self.provider, "SlackChannelRefused")
                return Delivery(channel_id=channel, error=err.error)
            raise err.to_application_error() from None

    # --- activities -----------------------------------------------------------------------------------

    @activity.defn
    async def create_channel(self, req: CreateChannelRequest) -> ChannelRef:
        """Creates `#inc-<id>-<title>`; a taken name gets a suffix; a retry finds the channel it made."""
        me = await self._bot_user()
        for suffix in range(1, MAX_NAME_SUFFIX + 1):
            name = channel_name(req.incident_id, req.title, suffix, req.name_template)
            try:
                data = await self._call("conversations.create", name=name, is_private=req.private)
                ref = ChannelRef(id=data["channel"]["id"], name=data["channel"]["name"])
                _log_channel(req.incident_id, ref, reused=False)
                return ref
            except SlackCallError as err:
                if err.error != "name_taken":
                    raise err.to_application_error() from None
            existing = await self._find_channel(name)
            if existing is not None and existing.get("creator") == me and not existing.get("is_archived"):
                ref = ChannelRef(id=existing["id"], name=existing["name"])
                _log_channel(req.incident_id, ref, reused=True)
                return ref
        raise ApplicationError(
            f"no free channel name for incident {req.incident_id} after {MAX_NAME_SUFFIX} tries",
            type="ChannelNameExhausted",
            non_retryable=True,
        )

    async def _find_channel(self, name: str) -> dict[str, Any] | None:
        cursor = ""
        for _ in range(100):
            data = await self._checked(
                "conversations.list", types="public_channel,private_channel", limit=1000, cursor=cursor
            )
            for channel in data.get("channels", []):
                if channel.get("name") == name:
                    return dict(channel)
            cursor = (data.get("response_metadata") or {}).get("next_cursor") or ""
            if not cursor:
                return None
        return None

    @activity.defn
    async def set_up_channel(self, req: ChannelSetup) -> str:
        """Sets the description, invites the declarer and posts the overview; returns the overview's ts."""
        view = req.incident
        assert view.channel_id is not None
        await self._checked(
            "conversations.setPurpose", channel=view.channel_id, purpose=render.channel_purpose(view)
        )
        if req.invite:
            try:
                await self._call("conversations.invite", channel=view.channel_id, users=",".join(req.invite))
            except SlackCallError as err:
                if err.error not in {"already_in_channel", "cant_invite_self"}:
                    raise err.to_application_error() from None
        blocks = render.overview_blocks(view, in_broadcast=False)
        try:
            ts = await self._post_once(view.channel_id, req.key, render.overview_text(view), blocks)
        except SlackCallError as err:
            raise err.to_application_error() from None
        activity.logger.info("channel set up", extra={"incident_id": view.incident_id})
        return ts

    @activity.defn
    async def publish_overview(self, req: OverviewRequest) -> list[Delivery]:
        """Posts the overview where a channel has none yet and edits it in place where it has one."""
        view = req.incident
        if req.describe_channel and view.channel_id:
            await self._checked(
                "conversations.setPurpose", channel=view.channel_id, purpose=render.channel_purpose(view)
            )
        work = []
        for target in req.targets:
            in_broadcast = target.channel_id != view.channel_id
            blocks = render.overview_blocks(view, in_broadcast=in_broadcast)
            text = render.overview_text(view, in_broadcast=in_broadcast)
            if target.ts is None:
                key = f"{req.key_prefix}:overview:{target.channel_id}"
                post = partial(self._join_and_post, target.channel_id, key, text, blocks, join=in_broadcast)
            else:
                post = partial(self._update_message, target.channel_id, target.ts, text, blocks)
            work.append(self._deliver(target.channel_id, post))
        results = await _all_channels(work)
        activity.logger.info(
            "overviews published",
            extra={"incident_id": view.incident_id, "channels": len(results), "edited": req.describe_channel},
        )
        return results

    async def _join_and_post(
        self, channel: str, key: str, text: str, blocks: list[dict[str, Any]], *, join: bool
    ) -> str:
        """Joins a public broadcast channel first: reading its history (to spot a retry's post) needs it."""
        if join:
            try:
                await self._call("conversations.join", channel=channel)
            except SlackCallError as err:
                if err.error != "method_not_supported_for_channel_type":  # private: must be invited
                    raise
        return await self._post_once(channel, key, text, blocks)

    @activity.defn
    async def announce(self, req: AnnounceRequest) -> list[Delivery]:
        """Posts one status update in the incident channel and as a reply in every broadcast thread."""
        view, a = req.incident, req.announcement
        work = []
        if view.channel_id:
            text = render.announcement_text(view, a, in_broadcast=False)
            post = partial(self._post_once, view.channel_id, a.key, text, look=a.look_first)
            work.append(self._deliver(view.channel_id, post))
        # A private incident's broadcast channels only learn that it exists (its overview), never its updates.
        for thread in () if view.private else req.threads:
            text = render.announcement_text(view, a, in_broadcast=True)
            key = f"{a.key}:{thread.channel_id}"
            post = partial(
                self._post_once, thread.channel_id, key, text, thread_ts=thread.thread_ts, look=a.look_first
            )
            work.append(self._deliver(thread.channel_id, post))
        results = await _all_channels(work)
        count_updates(a.kind, results, view.channel_id)
        activity.logger.info(
            "update posted",
            extra={
                "incident_id": view.incident_id,
                "kind": a.kind,
                "delivered": sum(d.error is None for d in results),
                "refused": sum(d.error is not None for d in results),
            },
        )
        return results

    @activity.defn
    async def fetch_message(self, req: MessageRequest) -> MessageInfo:
        """Reads a reacted-to message and its permalink, so the broadcast can quote and link it."""
        try:
            message = await self._find_message(req.channel_id, req.ts)
            if message is None:
                return MessageInfo(text="", author=None, permalink=None, found=False)
            link = await self._call("chat.getPermalink", channel=req.channel_id, message_ts=req.ts)
        except SlackCallError as err:
            if err.per_channel:
                return MessageInfo(text="", author=None, permalink=None, found=False)
            raise err.to_application_error() from None
        me = await self._bot_user()
        return MessageInfo(
            text=str(message.get("text") or ""),
            author=message.get("user"),
            permalink=link.get("permalink"),
            from_warroom=message.get("user") == me or bool(message.get("metadata")),
        )

    async def _find_message(self, channel: str, ts: str) -> dict[str, Any] | None:
        data = await self._call(
            "conversations.history",
            channel=channel,
            latest=ts,
            oldest=ts,
            inclusive=True,
            limit=1,
            include_all_metadata=True,
        )
        for message in data.get("messages", []):
            if message.get("ts") == ts:
                return dict(message)
        data = await self._call("conversations.replies", channel=channel, ts=ts, include_all_metadata=True)
        for message in data.get("messages", []):
            if message.get("ts") == ts:
                return dict(message)
        return None

    @activity.defn
    async def link_call(self, req: CallLinkRequest) -> str:
        """Bookmarks the incident's call in its channel (editing the previous call's bookmark); returns the
        bookmark's ID. A retry finds the bookmark an earlier attempt added, so there is only ever one."""
        title = f"{req.call.label} call"
        data = await self._checked("bookmarks.list", channel_id=req.channel_id)
        bookmarks = data.get("bookmarks") or []
        for bookmark in bookmarks:
            if bookmark.get("link") == req.call.join_url:
                return str(bookmark["id"])
        if req.bookmark_id and any(b.get("id") == req.bookmark_id for b in bookmarks):
            await self._checked(
                "bookmarks.edit",
                channel_id=req.channel_id,
                bookmark_id=req.bookmark_id,
                title=title,
                link=req.call.join_url,
            )
            return req.bookmark_id
        added = await self._checked(
            "bookmarks.add",
            channel_id=req.channel_id,
            title=title,
            type="link",
            link=req.call.join_url,
            emoji=":telephone_receiver:",
        )
        return str(added["bookmark"]["id"])

    @activity.defn
    async def post_note(self, req: NoteRequest) -> str:
        """Posts a short note from warroom in the incident channel (e.g. what failed and what to do)."""
        try:
            return await self._post_once(req.channel_id, req.key, req.text)
        except SlackCallError as err:
            raise err.to_application_error() from None


def _log_channel(incident_id: int, ref: ChannelRef, *, reused: bool) -> None:
    activity.logger.info(
        "channel created",
        extra={"incident_id": incident_id, "channel_id": ref.id, "channel": ref.name, "reused": reused},
    )


async def _all_channels(work: list[Coroutine[Any, Any, Delivery]]) -> list[Delivery]:
    """Runs each channel's part at once (Slack limits posts per channel, not across channels). Every part
    finishes before a failure is raised, so no post is still in flight when Temporal retries the activity
    (its retry looks for what was posted)."""
    outcomes = await asyncio.gather(*work, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return [o for o in outcomes if isinstance(o, Delivery)]
