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
    from domain.vocab import Severity, Status, incident_label

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
    workflow.set_current_details(incident_details(s))


def incident_details(s: IncidentState) -> str:
    """The incident at a glance, as Temporal UI markdown (Slack references in code spans)."""
    stage = "Resolved" if s.status is Status.RESOLVED else s.stage.label
    lines = [f"**{incident_label(s.incident_id)}**: {s.severity.label}, {stage}, {s.status.value}"]
    if s.channel_id:
        lines.append(f"- Channel: #{s.channel_name or s.channel_id} (`<#{s.channel_id}>`)")
    else:
        lines.append("- Channel: not created yet")
    lines.append(f"- Commander: {f'`<@{s.commander}>`' if s.commander else 'none yet'}")
    active = [b for b in s.broadcasts if b.active]
    reached = ", ".join(f"`<#{b.channel_id}>`" for b in active if b.error is None) or "none"
    failing = ", ".join(f"`<#{b.channel_id}>` ({b.error})" for b in active if b.error is not None)
    lines.append(f"- Broadcast to: {reached}" + (f"; cannot post to {failing}" if failing else ""))
    lines.append(f"- Updates posted: {s.updates_posted}")
    if s.status is Status.RESOLVED and not s.ever_mitigated:
        lines.append("- Never marked Mitigated")
    return "\n".join(lines)


def show_directory(state: DirectoryState) -> None:
    workflow.set_current_details(
        "\n".join(
            [
                "**warroom directory**",
                f"- Incidents declared: {state.next_id - 1}",
                f"- Incidents closed: {state.closed}",
                f"- Incident channels: {len(state.channels)}",
                f"- Open alert keys: {len(state.open_keys)}",
            ]
        )
    )
