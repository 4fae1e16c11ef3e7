"""IncidentWorkflow on a real dev server, with the real Slack activities talking to the sandbox over HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType

from domain.models import (
    BroadcastChange,
    CommanderChange,
    IncidentResult,
    Resolution,
    SeverityChange,
    StageChange,
    StatusUpdate,
)
from domain.naming import incident_workflow_id
from domain.vocab import Severity, Stage, Status
from starter.incidents import CommandRejected
from tests.conftest import RESPONDER, Stack, eventually

TITLE = "Checkout latency above 2s"


async def declare(stack: Stack, title: str = TITLE, **kw: Any) -> tuple[int, str]:
    incident_id = await stack.incidents.declare(title, Severity.SEV2, declared_by=RESPONDER, **kw)
    channel = await stack.incident_channel(incident_id)
    await wait_quiet(stack, incident_id)
    return incident_id, channel


async def wait_quiet(stack: Stack, incident_id: int) -> None:
    """Waits until the workflow has performed every queued Slack effect."""

    async def drained() -> bool:
        s = await stack.incidents.state(incident_id)
        pending = s.outbox or s.overview_stale
        missing = [b for b in s.broadcasts if b.active and b.overview_ts is None and b.error is None]
        return bool(s.channel_ready and not pending and not missing)

    await eventually(drained)


async def top_level(stack: Stack, channel: str) -> list[dict[str, Any]]:
    return await stack.slack.messages(channel)


async def history_events(stack: Stack, incident_id: int) -> list[Any]:
    handle = stack.temporal.client.get_workflow_handle(
        incident_workflow_id(incident_id, stack.settings.task_queue)
    )
    return [e async for e in handle.fetch_history_events()]


async def test_declare_creates_channel_invites_and_broadcasts_overview(stack: Stack) -> None:
    incident_id, channel = await declare(stack)
    info = await stack.slack.channel_by_name(f"inc-{incident_id}-checkout-latency-above-2s")
    assert info is not None and info["id"] == channel
    assert RESPONDER in info["members"]
    purpose = info["purpose"]["value"]
    for expected in (f"INC-{incident_id}", TITLE, "SEV2", "Investigating"):
        assert expected in purpose
    [overview] = await top_level(stack, channel)
    assert TITLE in overview["text"]
    for bc in stack.broadcast:
        [bc_overview] = await top_level(stack, bc)
        assert TITLE in bc_overview["text"] and "Investigating" in bc_overview["text"]
    found = await stack.incidents.list(severity=Severity.SEV2, status=Status.OPEN)
    assert [i.incident_id for i in found] == [incident_id]
    assert found[0].channel_id == channel and found[0].title == TITLE


async def test_updates_thread_under_each_broadcast_overview_and_overview_is_edited(stack: Stack) -> None:
    incident_id, channel = await declare(stack)
    reply = await stack.incidents.post_update(
        incident_id, StatusUpdate(text="Rolled back payments", actor=RESPONDER)
    )
    assert "2 broadcast channels" in reply
    reply = await stack.incidents.change_stage(
        incident_id, StageChange(stage=Stage.IDENTIFIED, context="bad deploy", actor=RESPONDER)
    )
    assert "Identified" in reply
    await stack.incidents.change_severity(
        incident_id, SeverityChange(severity=Severity.SEV1, actor=RESPONDER)
    )
    await wait_quiet(stack, incident_id)

    for bc in stack.broadcast:
        [overview] = await top_level(stack, bc)
        replies = [r["text"] for r in overview["replies"]]
        assert len(replies) == 3
        assert "Rolled back payments" in replies[0]
        assert "Identified" in replies[1] and "bad deploy" in replies[1]
        assert "SEV1" in replies[2]
        assert "Identified" in overview["text"] and "SEV1" in overview["text"]
        assert overview.get("edited")
    texts = [m["text"] for m in await top_level(stack, channel)]
    assert any("Rolled back payments" in t for t in texts)
    found = await stack.incidents.list(stage=Stage.IDENTIFIED)
    assert [i.severity for i in found] == ["sev1"]


async def test_validators_reject_with_a_clear_message_and_record_nothing(stack: Stack) -> None:
    incident_id, _ = await declare(stack)
    before = len(await history_events(stack, incident_id))
    with pytest.raises(CommandRejected, match="already SEV2"):
        await stack.incidents.change_severity(incident_id, SeverityChange(severity=Severity.SEV2))
    with pytest.raises(CommandRejected, match="not a broadcast channel"):
        await stack.incidents.change_broadcast(incident_id, BroadcastChange(remove=("C0NOPE",)))
    assert len(await history_events(stack, incident_id)) == before


async def test_broadcast_add_posts_overview_first_and_remove_stops_updates(stack: Stack) -> None:
    incident_id, _ = await declare(stack)
    late = (await stack.slack.create_channel("late-joiners"))["id"]
    await stack.incidents.change_broadcast(
        incident_id, BroadcastChange(add=(late,), remove=(stack.broadcast[1],))
    )
    await stack.incidents.post_update(incident_id, StatusUpdate(text="after the change"))
    await wait_quiet(stack, incident_id)
    [overview] = await top_level(stack, late)
    assert TITLE in overview["text"]
    assert ["after the change" in r["text"] for r in overview["replies"]] == [True]
    [removed] = await top_level(stack, stack.broadcast[1])
    assert removed["replies"] == []


async def test_taken_channel_name_gets_a_suffix(stack: Stack) -> None:
    await stack.slack.create_channel("inc-1-checkout-latency-above-2s")
    incident_id, channel = await declare(stack)
    assert incident_id == 1
    state = await stack.incidents.state(incident_id)
    assert state.channel_name == "inc-1-checkout-latency-above-2s-2" and state.channel_id == channel


async def test_concurrent_declares_get_distinct_ids(stack: Stack) -> None:
    ids = await asyncio.gather(*(stack.incidents.declare(f"storm {i}", Severity.SEV4) for i in range(8)))
    assert sorted(ids) == list(range(1, 9))


async def test_resolve_warns_when_never_mitigated_and_returns_timeline(stack: Stack) -> None:
    incident_id, _ = await declare(stack)
    await stack.incidents.assign_commander(
        incident_id, CommanderChange(user_id="U0COMMANDER", actor=RESPONDER)
    )
    reply = await stack.incidents.resolve(incident_id, Resolution(summary="Rolled back", actor=RESPONDER))
    assert "never marked Mitigated" in reply
    handle = stack.temporal.client.get_workflow_handle(
        incident_workflow_id(incident_id, stack.settings.task_queue), result_type=IncidentResult
    )
    result = await handle.result()
    kinds = [e.kind for e in result.timeline]
    assert kinds[0] == "declared" and "commander" in kinds and kinds[-1] == "resolved"
    assert result.summary == "Rolled back" and not result.ever_mitigated
    for bc in stack.broadcast:
        [overview] = await top_level(stack, bc)
        assert "Resolved" in overview["text"]
        assert "Rolled back" in overview["replies"][-1]["text"]
    with pytest.raises(CommandRejected):
        await stack.incidents.post_update(incident_id, StatusUpdate(text="too late"))
    found = await stack.incidents.list(status=Status.RESOLVED)
    assert [i.incident_id for i in found] == [incident_id]


async def test_mitigated_then_resolved_has_no_warning(stack: Stack) -> None:
    incident_id, _ = await declare(stack)
    await stack.incidents.change_stage(incident_id, StageChange(stage=Stage.MITIGATED))
    reply = await stack.incidents.resolve(incident_id, Resolution())
    assert "never" not in reply


async def test_search_attributes_are_upserted_only_on_change(stack: Stack) -> None:
    incident_id, _ = await declare(stack)

    async def upserts() -> int:
        """warroom's upserts: the SDK's own, making a patch searchable once per run, are not counted."""
        events = await history_events(stack, incident_id)
        return sum(
            e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
            and set(e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields)
            != {"TemporalChangeVersion"}
            for e in events
        )

    after_declare = await upserts()
    await stack.incidents.post_update(incident_id, StatusUpdate(text="no attribute changes"))
    await wait_quiet(stack, incident_id)
    assert await upserts() == after_declare
    await stack.incidents.change_stage(incident_id, StageChange(stage=Stage.IDENTIFIED))
    await wait_quiet(stack, incident_id)
    assert await upserts() == after_declare + 1


async def test_a_status_update_costs_six_history_events_and_its_answer_says_it_was_posted(
    stack: Stack,
) -> None:
    """Posted within the update's own workflow task (a local activity): task scheduled, started, completed,
    update accepted, the activity's marker, update completed. The first update of a run also records its
    patch (a marker and the SDK's upsert of TemporalChangeVersion)."""
    incident_id, channel = await declare(stack)
    await wait_quiet(stack, incident_id)
    await stack.incidents.post_update(incident_id, StatusUpdate(text="first: records the patch"))
    for n in range(3):
        before = len(await history_events(stack, incident_id))
        reply = await stack.incidents.post_update(incident_id, StatusUpdate(text=f"update {n}"))
        assert reply == "Update posted here and to 2 broadcast channels."
        events = (await history_events(stack, incident_id))[before:]
        assert [e.event_type for e in events] == [
            EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
            EventType.EVENT_TYPE_MARKER_RECORDED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
        ]
        # The answer came after the posts: they are already in the channel and in every broadcast thread.
        assert any(f"update {n}" in m["text"] for m in await stack.slack.messages(channel))
        for bc in stack.broadcast:
            [overview] = await stack.slack.messages(bc)
            assert f"update {n}" in overview["replies"][-1]["text"]
