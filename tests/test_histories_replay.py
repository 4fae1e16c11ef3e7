"""Every stored history in tests/histories/ replays against the current workflow code.

A failure here means a change to workflow logic would break incidents that are already running: guard the
change with `workflow.patched` (see CONTRIBUTING.md) instead of regenerating the histories.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker import WORKFLOWS

HISTORIES = Path(__file__).resolve().parent / "histories"
FILES = sorted(HISTORIES.glob("*.json"))


def workflow_id_of(path: Path) -> str:
    """`incident-1__full-lifecycle.json` -> `incident-1` (files are named `<workflow-id>__<label>.json`)."""
    workflow_id, sep, _label = path.stem.partition("__")
    assert sep and workflow_id, f"{path.name}: name it <workflow-id>__<label>.json"
    return workflow_id


@pytest.fixture(params=FILES, ids=[p.stem for p in FILES])
def history(request: pytest.FixtureRequest) -> WorkflowHistory:
    path: Path = request.param
    loaded = WorkflowHistory.from_json(workflow_id_of(path), path.read_text())
    assert loaded.events, f"{path.name} holds no events"
    return loaded


def test_there_are_histories_to_replay() -> None:
    assert FILES, f"no histories in {HISTORIES}: run `python -m tests.histories.record`"


async def test_history_replays_on_current_code(history: WorkflowHistory) -> None:
    replayer = Replayer(workflows=list(WORKFLOWS), data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, (
        f"{history.workflow_id}: no longer replays: {result.replay_failure!r}"
    )
