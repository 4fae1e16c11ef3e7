"""The incident's side of the directory, from inside IncidentWorkflow: which directory is its own, registering
its channel, and telling it the incident closed.

The directory is found from the incident's own workflow ID (`domain.naming.task_queue_of`), not from the task
queue it runs on: both are in history, but an incident started before IDs carried the queue (`incident-<n>`)
must keep reaching `warroom-directory`, whatever queue it runs on, in replay and after continue-as-new.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.models import ChannelRegistration, DedupRelease, IncidentClosed
    from domain.naming import DEFAULT_TASK_QUEUE, directory_workflow_id, task_queue_of
    from domain.paging import KeyLink
    from workflows.context import IncidentContext
    from workflows.directory import IncidentDirectoryWorkflow
    from workflows.patches import DIRECTORY_CLOSE


def own_task_queue() -> str:
    """The task queue this incident's IDs (its directory's, its reminders') follow."""
    return task_queue_of(workflow.info().workflow_id) or DEFAULT_TASK_QUEUE


async def _signal(ctx: IncidentContext, signal: Any, arg: Any, problem: str) -> None:
    handle = workflow.get_external_workflow_handle(directory_workflow_id(own_task_queue()))
    try:
        await handle.signal(signal, arg)
    except Exception as err:  # the directory is gone: the incident goes on
        ctx.record("problem", f"{problem}: {err}", None)


async def register_channel(ctx: IncidentContext, channel_id: str) -> None:
    """Commands in the channel find the incident by its ID (after a rename, too)."""
    registration = ChannelRegistration(channel_id=channel_id, incident_id=ctx.s.incident_id)
    problem = "could not register the channel with the directory"
    await _signal(ctx, IncidentDirectoryWorkflow.register_channel, registration, problem)


async def link_key(ctx: IncidentContext, key: str) -> None:
    """Alerts with this dedup key join this incident (`/incident page`: the pager's webhooks)."""
    link = KeyLink(key=key, incident_id=ctx.s.incident_id)
    await _signal(ctx, IncidentDirectoryWorkflow.link_key, link, "could not link the page with the directory")


async def leave(ctx: IncidentContext) -> None:
    """At completion: the directory forgets the incident's channel and alert key (`closed`). Runs from before
    patch `directory-close` released only the alert key, and their channels stayed in the directory."""
    s = ctx.s
    if workflow.patched(DIRECTORY_CLOSE):
        closed = IncidentClosed(incident_id=s.incident_id, channel_id=s.channel_id)
        await _signal(ctx, IncidentDirectoryWorkflow.closed, closed, "could not tell the directory it closed")
    elif s.dedup_key:
        release = DedupRelease(key=s.dedup_key, incident_id=s.incident_id)
        await _signal(ctx, IncidentDirectoryWorkflow.release, release, "could not release the alert key")
