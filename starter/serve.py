"""Running the web ingress (HTTP or Socket Mode) as a long-lived process.

Which Slack routes exist follows from the settings, secure by default:

- HTTP mode (no `SLACK_APP_TOKEN`): `SLACK_SIGNING_SECRET` is required (ConfigError otherwise); Slack posts
  to `POST /slack/events` and every request's signature is verified.
- Socket Mode (`SLACK_APP_TOKEN`): Slack's requests come over the app's own WebSocket. Without a signing
  secret the HTTP app has no `/slack/events` at all (only `/healthz`, `/metrics` and the alert routes), so
  nobody who reaches the port can act as Slack; with one, `/slack/events` is served and verified as well.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

import structlog
from aiohttp import web
from slack_bolt.async_app import AsyncApp
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

NO_SIGNING_SECRET = (
    "SLACK_SIGNING_SECRET is not set. In HTTP mode warroom verifies every request to /slack/events with "
    "it: copy it from https://api.slack.com/apps -> your app -> Basic Information -> App Credentials -> "
    "Signing Secret. (For Socket Mode set SLACK_APP_TOKEN instead.)"
)


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message says which and how to fix it."""


class SocketModeConnection(Protocol):
    async def close_async(self) -> None: ...


# Opens the Socket Mode connection for a Bolt app with an app-level token (tests pass a stand-in).
SocketModeConnector = Callable[[AsyncApp, str], Awaitable[SocketModeConnection]]


async def connect_socket_mode(bolt: AsyncApp, app_token: str) -> SocketModeConnection:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    handler = AsyncSocketModeHandler(bolt, app_token)
    await handler.connect_async()
    return handler


@dataclass(frozen=True)
class SlackMode:
    """How Slack reaches this ingress: the signing secret (HTTP) and the app-level token (Socket Mode)."""

    signing_secret: str | None
    app_token: str | None

    @classmethod
    def from_settings(cls, settings: Settings) -> SlackMode:
        """ConfigError when neither is usable; a blank value counts as unset (it is no secret)."""
        secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
        token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else ""
        if not token.strip() and not secret.strip():
            raise ConfigError(NO_SIGNING_SECRET)
        return cls(secret if secret.strip() else None, token if token.strip() else None)

    @property
    def routes(self) -> str:
        slack = "POST /slack/events, " if self.signing_secret else ""
        return f"{slack}/alerts*; GET /healthz, /metrics" + (
            "; Slack over Socket Mode" if self.app_token else ""
        )


@dataclass
class RunningWeb:
    runner: web.AppRunner
    port: int
    mode: SlackMode
    socket_mode: SocketModeConnection | None = None

    async def stop(self) -> None:
        if self.socket_mode is not None:
            await self.socket_mode.close_async()
        await self.runner.cleanup()


async def start_web(
    settings: Settings,
    client: Client,
    slack: AsyncWebClient,
    host: str = "0.0.0.0",
    port: int | None = None,
    connect: SocketModeConnector = connect_socket_mode,
) -> RunningWeb:
    """Starts the ingress; port 0 picks a free port (tests). `connect` opens the Socket Mode connection
    when `SLACK_APP_TOKEN` is set."""
    mode = SlackMode.from_settings(settings)
    metrics = WebMetrics()
    incidents = Incidents.from_settings(client, settings, on_declared=metrics.declared)
    bolt = build_slack_app(
        incidents,
        slack,
        mode.signing_secret,  # None: Socket Mode only, and no HTTP route for it below
        settings.default_severity,
        metrics,
        settings.config.reactions.broadcast + settings.config.reactions.followup,
        Integrations.from_settings(settings),
    )
    alerts = AlertRoutes(incidents, settings)
    http_bolt = bolt if mode.signing_secret is not None else None
    runner = web.AppRunner(create_web_app(http_bolt, client, alerts, metrics), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, settings.http_port if port is None else port)
    await site.start()
    sockets = getattr(site._server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else 0
    running = RunningWeb(runner=runner, port=int(bound), mode=mode)
    if mode.app_token is not None:
        try:
            running.socket_mode = await connect(bolt, mode.app_token)
        except BaseException:
            await runner.cleanup()
            raise
        log.info("socket_mode_connected", http_slack_events=mode.signing_secret is not None)
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
