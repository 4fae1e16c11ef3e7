"""A long incident's timeline, bounded: once the state holds many events, the oldest go to a private Slack
file (one "part", read back by the timeline export at resolve), so the state carried through continue-as-new,
the workflow's result and every activity payload stay small however long the incident runs.

`due` and `oldest_part` are pure functions over IncidentState; `TimelineArchive.run` is what the main loop
calls after each drain of the outbox.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.slack_timeline import SlackTimelineActivities
    from domain.effects import TimelineArchiveRequest
    from domain.models import IncidentState, TimelineEvent
    from workflows import patches
    from workflows.context import IncidentContext

ARCHIVE_AT = 250  # events held that start an archive
ARCHIVE_AT_CHARS = 150_000  # ... or this much text held (quoted messages can be long)
KEEP = 50  # newest events that stay in the state (`/incident timeline` shows them)
PART_CHARS = 300_000  # text in one part at most (a part is one activity input: far below 2 MB)
# While Slack refuses the archive, events stay held; beyond these the oldest are dropped and counted
# (`timeline_lost`), so a refusal that lasts for weeks cannot grow the state past Temporal's limits.
MAX_HELD = 2_000
MAX_HELD_CHARS = 1_000_000


def _chars(events: list[TimelineEvent]) -> int:
    return sum(len(e.text) + len(e.link or "") + 100 for e in events)


def due(s: IncidentState) -> bool:
    """An archive is due. After failures, it waits until as many more events came in."""
    held, scale = len(s.timeline), 1 + s.archive_failures
    if held <= KEEP:
        return False
    return held >= ARCHIVE_AT * scale or _chars(s.timeline) >= ARCHIVE_AT_CHARS * scale


def oldest_part(s: IncidentState) -> list[TimelineEvent]:
    """The oldest events to archive: all but the newest KEEP, at most PART_CHARS of text (at least one)."""
    part: list[TimelineEvent] = []
    size = 0
    for event in s.timeline[: len(s.timeline) - KEEP]:
        size += _chars([event])
        if part and size > PART_CHARS:
            break
        part.append(event)
    return part


def drop_excess(s: IncidentState) -> None:
    """Drops the oldest held events beyond MAX_HELD / MAX_HELD_CHARS, counting them as lost."""
    excess = max(0, len(s.timeline) - MAX_HELD)
    size = _chars(s.timeline[excess:])
    while len(s.timeline) - excess > KEEP and size > MAX_HELD_CHARS:
        size -= _chars([s.timeline[excess]])
        excess += 1
    if excess:
        del s.timeline[:excess]
        s.timeline_lost += excess


class TimelineArchive:
    """Moves the oldest timeline events of one incident to Slack files, as they pile up."""

    def __init__(self, ctx: IncidentContext) -> None:
        self._ctx = ctx
        self._off = False  # a run from before patch timeline-archive: it never archives

    def due(self) -> bool:
        return not self._off and due(self._ctx.s)

    async def run(self) -> None:
        s = self._ctx.s
        if not self.due():
            return
        if not workflow.patched(patches.TIMELINE_ARCHIVE):
            self._off = True
            return
        events = oldest_part(s)
        request = TimelineArchiveRequest(
            incident_id=s.incident_id,
            part=len(s.timeline_parts) + 1,
            first=s.timeline_archived + s.timeline_lost + 1,
            events=events,
        )
        file_id: str | None = await self._ctx.activity(
            SlackTimelineActivities.archive_timeline,
            request,
            what="archive the timeline's older events",
            hint=" (warroom needs the `files:write` and `files:read` scopes). They stay with the incident"
            " and are tried again later.",
        )
        if file_id:
            del s.timeline[: len(events)]  # events recorded meanwhile were appended after them
            s.timeline_parts.append(file_id)
            s.timeline_archived += len(events)
            s.archive_failures = 0
        else:
            s.archive_failures += 1
            drop_excess(s)
        self._ctx.report()
