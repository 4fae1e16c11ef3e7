"""The current workflow code replays the history it writes right now, and no secret is in it.

tests/test_histories_replay.py covers histories recorded by earlier code; this one catches non-determinism in
the code as it is (a handler or loop that would not make the same decisions twice).
"""

from __future__ import annotations

from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.conftest import Stack
from tests.histories.record import full_lifecycle, readable
from worker import WORKFLOWS


async def test_a_full_incident_replays_deterministically_and_holds_no_secret(stack: Stack) -> None:
    histories = await full_lifecycle(stack)  # the incident and the directory, as the recorder scripts them
    assert len(histories) == 2
    secrets = stack.settings.secrets()
    assert secrets, "the stack runs with a bot token and a signing secret"
    replayer = Replayer(workflows=list(WORKFLOWS), data_converter=pydantic_data_converter)
    for name, text in histories.items():
        assert not [s for s in secrets if s in readable(text)], f"a secret is in {name}"
        history = WorkflowHistory.from_json(name.split("__")[0], text)
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, f"{name}: {result.replay_failure}"
