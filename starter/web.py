"""The aiohttp ingress: `POST /slack/events` (Bolt), `GET /healthz`, `GET /metrics`, and the alert routes.

`/slack/events` exists only for a Bolt app that verifies Slack's signatures (HTTP mode); a Socket Mode app
without a signing secret gets no HTTP route at all. Every Slack request is answered within Slack's 3 s,
counted from its arrival: listeners keep to `slack_deadline.ANSWER_WITHIN`, and a dispatch still running at
`LAST_CHANCE` is cut off and answered as `slack_deadline.late_answer` says for its kind.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import structlog
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from temporalio.client import Client

from starter import logs
from starter.alerts import AlertRoutes
from starter.alerts_opsgenie import OpsgenieRoute
from starter.alerts_pagerduty import PagerDutyRoute
from starter.metrics import Handler, WebMetrics
from starter.slack_deadline import LAST_CHANCE, Deadline, late_answer, request_kind, stamp

log = structlog.get_logger("warroom.web")

MAX_BODY = 1024 * 1024  # bigger bodies get 413 from aiohttp
SLACK_CONTENT_TYPES = ("application/x-www-form-urlencoded", "application/json")
HEALTH_WITHIN = 2.0  # a Temporal server that accepts connections but does not answer is not healthy


@web.middleware
async def log_scope(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every line logged while serving a request shares its request ID, and its incident once known."""
    with logs.request_scope(request_id=uuid.uuid4().hex[:12]):
        return await handler(request)


def slack_events_handler(slack_app: AsyncApp, metrics: WebMetrics) -> Handler:
    """`POST /slack/events`: Bolt's dispatch, cut off at `LAST_CHANCE` after the request arrived."""

    async def slack_events(request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        if request.content_type not in SLACK_CONTENT_TYPES:
            return web.json_response(
                {"ok": False, "error": f"unsupported content type {request.content_type or 'none'}"},
                status=415,
            )
        if not request.headers.get("X-Slack-Request-Timestamp", "").strip().isdigit():
            # Bolt's verifier would raise on a non-numeric timestamp; it is simply unsigned.
            return web.json_response({"ok": False, "error": "invalid request signature"}, status=401)
        bolt_request = await to_bolt_request(request)
        stamp(bolt_request.context, arrived)
        retry = request.headers.get("X-Slack-Retry-Num")
        try:
            left = Deadline(arrived).left(within=LAST_CHANCE)
            bolt_response = await asyncio.wait_for(slack_app.async_dispatch(bolt_request), left)
        except TimeoutError:
            # A listener overran its own deadline (e.g. a slow `views.open`): answer for it, in time.
            body = bolt_request.body if isinstance(bolt_request.body, dict) else {}
            kind = request_kind(body)
            log.warning("slack_answer_overran", kind=kind, retry=retry)
            metrics.temporal_timeout(kind)
            bolt_response = late_answer(body)
        response = await to_aiohttp_response(bolt_response)
        log.info(
            "slack_request",
            status=response.status,
            retry=retry,
            ms=round((time.monotonic() - arrived) * 1000, 1),
        )
        return response

    return slack_events


def create_web_app(
    slack_app: AsyncApp | None,
    temporal: Client,
    alerts: AlertRoutes | None = None,
    metrics: WebMetrics | None = None,
) -> web.Application:
    """`slack_app` None: no `/slack/events` (Socket Mode without a signing secret)."""
    metrics = metrics or WebMetrics()
    app = web.Application(client_max_size=MAX_BODY, middlewares=[metrics.middleware, log_scope])
    if alerts is not None:
        alerts.register(app)
        PagerDutyRoute(alerts).register(app)
        OpsgenieRoute(alerts).register(app)

    async def healthz(_: web.Request) -> web.Response:
        try:
            healthy = await asyncio.wait_for(temporal.service_client.check_health(), HEALTH_WITHIN)
        except Exception as err:  # unreachable or not answering: say so, without a trace
            return web.json_response({"ok": False, "temporal": type(err).__name__}, status=503)
        return web.json_response({"ok": bool(healthy)}, status=200 if healthy else 503)

    if slack_app is not None:
        app.router.add_post("/slack/events", slack_events_handler(slack_app, metrics))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics.serve)
    return app
