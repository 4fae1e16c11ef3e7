"""`warroom dev` stopped with Ctrl-C in the middle of an incident and started again on the same state folder
resumes it: the same incident channel, and stage, update, a :mega: reaction and resolve land in the same
broadcast thread as before the restart. The real `warroom dev` in a subprocess, on free ports."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import PollWorkflowTaskQueueRequest
from temporalio.testing import WorkflowEnvironment

from domain.settings import Settings
from sandbox.client import SandboxClient
from sandbox.persist import SandboxFileError
from starter.dev import DEV_USER, DevOptions, metrics_port_warning, run_dev, start_fresh
from starter.dev_resume import settle_previous_run
from tests.conftest import eventually
from tests.temporal_server import free_port

WARROOM = str(Path(sys.executable).parent / "warroom")


def dev_env(tmp_path: Path, http_port: int) -> dict[str, str]:
    """No Slack, Temporal or warroom settings from the machine running the tests."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "TEMPORAL_", "WARROOM_", "ZOOM_", "JIRA_", "GOOGLE_"))
    }
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    return {
        **env,
        "TEMPORAL_CONFIG_FILE": str(empty),
        "WARROOM_HTTP_PORT": str(http_port),
        "WARROOM_WORKER_METRICS_PORT": "0",
        "WARROOM_LOG_LEVEL": "warning",
    }


@asynccontextmanager
async def warroom_dev(tmp_path: Path, ports: dict[str, int]) -> AsyncIterator[SandboxClient]:
    """`warroom dev` until it prints that it runs; Ctrl-C (SIGINT) on the way out, as a person stops it."""
    proc = await asyncio.create_subprocess_exec(
        WARROOM,
        "dev",
        "--state-dir",
        str(tmp_path / "state"),
        "--temporal-port",
        str(ports["temporal"]),
        "--ui-port",
        str(ports["ui"]),
        "--sandbox-port",
        str(ports["sandbox"]),
        cwd=tmp_path,
        env=dev_env(tmp_path, ports["http"]),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        while not any("warroom is running" in line for line in seen):
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
            assert line, "warroom dev exited:\n" + "".join(seen)
            seen.append(line.decode())
        # Keep reading its output, so a full pipe never blocks it; shown if the test fails.
        drain = asyncio.create_task(_read_all(proc.stdout, seen))
        try:
            async with SandboxClient(f"http://127.0.0.1:{ports['sandbox']}") as sb:
                yield sb
        except BaseException:
            print("".join(seen))
            raise
        finally:
            drain.cancel()
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), timeout=30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def _read_all(stream: asyncio.StreamReader, seen: list[str]) -> None:
    while line := await stream.readline():
        seen.append(line.decode())


async def channel_named(sb: SandboxClient, prefix: str) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        channels = (await sb.state())["channels"]
        return next((c for c in channels if c["name"].startswith(prefix)), None)

    return await eventually(found, within=20)


async def broadcast_thread(sb: SandboxClient, broadcast: str, count: int) -> dict[str, Any]:
    """The broadcast channel's one overview, once its thread has `count` replies."""

    async def thread() -> dict[str, Any]:
        messages = await sb.messages(broadcast)
        assert len(messages) == 1, messages
        assert len(messages[0]["replies"]) >= count, messages[0]["replies"]
        return messages[0]

    return await eventually(thread, within=20)


async def test_warroom_dev_resumes_an_open_incident_after_ctrl_c(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("temporal", "ui", "sandbox", "http")}
    async with warroom_dev(tmp_path, ports) as sb:
        general = (await channel_named(sb, "general"))["id"]
        broadcast = (await channel_named(sb, "incidents"))["id"]
        declared = await sb.command(DEV_USER, general, "declare sev2 Checkout latency above 2s")
        assert declared["status"] == 200, declared
        channel = (await channel_named(sb, "inc-1-"))["id"]
        before = await broadcast_thread(sb, broadcast, 0)

    assert (tmp_path / "state" / "slack-sandbox.json").exists()
    async with warroom_dev(tmp_path, ports) as sb:
        assert (await channel_named(sb, "inc-1-"))["id"] == channel
        assert (await channel_named(sb, "incidents"))["id"] == broadcast
        for text in ("stage identified bad deploy", "update Rolling back payments-api"):
            answer = await sb.command(DEV_USER, channel, text)
            # Answered by the new worker at once, not "degraded" after waiting on the old one's sticky queue.
            assert answer["status"] == 200 and "degraded" not in str(answer["body"]), answer
        said = await sb.message(user_id=DEV_USER, channel_id=channel, text="p99 back to 300ms")
        reacted = await sb.react(user_id=DEV_USER, channel_id=channel, ts=said["ts"], reaction="mega")
        assert reacted["status"] == 200, reacted
        await broadcast_thread(sb, broadcast, 3)  # the reaction's broadcast before the next command
        for text in ("stage mitigated rolled back", "resolve Rolled back"):
            answer = await sb.command(DEV_USER, channel, text)
            assert answer["status"] == 200, answer
        after = await broadcast_thread(sb, broadcast, 5)

    assert after["ts"] == before["ts"]  # the same overview: the thread goes on
    replies = [r["text"] for r in after["replies"]]
    for expected in ("Identified", "Rolling back payments-api", "p99 back to 300ms", "Mitigated", "Resolved"):
        assert any(expected.lower() in r.lower() for r in replies), (expected, replies)


async def test_an_unreadable_sandbox_file_stops_warroom_dev_in_one_line(tmp_path: Path) -> None:
    """Before Temporal starts; `warroom` prints a RuntimeError as `warroom: <message>`, exit 2."""
    (tmp_path / "slack-sandbox.json").write_text('{"format": "warroom-slack-sandbox", "version": 0}')
    with pytest.raises(SandboxFileError) as caught:
        no_slack = Settings().model_copy(update={"slack_bot_token": None})  # the sandbox, whatever the env
        await run_dev(no_slack, DevOptions(state_dir=tmp_path, temporal_port=free_port()))
    assert isinstance(caught.value, RuntimeError) and str(caught.value) == (
        f"cannot resume the Slack sandbox from {tmp_path / 'slack-sandbox.json'} (saved by a version "
        "that writes format 0, not 1); `warroom dev --fresh` starts over (it forgets the saved incidents too)"
    )
    assert not (tmp_path / "temporal.db").exists()  # stopped before Temporal started


def test_fresh_removes_both_and_says_so_in_one_line(tmp_path: Path) -> None:
    assert start_fresh(tmp_path) == f"starting fresh: nothing saved in {tmp_path} yet"
    for name in ("temporal.db", "temporal.db-wal", "slack-sandbox.json", "temporal.log"):
        (tmp_path / name).write_text("x")
    assert start_fresh(tmp_path) == (
        f"starting fresh: removed {tmp_path / 'temporal.db'} and {tmp_path / 'slack-sandbox.json'}"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["temporal.log"]


def test_a_taken_metrics_port_is_one_warning_naming_port_and_setting() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        warning = metrics_port_warning(Settings(WARROOM_WORKER_METRICS_PORT=port))
    assert warning == (
        f"warning: port {port} is in use, so the worker serves no metrics; set WARROOM_WORKER_METRICS_PORT "
        "to a free port (or 0 to turn them off)"
    )
    assert metrics_port_warning(Settings(WARROOM_WORKER_METRICS_PORT=free_port())) is None
    assert metrics_port_warning(Settings(WARROOM_WORKER_METRICS_PORT=0)) is None


async def test_a_task_the_last_run_took_and_never_answered_is_waited_out_before_warroom_dev_runs(
    temporal: WorkflowEnvironment,
) -> None:
    """A worker stopped while Temporal handed it a workflow task leaves that task started and unanswered:
    the restarted `warroom dev` says so and waits until Temporal takes it back (here after a 2 s task
    timeout; incidents have Temporal's 10 s)."""
    client = temporal.client
    queue = f"left-{uuid.uuid4().hex[:8]}"
    handle = await client.start_workflow(
        "AnyWorkflow", id=f"held-{queue}", task_queue=queue, task_timeout=timedelta(seconds=2)
    )
    # The old worker's poll: it takes the task, and nothing ever answers it.
    poll = PollWorkflowTaskQueueRequest(
        namespace=client.namespace, task_queue=TaskQueue(name=queue), identity="the-last-run"
    )
    taken = await client.workflow_service.poll_workflow_task_queue(poll)
    assert taken.workflow_execution.workflow_id == handle.id
    said: list[str] = []

    assert await settle_previous_run(client, queue, said.append, within=0.5) == [handle.id]
    assert said == [
        f"waiting (<= 10 s) for Temporal to take back the workflow task the last run left open: {handle.id}",
        f"still held after 0.5 s, so their next command may be answered 'degraded': {handle.id}",
    ]
    said.clear()
    assert await settle_previous_run(client, queue, said.append, within=10) == []
    assert len(said) == 1  # it waits, and has nothing more to say once Temporal took the task back
    # Taken back: scheduled again, for the new worker; nothing to wait for.
    assert await settle_previous_run(client, queue, said.append, within=0) == []
    assert len(said) == 1
