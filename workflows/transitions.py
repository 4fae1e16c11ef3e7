"""What each incident command and event does to IncidentState: stage, severity, commander, roles, follow-ups,
calls and tickets ordered, alerts, resolve, and the timeline and outbox bookkeeping beside them.

Pure functions over IncidentState (deterministic, no Temporal calls), used by IncidentWorkflow and its
helpers: the caller passes `now` (workflow.now()), then logs the new timeline events and, when a function
says it changes the overview (`overview_version`), syncs the search attributes (IncidentContext.changed).
"""

from __future__ import annotations

from datetime import datetime

from domain import statuspage as public
from domain.config import BUILT_IN_ROLES
from domain.effects import MessageInfo
from domain.models import (
    Announcement,
    AnnouncementKind,
    BroadcastThread,
    CallInfo,
    CallProviderName,
    CommanderChange,
    DebriefNote,
    Declaration,
    Followup,
    FollowupAdd,
    FollowupReaction,
    IncidentState,
    PendingCall,
    PendingDm,
    PendingTicket,
    ReactionAdded,
    ReminderRecord,
    RoleChange,
    TicketInfo,
    TimelineEvent,
)
from domain.state_compat import UPDATE_KINDS
from domain.storm import StormDigest
from domain.usage import display_name
from domain.vocab import Severity, Stage, Status
from workflows import broadcasts

MAX_REMEMBERED = 2_000  # entries kept by each dedup list (reacted messages, alert fingerprints)
MAX_PEOPLE = 200  # names kept in `IncidentState.people` (the most recently seen)

# --- a new incident and the bookkeeping every transition uses --------------------------------------------


def new_state(d: Declaration, now: datetime) -> IncidentState:
    """The state of a just-declared incident (warroom.toml's settings are copied in from the declaration)."""
    return IncidentState(
        incident_id=d.incident_id,
        title=d.title,
        severity=d.severity,
        private=d.private,
        declared_by=d.declared_by,
        declared_at=now,
        source=d.source,
        slash_command=d.slash_command,
        broadcasts=[BroadcastThread(channel_id=c) for c in dict.fromkeys(d.broadcast_channels)],
        dedup_key=d.dedup_key,
        alert=d.alert,
        storm=StormDigest() if d.storm else None,
        seen_alerts=list(dict.fromkeys(a.fingerprint for a in d.alert.alerts))[-MAX_REMEMBERED:]
        if d.alert
        else [],
        resolve_mitigates=d.resolve_mitigates,
        stage_broadcasts=d.stage_broadcasts,
        broadcast_reactions=d.broadcast_reactions,
        severity_labels=d.severity_labels,
        channel_name_template=d.channel_name_template,
        role_descriptions=d.roles,
        nudge_minutes=d.nudge_minutes,
        followup_reactions=d.followup_reactions,
        people=_names({d.declared_by: d.declared_by_name} if d.declared_by and d.declared_by_name else {}),
    )


def key(s: IncidentState, what: str) -> str:
    """The next idempotency key of this incident (`inc<id>:<seq>:<what>`); each call uses up a number."""
    seq = s.next_seq
    s.next_seq += 1
    return f"inc{s.incident_id}:{seq}:{what}" if what else f"inc{s.incident_id}:{seq}"


def record(
    s: IncidentState,
    now: datetime,
    kind: str,
    text: str,
    actor: str | None,
    link: str | None = None,
    quoted: bool = False,
) -> None:
    s.timeline.append(TimelineEvent(at=now, kind=kind, text=text, actor=actor, link=link, quoted=quoted))
    s.events_recorded += 1
    if kind in UPDATE_KINDS:
        s.updates_posted += 1
    elif kind == "nudge":
        s.nudges_sent += 1


def remember(seen: list[str], item: str) -> None:
    """Adds `item` to a dedup list, dropping the oldest entries beyond `MAX_REMEMBERED` (the list stays
    bounded however long the incident runs; something older than that is old enough to show again)."""
    seen.append(item)
    del seen[: max(0, len(seen) - MAX_REMEMBERED)]


def queue(
    s: IncidentState,
    kind: AnnouncementKind,
    text: str,
    actor: str | None,
    stage: Stage | None = None,
    channel_only: bool = False,
    link: str | None = None,
) -> None:
    """An announcement for the main loop to post, after everything queued before it."""
    k = key(s, kind)
    s.outbox.append(
        Announcement(
            key=k, kind=kind, text=text, actor=actor, stage=stage, channel_only=channel_only, link=link
        )
    )


def learn_names(s: IncidentState, names: dict[str, str]) -> None:
    """Remembers the names Slack gave with a request (user ID -> name), for the Temporal UI's details."""
    s.people = _names(names, s.people)


def _names(names: dict[str, str], known: dict[str, str] | None = None) -> dict[str, str]:
    """`known` with `names` added as the newest, keeping the MAX_PEOPLE newest; only names worth showing."""
    people = dict(known or {})
    for user_id, raw in names.items():
        name = display_name(raw)
        if name:
            people.pop(user_id, None)
            people[user_id] = name
    kept = list(people.items())
    return dict(kept[max(0, len(kept) - MAX_PEOPLE) :])


def overview_changed(s: IncidentState) -> None:
    """The overview shows something new: every overview is edited (the caller syncs search attributes)."""
    s.overview_version += 1


def declared(s: IncidentState, now: datetime) -> None:
    who = f" by <@{s.declared_by}>" if s.declared_by else f" from {s.source}"
    record(s, now, "declared", f"{s.severity.label} {s.title} (declared{who})", s.declared_by)


def without_channel(s: IncidentState, cause: str) -> None:
    """Slack refused the channel for good: the declarer is told why by DM. Changes the overview."""
    s.channel_error = cause
    overview_changed(s)
    if s.declared_by:
        dm = PendingDm(key=key(s, "dm"), user_id=s.declared_by, kind="no_channel", description=cause)
        s.pending_dms.append(dm)


# --- stage, updates, severity, commander and roles --------------------------------------------------------


def move_stage(
    s: IncidentState,
    now: datetime,
    stage: Stage,
    context: str,
    actor: str | None,
    *,
    add_stage_channels: bool,
) -> None:
    """Moves to `stage` and queues its update; with `add_stage_channels` (warroom.toml `broadcast.by_stage`,
    decided by the caller) the stage's channels join the broadcast. Changes the overview."""
    s.stage = stage
    s.stage_reached.setdefault(stage.value, now)
    s.last_update_at = now
    s.ever_mitigated = s.ever_mitigated or stage is Stage.MITIGATED
    record(s, now, "stage", f"{stage.label}: {context}" if context else stage.label, actor)
    if add_stage_channels:
        summary = broadcasts.add_stage_channels(s, stage)
        if summary:
            record(s, now, "broadcast", f"broadcast channels for {stage.label}: {summary}", actor)
    queue(s, "stage", context, actor, stage=stage)
    overview_changed(s)
    public.follow_stage(s.statuspage, s.private, stage, lambda: key(s, "statuspage"))  # only if on the page


def change_broadcasts(s: IncidentState, now: datetime, wanted: tuple[str, ...], actor: str | None) -> str:
    """Makes `wanted` the broadcast channels; returns the reply's sentence (with a leading space)."""
    summary = broadcasts.describe(*broadcasts.apply(s, wanted))
    if not summary:
        return " Broadcast channels unchanged."
    record(s, now, "broadcast", f"broadcast channels: {summary}", actor)
    return f" Broadcast channels: {summary}."


def post_update(s: IncidentState, now: datetime, text: str, actor: str | None) -> None:
    record(s, now, "update", text, actor)
    s.last_update_at = now
    queue(s, "update", text, actor)


def change_severity(
    s: IncidentState, now: datetime, severity: Severity, reason: str, actor: str | None
) -> None:
    """Changes the overview."""
    old = s.severity
    s.severity = severity
    why = f": {reason}" if reason else ""
    record(s, now, "severity", f"{old.label} → {severity.label}{why}", actor)
    queue(s, "severity", f"Severity {old.label} → *{severity.label}*{why}", actor)
    overview_changed(s)


def assign_commander(s: IncidentState, now: datetime, change: CommanderChange) -> None:
    """Changes the overview. The role's DM (patch role-dms) is the caller's to add, with `dm_role`."""
    user_id, actor = change.user_id, change.actor
    learn_names(s, change.names)
    s.commander = user_id
    record(s, now, "commander", f"<@{user_id}> is the incident commander", actor)
    queue(s, "commander", f"<@{user_id}> is now the incident commander", actor)
    overview_changed(s)


def assign_role(s: IncidentState, now: datetime, change: RoleChange) -> None:
    """The person gets a DM describing the role. Changes the overview."""
    role, user_id, actor = change.role, change.user_id, change.actor
    learn_names(s, change.names)
    if role == "commander":
        s.commander = user_id
    else:
        s.roles[role] = user_id
    record(s, now, "role", f"<@{user_id}> is {role}", actor)
    queue(s, "commander", f"<@{user_id}> is now the {role}", actor)
    dm_role(s, role, user_id)
    overview_changed(s)


def role_descriptions(s: IncidentState) -> dict[str, str]:
    return s.role_descriptions or dict(BUILT_IN_ROLES)


def dm_role(s: IncidentState, role: str, user_id: str) -> None:
    description = role_descriptions(s).get(role, "")
    s.pending_dms.append(
        PendingDm(key=key(s, "dm"), user_id=user_id, kind="role", role=role, description=description)
    )


def resolve(s: IncidentState, now: datetime, summary: str, actor: str | None) -> None:
    """Resolved: the final summary is queued for everywhere. Changes the overview."""
    s.status = Status.RESOLVED
    s.resolved_at = now
    s.summary = summary
    record(s, now, "resolved", summary or "resolved", actor)
    queue(s, "resolved", summary, actor)
    overview_changed(s)
    public.follow_resolve(s.statuspage, s.private, lambda: key(s, "statuspage"))  # only if on the page


# --- calls, tickets, reminders ----------------------------------------------------------------------------


def order_call(s: IncidentState, provider: CallProviderName, actor: str | None = None) -> None:
    s.pending_calls.append(PendingCall(key=key(s, "call"), provider=provider, actor=actor))


def call_started(s: IncidentState, now: datetime, info: CallInfo, actor: str | None) -> None:
    """The new call replaces the current one; its bookmark is still to make. Changes the overview."""
    replaced = s.call is not None
    s.call, s.call_bookmarked = info, False
    text = f"{info.label} call{' (replacing the previous one)' if replaced else ''}"
    record(s, now, "call", text, actor, link=info.join_url)
    queue(s, "call", f"Join the {info.label} call", actor, channel_only=True, link=info.join_url)
    overview_changed(s)


def order_ticket(s: IncidentState, summary: str, actor: str | None) -> None:
    k = key(s, "ticket")
    s.pending_tickets.append(PendingTicket(key=k, summary=summary, actor=actor))


def order_followup_ticket(s: IncidentState, followup_id: int, actor: str | None) -> Followup:
    """A Jira issue for follow-up `followup_id` (its text the summary)."""
    followup = s.followups[followup_id - 1]
    s.pending_tickets.append(
        PendingTicket(
            key=key(s, "ticket"),
            summary=followup.text[:255],
            actor=actor,
            followup_id=followup.followup_id,
            quoted=followup.quoted,
        )
    )
    return followup


def ticket_created(s: IncidentState, now: datetime, ticket: TicketInfo, order: PendingTicket) -> None:
    """The issue is posted in the channel; a follow-up's issue shows on the follow-up."""
    s.tickets.append(ticket)
    if order.followup_id is not None:
        index = order.followup_id - 1
        s.followups[index] = s.followups[index].model_copy(update={"ticket": ticket})
    record(s, now, "ticket", f"{ticket.key}: {ticket.summary}", order.actor, link=ticket.url)
    text = f"{ticket.key}: {ticket.summary}"
    queue(s, "ticket", text, order.actor, channel_only=True, link=ticket.url)


def next_reminder_id(s: IncidentState) -> str:
    reminder_id = f"{s.incident_id}-{s.next_reminder}"
    s.next_reminder += 1
    return reminder_id


def reminder_set(s: IncidentState, now: datetime, reminder: ReminderRecord, actor: str | None) -> None:
    s.reminders.append(reminder)
    text = f"reminder {reminder.reminder_id} for {reminder.local}: {reminder.text}"
    record(s, now, "reminder", text, actor)


# --- follow-ups and the debrief ---------------------------------------------------------------------------


def add_followup(s: IncidentState, now: datetime, f: FollowupAdd, quoted: bool = False) -> Followup:
    followup = Followup(
        followup_id=len(s.followups) + 1,
        text=f.text,
        author=f.actor,
        at=now,
        link=f.link,
        quoted=quoted,
    )
    s.followups.append(followup)
    record(s, now, "followup", f"#{followup.followup_id}: {f.text}", f.actor, link=f.link, quoted=quoted)
    return followup


def followup_from_message(
    s: IncidentState, now: datetime, r: FollowupReaction, info: MessageInfo | None
) -> None:
    """A follow-up reaction's message (None: it could not be read) becomes a follow-up, if it has text."""
    if info is None or not info.found or not info.text.strip():
        return
    add_followup(s, now, FollowupAdd(text=info.text, actor=r.user_id, link=info.permalink), quoted=True)


def start_debrief(
    s: IncidentState, now: datetime, provider: CallProviderName | None, actor: str | None
) -> None:
    """The debrief thread is to open; with a `provider`, a call for it is ordered."""
    s.debrief_requested = True
    record(s, now, "debrief", "hot debrief started", actor)
    if provider is not None:
        order_call(s, provider, actor)


def debrief_note(s: IncidentState, now: datetime, note: DebriefNote) -> None:
    """A reply in the debrief thread goes into the timeline, once per message."""
    k = f"debrief:{note.ts}"
    if not s.debrief_ts or note.thread_ts != s.debrief_ts or k in s.reacted_messages:
        return
    remember(s.reacted_messages, k)
    record(s, now, "debrief", note.text, note.user_id, quoted=True)


# --- reactions and alerts ---------------------------------------------------------------------------------


def take_reaction(s: IncidentState, reaction: ReactionAdded) -> str | None:
    """A reaction in the incident channel. A follow-up reaction queues its message to become a follow-up;
    a broadcast reaction on a message not broadcast yet returns the key of its update (the caller queues it,
    `queue_reaction`); anything else changes nothing and returns None."""
    if s.status is not Status.RESOLVED and reaction.reaction in s.followup_reactions:
        k = f"followup:{reaction.message_ts}"
        if reaction.channel_id == s.channel_id and k not in s.reacted_messages:
            remember(s.reacted_messages, k)
            s.pending_followup_reactions.append(
                FollowupReaction(
                    channel_id=reaction.channel_id,
                    message_ts=reaction.message_ts,
                    user_id=reaction.user_id,
                )
            )
        return None
    if s.status is Status.RESOLVED or reaction.reaction not in s.broadcast_reactions:
        return None
    if reaction.channel_id != s.channel_id or reaction.message_ts in s.reacted_messages:
        return None
    remember(s.reacted_messages, reaction.message_ts)
    return key(s, "reaction")


def queue_reaction(s: IncidentState, k: str, reaction: ReactionAdded, *, in_order: bool) -> None:
    """The reaction's update takes its place in the outbox now; its message is read when its turn comes.
    Without `in_order` (runs from before patch reactions-in-order) it is `read_first`: read before the rest
    of the queue, its update then joining the end, as those runs did."""
    s.outbox.append(
        Announcement(
            key=k,
            kind="reaction",
            text="",
            actor=reaction.user_id,
            reaction=reaction,
            read_first=not in_order,
        )
    )


def reaction_announcement(
    s: IncidentState, now: datetime, k: str, r: ReactionAdded, info: MessageInfo | None
) -> Announcement | None:
    """The update for a broadcast reaction's message; None when there is nothing to broadcast (it could not
    be read, is gone, or is warroom's own)."""
    if info is None or not info.found or info.from_warroom:
        return None
    text = info.text if info.author in (None, r.user_id) else f"{info.text}\n(message by <@{info.author}>)"
    record(s, now, "reaction", f":{r.reaction}: {info.text}", r.user_id, link=info.permalink, quoted=True)
    s.last_update_at = now
    return Announcement(key=k, kind="reaction", text=text, actor=r.user_id, link=info.permalink, quoted=True)
