"""One rounding rule for durations: the status reply, the resolve summary, the timeline file and
`warroom report` show the same interval the same way (domain/durations.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from activities.timeline_render import summary_text, timeline_markdown
from domain.durations import human
from domain.models import IncidentResult, IncidentState, IncidentView
from domain.vocab import Severity, Stage, Status
from starter.dispatch import status_text
from starter.report import format_duration

T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (-2.0, "0ms"),
        (0.0, "0ms"),
        (0.35, "350ms"),
        (0.9996, "999ms"),  # truncated: never rounded up to a second not yet passed
        (4.9, "4s"),
        (59.99, "59s"),
        (60.0, "1m"),
        (64.7, "1m 4s"),
        (42 * 60 + 10, "42m 10s"),
        (3600.0, "1h"),
        (3900.0 + 59, "1h 5m"),
        (51 * 3600.0 + 59 * 60, "2d 3h"),
        (2 * 86400.0, "2d"),
    ],
)
def test_human_truncates_to_at_most_two_units(seconds: float, shown: str) -> None:
    assert human(seconds) == shown


def _state(open_for: timedelta, resolved: bool) -> IncidentState:
    return IncidentState(
        incident_id=7,
        title="Checkout latency",
        severity=Severity.SEV2,
        stage=Stage.MITIGATED,
        status=Status.RESOLVED if resolved else Status.OPEN,
        declared_at=T0,
        resolved_at=T0 + open_for if resolved else None,
    )


def _result(span: timedelta) -> IncidentResult:
    return IncidentResult(
        incident_id=7,
        title="Checkout latency",
        severity=Severity.SEV2,
        final_stage=Stage.MITIGATED,
        ever_mitigated=True,
        summary="",
        timeline=[],
        declared_at=T0,
        resolved_at=T0 + span,
        stage_reached={"identified": T0 + span, "mitigated": T0 + span},
    )


def _view() -> IncidentView:
    return _state(timedelta(0), resolved=True).view()


@pytest.mark.parametrize(("span", "shown"), [(4.6, "4s"), (64.9, "1m 4s"), (3959.5, "1h 5m")])
def test_the_same_interval_reads_the_same_everywhere(span: float, shown: str) -> None:
    interval = timedelta(seconds=span)
    assert f"Open for: {shown} " in status_text(_state(interval, resolved=False), now=T0 + interval)
    assert f"Lasted: {shown} " in status_text(_state(interval, resolved=True), now=T0 + 10 * interval)
    assert f"Resolved {shown}" in summary_text(_result(interval), _view())
    assert f"| Resolved | {shown} |" in timeline_markdown(_result(interval), _view())
    assert format_duration(span) == shown


@pytest.mark.parametrize(("seconds", "shown"), [(59.5, "59s"), (61.0, "1m")])
def test_an_incident_open_about_a_minute_is_not_open_for_zero_minutes(seconds: float, shown: str) -> None:
    now = T0 + timedelta(seconds=seconds)
    text = status_text(_state(timedelta(seconds=seconds), resolved=False), now=now)
    assert f"Open for: {shown} " in text and "0m" not in text
