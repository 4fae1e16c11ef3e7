"""Adding a paged responder to the incident channel: the Slack user with their email, invited once.

`users.lookupByEmail` needs the bot scope `users:read.email`; `users_not_found` means nobody in the
workspace has that email (the caller says so in the channel), `already_in_channel` is success.
"""

from __future__ import annotations

from temporalio import activity

from activities.slack_base import SlackBase
from activities.slack_errors import SlackCallError
from domain.paging import InviteRequest, InviteResult


class SlackInviteActivities(SlackBase):
    @activity.defn
    async def invite_by_email(self, req: InviteRequest) -> InviteResult:
        try:
            found = await self._call("users.lookupByEmail", email=req.email)
        except SlackCallError as err:
            if err.error == "users_not_found":
                return InviteResult()
            raise err.to_application_error() from None
        user_id = str((found.get("user") or {}).get("id") or "")
        if not user_id:
            return InviteResult()
        try:
            await self._call("conversations.invite", channel=req.channel_id, users=user_id)
        except SlackCallError as err:
            if err.error in {"already_in_channel", "cant_invite_self"}:
                return InviteResult(user_id=user_id, already_member=True)
            raise err.to_application_error() from None
        activity.logger.info("responder invited", extra={"channel": req.channel_id})
        return InviteResult(user_id=user_id)
