"""Storm control: past WARROOM_ALERT_STORM_CAP incidents declared from alerts within the window, new alert
groups join one alert storm incident whose overview is a digest edited in place; every group stays findable;
`/incident split <n>` gives a group its own incident; when new groups slow down, declaring resumes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from domain.alerts import hash_key
from sandbox import SandboxServer
from tests.conftest import Stack, eventually, running_stack
from tests.test_alerts import ALERT_TOKEN, Poster, am_alert
from tests.test_incident_workflow import top_level, wait_quiet
from tests.test_ingress import run
from workflows.directory import IncidentDirectoryWorkflow

GROUPS = 300
CAP = 5
SENDERS = 16  # notifications in flight at once, as from a few Alertmanager replicas


def group(n: int, instances: int = 1) -> dict[str, Any]:
    """Alertmanager's webhook (version 4) for group n: its own alertname, so its own groupKey."""
    name = f"Exporter{n:03d}Down"
    alerts = [am_alert(f"host-{n}-{i}") for i in range(instances)]
    for alert in alerts:
        alert["labels"]["alertname"] = name
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{name}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "warroom",
        "groupLabels": {"alertname": name},
        "commonLabels": {"alertname": name, "severity": "critical"},
        "commonAnnotations": {"summary": f"exporter {n} unreachable"},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": alerts,
    }


def key_of(n: int) -> str:
    return hash_key("alertmanager", group(n)["groupKey"])


async def incident_for(stack: Stack, n: int) -> int | None:
    result: int | None = await stack.incidents.directory.query(
        IncidentDirectoryWorkflow.incident_for_key, key_of(n)
    )
    return result


@pytest.fixture
async def storming(
    temporal: WorkflowEnvironment, sandbox: SandboxServer, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Stack, Poster]]:
    window = getattr(request, "param", 300)
    settings = {
        "WARROOM_ALERT_TOKEN": SecretStr(ALERT_TOKEN),
        "WARROOM_ALERT_STORM_CAP": CAP,
        "WARROOM_ALERT_STORM_WINDOW": window,
    }
    async with running_stack(temporal, sandbox, **settings) as stack, aiohttp.ClientSession() as session:
        yield stack, Poster(stack, session)


async def test_three_hundred_groups_make_five_incidents_and_one_storm(storming: tuple[Stack, Poster]) -> None:
    stack, poster = storming
    gate = asyncio.Semaphore(SENDERS)
    started = time.monotonic()

    async def send(n: int) -> tuple[int, dict[str, Any]]:
        async with gate:
            return await poster.post("/alerts/alertmanager", group(n))

    answers = await asyncio.gather(*(send(n) for n in range(GROUPS)))
    sent_in = time.monotonic() - started  # reported, not asserted: timing goals belong in bench/
    assert [status for status, _ in answers if status != 202] == []  # no 5xx, nothing refused
    declared = sorted({int(a["incident"][4:]) for _, a in answers if a["action"] == "declared"})
    assert len(declared) == CAP + 1  # five incidents, then the storm
    storm_id = max(declared)

    # Every group resolves to an incident: its own for the first five, the storm for the rest.
    owners = [await incident_for(stack, n) for n in range(GROUPS)]
    assert None not in owners
    assert sorted(set(owners)) == declared and owners.count(storm_id) == GROUPS - CAP

    state = await stack.state(storm_id)
    assert state.storm is not None and state.storm.total == GROUPS - CAP

    digest = f"{GROUPS - CAP} alert groups"

    async def digest_in_broadcast() -> bool:
        for bc in stack.broadcast:
            overviews = [m for m in await top_level(stack, bc) if f"INC-{storm_id}" in m["text"]]
            if len(overviews) != 1 or digest not in json.dumps(overviews[0]["blocks"]):
                return False
        return True

    await eventually(digest_in_broadcast, within=60)
    to_digest = time.monotonic() - started
    await wait_quiet(stack, storm_id)
    channels = [c for c in stack.sandbox.state.channels.values() if c.name.startswith("inc-")]
    assert len(channels) == CAP + 1
    storm_channel = await stack.incident_channel(storm_id)
    assert len(await top_level(stack, storm_channel)) == 1  # the digest is edited, never a message per alert
    for bc in stack.broadcast:
        [overview] = [m for m in await top_level(stack, bc) if f"INC-{storm_id}" in m["text"]]
        assert overview["replies"] == []
    print(
        f"\nstorm: {GROUPS} groups sent in {sent_in:.1f} s, {len(channels)} incident channels"
        f" ({CAP} + the storm), digest of {GROUPS - CAP} groups in the broadcast channels"
        f" {to_digest:.1f} s after the first was sent"
    )


async def test_a_group_split_out_of_the_storm_gets_its_own_incident(storming: tuple[Stack, Poster]) -> None:
    stack, poster = storming
    for n in range(CAP + 2):
        status, _ = await poster.post("/alerts/alertmanager", group(n))
        assert status == 202
    storm_id = CAP + 1
    channel = await stack.incident_channel(storm_id)
    await wait_quiet(stack, storm_id)

    answer = await run(stack, "split 2", channel=channel)  # the storm's second group: group CAP + 1
    new_id = storm_id + 1
    assert answer == f"Exporter{CAP + 1:03d}Down: exporter {CAP + 1} unreachable split out into INC-{new_id}."
    assert await incident_for(stack, CAP + 1) == new_id
    assert (await stack.state(new_id)).title == f"Exporter{CAP + 1:03d}Down: exporter {CAP + 1} unreachable"
    status, body = await poster.post("/alerts/alertmanager", group(CAP + 1, instances=2))
    assert (status, body["action"], body["incident"]) == (202, "joined", f"INC-{new_id}")
    assert "There is no alert group 2 left" in await run(stack, "split 2", channel=channel)
    assert "Only the alert storm incident" in await run(
        stack, "split 1", channel=await stack.incident_channel(1)
    )
    await wait_quiet(stack, storm_id)
    [overview] = await top_level(stack, channel)
    assert f"→ INC-{new_id}" in json.dumps(overview["blocks"], ensure_ascii=False)


@pytest.mark.parametrize("storming", [2], indirect=True)
async def test_declaring_resumes_when_new_groups_slow_down(storming: tuple[Stack, Poster]) -> None:
    stack, poster = storming
    actions = [(await poster.post("/alerts/alertmanager", group(n)))[1]["action"] for n in range(CAP + 2)]
    assert actions == ["declared"] * (CAP + 1) + ["joined"]  # five, the storm, then it joins the storm
    await asyncio.sleep(2.5)  # the window (2 s) passes without a new group
    status, body = await poster.post("/alerts/alertmanager", group(100))
    assert (status, body["action"], body["incident"]) == (202, "declared", f"INC-{CAP + 2}")
    assert (await stack.state(CAP + 2)).storm is None


async def test_keyless_alerts_count_toward_the_cap_and_stay_apart_in_the_storm(
    storming: tuple[Stack, Poster],
) -> None:
    stack, poster = storming
    answers = [(await poster.post("/alerts", {"title": f"Disk full on db-{n}"}))[1] for n in range(CAP + 2)]
    assert [a["action"] for a in answers] == ["declared"] * (CAP + 1) + ["joined"]
    storm = await stack.state(CAP + 1)
    assert storm.storm is not None
    assert [g.title for g in storm.storm.groups] == [f"Disk full on db-{n}" for n in (CAP, CAP + 1)]
