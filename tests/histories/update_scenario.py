"""The `update-in-task` scenario of tests/histories/record.py: status updates under patch
update-posted-in-its-task. One is posted by its own local activity, one is queued behind a stage change,
and one Slack holds past the local activity's time (so it is queued and looked for before it is posted).
"""

from __future__ import annotations

from domain.models import StageChange, StatusUpdate
from domain.vocab import Stage
from tests.conftest import RESPONDER, Stack
from tests.test_incident_workflow import declare, wait_quiet


async def update_in_task(stack: Stack) -> dict[str, str]:
    from tests.histories.record import _resolve_and_save  # record.py imports this module

    inc = stack.incidents
    incident_id, _ = await declare(stack)
    await inc.post_update(incident_id, StatusUpdate(text="Posted in its own task", actor=RESPONDER))
    await inc.change_stage(incident_id, StageChange(stage=Stage.IDENTIFIED, context="bad", actor=RESPONDER))
    await inc.post_update(incident_id, StatusUpdate(text="Queued behind the stage", actor=RESPONDER))
    await wait_quiet(stack, incident_id)
    await stack.slack.fault("chat.postMessage", delay_ms=3000)
    await inc.post_update(incident_id, StatusUpdate(text="Held by Slack", actor=RESPONDER))
    await wait_quiet(stack, incident_id)
    return await _resolve_and_save(stack, incident_id, "done", "update-in-task")
