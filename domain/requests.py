"""The payloads of the workflows' updates and signals: what each command, reaction or directory call asks.

`domain.models` re-exports each of them, so callers import them from either place.
"""

from __future__ import annotations

from typing import Literal

from domain.base import Model
from domain.storm import StormLimit
from domain.vocab import Severity, Stage

CallProviderName = Literal["zoom", "meet"]


def known_names(*pairs: tuple[str | None, str | None]) -> dict[str, str]:
    """Slack user ID -> name, for the pairs that have both."""
    return {user_id: name for user_id, name in pairs if user_id and name}


class StageChange(Model):
    stage: Stage
    context: str = ""
    actor: str | None = None
    # When set (the stage modal), replaces this incident's broadcast channels.
    broadcast_channels: tuple[str, ...] | None = None


class StatusUpdate(Model):
    text: str
    actor: str | None = None


class SeverityChange(Model):
    severity: Severity
    reason: str = ""
    actor: str | None = None


class CommanderChange(Model):
    user_id: str
    actor: str | None = None
    # Names Slack gave with the request (the mention's label, the caller's `user_name`), shown in the Temporal
    # UI instead of the IDs; None in requests from before they were sent, or when Slack gave none.
    user_name: str | None = None
    actor_name: str | None = None

    @property
    def names(self) -> dict[str, str]:
        return known_names((self.user_id, self.user_name), (self.actor, self.actor_name))


class BroadcastChange(Model):
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    actor: str | None = None


class CallStart(Model):
    """`/incident call [zoom|meet]`: a new call, replacing the current one."""

    provider: CallProviderName
    actor: str | None = None


class TicketOrder(Model):
    """`/incident jira <summary>`."""

    summary: str
    actor: str | None = None


class RoleChange(Model):
    """`/incident role <role> @user` (and `/incident commander @user`, the `commander` role)."""

    role: str
    user_id: str
    actor: str | None = None
    user_name: str | None = None  # as for CommanderChange
    actor_name: str | None = None

    @property
    def names(self) -> dict[str, str]:
        return known_names((self.user_id, self.user_name), (self.actor, self.actor_name))


class FollowupAdd(Model):
    text: str
    actor: str | None = None
    link: str | None = None  # permalink of the message, for a follow-up recorded by a reaction


class FollowupReaction(Model):
    """A follow-up reaction on a message: the message (fetched by the workflow) becomes a follow-up."""

    channel_id: str
    message_ts: str
    user_id: str


class FollowupTicket(Model):
    """Turn follow-up `followup_id` into a Jira issue."""

    followup_id: int
    actor: str | None = None


class DebriefStart(Model):
    actor: str | None = None


class DebriefNote(Model):
    """A reply in the debrief's "things to revisit" thread."""

    user_id: str
    text: str
    ts: str
    thread_ts: str


class ReminderOrder(Model):
    """`/incident remind <when> <text>`: `when` is resolved in the caller's Slack time zone."""

    when: str
    text: str
    actor: str


class ReminderCancel(Model):
    actor: str


class Resolution(Model):
    summary: str = ""
    actor: str | None = None


class ReactionAdded(Model):
    """A responder reacted to a message in the incident channel with a broadcast emoji."""

    channel_id: str
    message_ts: str
    user_id: str
    reaction: str


class ChannelRegistration(Model):
    channel_id: str
    incident_id: int


class DedupClaim(Model):
    key: str
    storm: StormLimit | None = None  # None (and in claims from before storm control): no cap


class DedupGrant(Model):
    incident_id: int
    created: bool  # False: an open incident already has this key
    storm: bool = False  # the key joins the alert storm incident (created: the storm begins)


class StormSplit(Model):
    """`/incident split <n>` in the alert storm's channel: group n now has its own incident."""

    key: str
    incident_id: int
    actor: str | None = None


class DedupRelease(Model):
    key: str
    incident_id: int


class IncidentClosed(Model):
    """The incident's workflow completed: the directory forgets its channel and any alert key of it."""

    incident_id: int
    channel_id: str | None = None  # None: Slack refused the channel
