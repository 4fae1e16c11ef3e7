"""The main loop's queue of Slack work: reactions to read, follow-ups from reactions, the call's bookmark,
DMs, the debrief thread, overviews to post or edit, then announcements, in that order.

Handlers only record intent in the state; `Outbox.drain` performs it. Runs inside the workflow.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, CancelledError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.slack import SlackActivities
    from activities.slack_dm import SlackDmActivities
    from activities.slack_timeline import SlackTimelineActivities
    from domain.effects import (
        AnnounceRequest,
        CallLinkRequest,
        Delivery,
        DirectMessageRequest,
        MessageInfo,
        MessageRequest,
        NoteRequest,
        OverviewRequest,
        TimelineExportRequest,
    )
    from domain.models import (
        Announcement,
        BroadcastThread,
        FollowupReaction,
        PendingDm,
        ReactionAdded,
    )
    from workflows import broadcasts, observe, patches, transitions
    from workflows.context import IncidentContext


# A status update posted within its own workflow task (`Outbox.post_now`) gets one local-activity attempt this
# long: the person is waiting for the answer (Slack wants one within 3 s). Past it, or on any failure, the
# update joins the queue and the regular `announce` activity takes over, with its retries and backoff.
POST_NOW_TIMEOUT = timedelta(seconds=1.5)
POST_NOW_RETRY = RetryPolicy(maximum_attempts=1)


class Outbox:
    """Performs the queued Slack work of one incident, in order (IncidentWorkflow's main loop drains it)."""

    def __init__(self, ctx: IncidentContext) -> None:
        self._ctx = ctx
        self._s = ctx.s
        self.posting = 0  # status updates being posted by their own handler (post_now): the queue waits

    def has_work(self) -> bool:
        s = self._s
        return bool(
            s.outbox
            or s.overview_stale
            or self.missing_overviews()
            or self._call_needs_bookmark()
            or s.pending_dms
            or s.pending_followup_reactions
            or (s.debrief_requested and s.debrief_ts is None and s.channel_id is not None)
        )

    def missing_overviews(self) -> list[BroadcastThread]:
        return broadcasts.missing_overviews(self._s)

    def _call_needs_bookmark(self) -> bool:
        s = self._s
        return s.call is not None and not s.call_bookmarked and s.channel_id is not None

    async def drain(self, hand_over: Callable[[], bool] | None = None) -> None:
        """Performs queued work in order: reactions -> overviews -> announcements.

        With `hand_over`, stops early when it says so (Temporal suggests continuing as new): the rest of the
        queue goes to the next run with the state. The final drain before completing always finishes.
        """
        s = self._s
        await self._read_first()
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
        if s.overview_stale or self.missing_overviews():
            await self.publish_overviews()
        # `read_first` reactions queued meanwhile wait for the next drain, which reads them first.
        while (i := self._next_in_order()) is not None:
            if hand_over is not None and hand_over():
                return
            head = s.outbox[i]
            if head.reaction is not None:  # a reaction's turn: read its message now
                resolved = await self._reaction_announcement(head.key, head.reaction)
                if resolved is None:
                    s.outbox.pop(i)
                    continue
                s.outbox[i] = resolved
                observe.show_incident(s)
            if self.missing_overviews():  # a channel added meanwhile gets its overview before the update
                await self.publish_overviews()
            if self.posting:  # an update posted by its own handler went first; the queue comes after it
                await workflow.wait_condition(lambda: not self.posting)
                continue
            await self._announce(s.outbox[i])
            s.outbox.pop(i)

    def can_post_now(self) -> bool:
        """Whether the status update just queued may be posted by its own handler: it is alone in the queue,
        nothing else is being posted, the channel is open and every broadcast thread has its overview."""
        s = self._s
        return (
            len(s.outbox) == 1
            and s.outbox[0].reaction is None
            and not self.posting
            and not self._ctx.opening
            and s.channel_id is not None
            and not self.missing_overviews()
        )

    async def post_now(self, fresh: bool) -> list[Delivery] | None:
        """Posts the status update just queued (`can_post_now`) as a local activity, inside the update's own
        workflow task: six history events for the update instead of eleven, and its answer can say what
        happened. The deliveries, or None when the attempt failed or ran out of time: the update is then back
        at the head of the queue, looked for before it is posted, so it is never lost nor posted twice.

        `fresh`: this workflow instance went live in this very task, so an earlier attempt of this task (on a
        worker that died before completing it) may have posted the update; the activity looks first then.
        """
        s = self._s
        a = s.outbox.pop()
        if fresh:
            a = a.model_copy(update={"look_first": True})
        request = AnnounceRequest(incident=s.view(), announcement=a, threads=broadcasts.thread_targets(s, a))
        self.posting += 1
        try:
            deliveries: list[Delivery] = await workflow.execute_local_activity_method(
                SlackActivities.announce,
                request,
                start_to_close_timeout=POST_NOW_TIMEOUT,
                retry_policy=POST_NOW_RETRY,
            )
        except FailureError as err:  # a local activity's own error comes unwrapped (no ActivityError)
            if isinstance(err, CancelledError):
                raise
            s.outbox.insert(0, a.model_copy(update={"look_first": True}))
            cause = err.cause if isinstance(err, ActivityError) and err.cause else err
            observe.log(s, "update queued after its own post failed", cause=str(cause))
            return None
        finally:
            self.posting -= 1
        for d in deliveries:
            if d.channel_id != s.channel_id:
                await self._record_delivery(d, overview=False)
        return deliveries

    def _next_in_order(self) -> int | None:
        """Where the next announcement to post is in the outbox (skipping `read_first` reactions)."""
        return next((i for i, a in enumerate(self._s.outbox) if not a.read_first), None)

    async def _read_first(self) -> None:
        """Reactions queued by runs from before patch reactions-in-order: each message is read before the rest
        of the queue, in order, and its update joins the end of the queue (what those runs did)."""
        s = self._s
        while (i := next((i for i, a in enumerate(s.outbox) if a.read_first), None)) is not None:
            placeholder = s.outbox.pop(i)
            assert placeholder.reaction is not None
            announcement = await self._reaction_announcement(placeholder.key, placeholder.reaction)
            if announcement is not None:
                s.outbox.append(announcement)
                observe.show_incident(s)

    async def _reaction_announcement(self, key: str, r: ReactionAdded) -> Announcement | None:
        """Reads the reacted-to message; None when there is nothing to broadcast (gone, or warroom's own)."""
        info: MessageInfo | None = await self._ctx.activity(
            SlackActivities.fetch_message, MessageRequest(channel_id=r.channel_id, ts=r.message_ts)
        )
        announcement = transitions.reaction_announcement(self._s, workflow.now(), key, r, info)
        if announcement is not None:
            self._ctx.report()
        return announcement

    async def _followup_from_reaction(self, r: FollowupReaction) -> None:
        info: MessageInfo | None = await self._ctx.activity(
            SlackActivities.fetch_message, MessageRequest(channel_id=r.channel_id, ts=r.message_ts)
        )
        transitions.followup_from_message(self._s, workflow.now(), r, info)
        self._ctx.report()

    async def publish_overviews(self) -> None:
        s = self._s
        stale, version = s.overview_stale, s.overview_version
        targets = broadcasts.overview_targets(s, stale)
        request = OverviewRequest(
            incident=s.view(),
            targets=tuple(targets),
            key_prefix=transitions.key(s, ""),
            describe_channel=stale,
        )
        deliveries: list[Delivery] | None = await self._ctx.activity(
            SlackActivities.publish_overview, request
        )
        s.overview_published = version
        if deliveries is None:
            for b in self.missing_overviews():  # give up on these until they are added again
                self._set_thread(b.channel_id, error="overview could not be posted")
            return
        for d in deliveries:
            if d.channel_id != s.channel_id:
                await self._record_delivery(d, overview=True)

    async def _announce(self, a: Announcement) -> None:
        s = self._s
        threads = broadcasts.thread_targets(s, a)
        deliveries = await self._ctx.activity(
            SlackActivities.announce, AnnounceRequest(incident=s.view(), announcement=a, threads=threads)
        )
        for d in deliveries or []:
            if d.channel_id != s.channel_id:
                await self._record_delivery(d, overview=False)
            elif d.error is not None:
                self._tell_author(a, d.error)

    def _tell_author(self, a: Announcement, error: str) -> None:
        """The incident channel refused a queued status update (archived, say), after its author was told
        "accepted": a DM tells them, since the channel cannot (patch not-posted-dm)."""
        s = self._s
        if a.kind != "update" or not a.actor or not workflow.patched(patches.NOT_POSTED_DM):
            return
        self._ctx.record("problem", f"update not posted in the incident channel: {error}", None)
        dm = PendingDm(
            key=transitions.key(s, "dm"),
            user_id=a.actor,
            kind="not_posted",
            description=error,
            text=a.text[:500],
        )
        s.pending_dms.append(dm)

    async def _record_delivery(self, d: Delivery, *, overview: bool) -> None:
        if d.error is None:
            if overview:
                self._set_thread(d.channel_id, overview_ts=d.ts)
            return
        self._set_thread(d.channel_id, error=d.error)
        self._ctx.record("problem", f"broadcast to <#{d.channel_id}> failed: {d.error}", None)
        await self._ctx.note(broadcasts.failure_note(d.channel_id, d.error, self._s.slash_command))

    def _set_thread(self, channel_id: str, **changes: object) -> None:
        broadcasts.set_thread(self._s, channel_id, **changes)
        observe.show_incident(self._s)

    async def _bookmark_call(self) -> None:
        s = self._s
        assert s.call is not None and s.channel_id is not None
        call = s.call
        request = CallLinkRequest(channel_id=s.channel_id, call=call, bookmark_id=s.call_bookmark_id)
        bookmark_id: str | None = await self._ctx.activity(
            SlackActivities.link_call, request, what="bookmark the call"
        )
        if s.call == call:  # not replaced meanwhile
            s.call_bookmarked = True
        s.call_bookmark_id = bookmark_id or s.call_bookmark_id

    async def _send_dm(self, dm: PendingDm) -> None:
        request = DirectMessageRequest(incident=self._s.view(), dm=dm)
        await self._ctx.activity(SlackDmActivities.send_dm, request, what=f"DM <@{dm.user_id}>")

    async def _open_debrief_thread(self) -> None:
        s = self._s
        assert s.channel_id is not None
        note = NoteRequest(
            channel_id=s.channel_id,
            text=":speech_balloon: *Things to revisit in the review*: reply in this thread; every reply goes "
            "into the incident's timeline.",
            key=transitions.key(s, "debrief"),
        )
        ts: str | None = await self._ctx.activity(
            SlackActivities.post_note, note, what="start the debrief thread"
        )
        s.debrief_ts = ts or ""  # "" : tried and failed; not tried again

    async def export_timeline(self) -> None:
        """At resolve: the timeline, posted in the channel with Markdown and JSON files."""
        s = self._s
        request = TimelineExportRequest(
            incident=s.view(), result=s.result(), key=transitions.key(s, "timeline")
        )
        await self._ctx.activity(SlackTimelineActivities.publish_timeline, request, what="post the timeline")
