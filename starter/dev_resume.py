"""What a restarted `warroom dev` settles before it says it runs: the previous run's worker is gone, and the
first command after the restart must be answered at once, not "degraded" after Temporal waits on it.

Two things can still point at the old worker:

- its sticky queue: the next task of each running workflow would wait ~10 s there. Reset, so they go to the
  new worker's normal queue at once.
- a workflow task the old worker had taken and never answered: Ctrl-C can land while Temporal hands one out,
  and the stopping worker never receives it (seen with temporalio 1.35). Nothing can answer it; Temporal gives
  it back after its 10 s timeout. `warroom dev` waits for that, saying so, rather than let the first command
  run into it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import PendingWorkflowTaskState
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    ResetStickyTaskQueueRequest,
)
from temporalio.client import Client

# Temporal's default workflow task timeout is 10 s; the server may need a moment after it to hand it back.
HELD_TASK_WAIT = 15.0
POLL_EVERY = 0.25


async def settle_previous_run(
    client: Client, task_queue: str, say: Callable[[str], None] = print, within: float = HELD_TASK_WAIT
) -> list[str]:
    """Resets the sticky queues of this task queue's running workflows and waits (at most `within` s) for the
    workflow tasks a previous worker took and never answered; returns the IDs of those still held."""
    running = f"TaskQueue = '{task_queue}' AND ExecutionStatus = 'Running'"
    executions = [
        WorkflowExecution(workflow_id=found.id, run_id=found.run_id)
        async for found in client.list_workflows(running)
    ]
    for execution in executions:
        request = ResetStickyTaskQueueRequest(namespace=client.namespace, execution=execution)
        await client.workflow_service.reset_sticky_task_queue(request)
    held = [e for e in executions if await _task_held(client, e)]
    if not held:
        return []
    names = ", ".join(e.workflow_id for e in held)
    say(f"waiting (<= 10 s) for Temporal to take back the workflow task the last run left open: {names}")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while held and loop.time() < deadline:
        await asyncio.sleep(POLL_EVERY)
        held = [e for e in held if await _task_held(client, e)]
    if held:
        names = ", ".join(e.workflow_id for e in held)
        say(f"still held after {within:g} s, so their next command may be answered 'degraded': {names}")
    return [e.workflow_id for e in held]


async def _task_held(client: Client, execution: WorkflowExecution) -> bool:
    """True while a worker has the workflow's current task: with no worker of this run polling yet, that is
    the previous run's."""
    request = DescribeWorkflowExecutionRequest(namespace=client.namespace, execution=execution)
    described = await client.workflow_service.describe_workflow_execution(request)
    if not described.HasField("pending_workflow_task"):
        return False
    state = described.pending_workflow_task.state
    return bool(state == PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_STARTED)
