"""At resolve: the incident's timeline, summarised in its channel, with Markdown and JSON files in the thread.
During a long incident: its older events, archived in private files that the export reads back.

Files go through `activities.slack_files` (Slack's external upload flow; reading with the bot token).

Idempotency: the summary goes through `_post_once` (found again by its metadata key); on a retried attempt the
thread is read first and only the files not already shared there by warroom are uploaded. An archived part
uploaded by an attempt whose answer was lost stays a private file nobody sees; the retry uploads it again.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import slack_limits as limits
from activities import timeline_render as render
from activities.slack_base import MAX_LOOKUP_PAGES
from activities.slack_errors import SlackCallError
from activities.slack_files import SlackFiles
from domain.effects import TimelineArchiveRequest, TimelineExportRequest
from domain.models import IncidentResult, TimelineEvent

PARALLEL_DOWNLOADS = 8  # archived parts read at once by the export


class SlackTimelineActivities(SlackFiles):
    """The timeline export (one summary message and its two files) and the archive of older events."""

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
        try:
            result = await self._with_archived_events(result)
            files = {
                md_name: render.timeline_markdown(result, view).encode(),
                json_name: render.timeline_json(result, view).encode(),
            }
            summary = limits.fit_text(render.summary_text(result, view))
            ts = await self._post_once(channel, req.key, summary)
            shared = await self._shared_names(channel, ts) if activity.info().attempt > 1 else set()
            missing = {name: data for name, data in files.items() if name not in shared}
            if missing:
                await self._upload(missing, channel, ts)
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

    @activity.defn
    async def archive_timeline(self, req: TimelineArchiveRequest) -> str:
        """Uploads the events as `inc-<id>-timeline-part-<n>.json`, private to warroom (shared nowhere, so
        nobody is notified); returns the file's ID for the export to read back."""
        document = {
            "incident_id": req.incident_id,
            "part": req.part,
            "first_event": req.first,
            "events": [e.model_dump(mode="json") for e in req.events],
        }
        name = f"inc-{req.incident_id}-timeline-part-{req.part}.json"
        try:
            (file_id,) = await self._upload({name: json.dumps(document).encode()})
        except SlackCallError as err:
            raise err.to_application_error() from None
        activity.logger.info(
            "timeline part archived",
            extra={"incident_id": req.incident_id, "part": req.part, "events": len(req.events)},
        )
        return file_id

    # --- helpers ----------------------------------------------------------------------------------------

    async def _with_archived_events(self, result: IncidentResult) -> IncidentResult:
        """The result with its archived parts read back in front of its newest events. A part Slack no
        longer has (deleted) becomes one `problem` event saying which events are missing."""
        if not result.timeline_parts and not result.timeline_lost:
            return result
        gate = asyncio.Semaphore(PARALLEL_DOWNLOADS)

        async def part(n: int, file_id: str) -> list[TimelineEvent]:
            async with gate:
                return await self._read_part(n, file_id, result.declared_at)

        parts = await asyncio.gather(*(part(n, f) for n, f in enumerate(result.timeline_parts, 1)))
        events = [e for p in parts for e in p]
        if result.timeline_lost:
            events.append(_lost(result))
        return result.model_copy(update={"timeline": [*events, *result.timeline]})

    async def _read_part(self, n: int, file_id: str, at: datetime) -> list[TimelineEvent]:
        try:
            data = json.loads(await self._download(file_id))
            return [TimelineEvent.model_validate(e) for e in data["events"]]
        except SlackCallError as err:
            if err.error != "file_not_found":
                raise
            why = "Slack no longer has the file"
        except (ValueError, KeyError, TypeError, ValidationError):
            why = "the file is not a timeline part"
        text = f"archived timeline part {n} ({file_id}) could not be read back: {why}"
        return [TimelineEvent(at=at, kind="problem", text=text)]

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


def _lost(result: IncidentResult) -> TimelineEvent:
    """Events dropped while Slack refused the archive for too long (`workflows.archive.drop_excess`)."""
    n = result.timeline_lost
    text = (
        f"{n} timeline event{'s' if n != 1 else ''} recorded after the events above were lost: Slack refused"
        " to archive them for too long"
    )
    at = result.timeline[0].at if result.timeline else result.declared_at
    return TimelineEvent(at=at, kind="problem", text=text)
