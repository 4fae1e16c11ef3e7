"""Inputs and outputs of the side-effect activities: semantic data, rendered by the activity.

Workflows send what happened, not Slack text, so changing how a message looks never changes workflow
history and never needs a `workflow.patched` guard.
"""

from __future__ import annotations

from domain.models import Announcement, IncidentView, Model
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
