"""Inputs and outputs of the side-effect activities: semantic data, rendered by the activity.

Workflows send what happened, not Slack text, so changing how a message looks never changes workflow
history and never needs a `workflow.patched` guard.
"""

from __future__ import annotations

from datetime import datetime

# CallInfo, CallProviderName and TicketInfo belong to the incident's state; activities import them from here.
from domain.models import (
    Announcement,
    CallInfo,
    CallProviderName,
    IncidentResult,
    IncidentView,
    Model,
    PendingDm,
    TimelineEvent,
)
from domain.models import TicketInfo as TicketInfo
from domain.naming import DEFAULT_CHANNEL_TEMPLATE


class CreateChannelRequest(Model):
    incident_id: int
    title: str
    private: bool = False
    name_template: str = DEFAULT_CHANNEL_TEMPLATE  # warroom.toml `channels.name_template`


class ChannelRef(Model):
    id: str
    name: str


class ChannelSetup(Model):
    """Description, members and the overview in a freshly created incident channel."""

    incident: IncidentView
    invite: tuple[str, ...] = ()
    key: str  # idempotency key of the overview post


class OverviewTarget(Model):
    channel_id: str
    ts: str | None = None  # None: post a new overview; else edit this one


class OverviewRequest(Model):
    incident: IncidentView
    targets: tuple[OverviewTarget, ...]
    key_prefix: str
    describe_channel: bool = False  # also refresh the incident channel's description


class Delivery(Model):
    channel_id: str
    ts: str | None = None
    error: str | None = None  # a channel-specific, permanent failure (e.g. channel_not_found)


class ThreadTarget(Model):
    channel_id: str
    thread_ts: str


class AnnounceRequest(Model):
    incident: IncidentView
    announcement: Announcement
    threads: tuple[ThreadTarget, ...]


class MessageRequest(Model):
    channel_id: str
    ts: str


class MessageInfo(Model):
    text: str
    author: str | None
    permalink: str | None
    from_warroom: bool = False
    found: bool = True


class NoteRequest(Model):
    channel_id: str
    text: str
    key: str


# --- Calls (activities/calls) -----------------------------------------------------------------------------


class CallRequest(Model):
    incident_id: int
    topic: str  # `INC-7: Checkout latency above 2s`
    provider: CallProviderName
    key: str  # idempotency key, unique per requested call: a retry finds the meeting it made


class CallLinkRequest(Model):
    """Adds (or, with `bookmark_id`, edits) the channel bookmark of the incident's call."""

    channel_id: str
    call: CallInfo
    bookmark_id: str | None = None


# --- Jira (activities/jira) -------------------------------------------------------------------------------


class TicketRequest(Model):
    incident: IncidentView
    summary: str
    requested_by: str | None = None  # Slack user ID
    key: str  # idempotency key, unique per requested ticket: a retry finds the issue it made
    quoted: bool = False  # `summary` is Slack mrkdwn (a follow-up quoted from a message)


# --- Direct messages (activities/slack_dm) ----------------------------------------------------------------


class DirectMessageRequest(Model):
    """A role's description for its new holder, or a nudge to post a status update."""

    incident: IncidentView
    dm: PendingDm


class ReminderPlanRequest(Model):
    user_id: str
    when: str  # the user's time expression (domain.timeexpr)
    now: datetime  # workflow.now() when the command arrived


class ReminderPlan(Model):
    """When `when` falls for that user; `error` is a usage message instead."""

    due: datetime | None = None
    local: str = ""  # `Sat 28 Nov 09:00 (Europe/Paris)`
    error: str | None = None
    zone_known: bool = True  # False: Slack did not tell us the user's time zone; UTC was used


# --- The timeline afterwards (activities/slack_timeline) ---------------------------------------------------


class TimelineArchiveRequest(Model):
    """A long incident's older timeline events, kept as a private Slack file until the export reads them."""

    incident_id: int
    part: int  # 1, 2, ...: the file is `inc-<id>-timeline-part-<part>.json`
    first: int  # the number of the part's first event in the incident's whole timeline (from 1)
    events: list[TimelineEvent]


class TimelineExportRequest(Model):
    """At resolve: the timeline posted in the incident channel, with Markdown and JSON files attached."""

    incident: IncidentView
    result: IncidentResult
    key: str  # idempotency key: a retry finds the message and files an earlier attempt posted
