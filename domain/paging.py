"""Paging the on-call from an incident (`/incident page`) through PagerDuty or Opsgenie: the command, what the
workflow keeps about each page, and what its activities take and give. No I/O.

Each page has an idempotency key (`warroom-page-<incident>-<hex>`), made in the workflow before anything is
sent: PagerDuty gets it as the incident's `incident_key`, Opsgenie as the alert's `alias`. Both refuse a
second open incident (alert) with the same key, so a retried request after a lost answer pages once. The key
also links the vendor's webhooks to the incident: the workflow gives the directory `directory_key(...)` before
it pages, and the PagerDuty and Opsgenie webhooks carrying that key join this incident instead of declaring
one.

An incident declared from (or later joined by) a PagerDuty incident or Opsgenie alert that warroom did not
page keeps its reference (`PagerRef`, from the webhook: PagerDuty's `data.id`, Opsgenie's `alertId`) in
`PagingState.sources`, and resolves it when it resolves (`sources_to_resolve`).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.alerts import AlertGroup, PagerRef, Responder, hash_key
from domain.base import Model
from domain.usage import UsageError, clean_text, quote, usage_for

PagerName = Literal["pagerduty", "opsgenie"]
PAGER_LABELS: dict[str, str] = {"pagerduty": "PagerDuty", "opsgenie": "Opsgenie"}
PAGE_PREFIX = "warroom-page-"
TARGET_MAX = 100
MESSAGE_MAX = 1000
MAX_SOURCES = 20  # vendor incidents / alerts one incident keeps to resolve (the state stays bounded)


def directory_key(provider: str, key: str) -> str:
    """The alert dedup key the vendor's webhooks for the page with idempotency key `key` carry."""
    return hash_key("pagerduty-page" if provider == "pagerduty" else "opsgenie", key)


# --- the command ------------------------------------------------------------------------------------------


class Page(BaseModel):
    """`page <service, escalation policy or team> [message]`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["page"] = "page"
    target: Annotated[str, Field(min_length=1, max_length=TARGET_MAX)]
    message: Annotated[str, Field(max_length=MESSAGE_MAX)] = ""


_QUOTED = re.compile(r'\s*["“”]([^"“”]+)["“”]\s*(.*)', re.DOTALL)


def parse_page(rest: str) -> Page:
    """The target is one word or a quoted name (`"Payments API"`); the rest is the message."""
    text = clean_text(rest)
    quoted = _QUOTED.fullmatch(text)
    if quoted:
        target, message = quoted[1].strip(), quoted[2].strip()
    else:
        parts = text.split(None, 1)
        target, message = (parts[0], parts[1] if len(parts) > 1 else "") if parts else ("", "")
    if not target:
        raise UsageError(
            "Name who to page: a service or escalation policy (a team in Opsgenie).", usage_for("page")
        )
    if len(target) > TARGET_MAX:
        raise UsageError(f"{quote(target)} is too long for a name.", usage_for("page"))
    if len(message) > MESSAGE_MAX:
        raise UsageError(
            f"The message is {len(message)} characters; keep it to {MESSAGE_MAX}.", usage_for("page")
        )
    return Page(target=target, message=message.strip())


# --- the workflow's record ----------------------------------------------------------------------------------


class PageOrder(Model):
    """`/incident page`, as the update carries it."""

    provider: PagerName
    target: str
    message: str = ""
    actor: str | None = None


class PendingPage(Model):
    order: PageOrder
    key: str  # the idempotency key (incident_key / alias)


class PageLink(Model):
    """A page warroom made: the vendor's incident (PagerDuty) or alert (Opsgenie) linked to this incident."""

    provider: PagerName
    key: str
    vendor_id: str  # PagerDuty incident ID, Opsgenie alert ID ("" while Opsgenie has not processed it yet)
    target: str  # the service / escalation policy / team as the vendor names it
    url: str = ""
    number: int | None = None
    resolved: bool = False


class PagingState(Model):
    """Defaults keep a state from before paging loadable."""

    pending: tuple[PendingPage, ...] = ()
    links: tuple[PageLink, ...] = ()
    invites: tuple[Responder, ...] = ()  # acknowledgements whose responder is still to be invited
    invited: tuple[str, ...] = ()  # responders (vendor user ID or email) already handled
    sources: tuple[PagerRef, ...] = ()  # vendor incidents / alerts it was declared from or joined by
    sources_done: tuple[str, ...] = ()  # their vendor IDs resolved since (by the vendor, or at resolve)


def acknowledged(p: PagingState, group: AlertGroup) -> PagingState:
    """An acknowledgement of one of the incident's pages (made, or still being made): its responder is to be
    invited, once. Anything else changes nothing (an incident that never paged has no keys to match)."""
    who = group.responder
    mine = {directory_key(x.provider, x.key) for x in p.links}
    mine |= {directory_key(x.order.provider, x.key) for x in p.pending}
    if who is None or group.dedup_key not in mine:
        return p
    ident = who.user_id or who.email
    if not ident or ident in p.invited or any((r.user_id or r.email) == ident for r in p.invites):
        return p
    return p.model_copy(update={"invites": (*p.invites, who)})


def source_seen(p: PagingState, group: AlertGroup) -> PagingState:
    """A notification about a PagerDuty incident / Opsgenie alert warroom did not page: kept, to resolve with
    the incident; its "resolved" / `Close` means the vendor has resolved it already."""
    ref = group.pager
    if ref is None or any(x.vendor_id == ref.vendor_id for x in p.links):
        return p
    known = any(x.provider == ref.provider and x.vendor_id == ref.vendor_id for x in p.sources)
    if not known and len(p.sources) < MAX_SOURCES:
        p = p.model_copy(update={"sources": (*p.sources, ref)})
    if group.status == "resolved" and ref.vendor_id not in p.sources_done:
        p = p.model_copy(update={"sources_done": (*p.sources_done, ref.vendor_id)})
    return p


def declared_source(alert: AlertGroup | None) -> PagerRef | None:
    """The vendor incident / alert the incident was declared from. A declaration from before
    `AlertGroup.pager` existed (an incident still running) has it in its item's fingerprint, which holds the
    webhook's `data.id` / `alertId` (`pagerduty:<id>`, `opsgenie:<id>`: only a trigger / `Create` of an
    incident or alert warroom did not page has one)."""
    if alert is None or alert.pager is not None:
        return None if alert is None else alert.pager
    kind, _, vendor_id = alert.alerts[0].fingerprint.partition(":") if alert.alerts else ("", "", "")
    if kind != alert.source or kind not in PAGER_LABELS or not vendor_id:
        return None
    provider: PagerName = "pagerduty" if kind == "pagerduty" else "opsgenie"
    return PagerRef(provider=provider, vendor_id=vendor_id, url=alert.alerts[0].url)


def sources_to_resolve(p: PagingState, alert: AlertGroup | None) -> list[PagerRef]:
    """What the incident resolves at its resolve, once each: the vendor incidents / alerts it was declared
    from or joined by, less those resolved already and those it paged itself (resolved as pages)."""
    found = list(p.sources)
    first = declared_source(alert)
    if first is not None and not any(x.vendor_id == first.vendor_id for x in found):
        found.insert(0, first)
    paged = {x.vendor_id for x in p.links}
    return [x for x in found if x.vendor_id not in p.sources_done and x.vendor_id not in paged]


# --- activities' inputs and outputs ------------------------------------------------------------------------


class PageRequest(Model):
    provider: PagerName
    key: str
    target: str
    title: str  # `INC-7: Checkout latency` (the vendor's incident / alert title)
    message: str = ""
    severity: str = ""
    channel_url: str = ""
    incident_id: int = 0


class KeyLink(Model):
    """To the directory: webhooks carrying this alert key belong to this incident (until it closes)."""

    key: str
    incident_id: int


class InviteRequest(Model):
    channel_id: str
    email: str
    name: str = ""


class InviteResult(Model):
    user_id: str | None = None  # None: no Slack user has that email
    already_member: bool = False


def page_text(req: PageRequest) -> str:
    """The body of a page (PagerDuty's details, Opsgenie's description): the message, severity, channel."""
    lines = (
        req.message,
        f"Severity: {req.severity}" if req.severity else "",
        f"Slack channel: {req.channel_url}" if req.channel_url else "",
        "Paged from warroom.",
    )
    return "\n".join(line for line in lines if line)
