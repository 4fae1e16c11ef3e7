"""IncidentWorkflow: one per incident (ID `incident-<id>`, `<queue>-incident-<id>`), from declare to resolve.

Handlers only validate and record intent (timeline, outbox); the main loop turns intents into Slack
activities, in order, so an update can never overtake the overview it is threaded under.

This class keeps the handlers (their names are in history) and wires the loops together; what a command
does to the state is in `transitions`, the queued Slack work in `outbox`, the rest in `channel`,
`directory_link`, `integrations`, `nudges`, `remind` and `context`.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities import slack_render as render
    from domain.alerts import AlertGroup
    from domain.models import (
        CALL_LABELS,
        BroadcastChange,
        CallStart,
        CommanderChange,
        CommandReply,
        DebriefNote,
        DebriefStart,
        FollowupAdd,
        FollowupTicket,
        IncidentInput,
        IncidentResult,
        IncidentState,
        ReactionAdded,
        ReminderOrder,
        Resolution,
        RoleChange,
        SeverityChange,
        StageChange,
        StatusUpdate,
        StormSplit,
        TicketOrder,
        TimelineEvent,
    )
    from domain.statuspage import PublicRequest
    from domain.vocab import Stage, Status, incident_label
    from workflows import attributes, broadcasts, directory_link, observe, patches, remind, transitions
    from workflows.alerting import alerts_fired as take_alerts
    from workflows.alerting import split_out
    from workflows.archive import TimelineArchive
    from workflows.channel import Channel
    from workflows.context import IncidentContext, reject
    from workflows.integrations import KINDS, Integrations, PagingUpdates
    from workflows.nudges import Nudges
    from workflows.outbox import Outbox


# Status updates refused (the caller is told to resend) while this many announcements wait: the queue, carried
# through continue-as-new, stays small however fast updates arrive (Slack posts about one message a second).
MAX_QUEUED = 100


@workflow.defn
class IncidentWorkflow(PagingUpdates):
    """An incident: its channel, stage, severity, commander, broadcast threads, timeline (+ PagingUpdates)."""

    @workflow.init
    def __init__(self, inp: IncidentInput) -> None:
        d = inp.declaration
        self._s = inp.state or transitions.new_state(d, workflow.now())
        self._declaration = d
        self._ctx = IncidentContext(self._s)
        self._outbox = Outbox(self._ctx)
        self._integrations = Integrations(self._ctx)
        self._archive = TimelineArchive(self._ctx)
        self._live_at: int | None = None  # history length of the first live workflow task (_went_live_now)
        if inp.state is None and d.call_provider is not None:
            transitions.order_call(self._s, d.call_provider)

    # --- main loop ------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: IncidentInput) -> IncidentResult:
        s = self._s
        self._went_live_now()
        if inp.state is None:
            transitions.declared(s, workflow.now())
            self._ctx.report()
        else:
            observe.log(s, "incident continued in a new run")
        observe.show_incident(s)
        attributes.sync(s)
        # Zoom, Meet and Jira run beside the Slack work, so a slow or failing vendor never holds up updates.
        integrations = [asyncio.create_task(self._integrations.loop(k)) for k in KINDS]
        integrations.append(asyncio.create_task(Nudges(self._ctx).loop()))
        if not s.channel_ready and s.channel_error is None:
            await Channel(self._ctx, self._outbox).open()
        self._ctx.opening = False
        while True:
            await workflow.wait_condition(
                lambda: (
                    self._outbox.has_work()
                    or s.resolve_requested
                    or self._should_continue_as_new()
                    or self._archive.due()
                )
            )
            self._went_live_now()
            await self._outbox.drain(hand_over=self._hand_over_queued_work)
            await self._archive.run()
            if s.resolve_requested and not self._outbox.has_work():
                break
            if self._should_continue_as_new():
                await workflow.wait_condition(workflow.all_handlers_finished)
                # Queued work travels in the state, so a busy incident does not wait for a quiet moment
                # (under back-to-back updates a run grew to 3x the suggested size). Runs recorded before
                # this patch replay their old rule: continue as new only with nothing queued.
                if self._hand_over_queued_work() or not self._outbox.has_work():
                    history = workflow.info().get_current_history_length()
                    observe.log(s, "continuing as new", history_events=history)
                    workflow.continue_as_new(IncidentInput(declaration=self._declaration, state=s))
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._integrations.finish(self._outbox)
        await self._outbox.drain()
        for task in integrations:
            task.cancel()
        if s.channel_id and workflow.patched(patches.TIMELINE_EXPORT):
            await self._outbox.export_timeline()
        await directory_link.leave(self._ctx)
        return s.result()

    def _should_continue_as_new(self) -> bool:
        """Suggested by Temporal, and no call or ticket in flight (a new run would create it again)."""
        return workflow.info().is_continue_as_new_suggested() and self._integrations.idle()

    def _hand_over_queued_work(self) -> bool:
        return self._should_continue_as_new() and workflow.patched(patches.CONTINUE_WITH_QUEUED_WORK)

    def _validate_open(self) -> None:
        if self._s.status is Status.RESOLVED:
            reject(f"{incident_label(self._s.incident_id)} is already resolved.")

    # --- updates: commands whose caller gets an answer ------------------------------------------------------

    @workflow.update
    def change_stage(self, change: StageChange) -> CommandReply:
        """`/incident stage`: moves to a stage (any order), posts its context, may change broadcasts."""
        s = self._s
        moved = ""
        if change.broadcast_channels is not None:
            moved = self._apply_broadcast(change.broadcast_channels, change.actor)
        if change.stage is s.stage and not change.context:  # the form, used to change channels only
            return CommandReply(text=moved.strip())
        self._move_stage(change.stage, change.context, change.actor)
        return CommandReply(text=f"Stage set to *{change.stage.label}*.{moved}")

    def _move_stage(self, stage: Stage, context: str, actor: str | None) -> None:
        add = self._stage_broadcasts(stage)
        transitions.move_stage(self._s, workflow.now(), stage, context, actor, add_stage_channels=add)
        self._ctx.changed()

    def _stage_broadcasts(self, stage: Stage) -> bool:
        """warroom.toml `broadcast.by_stage`; unconfigured (every run before it existed) does nothing."""
        if not broadcasts.stage_channels(self._s, stage):
            return False
        return workflow.patched(patches.STAGE_BROADCASTS)

    @change_stage.validator
    def _validate_stage(self, change: StageChange) -> None:
        self._validate_open()
        same_channels = change.broadcast_channels is None or set(change.broadcast_channels) == set(
            self._s.broadcast_channel_ids
        )
        if change.stage is self._s.stage and not change.context and same_channels:
            reject(f"The stage is already {change.stage.label}; add context to post it again.")

    @workflow.update
    async def post_update(self, update: StatusUpdate) -> CommandReply:
        """`/incident update`: a status update in the channel and a reply in every broadcast thread, posted
        within this update's workflow task when nothing is queued before it (patch), else queued."""
        transitions.post_update(self._s, workflow.now(), update.text, update.actor)
        self._ctx.report()
        if not workflow.patched(patches.UPDATE_IN_TASK):  # queued, and answered before it was posted
            n = len(self._s.broadcast_channel_ids)
            return CommandReply(text=f"Update posted here and to {n} broadcast channel{'s' * (n != 1)}.")
        if not self._outbox.can_post_now():
            return CommandReply(text=broadcasts.update_reply(self._s, None, posted_now=False))
        deliveries = await self._outbox.post_now(fresh=self._went_live_now())
        return CommandReply(text=broadcasts.update_reply(self._s, deliveries, posted_now=True))

    def _went_live_now(self) -> bool:
        """Whether this instance runs its first live (not replayed) workflow task now: a task an earlier
        worker may have started and died in. Not deterministic: it only ever reaches an activity's input."""
        length = workflow.info().get_current_history_length()
        if self._live_at is None and not workflow.unsafe.is_replaying():
            self._live_at = length
        return self._live_at in (None, length)

    @post_update.validator
    def _validate_update(self, update: StatusUpdate) -> None:
        self._validate_open()
        if not update.text.strip():
            reject("An update needs text.")
        waiting = len(self._s.outbox)
        if waiting >= MAX_QUEUED:  # Slack is far behind: say so rather than grow the queue without end
            label = incident_label(self._s.incident_id)
            reject(
                f"Slack is behind: {waiting} earlier messages of {label} are still waiting to be posted, so"
                " this update was not taken. Send it again in a minute."
            )

    @workflow.update
    def change_severity(self, change: SeverityChange) -> CommandReply:
        """`/incident severity`: changes severity; the overview everywhere shows it."""
        transitions.change_severity(self._s, workflow.now(), change.severity, change.reason, change.actor)
        self._ctx.changed()
        return CommandReply(text=f"Severity set to *{change.severity.label}*.")

    @change_severity.validator
    def _validate_severity(self, change: SeverityChange) -> None:
        self._validate_open()
        if change.severity is self._s.severity:
            reject(f"The severity is already {change.severity.label}.")

    @workflow.update
    def assign_commander(self, change: CommanderChange) -> CommandReply:
        """`/incident commander @user`: sets the incident commander."""
        transitions.assign_commander(self._s, workflow.now(), change)
        if workflow.patched(patches.ROLE_DMS):
            transitions.dm_role(self._s, "commander", change.user_id)
        self._ctx.changed()
        return CommandReply(text=f"<@{change.user_id}> is now the incident commander.")

    @assign_commander.validator
    def _validate_commander(self, change: CommanderChange) -> None:
        self._validate_open()
        if change.user_id == self._s.commander:
            reject(f"<@{change.user_id}> is already the incident commander.")

    @workflow.update
    def change_broadcast(self, change: BroadcastChange) -> CommandReply:
        """`/incident broadcast add|remove`: a channel added later gets its own overview first."""
        wanted = [c for c in self._s.broadcast_channel_ids if c not in change.remove]
        wanted += [c for c in change.add if c not in wanted]
        text = self._apply_broadcast(tuple(wanted), change.actor)
        return CommandReply(text=text.strip())

    @change_broadcast.validator
    def _validate_broadcast(self, change: BroadcastChange) -> None:
        self._validate_open()
        current = set(self._s.broadcast_channel_ids)
        unknown = [c for c in change.remove if c not in current]
        if unknown:
            reject(f"<#{unknown[0]}> is not a broadcast channel of this incident.")
        if self._s.channel_id and self._s.channel_id in change.add:
            reject("The incident channel itself cannot be a broadcast channel.")

    def _apply_broadcast(self, wanted: tuple[str, ...], actor: str | None) -> str:
        text = transitions.change_broadcasts(self._s, workflow.now(), wanted, actor)
        self._ctx.report()
        return text

    @workflow.update
    def start_call(self, start: CallStart) -> CommandReply:
        """`/incident call [zoom|meet]`: a new call; its link replaces the current one everywhere."""
        s = self._s
        transitions.order_call(s, start.provider, start.actor)
        label = CALL_LABELS[start.provider]
        verb = "Replacing the call with a new" if s.call is not None else "Starting a"
        return CommandReply(
            text=f"{verb} {label} call; the link will be in the channel bookmarks, description and overview."
        )

    @start_call.validator
    def _validate_call(self, start: CallStart) -> None:
        self._validate_open()
        if any(p.provider == start.provider for p in self._s.pending_calls):
            reject("A call is already being created; its link will appear here in a moment.")

    @workflow.update
    def create_ticket(self, order: TicketOrder) -> CommandReply:
        """`/incident jira <summary>`: a Jira issue linked back to this channel; its link is posted here."""
        transitions.order_ticket(self._s, order.summary, order.actor)
        return CommandReply(text="Creating the Jira issue; its link will be posted here.")

    @create_ticket.validator
    def _validate_ticket(self, order: TicketOrder) -> None:
        self._validate_open()
        if not order.summary.strip():
            reject("A Jira issue needs a summary.")

    @workflow.update
    def statuspage(self, req: PublicRequest) -> CommandReply:
        """`/incident statuspage`, `update --public`: a preview; `statuspage --confirm <n>` publishes it."""
        return self._integrations.public.handle(req)

    @statuspage.validator
    def _validate_statuspage(self, req: PublicRequest) -> None:
        self._integrations.public.validate(req)

    @workflow.update
    async def set_reminder(self, order: ReminderOrder) -> CommandReply:
        """`/incident remind <when> <text>`: a ReminderWorkflow child that DMs the caller at that time.

        The time is read in the caller's Slack time zone, looked up by an activity (so it is in history).
        """
        return await remind.set_reminder(self._ctx, order)

    @set_reminder.validator
    def _validate_reminder(self, order: ReminderOrder) -> None:
        self._validate_open()
        if not order.text.strip():
            reject("A reminder needs text: what should I remind you of?")

    @workflow.update
    def assign_role(self, change: RoleChange) -> CommandReply:
        """`/incident role <role> @user`: the person gets a DM describing the role; the overview shows it."""
        transitions.assign_role(self._s, workflow.now(), change)
        self._ctx.changed()
        return CommandReply(text=f"<@{change.user_id}> is now the {change.role}; I sent them the role by DM.")

    @assign_role.validator
    def _validate_role(self, change: RoleChange) -> None:
        self._validate_open()
        known = transitions.role_descriptions(self._s)
        if change.role not in known:
            reject(f"There is no role `{change.role}`. Roles: {', '.join(f'`{r}`' for r in known)}.")
        holder = self._s.commander if change.role == "commander" else self._s.roles.get(change.role)
        if holder == change.user_id:
            reject(f"<@{change.user_id}> is already the {change.role}.")

    @workflow.update
    def add_followup(self, f: FollowupAdd) -> CommandReply:
        """`/incident followup <text>`: something to do after the incident, with its author."""
        followup = transitions.add_followup(self._s, workflow.now(), f)
        self._ctx.report()
        slash = self._s.slash_command
        return CommandReply(
            text=f"Follow-up #{followup.followup_id} recorded. `{slash} followups` lists them; "
            f"`{slash} followup jira {followup.followup_id}` makes it a Jira issue."
        )

    @add_followup.validator
    def _validate_followup(self, f: FollowupAdd) -> None:
        self._validate_open()
        if not f.text.strip():
            reject("A follow-up needs text.")

    @workflow.update
    def ticket_followup(self, t: FollowupTicket) -> CommandReply:
        """A follow-up becomes a Jira issue (its text the summary); the follow-up shows the issue's key."""
        followup = transitions.order_followup_ticket(self._s, t.followup_id, t.actor)
        return CommandReply(text=f"Creating a Jira issue for follow-up #{followup.followup_id}.")

    @ticket_followup.validator
    def _validate_ticket_followup(self, t: FollowupTicket) -> None:
        self._validate_open()
        s = self._s
        if not 1 <= t.followup_id <= len(s.followups):
            reject(f"There is no follow-up #{t.followup_id}; `{s.slash_command} followups` lists them.")
        followup = s.followups[t.followup_id - 1]
        if followup.ticket is not None:
            reject(f"Follow-up #{t.followup_id} is already {followup.ticket.key}.")
        if any(p.followup_id == t.followup_id for p in s.pending_tickets):
            reject(f"A Jira issue for follow-up #{t.followup_id} is being created.")

    @workflow.update
    def start_debrief(self, start: DebriefStart) -> CommandReply:
        """`/incident debrief`: a call for the hot debrief and a "things to revisit" thread in the channel."""
        s = self._s
        provider = self._declaration.call_provider or (s.call.provider if s.call else None)
        transitions.start_debrief(s, workflow.now(), provider, start.actor)
        self._ctx.report()
        call = "a call and " if provider else ""
        return CommandReply(
            text=f"Starting the hot debrief: {call}a things-to-revisit thread in this channel."
        )

    @start_debrief.validator
    def _validate_debrief(self, start: DebriefStart) -> None:
        self._validate_open()
        if self._s.debrief_requested:
            reject("The debrief has started; its thread is in this channel.")

    @workflow.signal
    def debrief_note(self, note: DebriefNote) -> None:
        """A reply in the debrief thread: it goes into the timeline (once per message)."""
        transitions.debrief_note(self._s, workflow.now(), note)
        self._ctx.report()

    @workflow.update
    def resolve(self, resolution: Resolution) -> CommandReply:
        """`/incident resolve`: posts the final summary everywhere and ends the incident."""
        s = self._s
        transitions.resolve(s, workflow.now(), resolution.summary, resolution.actor)
        self._ctx.changed()
        observe.count_resolved(s.severity)
        return CommandReply(text=render.resolve_reply(s.incident_id, s.ever_mitigated, s.followups))

    @resolve.validator
    def _validate_resolve(self, resolution: Resolution) -> None:
        self._validate_open()

    # --- signals: fire-and-forget events ----------------------------------------------------------------

    @workflow.signal
    def reaction_added(self, reaction: ReactionAdded) -> None:
        """A broadcast reaction (:mega: etc., or warroom.toml's): the message becomes an update, once.
        A follow-up reaction (warroom.toml's): the message becomes a follow-up, once."""
        key = transitions.take_reaction(self._s, reaction)
        if key is not None:  # its place in the queue is where it arrived (patch) or after the queue (before)
            in_order = workflow.patched(patches.REACTIONS_IN_ORDER)
            transitions.queue_reaction(self._s, key, reaction, in_order=in_order)

    @workflow.signal
    def alerts_fired(self, group: AlertGroup) -> None:
        """Monitoring sent this incident's alert group again: new alerts are posted once, in the channel
        only; repeats change nothing; "all resolved" is noted (and moves to Mitigated when configured)."""
        mitigate = take_alerts(self._s, workflow.now(), group)
        self._ctx.report()
        if mitigate:
            self._move_stage(Stage.MITIGATED, f"alerts resolved ({group.source})", None)

    @workflow.update
    def split_group(self, split: StormSplit) -> CommandReply:
        """`/incident split <n>` in the alert storm: the group has its own incident (the ingress made it)."""
        text = split_out(self._s, workflow.now(), split)
        self._ctx.report()
        return CommandReply(text=f"{text}.")

    @split_group.validator
    def _validate_split(self, split: StormSplit) -> None:
        if self._s.storm is None:
            reject("Only the alert storm incident has alert groups to split out.")

    # --- queries ----------------------------------------------------------------------------------------

    @workflow.query
    def state(self) -> IncidentState:
        return self._s

    @workflow.query
    def debrief_thread(self) -> str | None:
        """The ts of the debrief's "things to revisit" thread, so the ingress signals only its replies."""
        return self._s.debrief_ts or None

    @workflow.query
    def timeline(self) -> list[TimelineEvent]:
        """The newest events (a long incident's older ones are archived: `state().events_recorded`)."""
        return self._s.timeline
