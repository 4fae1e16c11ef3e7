"""Paging activities (`/incident page`): one set for both pagers, each request naming its provider, so the
workflow never depends on which one this deployment uses. Secrets come from the worker's settings.

- `page`: PagerDuty incident or Opsgenie alert, idempotent by the page's key (PagerDuty: a retry first looks
  the key up; Opsgenie: `alias` dedups the open alert);
- `responder_email`: the email of whoever acknowledged (PagerDuty's webhook names the user only);
- `resolve_page`: at the incident's resolve, unless WARROOM_PAGER_RESOLVE_ON_RESOLVE=false;
- `resolve_source`: the same for the PagerDuty incident / Opsgenie alert an incident was declared from by a
  webhook; skipped when that pager's API credentials are not set (a webhook alone gives none).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from temporalio import activity

from activities import opsgenie, pagerduty
from activities.vendor_errors import not_configured
from domain.alerts import PagerRef, Responder
from domain.paging import PAGER_LABELS, PageLink, PageRequest
from domain.settings import Settings


class PagerActivities:
    provider = "pager"  # the label its failures are counted under (activities.telemetry)

    def __init__(self, settings: Settings, session: aiohttp.ClientSession | None = None) -> None:
        self._settings = settings
        self._session = session

    @asynccontextmanager
    async def _http(self) -> AsyncIterator[aiohttp.ClientSession]:
        if self._session is not None:
            yield self._session
            return
        async with aiohttp.ClientSession() as session:
            yield session

    def _check(self, provider: str) -> None:
        missing = self._settings.missing_for(provider)
        if missing:
            raise not_configured(PAGER_LABELS[provider], missing)

    @activity.defn
    async def page(self, req: PageRequest) -> PageLink:
        self._check(req.provider)
        async with self._http() as session:
            if req.provider == "pagerduty":
                api = pagerduty.PagerDutyApi(session, self._settings)
                existing = await api.by_key(req.key) if activity.info().attempt > 1 else None
                if existing is not None:
                    link = pagerduty.link_from(
                        existing, req, str(existing.get("service", {}).get("summary", ""))
                    )
                else:
                    made, target = await api.create(req)
                    link = pagerduty.link_from(made, req, target)
            else:
                link = await opsgenie.OpsgenieApi(session, self._settings).create(req)
        activity.logger.info(
            "paged",
            extra={"incident_id": req.incident_id, "provider": req.provider, "vendor_id": link.vendor_id},
        )
        return link

    @activity.defn
    async def responder_email(self, who: Responder) -> str:
        """The responder's email: Opsgenie's username is one; PagerDuty's user is read."""
        if who.email or who.provider == "opsgenie":
            return who.email
        self._check("pagerduty")
        async with self._http() as session:
            return await pagerduty.PagerDutyApi(session, self._settings).user_email(who.user_id)

    @activity.defn
    async def resolve_page(self, link: PageLink) -> bool:
        """Resolves (closes) the page; False when this deployment leaves pages open at resolve."""
        if not self._settings.pager_resolve_on_resolve:
            return False
        self._check(link.provider)
        async with self._http() as session:
            if link.provider == "pagerduty":
                await pagerduty.PagerDutyApi(session, self._settings).resolve(link.vendor_id)
            else:
                await opsgenie.OpsgenieApi(session, self._settings).close(link.key)
        return True

    @activity.defn
    async def resolve_source(self, ref: PagerRef) -> bool:
        """Resolves the PagerDuty incident (closes the Opsgenie alert, by its ID) an incident was declared
        from or joined by; False, sending nothing, when this deployment leaves them open or cannot reach
        that pager's API."""
        if not self._settings.pager_resolve_on_resolve or self._settings.missing_for(ref.provider):
            return False
        async with self._http() as session:
            if ref.provider == "pagerduty":
                await pagerduty.PagerDutyApi(session, self._settings).resolve(ref.vendor_id)
            else:
                await opsgenie.OpsgenieApi(session, self._settings).close(ref.vendor_id, kind="id")
        activity.logger.info(
            "resolved at the source", extra={"provider": ref.provider, "vendor_id": ref.vendor_id}
        )
        return True
