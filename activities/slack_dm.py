"""Slack activities for one person: their time zone, and direct messages sent exactly once."""

from __future__ import annotations

from typing import Any

from temporalio import activity

from activities import slack_limits as limits
from activities import slack_render as render
from activities.slack_base import SlackBase
from activities.slack_errors import SlackCallError
from domain.effects import DirectMessageRequest, ReminderPlan, ReminderPlanRequest
from domain.models import ReminderInput
from domain.timeexpr import format_when, resolve_when
from domain.usage import UsageError


class SlackDmActivities(SlackBase):
    """Reminders (and later nudges and role DMs): per-person Slack calls."""

    async def _time_zone(self, user_id: str) -> str | None:
        """The user's Slack time zone (`Europe/Paris`); None when Slack cannot tell us right now."""
        try:
            data = await self._call("users.info", user=user_id)
        except SlackCallError as err:
            activity.logger.warning(
                "no time zone for a user: %s", err.error, extra={"slack_error": err.error}
            )
            return None
        except Exception as err:  # Slack unreachable: UTC is the documented fallback
            activity.logger.warning("no time zone for a user: %s", type(err).__name__)
            return None
        tz = (data.get("user") or {}).get("tz")
        return str(tz) if tz else None

    @activity.defn
    async def plan_reminder(self, req: ReminderPlanRequest) -> ReminderPlan:
        """When `req.when` falls for this user, read in their Slack time zone (UTC when unknown)."""
        tz = await self._time_zone(req.user_id)
        try:
            due = resolve_when(req.when, req.now, tz)
        except UsageError as err:
            return ReminderPlan(error=err.message, zone_known=tz is not None)
        return ReminderPlan(due=due, local=format_when(due, tz), zone_known=tz is not None)

    async def _direct_message(
        self, user_id: str, key: str, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> str:
        """DMs a person; a retried attempt finds the message an earlier attempt sent. Returns its ts."""
        text, blocks = limits.fit_message(text, blocks)
        try:
            opened = await self._call("conversations.open", users=user_id)
            channel = str(opened["channel"]["id"])
            return await self._post_once(channel, key, text, blocks)
        except SlackCallError as err:
            raise err.to_application_error() from None

    @activity.defn
    async def send_dm(self, req: DirectMessageRequest) -> str:
        """A role's description to its new holder, a nudge (with a button) to post a status update, or why the
        incident has no channel."""
        if req.dm.kind == "role":
            text = render.role_text(req.incident, req.dm.role, req.dm.description)
            return await self._direct_message(req.dm.user_id, req.dm.key, text)
        if req.dm.kind == "not_posted":
            text = render.not_posted_text(req.incident, req.dm.description, req.dm.text)
            return await self._direct_message(req.dm.user_id, req.dm.key, text)
        if req.dm.kind == "no_channel":
            text = render.no_channel_text(req.incident, req.dm.description)
            return await self._direct_message(req.dm.user_id, req.dm.key, text)
        text, blocks = render.nudge_message(req.incident)
        return await self._direct_message(req.dm.user_id, req.dm.key, text, blocks)

    @activity.defn
    async def deliver_reminder(self, req: ReminderInput) -> str:
        """The reminder's DM: its text and a link to the incident channel."""
        ts = await self._direct_message(req.user_id, f"reminder-{req.reminder_id}", render.reminder_text(req))
        activity.logger.info(
            "reminder delivered", extra={"incident_id": req.incident_id, "reminder": req.reminder_id}
        )
        return ts
