"""A warroom deployment whose workers are real processes that a test can SIGKILL, a scripted incident
driven through Slack that survives degraded answers, and a normalized snapshot of everything it left in
Slack, Zoom and Jira.

The Temporal dev server, the Slack sandbox (with the Zoom, Meet and Jira stand-ins) and the web ingress run
in the test process; only the workers are subprocesses (`warroom worker`, configured from the environment
exactly as in production), so killing one loses everything it had in memory and in flight.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import SecretStr
from temporalio.api.enums.v1 import PendingActivityState, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

import worker as worker_process
from domain.models import CommandReply
from domain.naming import incident_workflow_id, reminder_workflow_id
from domain.settings import Settings
from sandbox import SandboxServer
from sandbox.client import SandboxClient
from sandbox.models import BOT_USER_ID
from starter.incidents import Incidents
from starter.serve import start_web
from starter.slack_app import DEGRADED
from tests.conftest import RESPONDER, SIGNING_SECRET, TOKEN, Stack, make_settings, start_temporal
from tests.test_integrations import overview_text, settled

HUMAN = "U0HUMAN"  # posts the messages a responder then marks with :mega:
TITLE = "Payments API returns 502"
# Answers after which the command may or may not have reached the incident: "degraded" (the ingress
# stopped waiting for Temporal) and the generic internal error (what an update cut off by the ingress's
# deadline produced before starter/slack_app.py learned WorkflowUpdateRPCTimeoutOrCancelledError).
UNCERTAIN = (DEGRADED.split("{", 1)[0], ":x: warroom hit an internal error")
# A killed worker's activity is retried only after its 30 s start-to-close timeout, and the first workflow
# task after a kill may wait on the dead worker's sticky queue for 10 s: waits are sized for several.
SETTLE_WITHIN = 150.0
# Settings a worker process must not inherit from whoever runs the tests.
_OWN_PREFIXES = ("WARROOM_", "SLACK_", "TEMPORAL_", "ZOOM_", "JIRA_", "GOOGLE_")


# --- worker processes -----------------------------------------------------------------------------------


def worker_environment(settings: Settings, temporal_address: str) -> dict[str, str]:
    """The environment of a `warroom worker` that has exactly `settings` (plus PATH and the like)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
    for name, value in settings.model_dump(by_alias=True).items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[name] = str(value).lower() if isinstance(value, bool) else str(value)
    env.update(
        {
            "TEMPORAL_ADDRESS": temporal_address,
            "WARROOM_WORKER_METRICS_PORT": "0",
            "WARROOM_LOG_LEVEL": "warning",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def worker_command() -> list[str]:
    """`warroom worker`: the console script installed next to this interpreter. (`python -m starter.cli`
    would do nothing: starter/cli.py has no `if __name__ == "__main__"` guard.)"""
    script = Path(sys.executable).with_name("warroom")
    if script.exists():
        return [str(script), "worker"]
    return [sys.executable, "-c", "import sys; from starter.cli import main; main(sys.argv[1:])", "worker"]


def _die_with_parent() -> None:
    """In the forked child (Linux): SIGKILL when the test process dies, so no worker outlives a killed or
    timed-out test run and keeps polling a task queue nobody uses."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


class WorkerProcess:
    """One `warroom worker` subprocess at a time; `kill()` is SIGKILL, `start()` a fresh process.

    Every generation appends to the same log file, under a header naming its pid.
    """

    def __init__(self, name: str, env: dict[str, str], client: Client, task_queue: str, log: Path) -> None:
        self.name = name
        self.env = env
        self.client = client
        self.task_queue = task_queue
        self.log = log
        self.process: asyncio.subprocess.Process | None = None
        self.started = 0  # generations started

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    async def start(self, within: float = 60.0) -> None:
        """Starts a new process and returns once it polls both the workflow and the activity task queue."""
        if self.process is not None and self.process.returncode is None:
            raise RuntimeError(f"worker {self.name} is already running (pid {self.process.pid})")
        self.started += 1
        with self.log.open("ab") as out:
            out.write(f"\n=== {self.name} generation {self.started} ===\n".encode())
            out.flush()
            self.process = await asyncio.create_subprocess_exec(
                *worker_command(),
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal is for pytest; the harness ends workers
                preexec_fn=_die_with_parent,
            )
        await self._wait_polling(within)

    async def _wait_polling(self, within: float) -> None:
        process = self.process
        assert process is not None
        identity = f"{process.pid}@"  # the SDK's default worker identity is "<pid>@<host>"
        deadline = asyncio.get_running_loop().time() + within
        while True:
            if process.returncode is not None:
                raise RuntimeError(
                    f"worker {self.name} exited with {process.returncode}; log:\n{self.log_tail()}"
                )
            polling = [
                await self._polls(kind, identity)
                for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)
            ]
            if all(polling):
                return
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(
                    f"worker {self.name} did not poll within {within}s; log:\n{self.log_tail()}"
                )
            await asyncio.sleep(0.05)

    async def _polls(self, kind: TaskQueueType.ValueType, identity: str) -> bool:
        request = DescribeTaskQueueRequest(
            namespace=self.client.namespace,
            task_queue=TaskQueue(name=self.task_queue),
            task_queue_type=kind,
        )
        described = await self.client.workflow_service.describe_task_queue(request)
        return any(p.identity.startswith(identity) for p in described.pollers)

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no activity completion, no goodbye to the server."""
        process = self.process
        if process is None or process.returncode is not None:
            raise RuntimeError(f"worker {self.name} is not running")
        process.send_signal(signal.SIGKILL)
        await process.wait()

    async def stop(self) -> None:
        """At the end of a test: SIGTERM (the CLI shuts down cleanly), SIGKILL after 10 s."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.send_signal(signal.SIGKILL)
            await process.wait()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


# --- the deployment ---------------------------------------------------------------------------------------


@dataclass
class ChaosStack:
    """The ingress, Temporal and the sandbox in this process; workers as subprocesses."""

    stack: Stack  # conftest's Stack, so tests.test_integrations.settled and friends work on it
    log_dir: Path
    worker_env: dict[str, str]
    workers: list[WorkerProcess] = field(default_factory=list)

    @property
    def client(self) -> Client:
        return self.stack.temporal.client

    @property
    def sandbox(self) -> SandboxServer:
        return self.stack.sandbox

    def new_worker(self, name: str) -> WorkerProcess:
        worker = WorkerProcess(
            name, self.worker_env, self.client, self.stack.settings.task_queue, self.log_dir / f"{name}.log"
        )
        self.workers.append(worker)
        return worker

    def worker_logs(self) -> str:
        return "\n".join(f"--- {w.name} (pid {w.pid}):\n{w.log_tail()}" for w in self.workers)


@asynccontextmanager
async def chaos_stack(log_dir: Path) -> AsyncIterator[ChaosStack]:
    """A fresh dev server, sandbox and ingress (no worker yet: `new_worker(...).start()`)."""
    await asyncio.to_thread(log_dir.mkdir, parents=True, exist_ok=True)
    async with AsyncExitStack() as exit_stack:
        env = await exit_stack.enter_async_context(await start_temporal())
        sandbox = await exit_stack.enter_async_context(
            SandboxServer(token=TOKEN, signing_secret=SIGNING_SECRET)
        )
        control = await exit_stack.enter_async_context(SandboxClient(sandbox.url))
        general = (await control.create_channel("general"))["id"]
        broadcast = [(await control.create_channel(name))["id"] for name in ("status", "exec")]
        settings = make_settings(sandbox, broadcast, WARROOM_CALL_PROVIDER="zoom")
        slack = worker_process.slack_client(settings)
        web = await start_web(settings, env.client, slack, host="127.0.0.1", port=0)
        exit_stack.push_async_callback(web.stop)
        sandbox.ingress_url = f"http://127.0.0.1:{web.port}/slack/events"
        incidents = Incidents.from_settings(env.client, settings)
        stack = Stack(env, sandbox, control, incidents, settings, web, broadcast, general)
        target = env.client.service_client.config.target_host
        chaos = ChaosStack(stack, log_dir, worker_environment(settings, target))
        try:
            yield chaos
        finally:
            for worker in chaos.workers:
                await worker.stop()


async def running_activity(
    chaos: ChaosStack, incident_id: int, within: float = 1.0
) -> tuple[str, WorkerProcess] | None:
    """The first of the incident's activities seen running within `within` seconds (its type and the
    worker process running it), or None."""
    handle = chaos.client.get_workflow_handle(
        incident_workflow_id(incident_id, chaos.stack.settings.task_queue)
    )
    by_pid = {str(w.pid): w for w in chaos.workers if w.pid is not None}
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        described = await handle.describe()
        for activity in described.raw_description.pending_activities:
            worker = by_pid.get(activity.last_worker_identity.split("@", 1)[0])
            if activity.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED and worker is not None:
                return activity.activity_type.name, worker
        await asyncio.sleep(0.005)
    return None


async def incident_worker(chaos: ChaosStack, incident_id: int) -> tuple[str, WorkerProcess]:
    """The worker process busy with the incident and what it is doing: running one of its activities (if
    one starts within a second), else holding it in its sticky cache (it completed its last workflow task)."""
    running = await running_activity(chaos, incident_id)
    if running is not None:
        return running
    handle = chaos.client.get_workflow_handle(
        incident_workflow_id(incident_id, chaos.stack.settings.task_queue)
    )
    identity = ""
    async for event in handle.fetch_history_events():
        if event.HasField("workflow_task_completed_event_attributes"):
            identity = event.workflow_task_completed_event_attributes.identity
    by_pid = {str(w.pid): w for w in chaos.workers if w.pid is not None}
    worker = by_pid.get(identity.split("@", 1)[0])
    assert worker is not None, f"no worker of this test ran incident {incident_id} ({identity})"
    return "sticky cache", worker


async def interrupted_tasks(chaos: ChaosStack, run: ScriptRun) -> dict[str, int]:
    """What the kills cost, from the histories of the incident and its reminders: activity attempts that
    were retried (nothing else fails here: a killed worker's attempt times out after 30 s) and workflow
    tasks that timed out (started on a worker that died, or waiting on a dead worker's sticky queue)."""
    client = chaos.client
    queue = chaos.stack.settings.task_queue
    ids = [incident_workflow_id(run.incident_id, queue)]
    ids += [reminder_workflow_id(f"{run.incident_id}-{n}", queue) for n in range(1, run.reminders + 1)]
    counts = {"activity attempts retried": 0, "workflow tasks timed out": 0}
    for workflow_id in ids:
        async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
            if event.HasField("activity_task_started_event_attributes"):
                counts["activity attempts retried"] += (
                    event.activity_task_started_event_attributes.attempt - 1
                )
            elif event.HasField("workflow_task_timed_out_event_attributes"):
                counts["workflow tasks timed out"] += 1
    return counts


# --- the scripted incident ----------------------------------------------------------------------------------


@dataclass
class Step:
    """One thing a person does in Slack; `run` returns once Slack showed them warroom's answer."""

    name: str
    run: Callable[[ScriptRun], Awaitable[None]]


@dataclass
class ScriptRun:
    """What the steps share while the script runs."""

    chaos: ChaosStack
    incident_id: int = 0
    channel_id: str = ""
    reminders: int = 0
    answers: list[str] = field(default_factory=list)  # every answer a person saw, in order
    uncertain: list[str] = field(default_factory=list)  # answers that did not say how a step went
    reissued: list[str] = field(default_factory=list)  # steps sent again: Temporal never had them
    took: list[tuple[str, float]] = field(default_factory=list)  # each step and how long it took, in s

    async def command(self, step: str, text: str, channel: str | None = None) -> str:
        """A slash command that happens exactly once, even when the ingress could not say how it went.

        A degraded (or "internal error") answer means the ingress stopped waiting, not that Temporal
        refused: the update may be admitted (its ID is Slack's trigger ID) and run once a worker takes it.
        So the answer is then read from the update itself; only an update Temporal never had is sent
        again, as a person would.
        """
        for _ in range(5):
            result = await self.chaos.stack.slack.command(
                user_id=RESPONDER, channel_id=channel or self.channel_id, text=text
            )
            body = result.get("body")
            answer = str(body.get("text") or "") if isinstance(body, dict) else str(body or "")
            if result["status"] == 200 and not answer.startswith(UNCERTAIN):
                self.answers.append(answer)
                return answer
            if not self.incident_id:
                raise AssertionError(f"{step}: the declare itself was not answered: {result}")
            self.uncertain.append(f"{step}: {answer[:40] or result.get('error')}")
            outcome = await self.update_outcome(str(result["trigger_id"]))
            if outcome is not None:
                self.answers.append(outcome)
                return outcome
            self.reissued.append(step)
        raise AssertionError(f"{step}: never admitted after 5 attempts")

    async def update_outcome(self, update_id: str) -> str | None:
        """The reply of the incident's update `update_id` once it completes; None if Temporal never had it."""
        handle = self.chaos.client.get_workflow_handle(
            incident_workflow_id(self.incident_id, self.chaos.stack.settings.task_queue)
        )
        update = handle.get_update_handle(update_id, result_type=CommandReply)
        try:
            reply: CommandReply = await asyncio.wait_for(update.result(), SETTLE_WITHIN)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        except WorkflowUpdateFailedError as err:
            raise AssertionError(f"update {update_id} was rejected: {err.cause}") from err
        return reply.text

    async def marked_message(self, step: str, text: str) -> None:
        """A person posts `text` in the incident channel and a responder marks it with :mega:; returns once
        warroom has posted it as an update.

        A reaction event the ingress did not acknowledge is delivered again, as Slack retries it. Waiting
        for the post keeps the script's order: warroom resolves a marked message only once its queue of
        updates is empty, so an update sent meanwhile would be posted before it.
        """
        control = self.chaos.stack.slack
        posted = await control.message(HUMAN, self.channel_id, text)
        for _ in range(5):
            reacted = await control.react(RESPONDER, self.channel_id, str(posted["ts"]), "mega")
            if reacted.get("status") == 200:
                break
            self.uncertain.append(f"{step}: reaction event {reacted.get('statuses')}")
        else:
            raise AssertionError(f"{step}: the reaction event was never acknowledged: {reacted}")
        await self.wait_posted(step, f"> {text}")

    async def wait_posted(self, step: str, words: str) -> None:
        """Until a message of warroom's in the incident channel contains `words`."""
        state = self.chaos.sandbox.state
        channel = state.channel(self.channel_id, viewer=None)
        deadline = asyncio.get_running_loop().time() + SETTLE_WITHIN
        while not any(
            m.user == BOT_USER_ID and words in (m.text or "") for m in list(channel.messages.values())
        ):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{step}: warroom never posted {words!r}")
            await asyncio.sleep(0.05)


async def _declare(run: ScriptRun) -> None:
    stack = run.chaos.stack
    answer = await run.command("declare", f"declare sev2 {TITLE}", channel=stack.general)
    found = re.search(r"\*INC-(\d+)\*", answer)
    assert found, answer
    run.incident_id = int(found[1])
    # The channel from Slack itself: no query to a worker that may be gone.
    prefix = f"inc-{run.incident_id}-"

    async def channel() -> str:
        for _ in range(int(SETTLE_WITHIN / 0.05)):
            named = [c for c in stack.sandbox.state.channels.values() if c.name.startswith(prefix)]
            if named:
                return named[0].id
            await asyncio.sleep(0.05)
        raise AssertionError(f"no channel {prefix}* was created")

    run.channel_id = await channel()


def _in_channel(name: str, text: str, expect: str) -> Step:
    """A command in the incident channel whose answer contains `expect` (anything else is a rejection)."""

    async def go(run: ScriptRun) -> None:
        answer = await run.command(name, text)
        assert expect in answer, f"{name}: {answer}"

    return Step(name, go)


def _remind(name: str, text: str) -> Step:
    async def go(run: ScriptRun) -> None:
        answer = await run.command(name, f"remind in 3s {text}")
        assert "Reminder `" in answer, answer
        run.reminders += 1

    return Step(name, go)


def _marked(name: str, text: str) -> Step:
    async def go(run: ScriptRun) -> None:
        await run.marked_message(name, text)

    return Step(name, go)


def incident_script(updates: int = 30) -> list[Step]:
    """Declare, 3 stage changes, `updates` updates (alternately `/incident update` and a person's message
    marked with :mega:), a Jira issue, a second Zoom call, 3 reminders, resolve."""
    stages = {
        updates // 6: ("identified", "bad deploy of payments-api 4.2"),
        updates // 2: ("mitigated", "rolled back to 4.1"),
        (5 * updates) // 6: ("investigating", "errors are back on one shard"),
    }
    extras = {
        updates // 3: [
            _in_channel("jira", "jira Roll back payments-api 4.2", "Creating the Jira issue"),
            _remind("remind-1", "check the error budget"),
        ],
        updates // 2 + 2: [
            _in_channel("call", "call zoom", "the link will be in the channel bookmarks"),
            _remind("remind-2", "page the DBA if it recurs"),
        ],
        updates - 3: [_remind("remind-3", "write the review")],
    }
    steps = [Step("declare", _declare)]
    for n in range(updates):
        if n in stages:
            stage, context = stages[n]
            steps.append(_in_channel(f"stage-{stage}", f"stage {stage} {context}", "Stage set to"))
        steps += extras.get(n, [])
        text = f"Update {n + 1:02d}: " + ("error rate is falling" if n % 3 else "shard 3 still slow")
        if n % 2 == 0:
            steps.append(_in_channel(f"update-{n + 1:02d}", f"update {text}", "Update "))
        else:
            steps.append(_marked(f"marked-{n + 1:02d}", text))
    resolve = "resolve rolled back; payments healthy for 15 minutes"
    steps.append(_in_channel("resolve", resolve, " resolved."))
    return steps


class StepHooks(Protocol):
    """What a faulted run does around each step of the script."""

    async def before(self, i: int, run: ScriptRun) -> None:
        """Just before step `i` runs."""

    async def after(self, i: int, run: ScriptRun) -> None:
        """Right after step `i` was answered."""


async def run_script(chaos: ChaosStack, steps: Sequence[Step], hooks: StepHooks | None = None) -> ScriptRun:
    """Runs the steps in order (with `hooks` around each), then waits until everything settled: every
    queued effect, the incident workflow's completion and every reminder's."""
    run = ScriptRun(chaos)
    loop = asyncio.get_running_loop()
    for i, step in enumerate(steps):
        began = loop.time()
        if hooks is not None:
            await hooks.before(i, run)
        await step.run(run)
        if hooks is not None:
            await hooks.after(i, run)
        run.took.append((step.name, loop.time() - began))
    began = loop.time()
    await wait_settled(run)
    run.took.append(("settled", loop.time() - began))
    return run


def slow_slack(chaos: ChaosStack, ms: int) -> None:
    """Every Slack Web API call answers `ms` later (and takes effect then) until `chaos.sandbox.state.
    clear_faults()`: a kill meanwhile lands inside a call, whose effect may happen after its worker died."""
    chaos.sandbox.state.add_fault("*", delay_ms=ms, count=-1)


async def wait_idle(run: ScriptRun) -> None:
    """Until the incident has done everything asked of it so far (tests.test_integrations.settled)."""
    deadline = asyncio.get_running_loop().time() + SETTLE_WITHIN
    while True:  # settled() gives up after 15 s; a killed worker's activity alone takes 30 s to retry
        try:
            await settled(run.chaos.stack, run.incident_id)
            return
        except (AssertionError, RPCError):  # RPCError: a query that timed out on a dead worker's queue
            if asyncio.get_running_loop().time() > deadline:
                raise


async def wait_settled(run: ScriptRun) -> None:
    """Until the incident is idle, its workflow completed and every reminder's too."""
    client, queue = run.chaos.client, run.chaos.stack.settings.task_queue
    await wait_idle(run)
    handles = [client.get_workflow_handle(incident_workflow_id(run.incident_id, queue))]
    handles += [
        client.get_workflow_handle(reminder_workflow_id(f"{run.incident_id}-{n}", queue))
        for n in range(1, run.reminders + 1)
    ]
    for handle in handles:
        await asyncio.wait_for(handle.result(), SETTLE_WITHIN)
        described = await handle.describe()
        assert described.status == WorkflowExecutionStatus.COMPLETED, (handle.id, described.status)


# --- what it left behind ------------------------------------------------------------------------------------

# Zoom, Meet and Jira run beside the Slack work (workflows/incident.py): where a call's or an issue's
# announcement lands among the updates depends on the vendor's latency, so only which ones and how many
# are compared, not where.
BESIDE_THE_UPDATES = (":telephone_receiver:", ":ticket:")
_TS = re.compile(r"\b\d{10}\.\d{6}\b")
_PERMALINK_TS = re.compile(r"/p\d{16}\b")
_IDS = re.compile(r"\b[CDG][A-Z0-9]{8,}\b")
_SINCE_DECLARE = re.compile(r"Time from declare:[^\n]*")  # the resolve summary's milestones: "Identified 4s"
_SPAN = re.compile(r"\d+(?:ms|[dhms])( \d+(?:ms|[dhms]))*")  # durations.human: 350ms, 4s, 1m 4s, 2d 3h


class Normalizer:
    """Rewrites what differs between two equivalent runs: the sandbox's port, channel IDs, message ts, Zoom
    join URLs and meeting IDs (numbered in creation order), the times from declare in the timeline summary.
    Jira keys are deterministic and stay."""

    def __init__(self, sandbox: SandboxServer) -> None:
        state = sandbox.state
        self.base_url = sandbox.url
        self.names = {c.id: (f"dm-{c.im_user}" if c.is_im else c.name) for c in state.channels.values()}
        self.calls: list[tuple[str, str]] = []
        for n, meeting in enumerate(sandbox.zoom.meetings, start=1):
            self.calls += [(str(meeting["join_url"]), f"<zoom-{n}>"), (str(meeting["id"]), f"<zoom-id-{n}>")]
        for n, space in enumerate(sandbox.meet.spaces, start=1):
            self.calls.append((str(space["meetingUri"]), f"<meet-{n}>"))

    def __call__(self, text: str) -> str:
        text = text.replace(self.base_url, "<sandbox>")
        for raw, stable in self.calls:
            text = text.replace(raw, stable)
        text = _IDS.sub(lambda m: self.names.get(m[0], m[0]), text)
        text = _PERMALINK_TS.sub("/p<ts>", text)
        text = _SINCE_DECLARE.sub(lambda m: _SPAN.sub("<span>", m[0]), text)
        return _TS.sub("<ts>", text)


def snapshot(chaos: ChaosStack, incident_channel: str) -> dict[str, Any]:
    """Everything the incident left, comparable between runs.

    Per channel (the incident's, #status, #exec): each top-level message (author, everything it shows)
    with its replies in order (warroom's own messages in order, calls and tickets as a set, people's
    messages apart: where they fall among warroom's depends on timing), the bookmarks, description and
    topic. The DMs per user; how many Zoom meetings, Meet spaces, Jira issues and remote links.
    """
    sandbox = chaos.sandbox
    state = sandbox.state
    norm = Normalizer(sandbox)

    def shown(message: dict[str, Any]) -> str:
        files = "".join(f" [file {f['name']}]" for f in message.get("files") or [])
        return norm(f"{message['user']}: {overview_text(message)}{files}")

    channels: dict[str, Any] = {}
    for channel_id in (incident_channel, *chaos.stack.broadcast):
        channel = state.channel(channel_id, viewer=None)
        ordered: list[dict[str, Any]] = []
        beside: list[str] = []
        people: list[str] = []
        for m in state.channel_messages(channel):
            text, replies = shown(m), [shown(r) for r in m["replies"]]
            if m["user"] != BOT_USER_ID:
                people.append(text)  # posted by the script itself, at its own pace
            elif str(m["text"]).startswith(BESIDE_THE_UPDATES):
                assert not replies, (text, replies)
                beside.append(text)
            else:
                ordered.append({"text": text, "replies": replies})
        channels[norm(channel_id)] = {
            "messages": ordered,
            "calls_and_tickets": sorted(beside),
            "people": people,
            "bookmarks": [norm(f"{b.title} {b.link}") for b in channel.bookmarks],
            "purpose": norm(channel.purpose["value"]),
            "topic": norm(channel.topic["value"]),
        }
    dms: dict[str, list[str]] = {}
    for user_id, dm_id in sorted(state.dms.items()):
        dm = state.channel(dm_id, viewer=None)
        # Reminders fall due seconds apart; a worker killed just then may deliver a later one first.
        dms[user_id] = sorted(norm(m["text"]) for m in state.channel_messages(dm) if m["user"] == BOT_USER_ID)
    return {
        "channels_created": sorted(c.name for c in state.channels.values() if not c.is_im),
        "channels": channels,
        "dms": dms,
        "zoom_meetings": len(sandbox.zoom.meetings),
        "meet_spaces": len(sandbox.meet.spaces),
        "jira_issues": len(sandbox.jira.issues),
        "jira_remote_links": sum(len(i["remote_links"]) for i in sandbox.jira.issues),
    }
