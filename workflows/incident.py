"""IncidentWorkflow: one per incident (ID `incident-<id>`), from declare to resolve.

Handlers only validate and record intent (timeline, outbox); the main loop turns intents into Slack
activities, in order, so an update can never overtake the overview it is threaded under.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.slack import SlackActivities
    from domain.alerts import AlertGroup, describe_alerts
    from domain.effects import (
        AnnounceRequest,
        ChannelRef,
        ChannelSetup,
        CreateChannelRequest,
        Delivery,
        MessageInfo,
        MessageRequest,
        NoteRequest,
        OverviewRequest,
    )
    from domain.models import (
        Announcement,
        AnnouncementKind,
        BroadcastChange,
        BroadcastThread,
        ChannelRegistration,
        CommanderChange,
        CommandReply,
        DedupRelease,
        IncidentInput,
        IncidentResult,
        IncidentState,
        PendingReaction,
        ReactionAdded,
        Resolution,
        SeverityChange,
        StageChange,
        StatusUpdate,
        TimelineEvent,
    )
    from domain.naming import DIRECTORY_WORKFLOW_ID
    from domain.vocab import Stage, Status, incident_label
    from workflows import attributes, broadcasts, observe
    from workflows.directory import IncidentDirectoryWorkflow

SLACK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=10,
)
SLACK_TIMEOUT = timedelta(seconds=30)
CONTINUE_WITH_QUEUED_WORK = "continue-as-new-with-queued-work"  # workflow.patched ID, see CONTRIBUTING.md


def reject(message: str) -> None:
    """Rejects an update in its validator: the caller sees `message`, history records nothing."""
    raise ApplicationError(message, type="UsageError", non_retryable=True)


@workflow.defn
class IncidentWorkflow:
    """An incident: its channel, stage, severity, commander, broadcast threads and timeline."""

    @workflow.init
    def __init__(self, inp: IncidentInput) -> None:
        d = inp.declaration
        self._s = inp.state or IncidentState(
            incident_id=d.incident_id,
            title=d.title,
            severity=d.severity,
            private=d.private,
            declared_by=d.declared_by,
            declared_at=workflow.now(),
            source=d.source,
            slash_command=d.slash_command,
            broadcasts=[BroadcastThread(channel_id=c) for c in dict.fromkeys(d.broadcast_channels)],
            dedup_key=d.dedup_key,
            alert=d.alert,
            seen_alerts=[a.fingerprint for a in d.alert.alerts] if d.alert else [],
            resolve_mitigates=d.resolve_mitigates,
            stage_broadcasts=d.stage_broadcasts,
            broadcast_reactions=d.broadcast_reactions,
            severity_labels=d.severity_labels,
            channel_name_template=d.channel_name_template,
        )
        self._declaration = d

    # --- main loop ------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: IncidentInput) -> IncidentResult:
        s = self._s
        if inp.state is None:
            who = f" by <@{s.declared_by}>" if s.declared_by else f" from {s.source}"
            self._record("declared", f"{s.severity.label} {s.title} (declared{who})", s.declared_by)
        else:
            observe.log(s, "incident continued in a new run")
        observe.show_incident(s)
        attributes.sync(s)
        if not s.channel_ready:
            await self._open_channel()
        while True:
            await workflow.wait_condition(
                lambda: self._has_work() or s.resolve_requested or self._should_continue_as_new()
            )
            await self._drain(may_hand_over=True)
            if s.resolve_requested and not self._has_work():
                break
            if self._should_continue_as_new():
                await workflow.wait_condition(workflow.all_handlers_finished)
                # Queued work travels in the state, so a busy incident does not wait for a quiet moment
                # (under back-to-back updates a run grew to 3x the suggested size). Runs recorded before
                # this patch replay their old rule: continue as new only with nothing queued.
                if self._hand_over_queued_work() or not self._has_work():
                    history = workflow.info().get_current_history_length()
                    observe.log(s, "continuing as new", history_events=history)
                    workflow.continue_as_new(IncidentInput(declaration=self._declaration, state=s))
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._drain()
        if s.dedup_key:
            await self._release_dedup_key(s.dedup_key)
        return s.result()

    def _should_continue_as_new(self) -> bool:
        return workflow.info().is_continue_as_new_suggested()

    def _has_work(self) -> bool:
        s = self._s
        return bool(s.outbox or s.pending_reactions or s.overview_stale or self._missing_overviews())

    def _missing_overviews(self) -> list[BroadcastThread]:
        return broadcasts.missing_overviews(self._s)

    async def _open_channel(self) -> None:
        s = self._s
        ref: ChannelRef | None = await self._activity(
            SlackActivities.create_channel,
            CreateChannelRequest(
                incident_id=s.incident_id,
                title=s.title,
                private=s.private,
                name_template=s.channel_name_template,
            ),
        )
        if ref is None:
            return  # recorded as a problem; broadcasts still go out, without a channel link
        s.channel_id, s.channel_name = ref.id, ref.name
        attributes.sync(s)
        self._record("channel", f"created #{ref.name}", None)
        invite = (s.declared_by,) if s.declared_by else ()
        setup = ChannelSetup(incident=s.view(), invite=invite, key=self._key("overview:channel"))

        async def set_up() -> None:
            s.channel_overview_ts = await self._activity(SlackActivities.set_up_channel, setup)

        # The directory, the channel itself and the broadcast overviews do not depend on each other.
        work = [self._register_channel(ref.id), set_up()]
        if self._missing_overviews():
            work.append(self._publish_overviews())
        await asyncio.gather(*work)
        s.channel_ready = True

    async def _register_channel(self, channel_id: str) -> None:
        handle = workflow.get_external_workflow_handle(DIRECTORY_WORKFLOW_ID)
        registration = ChannelRegistration(channel_id=channel_id, incident_id=self._s.incident_id)
        try:
            await handle.signal(IncidentDirectoryWorkflow.register_channel, registration)
        except Exception as err:  # the directory is gone: lookups by channel fail, the incident goes on
            self._record("problem", f"could not register the channel with the directory: {err}", None)

    async def _release_dedup_key(self, key: str) -> None:
        handle = workflow.get_external_workflow_handle(DIRECTORY_WORKFLOW_ID)
        release = DedupRelease(key=key, incident_id=self._s.incident_id)
        try:
            await handle.signal(IncidentDirectoryWorkflow.release, release)
        except Exception as err:  # the directory is gone: nothing holds the key
            self._record("problem", f"could not release the alert key: {err}", None)

    def _hand_over_queued_work(self) -> bool:
        return self._should_continue_as_new() and workflow.patched(CONTINUE_WITH_QUEUED_WORK)

    async def _drain(self, may_hand_over: bool = False) -> None:
        """Performs queued work in order: reactions -> overviews -> announcements.

        With `may_hand_over`, stops early when Temporal suggests continuing as new: the rest of the queue
        goes to the next run with the state. The final drain before completing always finishes.
        """
        s = self._s
        while s.pending_reactions:
            await self._resolve_reaction(s.pending_reactions[0])
            s.pending_reactions.pop(0)
        if s.overview_stale or self._missing_overviews():
            await self._publish_overviews()
        while s.outbox:
            if may_hand_over and self._hand_over_queued_work():
                return
            if self._missing_overviews():  # a channel added meanwhile gets its overview before the update
                await self._publish_overviews()
            await self._announce(s.outbox[0])
            s.outbox.pop(0)

    async def _resolve_reaction(self, pending: PendingReaction) -> None:
        r = pending.reaction
        info: MessageInfo | None = await self._activity(
            SlackActivities.fetch_message, MessageRequest(channel_id=r.channel_id, ts=r.message_ts)
        )
        if info is None or not info.found or info.from_warroom:
            return
        text = (
            info.text if info.author in (None, r.user_id) else f"{info.text}\n(message by <@{info.author}>)"
        )
        self._record("reaction", f":{r.reaction}: {info.text}", r.user_id, link=info.permalink)
        self._s.outbox.append(
            Announcement(key=pending.key, kind="reaction", text=text, actor=r.user_id, link=info.permalink)
        )
        observe.show_incident(self._s)

    async def _publish_overviews(self) -> None:
        s = self._s
        stale, version = s.overview_stale, s.overview_version
        targets = broadcasts.overview_targets(s, stale)
        request = OverviewRequest(
            incident=s.view(), targets=tuple(targets), key_prefix=self._key(""), describe_channel=stale
        )
        deliveries: list[Delivery] | None = await self._activity(SlackActivities.publish_overview, request)
        s.overview_published = version
        if deliveries is None:
            for b in self._missing_overviews():  # give up on these until they are added again
                self._set_thread(b.channel_id, error="overview could not be posted")
            return
        for d in deliveries:
            if d.channel_id != s.channel_id:
                await self._record_delivery(d, overview=True)

    async def _announce(self, a: Announcement) -> None:
        s = self._s
        threads = broadcasts.thread_targets(s, a)
        deliveries = await self._activity(
            SlackActivities.announce, AnnounceRequest(incident=s.view(), announcement=a, threads=threads)
        )
        for d in deliveries or []:
            if d.channel_id != s.channel_id:
                await self._record_delivery(d, overview=False)

    async def _record_delivery(self, d: Delivery, *, overview: bool) -> None:
        if d.error is None:
            if overview:
                self._set_thread(d.channel_id, overview_ts=d.ts)
            return
        self._set_thread(d.channel_id, error=d.error)
        self._record("problem", f"broadcast to <#{d.channel_id}> failed: {d.error}", None)
        await self._note(broadcasts.failure_note(d.channel_id, d.error, self._s.slash_command))

    def _set_thread(self, channel_id: str, **changes: object) -> None:
        broadcasts.set_thread(self._s, channel_id, **changes)
        observe.show_incident(self._s)

    async def _note(self, text: str) -> None:
        if self._s.channel_id:
            note = NoteRequest(channel_id=self._s.channel_id, text=text, key=self._key("note"))
            await self._activity(SlackActivities.post_note, note, notify=False)

    async def _activity(self, fn, arg, *, notify: bool = True):  # type: ignore[no-untyped-def]
        """Runs a Slack activity; after its last retry the failure is noted, never raised."""
        try:
            return await workflow.execute_activity_method(
                fn, arg, start_to_close_timeout=SLACK_TIMEOUT, retry_policy=SLACK_RETRY
            )
        except ActivityError as err:
            cause = err.cause.message if isinstance(err.cause, ApplicationError) else str(err.cause or err)
            self._record("problem", f"{fn.__name__} failed: {cause}", None)
            if notify:
                await self._note(f":warning: warroom could not {fn.__name__.replace('_', ' ')}: {cause}")
            return None

    # --- bookkeeping ----------------------------------------------------------------------------------

    def _key(self, what: str) -> str:
        seq = self._s.next_seq
        self._s.next_seq += 1
        return f"inc{self._s.incident_id}:{seq}:{what}" if what else f"inc{self._s.incident_id}:{seq}"

    def _record(self, kind: str, text: str, actor: str | None, link: str | None = None) -> None:
        self._s.timeline.append(
            TimelineEvent(at=workflow.now(), kind=kind, text=text, actor=actor, link=link)
        )
        observe.log_event(self._s, kind, text)
        observe.show_incident(self._s)

    def _queue(
        self,
        kind: AnnouncementKind,
        text: str,
        actor: str | None,
        stage: Stage | None = None,
        channel_only: bool = False,
    ) -> None:
        key = self._key(kind)
        self._s.outbox.append(
            Announcement(key=key, kind=kind, text=text, actor=actor, stage=stage, channel_only=channel_only)
        )

    def _changed(self) -> None:
        self._s.overview_version += 1
        attributes.sync(self._s)

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
        s = self._s
        s.stage = stage
        s.ever_mitigated = s.ever_mitigated or stage is Stage.MITIGATED
        self._record("stage", f"{stage.label}: {context}" if context else stage.label, actor)
        self._add_stage_broadcasts(stage, actor)
        self._queue("stage", context, actor, stage=stage)
        self._changed()

    def _add_stage_broadcasts(self, stage: Stage, actor: str | None) -> None:
        """warroom.toml `broadcast.by_stage`; unconfigured (every run before it existed) does nothing."""
        if broadcasts.stage_channels(self._s, stage) and workflow.patched("stage-broadcasts"):
            summary = broadcasts.add_stage_channels(self._s, stage)
            if summary:
                self._record("broadcast", f"broadcast channels for {stage.label}: {summary}", actor)

    @change_stage.validator
    def _validate_stage(self, change: StageChange) -> None:
        self._validate_open()
        same_channels = change.broadcast_channels is None or set(change.broadcast_channels) == set(
            self._s.broadcast_channel_ids
        )
        if change.stage is self._s.stage and not change.context and same_channels:
            reject(f"The stage is already {change.stage.label}; add context to post it again.")

    @workflow.update
    def post_update(self, update: StatusUpdate) -> CommandReply:
        """`/incident update`: a status update in the channel and a reply in every broadcast thread."""
        self._record("update", update.text, update.actor)
        self._queue("update", update.text, update.actor)
        observe.show_incident(self._s)
        n = len(self._s.broadcast_channel_ids)
        return CommandReply(text=f"Update posted here and to {n} broadcast channel{'s' if n != 1 else ''}.")

    @post_update.validator
    def _validate_update(self, update: StatusUpdate) -> None:
        self._validate_open()
        if not update.text.strip():
            reject("An update needs text.")

    @workflow.update
    def change_severity(self, change: SeverityChange) -> CommandReply:
        """`/incident severity`: changes severity; the overview everywhere shows it."""
        old = self._s.severity
        self._s.severity = change.severity
        reason = f": {change.reason}" if change.reason else ""
        self._record("severity", f"{old.label} → {change.severity.label}{reason}", change.actor)
        self._queue("severity", f"Severity {old.label} → *{change.severity.label}*{reason}", change.actor)
        self._changed()
        return CommandReply(text=f"Severity set to *{change.severity.label}*.")

    @change_severity.validator
    def _validate_severity(self, change: SeverityChange) -> None:
        self._validate_open()
        if change.severity is self._s.severity:
            reject(f"The severity is already {change.severity.label}.")

    @workflow.update
    def assign_commander(self, change: CommanderChange) -> CommandReply:
        """`/incident commander @user`: sets the incident commander."""
        self._s.commander = change.user_id
        self._record("commander", f"<@{change.user_id}> is the incident commander", change.actor)
        self._queue("commander", f"<@{change.user_id}> is now the incident commander", change.actor)
        self._changed()
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
        summary = broadcasts.describe(*broadcasts.apply(self._s, wanted))
        if not summary:
            return " Broadcast channels unchanged."
        self._record("broadcast", f"broadcast channels: {summary}", actor)
        return f" Broadcast channels: {summary}."

    @workflow.update
    def resolve(self, resolution: Resolution) -> CommandReply:
        """`/incident resolve`: posts the final summary everywhere and ends the incident."""
        s = self._s
        s.status = Status.RESOLVED
        s.resolved_at = workflow.now()
        s.summary = resolution.summary
        self._record("resolved", resolution.summary or "resolved", resolution.actor)
        self._queue("resolved", resolution.summary, resolution.actor)
        self._changed()
        observe.count_resolved(s.severity)
        warning = "" if s.ever_mitigated else " :warning: It was never marked Mitigated."
        return CommandReply(text=f"{incident_label(s.incident_id)} resolved.{warning}")

    @resolve.validator
    def _validate_resolve(self, resolution: Resolution) -> None:
        self._validate_open()

    # --- signals: fire-and-forget events ----------------------------------------------------------------

    @workflow.signal
    def reaction_added(self, reaction: ReactionAdded) -> None:
        """A broadcast reaction (:mega: etc., or warroom.toml's): the message becomes an update, once."""
        s = self._s
        if s.status is Status.RESOLVED or reaction.reaction not in s.broadcast_reactions:
            return
        if reaction.channel_id != s.channel_id or reaction.message_ts in s.reacted_messages:
            return
        s.reacted_messages.append(reaction.message_ts)
        s.pending_reactions.append(PendingReaction(key=self._key("reaction"), reaction=reaction))

    @workflow.signal
    def alerts_fired(self, group: AlertGroup) -> None:
        """Monitoring sent this incident's alert group again: new alerts are posted once, in the channel
        only; repeats change nothing; "all resolved" is noted (and moves to Mitigated when configured)."""
        s = self._s
        if s.status is Status.RESOLVED:
            return
        if group.status == "resolved":
            if not s.alerts_resolved:
                s.alerts_resolved = True
                self._record("alert", f"alerts resolved ({group.source})", None)
                self._queue("alert", f"All alerts resolved ({group.source}).", None, channel_only=True)
                if s.resolve_mitigates and s.stage is not Stage.MITIGATED:
                    self._move_stage(Stage.MITIGATED, f"alerts resolved ({group.source})", None)
            return
        firing = [a for a in group.alerts if a.status == "firing"]
        fresh = firing if s.alerts_resolved else [a for a in firing if a.fingerprint not in s.seen_alerts]
        s.alerts_resolved = False
        if not fresh:
            return
        s.seen_alerts.extend(a.fingerprint for a in fresh if a.fingerprint not in s.seen_alerts)
        text = describe_alerts(fresh)
        self._record("alert", text, None)
        self._queue("alert", text, None, channel_only=True)

    # --- queries ----------------------------------------------------------------------------------------

    @workflow.query
    def state(self) -> IncidentState:
        return self._s

    @workflow.query
    def timeline(self) -> list[TimelineEvent]:
        return self._s.timeline
