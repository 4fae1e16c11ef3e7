"""Load: many incidents open at once and updates arriving on schedule; what holds, and what it costs."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.service import RPCError

from bench import actions, history
from bench.actions import Incident, Sent
from bench.floor import FloorWorkflow
from bench.pacing import Step, paced
from bench.slack import TAKEN
from bench.stack import Stack
from bench.stats import LOST, dist, pct

HOLD_P99_MS = 1000.0
DECLARE_CONCURRENCY = 8  # the directory takes at most 10 updates in flight


async def declare_many(stack: Stack, count: int) -> tuple[list[Incident], dict[str, Any]]:
    """Declares `count` incidents (1 broadcast channel) through the ingress, 8 at a time; a declare that
    fails is asked again once (the way a person would run the command again)."""
    gate = asyncio.Semaphore(DECLARE_CONCURRENCY)

    async def one() -> tuple[Sent, int | None]:
        async with gate:
            return await actions.declare(stack, 1)

    started = time.perf_counter()
    results = await asyncio.gather(*(one() for _ in range(count)))
    failures = [sent.ack for sent, i in results if i is None]
    results += await asyncio.gather(*(one() for _ in failures))
    declared = [(sent, i) for sent, i in results if i is not None]
    targets = stack.channels(1)
    await stack.posts.wait([s.mark for s, _ in declared], lambda _: targets, 30 + count / 10)
    elapsed = time.perf_counter() - started
    incidents = []
    for sent, incident_id in declared:
        if incident_id is not None and stack.posts.done_at(sent.mark, targets) is not None:
            found = await actions.incident_after(stack, sent, incident_id, 1)
            if found is not None:
                incidents.append(found)
    figures = {
        "asked": count,
        "declared": len(declared),
        "failed_then_asked_again": len(failures),
        "failure_answers": sorted({f"{a.status}: {a.text[:100]}" for a in failures})[:3],
        "with_overview": len(incidents),
        "seconds": round(elapsed, 1),
        "declares_per_s": round(len(incidents) / elapsed, 1),
        "ack_ms": dist([s.ack.ms for s, _ in declared]),
    }
    return incidents, figures


async def warm(stack: Stack, incidents: list[Incident]) -> None:
    """One update per incident, 8 at a time: the ingress learns each channel, the worker caches each run."""
    gate = asyncio.Semaphore(DECLARE_CONCURRENCY)

    async def one(incident: Incident) -> Sent:
        async with gate:
            return await actions.update(stack, incident)

    sent = await asyncio.gather(*(one(i) for i in incidents))
    await stack.posts.wait([s.mark for s in sent], lambda _: stack.channels(1), 30)


PARTS = ("worker", "ingress", "server", "floor_worker", "bench")


def _cpu_per_update(before: dict[str, float], after: dict[str, float], updates: int) -> dict[str, Any]:
    return {part: round((after[part] - before[part]) * 1000 / max(updates, 1), 2) for part in PARTS}


def _cores(before: dict[str, float], after: dict[str, float], elapsed: float) -> dict[str, Any]:
    """Cores each part kept busy, and `others`: what the rest of the machine used meanwhile (the machine
    is shared: a step with others > 0 measured warroom on less than the whole machine)."""
    used = {part: round((after[part] - before[part]) / elapsed, 2) for part in PARTS}
    busy = after["machine"] - before["machine"]
    all_cpu = after["machine_all"] - before["machine_all"]
    ours = sum(after[part] - before[part] for part in PARTS)
    used["others"] = round(max(busy - ours, 0.0) / elapsed, 2)
    used["machine_busy_share"] = round(busy / all_cpu, 2) if all_cpu else 0
    return used


async def update_load(stack: Stack, incidents: list[Incident], rate: float, duration: float) -> Step:
    """`/incident update` at `rate` per second, spread over `incidents`, for `duration` seconds."""
    cpu_before, started = stack.cpu(), time.perf_counter()
    per_incident: Counter[int] = Counter()

    async def fire(i: int) -> tuple[Sent, Incident]:
        incident = incidents[i % len(incidents)]
        per_incident[incident.id] += 1
        return await actions.update(stack, incident), incident

    out = await paced(rate, duration, fire)
    sent: list[tuple[Sent, Incident]] = out.results
    by_mark = {s.mark: incident.broadcast for s, incident in sent}
    drained = await stack.posts.wait(list(by_mark), by_mark.__getitem__, 10 + duration * 2)
    elapsed = time.perf_counter() - started
    cpu_after = stack.cpu()
    acked = [s.ack.ms for s, _ in sent if s.ack.says(*TAKEN)]
    broadcast = [s.ms_until(stack.posts.done_at(s.mark, i.broadcast)) for s, i in sent]
    p99 = pct(broadcast, 99)
    kept_up = out.send_rate >= rate * 0.9
    figures = {
        "offered_per_s": rate,
        "sent_per_s": round(out.send_rate, 1),
        "updates": out.sent,
        "ack_ms": dist([s.ack.ms for s, _ in sent]),  # what Slack waited for, whatever the answer said
        "ack_failures": out.sent - len(acked),
        "acks_queued": sum(s.ack.says("Update accepted") for s, _ in sent),  # taken, posted after the answer
        "update_to_broadcast_ms": dist(broadcast),
        "drained": drained == len(by_mark),
        "cpu_ms_per_update": _cpu_per_update(cpu_before, cpu_after, drained),
        "cores_used": _cores(cpu_before, cpu_after, elapsed),
        "worker_rss_mb": round(stack.worker_rss(), 1),
    }
    holds = p99 < HOLD_P99_MS and len(acked) == out.sent and kept_up
    if not kept_up:
        figures["note"] = "the benchmark could not send at the offered rate"
    return Step(rate, holds, figures)


async def floor_workflows(stack: Stack, count: int) -> list[WorkflowHandle[Any, Any]]:
    run = uuid.uuid4().hex[:6]
    queue = stack.floor_queue
    return [
        await stack.client.start_workflow(FloorWorkflow.run, id=f"floor-{run}-{i}", task_queue=queue)
        for i in range(count)
    ]


async def floor_load(
    stack: Stack, handles: list[WorkflowHandle[Any, Any]], rate: float, duration: float
) -> Step:
    """Signals at `rate` per second spread over the floor workflows; each runs one no-op activity."""
    cpu_before = stack.cpu()
    started = time.perf_counter()

    async def fire(i: int) -> tuple[int, float, bool]:
        seq = next(stack.floor_seq)
        at = time.perf_counter()
        try:
            await handles[i % len(handles)].signal(FloorWorkflow.poke, seq, rpc_timeout=timedelta(seconds=10))
        except RPCError:
            return seq, at, False
        return seq, at, True

    out = await paced(rate, duration, fire)
    results: list[tuple[int, float, bool]] = out.results
    arrived = stack.beacons.arrived
    for _ in range(int((10 + duration * 2) / 0.05)):
        if all(seq in arrived for seq, _, _ in results):
            break
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    cpu_after = stack.cpu()
    latencies = [(arrived[seq] - at) * 1000 if seq in arrived else LOST for seq, at, _ in results]
    failed = sum(1 for _, _, ok in results if not ok)
    kept_up = out.send_rate >= rate * 0.9
    figures = {
        "offered_per_s": rate,
        "sent_per_s": round(out.send_rate, 1),
        "signals": out.sent,
        "signal_failures": failed,
        "signal_to_activity_ms": dist(latencies),
        "cpu_ms_per_signal": _cpu_per_update(cpu_before, cpu_after, out.sent - failed),
        "cores_used": _cores(cpu_before, cpu_after, elapsed),
    }
    return Step(rate, pct(latencies, 99) < HOLD_P99_MS and not failed and kept_up, figures)


async def drive_to_continue_as_new(
    stack: Stack, incident: Incident, limit: int, within: float
) -> dict[str, Any]:
    """Posts updates one at a time (each waits for its broadcast) until the incident continues as new."""
    first_run = await history.run_id(stack.client, stack.task_queue, incident.id)
    started, sent = time.perf_counter(), 0
    while sent < limit and time.perf_counter() - started < within:
        for _ in range(25):
            await actions.landed(stack, await actions.update(stack, incident), incident.broadcast)
        sent += 25
        if await history.run_id(stack.client, stack.task_queue, incident.id) != first_run:
            break
    summary = await history.run_summary(stack.client, stack.task_queue, incident.id, first_run)
    return {**summary, "updates_sent": sent, "seconds": round(time.perf_counter() - started, 1)}
