"""Update nudges through per-workflow time skipping on the real dev server: the interval is honoured, an
update restarts it, Mitigated stops it, and a nudge due while no worker runs is sent once after a restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

import worker as worker_process
from domain.models import CommanderChange, StageChange, StatusUpdate
from domain.naming import incident_workflow_id
from domain.settings import Settings
from domain.vocab import Severity, Stage
from sandbox import SandboxServer
from starter.incidents import Incidents
from tests.conftest import (
    RESPONDER,
    SIGNING_SECRET,
    TOKEN,
    eventually,
    make_settings,
    running_stack,
    start_time_skipping,
)

LEAD = "U0LEAD"


@pytest.fixture
async def skipping() -> AsyncIterator[WorkflowEnvironment]:
    """Time skipping off by default; each test moves an incident's clock with `fast_forward`."""
    async with await start_time_skipping(auto=False) as env:
        yield env


def nudges_to(sandbox: SandboxServer, user_id: str) -> list[dict[str, object]]:
    channel_id = sandbox.state.dms.get(user_id)
    if channel_id is None:
        return []
    channel = sandbox.state.channel(channel_id, viewer=None)
    return [m for m in sandbox.state.channel_messages(channel) if "no status update" in str(m["text"])]


def a_worker(env: WorkflowEnvironment, settings: Settings, sandbox: SandboxServer) -> object:
    return worker_process.build_worker(env.client, settings)


async def quiet_for(check: Callable[[], Awaitable[bool]], seconds: float = 1.0) -> None:
    """Asserts `check` stays false for a while (nothing more arrives)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        assert not await check()
        await asyncio.sleep(0.1)


async def test_nudges_honour_the_interval_restart_on_updates_and_stop_at_mitigated(
    skipping: WorkflowEnvironment,
) -> None:
    async with SandboxServer(token=TOKEN, signing_secret=SIGNING_SECRET) as sandbox:
        settings = make_settings(sandbox, [])
        incidents = Incidents.from_settings(skipping.client, settings)
        async with a_worker(skipping, settings, sandbox):  # type: ignore[attr-defined]
            incident_id = await incidents.declare("Payments slow", Severity.SEV1, declared_by=RESPONDER)
            handle = skipping.client.get_workflow_handle(
                incident_workflow_id(incident_id, settings.task_queue)
            )
            await eventually(lambda: _channel(incidents, incident_id))

            async def count(user: str, n: int) -> bool:
                return len(nudges_to(sandbox, user)) == n

            async def more_than(user: str, n: int) -> bool:
                return len(nudges_to(sandbox, user)) > n

            await skipping.fast_forward(handle, timedelta(minutes=14))
            await quiet_for(lambda: more_than(RESPONDER, 0), 0.5)  # SEV1: 15 minutes
            await skipping.fast_forward(handle, timedelta(minutes=2))
            await eventually(lambda: count(RESPONDER, 1))
            [nudge] = nudges_to(sandbox, RESPONDER)
            buttons = [e for b in nudge["blocks"] for e in b.get("elements", [])]  # type: ignore[attr-defined]
            assert [b["action_id"] for b in buttons] == ["warroom_nudge_update"]

            await incidents.post_update(incident_id, StatusUpdate(text="rolling back", actor=RESPONDER))
            await skipping.fast_forward(handle, timedelta(minutes=14))
            await quiet_for(lambda: more_than(RESPONDER, 1), 0.5)  # the update restarted the clock
            await incidents.assign_commander(incident_id, CommanderChange(user_id=LEAD, actor=RESPONDER))
            await skipping.fast_forward(handle, timedelta(minutes=2))
            await eventually(lambda: count(LEAD, 1))  # the commander gets it once there is one
            assert len(nudges_to(sandbox, RESPONDER)) == 1

            await incidents.change_stage(incident_id, StageChange(stage=Stage.MITIGATED, actor=LEAD))
            await skipping.fast_forward(handle, timedelta(hours=2))
            await quiet_for(lambda: more_than(LEAD, 1), 0.5)  # Mitigated: no more nudges
            assert (await incidents.state(incident_id)).nudges_sent == 2


async def test_a_nudge_due_while_no_worker_runs_is_sent_once_after_a_restart(
    skipping: WorkflowEnvironment,
) -> None:
    async with SandboxServer(token=TOKEN, signing_secret=SIGNING_SECRET) as sandbox:
        settings = make_settings(sandbox, [])
        incidents = Incidents.from_settings(skipping.client, settings)
        async with a_worker(skipping, settings, sandbox):  # type: ignore[attr-defined]
            incident_id = await incidents.declare("Queue stuck", Severity.SEV2, declared_by=RESPONDER)
            await eventually(lambda: _channel(incidents, incident_id))
        handle = skipping.client.get_workflow_handle(incident_workflow_id(incident_id, settings.task_queue))
        # SEV2: 30 minutes. The clock passes the nudge while no worker runs (the fast-forward completes only
        # once a worker has handled the timer, so it runs in the background).
        forward = asyncio.ensure_future(skipping.fast_forward(handle, timedelta(minutes=31)))
        await asyncio.sleep(1.0)
        assert nudges_to(sandbox, RESPONDER) == []
        async with a_worker(skipping, settings, sandbox):  # type: ignore[attr-defined]

            async def one() -> bool:
                return len(nudges_to(sandbox, RESPONDER)) == 1

            await eventually(one)
            assert await asyncio.wait_for(forward, timeout=30)
            await quiet_for(lambda: _more_than_one(sandbox), 1.0)
            assert (await incidents.state(incident_id)).nudges_sent == 1


async def _more_than_one(sandbox: SandboxServer) -> bool:
    return len(nudges_to(sandbox, RESPONDER)) > 1


async def _channel(incidents: Incidents, incident_id: int) -> str | None:
    return (await incidents.state(incident_id)).channel_id


async def test_the_nudge_button_opens_a_form_that_posts_the_update(skipping: WorkflowEnvironment) -> None:
    from tests.test_ingress_modals import open_views, typed

    async with (
        SandboxServer(token=TOKEN, signing_secret=SIGNING_SECRET) as sandbox,
        running_stack(skipping, sandbox) as stack,
    ):
        incident_id = await stack.incidents.declare("Logins failing", Severity.SEV1, declared_by=RESPONDER)
        channel = await stack.incident_channel(incident_id)
        handle = skipping.client.get_workflow_handle(
            incident_workflow_id(incident_id, stack.settings.task_queue)
        )
        await skipping.fast_forward(handle, timedelta(minutes=16))

        async def nudged() -> list[dict[str, object]]:
            return nudges_to(sandbox, RESPONDER)

        [nudge] = await eventually(nudged)
        dm_channel = sandbox.state.dms[RESPONDER]
        clicked = await stack.slack.click(RESPONDER, dm_channel, str(nudge["ts"]), "warroom_nudge_update")
        assert clicked["status"] == 200, clicked
        [form] = await open_views(stack, "warroom_update")
        assert form["private_metadata"] == str(incident_id)
        submitted = await stack.slack.submit_view(
            form["id"], {"update": typed("Logins back for 90% of users")}
        )
        assert submitted["view_closed"] and not submitted["errors"], submitted

        async def posted() -> object:
            state = await stack.state(incident_id)
            return [e for e in state.timeline if e.kind == "update"]

        [event] = await eventually(posted)
        assert event.text == "Logins back for 90% of users" and event.actor == RESPONDER
        await eventually(lambda: _replied(sandbox, stack.broadcast[0], "Logins back"))
        assert any(
            "Logins back" in str(m["text"])
            for m in sandbox.state.channel_messages(sandbox.state.channel(channel, viewer=None))
        )


async def _replied(sandbox: SandboxServer, channel_id: str, words: str) -> bool:
    [top] = sandbox.state.channel_messages(sandbox.state.channel(channel_id, viewer=None))
    return any(words in str(r["text"]) for r in top["replies"])
