"""At resolve: the incident's timeline, summarised in its channel, with Markdown and JSON files in the thread.

Uploads use Slack's external flow: `files.getUploadURLExternal`, a POST of the bytes to the URL it answers,
then `files.completeUploadExternal` sharing the files in the summary's thread. slack_sdk's `files_upload_v2`
makes the same calls, but a failed byte upload surfaces there as a bare `SlackRequestError` without the
`Retry-After` of a 429; here it becomes a `SlackCallError` like any other Slack failure.

Idempotency: the summary goes through `_post_once` (found again by its metadata key); on a retried attempt the
thread is read first and only the files not already shared there by warroom are uploaded.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import slack_limits as limits
from activities import timeline_render as render
from activities.slack_base import MAX_LOOKUP_PAGES, SlackBase
from activities.slack_errors import SlackCallError, _retry_after
from domain.effects import TimelineExportRequest

UPLOAD_STEP = "file upload"  # how the byte upload is named in errors (its URL is a credential: never shown)


class SlackTimelineActivities(SlackBase):
    """The timeline export: one summary message and its two files."""

    @activity.defn
    async def publish_timeline(self, req: TimelineExportRequest) -> str:
        """Posts the summary in the incident channel and attaches `inc-<id>-timeline.md` and `.json` in
        its thread; a retry reuses the summary and uploads only the missing files. Returns the summary ts."""
        view, result = req.incident, req.result
        channel = view.channel_id
        if channel is None:
            raise ApplicationError(
                f"incident {view.incident_id} has no channel to post its timeline in",
                type="NoIncidentChannel",
                non_retryable=True,
            )
        md_name, json_name = render.file_names(view.incident_id)
        files = {
            md_name: render.timeline_markdown(result, view).encode(),
            json_name: render.timeline_json(result, view).encode(),
        }
        try:
            summary = limits.fit_text(render.summary_text(result, view))
            ts = await self._post_once(channel, req.key, summary)
            shared = await self._shared_names(channel, ts) if activity.info().attempt > 1 else set()
            missing = {name: data for name, data in files.items() if name not in shared}
            if missing:
                await self._upload(channel, ts, missing)
        except SlackCallError as err:
            raise err.to_application_error() from None
        activity.logger.info(
            "timeline published",
            extra={
                "incident_id": view.incident_id,
                "uploaded": len(missing),
                "reused": len(files) - len(missing),
            },
        )
        return ts

    # --- helpers ----------------------------------------------------------------------------------------

    async def _shared_names(self, channel: str, thread_ts: str) -> set[str]:
        """Names of the files warroom already shared in the thread (an earlier attempt's uploads)."""
        me = await self._bot_user()
        names: set[str] = set()
        cursor = ""
        for _ in range(MAX_LOOKUP_PAGES):
            data = await self._call(
                "conversations.replies", channel=channel, ts=thread_ts, limit=200, cursor=cursor
            )
            for message in data.get("messages", []):
                if message.get("user") != me:
                    continue
                names.update(str(f["name"]) for f in message.get("files") or [] if f.get("name"))
            cursor = (data.get("response_metadata") or {}).get("next_cursor") or ""
            if not cursor:
                break
        return names

    async def _upload(self, channel: str, thread_ts: str, files: dict[str, bytes]) -> None:
        """Uploads the files and shares them together, as one reply in the thread."""
        uploaded: list[dict[str, Any]] = []
        for name, data in files.items():
            target = await self._call("files.getUploadURLExternal", filename=name, length=len(data))
            await self._send_bytes(str(target["upload_url"]), data)
            uploaded.append({"id": str(target["file_id"]), "title": name})
        await self._call(
            "files.completeUploadExternal", files=uploaded, channel_id=channel, thread_ts=thread_ts
        )

    async def _send_bytes(self, url: str, data: bytes) -> None:
        """POSTs a file's bytes to its upload URL with the Web API client's session, proxy and TLS."""
        client = self._client
        session = client.session
        own = session is None or session.closed
        if own:
            session = aiohttp.ClientSession(trust_env=client.trust_env_in_session)
        assert session is not None
        try:
            async with session.post(
                url,
                data=data,
                headers={"Content-Type": "application/octet-stream"},
                timeout=aiohttp.ClientTimeout(total=client.timeout),
                proxy=client.proxy,
                ssl=client.ssl if client.ssl is not None else True,
            ) as response:
                if response.status != 200:
                    status = response.status
                    error = "ratelimited" if status == 429 else f"http_{status}"
                    raise SlackCallError(UPLOAD_STEP, error, status, _retry_after(response.headers))
                await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApplicationError(
                f"Slack unreachable during {UPLOAD_STEP}: {type(exc).__name__}", type="SlackUnavailable"
            ) from None
        finally:
            if own:
                await session.close()
