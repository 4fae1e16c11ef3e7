"""Incidents declared by a PagerDuty V3 webhook or an Opsgenie `Create` webhook resolve that PagerDuty
incident (Opsgenie alert) when they resolve: the real ingress, Temporal and worker, the Slack sandbox and the
PagerDuty and Opsgenie stand-ins (sandbox/pagerduty.py, sandbox/opsgenie.py), which open the incident /
alert as a monitoring integration would and send the webhook themselves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.pager import PagerActivities
from domain.alerts import AlertGroup, AlertItem, PagerRef
from domain.naming import incident_workflow_id
from domain.opsgenie import from_opsgenie
from domain.pagerduty import from_pagerduty_v3
from domain.paging import PageLink, PagingState, declared_source, source_seen, sources_to_resolve
from domain.settings import Settings
from domain.vocab import Severity
from sandbox import SandboxServer
from sandbox import opsgenie as og_fake
from sandbox import pagerduty as pd_fake
from tests.conftest import Stack, running_stack
from tests.test_incident_workflow import top_level
from tests.test_pagerduty import signature, v3_webhook
from tests.test_paging import opsgenie_webhook

WEBHOOKS = {
    "PAGERDUTY_WEBHOOK_SECRET": SecretStr(pd_fake.WEBHOOK_SECRET),
    "OPSGENIE_WEBHOOK_TOKEN": SecretStr(og_fake.WEBHOOK_TOKEN),
}


async def declared_by_both(stack: Stack, http: aiohttp.ClientSession) -> tuple[str, dict[str, Any]]:
    """INC-1 from a PagerDuty incident its monitoring opened, INC-2 from an Opsgenie alert a monitoring tool
    created through the Alert API: (the PagerDuty incident's ID, the Opsgenie alert)."""
    pd_id = await stack.sandbox.pagerduty.trigger("Payments API", "Checkout 5xx above 5%")
    body = {"message": "Disk full on db-1", "alias": "db-1-disk", "priority": "P2"}
    headers = {"Authorization": f"GenieKey {og_fake.API_KEY}"}
    async with http.post(f"{stack.sandbox.url}{og_fake.API}/alerts", json=body, headers=headers) as r:
        assert r.status == 202, await r.text()
    assert stack.sandbox.pagerduty.webhooks == [("incident.triggered", 202)]
    assert stack.sandbox.opsgenie.webhooks == [("Create", 202)]
    [alert] = stack.sandbox.opsgenie.alerts
    return pd_id, alert


async def resolve_and_wait(stack: Stack, *incident_ids: int) -> None:
    for n in incident_ids:
        await stack.command("resolve --now Rolled back", await stack.incident_channel(n))
    for n in incident_ids:
        workflow_id = incident_workflow_id(n, stack.settings.task_queue)
        await stack.temporal.client.get_workflow_handle(workflow_id).result()


async def test_declared_incidents_resolve_their_pagerduty_incident_and_opsgenie_alert_once(
    temporal: WorkflowEnvironment, sandbox: SandboxServer
) -> None:
    pd, og = sandbox.pagerduty, sandbox.opsgenie
    async with running_stack(temporal, sandbox, **WEBHOOKS) as stack, aiohttp.ClientSession() as http:
        pd_id, alert = await declared_by_both(stack, http)
        # What each incident keeps is what the webhook named: PagerDuty's `data.id`, Opsgenie's `alertId`.
        assert [(r.provider, r.vendor_id) for r in (await stack.state(1)).paging.sources] == [
            ("pagerduty", pd_id)
        ]
        assert [(r.provider, r.vendor_id) for r in (await stack.state(2)).paging.sources] == [
            ("opsgenie", alert["id"])
        ]
        channels = [await stack.incident_channel(n) for n in (1, 2)]
        # Both vendors do the work and lose the answer: the retries find it done and say nothing.
        pd.add_fault("update_incident", 502, after_effect=True)
        og.add_fault("close_alert", 502, after_effect=True)
        await resolve_and_wait(stack, 1, 2)

        [made] = pd.incidents
        assert (made["status"], made["resolved_by"]) == ("resolved", "PBOTUSR")
        assert pd.calls_of("update_incident") == [502, 400]  # the retry: "Incident Already Resolved"
        assert pd.calls_of("get_incident") == [200]  # ... and it is: done
        assert alert["status"] == "closed" and og.calls_of("close_alert") == [502, 202]
        # Their webhooks reached the resolving incidents, which took them quietly.
        assert [e for e, _ in pd.webhooks] == ["incident.triggered", "incident.resolved"]
        assert [a for a, _ in og.webhooks] == ["Create", "Close"]
        shown = {c: [m["text"] for m in await top_level(stack, c)] for c in channels}
        for texts in shown.values():
            assert not [t for t in texts if ":warning:" in t or "All alerts resolved" in t], texts

        # PagerDuty and Opsgenie deliver at least once: a late re-delivery is answered and ignored.
        url = f"http://127.0.0.1:{stack.web.port}/alerts"
        late = json.dumps(v3_webhook("incident.resolved", incident=pd_id)).encode()
        sig = {
            "X-PagerDuty-Signature": signature(late, pd_fake.WEBHOOK_SECRET),
            "Content-Type": "application/json",
        }
        async with http.post(f"{url}/pagerduty", data=late, headers=sig) as r:
            assert (r.status, (await r.json()).get("action")) == (200, "ignored"), await r.text()
        closed = {**opsgenie_webhook("Close", alias="db-1-disk")}
        closed["alert"] = {**closed["alert"], "alertId": alert["id"]}
        bearer = {"Authorization": f"Bearer {og_fake.WEBHOOK_TOKEN}"}
        async with http.post(f"{url}/opsgenie", json=closed, headers=bearer) as r:
            assert (r.status, (await r.json()).get("action")) == (200, "ignored"), await r.text()
        assert sorted(i.incident_id for i in await stack.incidents.list()) == [1, 2]
        for channel, texts in shown.items():
            assert [m["text"] for m in await top_level(stack, channel)] == texts
        assert pd.calls_of("update_incident") == [502, 400] and og.calls_of("close_alert") == [502, 202]

        # PagerDuty refusing for good: one note saying so and what to do, and the incident resolves anyway.
        other = await pd.trigger("Database", "Replica lag")
        channel = await stack.incident_channel(3)
        pd.add_fault("update_incident", 403)
        await resolve_and_wait(stack, 3)
        said = [m["text"] for m in await top_level(stack, channel) if ":warning:" in m["text"]]
        assert len(said) == 1 and f"/incidents/{other}|#2>" in said[0], said
        assert "refused warroom's credentials" in said[0] and "resolve it in PagerDuty yourself" in said[0]
        assert (await stack.state(3)).status.value == "resolved"


async def test_nothing_is_resolved_in_the_pager_when_the_setting_is_off(
    temporal: WorkflowEnvironment, sandbox: SandboxServer
) -> None:
    pd, og = sandbox.pagerduty, sandbox.opsgenie
    settings = {**WEBHOOKS, "WARROOM_PAGER_RESOLVE_ON_RESOLVE": False}
    async with running_stack(temporal, sandbox, **settings) as stack, aiohttp.ClientSession() as http:
        _, alert = await declared_by_both(stack, http)
        await resolve_and_wait(stack, 1, 2)
        assert pd.calls_of("update_incident") == [] and pd.incidents[0]["status"] == "triggered"
        assert og.calls_of("close_alert") == [] and alert["status"] == "open"


async def test_without_the_pager_api_credentials_nothing_is_sent(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    """A webhook alone gives no API token: resolving is skipped, silently, with nothing sent."""
    vendors = sandbox.vendor_settings(tmp_path)
    pd_id = await sandbox.pagerduty.trigger()
    env = ActivityEnvironment()
    for provider, unset in (("pagerduty", "PAGERDUTY_API_TOKEN"), ("opsgenie", "OPSGENIE_API_KEY")):
        settings = Settings(**{**vendors, unset: ""})
        ref = PagerRef(provider=provider, vendor_id=pd_id)  # type: ignore[arg-type]
        assert await env.run(PagerActivities(settings).resolve_source, ref) is False
    assert sandbox.pagerduty.calls == [] and sandbox.opsgenie.calls == []
    # With them, an incident resolved already in PagerDuty counts as resolved.
    full = PagerActivities(Settings(**vendors))
    ref = PagerRef(provider="pagerduty", vendor_id=pd_id)
    assert await env.run(full.resolve_source, ref) is True
    assert await env.run(full.resolve_source, ref) is True
    assert sandbox.pagerduty.calls_of("update_incident") == [200, 400]


def test_the_reference_comes_from_the_webhook_and_pages_are_left_to_paging() -> None:
    triggered = from_pagerduty_v3(v3_webhook("incident.triggered", incident="PT4KHLK"))
    assert triggered is not None and triggered.pager is not None
    assert (triggered.pager.vendor_id, triggered.pager.label) == ("PT4KHLK", "#2")
    created = from_opsgenie(opsgenie_webhook("Create"))
    assert created is not None and created.pager == PagerRef(
        provider="opsgenie", vendor_id="70413a06-38d6-4c85-92b8-5ebc900d42e2-1563786023001", label="42"
    )
    own_ack = v3_webhook("incident.acknowledged")
    own_ack["event"]["data"]["incident_key"] = "warroom-page-3-0123456789abcdef"
    paged = from_pagerduty_v3(own_ack)
    assert paged is not None and paged.pager is None  # a page: resolved as a page
    # Seen again, then resolved by PagerDuty itself: nothing left to resolve.
    p = source_seen(source_seen(PagingState(), triggered), triggered)
    assert sources_to_resolve(p, triggered) == [triggered.pager]
    resolved = from_pagerduty_v3(v3_webhook("incident.resolved", incident="PT4KHLK"))
    assert resolved is not None and sources_to_resolve(source_seen(p, resolved), triggered) == []
    link = PageLink(provider="pagerduty", key="k", vendor_id="PT4KHLK", target="x")
    assert sources_to_resolve(PagingState(links=(link,)), triggered) == []
    # An incident declared before `pager` existed: its item's fingerprint holds `data.id`.
    item = AlertItem(fingerprint="pagerduty:PX1", status="firing", name="x", url="https://pd/PX1")
    old = AlertGroup(
        source="pagerduty", dedup_key="k", status="firing", title="x", severity=Severity.SEV2, alerts=(item,)
    )
    assert declared_source(old) == PagerRef(provider="pagerduty", vendor_id="PX1", url="https://pd/PX1")
    alertmanager = old.model_copy(update={"source": "alertmanager"})
    assert declared_source(alertmanager) is None and declared_source(None) is None
