"""Alert senders as they really are: Alertmanager's large groups (it treats 413 as final), Grafana's
configurable signature header, its PUT method and its `truncatedAlerts`."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from activities.slack_render import ALERTS_IN_OVERVIEW
from domain.alerts import MAX_ALERTS_SHOWN
from sandbox import SandboxServer
from starter import alerts as alerts_module
from tests.conftest import Stack, eventually, running_stack, stack_on
from tests.temporal_server import FileBackedServer
from tests.test_alerts import (
    ALERT_TOKEN,
    GRAFANA_SECRET,
    Poster,
    alerting,  # noqa: F401  (the fixture, by name)
    alertmanager_payload,
    grafana_payload,
)
from tests.test_incident_workflow import top_level, wait_quiet

GROUP = 4_800  # about 2 MB, as Alertmanager sends it


async def test_a_two_megabyte_alertmanager_group_declares(alerting: tuple[Stack, Poster]) -> None:  # noqa: F811
    stack, poster = alerting
    payload = alertmanager_payload(*(f"web-{i}" for i in range(GROUP)))
    body = json.dumps(payload).encode()
    assert len(body) > 2_000_000
    status, answer = await poster.post("/alerts/alertmanager", body)
    assert (status, answer["action"], answer["incident"]) == (202, "declared", "INC-1")
    channel = await stack.incident_channel(1)
    await wait_quiet(stack, 1)
    alert = (await stack.state(1)).alert
    assert alert is not None
    assert (len(alert.alerts), alert.truncated) == (MAX_ALERTS_SHOWN, GROUP - MAX_ALERTS_SHOWN)
    [overview] = await top_level(stack, channel)
    assert f"and {GROUP - ALERTS_IN_OVERVIEW} more" in json.dumps(overview["blocks"], ensure_ascii=False)
    # The same group again joins the incident, nothing new to say.
    status, answer = await poster.post("/alerts/alertmanager", body)
    assert (status, answer["action"]) == (202, "joined")


async def test_grafana_with_its_own_signature_header_put_and_truncated_alerts(
    temporal: WorkflowEnvironment, sandbox: SandboxServer
) -> None:
    settings = {
        "WARROOM_GRAFANA_SECRET": SecretStr(GRAFANA_SECRET),
        "WARROOM_GRAFANA_SIGNATURE_HEADER": "X-Hub-Signature",
    }
    async with running_stack(temporal, sandbox, **settings) as stack, aiohttp.ClientSession() as session:
        poster = Poster(stack, session)
        payload = grafana_payload()
        payload["truncatedAlerts"] = 7  # Grafana's max_alerts cut seven more
        body = json.dumps(payload).encode()
        signature = hmac.new(GRAFANA_SECRET.encode(), body, hashlib.sha256).hexdigest()

        status, answer = await poster.post(
            "/alerts/grafana",
            body,
            token=None,
            method="PUT",
            headers={"X-Grafana-Alerting-Signature": signature},
        )
        assert status == 401 and answer["error"] == "missing or wrong X-Hub-Signature"
        status, answer = await poster.post(
            "/alerts/grafana", body, token=None, method="PUT", headers={"X-Hub-Signature": signature}
        )
        assert (status, answer["action"]) == (202, "declared")
        channel = await stack.incident_channel(1)
        await wait_quiet(stack, 1)
        alert = (await stack.state(1)).alert
        assert alert is not None and alert.truncated == 7
        [overview] = await top_level(stack, channel)
        assert "and 7 more" in json.dumps(overview["blocks"], ensure_ascii=False)


async def test_alert_routes_without_a_credential_are_closed_unless_opened_on_purpose(
    temporal: WorkflowEnvironment, sandbox: SandboxServer
) -> None:
    async with running_stack(temporal, sandbox) as stack, aiohttp.ClientSession() as session:
        poster = Poster(stack, session)
        for route, body in (
            ("/alerts/alertmanager", alertmanager_payload("web-1")),
            ("/alerts", {"title": "Disk full"}),
            ("/alerts/grafana", grafana_payload()),
        ):
            status, answer = await poster.post(route, body, token=None)
            assert status == 403, (route, answer)
            assert "WARROOM_ALERT_TOKEN" in answer["error"]
            assert "WARROOM_ALERTS_UNAUTHENTICATED=true" in answer["error"]
        status, answer = await poster.post("/alerts/grafana", grafana_payload(), token=None)
        assert "WARROOM_GRAFANA_SECRET" in answer["error"]
        assert await stack.incidents.list() == []
        assert not [c for c in stack.sandbox.state.channels.values() if c.name.startswith("inc-")]


async def test_alert_routes_opened_on_purpose_take_alerts_without_a_credential(
    temporal: WorkflowEnvironment, sandbox: SandboxServer
) -> None:
    async with (
        running_stack(temporal, sandbox, WARROOM_ALERTS_UNAUTHENTICATED=True) as stack,
        aiohttp.ClientSession() as session,
    ):
        status, answer = await Poster(stack, session).post("/alerts", {"title": "Disk full"}, token=None)
        assert (status, answer["action"]) == (202, "declared")


async def test_a_hung_temporal_gets_503_with_retry_after_and_work_does_not_pile_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Temporal stops answering (SIGSTOP): alert notifications wait at most TEMPORAL_DEADLINE, and beyond
    MAX_IN_FLIGHT waiting the next is refused after SLOT_WAIT; each 503 says when to retry. When Temporal
    answers again, the retried notification declares."""
    monkeypatch.setattr(alerts_module, "TEMPORAL_DEADLINE", 5.0)
    monkeypatch.setattr(alerts_module, "MAX_IN_FLIGHT", 2)
    monkeypatch.setattr(alerts_module, "SLOT_WAIT", 0.5)
    server = FileBackedServer(tmp_path)
    server.start()
    try:
        async with (
            stack_on(await server.connect(), WARROOM_ALERT_TOKEN=ALERT_TOKEN) as stack,
            aiohttp.ClientSession() as session,
        ):
            poster = Poster(stack, session)
            url = f"{poster.base}/alerts"
            headers = {"Authorization": f"Bearer {ALERT_TOKEN}"}

            async def post(title: str) -> tuple[int, str | None, float]:
                started = time.monotonic()
                async with session.post(url, json={"title": title}, headers=headers) as resp:
                    return resp.status, resp.headers.get("Retry-After"), time.monotonic() - started

            server.pause()
            try:
                waiting = [asyncio.create_task(post(f"Database {i} down")) for i in range(2)]
                await asyncio.sleep(0.5)
                status, retry_after, seconds = await post("Database 3 down")
                assert (status, retry_after) == (
                    503,
                    str(alerts_module.RETRY_AFTER),
                ) and seconds < 4  # after SLOT_WAIT, not the deadline
                for status, retry_after, seconds in await asyncio.gather(*waiting):
                    assert (status, retry_after) == (503, str(alerts_module.RETRY_AFTER))
                    assert seconds < 5.0 + 3  # the deadline, not forever
            finally:
                server.resume()

            async def declared() -> bool:
                status, answer = await poster.post(
                    "/alerts", {"title": "Database 3 down", "dedup_key": "db3"}
                )
                return status == 202 and answer["action"] == "declared"

            await eventually(declared, within=30)
    finally:
        await server.stop()
