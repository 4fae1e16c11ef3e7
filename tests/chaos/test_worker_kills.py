"""The worker process SIGKILLed mid-incident loses and duplicates nothing.

The same scripted incident (declare, stage changes, 30 updates typed or marked with :mega:, a Jira issue,
a second Zoom call, reminders, resolve) runs once undisturbed and once with its worker killed with SIGKILL
and restarted at seeded points; what it leaves in Slack, Zoom and Jira must be the same.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowExecutionStatus

from domain.naming import incident_workflow_id
from domain.vocab import Status
from tests.chaos.harness import (
    ChaosStack,
    ScriptRun,
    Step,
    StepHooks,
    chaos_stack,
    incident_script,
    incident_worker,
    interrupted_tasks,
    run_script,
    running_activity,
    slow_slack,
    snapshot,
    wait_idle,
)

SEED = 20261127
KILLS = 10
# Kills in flight: this many seconds after the step's answer, while Slack answers slowly (from the step on
# every Web API call takes SLOW_SLACK_MS, and takes effect only then), so the kill lands inside the step's
# Slack activities; without it they take milliseconds and a kill mostly misses them. A killed activity is
# retried only after its 30 s start-to-close timeout, and the incident's main loop waits for it; the other
# kills wait until the incident is idle and cost the ~10 s a workflow task spends on the dead worker's
# sticky queue. More kills in flight would take the file past its 4 minute budget.
IN_FLIGHT = 3
DELAYS = (0.0, 0.01, 0.05, 0.15)
SLOW_SLACK_MS = 400
UPDATES_WITH_TWO = 12  # the two-worker incident is shorter: it pays one 30 s activity timeout at most


@dataclass(frozen=True)
class KillPoint:
    after: int  # index of the step after which the worker is killed
    step: str
    delay: float | None  # None: once every effect so far is done (the worker is idle)

    def __str__(self) -> str:
        when = "once idle" if self.delay is None else f"+{self.delay:.2f}s, in flight"
        return f"after #{self.after} {self.step} ({when})"


def kill_points(steps: list[Step], seed: int, count: int, in_flight: int) -> list[KillPoint]:
    """`count` distinct step boundaries (the last one is after resolve), `in_flight` of them with a delay."""
    rng = random.Random(seed)
    chosen = rng.sample(range(len(steps)), count)
    delays = {i: rng.choice(DELAYS) for i in chosen[:in_flight]}
    return [KillPoint(i, steps[i].name, delays.get(i)) for i in sorted(chosen)]


def diff(expected: Any, actual: Any, path: str = "") -> str:
    """Where two snapshots differ, one line per difference: `path: - lost`, `path: + extra`."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        keys = list(dict.fromkeys([*expected, *actual]))
        parts = [diff(expected.get(k), actual.get(k), f"{path}.{k}" if path else str(k)) for k in keys]
        return "\n".join(p for p in parts if p)
    if isinstance(expected, list) and isinstance(actual, list):
        lines: list[str] = []
        matcher = difflib.SequenceMatcher(a=[_key(e) for e in expected], b=[_key(a) for a in actual])
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op == "equal" or (op == "replace" and i2 - i1 == j2 - j1):
                lines += [diff(expected[i1 + k], actual[j1 + k], f"{path}[{i1 + k}]") for k in range(i2 - i1)]
                continue
            lines += [f"{path}[{i}]: - {_short(expected[i])}" for i in range(i1, i2)]
            lines += [f"{path}[{j}]: + {_short(actual[j])}" for j in range(j1, j2)]
        return "\n".join(line for line in lines if line)
    return "" if expected == actual else f"{path}: {_short(expected)} -> {_short(actual)}"


def _key(item: Any) -> str:
    """What lines two list items up: a message by its text, so a changed reply shows under its message."""
    return str(item["text"]) if isinstance(item, dict) and "text" in item else json.dumps(item)


def _short(item: Any) -> str:
    text = json.dumps(item, ensure_ascii=False)
    return text if len(text) <= 160 else text[:157] + "..."


@dataclass
class Outcome:
    """A finished scripted incident: its snapshot and what it took."""

    snapshot: dict[str, Any]
    run: ScriptRun
    seconds: float
    interrupted: dict[str, int]


async def scripted(tmp: Path, name: str, hooks: Callable[[ChaosStack], StepHooks] | None = None) -> Outcome:
    """The scripted incident on a fresh deployment with one worker process."""
    started = time.monotonic()
    async with chaos_stack(tmp / name) as chaos:
        worker = chaos.new_worker("worker")
        await worker.start()
        try:
            run = await run_script(chaos, incident_script(), hooks(chaos) if hooks else None)
        except BaseException:
            print(chaos.worker_logs())
            raise
        seconds = time.monotonic() - started
        return Outcome(snapshot(chaos, run.channel_id), run, seconds, await interrupted_tasks(chaos, run))


class Killer:
    """SIGKILLs the worker after the chosen steps and starts a fresh one at once."""

    def __init__(self, chaos: ChaosStack, points: dict[int, KillPoint]) -> None:
        self.chaos = chaos
        self.points = points
        self.killed: list[str] = []

    async def before(self, i: int, run: ScriptRun) -> None:
        point = self.points.get(i)
        if point is not None and point.delay is not None:
            slow_slack(self.chaos, SLOW_SLACK_MS)

    async def after(self, i: int, run: ScriptRun) -> None:
        point = self.points.get(i)
        if point is None:
            return
        doing = "nothing in flight"
        if point.delay is None:
            await wait_idle(run)
        else:
            await asyncio.sleep(point.delay)
            running = await running_activity(self.chaos, run.incident_id, within=0.2)
            doing = f"during {running[0]}" if running else "no activity seen"
        began = time.monotonic()
        worker = self.chaos.workers[0]
        await worker.kill()
        self.chaos.sandbox.state.clear_faults()  # the Slack calls it was in finish meanwhile
        await worker.start()
        self.killed.append(f"{point}: {doing}, restarted in {time.monotonic() - began:.1f}s")


async def test_sigkilled_worker_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    steps = incident_script()
    points = {p.after: p for p in kill_points(steps, SEED, KILLS, IN_FLIGHT)}
    killers: list[Killer] = []

    def killer(chaos: ChaosStack) -> Killer:
        killers.append(Killer(chaos, points))
        return killers[-1]

    # The undisturbed run alongside the faulted one (a failing one cancels the other).
    async with asyncio.TaskGroup() as runs:
        undisturbed = runs.create_task(scripted(tmp_path, "reference"))
        disturbed = runs.create_task(scripted(tmp_path, "faulted", killer))
    reference, faulted = undisturbed.result(), disturbed.result()
    slow = ", ".join(f"{name} {seconds:.0f}s" for name, seconds in faulted.run.took if seconds > 5)
    [killed] = [k.killed for k in killers]
    report = (
        f"seed {SEED}; kill points:\n  " + "\n  ".join(killed) + f"\nreference run {reference.seconds:.1f}s, "
        f"faulted run {faulted.seconds:.1f}s (slow steps: {slow}); {faulted.interrupted}; answers that said "
        f"nothing certain: {faulted.run.uncertain}; sent again (never admitted): {faulted.run.reissued}"
    )
    print(report)
    assert len(killed) == KILLS, report
    assert faulted.snapshot == reference.snapshot, f"{report}\n{diff(reference.snapshot, faulted.snapshot)}"


def update_texts(messages: list[str]) -> list[str]:
    """The scripted updates (`Update 07: ...`) among `messages`, in their order."""
    return [found[0] for m in messages if (found := re.search(r"Update \d\d: [a-z0-9 ]+", m))]


async def test_two_workers_one_sigkilled_the_other_carries_the_incident(tmp_path: Path) -> None:
    steps = incident_script(updates=UPDATES_WITH_TWO)
    kill_after = next(i for i, s in enumerate(steps) if s.name == f"update-{UPDATES_WITH_TWO // 2 + 1:02d}")
    victims: list[str] = []

    async def pair() -> Outcome:
        started = time.monotonic()
        async with chaos_stack(tmp_path / "pair") as chaos:
            for name in ("worker-a", "worker-b"):
                await chaos.new_worker(name).start()

            class KillOne:
                async def before(self, i: int, run: ScriptRun) -> None:
                    if i == kill_after:
                        slow_slack(chaos, SLOW_SLACK_MS)

                async def after(self, i: int, run: ScriptRun) -> None:
                    if i == kill_after:  # the worker posting the update, while it posts it
                        doing, victim = await incident_worker(chaos, run.incident_id)
                        await victim.kill()
                        chaos.sandbox.state.clear_faults()
                        victims.append(f"{victim.name} after #{i} {steps[i].name} (during {doing})")

            try:
                run = await run_script(chaos, steps, KillOne())
            except BaseException:
                print(chaos.worker_logs())
                raise
            [dead] = [w for w in chaos.workers if w.process and w.process.returncode is not None]
            [alive] = [w for w in chaos.workers if w.process and w.process.returncode is None]
            assert dead.started == alive.started == 1, "nothing was restarted"
            handle = chaos.client.get_workflow_handle(
                incident_workflow_id(run.incident_id, chaos.stack.settings.task_queue)
            )
            assert (await chaos.stack.state(run.incident_id)).status is Status.RESOLVED
            assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
            seconds = time.monotonic() - started
            return Outcome(snapshot(chaos, run.channel_id), run, seconds, await interrupted_tasks(chaos, run))

    async def alone() -> dict[str, Any]:
        async with chaos_stack(tmp_path / "alone") as chaos:
            await chaos.new_worker("worker").start()
            run = await run_script(chaos, steps)
            return snapshot(chaos, run.channel_id)

    async with asyncio.TaskGroup() as runs:
        undisturbed, disturbed = runs.create_task(alone()), runs.create_task(pair())
    reference, faulted = undisturbed.result(), disturbed.result()
    slow = ", ".join(f"{name} {seconds:.0f}s" for name, seconds in faulted.run.took if seconds > 5)
    report = (
        f"killed {victims} and not restarted; run {faulted.seconds:.1f}s (slow steps: {slow}); "
        f"{faulted.interrupted}; answers that said nothing certain: {faulted.run.uncertain}"
    )
    print(report)
    assert victims, report
    expected = [f"Update {n:02d}: " for n in range(1, UPDATES_WITH_TWO + 1)]
    for name, channel in faulted.snapshot["channels"].items():
        posts = [m["text"] for m in channel["messages"]]
        if name in ("status", "exec"):
            [overview] = channel["messages"]
            posts = overview["replies"]
        landed = update_texts(posts)
        assert [u[: len("Update 00: ")] for u in landed] == expected, f"{report}\n{name}: {landed}"
    assert faulted.snapshot == reference, f"{report}\n{diff(reference, faulted.snapshot)}"
