"""What every Slack activity class shares: error mapping, the bot's own user ID, and posting exactly once.

Every post carries its idempotency key in Slack message metadata; a retried attempt looks for that key before
posting again, so no message is ever posted twice by a retry. The Web API client must not re-send on its own
(worker.slack_client builds it with no SDK retry handlers): a call that got no answer surfaces here, where a
post is looked up before it is sent again.

Each call heartbeats, and no call starts that could outlive the activity attempt's start-to-close timeout:
Temporal starts a retry when that timeout passes, and the retry must never overlap a post still in flight.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import slack_limits as limits
from activities.slack_errors import SlackCallError
from activities.telemetry import count_failure

INLINE_ATTEMPTS = 4  # tries of one call within an activity attempt, before Temporal retries the activity
INLINE_RETRY_AFTER_MAX = 5.0  # seconds; a longer Retry-After becomes the activity's next_retry_delay
# Calls that change nothing when repeated: safe to repeat after an ambiguous 5xx.
REPEATABLE = frozenset(
    {
        "auth.test",
        "users.info",
        "users.lookupByEmail",
        "conversations.history",
        "conversations.replies",
        "conversations.info",
        "conversations.list",
        "conversations.open",
        "conversations.join",
        "conversations.setPurpose",
        "chat.update",
        "chat.getPermalink",
        "bookmarks.list",
    }
)
CALL_TIMEOUT = 10.0  # seconds one Web API call may take
ATTEMPT_MARGIN = 2.0  # seconds kept free before the attempt's start-to-close timeout
METADATA_TYPE = "warroom_post"
RETRY_LOOKBACK_SECONDS = 120  # clock skew allowance between worker and Slack
# How far back a post of unknown outcome is looked for: the attempt that may have made it ran in an earlier
# workflow task, which a dead worker or an unreachable server can delay by minutes.
LOOK_FIRST_LOOKBACK_SECONDS = 900
# A post of unknown outcome not found at once is looked for again this long after the activity was scheduled:
# the abandoned request may still be carried out by Slack meanwhile.
LOOK_FIRST_SETTLE_SECONDS = 8.0
LOCAL_ATTEMPT_MARGIN = 0.3  # seconds kept free before a local activity's (short) start-to-close timeout
MAX_LOOKUP_PAGES = 20


class SlackBase:
    """Holds one AsyncWebClient; subclasses' methods are the activities (tests pass a sandbox client)."""

    provider = "slack"  # the label its failures are counted under (activities.telemetry)

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client
        self._bot_user_id: str | None = None

    async def _call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        """Calls a Web API method; Slack errors raise SlackCallError, transport errors retry.

        A 429 with a short `Retry-After` (the request was refused, so repeating it is safe) and a 5xx on a
        call whose repetition changes nothing are retried here, a few times, before the activity fails: under
        a rate-limit storm one announcement should not start over on every channel.
        """
        for attempt in range(1, INLINE_ATTEMPTS + 1):
            try:
                return await self._call_once(method, **kwargs)
            except SlackCallError as err:
                delay = _inline_delay(method, err, attempt)
                if delay is None or delay >= call_budget():
                    raise
                self._count(err)
            _heartbeat()
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _call_once(self, method: str, **kwargs: Any) -> dict[str, Any]:
        budget = call_budget()
        if budget <= 0:
            raise ApplicationError(
                f"no time left in this attempt for Slack {method}; Temporal retries it",
                type="SlackAttemptOutOfTime",
            )
        _heartbeat()
        try:
            async with asyncio.timeout(budget):
                response = await getattr(self._client, method.replace(".", "_"))(**kwargs)
        except SlackApiError as exc:
            raise SlackCallError.from_sdk(method, exc) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SlackCallError.unanswered(method, exc) from None
        return dict(response.data) if isinstance(response.data, dict) else {}

    def _count(self, err: SlackCallError) -> None:
        """A failure retried within the attempt still counts (warroom_integration_failures_total)."""
        count_failure(self.provider, str(err.to_application_error().type))

    async def _checked(self, method: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return await self._call(method, **kwargs)
        except SlackCallError as err:
            raise err.to_application_error() from None

    async def _bot_user(self) -> str:
        if self._bot_user_id is None:
            self._bot_user_id = str((await self._checked("auth.test"))["user_id"])
        return self._bot_user_id

    async def _post_once(
        self,
        channel: str,
        key: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        *,
        look: bool = False,
    ) -> str:
        """Posts unless a previous attempt already did (found by its metadata key): a retry of this activity,
        or, with `look`, an attempt of another one whose outcome is unknown (Announcement.look_first)."""
        info = activity.info()
        if look or info.attempt > 1:
            lookback = LOOK_FIRST_LOOKBACK_SECONDS if look else RETRY_LOOKBACK_SECONDS
            found = await self._find_posted(channel, key, thread_ts, lookback)
            if found:
                return found
            if look and not info.is_local and info.attempt == 1 and await _settled(info.scheduled_time):
                found = await self._find_posted(channel, key, thread_ts, lookback)
                if found:
                    return found
        args: dict[str, Any] = {
            "channel": channel,
            "text": text,
            "metadata": {"event_type": METADATA_TYPE, "event_payload": {"key": key}},
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if blocks:
            args["blocks"] = blocks
        if thread_ts:
            args["thread_ts"] = thread_ts
        try:
            return await self._post_looked_up(channel, key, thread_ts, args)
        except SlackCallError as err:
            plain = self._plain_fallback(err, args)
            if plain is None:
                raise
            return await self._post_looked_up(channel, key, thread_ts, plain)

    async def _update_message(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> str:
        """Edits a message in place; refused content falls back to plain text, as a post does."""
        args: dict[str, Any] = {"channel": channel, "ts": ts, "text": text, "blocks": blocks}
        try:
            await self._call("chat.update", **args)
        except SlackCallError as err:
            plain = self._plain_fallback(err, args)
            if plain is None:
                raise
            await self._call("chat.update", **{**plain, "blocks": []})
        return ts

    def _plain_fallback(self, err: SlackCallError, args: dict[str, Any]) -> dict[str, Any] | None:
        """The message again as shortened plain text, after Slack refused its content (`invalid_blocks`,
        `msg_too_long`); None when that would send the same thing again. warroom renders within Slack's
        limits, so this is a safety net: it is logged and counted, never silently relied on."""
        if not err.refused_content:
            return None
        text = str(args.get("text") or "")
        shortened = limits.fit_text(text)
        if not args.get("blocks") and shortened == text:
            return None
        activity.logger.warning(
            "Slack refused a message (%s); sending it as plain text",
            err.error,
            extra={"slack_error": err.error},
        )
        count_failure(self.provider, "SlackRefusedContent")
        plain = {k: v for k, v in args.items() if k != "blocks"}
        plain["text"] = shortened or "(message shortened: see the incident channel)"
        return plain

    async def _post_looked_up(
        self, channel: str, key: str, thread_ts: str | None, args: dict[str, Any]
    ) -> str:
        """chat.postMessage; after a 5xx or no answer, looks for the post before sending it again."""
        for attempt in range(1, INLINE_ATTEMPTS + 1):
            try:
                return str((await self._call("chat.postMessage", **args))["ts"])
            except SlackCallError as err:
                if attempt == INLINE_ATTEMPTS or not err.transient:
                    raise
                self._count(err)
            # A 5xx may hide a post that happened: look for it before posting again.
            await asyncio.sleep(0.2 * 2 ** (attempt - 1))
            found = await self._find_posted(channel, key, thread_ts)
            if found:
                return found
        raise AssertionError("unreachable")

    async def _find_posted(
        self, channel: str, key: str, thread_ts: str | None, lookback: float = RETRY_LOOKBACK_SECONDS
    ) -> str | None:
        """Looks for our key among messages posted since this activity was first scheduled (less `lookback`
        seconds)."""
        since = f"{activity.info().scheduled_time.timestamp() - lookback:.6f}"
        method, args = "conversations.history", {"channel": channel, "oldest": since}
        if thread_ts:
            method, args = "conversations.replies", {**args, "ts": thread_ts}
        cursor = ""
        for _ in range(MAX_LOOKUP_PAGES):
            data = await self._call(method, **args, limit=200, cursor=cursor, include_all_metadata=True)
            for message in data.get("messages", []):
                payload = (message.get("metadata") or {}).get("event_payload") or {}
                if payload.get("key") == key:
                    return str(message["ts"])
            cursor = (data.get("response_metadata") or {}).get("next_cursor") or ""
            if not cursor:
                break
        return None


async def _settled(since: datetime) -> bool:
    """Waits until a post abandoned just before `since` (a local attempt that ran out of time leaves its
    request with Slack, which may still carry it out) would have landed; False when there was no need."""
    wait = (since - datetime.now(UTC)).total_seconds() + LOOK_FIRST_SETTLE_SECONDS
    if wait <= 0:
        return False
    _heartbeat()
    await asyncio.sleep(min(wait, LOOK_FIRST_SETTLE_SECONDS))
    _heartbeat()
    return True


def call_budget() -> float:
    """Seconds the next Slack call may take: CALL_TIMEOUT, or less near the end of the activity attempt."""
    if not activity.in_activity():
        return CALL_TIMEOUT
    info = activity.info()
    if info.start_to_close_timeout is None:
        return CALL_TIMEOUT
    ends = info.started_time + info.start_to_close_timeout
    margin = LOCAL_ATTEMPT_MARGIN if info.is_local else ATTEMPT_MARGIN
    return min(CALL_TIMEOUT, (ends - datetime.now(UTC)).total_seconds() - margin)


def _heartbeat() -> None:
    """Tells Temporal this attempt is alive (a dead worker's attempt is retried after the heartbeat timeout,
    not the whole start-to-close timeout), and lets a cancelled or timed-out attempt learn of it."""
    if activity.in_activity() and not activity.info().is_local:  # a local activity has no heartbeat
        activity.heartbeat()


def _inline_delay(method: str, err: SlackCallError, attempt: int) -> float | None:
    """How long to wait before repeating a call that failed with `err`; None: give it to Temporal."""
    if attempt >= INLINE_ATTEMPTS:
        return None
    if err.rate_limited:
        after = err.retry_after if err.retry_after is not None else 1.0
        return after if after <= INLINE_RETRY_AFTER_MAX else None
    if method in REPEATABLE and err.transient:
        return 0.2 * 2 ** (attempt - 1)
    return None
