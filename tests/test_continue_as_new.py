"""Long incidents continue as new before history grows large, carrying every bit of state."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from domain.models import IncidentResult, Resolution, StageChange, StatusUpdate
from domain.naming import incident_workflow_id
from domain.vocab import Stage
from sandbox import SandboxServer
from tests.conftest import SIGNING_SECRET, TOKEN, Stack, running_stack, start_temporal
from tests.test_incident_workflow import declare, top_level, wait_quiet

UPDATES = 25


@pytest.fixture
async def small_history_stack() -> AsyncIterator[Stack]:
    async with (
        await start_temporal("limit.historyCount.suggestContinueAsNew=60") as env,
        SandboxServer(token=TOKEN, signing_secret=SIGNING_SECRET) as sandbox,
        running_stack(env, sandbox) as stack,
    ):
        yield stack


async def test_state_survives_continue_as_new(small_history_stack: Stack) -> None:
    stack = small_history_stack
    incident_id, channel = await declare(stack)
    handle = stack.temporal.client.get_workflow_handle(
        incident_workflow_id(incident_id, stack.settings.task_queue)
    )
    first_run = (await handle.describe()).run_id
    await stack.incidents.change_stage(incident_id, StageChange(stage=Stage.IDENTIFIED, context="found it"))
    for i in range(UPDATES):
        await stack.incidents.post_update(incident_id, StatusUpdate(text=f"update {i}"))
    await wait_quiet(stack, incident_id)

    assert (await handle.describe()).run_id != first_run  # it did continue as new
    state = await stack.incidents.state(incident_id)
    assert state.stage is Stage.IDENTIFIED and state.updates_posted == UPDATES
    assert state.channel_id == channel
    assert [e.text for e in state.timeline if e.kind == "update"] == [f"update {i}" for i in range(UPDATES)]
    for bc in stack.broadcast:  # still threaded under the one overview, in order
        [overview] = await top_level(stack, bc)
        texts = [r["text"] for r in overview["replies"]]
        assert len(texts) == UPDATES + 1
        assert [t.split()[-1] for t in texts[1:]] == [str(i) for i in range(UPDATES)]
    # Commands keep working after the hand-over and the result has the whole timeline.
    await stack.incidents.resolve(incident_id, Resolution(summary="done"))
    result = await stack.temporal.client.get_workflow_handle(
        incident_workflow_id(incident_id, stack.settings.task_queue), result_type=IncidentResult
    ).result()
    assert len([e for e in result.timeline if e.kind == "update"]) == UPDATES
    assert result.timeline[0].kind == "declared" and result.timeline[-1].kind == "resolved"


async def test_a_busy_incident_hands_over_without_waiting_for_a_quiet_moment(
    small_history_stack: Stack,
) -> None:
    """Updates keep arriving while earlier ones are posted: the run still ends near the suggested size, and
    the queued updates travel to the next run, each posted once, in order."""
    stack = small_history_stack
    incident_id, _ = await declare(stack)
    handle = stack.temporal.client.get_workflow_handle(
        incident_workflow_id(incident_id, stack.settings.task_queue)
    )
    first_run = (await handle.describe()).run_id
    burst = [f"burst {i}" for i in range(30)]
    for text in burst:  # each returns once recorded; the posting happens behind
        await stack.incidents.post_update(incident_id, StatusUpdate(text=text))
    await wait_quiet(stack, incident_id)

    first = await stack.temporal.client.get_workflow_handle(
        incident_workflow_id(incident_id, stack.settings.task_queue), run_id=first_run
    ).describe()
    # Before the patch the first run only ended once the queue was empty (~60 + 30 x 9 events here).
    assert first.history_length is not None and first.history_length < 160, first.history_length
    for bc in stack.broadcast:
        [overview] = await top_level(stack, bc)
        posted = [r["text"].split()[-1] for r in overview["replies"]]
        assert posted == [str(i) for i in range(30)]
