"""What a status update costs in Temporal history, and how often an incident continues as new."""

from __future__ import annotations

import time
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from domain.naming import incident_workflow_id

UPDATE_ACCEPTED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
CONTINUED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW


async def events(
    client: Client, task_queue: str, incident_id: int, run_id: str | None = None
) -> list[HistoryEvent]:
    handle = client.get_workflow_handle(incident_workflow_id(incident_id, task_queue), run_id=run_id)
    return [e async for e in handle.fetch_history_events()]


async def run_id(client: Client, task_queue: str, incident_id: int) -> str:
    description = await client.get_workflow_handle(incident_workflow_id(incident_id, task_queue)).describe()
    return description.run_id


async def run_summary(client: Client, task_queue: str, incident_id: int, run: str) -> dict[str, Any]:
    """Events, bytes and accepted updates in one run of an incident."""
    found = await events(client, task_queue, incident_id, run)
    updates = sum(1 for e in found if e.event_type == UPDATE_ACCEPTED)
    return {
        "events": len(found),
        "bytes": sum(e.ByteSize() for e in found),
        "updates": updates,
        "continued_as_new": bool(found) and found[-1].event_type == CONTINUED,
        "events_per_update": round(len(found) / updates, 2) if updates else None,
    }


class Counter:
    """History of some incidents before and after a phase: events added per update accepted meanwhile."""

    def __init__(self, client: Client, task_queue: str, incident_ids: list[int]) -> None:
        self.client = client
        self.task_queue = task_queue
        self.ids = incident_ids
        self.before: dict[int, tuple[int, int]] = {}

    async def _sizes(self) -> dict[int, tuple[int, int]]:
        sizes = {}
        for i in self.ids:
            found = await events(self.client, self.task_queue, i)
            sizes[i] = (len(found), sum(1 for e in found if e.event_type == UPDATE_ACCEPTED))
        return sizes

    async def start(self) -> None:
        self.before = await self._sizes()

    async def per_update(self) -> float | None:
        """None when an incident continued as new meanwhile (its current run is another history)."""
        after = await self._sizes()
        added = sum(after[i][0] - self.before[i][0] for i in self.ids)
        updates = sum(after[i][1] - self.before[i][1] for i in self.ids)
        return round(added / updates, 2) if updates > 0 and added > 0 else None


async def replay_cost(
    client: Client, task_queue: str, incident_id: int, run: str, times: int = 5
) -> dict[str, Any]:
    """What a cache miss costs the worker: replaying one whole run of an incident (the run `run`, e.g. one
    that reached continue-as-new), timed in this process with the worker's workflows and data converter."""
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.worker import Replayer

    from worker import WORKFLOWS

    handle = client.get_workflow_handle(incident_workflow_id(incident_id, task_queue), run_id=run)
    found = await handle.fetch_history()
    replayer = Replayer(workflows=list(WORKFLOWS), data_converter=pydantic_data_converter)
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        await replayer.replay_workflow(found)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {
        "events": len(found.events),
        "replay_ms": {"p50": round(samples[len(samples) // 2], 1), "max": round(samples[-1], 1)},
    }
