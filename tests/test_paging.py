"""`/incident page` end to end: the real ingress, Temporal and worker, the Slack sandbox and the PagerDuty
stand-in (sandbox/pagerduty.py), whose acknowledgement comes back as a signed V3 webhook."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr, ValidationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.pager import PagerActivities
from domain.commands import parse_command
from domain.naming import incident_workflow_id
from domain.opsgenie import from_opsgenie
from domain.paging import Page, PageRequest
from domain.settings import Settings
from domain.usage import UsageError
from sandbox import SandboxServer
from sandbox import opsgenie as og_fake
from sandbox import pagerduty as pd_fake
from tests.conftest import RESPONDER, Stack, eventually, running_stack
from tests.test_incident_workflow import top_level, wait_quiet

EARLINE = "U0EARLINE"


async def notes(stack: Stack, channel: str) -> list[str]:
    return [m["text"] for m in await top_level(stack, channel)][1:]


async def declare(stack: Stack, title: str) -> str:
    answer = await stack.command(f"declare sev2 {title}")
    assert "Declared" in json.dumps(answer), answer
    return await stack.incident_channel(1)


async def test_page_once_invite_the_acknowledger_and_resolve_in_pagerduty(
    temporal: WorkflowEnvironment, sandbox: SandboxServer
) -> None:
    fake = sandbox.pagerduty
    settings = {"PAGERDUTY_WEBHOOK_SECRET": SecretStr(pd_fake.WEBHOOK_SECRET)}
    async with running_stack(temporal, sandbox, **settings) as stack:
        await stack.slack.add_user(EARLINE, name="earline", email="Earline@example.com")
        channel = await declare(stack, "Checkout down")
        # Ambiguous and unknown names: one clear note each, nothing created.
        await stack.command('page "Payments" db is down', channel)
        await stack.command("page nosuchservice", channel)

        async def refused() -> list[str]:
            said = [n for n in await notes(stack, channel) if n.startswith(":warning:")]
            assert len(said) == 2, said
            return said

        ambiguous, unknown = await eventually(refused)
        assert "2 PagerDuty services match 'Payments': 'Payments API', 'Payments Worker'" in ambiguous
        assert "no service or escalation policy named 'nosuchservice'" in unknown
        assert fake.incidents == []

        # The create works but its answer is lost: the retry finds it by key and pages once.
        fake.add_fault("create_incident", 502, after_effect=True)
        answer = await stack.command('page "Payments API" Checkout 5xx at 40%', channel)
        assert "Paging *Payments API* through PagerDuty" in json.dumps(answer), answer

        async def paged() -> list[str]:
            return [n for n in await notes(stack, channel) if n.startswith(":pager:")]

        [note] = await eventually(paged)
        [made] = fake.incidents
        assert f"<@{RESPONDER}>" in note and made["id"] in note, note
        assert made["title"] == "INC-1: Checkout down" and "Checkout 5xx at 40%" in made["details"]
        assert made["incident_key"].startswith("warroom-page-1-")
        assert fake.calls_of("create_incident") == [502]  # the retry found it by its incident_key
        assert fake.calls_of("list_incidents") == [200]

        # PagerDuty acknowledges as Earline: the webhook joins INC-1 (no new incident) and she is invited.
        assert await fake.acknowledge(made["id"]) == 202
        assert await fake.acknowledge(made["id"]) == 202  # delivered again: still one note, one invite

        async def invited() -> bool:
            return EARLINE in sandbox.state.channels[channel].members

        await eventually(invited)
        await wait_quiet(stack, 1)
        assert [i.incident_id for i in await stack.incidents.list()] == [1]
        assert fake.calls_of("get_user") == [200]

        # Resolving INC-1 resolves the PagerDuty incident, once; its resolve webhook posts nothing new.
        await stack.command("resolve --now Rolled back", channel)

        async def resolved() -> list[tuple[str, int]]:
            return fake.webhooks if made["status"] == "resolved" and len(fake.webhooks) == 3 else []

        assert [e for e, _ in await eventually(resolved)][-1] == "incident.resolved"
        await wait_quiet(stack, 1)
        said = await notes(stack, channel)
        assert len([n for n in said if "acknowledged in PagerDuty by Earline Greenholt" in n]) == 1, said
        assert not [n for n in said if "All alerts resolved" in n], said
        assert fake.calls_of("update_incident") == [200]
        assert made["resolved_by"] == "PBOTUSR"
        assert [i.incident_id for i in await stack.incidents.list()] == [1]


async def test_page_says_how_to_set_it_up_when_no_pager_is(
    temporal: WorkflowEnvironment, sandbox: SandboxServer
) -> None:
    unset = {"PAGERDUTY_API_TOKEN": "", "PAGERDUTY_FROM_EMAIL": "", "OPSGENIE_API_KEY": ""}
    async with running_stack(temporal, sandbox, **unset) as stack:
        channel = await declare(stack, "Checkout down")
        answer = json.dumps(await stack.command("page payments", channel))
        assert "Paging is not set up in this warroom" in answer, answer
        assert "`PAGERDUTY_API_TOKEN`, `PAGERDUTY_FROM_EMAIL` for PagerDuty" in answer
        assert "`OPSGENIE_API_KEY` for Opsgenie" in answer
        # Without OPSGENIE_WEBHOOK_TOKEN (or WARROOM_ALERT_TOKEN) Opsgenie's webhook route is closed.
        url = f"http://127.0.0.1:{stack.web.port}/alerts/opsgenie"
        async with aiohttp.ClientSession() as http, http.post(url, json=opsgenie_webhook("Create")) as r:
            assert r.status == 403 and "OPSGENIE_WEBHOOK_TOKEN" in (await r.json())["error"]


def opsgenie_webhook(action: str, *, alias: str = "checkout-5xx", username: str = "System") -> dict[str, Any]:
    """An alert action as Opsgenie's Webhook integration documents it."""
    return {
        "action": action,
        "alert": {
            "alertId": "70413a06-38d6-4c85-92b8-5ebc900d42e2-1563786023001",
            "message": "Checkout 5xx above 5%",
            "tags": ["checkout", "prod"],
            "tinyId": "42",
            "entity": "checkout-api",
            "alias": alias,
            "createdAt": 1563786023001,
            "updatedAt": 1563786023002000000,
            "username": username,
            "userId": "b3e9d7a2-6a1c-4c28-9b1f-1a2b3c4d5e6f" if "@" in username else "",
            "description": "5xx ratio 7% for 5 minutes",
            "team": "",
            "responders": [{"id": "4513b7ea-3b91-438f-b7e4-e3e54af9147c", "type": "team"}],
            "actions": [],
            "details": {},
            "priority": "P2",
            "source": "Prometheus",
        },
        "source": {"name": "", "type": "API"},
        "integrationName": "Webhook",
        "integrationId": "8c5d8a7e-7bd4-4b0c-9f58-8c1c5b7e0b8c",
        "integrationType": "Webhook",
    }


async def test_opsgenie_webhooks_declare_and_join_and_page_once_and_close_on_resolve(
    temporal: WorkflowEnvironment, sandbox: SandboxServer
) -> None:
    fake = sandbox.opsgenie
    settings = {"OPSGENIE_WEBHOOK_TOKEN": SecretStr(og_fake.WEBHOOK_TOKEN), "WARROOM_PAGER": "opsgenie"}
    async with running_stack(temporal, sandbox, **settings) as stack, aiohttp.ClientSession() as http:
        await stack.slack.add_user(EARLINE, name="earline", email="earline@example.com")
        url = f"http://127.0.0.1:{stack.web.port}/alerts/opsgenie"

        async def send(payload: Any, token: str = og_fake.WEBHOOK_TOKEN) -> tuple[int, Any]:
            async with http.post(url, json=payload, headers={"Authorization": f"Bearer {token}"}) as r:
                return r.status, await r.json()

        assert (await send(opsgenie_webhook("Create"), token="wrong"))[0] == 401
        for action in ("declared", "joined"):  # Opsgenie delivers at least once
            status, answer = await send(opsgenie_webhook("Create"))
            assert (status, answer["action"], answer["incident"]) == (202, action, "INC-1")
        assert (await stack.state(1)).severity.value == "sev2"
        channel = await stack.incident_channel(1)

        # The create works but its answer is lost: the retry's create is folded into the same alert.
        fake.add_fault("create_alert", 502, after_effect=True)
        await stack.command("page Payments Checkout is down", channel)

        async def paged() -> list[str]:
            return [n for n in await notes(stack, channel) if n.startswith(":pager:")]

        [note] = await eventually(paged)
        assert "Paged *Payments* through Opsgenie" in note, note
        [alert] = fake.alerts
        assert alert["alias"].startswith("warroom-page-1-") and alert["responders"] == [
            {"name": "Payments", "type": "team"}
        ]
        assert fake.calls_of("create_alert") == [502, 202]
        assert (await stack.state(1)).paging.links[0].vendor_id == alert["id"]

        # Acknowledged by Earline (her Opsgenie username is her email): she joins the channel.
        assert await fake.acknowledge(alert["alias"], "earline@example.com") == 202

        async def invited() -> bool:
            return EARLINE in sandbox.state.channels[channel].members

        await eventually(invited)
        await stack.command("resolve --now Rolled back", channel)

        async def closed() -> bool:
            return alert["status"] == "closed" and bool(fake.calls_of("close_alert"))

        await eventually(closed)
        await stack.temporal.client.get_workflow_handle(
            incident_workflow_id(1, stack.settings.task_queue)
        ).result()
        # The page, and the alert INC-1 was declared from (closed by its ID; unknown to the stand-in, which
        # accepts the request and fails it later, as Opsgenie does; tests/test_pager_sources.py closes one)
        assert fake.calls_of("close_alert") == [202, 202]
        assert [i.incident_id for i in await stack.incidents.list()] == [1]


def test_page_command_grammar() -> None:
    assert parse_command('page "Payments API" db down') == Page(target="Payments API", message="db down")
    assert parse_command("page payments") == Page(target="payments")
    assert parse_command("page “Payments API”") == Page(target="Payments API")
    with pytest.raises(UsageError, match="Name who to page"):
        parse_command("page")


async def test_the_stand_in_checks_auth_headers_and_keys(sandbox: SandboxServer) -> None:
    base = sandbox.url + pd_fake.PREFIX
    good = {"Authorization": f"Token token={pd_fake.API_TOKEN}", "Accept": pd_fake.ACCEPT}
    body: dict[str, Any] = {
        "incident": {
            "type": "incident",
            "title": "x",
            "service": {"id": "PF9KMXH", "type": "service_reference"},
            "incident_key": "k1",
        }
    }
    async with aiohttp.ClientSession() as http:

        async def post(headers: dict[str, str]) -> tuple[int, Any]:
            async with http.post(f"{base}/incidents", json=body, headers=headers) as r:
                return r.status, await r.json()

        assert (await post({**good, "Authorization": "Token token=wrong", "From": pd_fake.FROM_EMAIL}))[
            0
        ] == 401
        assert (await post(good))[0] == 400  # no From
        assert (await post({**good, "From": pd_fake.FROM_EMAIL}))[0] == 201
        status, answer = await post({**good, "From": pd_fake.FROM_EMAIL})
        assert status == 400 and "already exists" in answer["error"]["errors"][0]
        sandbox.pagerduty.add_fault("create_incident", 429, retry_after=7)
        async with http.post(
            f"{base}/incidents", json=body, headers={**good, "From": pd_fake.FROM_EMAIL}
        ) as r:
            assert (r.status, r.headers["Retry-After"]) == (429, "7")


async def test_a_second_create_with_the_same_key_returns_the_first_incident(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    """PagerDuty refuses a second open incident with the same `incident_key` (400): the activity looks the key
    up and answers with the incident the first create made."""
    settings = Settings(**sandbox.vendor_settings(tmp_path))
    req = PageRequest(provider="pagerduty", key="warroom-page-7-abc", target="Payments API", title="INC-7: x")
    env = ActivityEnvironment()
    first = await env.run(PagerActivities(settings).page, req)
    again = await env.run(PagerActivities(settings).page, req)
    assert again == first and len(sandbox.pagerduty.incidents) == 1
    assert sandbox.pagerduty.calls_of("create_incident") == [201, 400]
    assert sandbox.pagerduty.calls_of("list_incidents") == [200]


def test_opsgenie_actions_and_priorities() -> None:
    assert from_opsgenie(opsgenie_webhook("AddNote")) is None
    create = from_opsgenie(opsgenie_webhook("Create"))
    assert create is not None and create.severity.value == "sev2" and create.status == "firing"
    closed = from_opsgenie(opsgenie_webhook("Close"))
    assert closed is not None and closed.status == "resolved" and closed.dedup_key == create.dedup_key
    ack = from_opsgenie(opsgenie_webhook("Acknowledge", username="earline@example.com"))
    assert ack is not None and ack.responder is not None and ack.responder.email == "earline@example.com"
    own = opsgenie_webhook("Create", alias="warroom-page-3-0123456789abcdef")
    assert from_opsgenie(own) is None  # warroom's own page: the channel already says so
    with pytest.raises(ValidationError):
        from_opsgenie({"action": "Create", "alert": {"message": "no alertId"}})
