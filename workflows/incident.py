"""IncidentWorkflow: one per incident (ID `incident-<id>`), from declare to resolve.

Handlers only validate and record intent (timeline, outbox); the main loop turns intents into Slack
activities, in order, so an update can never overtake the overview it is threaded under.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import NoReturn

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities import slack_render as render
    from activities.calls import CallActivities
    from activities.jira import JiraActivities
    from activities.slack import SlackActivities
    from activities.slack_dm import SlackDmActivities
    from activities.slack_timeline import SlackTimelineActivities
    from domain.alerts import AlertGroup, describe_alerts
    from domain.config import BUILT_IN_ROLES
    from domain.effects import (
        AnnounceRequest,
        CallLinkRequest,
        CallRequest,
        ChannelRef,
        ChannelSetup,
        CreateChannelRequest,
        Delivery,
        DirectMessageRequest,
        MessageInfo,
        MessageRequest,
        NoteRequest,
        OverviewRequest,
        ReminderPlan,
        ReminderPlanRequest,
        TicketRequest,
        TimelineExportRequest,
    )
    from domain.models import (
        CALL_LABELS,
        Announcement,
        AnnouncementKind,
        BroadcastChange,
        BroadcastThread,
        CallInfo,
        CallStart,
        ChannelRegistration,
        CommanderChange,
        CommandReply,
        DebriefNote,
        DebriefStart,
        DedupRelease,
        Followup,
        FollowupAdd,
        FollowupReaction,
        FollowupTicket,
        IncidentInput,
        IncidentResult,
        IncidentState,
        PendingCall,
        PendingDm,
        PendingReaction,
        PendingTicket,
        ReactionAdded,
        ReminderInput,
        ReminderOrder,
        ReminderRecord,
        Resolution,
        RoleChange,
        SeverityChange,
        StageChange,
        StatusUpdate,
        TicketInfo,
        TicketOrder,
        TimelineEvent,
    )
    from domain.naming import DIRECTORY_WORKFLOW_ID
    from domain.vocab import Stage, Status, incident_label
    from workflows import attributes, broadcasts, observe
    from workflows.directory import IncidentDirectoryWorkflow
    from workflows.reminder import ReminderWorkflow, reminder_workflow_id

SLACK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=10,
)
SLACK_TIMEOUT = timedelta(seconds=30)
# Slack activities heartbeat before every call (activities.slack_base): a worker that dies mid-attempt is
# noticed after this, not after the whole start-to-close timeout.
SLACK_HEARTBEAT = timedelta(seconds=15)
# Zoom, Meet, Jira: minutes of retries with backoff (Retry-After honoured), then one note in the channel.
VENDOR_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=7,
)
VENDOR_TIMEOUT = timedelta(seconds=30)
PLAN_RETRY = RetryPolicy(maximum_attempts=3, initial_interval=timedelta(milliseconds=200))
PLAN_TIMEOUT = timedelta(seconds=5)
# workflow.patched IDs, see CONTRIBUTING.md
CONTINUE_WITH_QUEUED_WORK = "continue-as-new-with-queued-work"
CHANNEL_OVERVIEW_CATCH_UP = "channel-overview-catch-up"
ROLE_DMS = "role-dms"
TIMELINE_EXPORT = "timeline-export"
REACTIONS_IN_ORDER = "reactions-in-order"
CHANNEL_FAILURE_EXIT = "channel-failure-exit"


def reject(message: str) -> NoReturn:
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
            role_descriptions=d.roles,
            nudge_minutes=d.nudge_minutes,
            followup_reactions=d.followup_reactions,
        )
        self._declaration = d
        self._opening = True  # the channel is being created; notes wait for it
        if inp.state is None and d.call_provider is not None:
            self._s.pending_calls.append(PendingCall(key=self._key("call"), provider=d.call_provider))

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
        # Zoom, Meet and Jira run beside the Slack work, so a slow or failing vendor never holds up updates.
        integrations = [asyncio.create_task(self._integration_loop(k)) for k in ("calls", "tickets")]
        integrations.append(asyncio.create_task(self._nudge_loop()))
        if not s.channel_ready and s.channel_error is None:
            await self._open_channel()
        self._opening = False
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
        await self._finish_integrations()
        await self._drain()
        for task in integrations:
            task.cancel()
        if s.channel_id and workflow.patched(TIMELINE_EXPORT):
            await self._export_timeline()
        if s.dedup_key:
            await self._release_dedup_key(s.dedup_key)
        return s.result()

    def _should_continue_as_new(self) -> bool:
        """Suggested by Temporal, and no call or ticket in flight (a new run would create it again)."""
        return workflow.info().is_continue_as_new_suggested() and self._integrations_idle()

    def _has_work(self) -> bool:
        s = self._s
        return bool(
            s.outbox
            or s.pending_reactions
            or s.overview_stale
            or self._missing_overviews()
            or self._call_needs_bookmark()
            or s.pending_dms
            or s.pending_followup_reactions
            or (s.debrief_requested and s.debrief_ts is None and s.channel_id is not None)
        )

    def _call_needs_bookmark(self) -> bool:
        s = self._s
        return s.call is not None and not s.call_bookmarked and s.channel_id is not None

    def _missing_overviews(self) -> list[BroadcastThread]:
        return broadcasts.missing_overviews(self._s)

    async def _open_channel(self) -> None:
        s = self._s
        request = CreateChannelRequest(
            incident_id=s.incident_id, title=s.title, private=s.private, name_template=s.channel_name_template
        )
        ref: ChannelRef | None
        ref, cause = await self._attempt(SlackActivities.create_channel, request)
        if ref is None:
            # Asked only on failure: a patch marker is stored unencrypted (Temporal writes it, not our codec).
            if workflow.patched(CHANNEL_FAILURE_EXIT):
                self._without_channel(cause or "Slack refused")
                return
            # Runs from before the patch: this note waited for the channel, forever.
            await self._note(f":warning: warroom could not create channel: {cause}")
            return
        s.channel_id, s.channel_name = ref.id, ref.name
        attributes.sync(s)
        self._record("channel", f"created #{ref.name}", None)
        invite = (s.declared_by,) if s.declared_by else ()
        setup = ChannelSetup(incident=s.view(), invite=invite, key=self._key("overview:channel"))
        setup_version = s.overview_version

        async def set_up() -> None:
            s.channel_overview_ts = await self._activity(SlackActivities.set_up_channel, setup)

        # The directory, the channel itself and the broadcast overviews do not depend on each other.
        work = [self._register_channel(ref.id), set_up()]
        if self._missing_overviews():
            work.append(self._publish_overviews())
        await asyncio.gather(*work)
        if (
            s.overview_version != setup_version
            and s.channel_overview_ts
            and workflow.patched(CHANNEL_OVERVIEW_CATCH_UP)
        ):
            # Something changed while the channel was set up (a call created alongside, a quick stage change):
            # its overview shows the older view, so every overview is edited once more.
            s.overview_published = min(s.overview_published, setup_version)
        s.channel_ready = True

    def _without_channel(self, cause: str) -> None:
        """Slack refused the channel for good: the incident goes on without one (overviews and updates still
        reach the broadcast channels; the CLI still works) and the declarer learns why by DM at once."""
        s = self._s
        s.channel_error = cause
        self._changed()
        if s.declared_by:
            dm = PendingDm(key=self._key("dm"), user_id=s.declared_by, kind="no_channel", description=cause)
            s.pending_dms.append(dm)

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
        while s.pending_followup_reactions:
            await self._followup_from_reaction(s.pending_followup_reactions[0])
            s.pending_followup_reactions.pop(0)
        if self._call_needs_bookmark():
            await self._bookmark_call()
        while s.pending_dms:
            await self._send_dm(s.pending_dms[0])
            s.pending_dms.pop(0)
        if s.debrief_requested and s.debrief_ts is None and s.channel_id is not None:
            await self._open_debrief_thread()
        if s.overview_stale or self._missing_overviews():
            await self._publish_overviews()
        while s.outbox:
            if may_hand_over and self._hand_over_queued_work():
                return
            if s.outbox[0].reaction is not None:  # a reaction's turn: read its message now
                placeholder = s.outbox[0]
                assert placeholder.reaction is not None
                resolved = await self._reaction_announcement(placeholder.key, placeholder.reaction)
                if resolved is None:
                    s.outbox.pop(0)
                    continue
                s.outbox[0] = resolved
                observe.show_incident(s)
            if self._missing_overviews():  # a channel added meanwhile gets its overview before the update
                await self._publish_overviews()
            await self._announce(s.outbox[0])
            s.outbox.pop(0)

    async def _resolve_reaction(self, pending: PendingReaction) -> None:
        """Incidents from before REACTIONS_IN_ORDER: the reaction's update joins the end of the queue."""
        announcement = await self._reaction_announcement(pending.key, pending.reaction)
        if announcement is not None:
            self._s.outbox.append(announcement)
            observe.show_incident(self._s)

    async def _reaction_announcement(self, key: str, r: ReactionAdded) -> Announcement | None:
        """Reads the reacted-to message; None when there is nothing to broadcast (gone, or warroom's own)."""
        info: MessageInfo | None = await self._activity(
            SlackActivities.fetch_message, MessageRequest(channel_id=r.channel_id, ts=r.message_ts)
        )
        if info is None or not info.found or info.from_warroom:
            return None
        text = (
            info.text if info.author in (None, r.user_id) else f"{info.text}\n(message by <@{info.author}>)"
        )
        self._record("reaction", f":{r.reaction}: {info.text}", r.user_id, link=info.permalink, quoted=True)
        self._s.last_update_at = workflow.now()
        return Announcement(
            key=key, kind="reaction", text=text, actor=r.user_id, link=info.permalink, quoted=True
        )

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
        if self._s.channel_id is None:  # a vendor failed before the channel exists: wait for it
            await workflow.wait_condition(lambda: not self._opening)
        if self._s.channel_id:
            note = NoteRequest(channel_id=self._s.channel_id, text=text, key=self._key("note"))
            await self._activity(SlackActivities.post_note, note, notify=False)

    async def _activity(  # type: ignore[no-untyped-def]
        self, fn, arg, *, notify: bool = True, what: str | None = None, hint: str = "", vendor: bool = False
    ):
        """Runs an activity; after its last retry the failure is noted (once, in the channel), never raised.

        `what` names the action in the note (`create the Zoom call`), `hint` says what to do next.
        """
        result, cause = await self._attempt(fn, arg, vendor=vendor)
        if cause is not None and notify:
            doing = what or fn.__name__.replace("_", " ")
            await self._note(f":warning: warroom could not {doing}: {cause}{hint}")
        return result

    async def _attempt(self, fn, arg, *, vendor: bool = False):  # type: ignore[no-untyped-def]
        """Runs an activity with its retries: (result, None), or (None, why) after the last retry, recorded
        as a problem in the timeline."""
        try:
            result = await workflow.execute_activity_method(
                fn,
                arg,
                start_to_close_timeout=VENDOR_TIMEOUT if vendor else SLACK_TIMEOUT,
                heartbeat_timeout=None if vendor else SLACK_HEARTBEAT,
                retry_policy=VENDOR_RETRY if vendor else SLACK_RETRY,
            )
        except ActivityError as err:
            cause = err.cause.message if isinstance(err.cause, ApplicationError) else str(err.cause or err)
            self._record("problem", f"{fn.__name__} failed: {cause}", None)
            return None, cause
        return result, None

    # --- calls and tickets -----------------------------------------------------------------------------

    def _pending(self, kind: str) -> list[PendingCall] | list[PendingTicket]:
        return self._s.pending_calls if kind == "calls" else self._s.pending_tickets

    async def _integration_loop(self, kind: str) -> None:
        """Works through pending calls (or tickets) in order; an item leaves the queue once done or given up,
        so continue-as-new (which waits for an empty queue) never repeats one."""
        while True:
            await workflow.wait_condition(lambda: bool(self._pending(kind)))
            order = self._pending(kind)[0]
            if isinstance(order, PendingCall):
                await self._start_call(order)
            else:
                await self._create_ticket(order)
            self._pending(kind).pop(0)

    def _integrations_idle(self) -> bool:
        return not self._s.pending_calls and not self._s.pending_tickets

    async def _finish_integrations(self) -> None:
        """Before completing: lets calls and tickets in flight finish, posting updates meanwhile."""
        while not self._integrations_idle():
            await workflow.wait_condition(lambda: self._has_work() or self._integrations_idle())
            await self._drain()

    async def _start_call(self, order: PendingCall) -> None:
        s = self._s
        topic = f"{incident_label(s.incident_id)}: {s.title}"[:200]
        request = CallRequest(incident_id=s.incident_id, topic=topic, provider=order.provider, key=order.key)
        label = CALL_LABELS[order.provider]
        info: CallInfo | None = await self._activity(
            CallActivities.create_call,
            request,
            what=f"create the {label} call",
            hint=f". Fix that, then run `{s.slash_command} call` again.",
            vendor=True,
        )
        if info is None:
            return
        replaced = s.call is not None
        s.call, s.call_bookmarked = info, False
        self._record(
            "call",
            f"{info.label} call{' (replacing the previous one)' if replaced else ''}",
            order.actor,
            link=info.join_url,
        )
        self._queue("call", f"Join the {info.label} call", order.actor, channel_only=True, link=info.join_url)
        self._changed()

    async def _bookmark_call(self) -> None:
        s = self._s
        assert s.call is not None and s.channel_id is not None
        call = s.call
        request = CallLinkRequest(channel_id=s.channel_id, call=call, bookmark_id=s.call_bookmark_id)
        bookmark_id: str | None = await self._activity(
            SlackActivities.link_call, request, what="bookmark the call"
        )
        if s.call == call:  # not replaced meanwhile
            s.call_bookmarked = True
        s.call_bookmark_id = bookmark_id or s.call_bookmark_id

    async def _create_ticket(self, order: PendingTicket) -> None:
        s = self._s
        request = TicketRequest(
            incident=s.view(),
            summary=order.summary,
            requested_by=order.actor,
            key=order.key,
            quoted=order.quoted,
        )
        ticket: TicketInfo | None = await self._activity(
            JiraActivities.create_ticket,
            request,
            what="create the Jira issue",
            hint=f". Fix that, then run `{s.slash_command} jira {order.summary}` again.",
            vendor=True,
        )
        if ticket is None:
            return
        s.tickets.append(ticket)
        if order.followup_id is not None:
            index = order.followup_id - 1
            s.followups[index] = s.followups[index].model_copy(update={"ticket": ticket})
        self._record("ticket", f"{ticket.key}: {ticket.summary}", order.actor, link=ticket.url)
        text = f"{ticket.key}: {ticket.summary}"
        self._queue("ticket", text, order.actor, channel_only=True, link=ticket.url)
        observe.show_incident(s)

    # --- roles, follow-ups, nudges, debrief, the timeline afterwards ------------------------------------

    def _role_descriptions(self) -> dict[str, str]:
        return self._s.role_descriptions or dict(BUILT_IN_ROLES)

    def _dm_role(self, role: str, user_id: str) -> None:
        description = self._role_descriptions().get(role, "")
        self._s.pending_dms.append(
            PendingDm(key=self._key("dm"), user_id=user_id, kind="role", role=role, description=description)
        )

    async def _send_dm(self, dm: PendingDm) -> None:
        request = DirectMessageRequest(incident=self._s.view(), dm=dm)
        await self._activity(SlackDmActivities.send_dm, request, what=f"DM <@{dm.user_id}>")

    async def _nudge_loop(self) -> None:
        """DMs the commander (or the declarer) when no status update went out for the severity's interval.

        One timer per interval: an update while it runs does not restart it; on waking, the loop sleeps again
        for what is left. Stops at Mitigated and on resolve; picks up again if the stage moves back.
        """
        while True:
            delay = self._until_nudge()
            if delay is None:
                await workflow.wait_condition(lambda: self._until_nudge() is not None)
            elif delay > timedelta(0):
                await workflow.sleep(delay)
            else:
                self._nudge()

    def _until_nudge(self) -> timedelta | None:
        s = self._s
        minutes = s.nudge_minutes.get(s.severity.value, 0)
        if not minutes or s.status is Status.RESOLVED or s.stage is Stage.MITIGATED:
            return None
        since = max(t for t in (s.declared_at, s.last_update_at, s.last_nudge_at) if t is not None)
        return since + timedelta(minutes=minutes) - workflow.now()

    def _nudge(self) -> None:
        s = self._s
        s.last_nudge_at = workflow.now()
        who = s.commander or s.declared_by
        minutes = s.nudge_minutes.get(s.severity.value, 0)
        self._record("nudge", f"no status update for {minutes} min; nudged {_mention(who)}", None)
        if who:
            s.pending_dms.append(PendingDm(key=self._key("dm"), user_id=who, kind="nudge"))

    async def _followup_from_reaction(self, r: FollowupReaction) -> None:
        info: MessageInfo | None = await self._activity(
            SlackActivities.fetch_message, MessageRequest(channel_id=r.channel_id, ts=r.message_ts)
        )
        if info is None or not info.found or not info.text.strip():
            return
        self._add_followup(FollowupAdd(text=info.text, actor=r.user_id, link=info.permalink), quoted=True)

    def _add_followup(self, f: FollowupAdd, quoted: bool = False) -> Followup:
        s = self._s
        followup = Followup(
            followup_id=len(s.followups) + 1,
            text=f.text,
            author=f.actor,
            at=workflow.now(),
            link=f.link,
            quoted=quoted,
        )
        s.followups.append(followup)
        self._record("followup", f"#{followup.followup_id}: {f.text}", f.actor, link=f.link, quoted=quoted)
        return followup

    async def _open_debrief_thread(self) -> None:
        s = self._s
        assert s.channel_id is not None
        note = NoteRequest(
            channel_id=s.channel_id,
            text=":speech_balloon: *Things to revisit in the review*: reply in this thread; every reply goes "
            "into the incident's timeline.",
            key=self._key("debrief"),
        )
        ts: str | None = await self._activity(
            SlackActivities.post_note, note, what="start the debrief thread"
        )
        s.debrief_ts = ts or ""  # "" : tried and failed; not tried again

    async def _export_timeline(self) -> None:
        s = self._s
        request = TimelineExportRequest(incident=s.view(), result=s.result(), key=self._key("timeline"))
        await self._activity(SlackTimelineActivities.publish_timeline, request, what="post the timeline")

    # --- bookkeeping ----------------------------------------------------------------------------------

    def _key(self, what: str) -> str:
        seq = self._s.next_seq
        self._s.next_seq += 1
        return f"inc{self._s.incident_id}:{seq}:{what}" if what else f"inc{self._s.incident_id}:{seq}"

    def _record(
        self, kind: str, text: str, actor: str | None, link: str | None = None, quoted: bool = False
    ) -> None:
        self._s.timeline.append(
            TimelineEvent(at=workflow.now(), kind=kind, text=text, actor=actor, link=link, quoted=quoted)
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
        link: str | None = None,
    ) -> None:
        key = self._key(kind)
        self._s.outbox.append(
            Announcement(
                key=key, kind=kind, text=text, actor=actor, stage=stage, channel_only=channel_only, link=link
            )
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
        s.stage_reached.setdefault(stage.value, workflow.now())
        s.last_update_at = workflow.now()
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
        self._s.last_update_at = workflow.now()
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
        if workflow.patched(ROLE_DMS):
            self._dm_role("commander", change.user_id)
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
    def start_call(self, start: CallStart) -> CommandReply:
        """`/incident call [zoom|meet]`: a new call; its link replaces the current one everywhere."""
        s = self._s
        s.pending_calls.append(PendingCall(key=self._key("call"), provider=start.provider, actor=start.actor))
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
        key = self._key("ticket")
        self._s.pending_tickets.append(PendingTicket(key=key, summary=order.summary, actor=order.actor))
        return CommandReply(text="Creating the Jira issue; its link will be posted here.")

    @create_ticket.validator
    def _validate_ticket(self, order: TicketOrder) -> None:
        self._validate_open()
        if not order.summary.strip():
            reject("A Jira issue needs a summary.")

    @workflow.update
    async def set_reminder(self, order: ReminderOrder) -> CommandReply:
        """`/incident remind <when> <text>`: a ReminderWorkflow child that DMs the caller at that time.

        The time is read in the caller's Slack time zone, looked up by an activity (so it is in history).
        """
        s = self._s
        try:
            plan: ReminderPlan = await workflow.execute_activity_method(
                SlackDmActivities.plan_reminder,
                ReminderPlanRequest(user_id=order.actor, when=order.when, now=workflow.now()),
                start_to_close_timeout=PLAN_TIMEOUT,
                retry_policy=PLAN_RETRY,
            )
        except ActivityError:
            reject("warroom could not set the reminder just now (Slack did not answer); try again shortly.")
        if plan.error or plan.due is None:
            reject(plan.error or "That time is not one I understand.")
        reminder_id = f"{s.incident_id}-{s.next_reminder}"
        s.next_reminder += 1
        record = ReminderRecord(
            reminder_id=reminder_id, user_id=order.actor, due=plan.due, local=plan.local, text=order.text
        )
        await workflow.start_child_workflow(
            ReminderWorkflow.run,
            ReminderInput(**record.model_dump(), incident_id=s.incident_id, channel_id=s.channel_id),
            id=reminder_workflow_id(reminder_id),
            parent_close_policy=ParentClosePolicy.ABANDON,
            static_summary=f"Reminder {reminder_id} ({incident_label(s.incident_id)})",
        )
        s.reminders.append(record)
        self._record("reminder", f"reminder {reminder_id} for {plan.local}: {order.text}", order.actor)
        zone = "" if plan.zone_known else " (UTC: Slack did not tell me your time zone)"
        return CommandReply(
            text=f":alarm_clock: I will DM you on {plan.local}{zone}. Reminder `{reminder_id}`; cancel it "
            f"with `{s.slash_command} remind cancel {reminder_id}`."
        )

    @set_reminder.validator
    def _validate_reminder(self, order: ReminderOrder) -> None:
        self._validate_open()
        if not order.text.strip():
            reject("A reminder needs text: what should I remind you of?")

    @workflow.update
    def assign_role(self, change: RoleChange) -> CommandReply:
        """`/incident role <role> @user`: the person gets a DM describing the role; the overview shows it."""
        s = self._s
        if change.role == "commander":
            s.commander = change.user_id
        else:
            s.roles[change.role] = change.user_id
        self._record("role", f"<@{change.user_id}> is {change.role}", change.actor)
        self._queue("commander", f"<@{change.user_id}> is now the {change.role}", change.actor)
        self._dm_role(change.role, change.user_id)
        self._changed()
        return CommandReply(text=f"<@{change.user_id}> is now the {change.role}; I sent them the role by DM.")

    @assign_role.validator
    def _validate_role(self, change: RoleChange) -> None:
        self._validate_open()
        known = self._role_descriptions()
        if change.role not in known:
            reject(f"There is no role `{change.role}`. Roles: {', '.join(f'`{r}`' for r in known)}.")
        holder = self._s.commander if change.role == "commander" else self._s.roles.get(change.role)
        if holder == change.user_id:
            reject(f"<@{change.user_id}> is already the {change.role}.")

    @workflow.update
    def add_followup(self, f: FollowupAdd) -> CommandReply:
        """`/incident followup <text>`: something to do after the incident, with its author."""
        followup = self._add_followup(f)
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
        followup = self._s.followups[t.followup_id - 1]
        self._s.pending_tickets.append(
            PendingTicket(
                key=self._key("ticket"),
                summary=followup.text[:255],
                actor=t.actor,
                followup_id=followup.followup_id,
                quoted=followup.quoted,
            )
        )
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
        s.debrief_requested = True
        self._record("debrief", "hot debrief started", start.actor)
        if provider is not None:
            s.pending_calls.append(PendingCall(key=self._key("call"), provider=provider, actor=start.actor))
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
        s = self._s
        key = f"debrief:{note.ts}"
        if not s.debrief_ts or note.thread_ts != s.debrief_ts or key in s.reacted_messages:
            return
        s.reacted_messages.append(key)
        self._record("debrief", note.text, note.user_id, quoted=True)

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
        return CommandReply(text=render.resolve_reply(s.incident_id, s.ever_mitigated, s.followups))

    @resolve.validator
    def _validate_resolve(self, resolution: Resolution) -> None:
        self._validate_open()

    # --- signals: fire-and-forget events ----------------------------------------------------------------

    @workflow.signal
    def reaction_added(self, reaction: ReactionAdded) -> None:
        """A broadcast reaction (:mega: etc., or warroom.toml's): the message becomes an update, once."""
        s = self._s
        if s.status is not Status.RESOLVED and reaction.reaction in s.followup_reactions:
            key = f"followup:{reaction.message_ts}"
            if reaction.channel_id == s.channel_id and key not in s.reacted_messages:
                s.reacted_messages.append(key)
                s.pending_followup_reactions.append(
                    FollowupReaction(
                        channel_id=reaction.channel_id,
                        message_ts=reaction.message_ts,
                        user_id=reaction.user_id,
                    )
                )
            return
        if s.status is Status.RESOLVED or reaction.reaction not in s.broadcast_reactions:
            return
        if reaction.channel_id != s.channel_id or reaction.message_ts in s.reacted_messages:
            return
        s.reacted_messages.append(reaction.message_ts)
        key = self._key("reaction")
        if workflow.patched(REACTIONS_IN_ORDER):  # its place in the queue is where it arrived
            s.outbox.append(
                Announcement(key=key, kind="reaction", text="", actor=reaction.user_id, reaction=reaction)
            )
        else:
            s.pending_reactions.append(PendingReaction(key=key, reaction=reaction))

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
    def debrief_thread(self) -> str | None:
        """The ts of the debrief's "things to revisit" thread, so the ingress signals only its replies."""
        return self._s.debrief_ts or None

    @workflow.query
    def timeline(self) -> list[TimelineEvent]:
        return self._s.timeline


def _mention(user_id: str | None) -> str:
    return f"<@{user_id}>" if user_id else "nobody (no commander or declarer)"
