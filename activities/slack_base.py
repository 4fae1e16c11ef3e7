"""What every Slack activity class shares: error mapping, the bot's own user ID, and posting exactly once.

Every post carries its idempotency key in Slack message metadata; a retried attempt looks for that key before
posting again, so no message is ever posted twice by a retry.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.slack_errors import SlackCallError
from activities.telemetry import count_failure

INLINE_ATTEMPTS = 4  # tries of one call within an activity attempt, before Temporal retries the activity
INLINE_RETRY_AFTER_MAX = 5.0  # seconds; a longer Retry-After becomes the activity's next_retry_delay
# Calls that change nothing when repeated: safe to repeat after an ambiguous 5xx.
REPEATABLE = frozenset(
    {
        "auth.test",
        "users.info",
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
METADATA_TYPE = "warroom_post"
RETRY_LOOKBACK_SECONDS = 120  # clock skew allowance between worker and Slack
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
                if delay is None:
                    raise
                self._count(err)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _call_once(self, method: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await getattr(self._client, method.replace(".", "_"))(**kwargs)
        except SlackApiError as exc:
            raise SlackCallError.from_sdk(method, exc) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApplicationError(
                f"Slack unreachable during {method}: {type(exc).__name__}", type="SlackUnavailable"
            ) from None
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
    ) -> str:
        """Posts unless a previous attempt of this activity already did (found by its metadata key)."""
        if activity.info().attempt > 1:
            found = await self._find_posted(channel, key, thread_ts)
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

    async def _find_posted(self, channel: str, key: str, thread_ts: str | None) -> str | None:
        """Looks for our key among messages posted since this activity was first scheduled."""
        since = f"{activity.info().scheduled_time.timestamp() - RETRY_LOOKBACK_SECONDS:.6f}"
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
