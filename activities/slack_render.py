"""Slack text and Block Kit for warroom's messages. Pure functions over domain models.

All user-supplied text goes through `safe()` so it cannot ping `@channel`/`@here`, mention user groups or
disguise a link; user and channel mentions that Slack itself escaped (`<@U123>`, `<#C123>`) are kept.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from domain.alerts import AlertGroup
from domain.models import Announcement, CallInfo, IncidentView, ReminderInput, TicketInfo, TimelineEvent
from domain.vocab import Stage, Status, incident_label

_KEEP = re.compile(r"<([@#][UWCG][A-Z0-9]+)(?:\|[^<>]*)?>")
_STAGE_EMOJI = {
    Stage.INVESTIGATING: ":mag:",
    Stage.IDENTIFIED: ":dart:",
    Stage.MITIGATED: ":adhesive_bandage:",
}
_KIND_EMOJI = {
    "update": ":mega:",
    "reaction": ":mega:",
    "stage": ":arrows_counterclockwise:",
    "severity": ":warning:",
    "commander": ":bust_in_silhouette:",
    "resolved": ":white_check_mark:",
    "alert": ":rotating_light:",
    "call": ":telephone_receiver:",
    "ticket": ":ticket:",
}
ALERTS_IN_OVERVIEW = 5
PURPOSE_LIMIT = 250


def safe(text: str) -> str:
    """Escapes user text for mrkdwn, keeping only plain user/channel mentions."""
    kept: list[str] = []

    def stash(m: re.Match[str]) -> str:
        kept.append(f"<{m.group(1)}>")
        return f"\x00{len(kept) - 1}\x00"

    stashed = _KEEP.sub(stash, text.replace("\x00", ""))
    escaped = stashed.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], escaped)


def user(user_id: str | None, default: str = "unassigned") -> str:
    return f"<@{user_id}>" if user_id else default


def duration(start: datetime, end: datetime) -> str:
    minutes = max(int((end - start).total_seconds() // 60), 0)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{mins}m"]
    return " ".join(p for p in parts if p)


def headline(view: IncidentView) -> str:
    return f"{incident_label(view.incident_id)}: {safe(view.title)}"


def overview_text(view: IncidentView, *, in_broadcast: bool = False) -> str:
    """Plain-text fallback (notifications, screen readers) of the overview."""
    if in_broadcast and view.private:
        return private_overview_text(view)
    state = "Resolved" if view.status is Status.RESOLVED else view.stage.label
    return f"{headline(view)} — {view.severity_label}, {state}"


def private_overview_text(view: IncidentView) -> str:
    """What a broadcast channel learns of a private incident: that it exists and who leads it."""
    label = incident_label(view.incident_id)
    if view.status is Status.RESOLVED:
        return f":lock: A private incident ({label}) has been resolved."
    return f":lock: A private incident ({label}) is in progress, led by {user(view.commander)}."


def overview_blocks(view: IncidentView, *, in_broadcast: bool) -> list[dict[str, Any]]:
    if in_broadcast and view.private:
        return [{"type": "section", "text": {"type": "mrkdwn", "text": private_overview_text(view)}}]
    resolved = view.status is Status.RESOLVED
    icon = ":white_check_mark:" if resolved else ":rotating_light:"
    stage = "*Resolved*" if resolved else f"{_STAGE_EMOJI[view.stage]} *{view.stage.label}*"
    fields = [
        f"*Severity*\n{view.severity_label}",
        f"*Stage*\n{stage}",
        f"*Commander*\n{user(view.commander)}",
        f"*Channel*\n<#{view.channel_id}>" if view.channel_id else "*Channel*\ncreating…",
    ]
    if view.call is not None:
        fields.append(f"*Call*\n{call_link(view.call)}")
    fields += [f"*{safe(role.capitalize())}*\n{user(holder)}" for role, holder in sorted(view.roles.items())]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{icon} *{headline(view)}*"}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
    ]
    if view.alert is not None:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": alert_context(view.alert)}})
    if resolved and view.summary:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*Summary*\n{safe(view.summary)}"}}
        )
    note = "Updates are threaded under this message." if in_broadcast else "Declared"
    by = f" by {user(view.declared_by)}" if view.declared_by and not in_broadcast else ""
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"{note}{by}"}]})
    return blocks


def _link(url: str, label: str) -> str:
    """A link only for http(s) URLs; anything else is shown as text, never as a disguised link."""
    if url.startswith(("https://", "http://")) and not any(c in url for c in "<>| "):
        return f"<{url}|{label}>"
    return safe(label)


def call_link(call: CallInfo) -> str:
    return _link(call.join_url, f"Join {call.label} call")


def ticket_link(ticket: TicketInfo) -> str:
    return _link(ticket.url, ticket.key)


def alert_context(group: AlertGroup) -> str:
    """The alerts behind an incident: names, summaries, labels and links back to the source."""
    lines = [f"*Alerts* from {safe(group.source)}"]
    if group.description:
        lines.append(safe(group.description[:500]))
    for a in group.alerts[:ALERTS_IN_OVERVIEW]:
        labels = " ".join(f"`{safe(k)}={safe(v)}`" for k, v in a.labels.items() if k != "alertname")
        summary = f" — {safe(a.summary)}" if a.summary else ""
        source = f" ({_link(a.url, 'source')})" if a.url else ""
        lines.append(f"• *{safe(a.name)}*{summary}{source} {labels}".rstrip())
    hidden = len(group.alerts) - ALERTS_IN_OVERVIEW + group.truncated
    if hidden > 0:
        lines.append(f"… and {hidden} more")
    if group.external_url:
        lines.append(_link(group.external_url, f"Open in {group.source}"))
    return "\n".join(lines)[:2900]


def channel_purpose(view: IncidentView) -> str:
    state = "Resolved" if view.status is Status.RESOLVED else view.stage.label
    roles = "".join(f" | {role}: {user(holder)}" for role, holder in sorted(view.roles.items()))
    purpose = (
        f"{incident_label(view.incident_id)} {view.title} | {view.severity_label} | {state} "
        f"| IC: {user(view.commander)}{roles}"
    )
    if view.call is not None:  # the link goes first, so a long title cannot push it out of the limit
        call = f"{view.call.label}: {view.call.join_url} | "
        purpose = call + purpose if len(call) < PURPOSE_LIMIT else purpose
    return purpose if len(purpose) <= PURPOSE_LIMIT else purpose[: PURPOSE_LIMIT - 1] + "…"


def announcement_text(view: IncidentView, a: Announcement, *, in_broadcast: bool) -> str:
    """One status update, as posted in the incident channel or as a reply in a broadcast thread."""
    icon = _KIND_EMOJI[a.kind]
    prefix = f"*{incident_label(view.incident_id)}* " if in_broadcast else ""
    by = f" — {user(a.actor)}" if a.actor else ""
    body = safe(a.text)
    if a.kind == "stage" and a.stage is not None:
        head = f"Stage → *{a.stage.label}*"
        return f"{icon} {prefix}{head}{': ' + body if body else ''}{by}"
    if a.kind == "reaction":
        source = f" (<{a.link}|source>)" if a.link else ""
        quoted = "\n".join(f"> {line}" for line in body.splitlines()) or "> (no text)"
        return f"{icon} {prefix}Update{by}{source}\n{quoted}"
    if a.kind in ("call", "ticket") and a.link:
        return f"{icon} {prefix}{_link(a.link, body)}{by}"
    if a.kind == "resolved":
        return f"{icon} {prefix}*Resolved*{': ' + body if body else ''}{by}"
    return f"{icon} {prefix}{body}{by}"


def timeline_text(events: list[TimelineEvent], incident_id: int) -> str:
    lines = [f"*Timeline of {incident_label(incident_id)}*"]
    for e in events:
        by = f" ({user(e.actor)})" if e.actor else ""
        lines.append(f"• `{e.at:%Y-%m-%d %H:%M:%S}Z` *{e.kind}*{by}: {safe(e.text)}")
    return "\n".join(lines)


def reminder_text(r: ReminderInput) -> str:
    """The DM a reminder sends: its text and where it was set."""
    where = f" in <#{r.channel_id}>" if r.channel_id else ""
    return f":alarm_clock: Reminder from *{incident_label(r.incident_id)}*{where}: {safe(r.text)}"


NUDGE_ACTION = "warroom_nudge_update"  # the nudge's button: opens the status update form


def role_text(view: IncidentView, role: str, description: str) -> str:
    where = f" in <#{view.channel_id}>" if view.channel_id else ""
    about = f"\n> {safe(description)}" if description else ""
    return f":bust_in_silhouette: You are now the *{safe(role)}* of *{headline(view)}*{where}.{about}"


def nudge_message(view: IncidentView) -> tuple[str, list[dict[str, Any]]]:
    """The nudge DM: how long since the last update, and a button that opens the update form."""
    where = f" in <#{view.channel_id}>" if view.channel_id else ""
    text = (
        f":hourglass: *{headline(view)}*{where} has had no status update for a while. "
        "Stakeholders are waiting: post one now."
    )
    button = {
        "type": "button",
        "action_id": NUDGE_ACTION,
        "text": {"type": "plain_text", "text": "Post an update"},
        "value": str(view.incident_id),
        "style": "primary",
    }
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "actions", "elements": [button]},
    ]
    return text, blocks
