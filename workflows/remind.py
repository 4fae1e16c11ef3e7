"""`/incident remind <when> <text>`, the incident's side: the caller's time read by an activity (in their
Slack time zone, so it is in history), then a ReminderWorkflow child (workflows/reminder.py) that DMs them
then. Runs inside the workflow."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.slack_dm import SlackDmActivities
    from domain.effects import ReminderPlan, ReminderPlanRequest
    from domain.models import CommandReply, ReminderInput, ReminderOrder, ReminderRecord
    from domain.naming import reminder_workflow_id
    from workflows import details, transitions
    from workflows.context import IncidentContext, reject
    from workflows.directory_link import own_task_queue
    from workflows.reminder import ReminderWorkflow

PLAN_RETRY = RetryPolicy(maximum_attempts=3, initial_interval=timedelta(milliseconds=200))
PLAN_TIMEOUT = timedelta(seconds=5)


async def set_reminder(ctx: IncidentContext, order: ReminderOrder) -> CommandReply:
    """Starts the reminder and answers the caller; rejects the update when the time cannot be read."""
    s = ctx.s
    try:
        plan: ReminderPlan = await workflow.execute_activity_method(
            SlackDmActivities.plan_reminder,
            ReminderPlanRequest(user_id=order.actor, when=order.when, now=workflow.now()),
            start_to_close_timeout=PLAN_TIMEOUT,
            retry_policy=PLAN_RETRY,
        )
    except ActivityError:
        reject("warroom could not set the reminder just now (Slack did not answer); try again shortly.")
    if plan.error or plan.due is None:
        reject(plan.error or "That time is not one I understand.")
    reminder_id = transitions.next_reminder_id(s)
    record = ReminderRecord(
        reminder_id=reminder_id, user_id=order.actor, due=plan.due, local=plan.local, text=order.text
    )
    inp = ReminderInput(**record.model_dump(), incident_id=s.incident_id, channel_id=s.channel_id)
    await workflow.start_child_workflow(  # user metadata is not compared on replay: no patch needed
        ReminderWorkflow.run,
        inp,
        id=reminder_workflow_id(reminder_id, own_task_queue()),
        parent_close_policy=ParentClosePolicy.ABANDON,
        static_summary=details.reminder_summary(inp),
        static_details=details.reminder_details_static(inp, s.slash_command),
    )
    transitions.reminder_set(s, workflow.now(), record, order.actor)
    ctx.report()
    zone = "" if plan.zone_known else " (UTC: Slack did not tell me your time zone)"
    return CommandReply(
        text=f":alarm_clock: I will DM you on {plan.local}{zone}. Reminder `{reminder_id}`; cancel it "
        f"with `{s.slash_command} remind cancel {reminder_id}`."
    )
