"""The web process's metrics, served in Prometheus text format at `GET /metrics`.

Each ingress has its own registry (with the process, platform and GC collectors), so two ingresses in one
process (tests) never count each other's requests. The worker's metrics (the Temporal SDK's, broadcast
deliveries, resolved incidents, Slack failures) are on its own port: see worker.py.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from domain.vocab import Severity

# Slack expects an answer within 3 s; the buckets resolve the range around that.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)
UNMATCHED = "unmatched"  # requests to no route: one label value, whatever the path
# Where incidents come from; a generic alert's own `source` (free text) counts as "generic".
SOURCES = frozenset({"slack", "alertmanager", "grafana", "generic", "cli", "api"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# No `*_created` series next to each counter and histogram: a start timestamp per label set only adds noise.
disable_created_metrics()


class WebMetrics:
    """Counters and histograms of one ingress, and the aiohttp pieces that fill and serve them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.incidents_declared = Counter(
            "warroom_incidents_declared",
            "Incidents this ingress declared (Slack, alert webhooks), by severity and source.",
            ["severity", "source"],
            registry=self.registry,
        )
        self.request_duration = Histogram(
            "warroom_ingress_request_duration_seconds",
            "Time from receiving an HTTP request to having its answer, by route, method and status.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.integration_failures = Counter(
            "warroom_integration_failures",
            "Failed calls to an integration (here: opening Slack forms), by provider and error type.",
            ["provider", "error"],
            registry=self.registry,
        )
        self.slack_temporal_timeouts = Counter(
            "warroom_slack_temporal_timeouts",
            "Slack requests answered without Temporal's result because it did not come within Slack's 3 s, "
            "by request kind (command, event, view_submission, block_actions, other).",
            ["kind"],
            registry=self.registry,
        )
        self.slack_app_rate_limited = Counter(
            "warroom_slack_app_rate_limited",
            "app_rate_limited notices from Slack: it dropped this app's events for the rest of a minute.",
            registry=self.registry,
        )

    def declared(self, severity: Severity, source: str) -> None:
        known = source if source in SOURCES else "generic"
        self.incidents_declared.labels(severity=severity.value, source=known).inc()

    def integration_failed(self, provider: str, error: str) -> None:
        self.integration_failures.labels(provider=provider, error=error).inc()

    def temporal_timeout(self, kind: str) -> None:
        self.slack_temporal_timeouts.labels(kind=kind).inc()

    def app_rate_limited(self) -> None:
        self.slack_app_rate_limited.inc()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Times every request, labelled by its route's pattern (never the raw path: bounded labels)."""
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as err:
            status = err.status
            raise
        finally:
            resource = request.match_info.route.resource
            route = resource.canonical if resource is not None else UNMATCHED
            self.request_duration.labels(route=route, method=request.method, status=str(status)).observe(
                time.perf_counter() - started
            )

    async def serve(self, _: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4}
        )
