"""Maps each typed `/incident` command to one Temporal call and the ephemeral answer its caller sees."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from activities import slack_limits as limits
from activities import slack_render as render
from domain import commands as cmd
from domain import statuspage as sp
from domain.durations import human as human_duration
from domain.models import (
    CALL_LABELS,
    BroadcastChange,
    CallProviderName,
    CallStart,
    CommanderChange,
    DebriefStart,
    FollowupAdd,
    FollowupTicket,
    IncidentState,
    ReminderOrder,
    ReminderRecord,
    Resolution,
    RoleChange,
    SeverityChange,
    StageChange,
    StatusUpdate,
    TicketOrder,
)
from domain.naming import channel_name
from domain.paging import PAGER_LABELS, Page, PageOrder, PagerName
from domain.permissions import Action
from domain.settings import Settings
from domain.vocab import DEFAULT_SEVERITY, Severity, Status, incident_label
from starter.incidents import Incidents
from starter.permissions import Denial, Permissions

TIMELINE_LIMIT = 40  # events shown by /incident timeline; the full record is the file exported at resolve
REMINDER_TEXT = 3_000  # one reminder in the list (its full text is in its DM)
STATUS_TICKETS = 50  # Jira issues listed by /incident status


@dataclass(frozen=True)
class Integrations:
    """Which calls and Jira this deployment has set up: the ingress answers at once when one is not."""

    call_provider: CallProviderName | None = None  # WARROOM_CALL_PROVIDER
    missing: Mapping[str, list[str]] = field(default_factory=dict)  # zoom/meet/jira/... -> unset variables
    statuspage_components: Mapping[str, str] = field(default_factory=dict)  # STATUSPAGE_COMPONENTS
    pager: PagerName | None = None  # WARROOM_PAGER

    @classmethod
    def from_settings(cls, settings: Settings) -> Integrations:
        provider = None if settings.call_provider == "none" else settings.call_provider
        names = ("zoom", "meet", "jira", "statuspage", "pagerduty", "opsgenie")
        missing = {name: settings.missing_for(name) for name in names}
        return cls(provider, missing, settings.statuspage_components, settings.pager)

    def pager_for(self) -> tuple[PagerName | None, str]:
        """The pager `/incident page` uses (WARROOM_PAGER, else the one set up), or why there is none."""
        ready: list[PagerName] = [p for p in ("pagerduty", "opsgenie") if self.ready(p)]
        pager = self.pager or (ready[0] if ready else None)
        if pager is None:
            pd, og = _vars(self.missing.get("pagerduty", [])), _vars(self.missing.get("opsgenie", []))
            return (
                None,
                f"Paging is not set up in this warroom: set {pd} for PagerDuty, or {og} for Opsgenie.",
            )
        if not self.ready(pager):
            return (
                None,
                f"{PAGER_LABELS[pager]} is not set up in this warroom: set {_vars(self.missing[pager])}.",
            )
        return pager, ""

    def call_provider_for(self, asked: CallProviderName | None) -> tuple[CallProviderName | None, str]:
        """The provider to use (asked, else the configured default, else the one set up), or why there is
        none."""
        ready: list[CallProviderName] = [p for p in ("zoom", "meet") if self.ready(p)]
        provider = asked or self.call_provider or (ready[0] if ready else None)
        if provider is None:
            zoom, meet = _vars(self.missing.get("zoom", [])), _vars(self.missing.get("meet", []))
            return None, (
                "No call provider is set up in this warroom. Set `WARROOM_CALL_PROVIDER=zoom` with "
                f"{zoom}, or `meet` with {meet}."
            )
        if not self.ready(provider):
            missing = _vars(self.missing[provider])
            return None, f"{CALL_LABELS[provider]} is not set up in this warroom: set {missing}."
        return provider, ""

    def ready(self, integration: str) -> bool:
        return not self.missing.get(integration)


def _vars(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names) or "its settings"


@dataclass(frozen=True)
class Invocation:
    """Who ran the command, where, and the IDs Slack gave the request."""

    user_id: str
    channel_id: str
    slash_command: str = "/incident"
    request_id: str | None = None  # Slack's trigger_id: a retried delivery runs the update once
    channel_name: str | None = None
    user_name: str | None = None  # the caller's Slack name: the Temporal UI shows it instead of the ID


@dataclass(frozen=True)
class Reply:
    text: str
    modal: str | None = None  # "declare" or "stage": the ingress opens that form instead
    incident_id: int | None = None
    state: IncidentState | None = None  # what the stage form is prefilled with


class Dispatcher:
    def __init__(
        self,
        incidents: Incidents,
        integrations: Integrations | None = None,
        permissions: Permissions | None = None,  # None: warroom.toml's [permissions] are not enforced
        default_severity: Severity = DEFAULT_SEVERITY,  # `declare <title>`: WARROOM_DEFAULT_SEVERITY
    ) -> None:
        self.incidents = incidents
        self.default_severity = default_severity
        self.integrations = integrations or Integrations()
        self.permissions = permissions

    async def run(self, command: cmd.Command, who: Invocation) -> Reply:
        """The answer to one command; its text always fits a Slack ack or ephemeral (40,000 characters)."""
        reply = await self._run(command, who)
        fitted = limits.fit_text(reply.text)
        return reply if fitted == reply.text else replace(reply, text=fitted)

    async def _run(self, command: cmd.Command, who: Invocation) -> Reply:
        if isinstance(command, cmd.Help):
            topic, slash = command.topic, who.slash_command
            return Reply(render.safe(cmd.usage_for(topic, slash) if topic else cmd.help_text(slash)))
        if isinstance(command, cmd.Declare):
            return await self._declare(command, who)
        unready = self._not_set_up(command)
        if unready:
            return Reply(unready)
        incident_id = await self.incidents.for_channel(who.channel_id, who.channel_name)
        slash = who.slash_command
        if incident_id is None:
            return Reply(
                f"This is not an incident channel. Run `{slash} {command.kind.split('_')[-1]}` in the "
                f"incident's own channel, or declare one with `{slash} declare &lt;title&gt;`."
            )
        return await self._in_incident(incident_id, command, who)

    def _not_set_up(self, command: cmd.Command) -> str:
        """Why this command cannot work in this deployment (an integration's settings are missing), or ""."""
        if isinstance(command, cmd.StartCall):
            return self.integrations.call_provider_for(command.provider)[1]
        if isinstance(command, Page):
            return self.integrations.pager_for()[1]
        jira = isinstance(command, cmd.CreateTicket | cmd.TicketFollowup)
        if jira and not self.integrations.ready("jira"):
            return f"Jira is not set up in this warroom: set {_vars(self.integrations.missing['jira'])}."
        if isinstance(command, sp.PublicCommand) and not self.integrations.ready("statuspage"):
            missing = _vars(
                self.integrations.missing.get("statuspage", ["STATUSPAGE_API_KEY", "STATUSPAGE_PAGE_ID"])
            )
            return (
                f"The status page is not set up in this warroom: set {missing} (and `STATUSPAGE_COMPONENTS` "
                "to name components); the README's Statuspage section says where to find them."
            )
        return ""

    async def _declare(self, command: cmd.Declare, who: Invocation) -> Reply:
        if command.title is None:
            return Reply("", modal="declare")  # the form's submission is checked (slack_app)
        severity = command.severity or self.default_severity
        if self.permissions is not None:
            denial = await self.permissions.check_declare(severity, who.user_id)
            if denial is not None:
                return Reply(denial.text)
        incident_id = await self.incidents.declare(
            command.title,
            severity,
            private=command.private,
            declared_by=who.user_id,
            declared_by_name=who.user_name,
            source="slack",
            slash_command=who.slash_command,
        )
        name = channel_name(incident_id, command.title)
        return Reply(
            f":rotating_light: Declared *{incident_label(incident_id)}* ({severity.label}). "
            f"Creating `#{name}` and inviting you.",
            incident_id=incident_id,
        )

    async def _denied(self, incident_id: int, command: cmd.Command, who: Invocation) -> Denial | None:
        """Why warroom.toml's [permissions] refuse this command to its caller, or None. Asks only what a
        rule needs: the incident's commander (a query) for "commander", Slack for a user group."""
        p = self.permissions
        if p is None or not isinstance(command, cmd.Resolve | cmd.SetSeverity):
            return None
        action: Action = "resolve" if isinstance(command, cmd.Resolve) else "severity"
        raising_to_sev1 = isinstance(command, cmd.SetSeverity) and command.severity is Severity.SEV1
        if not p.restricts(action) and not (raising_to_sev1 and p.restricts("declare_sev1")):
            return None
        commander = None
        if p.needs_commander(action):
            state = await self.incidents.state(incident_id)
            commander = state.commander or state.declared_by
        if isinstance(command, cmd.SetSeverity):
            return await p.check_severity(command.severity, who.user_id, incident_id, commander)
        return await p.check(action, who.user_id, incident_id=incident_id, commander=commander)

    async def _in_incident(self, incident_id: int, command: cmd.Command, who: Invocation) -> Reply:
        denial = await self._denied(incident_id, command, who)
        if denial is not None:
            return Reply(denial.text, incident_id=incident_id)  # nothing reaches the workflow
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
            case cmd.SetCommander(user_id=user_id, user_name=name):
                commander = CommanderChange(
                    user_id=user_id, actor=actor, user_name=name, actor_name=who.user_name
                )
                text = await inc.assign_commander(incident_id, commander, rid)
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
                state = await inc.state(incident_id)
                shown = state.timeline[-TIMELINE_LIMIT:]
                text = render.timeline_text(shown, incident_id, earlier=state.events_recorded - len(shown))
            case cmd.StartCall(provider=asked):
                provider, _ = self.integrations.call_provider_for(asked)
                assert provider is not None  # _not_set_up answered otherwise
                start = CallStart(provider=provider, actor=actor)
                text = await inc.start_call(incident_id, start, rid)
            case Page(target=target, message=message):
                pager, _ = self.integrations.pager_for()
                assert pager is not None  # _not_set_up answered otherwise
                page = PageOrder(provider=pager, target=target, message=message, actor=actor)
                text = await inc.page(incident_id, page, rid)
            case cmd.CreateTicket(summary=summary):
                text = await inc.create_ticket(incident_id, TicketOrder(summary=summary, actor=actor), rid)
            case sp.StatuspageOpen() | sp.StatuspageConfirm() | sp.PublicUpdate():
                text = await self._statuspage(incident_id, command, who)
            case cmd.Remind(when=when, text=body):
                order = ReminderOrder(when=when, text=body, actor=actor)
                text = await inc.set_reminder(incident_id, order, rid)
            case cmd.ListReminders():
                text = reminders_text(await inc.pending_reminders(incident_id, actor), who.slash_command)
            case cmd.CancelReminder(reminder_id=reminder_id):
                text = await inc.cancel_reminder(reminder_id, actor, rid)
            case cmd.AssignRole(role=role, user_id=user_id, user_name=name):
                role_change = RoleChange(
                    role=role, user_id=user_id, actor=actor, user_name=name, actor_name=who.user_name
                )
                text = await inc.assign_role(incident_id, role_change, rid)
            case cmd.AddFollowup(text=body):
                text = await inc.add_followup(incident_id, FollowupAdd(text=body, actor=actor), rid)
            case cmd.TicketFollowup(followup_id=number):
                ticket = FollowupTicket(followup_id=number, actor=actor)
                text = await inc.ticket_followup(incident_id, ticket, rid)
            case cmd.ListFollowups():
                text = followups_text(await inc.state(incident_id))
            case cmd.SplitGroup(number=number):
                text = await inc.split(incident_id, number, actor)
            case cmd.Debrief():
                text = await inc.start_debrief(incident_id, DebriefStart(actor=actor), rid)
            case cmd.Resolve(now=False) if offer := wrap_up_offer(await inc.state(incident_id)):
                text = offer
            case cmd.Resolve(summary=summary):
                text = await inc.resolve(incident_id, Resolution(summary=summary, actor=actor), rid)
            case _:
                text = render.safe(cmd.help_text(who.slash_command))
        return Reply(text, incident_id=incident_id)

    async def _statuspage(self, incident_id: int, command: sp.PublicCommand, who: Invocation) -> str:
        """A preview of what the status page would show (components read here), or publishing one."""
        if isinstance(command, sp.StatuspageConfirm):
            req = sp.PublicRequest(confirm=sp.PublicConfirm(number=command.number, actor=who.user_id))
        elif isinstance(command, sp.PublicUpdate):
            draft = sp.PublicDraftRequest(kind="update", body=command.text, actor=who.user_id)
            req = sp.PublicRequest(preview=draft)
        else:
            try:
                components, rest = sp.split_components(command.text, self.integrations.statuspage_components)
            except cmd.UsageError as err:
                return render.safe(cmd.with_command_name(err.message, who.slash_command))
            name, body = sp.split_name(rest)
            if not name or len(name) > sp.NAME_MAX:
                usage = cmd.usage_for("statuspage", who.slash_command)
                return render.safe(f"Give the public title, at most {sp.NAME_MAX} characters. Usage: {usage}")
            draft = sp.PublicDraftRequest(
                kind="open", name=name, body=body, components=components, actor=who.user_id
            )
            req = sp.PublicRequest(preview=draft)
        return await self.incidents.statuspage(incident_id, req, who.request_id)


def broadcast_text(state: IncidentState, slash_command: str) -> str:
    channels = state.broadcast_channel_ids
    if not channels:
        return f"No broadcast channels. Add one with `{slash_command} broadcast add #channel`."
    listed = ", ".join(f"<#{c}>" for c in channels)
    return f"Updates go to {listed}. Change with `{slash_command} broadcast add|remove #channel`."


def wrap_up_offer(state: IncidentState) -> str:
    """Before resolving with open follow-ups: what is left to do while the incident is still open."""
    open_followups = [f for f in state.followups if f.ticket is None]
    if not open_followups or state.status is Status.RESOLVED:
        return ""
    slash = state.slash_command
    head = [f"*{incident_label(state.incident_id)}* has {len(open_followups)} open follow-up(s):"]
    items = [f"• #{f.followup_id} {render.followup_text(f)}" for f in open_followups]
    tail = [f"Make one a Jira issue with `{slash} followup jira &lt;n&gt;`."]
    if not state.debrief_requested:
        tail.append(
            f"Hold a hot debrief first with `{slash} debrief`: a call and a things-to-revisit thread."
        )
    tail.append(f"Resolve anyway with `{slash} resolve --now [summary]`; follow-ups stay in the timeline.")
    return limits.fit_lines(head, items, tail, omitted=_more(f"`{slash} followups`"))


def _more(where: str) -> Callable[[int], str]:
    """The line that counts list items left out of a reply, and where they all are."""
    return lambda n: f"… and {n} more: {where} lists them all"


def followups_text(state: IncidentState) -> str:
    slash = state.slash_command
    if not state.followups:
        return f"No follow-ups yet. Record one with `{slash} followup <text>`.".replace(
            "<text>", "&lt;text&gt;"
        )
    head = [f"*Follow-ups of {incident_label(state.incident_id)}*"]
    items = []
    for f in state.followups:
        by = f" ({render.user(f.author)})" if f.author else ""
        where = render.ticket_link(f.ticket) if f.ticket else "open"
        items.append(f"• #{f.followup_id} {render.followup_text(f)}{by}: {where}")
    tail = []
    if any(f.ticket is None for f in state.followups):
        tail.append(f"Make one a Jira issue with `{slash} followup jira &lt;n&gt;`.")
    return limits.fit_lines(head, items, tail, omitted=_more(limits.TIMELINE_FILE))


def reminders_text(reminders: list[ReminderRecord], slash_command: str) -> str:
    if not reminders:
        set_one = f"`{slash_command} remind in 2h &lt;text&gt;`"
        return f"You have no pending reminders here. Set one with {set_one}."
    items = [
        f"• `{r.reminder_id}` {r.local}: {limits.shorten(render.safe(r.text), REMINDER_TEXT, 'its DM')}"
        for r in reminders
    ]
    tail = [f"Cancel one with `{slash_command} remind cancel <id>`.".replace("<id>", "&lt;id&gt;")]
    return limits.fit_lines(["Your pending reminders:"], items, tail, omitted=lambda n: f"… and {n} more")


def status_text(state: IncidentState, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    resolved = state.status is Status.RESOLVED
    ended = state.resolved_at if resolved and state.resolved_at else now
    age = human_duration((ended - state.declared_at).total_seconds())
    lines = [
        f"*{render.headline(state.view())}*",
        f"Severity: *{state.severity.label}*  Stage: *{'Resolved' if resolved else state.stage.label}*",
        f"Commander: {render.user(state.commander)}",
        *(
            f"{render.safe(role.capitalize())}: {render.user(holder)}"
            for role, holder in sorted(state.roles.items())
        ),
        f"Call: {render.call_link(state.call) if state.call else 'none'}",
        f"Broadcast to: {', '.join(f'<#{c}>' for c in state.broadcast_channel_ids) or 'none'}",
        f"{'Lasted' if resolved else 'Open for'}: {age}  Updates: {state.updates_posted}",
    ]
    if state.tickets:
        shown = [render.ticket_link(t) for t in state.tickets[:STATUS_TICKETS]]
        more = len(state.tickets) - len(shown)
        lines.append("Jira: " + ", ".join(shown) + (f" and {more} more" if more > 0 else ""))
    public = state.statuspage
    if public.page_incident_id:
        lines.append(f"Status page: {public.shortlink or public.page_incident_id} ({public.status})")
    if resolved and not state.ever_mitigated:
        lines.append(":warning: It was never marked Mitigated.")
    return "\n".join(lines)
