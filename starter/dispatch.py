"""Maps each typed `/incident` command to one Temporal call and the ephemeral answer its caller sees."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from activities import slack_render as render
from domain import commands as cmd
from domain.models import (
    BroadcastChange,
    CommanderChange,
    IncidentState,
    Resolution,
    SeverityChange,
    StageChange,
    StatusUpdate,
)
from domain.naming import channel_name
from domain.vocab import Status, incident_label
from starter.incidents import Incidents

TIMELINE_LIMIT = 40  # events shown by /incident timeline; the full record is the workflow's result

NOT_HERE_YET = {
    "start_call": "calls",
    "create_ticket": "Jira tickets",
    "remind": "reminders",
    "cancel_reminder": "reminders",
    "list_reminders": "reminders",
    "assign_role": "roles",
    "add_followup": "follow-ups",
    "list_followups": "follow-ups",
    "debrief": "debriefs",
}


@dataclass(frozen=True)
class Invocation:
    """Who ran the command, where, and the IDs Slack gave the request."""

    user_id: str
    channel_id: str
    slash_command: str = "/incident"
    request_id: str | None = None  # Slack's trigger_id: a retried delivery runs the update once
    channel_name: str | None = None


@dataclass(frozen=True)
class Reply:
    text: str
    modal: str | None = None  # "declare" or "stage": the ingress opens that form instead
    incident_id: int | None = None
    state: IncidentState | None = None  # what the stage form is prefilled with


class Dispatcher:
    def __init__(self, incidents: Incidents) -> None:
        self.incidents = incidents

    async def run(self, command: cmd.Command, who: Invocation) -> Reply:
        if isinstance(command, cmd.Help):
            topic, slash = command.topic, who.slash_command
            return Reply(render.safe(cmd.usage_for(topic, slash) if topic else cmd.help_text(slash)))
        if isinstance(command, cmd.Declare):
            return await self._declare(command, who)
        if command.kind in NOT_HERE_YET:
            return Reply(f"{NOT_HERE_YET[command.kind].capitalize()} are not set up in this warroom yet.")
        incident_id = await self.incidents.for_channel(who.channel_id, who.channel_name)
        slash = who.slash_command
        if incident_id is None:
            return Reply(
                f"This is not an incident channel. Run `{slash} {command.kind.split('_')[-1]}` in the "
                f"incident's own channel, or declare one with `{slash} declare &lt;title&gt;`."
            )
        return await self._in_incident(incident_id, command, who)

    async def _declare(self, command: cmd.Declare, who: Invocation) -> Reply:
        if command.title is None:
            return Reply("", modal="declare")
        incident_id = await self.incidents.declare(
            command.title,
            command.severity,
            private=command.private,
            declared_by=who.user_id,
            source="slack",
            slash_command=who.slash_command,
        )
        name = channel_name(incident_id, command.title)
        return Reply(
            f":rotating_light: Declared *{incident_label(incident_id)}* ({command.severity.label}). "
            f"Creating `#{name}` and inviting you.",
            incident_id=incident_id,
        )

    async def _in_incident(self, incident_id: int, command: cmd.Command, who: Invocation) -> Reply:
        inc, actor, rid = self.incidents, who.user_id, who.request_id
        match command:
            case cmd.SetStage(stage=None):
                state = await inc.state(incident_id)
                if state.status is Status.RESOLVED:
                    return Reply(f"{incident_label(incident_id)} is already resolved.")
                return Reply("", modal="stage", incident_id=incident_id, state=state)
            case cmd.SetStage(stage=stage, context=context) if stage is not None:
                text = await inc.change_stage(
                    incident_id, StageChange(stage=stage, context=context, actor=actor), rid
                )
            case cmd.PostUpdate(text=body):
                text = await inc.post_update(incident_id, StatusUpdate(text=body, actor=actor), rid)
            case cmd.SetSeverity(severity=severity, reason=reason):
                severity_change = SeverityChange(severity=severity, reason=reason, actor=actor)
                text = await inc.change_severity(incident_id, severity_change, rid)
            case cmd.SetCommander(user_id=user_id):
                text = await inc.assign_commander(
                    incident_id, CommanderChange(user_id=user_id, actor=actor), rid
                )
            case cmd.Broadcast(action="show"):
                text = broadcast_text(await inc.state(incident_id), who.slash_command)
            case cmd.Broadcast(action=action, channel_ids=ids):
                change = BroadcastChange(
                    add=ids if action == "add" else (), remove=ids if action == "remove" else (), actor=actor
                )
                text = await inc.change_broadcast(incident_id, change, rid)
            case cmd.Status():
                text = status_text(await inc.state(incident_id))
            case cmd.Timeline():
                events = await inc.timeline(incident_id)
                text = render.timeline_text(events[-TIMELINE_LIMIT:], incident_id)
            case cmd.Resolve(summary=summary):
                text = await inc.resolve(incident_id, Resolution(summary=summary, actor=actor), rid)
            case _:
                text = render.safe(cmd.help_text(who.slash_command))
        return Reply(text, incident_id=incident_id)


def broadcast_text(state: IncidentState, slash_command: str) -> str:
    channels = state.broadcast_channel_ids
    if not channels:
        return f"No broadcast channels. Add one with `{slash_command} broadcast add #channel`."
    listed = ", ".join(f"<#{c}>" for c in channels)
    return f"Updates go to {listed}. Change with `{slash_command} broadcast add|remove #channel`."


def status_text(state: IncidentState, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    resolved = state.status is Status.RESOLVED
    age = render.duration(state.declared_at, state.resolved_at if resolved and state.resolved_at else now)
    lines = [
        f"*{render.headline(state.view())}*",
        f"Severity: *{state.severity.label}*  Stage: *{'Resolved' if resolved else state.stage.label}*",
        f"Commander: {render.user(state.commander)}",
        f"Broadcast to: {', '.join(f'<#{c}>' for c in state.broadcast_channel_ids) or 'none'}",
        f"{'Lasted' if resolved else 'Open for'}: {age}  Updates: {state.updates_posted}",
    ]
    if resolved and not state.ever_mitigated:
        lines.append(":warning: It was never marked Mitigated.")
    return "\n".join(lines)
