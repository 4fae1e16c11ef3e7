"""`/incident page`: paging the on-call through PagerDuty or Opsgenie, inviting whoever acknowledges, and
resolving the pages when the incident resolves. Runs inside the workflow, beside the Slack work (a pager that
is down never holds up the incident: its failure is one note in the channel).

IncidentWorkflow gets the `page` update from `PagingUpdates`; `Integrations` runs the loop and `finish`, and
`workflows.alerting` notes acknowledgements (`domain.paging.acknowledged`). No patch: every path here starts
from `s.paging`, which only the new `page` update fills, so no recorded history takes one (`acknowledged`
changes nothing for an incident that never paged; `finish` does nothing without pages).

The exception, `resolve_sources`: an incident declared from a PagerDuty or Opsgenie webhook (possibly before
this existed, and still running) resolves that incident / alert there too, behind patch
`resolve-pager-sources`, asked only when it has one to resolve.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities import slack_render as render
    from activities.pager import PagerActivities
    from activities.slack_invite import SlackInviteActivities
    from domain.alerts import PagerRef, Responder
    from domain.models import CommandReply
    from domain.paging import (
        PAGE_PREFIX,
        PAGER_LABELS,
        InviteRequest,
        InviteResult,
        PageLink,
        PageOrder,
        PageRequest,
        PendingPage,
        directory_key,
        sources_to_resolve,
    )
    from domain.vocab import Status, incident_label
    from workflows import directory_link, patches
    from workflows.context import IncidentContext, reject
    from workflows.outbox import Outbox

if TYPE_CHECKING:
    from workflows.integrations import Integrations

SLACK_CHANNEL_URL = "https://slack.com/app_redirect?channel={}"
MAX_PAGES = 20  # pages one incident may make (each one wakes people)


class Paging:
    def __init__(self, ctx: IncidentContext) -> None:
        self._ctx = ctx
        self._s = ctx.s

    # --- from the update and signal handlers ------------------------------------------------------------

    def validate(self, order: PageOrder) -> None:
        p = self._s.paging
        if self._s.status is Status.RESOLVED:
            reject(f"{incident_label(self._s.incident_id)} is already resolved.")
        if len(p.links) + len(p.pending) >= MAX_PAGES:
            reject(
                f"This incident has paged {MAX_PAGES} times; page from {PAGER_LABELS[order.provider]} itself."
            )
        if any(q.order.target.casefold() == order.target.casefold() for q in p.pending):
            reject(f"{render.safe(order.target)} is being paged; the page will be posted here in a moment.")

    def order(self, order: PageOrder) -> CommandReply:
        """Queues the page; its key is made here, once, so every retry sends the same one."""
        s = self._s
        key = f"{PAGE_PREFIX}{s.incident_id}-{workflow.uuid4().hex[:16]}"
        s.paging = s.paging.model_copy(
            update={"pending": (*s.paging.pending, PendingPage(order=order, key=key))}
        )
        self._ctx.record("page", f"paging {order.target} through {PAGER_LABELS[order.provider]}", order.actor)
        vendor = PAGER_LABELS[order.provider]
        return CommandReply(
            text=f"Paging *{render.safe(order.target)}* through {vendor}; the page will be posted here."
        )

    # --- the loop ---------------------------------------------------------------------------------------

    def idle(self) -> bool:
        return not self._s.paging.pending and not self._s.paging.invites

    async def loop(self) -> None:
        while True:
            await workflow.wait_condition(lambda: not self.idle())
            p = self._s.paging
            if p.pending:
                await self._page(p.pending[0])
                p = self._s.paging
                self._s.paging = p.model_copy(update={"pending": p.pending[1:]})
            else:
                who = p.invites[0]
                await self._invite(who)
                p = self._s.paging
                ident = who.user_id or who.email
                self._s.paging = p.model_copy(
                    update={"invites": p.invites[1:], "invited": (*p.invited, ident)}
                )

    async def _page(self, pending: PendingPage) -> None:
        s, order = self._s, pending.order
        vendor = PAGER_LABELS[order.provider]
        # First the directory: the pager's webhooks for this page may arrive before its answer does.
        await directory_link.link_key(self._ctx, directory_key(order.provider, pending.key))
        request = PageRequest(
            provider=order.provider,
            key=pending.key,
            target=order.target,
            title=f"{incident_label(s.incident_id)}: {s.title}",
            message=order.message,
            severity=s.severity.value,
            channel_url=SLACK_CHANNEL_URL.format(s.channel_id) if s.channel_id else "",
            incident_id=s.incident_id,
        )
        link: PageLink | None = await self._ctx.activity(
            PagerActivities.page,
            request,
            what=f"page {render.safe(order.target)} through {vendor}",
            hint=f". Fix that, then run `{s.slash_command} page` again.",
            vendor=True,
        )
        if link is None:
            return
        s.paging = s.paging.model_copy(update={"links": (*s.paging.links, link)})
        where = f"<{link.url}|#{link.number or link.vendor_id}>" if link.url else ""
        self._ctx.record("page", f"paged {link.target} through {vendor}", order.actor, link=link.url or None)
        by = f" (<@{order.actor}>)" if order.actor else ""
        await self._ctx.note(
            f":pager: Paged *{render.safe(link.target)}* through {vendor}{by}. {where}".strip()
        )

    async def _invite(self, who: Responder) -> None:
        s = self._s
        vendor = PAGER_LABELS[who.provider]
        name = render.safe(who.name or who.email or who.user_id)
        if not s.channel_id:
            return
        email: str | None = await self._ctx.activity(
            PagerActivities.responder_email, who, what=f"find the email of {name} in {vendor}", vendor=True
        )
        if email is None:
            return
        if not email:
            await self._ctx.note(
                f":wave: {name} acknowledged, but {vendor} has no email for them to find them in Slack."
            )
            return
        invite = InviteRequest(channel_id=s.channel_id, email=email, name=who.name)
        result: InviteResult | None = await self._ctx.activity(
            SlackInviteActivities.invite_by_email, invite, what=f"add {name} to this channel"
        )
        if result is None:
            return
        if result.user_id is None:
            await self._ctx.note(
                f":wave: {name} acknowledged in {vendor}; no Slack user has their email: invite them."
            )
            return
        if not result.already_member:
            self._ctx.record("responder", f"<@{result.user_id}> acknowledged in {vendor} and joined", None)

    # --- at resolve -------------------------------------------------------------------------------------

    async def finish(self, outbox: Outbox) -> None:
        """Lets pages in flight finish, then resolves every page (the activity skips it when the deployment
        leaves pages open)."""
        while not self.idle():
            await workflow.wait_condition(lambda: outbox.has_work() or self.idle())
            await outbox.drain()
        for index, link in enumerate(self._s.paging.links):
            if link.resolved:
                continue
            vendor = PAGER_LABELS[link.provider]
            done = await self._ctx.activity(
                PagerActivities.resolve_page,
                link,
                what=f"resolve the page of {render.safe(link.target)} in {vendor}",
                hint=f"; resolve it in {vendor} yourself.",
                vendor=True,
            )
            if done:
                links = list(self._s.paging.links)
                links[index] = link.model_copy(update={"resolved": True})
                self._s.paging = self._s.paging.model_copy(update={"links": tuple(links)})
        await self.resolve_sources()

    async def resolve_sources(self) -> None:
        """The PagerDuty incidents / Opsgenie alerts the incident was declared from or joined by (not its
        pages), resolved once each; the activity skips them when the deployment leaves them open or has no
        API credentials for that pager. Incidents that resolved before this existed did not: patch."""
        refs = sources_to_resolve(self._s.paging, self._s.alert)
        if not refs or not workflow.patched(patches.RESOLVE_PAGER_SOURCES):
            return
        for ref in refs:
            done = await self._ctx.activity(
                PagerActivities.resolve_source,
                ref,
                what=f"resolve {_named(ref)}",
                hint=_hint(ref),
                vendor=True,
            )
            if done:
                p = self._s.paging
                self._s.paging = p.model_copy(update={"sources_done": (*p.sources_done, ref.vendor_id)})


def _named(ref: PagerRef) -> str:
    """`PagerDuty incident <url|#2>`, `Opsgenie alert 42` for the channel."""
    thing = "incident" if ref.provider == "pagerduty" else "alert"
    label = render.safe(ref.label or ref.vendor_id)
    return f"the {PAGER_LABELS[ref.provider]} {thing} {f'<{ref.url}|{label}>' if ref.url else label}"


def _hint(ref: PagerRef) -> str:
    verb = "resolve" if ref.provider == "pagerduty" else "close"
    return f"; {verb} it in {PAGER_LABELS[ref.provider]} yourself."


class PagingUpdates:
    """IncidentWorkflow's `page` update (new: no recorded history calls it); the work is `Paging`'s."""

    _integrations: Integrations

    @workflow.update
    def page(self, order: PageOrder) -> CommandReply:
        """`/incident page`: pages through PagerDuty or Opsgenie."""
        return self._integrations.paging.order(order)

    @page.validator
    def _validate_page(self, order: PageOrder) -> None:
        self._integrations.paging.validate(order)
