"""Reminders as the ingress and CLI reach them: which are still pending, and cancelling one (an update on its
own ReminderWorkflow, so it works after the incident has resolved)."""

from __future__ import annotations

import asyncio

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from domain.models import CommandReply, ReminderCancel, ReminderRecord, ReminderView
from domain.naming import reminder_workflow_id
from starter.errors import CommandRejected
from workflows.reminder import ReminderWorkflow


class Reminders:
    """The reminders' own workflows (`reminder-<id>`; `<task queue>-reminder-<id>` off the default queue)."""

    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue

    async def pending(self, reminders: list[ReminderRecord], user_id: str) -> list[ReminderRecord]:
        """`user_id`'s reminders among these that have not been delivered or cancelled yet."""
        mine = [r for r in reminders if r.user_id == user_id]
        running = await asyncio.gather(*(self._running(r.reminder_id) for r in mine))
        return [r for r, pending in zip(mine, running, strict=True) if pending]

    async def _running(self, reminder_id: str) -> bool:
        handle = self.client.get_workflow_handle(reminder_workflow_id(reminder_id, self.task_queue))
        try:
            description = await handle.describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return description.status == WorkflowExecutionStatus.RUNNING

    async def cancel(self, reminder_id: str, user_id: str, request_id: str | None = None) -> str:
        """Cancels one of `user_id`'s reminders; it works after the incident has resolved, too."""
        handle = self.client.get_workflow_handle(reminder_workflow_id(reminder_id, self.task_queue))
        try:
            reply: CommandReply = await handle.execute_update(
                ReminderWorkflow.cancel, ReminderCancel(actor=user_id), id=request_id
            )
        except WorkflowUpdateFailedError as err:
            if isinstance(err.cause, ApplicationError):
                raise CommandRejected(err.cause.message) from None
            raise
        except RPCError as err:
            if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                raise CommandRejected(await self._finished(reminder_id)) from None
            raise
        return reply.text

    async def _finished(self, reminder_id: str) -> str:
        """What to say about a reminder that cannot be cancelled: it does not exist, or it has finished."""
        handle = self.client.get_workflow_handle(
            reminder_workflow_id(reminder_id, self.task_queue), result_type=ReminderView
        )
        try:
            await handle.describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return f"There is no reminder `{reminder_id}`."
            raise
        try:
            view = await handle.result()
        except Exception:  # failed or terminated from the Temporal UI
            return f"Reminder `{reminder_id}` has already ended."
        if view.status == "cancelled":
            return f"Reminder `{reminder_id}` was already cancelled."
        return f"Reminder `{reminder_id}` was already delivered ({view.local})."
