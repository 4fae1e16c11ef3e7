"""Zoom/Meet calls, Jira issues, pages (workflows.paging) and the public Statuspage incident
(workflows.statuspage): each kind worked through in order by a loop of its own, beside the Slack work, so a
slow or failing vendor never holds up updates. Runs inside the workflow."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.calls import CallActivities
    from activities.jira import JiraActivities
    from domain.effects import CallRequest, TicketRequest
    from domain.models import CALL_LABELS, CallInfo, PendingCall, PendingTicket, TicketInfo
    from domain.vocab import incident_label
    from workflows import transitions
    from workflows.context import IncidentContext
    from workflows.outbox import Outbox
    from workflows.paging import Paging, PagingUpdates
    from workflows.statuspage import PublicPage

KINDS = ("calls", "tickets", "statuspage", "pages")
__all__ = ["KINDS", "Integrations", "PagingUpdates"]  # PagingUpdates: IncidentWorkflow's `page` update


class Integrations:
    """The calls, tickets and status page loops of one incident (IncidentWorkflow starts a task per kind)."""

    def __init__(self, ctx: IncidentContext) -> None:
        self._ctx = ctx
        self._s = ctx.s
        self.public = PublicPage(ctx)  # Statuspage: nothing happens there without a confirmed preview
        self.paging = Paging(ctx)

    def _pending(self, kind: str) -> list[PendingCall] | list[PendingTicket]:
        return self._s.pending_calls if kind == "calls" else self._s.pending_tickets

    async def loop(self, kind: str) -> None:
        """Works through pending calls (or tickets) in order; an item leaves the queue once done or given up,
        so continue-as-new (which waits for an empty queue) never repeats one."""
        if kind == "statuspage":
            return await self.public.loop()
        if kind == "pages":
            return await self.paging.loop()
        while True:
            await workflow.wait_condition(lambda: bool(self._pending(kind)))
            order = self._pending(kind)[0]
            if isinstance(order, PendingCall):
                await self._start_call(order)
            else:
                await self._create_ticket(order)
            self._pending(kind).pop(0)

    def idle(self) -> bool:
        idle = not self._s.pending_calls and not self._s.pending_tickets
        return idle and self.public.idle() and self.paging.idle()

    async def finish(self, outbox: Outbox) -> None:
        """Before completing: lets calls, tickets and status page orders in flight finish (a resolve
        resolves the public incident), posting updates meanwhile."""
        while not self.idle():
            await workflow.wait_condition(lambda: outbox.has_work() or self.idle())
            await outbox.drain()
        await self.paging.finish(outbox)  # resolves the pages; nothing for an incident that never paged

    async def _start_call(self, order: PendingCall) -> None:
        s = self._s
        topic = f"{incident_label(s.incident_id)}: {s.title}"[:200]
        request = CallRequest(incident_id=s.incident_id, topic=topic, provider=order.provider, key=order.key)
        label = CALL_LABELS[order.provider]
        info: CallInfo | None = await self._ctx.activity(
            CallActivities.create_call,
            request,
            what=f"create the {label} call",
            hint=f". Fix that, then run `{s.slash_command} call` again.",
            vendor=True,
        )
        if info is None:
            return
        transitions.call_started(s, workflow.now(), info, order.actor)
        self._ctx.changed()

    async def _create_ticket(self, order: PendingTicket) -> None:
        s = self._s
        request = TicketRequest(
            incident=s.view(),
            summary=order.summary,
            requested_by=order.actor,
            key=order.key,
            quoted=order.quoted,
        )
        ticket: TicketInfo | None = await self._ctx.activity(
            JiraActivities.create_ticket,
            request,
            what="create the Jira issue",
            hint=f". Fix that, then run `{s.slash_command} jira {order.summary}` again.",
            vendor=True,
        )
        if ticket is None:
            return
        transitions.ticket_created(s, workflow.now(), ticket, order)
        self._ctx.report()
