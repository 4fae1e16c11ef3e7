"""PagerDuty through the real ingress and Temporal: V3 webhooks (signed) and Events API v2 events on
`POST /alerts/pagerduty`. The bodies are written from PagerDuty's documented fields."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from domain.alerts import DEFAULT_SEVERITY_MAP
from domain.pagerduty import EventsV2, from_pagerduty_event, from_pagerduty_v3
from domain.vocab import Severity, Stage, Status
from sandbox import SandboxServer
from starter.alerts_pagerduty import signed
from tests.conftest import Stack, running_stack
from tests.test_alerts import ALERT_TOKEN, Poster
from tests.test_incident_workflow import top_level, wait_quiet

WEBHOOK_SECRET = "pd-webhook-signing-secret"
ROUTE = "/alerts/pagerduty"


def v3_webhook(
    event_type: str,
    *,
    incident: str = "PT4KHLK",
    event_id: str = "01DEN3G1XPZ2XX0XCLB4LJGU8Z",
    urgency: str = "high",
    priority: str | None = None,
    agent: str = "Earline Greenholt",
) -> dict[str, Any]:
    """A V3 webhook as PagerDuty's webhook documentation describes it: one event with its incident."""
    return {
        "event": {
            "id": event_id,
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": "2026-12-05T08:00:00.000Z",
            "agent": {
                "html_url": "https://acme.pagerduty.com/users/PLH1HKV",
                "id": "PLH1HKV",
                "self": "https://api.pagerduty.com/users/PLH1HKV",
                "summary": agent,
                "type": "user_reference",
            },
            "client": None,
            "data": {
                "id": incident,
                "type": "incident",
                "self": f"https://api.pagerduty.com/incidents/{incident}",
                "html_url": f"https://acme.pagerduty.com/incidents/{incident}",
                "number": 2,
                "status": event_type.removeprefix("incident."),
                "incident_key": "d3640fbd41094207a1c11e58e46b1662",
                "created_at": "2026-12-05T07:59:58Z",
                "title": "Payments API is returning 500s",
                "service": {
                    "html_url": "https://acme.pagerduty.com/services/PF9KMXH",
                    "id": "PF9KMXH",
                    "self": "https://api.pagerduty.com/services/PF9KMXH",
                    "summary": "Payments API",
                    "type": "service_reference",
                },
                "assignees": [],
                "escalation_policy": {"id": "PJ7Y8B2", "type": "escalation_policy_reference"},
                "teams": [],
                "priority": None
                if priority is None
                else {"id": "PSO75BM", "type": "priority_reference", "summary": priority},
                "urgency": urgency,
                "conference_bridge": None,
                "resolve_reason": None,
            },
        }
    }


def ping() -> dict[str, Any]:
    """What PagerDuty sends to test a subscription."""
    return {
        "event": {
            "id": "01BZZD2VKH9YN6BTK7G3FQHPNP",
            "event_type": "pagey.ping",
            "resource_type": "pagey",
            "occurred_at": "2026-12-05T08:00:00.000Z",
            "agent": None,
            "client": None,
            "data": {"message": "Hello from your friend Pagey!", "type": "ping"},
        }
    }


def events_v2(
    action: str = "trigger", dedup_key: str | None = "srv01/disk", **payload: Any
) -> dict[str, Any]:
    """An Events API v2 event, as documented for `POST /v2/enqueue`."""
    body: dict[str, Any] = {"routing_key": "R015PD3XF3D9Y6MR2XQ8A2B3C4D5E6F7", "event_action": action}
    if dedup_key is not None:
        body["dedup_key"] = dedup_key
    if action == "trigger":
        body["payload"] = {
            "summary": "Disk full on srv01",
            "source": "srv01.example.com",
            "severity": "critical",
            "timestamp": "2026-12-05T08:00:00.000+0000",
            "component": "postgres",
            "group": "prod-datapipe",
            "class": "disk",
            "custom_details": {"free space": "1%"},
            **payload,
        }
        body["links"] = [{"href": "https://monitoring.example.com/srv01", "text": "srv01 dashboard"}]
        body["images"] = []
        body["client"] = "Sample Monitoring Service"
    return body


def signature(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class PagerDuty(Poster):
    async def webhook(self, payload: Any, sig: str | None = None) -> tuple[int, dict[str, Any]]:
        """Signed as PagerDuty signs (no bearer token: PagerDuty does not send one)."""
        body = json.dumps(payload).encode()
        headers = {"X-PagerDuty-Signature": signature(body) if sig is None else sig}
        return await self.post(ROUTE, body, token=None, headers=headers)


@pytest.fixture
async def pd(temporal: WorkflowEnvironment, sandbox: SandboxServer) -> AsyncIterator[tuple[Stack, PagerDuty]]:
    settings = {
        "PAGERDUTY_WEBHOOK_SECRET": SecretStr(WEBHOOK_SECRET),
        "WARROOM_ALERT_TOKEN": SecretStr(ALERT_TOKEN),
    }
    async with running_stack(temporal, sandbox, **settings) as stack, aiohttp.ClientSession() as session:
        yield stack, PagerDuty(stack, session)


def inc_channels(stack: Stack) -> list[str]:
    return [c.name for c in stack.sandbox.state.channels.values() if c.name.startswith("inc-")]


async def test_v3_incident_is_declared_joined_acknowledged_and_resolved(pd: tuple[Stack, PagerDuty]) -> None:
    stack, poster = pd
    status, answer = await poster.webhook(v3_webhook("incident.triggered"))
    assert (status, answer["action"], answer["incident"]) == (202, "declared", "INC-1")
    channel = await stack.incident_channel(1)
    # PagerDuty delivers at least once: the same event again joins.
    status, answer = await poster.webhook(v3_webhook("incident.triggered"))
    assert (status, answer["action"], answer["incident"]) == (202, "joined", "INC-1")
    await wait_quiet(stack, 1)
    state = await stack.state(1)
    assert (state.title, state.severity, state.source) == (
        "Payments API is returning 500s",
        Severity.SEV2,
        "pagerduty",
    )
    [overview] = await top_level(stack, channel)
    assert "acme.pagerduty.com/incidents/PT4KHLK" in json.dumps(overview["blocks"])

    for _ in range(2):  # acknowledged, and the same delivery again
        ack = v3_webhook("incident.acknowledged", event_id="01DEN3J5AQJXKQ4Y3YF6G4NNVX")
        status, answer = await poster.webhook(ack)
        assert (status, answer["action"], answer["incident"]) == (202, "joined", "INC-1")
    for _ in range(2):
        resolved = v3_webhook("incident.resolved", event_id="01DEN3K0TCC1J6TY5TTVAQAMS3")
        status, answer = await poster.webhook(resolved)
        assert (status, answer["action"]) == (202, "joined")
    await wait_quiet(stack, 1)
    notes = [m["text"] for m in await top_level(stack, channel)][1:]
    [acked] = [n for n in notes if "acknowledged" in n]
    assert acked.endswith("acknowledged in PagerDuty by Earline Greenholt"), notes
    assert len([n for n in notes if "All alerts resolved" in n]) == 1, notes
    state = await stack.state(1)
    assert state.status is Status.OPEN and state.stage is Stage.INVESTIGATING  # people resolve, not PagerDuty
    assert [i.incident_id for i in await stack.incidents.list()] == [1]
    assert len(inc_channels(stack)) == 1


async def test_v3_signature_is_checked_and_a_rotating_secret_is_accepted(pd: tuple[Stack, PagerDuty]) -> None:
    stack, poster = pd
    payload = v3_webhook("incident.triggered")
    body = json.dumps(payload).encode()
    for sig in ("", signature(body, "another-secret"), "v1=" + "0" * 64, signature(body + b" ")):
        status, answer = await poster.webhook(payload, sig=sig)
        assert status == 401 and "X-PagerDuty-Signature" in answer["error"], (sig, answer)
    # A bearer token does not stand in for the signature once a secret is set.
    status, _ = await poster.post(ROUTE, body)
    assert status == 401
    assert await stack.incidents.list() == [] and inc_channels(stack) == []
    # A signed ping (the subscription's test) and other event types are answered and ignored.
    for other in (ping(), v3_webhook("incident.annotated")):
        status, answer = await poster.webhook(other)
        assert (status, answer["ok"], answer["action"]) == (200, True, "ignored"), answer
    status, _ = await poster.webhook(ping(), sig="v1=" + "0" * 64)
    assert status == 401  # checked before it is ignored
    # While PagerDuty rotates the secret, it signs with both.
    rotated = f"{signature(body, 'the-old-secret')}, {signature(body)}"
    status, answer = await poster.webhook(payload, sig=rotated)
    assert (status, answer["action"], answer["incident"]) == (202, "declared", "INC-1")


async def test_events_v2_trigger_declares_joins_and_resolves(pd: tuple[Stack, PagerDuty]) -> None:
    stack, poster = pd
    status, answer = await poster.post(ROUTE, events_v2())
    assert (status, answer["action"], answer["incident"]) == (202, "declared", "INC-1")
    channel = await stack.incident_channel(1)
    status, answer = await poster.post(ROUTE, events_v2())
    assert (status, answer["action"], answer["incident"]) == (202, "joined", "INC-1")
    status, answer = await poster.post(ROUTE, events_v2("resolve"))
    assert (status, answer["action"], answer["incident"]) == (202, "joined", "INC-1")
    status, answer = await poster.post(ROUTE, events_v2("acknowledge"))
    assert (status, answer["action"]) == (200, "ignored")
    # Without a dedup_key every trigger is an incident of its own.
    for expected in ("INC-2", "INC-3"):
        status, answer = await poster.post(ROUTE, events_v2(dedup_key=None, severity="info"))
        assert (status, answer["action"], answer["incident"]) == (202, "declared", expected)
    # The routing key alone does not authenticate unless PAGERDUTY_ROUTING_KEY is set.
    status, answer = await poster.post(ROUTE, events_v2(dedup_key="other"), token=None)
    assert status == 401 and "bearer token" in answer["error"]
    await wait_quiet(stack, 1)
    state = await stack.state(1)
    assert (state.title, state.severity, state.source) == (
        "Disk full on srv01",
        Severity.SEV1,
        "pagerduty-events",
    )
    assert state.status is Status.OPEN
    notes = [m["text"] for m in await top_level(stack, channel)][1:]
    assert len([n for n in notes if "All alerts resolved" in n]) == 1, notes
    assert (await stack.state(2)).severity is Severity.SEV4


async def test_bad_pagerduty_bodies_get_a_422_naming_the_field(pd: tuple[Stack, PagerDuty]) -> None:
    stack, poster = pd
    no_title = v3_webhook("incident.triggered")
    del no_title["event"]["data"]["title"]
    odd_urgency = v3_webhook("incident.triggered", urgency="medium")
    bad_severity = events_v2(severity="fatal")
    no_payload = events_v2()
    del no_payload["payload"]
    cases: list[tuple[Any, str]] = [
        (no_title, "event.data.title"),
        (odd_urgency, "event.data.urgency"),
        ({"event": {"event_type": "incident.triggered"}}, "event.id"),
    ]
    for payload, field in cases:
        status, answer = await poster.webhook(payload)
        assert status == 422 and field in json.dumps(answer), (field, answer)
    for payload, mention in [
        (bad_severity, "payload.severity"),
        ({**events_v2(), "event_action": "explode"}, "event_action"),
        (no_payload, "payload"),
        (events_v2("resolve", dedup_key=None), "dedup_key"),
        ({"title": "not PagerDuty"}, "event_action"),
    ]:
        status, answer = await poster.post(ROUTE, payload)
        assert status == 422 and mention in json.dumps(answer), (mention, answer)
    status, answer = await poster.post(ROUTE, b"{not json")
    assert status == 400
    assert await stack.incidents.list() == [] and inc_channels(stack) == []


async def test_pagerduty_route_is_closed_without_a_credential(
    temporal: WorkflowEnvironment, sandbox: SandboxServer
) -> None:
    async with running_stack(temporal, sandbox) as stack, aiohttp.ClientSession() as session:
        poster = PagerDuty(stack, session)
        for status, answer in (
            await poster.webhook(v3_webhook("incident.triggered")),
            await poster.post(ROUTE, events_v2(), token=None),
        ):
            assert status == 403, answer
            for setting in (
                "PAGERDUTY_WEBHOOK_SECRET",
                "WARROOM_ALERT_TOKEN",
                "WARROOM_ALERTS_UNAUTHENTICATED",
            ):
                assert setting in answer["error"]
        assert await stack.incidents.list() == []


async def test_a_matching_routing_key_authenticates_events_v2(
    temporal: WorkflowEnvironment, sandbox: SandboxServer
) -> None:
    key = events_v2()["routing_key"]
    async with (
        running_stack(temporal, sandbox, PAGERDUTY_ROUTING_KEY=SecretStr(key)) as stack,
        aiohttp.ClientSession() as session,
    ):
        poster = PagerDuty(stack, session)
        status, answer = await poster.post(ROUTE, {**events_v2(), "routing_key": "R0" + "x" * 30}, token=None)
        assert status == 401 and "routing_key" in answer["error"]
        status, answer = await poster.post(ROUTE, events_v2(), token=None)
        assert (status, answer["action"], answer["incident"]) == (202, "declared", "INC-1")
        # V3 webhooks still need their signing secret (or the bearer token).
        status, answer = await poster.webhook(v3_webhook("incident.triggered"))
        assert status == 403 and "PAGERDUTY_WEBHOOK_SECRET" in answer["error"]


def test_severity_mapping() -> None:
    def v3(**kw: Any) -> Severity:
        group = from_pagerduty_v3(v3_webhook("incident.triggered", **kw))
        assert group is not None
        return group.severity

    assert v3(urgency="high") is Severity.SEV2
    assert v3(urgency="low") is Severity.SEV3
    assert v3(urgency="low", priority="P1") is Severity.SEV1
    assert v3(urgency="high", priority="P3") is Severity.SEV2
    for label, expected in (("critical", "sev1"), ("error", "sev2"), ("warning", "sev3"), ("info", "sev4")):
        event = EventsV2.model_validate(events_v2(severity=label))
        group = from_pagerduty_event(event, DEFAULT_SEVERITY_MAP)
        assert group is not None and group.severity.value == expected


def test_signature_header_values() -> None:
    body = b'{"event": {}}'
    good = signature(body)
    assert signed(WEBHOOK_SECRET.encode(), good, body)
    assert signed(WEBHOOK_SECRET.encode(), f"v1=abc,{good}", body)
    assert signed(WEBHOOK_SECRET.encode(), good.upper().replace("V1=", "v1="), body)
    assert not signed(WEBHOOK_SECRET.encode(), good.removeprefix("v1="), body)  # the version is part of it
    assert not signed(WEBHOOK_SECRET.encode(), "", body)
    assert not signed(WEBHOOK_SECRET.encode(), "v1=é", body)
