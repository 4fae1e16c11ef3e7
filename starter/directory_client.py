"""The deployment's incident directory (`<task queue>-directory`), as the ingress and CLI reach it: incident
IDs, alert dedup keys and channel lookups. Updates start the directory if this is the deployment's first
incident."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from domain.models import DedupClaim, DedupGrant, DirectoryState
from domain.naming import directory_workflow_id
from domain.storm import StormLimit
from workflows import details
from workflows.directory import IncidentDirectoryWorkflow

DIRECTORY_ATTEMPTS = 4  # 0.1 + 0.2 + 0.4 s of backoff at most
# Directory updates this process has in flight at once; more wait here rather than be refused by the server
# (an alert storm brings hundreds of new keys at once).
MAX_UPDATES = 8
PERMANENT_RPC = frozenset(
    {RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNAUTHENTICATED}
)


class Directory:
    """The directory's updates and queries, with this process's sharing of concurrent claims."""

    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue
        self.workflow_id = directory_workflow_id(task_queue)
        self._claims: dict[str, asyncio.Future[DedupGrant]] = {}
        self._updates = asyncio.Semaphore(MAX_UPDATES)

    async def allocate_id(self, request_id: str | None = None) -> int:
        """The next incident ID; the same `request_id` again gets the same ID (see `declare`)."""
        update_id = None if request_id is None else f"allocate-{request_id}"
        return await self._update(IncidentDirectoryWorkflow.allocate_id, update_id=update_id)

    async def _update(self, update: Any, *args: Any, update_id: str | None = None) -> Any:
        """An update on the directory, starting it first if this is the deployment's first incident.

        An update that lands while the directory continues as new is aborted by the server; it is retried
        a few times (within Slack's 3 s). A retried allocation may skip an ID, never reuse one. With
        `update_id` every attempt is the same update: Temporal applies it once per directory run and hands
        a repeat the first one's result.
        """
        for attempt in range(DIRECTORY_ATTEMPTS):
            start = WithStartWorkflowOperation(  # one operation object per call
                IncidentDirectoryWorkflow.run,
                DirectoryState(),
                id=self.workflow_id,
                task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                static_summary=details.DIRECTORY_SUMMARY,  # only when this call starts it
                static_details=details.directory_details_static(self.task_queue),
            )
            try:
                async with self._updates:
                    return await self.client.execute_update_with_start_workflow(
                        update, *args, start_workflow_operation=start, id=update_id
                    )
            except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
                permanent = isinstance(err, RPCError) and err.status in PERMANENT_RPC
                task = asyncio.current_task()  # cancelled: our caller's deadline, not the server, ended it
                cancelled = task is not None and task.cancelling() > 0
                if permanent or cancelled or attempt == DIRECTORY_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.1 * 2**attempt)
        raise AssertionError("unreachable")

    async def claim(self, key: str, storm: StormLimit | None = None) -> DedupGrant:
        """One directory update per key at a time in this process: a burst of identical alerts shares it
        (the server runs at most 10 updates per workflow at once)."""
        pending = self._claims.get(key)
        if pending is not None:  # a follower: the incident is the leader's, declared once
            grant = await asyncio.shield(pending)
            return DedupGrant(incident_id=grant.incident_id, created=False, storm=grant.storm)
        pending = asyncio.ensure_future(self._claim_now(key, storm))
        self._claims[key] = pending
        pending.add_done_callback(lambda _: self._claims.pop(key, None))
        return await asyncio.shield(pending)

    async def _claim_now(self, key: str, storm: StormLimit | None) -> DedupGrant:
        claim = DedupClaim(key=key, storm=storm)
        grant: DedupGrant = await self._update(IncidentDirectoryWorkflow.claim, claim)
        return grant

    async def split(self, key: str) -> int:
        """A new incident ID for an alert key that leaves the storm (`/incident split`)."""
        incident_id: int = await self._update(IncidentDirectoryWorkflow.split, key)
        return incident_id

    async def query(self, query: Any, arg: str) -> Any:
        handle = self.client.get_workflow_handle(self.workflow_id)
        try:
            return await handle.query(query, arg)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
