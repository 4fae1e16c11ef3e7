"""What activities count, through the SDK's activity metric meter: the worker serves it with the Temporal
SDK's own metrics on its metrics port (a no-op when the worker runs without one)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from domain.effects import Delivery

UPDATES_BROADCAST = "warroom_updates_broadcast"
INTEGRATION_FAILURES = "warroom_integration_failures"


def count_updates(kind: str, deliveries: Iterable[Delivery], incident_channel: str | None) -> None:
    """One per status update posted: in the incident channel, or as a reply in a broadcast thread."""
    counter = activity.metric_meter().create_counter(
        UPDATES_BROADCAST, "Status updates posted, by kind and where (incident or broadcast channel)."
    )
    for d in deliveries:
        if d.error is None:
            target = "incident_channel" if d.channel_id == incident_channel else "broadcast_channel"
            counter.add(1, {"kind": kind, "target": target})


def count_failure(provider: str, error: str) -> None:
    activity.metric_meter().create_counter(
        INTEGRATION_FAILURES, "Failed calls to an integration, by provider and error type."
    ).add(1, {"provider": provider, "error": error})


class IntegrationFailures(Interceptor):
    """Counts every activity attempt that fails, under the provider its activity class names (`provider`)."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _CountFailures(next)


class _CountFailures(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await self.next.execute_activity(input)
        except Exception as err:
            provider = getattr(getattr(input.fn, "__self__", None), "provider", None)
            if isinstance(provider, str):
                error = err.type if isinstance(err, ApplicationError) and err.type else type(err).__name__
                count_failure(provider, error)
            raise
