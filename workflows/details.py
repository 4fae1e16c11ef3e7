"""What the Temporal UI shows about each warroom workflow: a one-line summary and fixed details set when the
workflow starts (`static_summary` / `static_details`), and the "current details" the workflow keeps up to date
(`workflow.set_current_details`).

Pure functions over the workflows' inputs and state, so they run the same in a starter, in workflow code and
in tests. Output is Markdown, which the UI renders. People are shown by the name Slack gave with a request
(`IncidentState.people`: `@alice`), else by their Slack user ID (`@U0123ABCD`); quoted Slack text shows the
name its mention carried (`<@U1|ada>` -> `@ada`). Slack's own syntax (`<@U1>`, `<#C1>`, `&lt;`) never reaches
the UI as such.
"""

from __future__ import annotations

import re
from datetime import datetime

from activities import slack_mrkdwn
from domain.durations import human
from domain.models import (
    CALL_LABELS,
    Declaration,
    DirectoryState,
    IncidentState,
    ReminderInput,
    ReminderStatus,
)
from domain.usage import display_name
from domain.vocab import Severity, Status, incident_label

SUMMARY_LIMIT = 200  # the UI shows the summary on one line; keep it short
TEXT_LIMIT = 200  # a status update, resolve summary or reminder text, as quoted in the details
SOURCES = {
    "slack": "Slack",
    "cli": "the warroom CLI",
    "api": "the Python API",
    "alertmanager": "an Alertmanager alert group",
    "grafana": "a Grafana alert",
    "generic": "a JSON alert",
    "pagerduty": "PagerDuty",
}
_MARKDOWN = re.compile(r"([\\`*_\[\]|~])")


# --- pieces -------------------------------------------------------------------------------------------------


def clip(text: str, limit: int) -> str:
    """One line of at most `limit` characters, ending in `…` when shortened."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def md(text: str, limit: int = TEXT_LIMIT, quoted: bool = False) -> str:
    """Text for the UI's Markdown: Slack's syntax made readable (`quoted`: it is Slack text, with `<@U1>` and
    `&amp;`), one line, Markdown and HTML characters escaped so what people typed shows as typed."""
    plain = slack_mrkdwn.to_plain(text) if quoted else text
    line = clip(plain, limit)
    line = line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN.sub(r"\\\1", line)


NAME_LIMIT = 80


def person(user_id: str | None, people: dict[str, str] | None = None) -> str:
    """`@alice` when `people` knows the user's name (escaped like any text), else `@U0ALICE`."""
    if not user_id:
        return "nobody"
    name = (people or {}).get(user_id)
    return f"@{md(name, NAME_LIMIT)}" if name else f"@{user_id}"


def utc(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def _time(at: datetime, now: datetime) -> str:
    """`11:40 UTC` on the same day as `now`, else the date too."""
    return at.strftime("%H:%M UTC") if at.date() == now.date() else utc(at)


def severity_label(severity: Severity, labels: dict[str, str]) -> str:
    return labels.get(severity.value) or severity.label


# --- incidents ----------------------------------------------------------------------------------------------


def incident_summary(incident_id: int, severity: str, title: str, private: bool = False) -> str:
    """`INC-4 · SEV2 · Checkout latency above 2s`: what the incident is, on one line."""
    tail = " (private)" if private else ""
    return clip(f"{incident_label(incident_id)} · {severity} · {title}", SUMMARY_LIMIT - len(tail)) + tail


def declaration_summary(d: Declaration) -> str:
    return incident_summary(d.incident_id, severity_label(d.severity, d.severity_labels), d.title, d.private)


def declaration_details(d: Declaration) -> str:
    """The incident's fixed details: what it is, where it came from, where to act on it."""
    label = incident_label(d.incident_id)
    name = display_name(d.declared_by_name)  # as the incident's state keeps it
    names = {d.declared_by: name} if d.declared_by and name else {}
    who = f" by {person(d.declared_by, names)}" if d.declared_by else ""
    source = SOURCES.get(d.source, d.source)
    private = " It is **private**: broadcast channels only see that it exists." if d.private else ""
    storm = " It is the **alert storm** incident: alert groups beyond the cap join it." if d.storm else ""
    sev = severity_label(d.severity, d.severity_labels)
    slash = d.slash_command
    return (
        f"**{label}**: {md(d.title)}\n\n"
        f"A warroom incident, declared{who} from {source} at {sev}.{private}{storm}"
        f" Responders work in its Slack channel (`{slash} status`); from a shell: `warroom status {label}`."
    )


def stage_and_status(s: IncidentState) -> str:
    """`Identified`, or `Resolved (was Mitigated)` / `Resolved (was Identified, never Mitigated)`."""
    if s.status is not Status.RESOLVED:
        return s.stage.label
    never = "" if s.ever_mitigated else ", never Mitigated"
    return f"Resolved (was {s.stage.label}{never})"


def _commander(s: IncidentState) -> str:
    commander = person(s.commander, s.people)
    if s.status is Status.RESOLVED:
        return f"was {commander}" if s.commander else "no commander was named"
    return commander if s.commander else f"none named yet (declared by {person(s.declared_by, s.people)})"


def _channel(s: IncidentState) -> str:
    if s.channel_name:
        return f"#{md(s.channel_name)}"
    if s.channel_id:
        return f"#{s.channel_id}"
    return f"none: {md(s.channel_error)}" if s.channel_error else "not created yet"


def _last_update(s: IncidentState, now: datetime) -> str:
    at = s.last_update_at
    if at is None:
        return "none yet"
    after = f"{human((at - s.declared_at).total_seconds())} after declare"
    latest = next(
        (e for e in reversed(s.timeline) if e.at == at and e.kind in ("update", "stage", "reaction")), None
    )
    text = f": {md(latest.text, quoted=latest.quoted)}" if latest is not None else ""
    return f"{_time(at, now)} ({after}){text}"


def incident_details(s: IncidentState, now: datetime) -> str:
    """The incident at a glance, as of `now` (the workflow's time at its last change)."""
    sev = severity_label(s.severity, s.severity_labels)
    lines = [
        f"**{incident_label(s.incident_id)} · {sev} · {stage_and_status(s)}** {md(s.title, 120)}",
        "",
        f"- **Commander:** {_commander(s)}",
    ]
    roles = ", ".join(
        f"{role} {person(user, s.people)}" for role, user in sorted(s.roles.items()) if role != "commander"
    )
    if roles:
        lines.append(f"- **Roles:** {roles}")
    lines.append(f"- **Channel:** {_channel(s)}")
    if s.call is not None:
        lines.append(f"- **Call:** [{CALL_LABELS.get(s.call.provider, s.call.provider)}]({s.call.join_url})")
    lines.append(f"- **Last status update:** {_last_update(s, now)}")
    declared = f"- **Declared:** {_time(s.declared_at, now)}"
    declared += (
        f" by {person(s.declared_by, s.people)}"
        if s.declared_by
        else f" from {SOURCES.get(s.source, s.source)}"
    )
    if s.status is Status.RESOLVED and s.resolved_at is not None:
        lasted = human((s.resolved_at - s.declared_at).total_seconds())
        lines.append(declared)
        lines.append(
            f"- **Resolved:** {_time(s.resolved_at, now)}, after {lasted}: {md(s.summary or 'resolved')}"
        )
    else:
        lines.append(
            f"{declared}; open {human((now - s.declared_at).total_seconds())} as of {_time(now, now)}"
        )
    active = [b for b in s.broadcasts if b.active]
    reached = ", ".join(f"#{b.channel_id}" for b in active if b.error is None) or "none"
    failing = ", ".join(f"#{b.channel_id} ({md(b.error, 60)})" for b in active if b.error is not None)
    lines.append(f"- **Broadcast to:** {reached}" + (f"; cannot post to {failing}" if failing else ""))
    tickets = ", ".join(f"[{md(t.key, 40)}]({t.url})" for t in s.tickets)
    lines.append(f"- **Updates posted:** {s.updates_posted}" + (f"; **Jira:** {tickets}" if tickets else ""))
    return "\n".join(lines)


# --- the directory ------------------------------------------------------------------------------------------

DIRECTORY_SUMMARY = (
    "warroom's incident directory: allocates incident numbers and dedups alert groups; always running"
)


def directory_details_static(task_queue: str) -> str:
    return (
        f"One per warroom deployment (task queue `{task_queue}`). Every declare takes its incident number"
        " here; an alert group asks it whether an open incident already has its key; commands find their"
        " incident by channel here. It runs for ever (continuing as new now and then) and holds only what"
        " open incidents need. **Do not terminate or reset it**: declares and alerts depend on it. Hide it"
        " from the list with `WorkflowType = 'IncidentWorkflow'`."
    )


def directory_details(state: DirectoryState) -> str:
    storm = state.storm_incident
    lines = [
        "**warroom directory**",
        "",
        f"- Incidents declared: {state.next_id - 1} (next: {incident_label(state.next_id)})",
        f"- Incidents closed: {state.closed}",
        f"- Incident channels: {len(state.channels)}",
        f"- Open alert keys: {len(state.open_keys)}",
    ]
    if storm is not None:
        lines.append(f"- Alert storm: new alert groups join {incident_label(storm)}")
    return "\n".join(lines)


# --- reminders ----------------------------------------------------------------------------------------------


def reminder_summary(r: ReminderInput) -> str:
    return clip(
        f"Reminder {r.reminder_id} · {incident_label(r.incident_id)} · DM {person(r.user_id)} at {r.local}",
        SUMMARY_LIMIT,
    )


def reminder_details_static(r: ReminderInput, slash_command: str = "/incident") -> str:
    return (
        f"A warroom reminder set in {incident_label(r.incident_id)}: it DMs {person(r.user_id)} at {r.local}"
        f" ({utc(r.due)}): {md(r.text)}\n\nIt outlives the incident's resolve. Its owner cancels it with"
        f" `{slash_command} remind cancel {r.reminder_id}`."
    )


def reminder_details(r: ReminderInput, status: ReminderStatus) -> str:
    said = {
        "pending": f"pending: due at {r.local} ({utc(r.due)})",
        "sending": "due: the DM is being sent",
        "delivered": f"delivered to {person(r.user_id)}",
        "cancelled": "cancelled",
        "failed": "failed: Slack did not take the DM within a day (see the worker's log)",
    }
    return f"**Reminder {r.reminder_id}** ({incident_label(r.incident_id)}): {said[status]}"
