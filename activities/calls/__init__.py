"""Calls: one small protocol, one file per provider (`zoom.py`, `meet.py`), one activity.

Adding a provider is one new file with a class that satisfies `CallProvider`, plus its entry in
`providers_from`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import aiohttp
from temporalio import activity

from activities.vendor_errors import not_configured
from domain.effects import CallInfo, CallProviderName, CallRequest
from domain.settings import Settings

LABELS: dict[str, str] = {"zoom": "Zoom", "meet": "Google Meet"}


class CallProvider(Protocol):
    """Creates one call; raises ApplicationError (activities.vendor_errors) on failure.

    `create` must be safe to retry: on a retried attempt (`activity.info().attempt > 1`) it should find the
    call an earlier attempt made for `req.key` where the vendor allows it.
    """

    name: CallProviderName

    async def create(self, req: CallRequest) -> CallInfo: ...


class CallActivities:
    """The `create_call` activity, dispatching to the configured providers."""

    provider = "calls"  # failures are counted per provider inside; this labels the rest

    def __init__(self, providers: Mapping[str, CallProvider], missing: Mapping[str, list[str]]) -> None:
        self._providers = dict(providers)
        self._missing = dict(missing)

    @activity.defn
    async def create_call(self, req: CallRequest) -> CallInfo:
        provider = self._providers.get(req.provider)
        if provider is None:
            raise not_configured(LABELS[req.provider], self._missing.get(req.provider, []))
        info = await provider.create(req)
        activity.logger.info(
            "call created",
            extra={"incident_id": req.incident_id, "provider": req.provider, "meeting_id": info.meeting_id},
        )
        return info


def providers_from(settings: Settings, session: aiohttp.ClientSession | None) -> CallActivities:
    """The providers whose settings are complete; the others answer with what is missing."""
    from activities.calls.meet import MeetProvider
    from activities.calls.zoom import ZoomProvider

    providers: dict[str, CallProvider] = {}
    missing: dict[str, list[str]] = {}
    for name, build in (("zoom", ZoomProvider.from_settings), ("meet", MeetProvider.from_settings)):
        missing[name] = settings.missing_for(name)
        if not missing[name]:
            providers[name] = build(settings, session)
    return CallActivities(providers, missing)
