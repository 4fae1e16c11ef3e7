"""The workflow code replays its own histories: no non-determinism hides in handlers or the main loop."""

from __future__ import annotations

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from domain.models import (
    BroadcastChange,
    CommanderChange,
    Resolution,
    SeverityChange,
    StageChange,
    StatusUpdate,
)
from domain.naming import DIRECTORY_WORKFLOW_ID, incident_workflow_id
from domain.vocab import Severity, Stage
from tests.conftest import RESPONDER, Stack
from tests.test_incident_workflow import declare, wait_quiet
from worker import WORKFLOWS


async def test_a_full_incident_replays_deterministically(stack: Stack) -> None:
    incident_id, channel = await declare(stack)
    inc = stack.incidents
    await inc.change_stage(
        incident_id, StageChange(stage=Stage.IDENTIFIED, context="deploy", actor=RESPONDER)
    )
    await inc.post_update(incident_id, StatusUpdate(text="rolling back", actor=RESPONDER))
    await inc.change_severity(
        incident_id, SeverityChange(severity=Severity.SEV1, reason="customers", actor=RESPONDER)
    )
    await inc.assign_commander(incident_id, CommanderChange(user_id="U0ALICE", actor=RESPONDER))
    await inc.change_broadcast(incident_id, BroadcastChange(remove=(stack.broadcast[1],)))
    posted = await stack.slack.message(user_id=RESPONDER, channel_id=channel, text="p99 is back")
    await stack.slack.react(user_id=RESPONDER, channel_id=channel, ts=posted["ts"], reaction="mega")
    await wait_quiet(stack, incident_id)
    await inc.change_stage(incident_id, StageChange(stage=Stage.MITIGATED))
    await inc.resolve(incident_id, Resolution(summary="rolled back", actor=RESPONDER))
    client = stack.temporal.client
    await client.get_workflow_handle(incident_workflow_id(incident_id)).result()

    secrets = stack.settings.secrets()
    assert secrets, "the stack runs with a bot token and a signing secret"
    replayer = Replayer(workflows=list(WORKFLOWS), data_converter=pydantic_data_converter)
    for workflow_id in (incident_workflow_id(incident_id), DIRECTORY_WORKFLOW_ID):
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        raw = history.to_json()
        assert not [s for s in secrets if s in raw], f"a secret is in the history of {workflow_id}"
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, f"{workflow_id}: {result.replay_failure}"
