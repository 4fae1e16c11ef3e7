"""Every wait has an exit: when Slack refuses something for good (the channel, the invite, an overview,
the call's bookmark, the timeline upload), the incident still runs, resolves, completes and frees its key."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.testing import WorkflowEnvironment

from domain.alerts import DEFAULT_SEVERITY_MAP, AlertGroup, AlertmanagerPayload, from_alertmanager
from domain.models import IncidentResult, Resolution, StageChange, StatusUpdate
from domain.naming import incident_workflow_id
from domain.vocab import Severity, Stage
from sandbox import SandboxServer
from tests.conftest import RESPONDER, Stack, eventually, running_stack
from tests.test_alerts import alertmanager_payload
from tests.test_integrations import settled
from tests.test_reminders import dms

COMPLETES_WITHIN = 60.0  # seconds: far longer than any retry a permanent error gets


async def completed(stack: Stack, incident_id: int) -> IncidentResult:
    handle = stack.temporal.client.get_workflow_handle(
        incident_workflow_id(incident_id, stack.settings.task_queue), result_type=IncidentResult
    )
    return await asyncio.wait_for(handle.result(), COMPLETES_WITHIN)


def alert_group() -> AlertGroup:
    payload = AlertmanagerPayload.model_validate(alertmanager_payload("web-1"))
    return from_alertmanager(payload, "alertmanager", DEFAULT_SEVERITY_MAP)


async def test_a_channel_slack_refuses_leaves_an_incident_that_broadcasts_and_resolves(stack: Stack) -> None:
    stack.sandbox.state.add_fault("conversations.create", error="restricted_action", count=-1)
    incident_id = await stack.incidents.declare("Checkout down", Severity.SEV2, declared_by=RESPONDER)

    # The declarer learns at once why there is no channel, and how to go on.
    [dm] = await eventually(lambda: _some(dms(stack.sandbox, RESPONDER)))
    assert "restricted_action" in dm and f"warroom update INC-{incident_id}" in dm
    # Stakeholders still get the overview, which says why there is no channel, and the updates under it.
    await stack.incidents.post_update(incident_id, StatusUpdate(text="Rolled back", actor=RESPONDER))

    async def threaded() -> bool:
        overviews = [await stack.slack.messages(bc) for bc in stack.broadcast]
        return all(
            len(o) == 1 and any("Rolled back" in r["text"] for r in o[0]["replies"]) for o in overviews
        )

    await eventually(threaded)
    [overview] = await stack.slack.messages(stack.broadcast[0])
    assert "Slack refused to create it" in str(overview["blocks"])

    await stack.incidents.resolve(incident_id, Resolution(summary="fixed", actor=RESPONDER))
    result = await completed(stack, incident_id)
    assert result.resolved_at is not None and result.summary == "fixed"
    assert any(e.kind == "problem" and "restricted_action" in e.text for e in result.timeline)


async def test_an_alert_incident_without_a_channel_frees_its_key_at_resolve(stack: Stack) -> None:
    stack.sandbox.state.add_fault("conversations.create", error="restricted_action", count=-1)
    group = alert_group()
    first = await stack.incidents.handle_alert(group)
    assert first.action == "declared" and first.incident_id is not None
    await eventually(lambda: _channel_refused(stack, first.incident_id))
    await stack.incidents.resolve(first.incident_id, Resolution(summary="fixed"))
    await completed(stack, first.incident_id)
    # The key was released: the same alert group firing again declares a new incident.
    again = await eventually(lambda: _declared_again(stack, group))
    assert again != first.incident_id


@pytest.mark.parametrize(
    ("method", "settings"),
    [
        ("conversations.invite", {}),
        ("chat.postMessage", {}),
        ("bookmarks.add", {"WARROOM_CALL_PROVIDER": "zoom"}),
        ("files.getUploadURLExternal", {}),
    ],
)
async def test_a_permanent_slack_refusal_never_stops_resolve(
    temporal: WorkflowEnvironment, sandbox: SandboxServer, method: str, settings: dict[str, str]
) -> None:
    async with running_stack(temporal, sandbox, **settings) as stack:
        stack.sandbox.state.add_fault(method, error="restricted_action", count=-1)
        incident_id = await stack.incidents.declare("Checkout down", Severity.SEV2, declared_by=RESPONDER)
        await stack.incidents.post_update(incident_id, StatusUpdate(text="Rolled back", actor=RESPONDER))
        await stack.incidents.resolve(incident_id, Resolution(summary="fixed", actor=RESPONDER))
        result = await completed(stack, incident_id)
        assert result.resolved_at is not None and result.summary == "fixed"
        assert any(e.kind == "problem" and "restricted_action" in e.text for e in result.timeline)


async def _some(items: list[str]) -> list[str]:
    return items


async def _channel_refused(stack: Stack, incident_id: int) -> bool:
    return (await stack.state(incident_id)).channel_error is not None


async def _declared_again(stack: Stack, group: AlertGroup) -> int | None:
    outcome = await stack.incidents.handle_alert(group)
    return outcome.incident_id if outcome.action == "declared" else None


async def test_an_update_the_archived_channel_refuses_after_accepted_reaches_its_author_by_dm(
    stack: Stack,
) -> None:
    """Answered "accepted" (queued behind a stage change still being posted), then refused by the incident
    channel, which someone archived: its author learns it by DM, once; the broadcast threads got it."""
    incident_id = await stack.incidents.declare("Checkout 5xx", Severity.SEV2, declared_by=RESPONDER)
    channel = await stack.incident_channel(incident_id)
    await settled(stack, incident_id)
    stack.sandbox.state.channels[channel].is_archived = True
    stack.sandbox.state.add_fault("chat.postMessage", delay_ms=1500)  # the stage's first post is held
    await stack.incidents.change_stage(incident_id, StageChange(stage=Stage.IDENTIFIED, context="bad deploy"))
    update = StatusUpdate(text="Rolling back payments-api", actor=RESPONDER)
    answer = await stack.incidents.post_update(incident_id, update)
    assert answer.startswith("Update accepted: it goes out here and to 2 broadcast channels after"), answer
    await settled(stack, incident_id)

    async def told() -> list[str]:
        found = [t for t in dms(stack.sandbox, RESPONDER) if "was not posted in" in t]
        return found or []

    [dm] = await eventually(told)
    assert f"<#{channel}>" in dm and "`is_archived`" in dm and "Rolling back payments-api" in dm, dm
    for bc in stack.broadcast:
        [overview] = await stack.slack.messages(bc)
        assert any("Rolling back payments-api" in r["text"] for r in overview["replies"])
