"""A month-long incident on the time-skipping server: status updates, alert re-sends and reactions over 30
simulated days. Every payload in every run's history stays under 512 KB, the workflow continues as new as
often as it needs, and the timeline exported at resolve has every event exactly once.

The suite runs it at a twentieth of the full load (1,000 updates, 250 alert re-sends, 50 reactions: about
a minute here, every announcement being one activity). The full load took 10 minutes on two busy cores:

    SOAK_FULL=1 .venv/bin/pytest tests/test_soak.py -s    # 20,000 updates, 5,000 re-sends, 500 reactions

The workflows are the real ones; the activities are in-memory stand-ins with the same names (this test is
about the workflow's state and history; what each activity does in Slack is proven against the sandbox
elsewhere). The figures for the record are printed (run with `-s` to see them).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from temporalio import activity
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import worker
from domain.alerts import AlertGroup, AlertItem
from domain.effects import (
    AnnounceRequest,
    Delivery,
    TimelineArchiveRequest,
    TimelineExportRequest,
)
from domain.models import (
    Declaration,
    DirectoryState,
    IncidentInput,
    IncidentResult,
    IncidentState,
    ReactionAdded,
    Resolution,
    StatusUpdate,
    TimelineEvent,
)
from domain.naming import directory_workflow_id, incident_workflow_id
from domain.settings import Settings
from domain.vocab import Severity
from starter.incidents import BUSY_RPC
from tests.conftest import eventually, start_time_skipping
from tests.fake_activities import FAKE_ACTIVITIES, replaced, signature
from workflows.directory import IncidentDirectoryWorkflow
from workflows.incident import MAX_QUEUED, IncidentWorkflow

DAYS = 30
FULL = bool(os.environ.get("SOAK_FULL"))
UPDATES, ALERT_RESENDS, REACTIONS = (20_000, 5_000, 500) if FULL else (1_000, 250, 50)
NEW_ALERT_EVERY = 10  # one alert re-send in ten carries a new alert; the rest repeat what was shown
PAYLOAD_LIMIT = 512 * 1024
CHANNEL, STATUS = "C00000001", "C0STATUS"  # the channel the stand-in creates for incident 1
RESPONDER = "U0SOAK"
PARALLEL = 8  # commands in flight at once (the server admits 10 updates in flight per workflow)


@dataclass
class FakeSlack:
    """The shared stand-ins, but archived parts and the export are kept here and announcements counted."""

    parts: dict[str, list[TimelineEvent]] = field(default_factory=dict)
    exported: list[TimelineEvent] = field(default_factory=list)
    announced: int = 0

    def activities(self) -> list[Callable[..., Any]]:
        @activity.defn(name="announce")
        async def announce(req: AnnounceRequest) -> list[Delivery]:
            self.announced += 1
            return [Delivery(channel_id=t.channel_id, ts="2.0") for t in req.threads]

        @activity.defn(name="archive_timeline")
        async def archive_timeline(req: TimelineArchiveRequest) -> str:
            file_id = f"F{req.part:05d}"
            self.parts[file_id] = list(req.events)
            return file_id

        @activity.defn(name="publish_timeline")
        async def publish_timeline(req: TimelineExportRequest) -> str:
            archived = [e for f in req.result.timeline_parts for e in self.parts[f]]
            self.exported = [*archived, *req.result.timeline]
            return "5.0"

        return replaced(announce, archive_timeline, publish_timeline)


def test_the_fakes_have_the_real_activities_names_and_signatures() -> None:
    real = worker.activities_for(Settings(), AsyncWebClient())
    assert sorted(map(signature, FAKE_ACTIVITIES)) == sorted(map(signature, real))
    assert sorted(map(signature, FakeSlack().activities())) == sorted(map(signature, real))


@pytest.fixture
async def skipping() -> AsyncIterator[WorkflowEnvironment]:
    async with await start_time_skipping(auto=False) as env:
        yield env


def alert_group(n: int) -> AlertGroup:
    """The n-th re-send: the alerts shown so far again, and every NEW_ALERT_EVERY-th time one more."""
    newest = n // NEW_ALERT_EVERY
    items = tuple(
        AlertItem(fingerprint=f"fp{i:05d}", status="firing", name=f"HighLatency{i}")
        for i in range(max(0, newest - 4), newest + 1)
    )
    return AlertGroup(
        source="alertmanager",
        dedup_key=None,
        status="firing",
        title="Checkout latency",
        severity=Severity.SEV2,
        alerts=items,
    )


async def feed_day(handle: WorkflowHandle, day: int, refused: list[int], busy: list[int]) -> None:
    """One simulated day's share of the updates, alert re-sends and reactions, interleaved. An update
    refused (Slack behind) or not taken (Temporal busy) is sent again, as a responder would."""
    gate = asyncio.Semaphore(PARALLEL)

    def share(total: int) -> range:
        return range(total * day // DAYS, total * (day + 1) // DAYS)

    async def update(i: int) -> None:
        async with gate:
            while True:  # as a responder would: send it again when warroom says Slack is behind
                try:
                    await handle.execute_update(
                        IncidentWorkflow.post_update, StatusUpdate(text=f"update {i}", actor=RESPONDER)
                    )
                    return
                except WorkflowUpdateFailedError as err:
                    if "Slack is behind" not in str(err.cause):
                        raise
                    refused.append(i)
                    await asyncio.sleep(0.5)
                except RPCError as err:  # not taken (a workflow task timed out on the loaded machine)
                    if err.status not in BUSY_RPC:
                        raise
                    busy.append(i)
                    await asyncio.sleep(0.5)

    async def alert(i: int) -> None:
        async with gate:
            await handle.signal(IncidentWorkflow.alerts_fired, alert_group(i))

    async def reaction(i: int) -> None:
        async with gate:
            ts = f"1700000000.{i:06d}"
            react = ReactionAdded(channel_id=CHANNEL, message_ts=ts, user_id=RESPONDER, reaction="mega")
            await handle.signal(IncidentWorkflow.reaction_added, react)

    await asyncio.gather(
        *(update(i) for i in share(UPDATES)),
        *(alert(i) for i in share(ALERT_RESENDS)),
        *(reaction(i) for i in share(REACTIONS)),
    )


async def runs_of(client: Client, workflow_id: str) -> list[list[HistoryEvent]]:
    """Every run's history, first to last (following each continue-as-new)."""
    first = await client.get_workflow_handle(workflow_id).describe()
    run_id: str | None = first.run_id
    # describe() names the latest run; walk back from it through each run's first event.
    chain: list[list[HistoryEvent]] = []
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        events = list(history.events)
        chain.append(events)
        started = events[0].workflow_execution_started_event_attributes
        run_id = started.continued_execution_run_id or None
    return chain[::-1]


async def test_a_month_long_incident_stays_small_and_exports_every_event(
    skipping: WorkflowEnvironment,
) -> None:
    fake = FakeSlack()
    queue = f"soak-{uuid.uuid4()}"
    client = skipping.client
    declaration = Declaration(
        incident_id=1, title="Checkout latency", severity=Severity.SEV2, broadcast_channels=(STATUS,)
    )
    workflow_id = incident_workflow_id(1, queue)
    started = time.monotonic()
    refused: list[int] = []  # updates refused while Slack was behind (each sent again)
    busy: list[int] = []  # updates Temporal did not take (each sent again)
    async with Worker(
        client,
        task_queue=queue,
        workflows=[IncidentWorkflow, IncidentDirectoryWorkflow],
        activities=fake.activities(),
    ):
        await client.start_workflow(  # the deployment's directory: the incident registers with it
            IncidentDirectoryWorkflow.run, DirectoryState(), id=directory_workflow_id(queue), task_queue=queue
        )
        await client.start_workflow(
            IncidentWorkflow.run, IncidentInput(declaration=declaration), id=workflow_id, task_queue=queue
        )
        handle = client.get_workflow_handle(workflow_id)  # whichever run is current
        await eventually(lambda: _channel_ready(handle))  # responders start once the channel is there
        for day in range(DAYS):
            await feed_day(handle, day, refused, busy)
            await skipping.fast_forward(handle, timedelta(days=1))
        await handle.execute_update(IncidentWorkflow.resolve, Resolution(summary="done", actor=RESPONDER))
        result = await client.get_workflow_handle(workflow_id, result_type=IncidentResult).result()

    runs = await runs_of(client, workflow_id)
    largest = max(e.ByteSize() for run in runs for e in run)
    longest = max(len(run) for run in runs)
    print(
        f"\nsoak: {len(runs)} runs, longest history {longest} events, largest event {largest} bytes, "
        f"{len(fake.parts)} archived parts, {len(fake.exported)} events exported, "
        f"{len(refused)} updates refused while Slack was behind and {len(busy)} not taken by a busy"
        " Temporal, each sent again, "
        f"{time.monotonic() - started:.0f} s"
    )
    assert largest < PAYLOAD_LIMIT
    assert len(runs) > 1  # it continued as new (the server suggests it every few thousand events)

    exported = fake.exported
    assert len(exported) == result.timeline_archived + len(result.timeline) and result.timeline_lost == 0
    updates = [e.text for e in exported if e.kind == "update"]
    assert sorted(updates, key=lambda t: int(t.split()[1])) == [f"update {i}" for i in range(UPDATES)]
    reactions = [e.text for e in exported if e.kind == "reaction"]
    assert len(reactions) == REACTIONS
    alerts = [e for e in exported if e.kind == "alert"]
    assert len(alerts) == ALERT_RESENDS // NEW_ALERT_EVERY  # each new alert once, never a repeat
    assert exported[0].kind == "declared" and exported[-1].kind == "resolved"
    assert [e.text for e in exported if e.kind == "problem"] == []
    assert fake.announced >= UPDATES + REACTIONS
    assert len(result.timeline) <= 2 * 250  # the result carries the newest events, not the month


async def _channel_ready(handle: WorkflowHandle) -> bool:
    state: IncidentState = await handle.query(IncidentWorkflow.state)
    return state.channel_ready


async def test_updates_beyond_what_slack_can_keep_up_with_are_refused_with_what_to_do(
    skipping: WorkflowEnvironment,
) -> None:
    """Slack stalls: updates queue up to MAX_QUEUED, then the next is refused (the caller told to resend it);
    once Slack answers again, the queue drains and updates are taken again. Nothing taken is lost."""
    slack_answers = asyncio.Event()
    posted: list[str] = []

    @activity.defn(name="announce")
    async def announce(req: AnnounceRequest) -> list[Delivery]:
        await slack_answers.wait()
        posted.append(req.announcement.text)
        return [Delivery(channel_id=t.channel_id, ts="2.0") for t in req.threads]

    queue = f"stall-{uuid.uuid4()}"
    declaration = Declaration(incident_id=2, title="Stalled", severity=Severity.SEV2)
    workflow_id = f"stall-incident-{uuid.uuid4()}"
    async with Worker(
        skipping.client, task_queue=queue, workflows=[IncidentWorkflow], activities=replaced(announce)
    ):
        await skipping.client.start_workflow(
            IncidentWorkflow.run, IncidentInput(declaration=declaration), id=workflow_id, task_queue=queue
        )
        handle = skipping.client.get_workflow_handle(workflow_id)
        await eventually(lambda: _channel_ready(handle))
        for i in range(MAX_QUEUED):
            await handle.execute_update(IncidentWorkflow.post_update, StatusUpdate(text=f"update {i}"))
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(IncidentWorkflow.post_update, StatusUpdate(text="one too many"))
        assert "Slack is behind: 100 earlier messages of INC-2" in str(refused.value.cause)
        assert "Send it again" in str(refused.value.cause)
        slack_answers.set()

        async def taken_again() -> bool:
            try:
                await handle.execute_update(IncidentWorkflow.post_update, StatusUpdate(text="one too many"))
            except WorkflowUpdateFailedError:
                return False
            return True

        await eventually(taken_again, within=30)
        await eventually(lambda: _drained(posted, MAX_QUEUED + 1), within=60)
    assert posted == [f"update {i}" for i in range(MAX_QUEUED)] + ["one too many"]


async def _drained(posted: list[str], n: int) -> bool:
    return len(posted) >= n
