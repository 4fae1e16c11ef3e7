"""Alert webhooks through the real ingress: Alertmanager v4, Grafana and generic JSON, with dedup."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

import worker as worker_process
from domain.alerts import DEFAULT_SEVERITY_MAP, AlertmanagerPayload, from_alertmanager
from domain.models import Resolution
from domain.naming import incident_workflow_id
from domain.vocab import Severity, Stage, Status
from sandbox import SandboxServer
from starter.incidents import Incidents
from starter.serve import start_web
from tests.conftest import Stack, eventually, make_settings, running_stack, start_temporal
from tests.test_incident_workflow import top_level, wait_quiet

ALERT_TOKEN = "alert-token-for-tests"
GRAFANA_SECRET = "grafana-hmac-secret"


def am_alert(instance: str, status: str = "firing", fingerprint: str | None = None) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {
            "alertname": "HighLatency",
            "severity": "critical",
            "service": "checkout",
            "instance": instance,
            "région": "zürich-ost",
        },
        "annotations": {"summary": f"p99 above 2s on {instance}", "description": "Checkout is slow"},
        "startsAt": "2026-11-27T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-27T10:30:00Z",
        "generatorURL": "http://prometheus.example:9090/graph?g0.expr=latency",
        "fingerprint": fingerprint or hashlib.sha256(instance.encode()).hexdigest()[:16],
    }


def alertmanager_payload(*instances: str, status: str = "firing") -> dict[str, Any]:
    """Shaped like Alertmanager's webhook (version 4) documentation."""
    return {
        "version": "4",
        "groupKey": '{}:{alertname="HighLatency"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "warroom",
        "groupLabels": {"alertname": "HighLatency"},
        "commonLabels": {"alertname": "HighLatency", "severity": "critical", "service": "checkout"},
        "commonAnnotations": {"summary": "Checkout p99 above 2s", "description": "Checkout is slow"},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": [am_alert(i, status) for i in instances],
    }


def grafana_payload() -> dict[str, Any]:
    """Shaped like Grafana alerting's webhook documentation."""
    payload = alertmanager_payload("web-1")
    del payload["version"]
    payload.update(orgId=1, title="[FIRING:1] HighLatency", state="alerting", message="**Firing**")
    payload["alerts"][0].update(silenceURL="http://grafana.example/silence", dashboardURL="", panelURL="")
    return payload


class Poster:
    def __init__(self, stack: Stack, session: aiohttp.ClientSession) -> None:
        self.base = f"http://127.0.0.1:{stack.web.port}"
        self.session = session

    async def post(
        self,
        route: str,
        body: Any,
        token: str | None = ALERT_TOKEN,
        headers: dict[str, str] | None = None,
        method: str = "POST",
    ) -> tuple[int, dict[str, Any]]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent = {"Content-Type": "application/json", **(headers or {})}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        async with self.session.request(method, self.base + route, data=data, headers=sent) as resp:
            return resp.status, await resp.json(content_type=None)


@pytest.fixture
async def alerting(
    temporal: WorkflowEnvironment, sandbox: SandboxServer
) -> AsyncIterator[tuple[Stack, Poster]]:
    extra = {
        "WARROOM_ALERT_TOKEN": SecretStr(ALERT_TOKEN),
        "WARROOM_GRAFANA_SECRET": SecretStr(GRAFANA_SECRET),
    }
    async with running_stack(temporal, sandbox, **extra) as stack, aiohttp.ClientSession() as session:
        yield stack, Poster(stack, session)


async def test_alertmanager_group_declares_once_and_new_alerts_post_once(
    alerting: tuple[Stack, Poster],
) -> None:
    stack, poster = alerting
    status, body = await poster.post("/alerts/alertmanager", alertmanager_payload("web-1", "web-2"))
    assert (status, body["action"], body["incident"]) == (202, "declared", "INC-1")
    channel = await stack.incident_channel(1)
    await wait_quiet(stack, 1)
    state = await stack.state(1)
    assert state.severity is Severity.SEV1 and state.title == "HighLatency: Checkout p99 above 2s"
    [overview] = await top_level(stack, channel)
    context = json.dumps(overview["blocks"], ensure_ascii=False)
    for expected in (
        "p99 above 2s on web-1",
        "`région=zürich-ost`",
        "prometheus.example:9090",
        "alertmanager.example",
    ):
        assert expected in context
    for bc in stack.broadcast:
        [bc_overview] = await top_level(stack, bc)
        assert "HighLatency" in bc_overview["text"]

    # Alertmanager re-sends the same group (repeat_interval): nothing changes.
    for _ in range(3):
        status, body = await poster.post("/alerts/alertmanager", alertmanager_payload("web-1", "web-2"))
        assert (status, body["action"], body["incident"]) == (202, "joined", "INC-1")
    # The group grows: the new alert is posted once, in the channel only.
    for _ in range(2):
        await poster.post("/alerts/alertmanager", alertmanager_payload("web-1", "web-2", "web-3"))
    await wait_quiet(stack, 1)
    notes = [m["text"] for m in await top_level(stack, channel)][1:]
    # Which alert is new, not only what kind: the labels that tell it from the rest of the group.
    assert notes == [":rotating_light: 1 alert firing: HighLatency (instance=web-3) — p99 above 2s on web-3"]
    for bc in stack.broadcast:
        [bc_overview] = await top_level(stack, bc)
        assert bc_overview["replies"] == []
    assert [i.incident_id for i in await stack.incidents.list()] == [1]


async def test_resolved_group_is_noted_and_never_resolves_the_incident(
    alerting: tuple[Stack, Poster],
) -> None:
    stack, poster = alerting
    status, body = await poster.post("/alerts/alertmanager", alertmanager_payload("web-1", status="resolved"))
    assert (status, body["action"]) == (200, "ignored")  # nothing open: a resolved group declares nothing
    assert await stack.incidents.list() == []
    await poster.post("/alerts/alertmanager", alertmanager_payload("web-1"))
    channel = await stack.incident_channel(1)
    for _ in range(2):
        status, body = await poster.post(
            "/alerts/alertmanager", alertmanager_payload("web-1", status="resolved")
        )
        assert (status, body["action"]) == (202, "joined")
    await wait_quiet(stack, 1)
    state = await stack.state(1)
    assert state.status is Status.OPEN and state.stage is Stage.INVESTIGATING
    notes = [m["text"] for m in await top_level(stack, channel) if "resolved" in m["text"]]
    assert len(notes) == 1 and "All alerts resolved" in notes[0]


async def test_resolved_alerts_can_move_to_mitigated_when_configured(
    temporal: WorkflowEnvironment, sandbox: SandboxServer
) -> None:
    async with (
        running_stack(
            temporal, sandbox, WARROOM_ALERT_RESOLVE_MITIGATES=True, WARROOM_ALERTS_UNAUTHENTICATED=True
        ) as stack,
        aiohttp.ClientSession() as session,
    ):
        poster = Poster(stack, session)
        await poster.post("/alerts/alertmanager", alertmanager_payload("web-1"), token=None)
        await stack.incident_channel(1)
        await poster.post(
            "/alerts/alertmanager", alertmanager_payload("web-1", status="resolved"), token=None
        )
        await wait_quiet(stack, 1)
        state = await stack.state(1)
        assert state.stage is Stage.MITIGATED and state.status is Status.OPEN
        for bc in stack.broadcast:  # a stage change is news for stakeholders
            [overview] = await top_level(stack, bc)
            assert "Mitigated" in overview["replies"][-1]["text"]


async def test_same_key_after_resolve_declares_a_new_incident(alerting: tuple[Stack, Poster]) -> None:
    stack, poster = alerting
    await poster.post("/alerts/alertmanager", alertmanager_payload("web-1"))
    await stack.incident_channel(1)
    await stack.incidents.resolve(1, Resolution(summary="fixed"))
    await stack.temporal.client.get_workflow_handle(
        incident_workflow_id(1, stack.settings.task_queue)
    ).result()

    async def declared_again() -> bool:
        status, body = await poster.post("/alerts/alertmanager", alertmanager_payload("web-1"))
        return status == 202 and body == {"ok": True, "action": "declared", "incident": "INC-2"}

    await eventually(declared_again)  # 503 "closing" is allowed for the instant the key is being freed


async def test_fifty_identical_alerts_at_once_declare_one_incident(alerting: tuple[Stack, Poster]) -> None:
    stack, poster = alerting
    results = await asyncio.gather(
        *(poster.post("/alerts/alertmanager", alertmanager_payload("web-1")) for _ in range(50))
    )
    assert all(status == 202 for status, _ in results)
    assert [body["action"] for _, body in results].count("declared") == 1
    assert {body["incident"] for _, body in results} == {"INC-1"}
    await wait_quiet(stack, 1)
    assert len([c for c in stack.sandbox.state.channels.values() if c.name.startswith("inc-")]) == 1


async def test_grafana_signature_is_checked(alerting: tuple[Stack, Poster]) -> None:
    stack, poster = alerting
    body = json.dumps(grafana_payload()).encode()
    status, answer = await poster.post(
        "/alerts/grafana", body, headers={"X-Grafana-Alerting-Signature": "0" * 64}
    )
    assert status == 401 and "X-Grafana-Alerting-Signature" in answer["error"]
    status, _ = await poster.post("/alerts/grafana", body)
    assert status == 401
    assert await stack.incidents.list() == []
    signature = hmac.new(GRAFANA_SECRET.encode(), body, hashlib.sha256).hexdigest()
    status, answer = await poster.post(
        "/alerts/grafana", body, headers={"X-Grafana-Alerting-Signature": signature}
    )
    assert (status, answer["action"]) == (202, "declared")
    await wait_quiet(stack, 1)
    assert (await stack.state(1)).alert.source == "grafana"  # type: ignore[union-attr]


async def test_generic_alerts_dedup_on_their_key(alerting: tuple[Stack, Poster]) -> None:
    stack, poster = alerting
    alert = {"title": "Disk full on db-1", "severity": "sev2", "dedup_key": "disk-db-1", "source": "cron"}
    assert (await poster.post("/alerts", alert))[1]["action"] == "declared"
    assert (await poster.post("/alerts", alert))[1] == {"ok": True, "action": "joined", "incident": "INC-1"}
    other = {"title": "Disk full on db-2"}  # no key: every notification is its own incident
    assert (await poster.post("/alerts", other))[1]["incident"] == "INC-2"
    assert (await poster.post("/alerts", other))[1]["incident"] == "INC-3"
    await wait_quiet(stack, 1)
    state = await stack.state(1)
    assert (state.severity, state.source) == (Severity.SEV2, "cron")


async def test_bad_requests_get_a_4xx_naming_the_problem_and_start_nothing(
    alerting: tuple[Stack, Poster],
) -> None:
    stack, poster = alerting
    good = alertmanager_payload("web-1")
    missing_status = copy.deepcopy(good)
    del missing_status["alerts"][0]["status"]
    cases: list[tuple[str, Any, dict[str, Any], int, str]] = [
        ("/alerts/alertmanager", good, {"token": None}, 401, "bearer token"),
        ("/alerts/alertmanager", good, {"token": "wrong"}, 401, "bearer token"),
        ("/alerts/alertmanager", b"{not json", {}, 400, "not JSON"),
        ("/alerts/alertmanager", {**good, "version": "3"}, {}, 422, "version 4"),
        ("/alerts/alertmanager", {**good, "alerts": []}, {}, 422, "alerts"),
        ("/alerts/alertmanager", missing_status, {}, 422, "alerts.0.status"),
        ("/alerts", {"severity": "sev1"}, {}, 422, "title"),
        ("/alerts", {"title": "x", "colour": "red"}, {}, 422, "colour"),
        ("/alerts", [1, 2], {}, 422, "shape"),
    ]
    for route, body, kw, expected, mention in cases:
        status, answer = await poster.post(route, body, **kw)
        assert status == expected, (route, body, answer)
        assert mention in json.dumps(answer), (mention, answer)
    status, answer = await poster.post("/alerts", b"title=x", headers={"Content-Type": "text/plain"})
    assert status == 415 and "application/json" in answer["error"]
    status, answer = await poster.post("/alerts", b'{"title": "' + b"x" * (16 * 1024 * 1024) + b'"}')
    assert status == 413 and "16 MiB" in answer["error"] and "max_alerts" in answer["error"]
    assert await stack.incidents.list() == []
    assert not [c for c in stack.sandbox.state.channels.values() if c.name.startswith("inc-")]


async def test_temporal_down_answers_503_so_the_sender_retries(sandbox: SandboxServer) -> None:
    env = await start_temporal()
    settings = make_settings(sandbox, [], WARROOM_ALERTS_UNAUTHENTICATED=True)
    slack = worker_process.slack_client(settings)
    web = await start_web(settings, env.client, slack, host="127.0.0.1", port=0)  # the ingress alone
    try:
        await env.shutdown()
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{web.port}/alerts"
            async with session.post(url, json={"title": "database down"}) as resp:
                assert resp.status == 503
                assert "retry" in (await resp.json())["error"]
    finally:
        await web.stop()


async def test_two_ingress_processes_racing_on_one_key_declare_one_incident(stack: Stack) -> None:
    group = from_alertmanager(
        AlertmanagerPayload.model_validate(alertmanager_payload("web-1")),
        "alertmanager",
        DEFAULT_SEVERITY_MAP,
    )
    # Separate Incidents objects share nothing in memory, like two web processes: only the directory decides.
    ingresses = [Incidents(stack.temporal.client, stack.settings.task_queue) for _ in range(2)]
    outcomes = await asyncio.gather(*(ingresses[i % 2].handle_alert(group) for i in range(8)))
    assert [o.action for o in outcomes].count("declared") == 1
    assert {o.incident_id for o in outcomes} == {1}
