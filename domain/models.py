"""Pydantic models that cross process boundaries: workflow inputs, handler payloads, state, timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from domain.alerts import AlertGroup
from domain.base import Model as Model
from domain.naming import DEFAULT_CHANNEL_TEMPLATE
from domain.paging import PagingState
from domain.requests import BroadcastChange as BroadcastChange
from domain.requests import CallProviderName as CallProviderName
from domain.requests import CallStart as CallStart
from domain.requests import ChannelRegistration as ChannelRegistration
from domain.requests import CommanderChange as CommanderChange
from domain.requests import DebriefNote as DebriefNote
from domain.requests import DebriefStart as DebriefStart
from domain.requests import DedupClaim as DedupClaim
from domain.requests import DedupGrant as DedupGrant
from domain.requests import DedupRelease as DedupRelease
from domain.requests import FollowupAdd as FollowupAdd
from domain.requests import FollowupReaction as FollowupReaction
from domain.requests import FollowupTicket as FollowupTicket
from domain.requests import IncidentClosed as IncidentClosed
from domain.requests import ReactionAdded as ReactionAdded
from domain.requests import ReminderCancel as ReminderCancel
from domain.requests import ReminderOrder as ReminderOrder
from domain.requests import Resolution as Resolution
from domain.requests import RoleChange as RoleChange
from domain.requests import SeverityChange as SeverityChange
from domain.requests import StageChange as StageChange
from domain.requests import StatusUpdate as StatusUpdate
from domain.requests import StormSplit as StormSplit
from domain.requests import TicketOrder as TicketOrder
from domain.state_compat import upgrade
from domain.statuspage import StatuspageState
from domain.storm import StormDigest, StormView, storm_view
from domain.vocab import BROADCAST_REACTIONS, Severity, Stage, Status

DEFAULT_REACTIONS = tuple(sorted(BROADCAST_REACTIONS))


# `Model` (the frozen base) lives in domain.base; the handler payloads in domain.requests.
# --- Declaring -------------------------------------------------------------------------------------


class Declaration(Model):
    """What a declare carries into the incident workflow. No secrets, ever."""

    incident_id: int
    title: str
    severity: Severity
    private: bool = False
    declared_by: str | None = None  # Slack user ID; None for CLI / alerts
    declared_by_name: str | None = None  # their Slack name, when the request carried one
    source: str = "slack"
    broadcast_channels: tuple[str, ...] = ()
    slash_command: str = "/incident"
    dedup_key: str | None = None  # hashed alert dedup key; released in the directory on resolve
    alert: AlertGroup | None = None  # the notification that declared it
    storm: bool = False  # the alert storm incident (domain.storm): groups beyond the cap join it
    resolve_mitigates: bool = False  # alerts resolving moves the incident to Mitigated
    # Snapshot of warroom.toml (domain.config); the defaults are today's behaviour without one.
    stage_broadcasts: dict[str, tuple[str, ...]] = Field(default_factory=dict)  # stage -> channels added
    broadcast_reactions: tuple[str, ...] = DEFAULT_REACTIONS
    severity_labels: dict[str, str] = Field(default_factory=dict)  # severity -> display name
    channel_name_template: str = DEFAULT_CHANNEL_TEMPLATE
    call_provider: CallProviderName | None = None  # WARROOM_CALL_PROVIDER: a call is created at declare
    roles: dict[str, str] = Field(default_factory=dict)  # role -> description (warroom.toml + built-ins)
    nudge_minutes: dict[str, int] = Field(default_factory=dict)  # severity -> minutes; empty: no nudges
    followup_reactions: tuple[str, ...] = ()  # emoji that record a follow-up instead of broadcasting


# --- Calls, tickets, reminders -------------------------------------------------------------------

CALL_LABELS: dict[str, str] = {"zoom": "Zoom", "meet": "Google Meet"}


class CallInfo(Model):
    provider: CallProviderName
    join_url: str
    meeting_id: str  # the provider's ID (Zoom meeting ID, Meet space name)

    @property
    def label(self) -> str:
        return CALL_LABELS[self.provider]


class TicketInfo(Model):
    key: str  # `OPS-42`
    url: str  # the browse URL
    summary: str


class PendingCall(Model):
    key: str
    provider: CallProviderName
    actor: str | None = None


class PendingTicket(Model):
    key: str
    summary: str
    actor: str | None = None
    followup_id: int | None = None  # the follow-up this issue is for
    quoted: bool = False  # the summary is Slack mrkdwn (a follow-up quoted from a message)


FollowupState = Literal["open", "ticketed"]


class Followup(Model):
    followup_id: int
    text: str
    author: str | None
    at: datetime
    link: str | None = None
    ticket: TicketInfo | None = None
    quoted: bool = False  # text is Slack mrkdwn quoted from a message; shown unchanged

    @property
    def state(self) -> FollowupState:
        return "ticketed" if self.ticket is not None else "open"


class PendingDm(Model):
    """A direct message the main loop sends: a role's description, a nudge to post an update."""

    key: str
    user_id: str
    kind: Literal["role", "nudge", "no_channel", "not_posted"]
    role: str = ""
    # a role's description; for `no_channel`, why Slack refused the channel; for `not_posted`, why Slack
    # refused the person's update in the incident channel
    description: str = ""
    text: str = ""  # `not_posted`: the update's text (shortened)


class ReminderRecord(Model):
    """A reminder set from this incident; its ReminderWorkflow (`reminder-<id>`) owns its fate."""

    reminder_id: str  # `<incident>-<n>`
    user_id: str
    due: datetime
    local: str  # the due time as the user's clock shows it
    text: str


class ReminderInput(ReminderRecord):
    """What a ReminderWorkflow starts with: the record, and where it was set."""

    incident_id: int
    channel_id: str | None = None


ReminderStatus = Literal["pending", "sending", "delivered", "cancelled", "failed"]


class ReminderView(ReminderRecord):
    status: ReminderStatus


# --- State -----------------------------------------------------------------------------------------


class TimelineEvent(Model):
    at: datetime
    kind: str  # declared, channel, stage, update, reaction, severity, commander, broadcast, resolved, problem
    text: str
    actor: str | None = None
    link: str | None = None
    quoted: bool = False  # text is Slack mrkdwn quoted from a message; shown unchanged


class BroadcastThread(Model):
    """One broadcast channel: its overview message, under which every later update is threaded.

    A removed channel keeps its entry (inactive), so adding it back continues the same thread.
    """

    channel_id: str
    overview_ts: str | None = None
    active: bool = True
    error: str | None = None  # a permanent Slack error for this channel; cleared when it is added again


AnnouncementKind = Literal[
    "update", "stage", "severity", "commander", "reaction", "resolved", "alert", "call", "ticket"
]


class Announcement(Model):
    """A status update waiting to be posted in the incident channel and every broadcast thread."""

    key: str  # deterministic idempotency key, unique per incident
    kind: AnnouncementKind
    text: str
    actor: str | None = None
    link: str | None = None  # permalink of the source message (reactions), the call or the ticket
    stage: Stage | None = None
    channel_only: bool = False  # e.g. alerts firing again: for responders, not for stakeholders
    # A broadcast reaction holding its place in the queue: its message is read when its turn comes.
    reaction: ReactionAdded | None = None
    quoted: bool = False  # text is Slack mrkdwn quoted from a message; shown unchanged
    # A reaction queued by a run from before patch reactions-in-order: its message is read before the rest of
    # the queue, and its update then joins the end (see domain.state_compat).
    read_first: bool = False
    # An attempt that may have posted it ended without an answer (the update's own post timed out, or the
    # worker running it died): the activity looks for each post before making it, even on its first attempt.
    look_first: bool = False


class IncidentView(Model):
    """What the overview and the channel description show: derived from state, rendered by activities."""

    incident_id: int
    title: str
    severity: Severity
    stage: Stage
    status: Status
    private: bool
    commander: str | None
    declared_by: str | None
    declared_at: datetime
    channel_id: str | None
    channel_name: str | None
    summary: str = ""
    resolved_at: datetime | None = None
    alert: AlertGroup | None = None
    severity_labels: dict[str, str] = Field(default_factory=dict)
    call: CallInfo | None = None
    roles: dict[str, str] = Field(default_factory=dict)  # role -> user ID, commander excluded
    channel_error: str | None = None  # why there is no incident channel (Slack refused to create it)
    storm: StormView | None = None  # an alert storm incident's digest

    @property
    def severity_label(self) -> str:
        """The configured display name of the severity (warroom.toml `[severities]`), else `SEV2`."""
        return self.severity_labels.get(self.severity.value) or self.severity.label


class IncidentState(BaseModel):
    """The single source of truth for one incident; carried across continue-as-new.

    Bounded whatever the incident's length: the timeline keeps its newest events (older ones are archived in
    parts, `workflows.archive`), dedup lists keep their newest entries (`MAX_REMEMBERED`), counters count.
    """

    incident_id: int
    title: str
    severity: Severity
    stage: Stage = Stage.INVESTIGATING
    status: Status = Status.OPEN
    private: bool = False
    declared_by: str | None = None
    declared_at: datetime
    source: str = "slack"
    slash_command: str = "/incident"
    commander: str | None = None
    channel_id: str | None = None
    channel_name: str | None = None
    channel_overview_ts: str | None = None
    channel_ready: bool = False
    channel_error: str | None = None  # Slack refused to create the channel: the incident goes on without one
    broadcasts: list[BroadcastThread] = Field(default_factory=list)
    timeline: list[TimelineEvent] = Field(default_factory=list)  # the newest events, after the archived ones
    timeline_parts: list[str] = Field(default_factory=list)  # Slack file IDs of archived parts, oldest first
    timeline_archived: int = 0  # events in those parts
    timeline_lost: int = 0  # events dropped because Slack refused to archive them for too long
    archive_failures: int = 0  # archive attempts failed in a row
    events_recorded: int = 0  # every event ever recorded (archived + lost + in `timeline`)
    updates_posted: int = 0  # status updates sent out: commands and broadcast reactions
    nudges_sent: int = 0
    outbox: list[Announcement] = Field(default_factory=list)
    reacted_messages: list[str] = Field(default_factory=list)  # newest message ts already broadcast
    overview_version: int = 0  # bumped by every change the overview shows
    overview_published: int = 0  # the version every overview showed after the last edit completed
    ever_mitigated: bool = False
    summary: str = ""
    resolved_at: datetime | None = None
    next_seq: int = 1
    dedup_key: str | None = None
    alert: AlertGroup | None = None
    seen_alerts: list[str] = Field(default_factory=list)  # newest alert fingerprints already shown
    storm: StormDigest | None = None  # set for the alert storm incident: the groups that joined it
    alerts_resolved: bool = False
    resolve_mitigates: bool = False
    stage_broadcasts: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    broadcast_reactions: tuple[str, ...] = DEFAULT_REACTIONS
    severity_labels: dict[str, str] = Field(default_factory=dict)
    channel_name_template: str = DEFAULT_CHANNEL_TEMPLATE
    call: CallInfo | None = None
    call_bookmark_id: str | None = None
    call_bookmarked: bool = True  # False: the current call still needs its channel bookmark
    pending_calls: list[PendingCall] = Field(default_factory=list)
    tickets: list[TicketInfo] = Field(default_factory=list)
    pending_tickets: list[PendingTicket] = Field(default_factory=list)
    reminders: list[ReminderRecord] = Field(default_factory=list)
    next_reminder: int = 1
    role_descriptions: dict[str, str] = Field(default_factory=dict)
    roles: dict[str, str] = Field(default_factory=dict)  # role -> user ID; the commander is `commander`
    pending_dms: list[PendingDm] = Field(default_factory=list)
    followups: list[Followup] = Field(default_factory=list)
    followup_reactions: tuple[str, ...] = ()
    pending_followup_reactions: list[FollowupReaction] = Field(default_factory=list)
    nudge_minutes: dict[str, int] = Field(default_factory=dict)
    last_update_at: datetime | None = None  # the last status update to the broadcast channels
    last_nudge_at: datetime | None = None
    debrief_ts: str | None = None  # the "things to revisit" thread
    debrief_requested: bool = False
    stage_reached: dict[str, datetime] = Field(default_factory=dict)  # stage -> when it was first reached
    statuspage: StatuspageState = Field(default_factory=StatuspageState)  # the public status page's side
    paging: PagingState = Field(default_factory=PagingState)  # `/incident page` (domain.paging)
    # Slack user ID -> name, from the requests that carried one (`workflows.people`); newest last, bounded.
    people: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_older_runs(cls, data: Any) -> Any:
        return upgrade(data)

    def view(self) -> IncidentView:
        return IncidentView(
            incident_id=self.incident_id,
            title=self.title,
            severity=self.severity,
            stage=self.stage,
            status=self.status,
            private=self.private,
            commander=self.commander,
            declared_by=self.declared_by,
            declared_at=self.declared_at,
            channel_id=self.channel_id,
            channel_name=self.channel_name,
            summary=self.summary,
            resolved_at=self.resolved_at,
            alert=self.alert,
            severity_labels=self.severity_labels,
            call=self.call,
            roles=dict(self.roles),
            channel_error=self.channel_error,
            storm=storm_view(self.storm) if self.storm is not None else None,
        )

    def result(self) -> IncidentResult:
        return IncidentResult(
            incident_id=self.incident_id,
            title=self.title,
            severity=self.severity,
            final_stage=self.stage,
            ever_mitigated=self.ever_mitigated,
            summary=self.summary,
            declared_at=self.declared_at,
            resolved_at=self.resolved_at,
            timeline=self.timeline,
            stage_reached=dict(self.stage_reached),
            followups=list(self.followups),
            tickets=list(self.tickets),
            private=self.private,
            source=self.source,
            commander=self.commander,
            roles=dict(self.roles),
            timeline_parts=list(self.timeline_parts),
            timeline_archived=self.timeline_archived,
            timeline_lost=self.timeline_lost,
        )

    @property
    def resolve_requested(self) -> bool:
        return self.status is Status.RESOLVED

    @property
    def overview_stale(self) -> bool:
        return self.overview_version != self.overview_published

    @property
    def broadcast_channel_ids(self) -> list[str]:
        return [b.channel_id for b in self.broadcasts if b.active]


class IncidentInput(Model):
    declaration: Declaration
    state: IncidentState | None = None  # set when continuing as new


class IncidentResult(Model):
    """What a finished incident workflow returns: the record for the analysis afterwards.

    `timeline` is the newest events; a long incident's earlier ones are in `timeline_parts` (private Slack
    files, `workflows.archive`), and the timeline exported at resolve has them all.
    """

    incident_id: int
    title: str
    severity: Severity
    final_stage: Stage
    ever_mitigated: bool
    summary: str
    declared_at: datetime
    resolved_at: datetime | None
    timeline: list[TimelineEvent]
    stage_reached: dict[str, datetime] = Field(default_factory=dict)
    followups: list[Followup] = Field(default_factory=list)
    tickets: list[TicketInfo] = Field(default_factory=list)
    private: bool = False
    source: str = "slack"
    commander: str | None = None
    roles: dict[str, str] = Field(default_factory=dict)
    timeline_parts: list[str] = Field(default_factory=list)
    timeline_archived: int = 0
    timeline_lost: int = 0


class CommandReply(Model):
    """What an update handler answers the person who ran the command (shown ephemerally)."""

    text: str


# --- Directory (incident IDs and channel lookup) --------------------------------------------------------


class DirectoryState(BaseModel):
    next_id: int = 1
    channels: dict[str, int] = Field(default_factory=dict)  # channel ID -> incident, dropped when it closes
    open_keys: dict[str, int] = Field(default_factory=dict)  # alert dedup key -> open incident
    closed: int = 0  # incidents that told the directory they closed (IncidentWorkflow, patch directory-close)
    arrivals: list[datetime] = Field(default_factory=list)  # newest alert groups claimed (StormLimit.cap)
    storm_incident: int | None = None  # the open alert storm incident new groups join
