"""Slack failing under the workflow: retries never duplicate, permanent errors stop at once with one note."""

from __future__ import annotations

from typing import Any

from domain.models import BroadcastChange, StageChange, StatusUpdate
from domain.naming import incident_workflow_id
from domain.vocab import Severity, Stage
from sandbox.models import Call
from tests.conftest import RESPONDER, Stack, eventually
from tests.test_incident_workflow import TITLE, declare, top_level, wait_quiet


def calls(stack: Stack, method: str) -> list[Call]:
    return [c for c in stack.sandbox.state.calls if c.method == method]


async def test_lost_response_on_a_thread_reply_is_not_posted_twice(stack: Stack) -> None:
    incident_id, channel = await declare(stack)
    # The update posts in the channel, then #status, then #exec; #exec's post succeeds but its answer is lost.
    stack.sandbox.state.add_fault("chat.postMessage", status=500, skip=2, after_effect=True)
    await stack.incidents.post_update(incident_id, StatusUpdate(text="Rolled back", actor=RESPONDER))
    await wait_quiet(stack, incident_id)
    assert len(calls(stack, "conversations.replies")) >= 1  # the retry looked before posting again
    for bc in stack.broadcast:
        [overview] = await top_level(stack, bc)
        assert [r["text"].count("Rolled back") for r in overview["replies"]] == [1]
    assert sum("Rolled back" in m["text"] for m in await top_level(stack, channel)) == 1


async def test_lost_response_on_channel_creation_reuses_the_channel(stack: Stack) -> None:
    stack.sandbox.state.add_fault("conversations.create", status=500, after_effect=True)
    incident_id, channel = await declare(stack)
    names = [c.name for c in stack.sandbox.state.channels.values() if c.name.startswith(f"inc-{incident_id}")]
    assert names == ["inc-1-checkout-latency-above-2s"]
    assert (await stack.incidents.state(incident_id)).channel_id == channel


async def retried_attempts(stack: Stack, incident_id: int) -> list[Any]:
    """Activity attempts after the first, as Temporal recorded them (with the failure before each)."""
    handle = stack.temporal.client.get_workflow_handle(
        incident_workflow_id(incident_id, stack.settings.task_queue)
    )
    return [
        e.activity_task_started_event_attributes
        async for e in handle.fetch_history_events()
        if e.HasField("activity_task_started_event_attributes")
        and e.activity_task_started_event_attributes.attempt > 1
    ]


async def test_a_long_rate_limit_becomes_the_retry_delay_and_delivers_once(stack: Stack) -> None:
    incident_id, _ = await declare(stack)
    # The update's own (local) attempt gets two 429s, past its time: it is queued, and the regular
    # activity's first attempt gets the third.
    stack.sandbox.state.add_fault("chat.postMessage", status=429, retry_after=6, skip=1, count=3)
    answer = await stack.incidents.post_update(incident_id, StatusUpdate(text="slow down"))
    assert answer.startswith("Update accepted but not posted yet"), answer
    await wait_quiet(stack, incident_id)
    # Longer than warroom waits within an attempt: Temporal retries after exactly the delay Slack asked for.
    [started] = await retried_attempts(stack, incident_id)
    info = started.last_failure.application_failure_info
    assert (info.type, info.next_retry_delay.seconds, info.non_retryable) == ("SlackRateLimited", 6, False)
    for bc in stack.broadcast:
        [overview] = await top_level(stack, bc)
        assert [r["text"].count("slow down") for r in overview["replies"]] == [1]


async def test_a_short_rate_limit_is_waited_out_within_the_attempt(stack: Stack) -> None:
    incident_id, _ = await declare(stack)
    stack.sandbox.state.add_fault("chat.postMessage", status=429, retry_after=1, count=2)
    posts_before = len(calls(stack, "chat.postMessage"))
    await stack.incidents.post_update(incident_id, StatusUpdate(text="easy now"))
    await wait_quiet(stack, incident_id)
    assert await retried_attempts(stack, incident_id) == []  # no activity retry: no channel posted again
    assert len(calls(stack, "chat.postMessage")) - posts_before == 3 + 2  # 3 posts, 2 refused and repeated
    for bc in stack.broadcast:
        [overview] = await top_level(stack, bc)
        assert [r["text"].count("easy now") for r in overview["replies"]] == [1]


async def test_bad_credentials_stop_at_once_with_one_note(stack: Stack) -> None:
    incident_id, channel = await declare(stack)
    stack.sandbox.state.add_fault("chat.update", error="invalid_auth", count=-1)
    await stack.incidents.change_stage(incident_id, StageChange(stage=Stage.IDENTIFIED))
    await wait_quiet(stack, incident_id)
    # Non-retryable: one attempt, which tried each of the 3 overviews (channel, #status, #exec) once.
    assert len(calls(stack, "chat.update")) == 3
    assert await retried_attempts(stack, incident_id) == []
    notes = [m["text"] for m in await top_level(stack, channel) if "could not" in m["text"]]
    assert len(notes) == 1 and "invalid_auth" in notes[0] and "SLACK_BOT_TOKEN" in notes[0]
    timeline = await stack.incidents.timeline(incident_id)
    assert any(e.kind == "problem" and "invalid_auth" in e.text for e in timeline)
    for bc in stack.broadcast:  # the stage update itself still went out
        [overview] = await top_level(stack, bc)
        assert "Identified" in overview["replies"][-1]["text"]


async def test_unknown_broadcast_channel_is_skipped_with_one_note(stack: Stack) -> None:
    incident_id = await stack.incidents.declare(
        TITLE, Severity.SEV2, declared_by=RESPONDER, broadcast_channels=(stack.broadcast[0], "C0GONE")
    )
    channel = await stack.incident_channel(incident_id)
    await wait_quiet(stack, incident_id)
    for text in ("first", "second"):
        await stack.incidents.post_update(incident_id, StatusUpdate(text=text))
    await wait_quiet(stack, incident_id)
    [overview] = await top_level(stack, stack.broadcast[0])
    assert [r["text"].split()[-1] for r in overview["replies"]] == ["first", "second"]
    notes = [m["text"] for m in await top_level(stack, channel) if "could not post" in m["text"]]
    assert len(notes) == 1 and "C0GONE" in notes[0] and "broadcast add" in notes[0]
    state = await stack.incidents.state(incident_id)
    gone = next(b for b in state.broadcasts if b.channel_id == "C0GONE")
    assert gone.error == "channel_not_found" and gone.overview_ts is None

    # Adding it again (say, after fixing the channel) clears the error and retries the overview.
    await stack.incidents.change_broadcast(incident_id, BroadcastChange(add=("C0GONE",)))

    async def retried() -> bool:
        state = await stack.incidents.state(incident_id)
        return any(b.channel_id == "C0GONE" and b.error for b in state.broadcasts) and not state.outbox

    await eventually(retried)
    joins = [c for c in calls(stack, "conversations.join") if c.args.get("channel") == "C0GONE"]
    assert len(joins) == 2
