"""`warroom report`: percentiles and the summary on hand-made results, then 200 incidents on a dev server.

The 200 incidents run the real IncidentWorkflow and IncidentDirectoryWorkflow on a worker whose activities
are fakes with the real activities' names and signatures: no Slack, so generating them takes seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.models import IncidentResult, Resolution, StageChange, TimelineEvent
from domain.naming import incident_workflow_id
from domain.vocab import Severity, Stage
from starter.incidents import Incidents
from starter.report import (
    PERCENTILE_METHOD,
    DurationStats,
    SeverityCounts,
    collect,
    format_duration,
    parse_window,
    percentile,
    render_json,
    render_table,
    report_json,
    summarize,
)
from tests.conftest import eventually
from tests.fake_activities import FAKE_ACTIVITIES
from workflows import attributes
from workflows.directory import IncidentDirectoryWorkflow
from workflows.incident import IncidentWorkflow

T = TypeVar("T")
DECLARED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MIN = 60.0

# --- percentiles, windows, durations ------------------------------------------------------------------


def test_percentile_interpolates_linearly_between_the_nearest_values() -> None:
    assert percentile([], 50) is None and percentile([], 90) is None
    assert percentile([7.0], 50) == 7.0 and percentile([7.0], 90) == 7.0
    assert percentile([40.0, 10.0, 30.0, 20.0], 50) == 25.0  # unsorted input
    assert percentile([10.0, 20.0, 30.0, 40.0], 90) == pytest.approx(37.0)
    assert percentile([1.0, 2.0, 3.0, 4.0, 100.0], 50) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 100.0], 90) == pytest.approx(61.6)
    assert percentile([5.0, 1.0, 9.0], 0) == 1.0 and percentile([5.0, 1.0, 9.0], 100) == 9.0
    with pytest.raises(ValueError):
        percentile([1.0], 101)


@pytest.mark.parametrize(
    ("text", "window"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("2w", timedelta(weeks=2)),
        ("90m", timedelta(minutes=90)),
        (" 1d ", timedelta(days=1)),
    ],
)
def test_windows(text: str, window: timedelta) -> None:
    assert parse_window(text) == window


@pytest.mark.parametrize("text", ["30", "d", "30x", "-1d", "0d", "1.5d", "30 d", "30D", "", "99999999w"])
def test_a_bad_window_says_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match="not a time window; use a whole number and m, h, d or w"):
        parse_window(text)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "-"),
        (0.0, "0ms"),
        (0.35, "350ms"),
        (0.9996, "999ms"),
        (35.0, "35s"),
        (245.0, "4m 5s"),
        (42 * MIN + 10, "42m 10s"),
        (65 * MIN, "1h 5m"),
        (51 * 3600.0, "2d 3h"),
    ],
)
def test_durations_are_readable(seconds: float | None, shown: str) -> None:
    assert format_duration(seconds) == shown


# --- the summary on hand-made results ------------------------------------------------------------------


def result(
    incident_id: int,
    severity: Severity,
    resolved: float,
    *,
    identified: float | None = None,
    mitigated: float | None = None,
    private: bool = False,
) -> IncidentResult:
    """A resolved incident declared at DECLARED; the stages and the resolve `minutes` later."""
    reached = {
        stage.value: DECLARED + timedelta(minutes=at)
        for stage, at in ((Stage.IDENTIFIED, identified), (Stage.MITIGATED, mitigated))
        if at is not None
    }
    return IncidentResult(
        incident_id=incident_id,
        title=f"incident {incident_id}",
        severity=severity,
        final_stage=Stage.MITIGATED if mitigated is not None else Stage.INVESTIGATING,
        ever_mitigated=mitigated is not None,
        summary="",
        declared_at=DECLARED,
        resolved_at=DECLARED + timedelta(minutes=resolved),
        timeline=[],
        stage_reached=reached,
        private=private,
    )


HAND_MADE = [
    result(1, Severity.SEV1, 60, identified=10, mitigated=30),
    result(2, Severity.SEV2, 40, mitigated=20, private=True),  # Identified skipped: identified at 20
    result(3, Severity.SEV2, 50, identified=5),  # never mitigated
    result(4, Severity.SEV3, 15),  # straight to resolved
]


def test_summary_counts_and_percentiles() -> None:
    report = summarize(HAND_MADE, {Severity.SEV1: 2, "sev4": 1}, {"sev3": 1})
    assert report.by_severity == {
        "sev1": SeverityCounts(open=2, resolved=1),
        "sev2": SeverityCounts(resolved=2),  # the private one included
        "sev3": SeverityCounts(resolved=1, without_result=1),
        "sev4": SeverityCounts(open=1),
    }
    assert report.totals == SeverityCounts(open=3, resolved=4, without_result=1)
    assert report.totals.total == 8
    # to identified: 10, 20 (the skipped stage), 5; to mitigated: 30, 20; to resolved: 60, 40, 50, 15.
    assert {name: d.model_dump() for name, d in report.durations.items()} == {
        "to_identified": {"count": 3, "median": 10 * MIN, "p90": pytest.approx(18 * MIN)},
        "to_mitigated": {"count": 2, "median": 25 * MIN, "p90": pytest.approx(29 * MIN)},
        "to_resolved": {"count": 4, "median": 45 * MIN, "p90": pytest.approx(57 * MIN)},
    }


def test_open_incidents_are_only_counted_and_private_ones_count_like_any_other() -> None:
    without_private = summarize([r for r in HAND_MADE if not r.private], {})
    assert without_private.by_severity["sev2"] == SeverityCounts(resolved=1)
    assert without_private.durations["to_mitigated"] == DurationStats(count=1, median=30 * MIN, p90=30 * MIN)
    more_open = summarize(HAND_MADE, {"sev1": 50, "sev3": 7})
    assert more_open.durations == summarize(HAND_MADE, {}).durations
    assert more_open.totals == SeverityCounts(open=57, resolved=4)


def test_no_data_shows_a_dash_and_null() -> None:
    empty = summarize([], {})
    assert list(empty.by_severity) == ["sev1", "sev2", "sev3", "sev4"]
    assert empty.totals.total == 0
    assert all(d == DurationStats() for d in empty.durations.values())
    table = render_table(empty)
    assert "to identified              0        -        -" in table
    data = json.loads(render_json(empty))
    assert data["durations_seconds"]["to_resolved"] == {"count": 0, "median": None, "p90": None}
    only_open = summarize([], {"sev2": 3, "weird": 1})
    assert list(only_open.by_severity) == ["sev1", "sev2", "sev3", "sev4", "weird"]
    assert only_open.totals.open == 4 and only_open.durations == empty.durations


def test_results_recorded_before_stage_reached_use_their_timeline() -> None:
    def event(minutes: float, kind: str, text: str) -> TimelineEvent:
        return TimelineEvent(at=DECLARED + timedelta(minutes=minutes), kind=kind, text=text)

    timeline = [
        event(0, "declared", "SEV2 db down"),
        event(3, "update", "Identified: not a stage change"),
        event(7, "stage", "Identified: bad index"),
        event(9, "stage", "Investigating: it was not"),
        event(12, "stage", "Identified"),
        event(21, "stage", "Mitigated"),
    ]
    old = result(5, Severity.SEV2, 30).model_copy(update={"timeline": timeline})
    report = summarize([old], {})
    assert report.durations["to_identified"].median == 7 * MIN
    assert report.durations["to_mitigated"].median == 21 * MIN
    recorded = result(6, Severity.SEV2, 30, identified=8).model_copy(update={"timeline": timeline})
    assert summarize([recorded], {}).durations["to_identified"].median == 8 * MIN  # stage_reached wins
    assert summarize([recorded], {}).durations["to_mitigated"].count == 0


def test_table_and_json() -> None:
    since = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    report = summarize(HAND_MADE, {"sev1": 2}, {"sev3": 1}, since=since, generated_at=DECLARED)
    table = render_table(report)
    assert (
        "Incidents declared since 2026-03-01 00:00 UTC: 7 (2 open, 4 resolved, 1 without a result)" in table
    )
    assert "SEV1           2         1          0      3" in table
    assert "all            2         4          1      7" in table
    assert "to identified              3      10m      18m" in table
    assert "to resolved                4      45m      57m" in table
    assert PERCENTILE_METHOD in table and "1 incident(s) failed" in table
    data = json.loads(render_json(report))
    assert data["since"] == "2026-03-01T00:00:00+00:00" and data["percentile_method"] == PERCENTILE_METHOD
    assert data["incidents"]["total"] == 7 and data["incidents"]["without_result"] == 1
    assert data["incidents"]["by_severity"]["sev3"] == {
        "open": 0,
        "resolved": 1,
        "without_result": 1,
        "total": 2,
    }
    assert data["durations_seconds"]["to_mitigated"] == {"count": 2, "median": 1500.0, "p90": 1740.0}
    odd = summarize([result(9, Severity.SEV4, 1.0 / 7)], {})
    assert report_json(odd)["durations_seconds"]["to_resolved"] == {"count": 1, "median": 8.571, "p90": 8.571}
    assert "failed" not in render_table(summarize(HAND_MADE, {}))


# --- collect, against a stand-in for the client --------------------------------------------------------


Listed = tuple[str, WorkflowExecutionStatus, str | None]  # workflow ID, status, IncidentSeverity


class ListingClient:
    """What `collect` uses of a Client: a visibility listing and result handles (tracking how many wait)."""

    def __init__(self, listed: list[Listed], results: dict[str, IncidentResult]) -> None:
        self.listed = listed
        self.results = results
        self.queries: list[str] = []
        self.fetched: list[tuple[str, str | None]] = []
        self.waiting = 0
        self.most_waiting = 0

    async def list_workflows(self, query: str) -> AsyncIterator[Any]:
        self.queries.append(query)
        for workflow_id, status, severity in self.listed:
            pairs = [SearchAttributePair(attributes.SEVERITY, severity)] if severity else []
            yield SimpleNamespace(
                id=workflow_id,
                run_id=f"run-{workflow_id}",
                status=status,
                typed_search_attributes=TypedSearchAttributes(pairs),
            )

    def get_workflow_handle(self, workflow_id: str, *, run_id: str | None, result_type: type) -> Any:
        assert result_type is IncidentResult
        client = self

        class Handle:
            async def result(self, follow_runs: bool = True) -> Any:
                assert not follow_runs  # the listed run, not whatever follows it
                client.fetched.append((workflow_id, run_id))
                client.waiting += 1
                client.most_waiting = max(client.most_waiting, client.waiting)
                await asyncio.sleep(0.01)
                client.waiting -= 1
                return client.results[workflow_id]

        return Handle()


async def test_collect_counts_each_status_and_fetches_completed_results_a_few_at_a_time() -> None:
    since = DECLARED - timedelta(hours=1, microseconds=1)
    done = {f"incident-{i}": result(i, Severity.SEV2, 30, identified=10) for i in range(1, 11)}
    done["incident-11"] = result(11, Severity.SEV1, 5).model_copy(
        update={"declared_at": since - timedelta(days=1)}  # declared before the window, continued inside it
    )
    S = WorkflowExecutionStatus
    listed: list[Listed] = [
        *((wf_id, S.COMPLETED, "sev2") for wf_id in done),
        ("incident-12", S.RUNNING, "sev1"),
        ("incident-13", S.RUNNING, None),
        ("incident-14", S.CONTINUED_AS_NEW, "sev3"),
        ("incident-15", S.TERMINATED, "sev3"),
        ("incident-16", S.FAILED, "sev4"),
        ("incident-17", S.TIMED_OUT, "sev4"),
        ("incident-18", S.CANCELED, "sev1"),
    ]
    client = ListingClient(listed, done)
    report = await collect(client, "warroom", since, concurrency=3)  # type: ignore[arg-type]
    assert client.queries == [
        "WorkflowType = 'IncidentWorkflow' AND TaskQueue = 'warroom' AND StartTime >= '2026-03-02T07:59:59Z'"
    ]
    assert report.since == datetime(2026, 3, 2, 7, 59, 59, tzinfo=UTC)
    assert sorted(client.fetched) == sorted((wf_id, f"run-{wf_id}") for wf_id in done)
    assert client.most_waiting == 3
    assert report.by_severity == {
        "sev1": SeverityCounts(open=1, without_result=1),
        "sev2": SeverityCounts(resolved=10),
        "sev3": SeverityCounts(without_result=1),
        "sev4": SeverityCounts(without_result=2),
        "unknown": SeverityCounts(open=1),
    }
    assert report.durations["to_identified"] == DurationStats(count=10, median=10 * MIN, p90=10 * MIN)
    assert report.durations["to_resolved"].count == 10


# --- the command line -----------------------------------------------------------------------------------


def warroom_env(address: str, queue: str | None = None) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WARROOM_")}
    return {**clean, "TEMPORAL_ADDRESS": address, **({"WARROOM_TASK_QUEUE": queue} if queue else {})}


WARROOM = str(Path(sys.executable).parent / "warroom")


async def run_warroom(
    *args: str, address: str = "127.0.0.1:1", queue: str | None = None
) -> tuple[int, str, str]:
    """`warroom <args>` in a new process; `queue`: its WARROOM_TASK_QUEUE (the deployment it reports on)."""
    proc = await asyncio.create_subprocess_exec(
        WARROOM,
        *args,
        env=warroom_env(address, queue),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_a_bad_window_is_a_usage_error_and_help_shows_the_options() -> None:
    code, out, err = await run_warroom("report", "--since", "30x")
    assert code == 2, (out, err)
    assert "usage: warroom report" in err and "`30x` is not a time window" in err and "30d" in err
    assert "Traceback" not in err
    code, out, err = await run_warroom("report", "--help")
    assert code == 0 and "--since WINDOW" in out and "--json" in out and "default: 30d" in out


# --- 200 incidents on a dev server, with fake activities ---------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """One generated incident: its severity, the stages it goes through, and how it ends."""

    index: int
    severity: Severity
    stages: tuple[Stage, ...]
    end: str  # resolved, terminated, open

    @property
    def private(self) -> bool:
        return self.index % 9 == 0


INCIDENTS = 200
OPEN = 20
TERMINATED = 2
SEVERITY_MIX = (Severity.SEV1, Severity.SEV2, Severity.SEV2, Severity.SEV3, Severity.SEV3, Severity.SEV4)
PATHS: tuple[tuple[Stage, ...], ...] = (
    (Stage.IDENTIFIED, Stage.MITIGATED),
    (Stage.IDENTIFIED,),  # never mitigated
    (Stage.MITIGATED,),  # Identified skipped
    (),  # resolved straight away
)


def plan(n: int = INCIDENTS) -> list[Planned]:
    resolved = n - OPEN - TERMINATED
    return [
        Planned(
            index=i,
            severity=SEVERITY_MIX[i % len(SEVERITY_MIX)],
            stages=PATHS[i % len(PATHS)],
            end="resolved" if i < resolved else "terminated" if i < resolved + TERMINATED else "open",
        )
        for i in range(n)
    ]


async def bounded(limit: int, jobs: list[Callable[[], Awaitable[T]]]) -> list[T]:
    gate = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await job()

    return await asyncio.gather(*(one(job) for job in jobs))


async def generate(incidents: Incidents, planned: list[Planned]) -> dict[int, int]:
    """Declares, moves and ends every planned incident, 32 at a time; returns plan index -> incident ID.

    At most 8 declares at once: the server runs at most 10 updates on the directory at a time.
    """
    declaring = asyncio.Semaphore(8)
    ids: dict[int, int] = {}

    def lifecycle(p: Planned) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            async with declaring:
                incident_id = await incidents.declare(f"generated {p.index}", p.severity, private=p.private)
            ids[p.index] = incident_id
            for stage in p.stages:
                await incidents.change_stage(incident_id, StageChange(stage=stage, context=f"step {stage}"))
            if p.end == "resolved":
                await incidents.resolve(incident_id, Resolution(summary="done"))
            elif p.end == "terminated":
                await incidents.client.get_workflow_handle(
                    incident_workflow_id(incident_id, incidents.task_queue)
                ).terminate("test")

        return run

    await bounded(32, [lifecycle(p) for p in planned])
    return ids


async def results_of(client: Client, queue: str, incident_ids: list[int]) -> list[IncidentResult]:
    """Fetched one by one from each incident's handle (waiting for it to complete), not through visibility."""

    def fetch(incident_id: int) -> Callable[[], Awaitable[IncidentResult]]:
        handle = client.get_workflow_handle(
            incident_workflow_id(incident_id, queue), result_type=IncidentResult
        )
        return handle.result

    return await bounded(32, [fetch(i) for i in incident_ids])


async def visible(client: Client, resolved: int, terminated: int, running: int) -> bool:
    """True once visibility shows every incident in its final status."""
    counts = {}
    for status, n in (("Completed", resolved), ("Terminated", terminated), ("Running", running)):
        query = f"WorkflowType = 'IncidentWorkflow' AND ExecutionStatus = '{status}'"
        counts[status] = ((await client.count_workflows(query)).count, n)
    assert all(have == want for have, want in counts.values()), counts
    return True


async def test_report_over_200_generated_incidents(temporal: WorkflowEnvironment) -> None:
    client = temporal.client
    queue = f"report-{uuid.uuid4()}"
    planned = plan()
    started = datetime.now(UTC)
    async with Worker(
        client,
        task_queue=queue,
        workflows=[IncidentWorkflow, IncidentDirectoryWorkflow],
        activities=FAKE_ACTIVITIES,
    ):
        t0 = time.perf_counter()
        ids = await generate(Incidents(client, queue, broadcast_channels=("C0STATUS",)), planned)
        resolved = [p for p in planned if p.end == "resolved"]
        fetched = await results_of(client, queue, [ids[p.index] for p in resolved])
        for p in planned:
            if p.end == "terminated":
                with pytest.raises(WorkflowFailureError):
                    await client.get_workflow_handle(incident_workflow_id(ids[p.index], queue)).result()
        await eventually(lambda: visible(client, len(resolved), TERMINATED, OPEN), within=30)
        print(f"\ngenerated {INCIDENTS} incidents in {time.perf_counter() - t0:.1f}s")

        t0 = time.perf_counter()
        report = await collect(client, queue, started - timedelta(minutes=1))
        elapsed = time.perf_counter() - t0
        print(f"report over {INCIDENTS} incidents (collect): {elapsed:.2f}s")
        print(render_table(report))

    def counts(end: str) -> Counter[str]:
        return Counter(p.severity.value for p in planned if p.end == end)

    open_counts, terminated = counts("open"), counts("terminated")
    assert report.by_severity == {
        s.value: SeverityCounts(
            open=open_counts[s.value],
            resolved=counts("resolved")[s.value],
            without_result=terminated[s.value],
        )
        for s in Severity
    }
    assert report.totals == SeverityCounts(open=OPEN, resolved=len(resolved), without_result=TERMINATED)
    assert len(resolved) == INCIDENTS - OPEN - TERMINATED == 178
    assert sum(r.private for r in fetched) == sum(p.private for p in resolved) > 0
    # From the plan: identified includes the skipped stage; every resolved incident has a resolve time.
    assert [report.durations[n].count for n in ("to_identified", "to_mitigated", "to_resolved")] == [
        sum(bool(p.stages) for p in resolved),
        sum(Stage.MITIGATED in p.stages for p in resolved),
        len(resolved),
    ]
    for stats in report.durations.values():
        assert stats.median is not None and stats.p90 is not None and 0 <= stats.median <= stats.p90
    independent = summarize(fetched, open_counts, terminated)
    assert report.by_severity == independent.by_severity
    assert report.durations == independent.durations

    later = await collect(client, queue, datetime.now(UTC) + timedelta(minutes=1))
    assert later.totals.total == 0 and later.durations == summarize([], {}).durations

    t0 = time.perf_counter()
    code, out, err = await run_warroom(
        "report", "--since", "1d", "--json", address=client.service_client.config.target_host, queue=queue
    )
    cli_elapsed = time.perf_counter() - t0
    print(f"`warroom report --since 1d --json` over {INCIDENTS} incidents (new process): {cli_elapsed:.2f}s")
    assert code == 0, err
    data = json.loads(out)
    expected = report_json(report)
    assert data["incidents"] == expected["incidents"]
    assert data["durations_seconds"] == expected["durations_seconds"]
