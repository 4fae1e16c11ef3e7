"""Posting to Slack exactly once: a lost answer, refused content or a slow Slack never doubles a post."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

import worker as worker_process
from activities.slack import SlackActivities
from domain.effects import NoteRequest
from domain.models import StageChange, StatusUpdate
from domain.vocab import Stage
from sandbox import SandboxServer
from tests.conftest import RESPONDER, SIGNING_SECRET, TOKEN, Stack, make_settings
from tests.test_incident_workflow import declare, top_level, wait_quiet
from tests.test_slack_retries import calls, retried_attempts


async def test_an_update_whose_answers_are_lost_lands_once_in_every_place(stack: Stack) -> None:
    incident_id, channel = await declare(stack)
    # Slack stores each of the three posts (channel, #status, #exec), then the connection drops unanswered.
    stack.sandbox.state.add_fault("chat.postMessage", drop=True, count=3)
    await stack.incidents.post_update(incident_id, StatusUpdate(text="Rolled back", actor=RESPONDER))
    await wait_quiet(stack, incident_id)
    assert sum("Rolled back" in m["text"] for m in await top_level(stack, channel)) == 1
    for bc in stack.broadcast:
        [overview] = await top_level(stack, bc)
        assert [r["text"].count("Rolled back") for r in overview["replies"]] == [1]
    # Found by looking, within the same attempt: neither the SDK nor Temporal sent anything again.
    assert len(calls(stack, "chat.postMessage")) == 3 + 3  # declare's overviews, then this update
    assert await retried_attempts(stack, incident_id) == []


async def test_a_refused_overview_edit_shows_plain_text_at_once_not_after_ten_retries(stack: Stack) -> None:
    incident_id, channel = await declare(stack)
    await wait_quiet(stack, incident_id)
    stack.sandbox.state.add_fault("chat.update", error="invalid_blocks")
    change = StageChange(stage=Stage.IDENTIFIED, context="bad deploy", actor=RESPONDER)
    await stack.incidents.change_stage(incident_id, change)
    await wait_quiet(stack, incident_id)
    overviews = [(await top_level(stack, c))[0] for c in (channel, *stack.broadcast)]
    plain = [o for o in overviews if not o.get("blocks")]
    assert len(plain) == 1 and "Identified" in plain[0]["text"]
    assert all("Identified" in str(o.get("blocks")) for o in overviews if o.get("blocks"))
    assert len(calls(stack, "chat.update")) == 3 + 1  # three overviews, one of them again as plain text
    assert await retried_attempts(stack, incident_id) == []
    assert not [m for m in await top_level(stack, channel) if "could not" in m["text"]]


@pytest.fixture
async def slow_slack() -> AsyncIterator[tuple[SandboxServer, SlackActivities, str]]:
    async with SandboxServer(token=TOKEN, signing_secret=SIGNING_SECRET) as sandbox:
        channel = sandbox.state.create_channel("inc-1-slow").id
        acts = SlackActivities(worker_process.slack_client(make_settings(sandbox, [])))
        yield sandbox, acts, channel


def attempt_env(start_to_close: timedelta, beats: list[object]) -> ActivityEnvironment:
    env = ActivityEnvironment()
    now = datetime.now(UTC)
    env.info = dataclasses.replace(
        env.info, started_time=now, scheduled_time=now, start_to_close_timeout=start_to_close
    )
    env.on_heartbeat = lambda *details: beats.append(details)
    return env


async def test_every_slack_call_heartbeats(slow_slack: tuple[SandboxServer, SlackActivities, str]) -> None:
    _, acts, channel = slow_slack
    beats: list[object] = []
    env = attempt_env(timedelta(seconds=30), beats)
    await env.run(acts.post_note, NoteRequest(channel_id=channel, text="note", key="k1"))
    assert len(beats) >= 1


async def test_no_call_outlives_its_attempt(slow_slack: tuple[SandboxServer, SlackActivities, str]) -> None:
    sandbox, acts, channel = slow_slack
    # Slack takes 6 s to answer; the attempt has 5 s: warroom gives up before Temporal would start a retry.
    sandbox.state.add_fault("chat.postMessage", delay_ms=6000)
    env = attempt_env(timedelta(seconds=5), [])
    with pytest.raises(ApplicationError) as caught:
        await env.run(acts.post_note, NoteRequest(channel_id=channel, text="slow", key="k2"))
    assert caught.value.type == "SlackAttemptOutOfTime" and not caught.value.non_retryable
