"""The sandbox as an aiohttp application and as a server you start and stop."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from aiohttp import web

from sandbox.control import PLATFORM_KEY, add_routes, control_errors
from sandbox.file_downloads import add_download_route
from sandbox.jira import JiraFake
from sandbox.meet import MeetFake
from sandbox.opsgenie import OpsgenieFake
from sandbox.pagerduty import PagerDutyFake
from sandbox.persist import Persistence
from sandbox.platform import Platform
from sandbox.state import SandboxState
from sandbox.statuspage import StatuspageFake
from sandbox.vendor import VendorFake
from sandbox.webapi import STATE_KEY, handle_api
from sandbox.zoom import ZoomFake


def create_app(
    state: SandboxState,
    *,
    signing_secret: str = "",
    ingress_url: str | None = None,
    ingress_timeout: float = 3.0,
    platform: Platform | None = None,
    vendors: Sequence[VendorFake] = (),
    persistence: Persistence | None = None,
) -> web.Application:
    """The Web API under `/api/`, the control API under `/_sandbox/`, sharing one state; each vendor
    stand-in (Zoom, Meet, Jira, Statuspage) under its own prefix. With `persistence`, every request that may
    change something is saved before it is answered."""
    saving = [persistence.middleware] if persistence is not None else []
    app = web.Application(middlewares=[*saving, control_errors])
    app[STATE_KEY] = state
    app[PLATFORM_KEY] = platform or Platform(state, signing_secret, ingress_url, ingress_timeout)
    app.cleanup_ctx.append(app[PLATFORM_KEY].session_ctx)
    app.router.add_route("POST", "/api/{method}", handle_api)
    app.router.add_route("GET", "/api/{method}", handle_api)
    add_routes(app)
    add_download_route(app)
    for vendor in vendors:
        vendor.add_routes(app)
    return app


class SandboxServer:
    """A stand-in Slack on a local port: `async with SandboxServer(token, secret) as sb: sb.api_url`.

    With `state_file` (`warroom dev`), the workspace and the vendor stand-ins' records are loaded from it
    when it exists (SandboxFileError, a one-line RuntimeError, if it cannot be read) and saved to it after
    every change and at stop; `resumed` says whether there was one. Without, nothing touches the disk.
    """

    def __init__(
        self,
        token: str,
        signing_secret: str,
        ingress_url: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        default_tz: str = "UTC",
        rate_limit_per_channel: bool = False,
        *,
        trigger_ttl: float = 3.0,
        ingress_timeout: float = 3.0,
        state_file: Path | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.state = SandboxState(
            token,
            default_tz=default_tz,
            rate_limit_per_channel=rate_limit_per_channel,
            trigger_ttl=trigger_ttl,
        )
        self.platform = Platform(self.state, signing_secret, ingress_url, ingress_timeout)
        self.zoom = ZoomFake()
        self.meet = MeetFake()
        self.jira = JiraFake()
        self.statuspage = StatuspageFake()
        self.pagerduty = PagerDutyFake(ingress=lambda: self.ingress_url)
        self.opsgenie = OpsgenieFake(ingress=lambda: self.ingress_url)
        self.persistence = Persistence(state_file, self.state, self.vendors) if state_file else None
        self.resumed = self.persistence.resume() if self.persistence is not None else False
        self.app: web.Application | None = None
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    @property
    def ingress_url(self) -> str | None:
        return self.platform.ingress_url

    @ingress_url.setter
    def ingress_url(self, value: str | None) -> None:
        self.platform.ingress_url = value

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the sandbox is not started")
        return self._url

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    @property
    def vendors(self) -> tuple[VendorFake, ...]:
        return (self.zoom, self.meet, self.jira, self.statuspage, self.pagerduty, self.opsgenie)

    def vendor_settings(self, workdir: Path) -> dict[str, str]:
        """Settings pointing warroom's Zoom, Meet, Jira and Statuspage clients at this sandbox's stand-ins."""
        settings: dict[str, str] = {}
        for vendor in self.vendors:
            settings.update(vendor.settings(self.url, workdir))
        return settings

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("the sandbox is already started")
        # A stopped app cannot start again: each start builds a new one.
        self.app = create_app(
            self.state, platform=self.platform, vendors=self.vendors, persistence=self.persistence
        )
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        port = runner.addresses[0][1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._url = f"http://{host}:{port}"
        self.state.base_url = self._url

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
            if self.persistence is not None:
                self.persistence.save()
        self._url = None

    async def __aenter__(self) -> SandboxServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
