"""Reminders: `/incident remind` end to end, across a worker restart, past the incident's resolve, and hours
and days ahead through Temporal's time skipping (per-workflow, on the real dev server)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

import worker as worker_process
from domain.models import ReminderOrder, ReminderView, Resolution
from domain.naming import incident_workflow_id, reminder_workflow_id
from domain.settings import Settings
from domain.vocab import Severity
from sandbox import SandboxServer
from starter.incidents import CommandRejected, Incidents
from starter.sandbox_cli import run_slack
from tests.conftest import (
    RESPONDER,
    SIGNING_SECRET,
    TOKEN,
    Stack,
    eventually,
    make_settings,
    start_time_skipping,
)
from tests.test_ingress import declare_via_slack, run

OTHER = "U0OTHER"


def dms(sandbox: SandboxServer, user_id: str) -> list[str]:
    channel_id = sandbox.state.dms.get(user_id)
    if channel_id is None:
        return []
    channel = sandbox.state.channel(channel_id, viewer=None)
    return [m["text"] for m in sandbox.state.channel_messages(channel)]


def reminder_id_in(answer: str) -> str:
    found = re.search(r"Reminder `([0-9]+-[0-9]+)`", answer)
    assert found, answer
    return found[1]


async def reminder_status(stack: Stack, reminder_id: str) -> WorkflowExecutionStatus | None:
    workflow_id = reminder_workflow_id(reminder_id, stack.settings.task_queue)
    return (await stack.temporal.client.get_workflow_handle(workflow_id).describe()).status


# --- through Slack --------------------------------------------------------------------------------------


async def test_remind_answers_in_the_callers_time_zone_then_dms_once(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.sandbox.state.add_user(RESPONDER, tz="Europe/Paris")
    incident_id, channel = await declare_via_slack(stack)
    answer = await run(stack, "remind in 3s check the rollback", channel=channel)
    assert "(Europe/Paris)" in answer, answer
    rid = reminder_id_in(answer)
    assert rid == f"{incident_id}-1"
    assert f"remind cancel {rid}" in answer
    assert dms(stack.sandbox, RESPONDER) == []  # not before it is due

    texts = await eventually(lambda: _some(dms(stack.sandbox, RESPONDER)), within=20)
    assert len(texts) == 1
    assert "check the rollback" in texts[0]
    assert f"<#{channel}>" in texts[0] and f"INC-{incident_id}" in texts[0]
    await asyncio.sleep(1)
    assert len(dms(stack.sandbox, RESPONDER)) == 1
    state = await stack.state(incident_id)
    [event] = [e for e in state.timeline if e.kind == "reminder"]
    assert event.actor == RESPONDER and "check the rollback" in event.text
    # `warroom slack dms` shows it to someone trying warroom without a Slack workspace.
    assert await run_slack(["dms"], RESPONDER, None, stack.sandbox.url) == 0
    assert "check the rollback" in capsys.readouterr().out


async def _some(items: list[str]) -> list[str]:
    return items


async def test_list_and_cancel_reminders(stack: Stack) -> None:
    _, channel = await declare_via_slack(stack)
    first = reminder_id_in(await run(stack, "remind in 1h check the graphs", channel=channel))
    second = reminder_id_in(await run(stack, "remind tomorrow 09:00 write the review", channel=channel))
    await run(stack, "remind in 2h someone else's", channel=channel, user=OTHER)

    listed = await run(stack, "reminders", channel=channel)
    assert first in listed and second in listed and "check the graphs" in listed
    assert "someone else" not in listed

    refused = await run(stack, f"remind cancel {first}", channel=channel, user=OTHER)
    assert "not yours" in refused
    assert "cancelled" in await run(stack, f"remind cancel {first}", channel=channel)

    async def finished() -> bool:
        return await reminder_status(stack, first) == WorkflowExecutionStatus.COMPLETED

    await eventually(finished)
    again = await run(stack, f"remind cancel {first}", channel=channel)
    assert "already cancelled" in again
    assert "no reminder `9-9`" in (await run(stack, "remind cancel 9-9", channel=channel)).lower()

    listed = await run(stack, "reminders", channel=channel)
    assert first not in listed and second in listed
    result = await stack.temporal.client.get_workflow_handle(
        reminder_workflow_id(first, stack.settings.task_queue), result_type=ReminderView
    ).result()
    assert result.status == "cancelled"
    assert dms(stack.sandbox, RESPONDER) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("remind 2020-01-01T09:00 too late", "in the past"),
        ("remind in 400d far away", "at most a year"),
        ("remind in 10m", "text to remind you of"),
        ("remind whenever check", "not a time I understand"),
    ],
)
async def test_remind_rejects_bad_times_and_empty_text(stack: Stack, text: str, expected: str) -> None:
    incident_id, channel = await declare_via_slack(stack)
    answer = await run(stack, text, channel=channel)
    assert expected in answer, answer
    state = await stack.state(incident_id)
    assert not state.reminders


async def test_a_reminder_outlives_the_incidents_resolve(stack: Stack) -> None:
    incident_id, channel = await declare_via_slack(stack)
    rid = reminder_id_in(await run(stack, "remind in 3s send the postmortem invite", channel=channel))
    await run(stack, "resolve rolled back", channel=channel)
    await stack.temporal.client.get_workflow_handle(
        incident_workflow_id(incident_id, stack.settings.task_queue)
    ).result()
    # The incident has completed; its reminder is still waiting, and then delivers.
    assert await reminder_status(stack, rid) == WorkflowExecutionStatus.RUNNING
    assert dms(stack.sandbox, RESPONDER) == []
    handle = stack.temporal.client.get_workflow_handle(
        reminder_workflow_id(rid, stack.settings.task_queue), result_type=ReminderView
    )
    assert (await asyncio.wait_for(handle.result(), timeout=20)).status == "delivered"
    texts = dms(stack.sandbox, RESPONDER)
    assert len(texts) == 1 and "send the postmortem invite" in texts[0]


# --- across a worker restart ------------------------------------------------------------------------------


@asynccontextmanager
async def bare_stack() -> AsyncIterator[tuple[WorkflowEnvironment, SandboxServer, Settings, Incidents]]:
    """Temporal, the sandbox and the ingress-side API, with workers started and stopped by the test."""
    from tests.conftest import start_temporal

    async with (
        await start_temporal() as env,
        SandboxServer(token=TOKEN, signing_secret=SIGNING_SECRET) as sandbox,
    ):
        settings = make_settings(sandbox, [])
        yield env, sandbox, settings, Incidents.from_settings(env.client, settings)


def a_worker(client: Client, settings: Settings, sandbox: SandboxServer) -> object:
    return worker_process.build_worker(client, settings)


async def test_a_reminder_due_while_no_worker_runs_is_delivered_once_after_restart() -> None:
    async with bare_stack() as (env, sandbox, settings, incidents):
        async with a_worker(env.client, settings, sandbox):  # type: ignore[attr-defined]
            incident_id = await incidents.declare("Queue backlog", Severity.SEV2, declared_by=RESPONDER)
            await eventually(lambda: _channel_of(incidents, incident_id))
            answer = await incidents.set_reminder(
                incident_id, ReminderOrder(when="in 3s", text="check the backlog", actor=RESPONDER)
            )
        rid = reminder_id_in(answer)
        await asyncio.sleep(4)  # due, with no worker running
        assert dms(sandbox, RESPONDER) == []
        # The restarted worker loses the DM's answer once: its retry finds the DM instead of sending another.
        sandbox.state.add_fault("chat.postMessage", error="internal_error", after_effect=True)
        async with a_worker(env.client, settings, sandbox):  # type: ignore[attr-defined]
            texts = await eventually(lambda: _some(dms(sandbox, RESPONDER)), within=20)
            handle = env.client.get_workflow_handle(
                reminder_workflow_id(rid, settings.task_queue), result_type=ReminderView
            )
            assert (await handle.result()).status == "delivered"
        assert len(texts) == 1 and "check the backlog" in texts[0]
        assert len(dms(sandbox, RESPONDER)) == 1


async def _channel_of(incidents: Incidents, incident_id: int) -> str | None:
    return (await incidents.state(incident_id)).channel_id


# --- hours and days ahead, through time skipping ---------------------------------------------------------


@pytest.fixture
async def skipping() -> AsyncIterator[WorkflowEnvironment]:
    """A reminder child started from the incident's update handler skips its timer automatically."""
    async with await start_time_skipping() as env:
        yield env


@pytest.mark.parametrize("when", ["in 2h", "in 3d", "tomorrow 09:00"])
async def test_reminders_hours_and_days_ahead_fire_at_their_due_time(
    skipping: WorkflowEnvironment, when: str
) -> None:
    async with SandboxServer(token=TOKEN, signing_secret=SIGNING_SECRET) as sandbox:
        sandbox.state.add_user(RESPONDER, tz="America/New_York")
        settings = make_settings(sandbox, [])
        incidents = Incidents.from_settings(skipping.client, settings)
        async with a_worker(skipping.client, settings, sandbox):  # type: ignore[attr-defined]
            # SEV4: no update nudges, whose timer would also be skipped through, again and again.
            incident_id = await incidents.declare("Disk filling up", Severity.SEV4, declared_by=RESPONDER)
            await eventually(lambda: _channel_of(incidents, incident_id))
            answer = await incidents.set_reminder(
                incident_id, ReminderOrder(when=when, text="look at the disk again", actor=RESPONDER)
            )
            assert "(America/New_York)" in answer
            rid = reminder_id_in(answer)
            handle = skipping.client.get_workflow_handle(
                reminder_workflow_id(rid, settings.task_queue), result_type=ReminderView
            )
            result = await asyncio.wait_for(handle.result(), timeout=30)
            assert result.status == "delivered"
            texts = dms(sandbox, RESPONDER)
            assert len(texts) == 1 and "look at the disk again" in texts[0]
            # The timer waited for the whole interval, in the reminder's own (virtual) time.
            events = [e async for e in handle.fetch_history_events()]
            [started] = [e for e in events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED]
            waited = started.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
            started_at = events[0].event_time.ToDatetime().replace(tzinfo=result.due.tzinfo)
            assert abs(waited - (result.due - started_at)) < timedelta(seconds=5)
            assert waited > timedelta(hours=1, minutes=59)
            assert any(e.event_type == EventType.EVENT_TYPE_TIMER_FIRED for e in events)
            await incidents.resolve(incident_id, Resolution(summary="done"))


async def test_cancelling_someone_elses_reminder_through_the_api_is_refused(stack: Stack) -> None:
    incident_id, _ = await declare_via_slack(stack)
    answer = await stack.incidents.set_reminder(
        incident_id, ReminderOrder(when="in 1h", text="mine", actor=RESPONDER)
    )
    rid = reminder_id_in(answer)
    with pytest.raises(CommandRejected, match="not yours"):
        await stack.incidents.cancel_reminder(rid, OTHER)
    assert await reminder_status(stack, rid) == WorkflowExecutionStatus.RUNNING
