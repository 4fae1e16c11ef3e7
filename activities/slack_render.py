"""Slack text and Block Kit for warroom's messages. Pure functions over domain models.

Text is escaped exactly once. Raw text (slash-command text, form input, alert payloads, the CLI) goes
through `safe()` so it cannot ping `@channel`/`@here`, mention user groups or disguise a link; user and
channel mentions that Slack itself escaped (`<@U123>`, `<#C123>`) are kept. Text Slack delivered (a quoted
message, a debrief reply; `quoted` on the model) is already mrkdwn and is shown as it is, with broadcast
mentions defused (`slack_mrkdwn.defuse`). Everything rendered fits Slack's limits (`slack_limits`).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from activities import slack_limits as limits
from activities.slack_mrkdwn import defuse, to_plain
from domain.alerts import AlertGroup
from domain.models import (
    Announcement,
    CallInfo,
    Followup,
    IncidentView,
    ReminderInput,
    TicketInfo,
    TimelineEvent,
)
from domain.storm import ShownGroup, StormView
from domain.vocab import Stage, Status, incident_label

_KEEP = re.compile(r"<([@#][UWCG][A-Z0-9]+)(?:\|[^<>]*)?>")
# `@here` as Slack escapes it in a command's text: shown as typed, as plain text that pings nobody.
_SPECIAL = re.compile(r"<!(here|channel|everyone)(?:\|[^<>]*)?>")
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
    """Escapes user text for mrkdwn, keeping only plain user/channel mentions; `<!here>` (what Slack sends for
    a typed `@here`) reads `@here` and pings nobody."""
    kept: list[str] = []

    def stash(m: re.Match[str]) -> str:
        kept.append(f"<{m.group(1)}>")
        return f"\x00{len(kept) - 1}\x00"

    stashed = _KEEP.sub(stash, _SPECIAL.sub(r"@\1", text.replace("\x00", "")))
    escaped = stashed.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], escaped)


def shown(text: str, quoted: bool) -> str:
    """Text as mrkdwn, escaped exactly once: Slack's own text as it is (broadcast mentions defused), raw
    text through `safe()`."""
    return defuse(text) if quoted else safe(text)


def user(user_id: str | None, default: str = "unassigned") -> str:
    return f"<@{user_id}>" if user_id else default


TITLE_TEXT = 1_000  # titles are at most 150 characters (domain.commands.TITLE_MAX); escaped, at most 750


def headline(view: IncidentView) -> str:
    return f"{incident_label(view.incident_id)}: {limits.shorten(safe(view.title), TITLE_TEXT)}"


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


def _section(text: str, where: str = "") -> dict[str, Any]:
    return {
        "type": "section",
        "text": {"type": "mrkdwn", "text": limits.shorten(text, limits.SECTION_TEXT, where)},
    }


def overview_blocks(view: IncidentView, *, in_broadcast: bool) -> list[dict[str, Any]]:
    """The overview: headline, facts (more than ten spill into further field sections), alerts, summary."""
    if in_broadcast and view.private:
        return [_section(private_overview_text(view))]
    resolved = view.status is Status.RESOLVED
    icon = ":white_check_mark:" if resolved else ":rotating_light:"
    stage = "*Resolved*" if resolved else f"{_STAGE_EMOJI[view.stage]} *{view.stage.label}*"
    fields = [
        f"*Severity*\n{view.severity_label}",
        f"*Stage*\n{stage}",
        f"*Commander*\n{user(view.commander)}",
        f"*Channel*\n{_channel(view)}",
    ]
    if view.call is not None:
        fields.append(f"*Call*\n{call_link(view.call)}")
    fields += [
        f"*{limits.shorten(safe(role.capitalize()), 100)}*\n{user(holder)}"
        for role, holder in sorted(view.roles.items())
    ]
    blocks: list[dict[str, Any]] = [_section(f"{icon} *{headline(view)}*")]
    size = limits.SECTION_FIELDS
    blocks += [
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields[i : i + size]]}
        for i in range(0, len(fields), size)
    ]
    if view.alert is not None:
        blocks.append(_section(alert_context(view.alert)))
    if view.storm is not None:
        blocks.append(_section(storm_digest(view.storm)))
    if resolved and view.summary:
        where = "the *Resolved* update in this thread" if in_broadcast else "the *Resolved* update below"
        blocks.append(_section(f"*Summary*\n{safe(view.summary)}", where))
    note = "Updates are threaded under this message." if in_broadcast else "Declared"
    by = f" by {user(view.declared_by)}" if view.declared_by and not in_broadcast else ""
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"{note}{by}"}]})
    return limits.fit_blocks(blocks)


def _hhmm(at: datetime | None) -> str:
    return at.strftime("%H:%M UTC") if at is not None else "—"


def _storm_line(g: ShownGroup) -> str:
    state = "resolved" if g.status == "resolved" else f"{g.alerts} alert{'s' if g.alerts != 1 else ''}"
    seen = f"{g.notifications} notices, first {_hhmm(g.first_seen)}, last {_hhmm(g.last_seen)}"
    where = f" → {incident_label(g.split_to)}" if g.split_to is not None else ""
    title = limits.shorten(safe(g.title), 150)
    return f"{g.number}. *{title}* ({safe(g.source)}, {g.severity.label}) — {state}, {seen}{where}"


def storm_digest(storm: StormView) -> str:
    """The alert storm incident's digest: one line per group, most recently active first, numbered for
    `/incident split <n>`; the overview is edited in place as notifications arrive."""
    groups = f"{storm.total} alert group{'s' if storm.total != 1 else ''}"
    head = [
        f"*Alert storm*: {groups} ({storm.firing} firing) since {_hhmm(storm.first_seen)},"
        f" latest {_hhmm(storm.last_seen)}. More incidents were declared from alerts than the cap allows, so"
        " new groups join this one; `/incident split <n>` gives a group its own incident."
    ]
    hidden = storm.total - len(storm.shown)
    tail = [f"… and {hidden} more groups, quieter lately"] if hidden > 0 else []
    lines = [_storm_line(g) for g in storm.shown]
    return limits.fit_lines(head, lines, tail, limit=limits.SECTION_TEXT, omitted=lambda n: f"… {n} more")


def _link(url: str, label: str) -> str:
    """A link only for http(s) URLs; anything else is shown as text, never as a disguised link.

    `label` is mrkdwn (escaped already); a mention in it is shown as text, as a link cannot hold one."""
    if url.startswith(("https://", "http://")) and not any(c in url for c in "<>| ") and len(url) < 2000:
        return f"<{url}|{label.replace('<', '&lt;').replace('>', '&gt;')}>"
    return label


def call_link(call: CallInfo) -> str:
    return _link(call.join_url, f"Join {call.label} call")


def ticket_link(ticket: TicketInfo) -> str:
    return _link(ticket.url, safe(ticket.key))


def alert_context(group: AlertGroup) -> str:
    """The alerts behind an incident: names, summaries, labels and links back to the source."""
    lines = [f"*Alerts* from {limits.shorten(safe(group.source), 200)}"]
    if group.description:
        lines.append(limits.shorten(safe(group.description), 500))
    for a in group.alerts[:ALERTS_IN_OVERVIEW]:
        labels = " ".join(f"`{safe(k)}={safe(v)}`" for k, v in a.labels.items() if k != "alertname")
        summary = f" — {safe(a.summary)}" if a.summary else ""
        source = f" ({_link(a.url, 'source')})" if a.url else ""
        lines.append(limits.shorten(f"• *{safe(a.name)}*{summary}{source} {labels}".rstrip(), 500))
    hidden = max(len(group.alerts) - ALERTS_IN_OVERVIEW, 0) + group.truncated
    if hidden > 0:
        lines.append(f"… and {hidden} more")
    open_in = safe(f"Open in {group.source}")
    source_link = [_link(group.external_url, open_in)] if group.external_url else []
    # The source link goes last but is kept: alerts that do not fit are counted, never cut mid-entity.
    return limits.fit_lines(
        lines[:1], lines[1:], source_link, limit=limits.SECTION_TEXT, omitted=lambda n: f"… {n} more lines"
    )


def channel_purpose(view: IncidentView) -> str:
    """`INC-1 | SEV2 | Investigating | IC: @ada | comms: @bo | Zoom: <link> | <title>`: what a responder
    needs at a glance first, the title last and clipped to Slack's 250 characters, so a long title never
    pushes the stage, severity, commander or call out."""
    state = "Resolved" if view.status is Status.RESOLVED else view.stage.label
    roles = "".join(f" | {role}: {user(holder)}" for role, holder in sorted(view.roles.items()))
    head = (
        f"{incident_label(view.incident_id)} | {view.severity_label} | {state} "
        f"| IC: {user(view.commander)}{roles}"
    )
    if view.call is not None:
        call = f" | {view.call.label}: {view.call.join_url}"
        head = head + call if len(head + call) < PURPOSE_LIMIT - 10 else head
    room = PURPOSE_LIMIT - len(head) - len(" | ")
    if room < 10:  # roles alone fill it: no title rather than a stub of one
        return head if len(head) <= PURPOSE_LIMIT else head[: PURPOSE_LIMIT - 1] + "…"
    title = view.title if len(view.title) <= room else view.title[: room - 1].rstrip() + "…"
    return f"{head} | {title}"


def _pointer(view: IncidentView, *, in_broadcast: bool) -> str:
    """Where the full text of a shortened update is: the incident channel, else its timeline."""
    return f"<#{view.channel_id}>" if in_broadcast and view.channel_id else limits.TIMELINE


def announcement_text(view: IncidentView, a: Announcement, *, in_broadcast: bool) -> str:
    """One status update, as posted in the incident channel or as a reply in a broadcast thread."""
    icon = _KIND_EMOJI[a.kind]
    prefix = f"*{incident_label(view.incident_id)}* " if in_broadcast else ""
    by = f" — {user(a.actor)}" if a.actor else ""
    body = shown(a.text, a.quoted)
    where = _pointer(view, in_broadcast=in_broadcast)
    if a.kind == "reaction":
        source = f" ({_link(a.link, 'source')})" if a.link else ""
        quoted = "\n".join(f"> {line}" for line in body.splitlines()) or "> (no text)"
        head = f"{icon} {prefix}Update{by}{source}\n"
        where = limits.SOURCE_MESSAGE if a.link else where
        return head + limits.shorten(quoted, limits.MESSAGE_TEXT - len(head), where)
    if a.kind == "stage" and a.stage is not None:
        return _fill(f"{icon} {prefix}Stage → *{a.stage.label}*", f": {body}" if body else "", by, where)
    if a.kind in ("call", "ticket") and a.link:  # a link's label: short, and holding no link itself
        label = safe(to_plain(a.text)) if a.quoted else body
        return f"{icon} {prefix}{_link(a.link, limits.shorten(label, 500))}{by}"
    if a.kind == "resolved":
        return _fill(f"{icon} {prefix}*Resolved*", f": {body}" if body else "", by, where)
    return _fill(f"{icon} {prefix}", body, by, where)


def _fill(before: str, body: str, after: str, where: str, limit: int = limits.MESSAGE_TEXT) -> str:
    """`before`, `body`, `after`: the body shortened so that the whole fits `limit` (40,000: a message)."""
    room = limit - len(before) - len(after)
    return before + limits.shorten(body, max(room, 0), where) + after


EVENT_TEXT = 2_000  # one event in `/incident timeline`: the full text is in the timeline files


def event_line(e: TimelineEvent) -> str:
    by = f" ({user(e.actor)})" if e.actor else ""
    where = limits.SOURCE_MESSAGE if e.quoted and e.link else limits.TIMELINE_FILE
    text = limits.shorten(shown(e.text, e.quoted), EVENT_TEXT, where)
    return f"• `{e.at:%Y-%m-%d %H:%M:%S}Z` *{e.kind}*{by}: {text}"


def timeline_text(events: list[TimelineEvent], incident_id: int, earlier: int = 0) -> str:
    """The newest events that fit in one message; older ones (and `earlier`, events not even passed in) are
    counted, and are in the timeline files."""
    head = [f"*Timeline of {incident_label(incident_id)}*"]
    lines = [event_line(e) for e in events]

    def omitted(n: int) -> str:
        n += earlier
        return f"… {n} earlier event{'s' if n != 1 else ''} not shown (all are in {limits.TIMELINE_FILE})"

    if earlier <= 0:
        return limits.fit_lines(head, lines, omitted=omitted, newest_last=True)
    full = "\n".join([*head, omitted(0), *lines])
    if len(full) <= limits.MESSAGE_TEXT:
        return full
    room = limits.MESSAGE_TEXT - len(omitted(0)) - 1  # so that the note is never left out
    return limits.fit_lines(head, lines, omitted=omitted, newest_last=True, limit=room)


FOLLOWUP_TEXT = 2_000  # one follow-up in a list: the full text is in the timeline files


def followup_text(f: Followup) -> str:
    """A follow-up's text as one list item shows it."""
    where = limits.SOURCE_MESSAGE if f.quoted and f.link else limits.TIMELINE_FILE
    return limits.shorten(shown(f.text, f.quoted), FOLLOWUP_TEXT, where)


def resolve_reply(incident_id: int, ever_mitigated: bool, followups: list[Followup]) -> str:
    """What `/incident resolve` answers: resolved, a warning if never Mitigated, the open follow-ups."""
    warning = "" if ever_mitigated else " :warning: It was never marked Mitigated."
    head = [f"{incident_label(incident_id)} resolved.{warning}"]
    open_followups = [f for f in followups if f.ticket is None]
    if open_followups:
        head.append("Open follow-ups (in the timeline for the review):")
    listed = [f"• #{f.followup_id} {followup_text(f)}" for f in open_followups]
    return limits.fit_lines(head, listed, omitted=lambda n: f"… and {n} more, in {limits.TIMELINE_FILE}")


def reminder_text(r: ReminderInput) -> str:
    """The DM a reminder sends: its text and where it was set."""
    where = f" in <#{r.channel_id}>" if r.channel_id else ""
    head = f":alarm_clock: Reminder from *{incident_label(r.incident_id)}*{where}: "
    return _fill(head, safe(r.text), "", limits.TIMELINE)


NUDGE_ACTION = "warroom_nudge_update"  # the nudge's button: opens the status update form


def _channel(view: IncidentView) -> str:
    if view.channel_id:
        return f"<#{view.channel_id}>"
    return "none: Slack refused to create it" if view.channel_error else "creating…"


def no_channel_text(view: IncidentView, error: str, slash_command: str = "/incident") -> str:
    """The DM to the declarer when Slack refused the incident channel: why, what to fix, how to go on."""
    label = incident_label(view.incident_id)
    return (
        f":warning: warroom could not create the channel for *{headline(view)}*: "
        f"{limits.shorten(safe(error), 1_000)}\n"
        "Ask a Slack admin to let the warroom app create channels (or fix what the error names). "
        f"{label} goes on without a channel: its overview and updates still reach the broadcast channels. "
        f"Send updates with `warroom update {label} <text>` and resolve with `warroom resolve {label}`; "
        f"`{slash_command}` commands work only in an incident channel."
    ).replace("<text>", "&lt;text&gt;")


def not_posted_text(view: IncidentView, error: str, text: str) -> str:
    """The DM to a person whose status update (answered "accepted") the incident channel then refused."""
    where = f"<#{view.channel_id}>" if view.channel_id else "the incident channel"
    quoted = f"\n> {limits.shorten(safe(text), 500)}" if text else " (no text kept)"
    return (
        f":warning: Your update to *{headline(view)}* was not posted in {where}: Slack answered "
        f"`{limits.shorten(safe(error), 200)}`. What you sent:{quoted}"
    )


def role_text(view: IncidentView, role: str, description: str) -> str:
    where = f" in <#{view.channel_id}>" if view.channel_id else ""
    about = f"\n> {safe(description)}" if description else ""
    name = limits.shorten(safe(role), 200)
    head = f":bust_in_silhouette: You are now the *{name}* of *{headline(view)}*{where}."
    return _fill(head, about, "", "warroom.toml `[roles]`")


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
    blocks: list[dict[str, Any]] = [_section(text), {"type": "actions", "elements": [button]}]
    return limits.fit_text(text), limits.fit_blocks(blocks)
