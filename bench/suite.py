"""The whole benchmark: each figure measured on one server, in-memory then file-backed."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import history, latency, load
from bench.pacing import Step, highest_holding, ramp
from bench.stack import Stack, running_stack


@dataclass(frozen=True)
class Plan:
    runs: int  # samples per sequential latency figure
    ack_rates: tuple[int, ...]
    ack_seconds: float
    step_seconds: float  # each step of a throughput ramp
    open_incidents: int  # incidents the load is spread over
    many_incidents: int  # open incidents for the second RSS figure; 0 skips it
    continue_as_new_limit: int  # updates driven into one incident; 0 skips it
    burst: int  # back-to-back updates under Slack's per-channel rate limit
    everything: bool  # False: the subset repeated on the file-backed server


FULL = Plan(20, (10, 50, 200), 10, 6, 100, 1000, 1500, 5, True)
QUICK = Plan(6, (10, 50, 200), 2, 2, 100, 0, 100, 3, True)


def file_backed(plan: Plan) -> Plan:
    return dataclasses.replace(
        plan, ack_rates=(50,), many_incidents=0, continue_as_new_limit=0, everything=False
    )


def _steps(steps: list[Step]) -> list[dict[str, Any]]:
    return [{"rate": s.rate, "holds": s.holds, **s.figures} for s in steps]


def _say(stack: Stack, what: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {stack.mode}: {what}", flush=True)


async def _floor(stack: Stack, plan: Plan) -> dict[str, Any]:
    _say(stack, "floor")
    figures = await latency.floor_latency(stack, plan.runs)
    handles = await load.floor_workflows(stack, plan.open_incidents)
    steps = await ramp(lambda rate: load.floor_load(stack, handles, rate, plan.step_seconds), 100, 1600)
    return {**figures, "max_per_s": highest_holding(steps), "ramp": _steps(steps)}


async def _sequential(stack: Stack, plan: Plan, result: dict[str, Any]) -> None:
    _say(stack, "sequential latencies, 1 broadcast channel")
    result["latency_1_channel"], _ = await latency.warroom_latency(stack, 1, plan.runs)
    if not plan.everything:
        return
    _say(stack, "sequential latencies, 10 broadcast channels")
    result["latency_10_channels"], ten = await latency.warroom_latency(stack, 10, plan.runs)
    _say(stack, "fan-out under Slack's per-channel rate limit")
    result["rate_limited_fanout"] = await latency.rate_limited_fanout(stack, ten[0], plan.burst)
    result["alertmanager"] = await latency.alert_latency(stack, plan.runs)
    result["pagerduty"] = await latency.alert_latency(stack, plan.runs, "pagerduty")


async def _load(stack: Stack, plan: Plan, result: dict[str, Any]) -> None:
    _say(stack, f"declaring {plan.open_incidents} incidents")
    result["worker_rss_mb"] = {"idle": round(stack.worker_rss(), 1)}
    incidents, result["declare_open_incidents"] = await load.declare_many(stack, plan.open_incidents)
    await load.warm(stack, incidents)
    result["worker_rss_mb"][str(stack.open_incidents)] = round(stack.worker_rss(), 1)
    await _sequential(stack, plan, result)
    result["ingress_ack"] = {}
    for rate in plan.ack_rates:
        _say(stack, f"ingress ack at {rate} req/s")
        step = await load.update_load(stack, incidents, rate, plan.ack_seconds)
        result["ingress_ack"][str(rate)] = step.figures
    _say(stack, f"sustained updates over {len(incidents)} open incidents")
    counter = history.Counter(stack.client, stack.task_queue, [i.id for i in incidents[:10]])
    await counter.start()
    step_counter = history.Counter(stack.client, stack.task_queue, [i.id for i in incidents[:10]])

    async def counted(rate: float) -> Step:
        """One step, with the history events per update its own updates added (10 incidents)."""
        await step_counter.start()
        step = await load.update_load(stack, incidents, rate, plan.step_seconds)
        step.figures["history_events_per_update"] = await step_counter.per_update()
        return step

    steps = await ramp(counted, 50, 800)
    result["sustained"] = {"max_per_s": highest_holding(steps), "ramp": _steps(steps)}
    result["history_events_per_update_under_load"] = await counter.per_update()  # the whole ramp


async def _lifetime(stack: Stack, plan: Plan, result: dict[str, Any]) -> None:
    if plan.continue_as_new_limit:
        _say(stack, "one incident until it continues as new")
        incidents, _ = await load.declare_many(stack, 1)
        first_run = await history.run_id(stack.client, stack.task_queue, incidents[0].id)
        result["continue_as_new"] = await load.drive_to_continue_as_new(
            stack, incidents[0], plan.continue_as_new_limit, 90
        )
        _say(stack, "replaying that whole run (a cache miss)")
        result["cache_miss"] = await history.replay_cost(
            stack.client, stack.task_queue, incidents[0].id, first_run
        )
    if plan.many_incidents > stack.open_incidents:
        _say(stack, f"declaring up to {plan.many_incidents} open incidents")
        _, result["declare_many"] = await load.declare_many(stack, plan.many_incidents - stack.open_incidents)
        await asyncio.sleep(1)
        result["worker_rss_mb"][str(stack.open_incidents)] = round(stack.worker_rss(), 1)


async def run_server(mode: str, plan: Plan, work_dir: Path, workers: int) -> dict[str, Any]:
    started = time.perf_counter()
    async with running_stack(mode, work_dir / mode, workers) as stack:
        result: dict[str, Any] = {"floor": await _floor(stack, plan)}
        await _load(stack, plan, result)
        await _lifetime(stack, plan, result)
        result["open_incidents"] = stack.open_incidents
        result["server_rss_mb"] = round(stack.server_rss(), 1)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result
