"""What the workflows tell operators: log lines, the Temporal UI's "current details", one metric.

All three are replay-safe and add nothing to history: `workflow.logger` skips logging while replaying,
`set_current_details` only sets what the `__temporal_workflow_metadata` query returns, and the workflow
metric meter records nothing while replaying.
"""

from __future__ import annotations

import logging
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.models import DirectoryState, IncidentState
    from domain.vocab import Severity
    from workflows import details

INCIDENTS_RESOLVED = "warroom_incidents_resolved"
# Timeline kinds -> what the log line says.
EVENTS = {
    "declared": "incident declared",
    "channel": "channel created",
    "stage": "stage changed",
    "update": "status update",
    "severity": "severity changed",
    "commander": "commander assigned",
    "broadcast": "broadcast channels changed",
    "resolved": "incident resolved",
    "reaction": "reaction broadcast",
    "alert": "alerts received",
    "problem": "problem",
}


def log(s: IncidentState, message: str, level: int = logging.INFO, **fields: Any) -> None:
    """A line about this incident; the SDK adds its workflow and run IDs."""
    extra = {
        "incident_id": s.incident_id,
        "stage": s.stage.value,
        "severity": s.severity.value,
        "status": s.status.value,
        **fields,
    }
    workflow.logger.log(level, message, extra=extra)


def log_event(s: IncidentState, kind: str, text: str) -> None:
    """One line per timeline event; only a problem's text is logged (the rest is what people typed)."""
    if kind == "problem":
        log(s, EVENTS[kind], logging.WARNING, problem=text)
    else:
        log(s, EVENTS.get(kind, kind), kind=kind)


def count_resolved(severity: Severity) -> None:
    workflow.metric_meter().create_counter(
        INCIDENTS_RESOLVED, "Incidents resolved, by severity at the time."
    ).add(1, {"severity": severity.value})


def show_incident(s: IncidentState) -> None:
    workflow.set_current_details(details.incident_details(s, workflow.now()))


def show_directory(state: DirectoryState) -> None:
    workflow.set_current_details(details.directory_details(state))
