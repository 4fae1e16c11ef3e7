"""The incident's public side on Atlassian Statuspage: previews, and confirmed orders (with those a stage or
resolve adds, domain.statuspage.follow_stage / follow_resolve) worked through in order by a loop of its own,
which Integrations runs beside the Slack work like calls and Jira: a slow or failing Statuspage never holds up
the incident. Runs inside the workflow.

Public text is only what a person wrote for the page (`statuspage`'s title and message, `update --public`)
or the neutral line of a status (domain.statuspage.NEUTRAL_BODY): a stage's context stays internal. A
private incident is refused a preview and a confirmation, and no order is ever made or sent for it.

No `workflow.patched`: a public incident exists only after `statuspage` updates (preview, then confirm),
which no recorded history contains, and every other path (domain.statuspage.follow_stage and follow_resolve,
called by workflows.transitions; the loop; Integrations.idle and finish) does nothing, and awaits nothing, for
an incident without one. `incident-1__statuspage.json` records the path since.
"""

from __future__ import annotations

from typing import Literal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities import slack_render as render
    from activities.statuspage import StatuspageActivities
    from domain.models import CommandReply
    from domain.statuspage import (
        NEUTRAL_BODY,
        SEVERITY_IMPACT,
        STAGE_STATUS,
        STATUS_LABELS,
        PublicConfirm,
        PublicDraft,
        PublicDraftRequest,
        PublicOrder,
        PublicRequest,
        StatuspageInfo,
        StatuspageRequest,
    )
    from domain.vocab import Status, incident_label
    from workflows import transitions
    from workflows.context import IncidentContext, reject

WHAT = {
    "create": "open the status page incident",
    "update": "update the status page incident",
    "resolve": "resolve the status page incident",
}


def preview_text(draft: PublicDraft, slash: str) -> str:
    """What `--confirm` will publish, exactly (user text escaped for mrkdwn)."""
    head = (
        f"*Status page preview #{draft.number}*: nothing is public until you confirm."
        if draft.kind == "open"
        else f"*Status page update preview #{draft.number}*: nothing is public until you confirm."
    )
    lines = [head]
    if draft.kind == "open":
        lines.append(f"Incident name: *{render.safe(draft.name)}*")
    lines.append(f"Status: *{draft.status.capitalize()}*")
    if draft.components:
        shown = ", ".join(
            f"{render.safe(c.name)} ({STATUS_LABELS[c.status or 'operational']})" for c in draft.components
        )
        lines.append(f"Components: {shown}")
    elif draft.kind == "open":
        lines.append("Components: none")
    lines.append("Message:\n>" + render.safe(draft.body).replace("\n", "\n>"))
    lines.append(f"Publish it with `{slash} statuspage --confirm {draft.number}`.")
    return "\n".join(lines)


class PublicPage:
    """One incident's Statuspage incident (IncidentWorkflow's `statuspage` update delegates here)."""

    def __init__(self, ctx: IncidentContext) -> None:
        self._ctx = ctx
        self._s = ctx.s

    # --- the update -------------------------------------------------------------------------------------

    def validate(self, req: PublicRequest) -> None:
        if self._s.status is Status.RESOLVED:
            reject(f"{incident_label(self._s.incident_id)} is already resolved.")
        if req.preview is not None:
            self.validate_preview(req.preview)
        elif req.confirm is not None:
            self.validate_confirm(req.confirm)
        else:
            reject("Nothing to preview or publish.")

    def handle(self, req: PublicRequest) -> CommandReply:
        if req.preview is not None:
            return self.preview(req.preview)
        assert req.confirm is not None  # the validator checked
        return self.confirm(req.confirm)

    def _refuse_private(self) -> None:
        if self._s.private:
            label = incident_label(self._s.incident_id)
            reject(f"{label} is private: nothing of it goes on the public status page.")

    def _check_kind(self, kind: str) -> None:
        s, sp = self._s, self._s.statuspage
        if kind == "open" and sp.public:
            where = f" ({sp.shortlink})" if sp.shortlink else ""
            reject(
                f"{incident_label(s.incident_id)} is already on the status page{where}. "
                f"Publish an update with `{s.slash_command} update --public &lt;text&gt;`."
            )
        if kind == "update" and not sp.public:
            reject(
                f"{incident_label(s.incident_id)} is not on the status page. "
                f"Open it there with `{s.slash_command} statuspage &lt;public title&gt;`."
            )

    def validate_preview(self, req: PublicDraftRequest) -> None:
        self._refuse_private()
        self._check_kind(req.kind)
        if req.kind == "open" and not req.name.strip():
            reject("The status page incident needs a public title.")

    def preview(self, req: PublicDraftRequest) -> CommandReply:
        """Stores the draft (a newer preview replaces it) and shows it; nothing is published."""
        s, sp = self._s, self._s.statuspage
        status = STAGE_STATUS[s.stage]
        impact = SEVERITY_IMPACT[s.severity]
        components = tuple(c if c.status else c.model_copy(update={"status": impact}) for c in req.components)
        draft = PublicDraft(
            number=sp.next_draft,
            kind=req.kind,
            name=req.name,
            body=req.body or NEUTRAL_BODY[status],
            status=status,
            components=components if req.kind == "open" else (),
            actor=req.actor,
        )
        sp.next_draft += 1
        sp.draft = draft
        return CommandReply(text=preview_text(draft, s.slash_command))

    def validate_confirm(self, confirm: PublicConfirm) -> None:
        self._refuse_private()
        draft = self._s.statuspage.draft
        if draft is None or draft.number != confirm.number:
            reject(
                f"There is no status page preview #{confirm.number} waiting (a newer preview replaces an "
                "older one, and each is published once). Run the command again to see a new preview."
            )
        self._check_kind(draft.kind)
        if draft.status != STAGE_STATUS[self._s.stage]:
            reject(
                f"The stage changed since preview #{draft.number}, so it no longer says what is true. "
                "Run the command again for a new preview."
            )

    def confirm(self, confirm: PublicConfirm) -> CommandReply:
        s, sp = self._s, self._s.statuspage
        draft = sp.draft
        assert draft is not None  # the validator checked
        sp.draft = None
        action: Literal["create", "update"] = "create" if draft.kind == "open" else "update"
        order = PublicOrder(
            key=transitions.key(s, "statuspage"),
            action=action,
            status=draft.status,
            body=draft.body,
            name=draft.name,
            components=draft.components,
            actor=confirm.actor,
        )
        if action == "create":
            sp.opening = True
            sp.components = draft.components
        sp.status = draft.status
        sp.pending.append(order)
        if action == "create":
            return CommandReply(text="Publishing on the status page; its link will be posted here.")
        return CommandReply(text="Publishing the update on the status page.")

    # --- the loop -----------------------------------------------------------------------------------------

    def idle(self) -> bool:
        return not self._s.statuspage.pending

    async def loop(self) -> None:
        """Works through the orders in order; one leaves the queue once done or given up."""
        sp = self._s.statuspage
        while True:
            await workflow.wait_condition(lambda: bool(sp.pending))
            await self._publish(sp.pending[0])
            sp.pending.pop(0)

    async def _publish(self, order: PublicOrder) -> None:
        s, sp = self._s, self._s.statuspage
        if s.private:  # never queued for a private incident; and never sent if it were
            return
        if order.action != "create" and sp.page_incident_id is None:
            return  # the create failed for good (the channel was told): nothing to update
        request = StatuspageRequest(
            incident_id=s.incident_id, order=order, page_incident_id=sp.page_incident_id
        )
        if order.action == "create":
            hint = f". Fix that, then run `{s.slash_command} statuspage` again."
        else:
            hint = f". Update the status page by hand: {sp.shortlink}" if sp.shortlink else "."
        info: StatuspageInfo | None = await self._ctx.activity(
            StatuspageActivities.publish_statuspage, request, what=WHAT[order.action], hint=hint, vendor=True
        )
        if order.action == "create":
            sp.opening = False
            if info is None:
                sp.components, sp.status = (), None
                return
            sp.page_incident_id, sp.shortlink = info.page_incident_id, info.shortlink
            self._ctx.record(
                "statuspage", f"On the status page: {order.name}", order.actor, link=info.shortlink
            )
            link = f": {info.shortlink}" if info.shortlink else ""
            await self._ctx.note(f":globe_with_meridians: This incident is on the public status page{link}")
        elif info is not None:
            said = f": {order.body}" if order.actor else ""
            self._ctx.record(
                "statuspage", f"Status page {order.status}{said}", order.actor, link=sp.shortlink
            )
