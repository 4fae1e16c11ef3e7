"""ReminderWorkflow (`reminder-<incident>-<n>`; `<queue>-reminder-...` off the default queue, domain.naming):
one durable timer, then one DM; cancellable by its owner.

Started by the incident as a child with ParentClosePolicy.ABANDON, so it outlives the incident's resolve:
reminding people of follow-ups after the incident is the point. The timer lives in Temporal, so a reminder
is delivered even if every worker restarted in between; the DM activity finds its own earlier attempt, so
it is delivered once.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.slack_dm import SlackDmActivities
    from domain.models import (
        CommandReply,
        ReminderCancel,
        ReminderInput,
        ReminderRecord,
        ReminderStatus,
        ReminderView,
    )
    from workflows import details

# Slack may be down for a while when the reminder falls due: keep trying for a day, never twice.
DM_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), backoff_coefficient=2.0, maximum_interval=timedelta(minutes=5)
)
DM_TIMEOUT = timedelta(seconds=30)
DM_HEARTBEAT = timedelta(seconds=15)  # the DM activity heartbeats before every Slack call
DM_DEADLINE = timedelta(days=1)


@workflow.defn
class ReminderWorkflow:
    @workflow.init
    def __init__(self, inp: ReminderInput) -> None:
        self._inp = inp
        self._status: ReminderStatus = "pending"
        self._show("pending")

    @workflow.run
    async def run(self, inp: ReminderInput) -> ReminderView:
        delay = inp.due - workflow.now()
        if delay > timedelta(0):
            try:
                await workflow.wait_condition(lambda: self._status == "cancelled", timeout=delay)
            except TimeoutError:
                pass  # due
            except asyncio.CancelledError:  # cancelled from the Temporal UI or CLI
                self._show("cancelled")
                raise
        if self._status == "cancelled":
            return self.view()
        self._show("sending")
        try:
            await workflow.execute_activity_method(
                SlackDmActivities.deliver_reminder,
                inp,
                start_to_close_timeout=DM_TIMEOUT,
                heartbeat_timeout=DM_HEARTBEAT,
                schedule_to_close_timeout=DM_DEADLINE,
                retry_policy=DM_RETRY,
            )
        except ActivityError as err:
            self._show("failed")
            workflow.logger.warning("reminder %s not delivered: %s", inp.reminder_id, err.cause or err)
            return self.view()
        self._show("delivered")
        return self.view()

    @workflow.update
    def cancel(self, req: ReminderCancel) -> CommandReply:
        self._show("cancelled")
        return CommandReply(text=f"Reminder `{self._inp.reminder_id}` ({self._inp.local}) cancelled.")

    @cancel.validator
    def _validate_cancel(self, req: ReminderCancel) -> None:
        rid = self._inp.reminder_id
        if req.actor != self._inp.user_id:
            raise ApplicationError(
                f"Reminder `{rid}` is not yours; only <@{self._inp.user_id}> can cancel it.",
                type="UsageError",
                non_retryable=True,
            )
        if self._status != "pending":
            said = {"sending": "is being delivered", "delivered": "was already delivered"}
            raise ApplicationError(
                f"Reminder `{rid}` {said.get(self._status, 'is already ' + self._status)}.",
                type="UsageError",
                non_retryable=True,
            )

    def _show(self, status: ReminderStatus) -> None:
        """Sets the status and the Temporal UI's current details (no history event: no patch needed)."""
        self._status = status
        workflow.set_current_details(details.reminder_details(self._inp, status))

    @workflow.query
    def view(self) -> ReminderView:
        record = self._inp.model_dump(include=set(ReminderRecord.model_fields))
        return ReminderView(**record, status=self._status)
