"""The aiohttp ingress: `POST /slack/events` (Bolt), `GET /healthz`, `GET /metrics`."""

from __future__ import annotations

import time
import uuid

import structlog
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from temporalio.client import Client

from starter import logs
from starter.alerts import AlertRoutes
from starter.metrics import Handler, WebMetrics

log = structlog.get_logger("warroom.web")

MAX_BODY = 1024 * 1024  # bigger bodies get 413 from aiohttp
SLACK_CONTENT_TYPES = ("application/x-www-form-urlencoded", "application/json")


@web.middleware
async def log_scope(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every line logged while serving a request shares its request ID, and its incident once known."""
    with logs.request_scope(request_id=uuid.uuid4().hex[:12]):
        return await handler(request)


def create_web_app(
    slack_app: AsyncApp,
    temporal: Client,
    alerts: AlertRoutes | None = None,
    metrics: WebMetrics | None = None,
) -> web.Application:
    metrics = metrics or WebMetrics()
    app = web.Application(client_max_size=MAX_BODY, middlewares=[metrics.middleware, log_scope])
    if alerts is not None:
        alerts.register(app)

    async def slack_events(request: web.Request) -> web.StreamResponse:
        if request.content_type not in SLACK_CONTENT_TYPES:
            return web.json_response(
                {"ok": False, "error": f"unsupported content type {request.content_type or 'none'}"},
                status=415,
            )
        if not request.headers.get("X-Slack-Request-Timestamp", "").strip().isdigit():
            # Bolt's verifier would raise on a non-numeric timestamp; it is simply unsigned.
            return web.json_response({"ok": False, "error": "invalid request signature"}, status=401)
        started = time.perf_counter()
        response = await to_aiohttp_response(await slack_app.async_dispatch(await to_bolt_request(request)))
        log.info(
            "slack_request",
            status=response.status,
            retry=request.headers.get("X-Slack-Retry-Num"),
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return response

    async def healthz(_: web.Request) -> web.Response:
        try:
            healthy = await temporal.service_client.check_health()
        except Exception as err:  # unreachable: say so, without a trace
            return web.json_response({"ok": False, "temporal": type(err).__name__}, status=503)
        return web.json_response({"ok": bool(healthy)}, status=200 if healthy else 503)

    app.router.add_post("/slack/events", slack_events)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics.serve)
    return app
