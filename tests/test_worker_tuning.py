"""Worker tuning (README "Worker tuning"): WARROOM_MAX_CACHED_WORKFLOWS,
WARROOM_MAX_CONCURRENT_WORKFLOW_TASKS and WARROOM_MAX_CONCURRENT_ACTIVITIES reach the Temporal worker,
out-of-range values stop warroom with the variable's name, and a worker caching a single workflow still
serves every incident (evicted ones replay)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

import worker as worker_process
from domain.models import StatusUpdate
from domain.settings import Settings
from domain.vocab import Severity
from sandbox import SandboxServer
from tests.conftest import RESPONDER, eventually, running_stack
from tests.test_incident_workflow import wait_quiet
from tests.test_observability import free_port, scrape, value

TUNING = (
    "WARROOM_MAX_CACHED_WORKFLOWS",
    "WARROOM_MAX_CONCURRENT_WORKFLOW_TASKS",
    "WARROOM_MAX_CONCURRENT_ACTIVITIES",
)


@pytest.fixture(autouse=True)
def no_tuning_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TUNING:
        monkeypatch.delenv(name, raising=False)


def tuning_of(client: Client) -> tuple[int | None, ...]:
    """What the Worker that build_worker makes from the environment was given (its WorkerConfig). Each on
    its own task queue: the SDK refuses two workers on one queue in one process."""
    settings = Settings(WARROOM_TASK_QUEUE=f"tuning-{uuid.uuid4()}")
    config = worker_process.build_worker(client, settings).config()
    return (
        config.get("max_cached_workflows"),
        config.get("max_concurrent_workflow_tasks"),
        config.get("max_concurrent_activities"),
    )


async def test_the_variables_reach_the_worker(
    temporal: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tuning_of(temporal.client) == (500, 100, 100)
    monkeypatch.setenv("WARROOM_MAX_CACHED_WORKFLOWS", "7")
    monkeypatch.setenv("WARROOM_MAX_CONCURRENT_WORKFLOW_TASKS", "9")
    monkeypatch.setenv("WARROOM_MAX_CONCURRENT_ACTIVITIES", "11")
    assert tuning_of(temporal.client) == (7, 9, 11)
    monkeypatch.setenv("WARROOM_MAX_CACHED_WORKFLOWS", "0")  # no cache: every workflow task replays
    assert tuning_of(temporal.client)[0] == 0


def test_the_defaults_are_documented() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for name, default in zip(TUNING, (500, 100, 100), strict=True):
        assert f"| `{name}` | `{default}` |" in readme, f"README's settings table lacks {name}"


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("WARROOM_MAX_CACHED_WORKFLOWS", "-1", "greater than or equal to 0"),
        ("WARROOM_MAX_CACHED_WORKFLOWS", "100001", "less than or equal to 100000"),
        ("WARROOM_MAX_CACHED_WORKFLOWS", "lots", "valid integer"),
        ("WARROOM_MAX_CONCURRENT_WORKFLOW_TASKS", "1", "greater than or equal to 2"),
        ("WARROOM_MAX_CONCURRENT_WORKFLOW_TASKS", "10001", "less than or equal to 10000"),
        ("WARROOM_MAX_CONCURRENT_ACTIVITIES", "0", "greater than or equal to 1"),
        ("WARROOM_MAX_CONCURRENT_ACTIVITIES", "2.5", "valid integer"),
    ],
)
def test_out_of_range_values_are_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, raw: str, expected: str
) -> None:
    monkeypatch.setenv(name, raw)
    with pytest.raises(ValidationError) as err:
        Settings()
    [error] = err.value.errors()
    assert error["loc"] == (name,)
    assert name in str(err.value) and expected in str(err.value)


def test_the_worker_command_stops_with_exit_2_naming_the_variable() -> None:
    env = {**os.environ, "WARROOM_MAX_CONCURRENT_WORKFLOW_TASKS": "1", "TEMPORAL_ADDRESS": "127.0.0.1:1"}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "warroom"), "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "WARROOM_MAX_CONCURRENT_WORKFLOW_TASKS" in done.stderr
    assert "greater than or equal to 2" in done.stderr
    assert "Traceback" not in done.stderr


async def test_a_one_workflow_cache_still_serves_two_incidents(
    temporal: WorkflowEnvironment, sandbox: SandboxServer
) -> None:
    """Updates alternate between two incidents, so each evicts the other from the worker's cache of one: its
    next workflow task replays the history first. Every update still lands once, in order, in its own
    incident, and the worker's sticky-cache metrics show the misses."""
    port = free_port()
    client = await Client.connect(
        temporal.client.service_client.config.target_host,
        namespace=temporal.client.namespace,
        data_converter=pydantic_data_converter,
        runtime=worker_process.telemetry(f"127.0.0.1:{port}"),
    )
    async with running_stack(temporal, sandbox, client=client, WARROOM_MAX_CACHED_WORKFLOWS=1) as stack:
        assert stack.settings.max_cached_workflows == 1
        titles = {"Checkout latency above 2s": Severity.SEV2, "Search results stale": Severity.SEV3}
        ids = [await stack.incidents.declare(t, s, declared_by=RESPONDER) for t, s in titles.items()]
        for n in range(3):
            for incident_id in ids:
                update = StatusUpdate(text=f"INC-{incident_id} step {n}", actor=RESPONDER)
                await stack.incidents.post_update(incident_id, update)
        for incident_id in ids:
            await wait_quiet(stack, incident_id)

        expected = {i: [f"INC-{i} step {n}" for n in range(3)] for i in ids}
        for incident_id in ids:
            state = await stack.state(incident_id)
            assert [e.text for e in state.timeline if e.kind == "update"] == expected[incident_id]
            assert state.updates_posted == 3
        for target in stack.broadcast:
            overviews = await stack.slack.messages(target)
            assert len(overviews) == 2
            for title, incident_id in zip(titles, ids, strict=True):
                [overview] = [o for o in overviews if title in o["text"]]
                replies = [r["text"] for r in overview["replies"]]
                assert [[step for step in expected[incident_id] if step in r] for r in replies] == [
                    [step] for step in expected[incident_id]
                ]

        async def missed() -> str:
            text = await scrape(f"http://127.0.0.1:{port}/metrics")
            assert value(text, "temporal_sticky_cache_miss_total") >= 5  # at least each update but the first
            assert value(text, "temporal_sticky_cache_size") <= 1
            return text

        await eventually(missed)
