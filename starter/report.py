"""`warroom report --since 30d`: the analysis afterwards, over every incident declared in a window.

Counts come from Temporal visibility (the `IncidentSeverity` search attribute of each incident workflow);
durations come from the results of the completed incident workflows (`domain.timeline.durations`), so an
open incident is counted but has no durations yet, and neither has one that failed, was terminated, was
cancelled or timed out (counted as "without a result").

Percentiles interpolate linearly between the two nearest values (numpy's default, the "inclusive" method of
`statistics.quantiles`): the median of 10, 20, 30, 40 is 25.

The computation is pure (`summarize`, `percentile`, `render_table`, `render_json`); `collect` is the one
function that talks to Temporal.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus

from domain.durations import human as human_duration
from domain.models import IncidentResult, Model
from domain.naming import incidents_query
from domain.timeline import DURATION_NAMES, durations
from domain.vocab import Severity, Stage
from workflows import attributes

PERCENTILE_METHOD = "linear interpolation between the two nearest values"
FETCH_CONCURRENCY = 32  # results fetched at once
NO_DATA = "-"
UNKNOWN_SEVERITY = "unknown"  # a workflow without the IncidentSeverity search attribute
MAX_WINDOW = timedelta(days=36525)  # 100 years; beyond that `now - window` leaves the calendar
_WINDOW = re.compile(r"(\d{1,9})([mhdw])")
_UNIT = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
_WITHOUT_RESULT = frozenset(
    {
        WorkflowExecutionStatus.FAILED,
        WorkflowExecutionStatus.TERMINATED,
        WorkflowExecutionStatus.CANCELED,
        WorkflowExecutionStatus.TIMED_OUT,
    }
)


# --- the window -------------------------------------------------------------------------------------------


def parse_window(text: str) -> timedelta:
    """`30d`, `12h`, `2w`, `90m` -> a positive timedelta; ValueError with a readable message otherwise."""
    m = _WINDOW.fullmatch(text.strip())
    window = int(m[1]) * _UNIT[m[2]] if m else None
    if window is None or window <= timedelta(0) or window > MAX_WINDOW:
        raise ValueError(
            f"`{text}` is not a time window; use a whole number and m, h, d or w: 90m, 12h, 30d, 2w"
        )
    return window


# --- the computation ---------------------------------------------------------------------------------------


class SeverityCounts(Model):
    """Incidents of one severity declared in the window."""

    open: int = 0
    resolved: int = 0  # completed workflows: their results carry the durations
    without_result: int = 0  # failed, terminated, cancelled or timed out: counted, no durations

    @property
    def total(self) -> int:
        return self.open + self.resolved + self.without_result


class DurationStats(Model):
    """One duration over the resolved incidents that reached it; seconds, None without any."""

    count: int = 0
    median: float | None = None
    p90: float | None = None


class Report(Model):
    by_severity: dict[str, SeverityCounts]  # `sev1` .. `sev4` always, in that order, then any other value
    durations: dict[str, DurationStats]  # DURATION_NAMES
    since: datetime | None = None
    generated_at: datetime | None = None

    @property
    def totals(self) -> SeverityCounts:
        rows = self.by_severity.values()
        return SeverityCounts(
            open=sum(r.open for r in rows),
            resolved=sum(r.resolved for r in rows),
            without_result=sum(r.without_result for r in rows),
        )


def percentile(values: Sequence[float], p: float) -> float | None:
    """The `p`th percentile (0-100) by linear interpolation between the two nearest ranks; None when empty."""
    if not values:
        return None
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} is not between 0 and 100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def with_stages_from_timeline(result: IncidentResult) -> IncidentResult:
    """A result recorded before `stage_reached` existed gets it from its timeline's `stage` events
    (`Identified` or `Identified: <context>`, the first one of each stage); any other result is unchanged."""
    if result.stage_reached:
        return result
    reached: dict[str, datetime] = {}
    for event in result.timeline:
        if event.kind != "stage":
            continue
        for stage in Stage:
            if event.text == stage.label or event.text.startswith(f"{stage.label}: "):
                reached.setdefault(stage.value, event.at)
    return result.model_copy(update={"stage_reached": reached}) if reached else result


def _severity_rows(*counts: Mapping[str, int]) -> list[str]:
    seen = {str(key) for c in counts for key in c}
    known = [s.value for s in Severity]
    return known + sorted(seen - set(known))


def summarize(
    results: Iterable[IncidentResult],
    open_counts: Mapping[str, int],
    without_result: Mapping[str, int] | None = None,
    *,
    since: datetime | None = None,
    generated_at: datetime | None = None,
) -> Report:
    """The report over the results of completed incidents, the open incidents per severity and those that
    ended without a result per severity (`sev1` or `Severity.SEV1`). Private incidents count like any other:
    the report shows no titles."""
    finished = [with_stages_from_timeline(r) for r in results]
    resolved = Counter(r.severity.value for r in finished)
    opened = Counter({str(k): v for k, v in open_counts.items()})
    lost = Counter({str(k): v for k, v in (without_result or {}).items()})
    by_severity = {
        sev: SeverityCounts(open=opened[sev], resolved=resolved[sev], without_result=lost[sev])
        for sev in _severity_rows(resolved, opened, lost)
    }
    measured = [durations(r).as_seconds() for r in finished]
    stats = {}
    for name in DURATION_NAMES:
        values = [v for m in measured if (v := m[name]) is not None]
        stats[name] = DurationStats(
            count=len(values), median=percentile(values, 50), p90=percentile(values, 90)
        )
    return Report(by_severity=by_severity, durations=stats, since=since, generated_at=generated_at)


# --- rendering --------------------------------------------------------------------------------------------


def format_duration(seconds: float | None) -> str:
    """`-` (no data), else `domain.durations.human`: `350ms`, `35s`, `4m 5s`, `1h 5m`, `2d 3h`."""
    return NO_DATA if seconds is None else human_duration(seconds)


def _when(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if at else "the beginning"


def _label(severity: str) -> str:
    return severity.upper() if severity in {s.value for s in Severity} else severity


def render_table(report: Report) -> str:
    """The readable report: counts per severity, then median and p90 of each duration."""
    total = report.totals
    lines = [
        f"Incidents declared since {_when(report.since)}: {total.total} "
        f"({total.open} open, {total.resolved} resolved, {total.without_result} without a result)",
        "",
        f"{'severity':<10}{'open':>6}{'resolved':>10}{'no result':>11}{'total':>7}",
    ]
    rows = [*report.by_severity.items(), ("all", total)]
    for severity, c in rows:
        lines.append(f"{_label(severity):<10}{c.open:>6}{c.resolved:>10}{c.without_result:>11}{c.total:>7}")
    lines += ["", f"{'time from declare':<18}{'incidents':>10}{'median':>9}{'p90':>9}"]
    for name, d in report.durations.items():
        title = name.replace("_", " ")
        lines.append(f"{title:<18}{d.count:>10}{format_duration(d.median):>9}{format_duration(d.p90):>9}")
    lines += [
        "",
        f"Durations over the {total.resolved} resolved incidents; open ones are only counted.",
        f"Percentiles: {PERCENTILE_METHOD}. {NO_DATA}: nothing to measure.",
    ]
    if total.without_result:
        lines.append(
            f"{total.without_result} incident(s) failed, were terminated, cancelled or timed out: "
            "counted, without durations."
        )
    return "\n".join(lines)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def report_json(report: Report) -> dict[str, Any]:
    """The report as plain data: durations in seconds, to the millisecond (null: no data)."""
    total = report.totals
    return {
        "since": report.since.isoformat() if report.since else None,
        "generated_at": report.generated_at.isoformat() if report.generated_at else None,
        "percentile_method": PERCENTILE_METHOD,
        "incidents": {
            "total": total.total,
            "open": total.open,
            "resolved": total.resolved,
            "without_result": total.without_result,
            "by_severity": {
                sev: {**c.model_dump(), "total": c.total} for sev, c in report.by_severity.items()
            },
        },
        "durations_seconds": {
            name: {"count": d.count, "median": _ms(d.median), "p90": _ms(d.p90)}
            for name, d in report.durations.items()
        },
    }


def render_json(report: Report) -> str:
    return json.dumps(report_json(report), indent=2)


# --- Temporal ----------------------------------------------------------------------------------------------


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def collect(
    client: Client, task_queue: str, since: datetime, concurrency: int = FETCH_CONCURRENCY
) -> Report:
    """Lists the deployment's (`task_queue`'s) incident workflows started since `since` through visibility,
    fetches the results of the completed ones (`concurrency` at a time) and summarizes them.

    Runs that continued as new are skipped (their successor is listed); a completed incident whose
    declaration predates `since` (its last run started in the window) is left out. An open incident is
    counted by its current run's start.
    """
    since = (since if since.tzinfo else since.replace(tzinfo=UTC)).replace(microsecond=0)
    query = f"{incidents_query(task_queue)} AND StartTime >= '{_rfc3339(since)}'"
    open_counts: Counter[str] = Counter()
    lost: Counter[str] = Counter()
    completed: list[tuple[str, str]] = []
    async for wf in client.list_workflows(query):
        severity = wf.typed_search_attributes.get(attributes.SEVERITY) or UNKNOWN_SEVERITY
        if wf.status == WorkflowExecutionStatus.COMPLETED:
            completed.append((wf.id, wf.run_id))
        elif wf.status in _WITHOUT_RESULT:
            lost[severity] += 1
        elif wf.status != WorkflowExecutionStatus.CONTINUED_AS_NEW:
            open_counts[severity] += 1
    gate = asyncio.Semaphore(concurrency)

    async def result_of(workflow_id: str, run_id: str) -> IncidentResult:
        async with gate:
            handle = client.get_workflow_handle(workflow_id, run_id=run_id, result_type=IncidentResult)
            result: IncidentResult = await handle.result(follow_runs=False)
            return result

    results = await asyncio.gather(*(result_of(wf_id, run_id) for wf_id, run_id in completed))
    in_window = [r for r in results if r.declared_at >= since]
    return summarize(in_window, open_counts, lost, since=since, generated_at=datetime.now(UTC))
