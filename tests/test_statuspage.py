"""Statuspage end to end: signed slash commands into the real ingress, the incident workflow on a real
Temporal dev server, and the real Statuspage client against the sandbox's stand-in over HTTP."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.statuspage import StatuspageActivities
from domain.commands import parse_command
from domain.naming import incident_workflow_id
from domain.settings import Settings
from domain.statuspage import NEUTRAL_BODY, PublicOrder, PublicUpdate, StatuspageRequest
from sandbox import SandboxServer
from sandbox.statuspage import API_KEY, COMPONENTS, PAGE_ID
from starter.sandbox_cli import run_slack
from tests.conftest import Stack, eventually, running_stack
from tests.histories.record import readable
from tests.test_ingress import declare_via_slack, run
from tests.test_integrations import messages

TITLE = "Payments primary database out of memory"  # internal: never on the public page
API_ID, CHECKOUT_ID = COMPONENTS["api"][0], COMPONENTS["checkout"][0]


def page(stack: Stack) -> list[dict[str, Any]]:
    return stack.sandbox.statuspage.incidents


async def settled(stack: Stack, incident_id: int) -> Any:
    async def check() -> Any:
        s = await stack.state(incident_id)
        return s if not s.statuspage.pending and not s.outbox else None

    return await eventually(check, within=20)


async def test_preview_confirm_stage_public_update_and_resolve_keep_one_public_incident(
    stack: Stack, log_output: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    incident_id, channel = await declare_via_slack(stack, f"declare sev2 {TITLE}")
    shown = await run(
        stack, "statuspage api checkout:major Payments are failing | Some card payments fail.", channel
    )
    assert "preview #1" in shown and "nothing is public" in shown, shown
    for part in ("Payments are failing", "Investigating", "api (Partial outage)", "checkout (Major outage)"):
        assert part in shown, part
    assert "Some card payments fail." in shown and "statuspage --confirm 1" in shown
    assert stack.sandbox.statuspage.calls == [], "a preview publishes nothing"

    # Statuspage opens the incident and the answer is lost: the retry finds it instead of opening a second.
    stack.sandbox.statuspage.add_fault("create_incident", 502, after_effect=True)
    assert "Publishing on the status page" in await run(stack, "statuspage --confirm 1", channel)
    state = await settled(stack, incident_id)
    [public] = page(stack)
    assert (
        state.statuspage.page_incident_id == public["id"]
        and state.statuspage.shortlink == public["shortlink"]
    )
    assert (public["name"], public["status"]) == ("Payments are failing", "investigating")
    assert public["incident_updates"][0]["body"] == "Some card payments fail."
    statuses = {c["id"]: c["status"] for c in stack.sandbox.statuspage.components.values()}
    assert statuses == {API_ID: "partial_outage", CHECKOUT_ID: "major_outage"}
    assert stack.sandbox.statuspage.calls_of("create_incident") == [502]
    assert stack.sandbox.statuspage.calls_of("unresolved") == [200]
    assert len([m for m in messages(stack.sandbox, channel) if public["shortlink"] in m["text"]]) == 1
    assert f"Status page: {public['shortlink']} (investigating)" in await run(stack, "status", channel)
    assert "no status page preview #1" in await run(stack, "statuspage --confirm 1", channel)
    assert "already on the status page" in await run(stack, "statuspage api Again", channel)

    # A stage moves the public status with a neutral line; its context stays internal.
    await run(stack, "stage identified the OOM killer hit db-primary-3", channel)
    await settled(stack, incident_id)
    assert (public["status"], public["incident_updates"][0]["body"]) == (
        "identified",
        NEUTRAL_BODY["identified"],
    )

    shown = await run(stack, "update --public Card payments are recovering.", channel)
    assert "preview #2" in shown and len(public["incident_updates"]) == 2, "nothing new before confirming"
    await run(stack, "stage mitigated", channel)  # the preview said "Identified": it is stale now
    assert "stage changed since preview #2" in await run(stack, "statuspage --confirm 2", channel)
    await settled(stack, incident_id)
    assert (public["status"], public["incident_updates"][0]["body"]) == (
        "monitoring",
        NEUTRAL_BODY["monitoring"],
    )
    assert "preview #3" in await run(stack, "update --public Card payments are recovering.", channel)
    await run(stack, "statuspage --confirm 3", channel)
    await settled(stack, incident_id)
    bodies = [u["body"] for u in public["incident_updates"]]
    assert bodies.count("Card payments are recovering.") == 1 and public["status"] == "monitoring"

    await run(stack, "resolve Restarted with more memory", channel)
    await eventually(lambda: _resolved(stack), within=20)
    [public] = page(stack)
    assert [u["status"] for u in public["incident_updates"]].count("resolved") == 1
    assert {c["status"] for c in stack.sandbox.statuspage.components.values()} == {"operational"}
    everything = json.dumps(stack.sandbox.statuspage.snapshot())
    for internal in (TITLE, "OOM killer", "db-primary-3", "Restarted with more memory"):
        assert internal not in everything, internal
    workflow_id = incident_workflow_id(incident_id, stack.settings.task_queue)
    history = await stack.temporal.client.get_workflow_handle(workflow_id).fetch_history()
    assert API_KEY not in readable(history.to_json()) and API_KEY not in log_output.getvalue()
    assert "statuspage incident published" in log_output.getvalue()

    assert (
        await run_slack(["statuspage"], "U0DEV", None, stack.sandbox.url) == 0
    )  # what `warroom dev` users see
    shown = capsys.readouterr().out
    assert (
        f"{public['id']}  resolved  Payments are failing" in shown
        and "Card payments are recovering." in shown
    )


async def _resolved(stack: Stack) -> bool:
    return all(i["status"] == "resolved" for i in page(stack))


async def test_a_private_incident_never_reaches_the_status_page(stack: Stack) -> None:
    incident_id, channel = await declare_via_slack(stack, f"declare sev1 --private {TITLE}")
    for command in (
        "statuspage api Payments are failing",
        "update --public Recovering",
        "statuspage --confirm 1",
    ):
        answer = await run(stack, command, channel)
        assert "is private: nothing of it goes on the public status page" in answer, answer
    await run(stack, "stage mitigated", channel)
    await run(stack, "resolve", channel)
    await eventually(lambda: _closed(stack, incident_id))
    assert stack.sandbox.statuspage.calls == []
    assert (await stack.state(incident_id)).statuspage.pending == []


async def _closed(stack: Stack, incident_id: int) -> bool:
    return (await stack.state(incident_id)).resolved_at is not None


async def test_statuspage_refusing_gives_one_note_and_the_incident_goes_on(
    temporal: WorkflowEnvironment, sandbox: SandboxServer
) -> None:
    async with running_stack(temporal, sandbox, STATUSPAGE_COMPONENTS="api=cmp0gone0001") as stack:
        incident_id, channel = await declare_via_slack(stack)
        await run(stack, "statuspage api Payments are failing", channel)
        await run(stack, "statuspage --confirm 1", channel)
        state = await settled(stack, incident_id)
        assert not state.statuspage.public and sandbox.statuspage.incidents == []
        notes = [
            m["text"] for m in messages(sandbox, channel) if "could not open the status page" in m["text"]
        ]
        assert len(notes) == 1 and "STATUSPAGE_COMPONENTS" in notes[0] and "422" in notes[0], notes
        assert sandbox.statuspage.calls_of("create_incident") == [422], "a refusal is not retried"
        await run(stack, "stage identified", channel)  # nothing public to move
        assert "preview #2" in await run(
            stack, "statuspage Payments are failing", channel
        )  # it may be tried again
        assert len(sandbox.statuspage.calls) == 1


async def test_not_configured_says_what_to_set(temporal: WorkflowEnvironment, sandbox: SandboxServer) -> None:
    async with running_stack(temporal, sandbox, STATUSPAGE_API_KEY="", STATUSPAGE_PAGE_ID="") as stack:
        answer = await run(stack, "statuspage api Payments are failing")
        assert "status page is not set up" in answer
        assert "STATUSPAGE_API_KEY" in answer and "STATUSPAGE_PAGE_ID" in answer and "README" in answer
        assert "not set up" in await run(stack, "update --public Recovering")
    assert sandbox.statuspage.calls == []


# --- the activity's failures --------------------------------------------------------------------------------


async def _fails(settings: Settings, action: str = "create") -> ApplicationError:
    order = PublicOrder(key="inc7:3:statuspage", action="create", status="investigating", body="b", name="n")
    req = StatuspageRequest(incident_id=7, order=order)
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id="incident-7")
    with pytest.raises(ApplicationError) as caught:
        await env.run(StatuspageActivities(settings).publish_statuspage, req)
    return caught.value


async def test_wrong_key_wrong_page_and_rate_limits_are_told_apart(tmp_path: Path) -> None:
    async with SandboxServer(token="xoxb-t", signing_secret="s") as sb:
        base = sb.vendor_settings(tmp_path)
        wrong = "statuspage-wrong-key-4242"
        err = await _fails(Settings(**{**base, "STATUSPAGE_API_KEY": wrong}))
        assert (err.type, err.non_retryable) == ("StatuspageAuthFailed", True)
        assert wrong not in str(err) and API_KEY not in str(err) and "STATUSPAGE_API_KEY" in err.message
        err = await _fails(Settings(**{**base, "STATUSPAGE_PAGE_ID": "nope"}))
        assert (err.type, err.non_retryable) == (
            "StatuspageRejected",
            True,
        ) and "STATUSPAGE_PAGE_ID" in err.message
        sb.statuspage.add_fault("create_incident", 429, retry_after=7)
        err = await _fails(Settings(**base))
        assert (err.type, err.next_retry_delay) == ("StatuspageRateLimited", timedelta(seconds=7))
        assert sb.statuspage.incidents == []
        assert sb.statuspage.calls_of("create_incident") == [401, 404, 429]


async def test_the_stand_in_refuses_what_statuspage_refuses(sandbox: SandboxServer) -> None:
    url = f"{sandbox.url}/statuspage/v1/pages/{PAGE_ID}/incidents"
    auth = {"Authorization": f"OAuth {API_KEY}"}
    good = {"name": "n", "status": "investigating", "components": {API_ID: "major_outage"}}
    async with aiohttp.ClientSession() as session:
        for fields, status in (
            ({**good, "name": ""}, 422),
            ({**good, "name": "x" * 256}, 422),
            ({**good, "status": "scheduledd"}, 422),
            ({**good, "components": {"cmp0nope0001": "major_outage"}}, 422),
            ({**good, "components": {API_ID: "on_fire"}}, 422),
            ({**good, "metadata": {"warroom": "not an object"}}, 422),
        ):
            async with session.post(url, json={"incident": fields}, headers=auth) as r:
                assert (r.status, set(await r.json())) == (status, {"message"}), fields
        async with session.post(
            url, json={"incident": good}, headers={"Authorization": "Bearer " + API_KEY}
        ) as r:
            assert r.status == 401
        async with session.post(url.replace(PAGE_ID, "other"), json={"incident": good}, headers=auth) as r:
            assert r.status == 404
        assert (
            sandbox.statuspage.incidents == []
            and sandbox.statuspage.components[API_ID]["status"] == "operational"
        )
        async with session.post(url, json={"incident": good}, headers=auth) as r:
            assert r.status == 201 and (await r.json())["components"][0]["status"] == "major_outage"


def test_slack_references_reach_the_page_as_words() -> None:
    said = "<!here> Fixed by <@U0LEAD|ada> in <#C0OPS|ops>, see <https://x.example/s|the log> &amp; <https://y.example>"
    update = parse_command(f"update --public {said}")
    assert isinstance(update, PublicUpdate)
    assert update.text == "Fixed by @ada in #ops, see the log (https://x.example/s) & https://y.example"
