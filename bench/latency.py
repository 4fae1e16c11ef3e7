"""Sequential figures: one request at a time, each timed until its effect landed everywhere it should."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from bench import actions, history
from bench.actions import Incident
from bench.floor import FloorWorkflow
from bench.slack import TAKEN
from bench.stack import Stack
from bench.stats import LOST, dist

WARM_UP = 3
# Between sequential samples: people post updates seconds apart, so each sample starts from an idle
# incident. A request that reaches Temporal while the previous activity's completion is being processed
# can wait ~35 ms more (see README); `update_to_broadcast_back_to_back_ms` measures that case.
PAUSE = 0.2


async def floor_signal(stack: Stack, handle: Any) -> float:
    """Milliseconds from sending the signal until its activity ran (inf if not within 10 s)."""
    seq = next(stack.floor_seq)
    at = time.perf_counter()
    await handle.signal(FloorWorkflow.poke, seq)
    for _ in range(10_000):
        arrived = stack.beacons.arrived.get(seq)
        if arrived is not None:
            return (arrived - at) * 1000
        await asyncio.sleep(0.001)
    return LOST


async def floor_latency(stack: Stack, runs: int) -> dict[str, Any]:
    handle = await stack.client.start_workflow(
        FloorWorkflow.run, id=f"floor-seq-{uuid.uuid4().hex[:8]}", task_queue=stack.floor_queue
    )
    for _ in range(WARM_UP):
        await floor_signal(stack, handle)
    before = len([e async for e in handle.fetch_history_events()])
    samples = []
    for _ in range(runs):
        await asyncio.sleep(PAUSE)
        samples.append(await floor_signal(stack, handle))
    await asyncio.sleep(PAUSE)  # the activity's completion is recorded after it ran
    after = len([e async for e in handle.fetch_history_events()])
    return {
        "signal_to_activity_ms": dist(samples),
        "history_events_per_signal": round((after - before) / runs, 2),
    }


async def warroom_latency(stack: Stack, channels: int, runs: int) -> tuple[dict[str, Any], list[Incident]]:
    """Declare -> overview, update -> reply and reaction -> reply in every one of `channels` channels."""
    targets = stack.channels(channels)
    declare_ms, incidents = [], []
    for _ in range(runs + 1):
        await asyncio.sleep(PAUSE)
        sent, incident_id = await actions.declare(stack, channels)
        declare_ms.append(await actions.landed(stack, sent, targets))
        incident = await actions.incident_after(stack, sent, incident_id, channels) if incident_id else None
        if incident is not None:
            incidents.append(incident)
    if not incidents:
        raise RuntimeError("no incident could be declared; see the logs")
    first = incidents[0]
    for _ in range(WARM_UP):  # the ingress learns the channel; the worker has the workflow cached
        await actions.landed(stack, await actions.update(stack, first, channels), targets)
    counter = history.Counter(stack.client, stack.task_queue, [first.id])
    await counter.start()
    update_ms, ack_ms = [], []
    for _ in range(runs):
        await asyncio.sleep(PAUSE)
        sent = await actions.update(stack, first, channels)
        ack_ms.append(sent.ack.ms if sent.ack.says(*TAKEN) else LOST)
        update_ms.append(await actions.landed(stack, sent, targets))
    per_update = await counter.per_update()
    back_to_back = []  # the next update leaves the moment the previous one landed
    for _ in range(runs):
        sent = await actions.update(stack, first, channels)
        back_to_back.append(await actions.landed(stack, sent, targets))
    reaction_ms = []
    for _ in range(runs):
        await asyncio.sleep(PAUSE)
        reaction_ms.append(await actions.landed(stack, await actions.react(stack, first), targets))
    figures = {
        "declare_to_overview_ms": dist(declare_ms[1:]),  # the first declare starts the directory
        "update_ack_ms": dist(ack_ms),
        "update_to_broadcast_ms": dist(update_ms),
        "update_to_broadcast_back_to_back_ms": dist(back_to_back),
        "reaction_to_broadcast_ms": dist(reaction_ms),
        "history_events_per_update": per_update,
    }
    return figures, incidents


async def rate_limited_fanout(stack: Stack, incident: Incident, burst: int) -> dict[str, Any]:
    """Slack's ~1 post per second per channel: one update alone, then `burst` updates back to back."""
    state = stack.sandbox.state
    state.rate_limiter.clear()
    state.rate_limit_per_channel = True
    since = time.time()
    try:
        await asyncio.sleep(1.1)
        alone = await actions.landed(stack, await actions.update(stack, incident, 10), incident.broadcast)
        await asyncio.sleep(1.1)
        sent = [await actions.update(stack, incident, 10) for _ in range(burst)]
        await stack.posts.wait([s.mark for s in sent], lambda _: incident.broadcast, 30 + 2 * burst)
    finally:
        state.rate_limit_per_channel = False
    done = [stack.posts.done_at(s.mark, incident.broadcast) for s in sent]
    each = [s.ms_until(d) for s, d in zip(sent, done, strict=True)]
    limited = [c for c in state.calls_for("chat.postMessage") if c.status == 429 and c.at >= since]
    finished = [d for d in done if d is not None]
    return {
        "channels": len(incident.broadcast),
        "one_update_ms": round(alone, 1),
        "burst": burst,
        "burst_each_ms": dist(each),
        "burst_all_done_ms": round((max(finished) - sent[0].at) * 1000, 1) if finished else None,
        "http_429": len(limited),
    }


async def alert_latency(stack: Stack, runs: int, source: str = "alertmanager") -> dict[str, Any]:
    """Alertmanager (or PagerDuty) webhook -> overview in the broadcast channel, if the route exists."""
    if not await stack.ingress[1].has_route(f"/alerts/{source}"):
        return {"skipped": f"this build has no POST /alerts/{source} route"}
    targets = stack.channels(1)
    ack_ms, overview_ms = [], []
    for _ in range(runs):
        sent = await actions.alert(stack, source)
        ack_ms.append(sent.ack.ms if sent.ack.status == 202 else LOST)
        overview_ms.append(await actions.landed(stack, sent, targets))
    return {"ack_ms": dist(ack_ms), "alert_to_overview_ms": dist(overview_ms)}
