"""The timeline afterwards as files: Markdown for people, JSON for tools. Pure functions over the result.

JSON shape (`version` 1; later versions only add fields). Times are UTC ISO 8601 with a `Z`; user fields are
Slack user IDs; absent values are `null`, never missing keys:

    {
      "version": 1,
      "incident": {
        "id": 7, "label": "INC-7", "title": "...", "severity": "sev2", "severity_label": "SEV2",
        "status": "resolved", "final_stage": "mitigated", "ever_mitigated": true, "private": false,
        "source": "slack", "summary": "...", "declared_at": "...Z", "declared_by": "U…",
        "resolved_at": "...Z",
        "commander": "U…", "roles": {"scribe": "U…"}, "stage_reached": {"identified": "...Z"},
        "channel_id": "C…", "channel_name": "inc-7-…",
        "call": {"provider": "zoom", "join_url": "https://…", "meeting_id": "…"}
      },
      "durations_seconds": {"to_identified": 720.0, "to_mitigated": null, "to_resolved": 3900.0},
      "events": [{"at": "...Z", "kind": "reaction", "actor": "U…", "text": "...", "link": "https://…"}],
      "followups": [
        {"id": 1, "text": "...", "author": "U…", "at": "...Z", "link": null, "state": "ticketed",
         "ticket": {"key": "OPS-42", "url": "https://…", "summary": "..."}}
      ],
      "tickets": [{"key": "OPS-42", "url": "https://…", "summary": "..."}]
    }

Text quoted from Slack messages (a reaction's message, a debrief reply, a follow-up made by reaction) is
converted from Slack's mrkdwn: plain text in JSON (`&amp;` -> `&`, `<url|label>` -> `label (url)`,
`<@U1>` -> `@U1`), text and links in Markdown (`[label](url)`). Everything else is the text as typed.

Events keep the order the incident recorded them in. `durations_seconds` is `domain.timeline.durations`:
from declare to the first Identified (or anything later), the first Mitigated, and the resolve.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from activities import slack_mrkdwn
from activities.slack_render import headline
from domain.durations import human as human_duration
from domain.models import Followup, IncidentResult, IncidentView, TicketInfo, TimelineEvent
from domain.timeline import Durations, durations
from domain.vocab import Status, incident_label

JSON_VERSION = 1
NEVER = "never"
MILESTONES = (("to_identified", "Identified"), ("to_mitigated", "Mitigated"), ("to_resolved", "Resolved"))
_LINK_LABELS = {"reaction": "source message", "call": "call", "ticket": "ticket", "followup": "message"}
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|])")


def file_names(incident_id: int) -> tuple[str, str]:
    """The Markdown and JSON file names: `inc-7-timeline.md`, `inc-7-timeline.json`."""
    stem = f"inc-{incident_id}-timeline"
    return f"{stem}.md", f"{stem}.json"


# --- shared ------------------------------------------------------------------------------------------------


def iso(at: datetime | None) -> str | None:
    """UTC ISO 8601 with a `Z` (a naive time is taken as UTC)."""
    if at is None:
        return None
    utc = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return utc.isoformat().replace("+00:00", "Z")


def human(span: timedelta | None) -> str:
    """`domain.durations.human` (`1h 5m`, `4s`, `350ms`); `never` for None."""
    return NEVER if span is None else human_duration(span.total_seconds())


def _status(result: IncidentResult, view: IncidentView) -> Status:
    return Status.RESOLVED if result.resolved_at is not None else view.status


# --- JSON --------------------------------------------------------------------------------------------------


def _ticket(t: TicketInfo) -> dict[str, Any]:
    return {"key": t.key, "url": t.url, "summary": t.summary}


def plain(text: str, quoted: bool) -> str:
    """Text as typed: Slack's mrkdwn (`quoted`) converted to plain text, anything else unchanged."""
    return slack_mrkdwn.to_plain(text) if quoted else text


def _event(e: TimelineEvent) -> dict[str, Any]:
    text = plain(e.text, e.quoted)
    return {"at": iso(e.at), "kind": e.kind, "actor": e.actor, "text": text, "link": e.link}


def _followup(f: Followup) -> dict[str, Any]:
    return {
        "id": f.followup_id,
        "text": plain(f.text, f.quoted),
        "author": f.author,
        "at": iso(f.at),
        "link": f.link,
        "state": f.state,
        "ticket": _ticket(f.ticket) if f.ticket is not None else None,
    }


def timeline_document(result: IncidentResult, view: IncidentView) -> dict[str, Any]:
    """The JSON export as a dict (see the module docstring for its shape)."""
    call = view.call
    incident = {
        "id": result.incident_id,
        "label": incident_label(result.incident_id),
        "title": result.title,
        "severity": result.severity.value,
        "severity_label": view.severity_labels.get(result.severity.value) or result.severity.label,
        "status": _status(result, view).value,
        "final_stage": result.final_stage.value,
        "ever_mitigated": result.ever_mitigated,
        "private": result.private,
        "source": result.source,
        "summary": result.summary,
        "declared_at": iso(result.declared_at),
        "declared_by": view.declared_by,
        "resolved_at": iso(result.resolved_at),
        "commander": result.commander,
        "roles": dict(result.roles),
        "stage_reached": {stage: iso(at) for stage, at in result.stage_reached.items()},
        "channel_id": view.channel_id,
        "channel_name": view.channel_name,
        "call": (
            {"provider": call.provider, "join_url": call.join_url, "meeting_id": call.meeting_id}
            if call is not None
            else None
        ),
    }
    return {
        "version": JSON_VERSION,
        "incident": incident,
        "durations_seconds": durations(result).as_seconds(),
        "events": [_event(e) for e in result.timeline],
        "followups": [_followup(f) for f in result.followups],
        "tickets": [_ticket(t) for t in result.tickets],
    }


def timeline_json(result: IncidentResult, view: IncidentView) -> str:
    """The JSON export: indented, UTF-8 text, newline-terminated."""
    return json.dumps(timeline_document(result, view), indent=2, ensure_ascii=False) + "\n"


# --- Markdown ----------------------------------------------------------------------------------------------


def md(text: str) -> str:
    """Literal text in Markdown (and in a table cell): no emphasis, links, HTML or column breaks."""
    escaped = _MD_SPECIAL.sub(r"\\\1", text)
    return escaped.replace("\r\n", "\n").replace("\n", "<br>")


def md_link(url: str | None, label: str) -> str:
    """A Markdown link for http(s) URLs; anything else is shown as escaped text, never as a link."""
    if not url:
        return ""
    if url.startswith(("https://", "http://")) and not re.search(r"[\s()<>|\\]", url):
        return f"[{md(label)}]({url})"
    return md(url)


def md_text(text: str, quoted: bool) -> str:
    """Text in Markdown: Slack's mrkdwn (`quoted`) with its links as Markdown links, anything else literal."""
    if not quoted:
        return md(text)
    return "".join(
        md(p.text) if p.url is None else _md_quoted_link(p.url, p.text) for p in slack_mrkdwn.parts(text)
    )


def _md_quoted_link(url: str, label: str) -> str:
    linked = md_link(url, label)
    if linked.startswith("["):
        return linked
    return md(label) if label == url else f"{md(label)} ({linked})"


def _who(user_id: str | None) -> str:
    return f"`{user_id}`" if user_id else "—"


def _ticket_md(t: TicketInfo) -> str:
    return md_link(t.url, t.key) or md(t.key)


def _durations_md(result: IncidentResult, spans: Durations) -> list[str]:
    lines = ["| Milestone | After declare | At (UTC) |", "|---|---|---|"]
    for name, label in MILESTONES:
        span: timedelta | None = getattr(spans, name)
        at = iso(result.declared_at + span) if span is not None else None
        lines.append(f"| {label} | {human(span)} | {at or '—'} |")
    return lines


def _events_md(events: list[TimelineEvent]) -> list[str]:
    lines = ["| Time (UTC) | Actor | Kind | Text | Source |", "|---|---|---|---|---|"]
    for e in events:
        source = md_link(e.link, _LINK_LABELS.get(e.kind, "link"))
        text = md_text(e.text, e.quoted)
        lines.append(f"| {iso(e.at)} | {_who(e.actor)} | {md(e.kind)} | {text} | {source} |")
    return lines


def _followup_md(f: Followup) -> str:
    state = f"ticketed as {_ticket_md(f.ticket)}" if f.ticket is not None else "open"
    by = f" by {_who(f.author)}" if f.author else ""
    link = f" ({md_link(f.link, 'message')})" if f.link else ""
    return f"- #{f.followup_id} **{state}**: {md_text(f.text, f.quoted)}{by} at {iso(f.at)}{link}"


def timeline_markdown(result: IncidentResult, view: IncidentView) -> str:
    """The Markdown export: facts, a durations table, an events table, follow-ups and tickets."""
    label = incident_label(result.incident_id)
    status = _status(result, view)
    state = "Resolved" if status is Status.RESOLVED else "Open"
    declared_by = f" by {_who(view.declared_by)}" if view.declared_by else ""
    facts = [
        ("Severity", md(view.severity_labels.get(result.severity.value) or result.severity.label)),
        ("Status", f"{state} (final stage: {result.final_stage.label})"),
        ("Declared", f"{iso(result.declared_at)}{declared_by}"),
        ("Resolved", iso(result.resolved_at) or NEVER),
        ("Commander", _who(result.commander)),
    ]
    if result.roles:
        facts.append(("Roles", ", ".join(f"{md(r)} {_who(u)}" for r, u in sorted(result.roles.items()))))
    if view.channel_id:
        facts.append(("Channel", f"#{md(view.channel_name or '')} (`{view.channel_id}`)"))
    if view.call is not None:
        facts.append(("Call", md_link(view.call.join_url, view.call.label)))
    if result.private:
        facts.append(("Private", "yes"))
    if result.summary:
        facts.append(("Summary", md(result.summary)))
    lines = [f"# {label}: {md(result.title)}", ""]
    lines += [f"- **{name}:** {value}" for name, value in facts]
    lines += ["", "## Durations", "", *_durations_md(result, durations(result))]
    lines += ["", f"## Events ({len(result.timeline)})", "", *_events_md(result.timeline)]
    lines += ["", f"## Follow-ups ({len(result.followups)})", ""]
    lines += [_followup_md(f) for f in result.followups] or ["None."]
    lines += ["", f"## Tickets ({len(result.tickets)})", ""]
    lines += [f"- {_ticket_md(t)}: {md(t.summary)}" for t in result.tickets] or ["None."]
    return "\n".join(lines) + "\n"


# --- the Slack message the files are attached to -----------------------------------------------------------


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def summary_text(result: IncidentResult, view: IncidentView) -> str:
    """The short mrkdwn message in the incident channel; the files go in its thread."""
    spans = durations(result)
    times = " · ".join(f"{label} {human(getattr(spans, name))}" for name, label in MILESTONES)
    open_followups = sum(f.ticket is None for f in result.followups)
    counts = ", ".join(
        [
            _count(len(result.timeline), "event"),
            f"{_count(len(result.followups), 'follow-up')} ({open_followups} open)",
            _count(len(result.tickets), "ticket"),
        ]
    )
    md_name, json_name = file_names(result.incident_id)
    return (
        f":spiral_note_pad: *Timeline of {headline(view)}*\n"
        f"Time from declare: {times}\n"
        f"{counts}. The full timeline is attached in this thread ({md_name}, {json_name})."
    )
