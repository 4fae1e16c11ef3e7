"""A long incident's timeline: its older events go to private Slack files as they pile up, the state stays
small, and the timeline exported at resolve still has every event, in order."""

# ruff: noqa: F811  (the sandbox fixtures are test_timeline_export's, imported by name)

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime, timedelta

import aiohttp
from temporalio.testing import ActivityEnvironment

from activities.slack_timeline import SlackTimelineActivities
from domain.effects import TimelineArchiveRequest
from domain.models import DebriefNote, DebriefStart, IncidentResult, IncidentState, Resolution, TimelineEvent
from domain.naming import incident_workflow_id
from sandbox import SandboxServer
from sandbox.api_files import shared_files, store, uploaded_bytes
from sandbox.file_downloads import DOWNLOAD, SIGNED_OUT
from tests.conftest import RESPONDER, Stack, eventually
from tests.test_incident_workflow import declare
from tests.test_timeline_export import (  # noqa: F401  fixtures pytest finds by name
    TOKEN,
    acts,
    channel,
    make_result,
    make_view,
    publish,
    publish_fails,
    request,
    sb,
)
from workflows import archive

NOTES = 600  # debrief replies: enough for two archived parts at least


def events(n: int, text: str = "note {i}", start: int = 0) -> list[TimelineEvent]:
    t0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    return [
        TimelineEvent(at=t0 + timedelta(seconds=i), kind="debrief", text=text.format(i=i))
        for i in range(start, start + n)
    ]


def state_with(timeline: list[TimelineEvent], **kw: object) -> IncidentState:
    return IncidentState(
        incident_id=7,
        title="t",
        severity="sev2",
        declared_at=datetime(2026, 1, 5, tzinfo=UTC),
        timeline=timeline,
        **kw,
    )


# --- what to archive, and when (pure) ----------------------------------------------------------------------


def test_an_archive_is_due_at_the_threshold_and_keeps_the_newest_events() -> None:
    assert not archive.due(state_with(events(archive.ARCHIVE_AT - 1)))
    s = state_with(events(archive.ARCHIVE_AT))
    assert archive.due(s)
    part = archive.oldest_part(s)
    assert part == s.timeline[: archive.ARCHIVE_AT - archive.KEEP]


def test_long_texts_start_an_archive_early_and_split_into_parts_of_bounded_size() -> None:
    long = events(60, text="x" * 39_000 + " {i}")
    s = state_with(long)
    assert archive.due(s)
    part = archive.oldest_part(s)
    assert 1 <= len(part) < len(long) - archive.KEEP
    assert sum(len(e.text) for e in part) <= archive.PART_CHARS
    payload = TimelineArchiveRequest(incident_id=7, part=1, first=1, events=part).model_dump_json()
    assert len(payload) < 512 * 1024


def test_after_a_failed_archive_the_next_try_waits_for_as_many_more_events() -> None:
    s = state_with(events(archive.ARCHIVE_AT), archive_failures=1)
    assert not archive.due(s)
    assert archive.due(state_with(events(2 * archive.ARCHIVE_AT), archive_failures=1))


def test_events_held_too_long_are_dropped_oldest_first_and_counted() -> None:
    s = state_with(events(archive.MAX_HELD + 30), events_recorded=archive.MAX_HELD + 30)
    archive.drop_excess(s)
    assert len(s.timeline) == archive.MAX_HELD and s.timeline_lost == 30
    assert s.timeline[0].text == "note 30"


def test_a_state_from_an_older_run_counts_its_events_and_queues_its_reactions_in_the_outbox() -> None:
    reaction = {"channel_id": "C1", "message_ts": "1.2", "user_id": "U1", "reaction": "mega"}
    old = state_with(events(3)).model_dump(mode="json", exclude={"events_recorded", "updates_posted"})
    old["timeline"][1]["kind"] = "update"
    old["pending_reactions"] = [{"key": "inc7:9:reaction", "reaction": reaction}]
    s = IncidentState.model_validate(old)
    assert (s.events_recorded, s.updates_posted, s.nudges_sent) == (3, 1, 0)
    [queued] = s.outbox
    assert queued.read_first and queued.key == "inc7:9:reaction" and queued.actor == "U1"
    assert "pending_reactions" not in s.model_dump()


# --- the activities, against the sandbox ------------------------------------------------------------------


async def archive_part(acts: SlackTimelineActivities, req: TimelineArchiveRequest) -> str:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        scheduled_time=datetime.now(UTC),
        started_time=datetime.now(UTC),
        start_to_close_timeout=timedelta(seconds=30),
    )
    file_id: str = await env.run(acts.archive_timeline, req)
    return file_id


async def test_a_part_is_a_private_file_that_the_export_reads_back_in_order(
    sb: SandboxServer, acts: SlackTimelineActivities, channel: str
) -> None:
    older = events(3, text="older {i}")
    first = await archive_part(acts, TimelineArchiveRequest(incident_id=7, part=1, first=1, events=older))
    stored = store(sb.state).files[first]
    assert stored.completed and not (stored.channels or stored.groups or stored.ims)  # shared nowhere
    assert not sb.state.channel_messages(sb.state.channel(channel))
    result = make_result().model_copy(update={"timeline_parts": [first], "timeline_archived": 3})
    req = request(channel).model_copy(update={"result": result})
    await publish(acts, req)
    [exported] = [f for f in shared_files(sb.state, channel) if f.name.endswith(".json")]
    doc = json.loads(uploaded_bytes(sb.state, exported.id))
    texts = [e["text"] for e in doc["events"]]
    assert texts[:3] == ["older 0", "older 1", "older 2"]
    assert texts[3:] == [e.text for e in make_result().timeline]


async def test_a_part_slack_no_longer_has_is_named_in_the_export_and_the_rest_still_goes_out(
    sb: SandboxServer, acts: SlackTimelineActivities, channel: str
) -> None:
    result = make_result().model_copy(update={"timeline_parts": ["F0GONE"], "timeline_archived": 200})
    await publish(acts, request(channel).model_copy(update={"result": result}))
    [exported] = [f for f in shared_files(sb.state, channel) if f.name.endswith(".json")]
    first = json.loads(uploaded_bytes(sb.state, exported.id))["events"][0]
    assert first["kind"] == "problem" and "part 1 (F0GONE) could not be read back" in first["text"]


async def test_a_download_without_the_token_gets_slacks_sign_in_page(
    sb: SandboxServer, acts: SlackTimelineActivities
) -> None:
    file_id = await archive_part(
        acts, TimelineArchiveRequest(incident_id=7, part=1, first=1, events=events(2))
    )
    url = (await acts._client.files_info(file=file_id))["file"]["url_private_download"]
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as anonymous:
            assert anonymous.status == 200 and anonymous.content_type == "text/html"
        async with http.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as authorized:
            assert json.loads(await authorized.read())["events"][1]["text"] == "note 1"
    assert [c.error for c in sb.state.calls_for(DOWNLOAD)] == ["sign_in_page", None]


async def test_an_export_whose_token_cannot_read_files_stops_with_what_to_fix(
    sb: SandboxServer, acts: SlackTimelineActivities, channel: str
) -> None:
    file_id = await archive_part(
        acts, TimelineArchiveRequest(incident_id=7, part=1, first=1, events=events(2))
    )
    sb.state.add_fault(DOWNLOAD, error=SIGNED_OUT)
    result = make_result().model_copy(update={"timeline_parts": [file_id]})
    failed = await publish_fails(acts, request(channel).model_copy(update={"result": result}))
    assert failed.non_retryable and "files:read" in failed.message and TOKEN not in failed.message
    assert not shared_files(sb.state, channel)  # nothing half-exported


# --- end to end: a real incident on the dev server --------------------------------------------------------


async def test_a_long_incident_keeps_a_small_state_and_exports_every_event(stack: Stack) -> None:
    incident_id, _ = await declare(stack)
    await stack.incidents.start_debrief(incident_id, DebriefStart(actor=RESPONDER))
    thread = await eventually(lambda: _debrief_thread(stack, incident_id))
    gate = asyncio.Semaphore(20)

    async def note(i: int) -> None:
        async with gate:
            reply = DebriefNote(
                user_id=RESPONDER, text=f"note {i}", ts=f"1700000000.{i:06d}", thread_ts=thread
            )
            assert await stack.incidents.debrief_note(incident_id, reply)

    for start in range(0, NOTES, 100):  # in order: each batch after the one before
        await asyncio.gather(*(note(i) for i in range(start, start + 100)))

    async def archived() -> IncidentState | None:
        s = await stack.state(incident_id)
        noted = sum(e.kind == "debrief" and e.text.startswith("note ") for e in s.timeline)
        return s if s.timeline_archived + noted >= NOTES and len(s.timeline) < archive.ARCHIVE_AT else None

    state = await eventually(archived, within=60)
    assert len(state.timeline_parts) >= 2 and state.timeline_lost == 0
    assert state.events_recorded == state.timeline_archived + len(state.timeline)
    await stack.incidents.resolve(incident_id, Resolution(summary="done", actor=RESPONDER))
    handle = stack.temporal.client.get_workflow_handle(
        incident_workflow_id(incident_id, stack.settings.task_queue), result_type=IncidentResult
    )
    result = await handle.result()
    assert len(result.timeline) < archive.ARCHIVE_AT and result.timeline_parts == state.timeline_parts

    [exported] = [
        f for f in shared_files(stack.sandbox.state, state.channel_id or "") if f.name.endswith(".json")
    ]
    doc = json.loads(uploaded_bytes(stack.sandbox.state, exported.id))
    notes = [e["text"] for e in doc["events"] if e["kind"] == "debrief" and e["text"].startswith("note ")]
    # every one, once; in the order recorded (each batch of 100 after the one before, concurrent within it)
    assert sorted(notes, key=lambda n: int(n.split()[1])) == [f"note {i}" for i in range(NOTES)]
    assert [int(n.split()[1]) // 100 for n in notes] == sorted(int(n.split()[1]) // 100 for n in notes)
    assert len(doc["events"]) == result.timeline_archived + len(result.timeline)
    assert [e["kind"] for e in doc["events"]][:2] == ["declared", "channel"]
    parts = [f for f in store(stack.sandbox.state).files.values() if "-timeline-part-" in f.name]
    assert parts and all(not (f.channels or f.groups or f.ims) for f in parts)  # never shown to anyone


async def _debrief_thread(stack: Stack, incident_id: int) -> str | None:
    return (await stack.state(incident_id)).debrief_ts or None
