"""Running the web ingress (HTTP or Socket Mode) as a long-lived process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.client import Client

from domain.settings import Settings
from starter.alerts import AlertRoutes
from starter.dispatch import Integrations
from starter.incidents import Incidents
from starter.metrics import WebMetrics
from starter.slack_app import build_slack_app
from starter.web import create_web_app

log = structlog.get_logger("warroom.serve")


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message says which and how to fix it."""


@dataclass
class RunningWeb:
    runner: web.AppRunner
    port: int
    socket_mode: object | None = None

    async def stop(self) -> None:
        if self.socket_mode is not None:
            await self.socket_mode.close_async()  # type: ignore[attr-defined]
        await self.runner.cleanup()


async def start_web(
    settings: Settings, client: Client, slack: AsyncWebClient, host: str = "0.0.0.0", port: int | None = None
) -> RunningWeb:
    """Starts the ingress; port 0 picks a free port (tests)."""
    if settings.slack_signing_secret is None and settings.slack_app_token is None:
        raise ConfigError("set SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN (Socket Mode)")
    secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else "socket-mode"
    )
    metrics = WebMetrics()
    incidents = Incidents.from_settings(client, settings, on_declared=metrics.declared)
    bolt = build_slack_app(
        incidents,
        slack,
        secret,
        settings.default_severity,
        metrics,
        settings.config.reactions.broadcast + settings.config.reactions.followup,
        Integrations.from_settings(settings),
    )
    alerts = AlertRoutes(incidents, settings)
    runner = web.AppRunner(create_web_app(bolt, client, alerts, metrics), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, settings.http_port if port is None else port)
    await site.start()
    sockets = getattr(site._server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else 0
    running = RunningWeb(runner=runner, port=int(bound))
    if settings.slack_app_token is not None:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        handler = AsyncSocketModeHandler(bolt, settings.slack_app_token.get_secret_value())
        await handler.connect_async()
        running.socket_mode = handler
        log.info("socket_mode_connected")
    return running


@asynccontextmanager
async def serving(
    settings: Settings, client: Client, slack: AsyncWebClient, host: str = "0.0.0.0", port: int | None = None
) -> AsyncIterator[RunningWeb]:
    """A worker and the ingress in this process (`warroom dev`, tests, bench); both stop on exit."""
    import worker as worker_process

    async with worker_process.build_worker(client, settings, slack):
        web = await start_web(settings, client, slack, host=host, port=port)
        try:
            yield web
        finally:
            await web.stop()


async def serve_forever() -> None:
    await asyncio.Event().wait()
