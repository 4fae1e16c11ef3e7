"""A real Prometheus Alertmanager (Debian's prometheus-alertmanager) notifying the real ingress.

However often Alertmanager re-sends a group, it is one incident; a grown group posts its new alert once;
resolving the alerts is noted in the channel.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from sandbox import SandboxServer
from tests.conftest import Stack, eventually, running_stack
from tests.test_incident_workflow import top_level

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
ALERT_TOKEN = "alertmanager-e2e-token"

pytestmark = pytest.mark.skipif(
    BINARY is None,
    reason="needs Prometheus Alertmanager (Debian package prometheus-alertmanager, installed by .ci/run)",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(ingress_port: int) -> str:
    return f"""
route:
  receiver: warroom
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1s
receivers:
  - name: warroom
    webhook_configs:
      - url: http://127.0.0.1:{ingress_port}/alerts/alertmanager
        send_resolved: true
        http_config:
          authorization:
            credentials: {ALERT_TOKEN}
"""


class Alertmanager:
    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url, self.session = url, session

    async def fire(self, instance: str, *, resolved: bool = False) -> None:
        alert: dict[str, Any] = {
            "labels": {"alertname": "CheckoutLatency", "severity": "error", "instance": instance},
            "annotations": {"summary": f"p99 above 2s on {instance}"},
            "generatorURL": "http://prometheus.example:9090/graph",
        }
        if resolved:
            alert["endsAt"] = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
        async with self.session.post(f"{self.url}/api/v2/alerts", json=[alert]) as resp:
            assert resp.status == 200, await resp.text()

    async def webhook_notifications(self) -> int:
        async with self.session.get(f"{self.url}/metrics") as resp:
            text = await resp.text()
        found = re.search(r'alertmanager_notifications_total\{integration="webhook"[^}]*\} (\d+)', text)
        return int(found[1]) if found else 0


@pytest.fixture
async def alerting(
    temporal: WorkflowEnvironment, sandbox: SandboxServer, tmp_path: Path
) -> AsyncIterator[tuple[Stack, Alertmanager]]:
    async with running_stack(temporal, sandbox, WARROOM_ALERT_TOKEN=SecretStr(ALERT_TOKEN)) as stack:
        (tmp_path / "alertmanager.yml").write_text(config(stack.web.port))
        port = free_port()
        assert BINARY is not None
        proc = await asyncio.create_subprocess_exec(
            BINARY,
            f"--config.file={tmp_path / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            async with aiohttp.ClientSession() as session:
                am = Alertmanager(f"http://127.0.0.1:{port}", session)

                async def ready() -> bool:
                    try:
                        async with session.get(f"{am.url}/-/ready") as resp:
                            return resp.status == 200
                    except aiohttp.ClientConnectionError:
                        return False

                await eventually(ready, within=20)
                yield stack, am
        finally:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 10)


async def test_one_incident_per_group_however_often_alertmanager_resends(
    alerting: tuple[Stack, Alertmanager],
) -> None:
    stack, am = alerting
    await am.fire("web-1")
    channel = await stack.incident_channel(1)
    state = await stack.state(1)
    assert state.title == "CheckoutLatency: p99 above 2s on web-1" and state.severity.value == "sev2"

    await am.fire("web-2")  # the group grows: Alertmanager notifies again with both alerts

    async def note_for_web_2() -> list[str]:
        return [m["text"] for m in await top_level(stack, channel) if "web-2" in m["text"]]

    await eventually(note_for_web_2, within=30)
    sent = await am.webhook_notifications()

    async def resent_a_few_times() -> bool:
        return await am.webhook_notifications() >= sent + 3

    await eventually(resent_a_few_times, within=30)
    assert [i.incident_id for i in await stack.incidents.list()] == [1]
    assert len([c for c in stack.sandbox.state.channels.values() if c.name.startswith("inc-")]) == 1
    assert len(await note_for_web_2()) == 1

    for instance in ("web-1", "web-2"):
        await am.fire(instance, resolved=True)

    async def resolved_noted() -> bool:
        return any("All alerts resolved" in m["text"] for m in await top_level(stack, channel))

    await eventually(resolved_noted, within=30)
    assert (await stack.state(1)).status.value == "open"  # resolving alerts never resolves the incident
