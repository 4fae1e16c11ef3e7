"""The Slack platform side: signed slash commands, events and view submissions sent to the app's ingress."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from sandbox import mrkdwn
from sandbox.messages import check_text_and_blocks
from sandbox.models import (
    APP_ID,
    BOT_ID,
    BOT_NAME,
    BOT_USER_ID,
    TEAM_DOMAIN,
    TEAM_ID,
    VERIFICATION_TOKEN,
    ApiError,
    User,
)
from sandbox.refusals import Refused
from sandbox.signing import FORM_CONTENT_TYPE, JSON_CONTENT_TYPE, signed_headers
from sandbox.state import ResponseUrl, SandboxState
from sandbox.views import build_values, parse_view

USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"


class NoIngress(Exception):
    """The sandbox has nowhere to deliver to: set `ingress_url` first."""


def parse_body(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


class Platform:
    """Signs and POSTs what Slack would send to the app, and records what the app answers."""

    def __init__(
        self,
        state: SandboxState,
        signing_secret: str,
        ingress_url: str | None = None,
        timeout: float = 3.0,
        should_escape: bool = True,
    ) -> None:
        self.state = state
        # The manifest's `should_escape` for slash commands: mentions and channels arrive as IDs.
        self.should_escape = should_escape
        self.signing_secret = signing_secret
        self.ingress_url = ingress_url
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def session_ctx(self, app: web.Application) -> AsyncIterator[None]:
        """aiohttp cleanup context: one client session for the app's lifetime."""
        yield
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def deliver(
        self, kind: str, body: bytes, content_type: str, extra_headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """POSTs a signed body to the ingress; `status` 0 means it never answered (see `error`)."""
        if not self.ingress_url:
            raise NoIngress("no ingress_url configured")
        headers = {
            **signed_headers(self.signing_secret, body, content_type=content_type),
            **(extra_headers or {}),
        }
        headers["User-Agent"] = USER_AGENT
        result: dict[str, Any]
        try:
            async with self._client().post(
                self.ingress_url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                raw = await response.text()
                result = {"status": response.status, "body": parse_body(raw) if raw else ""}
        except TimeoutError:
            result = {"status": 0, "body": None, "error": "timeout"}
        except aiohttp.ClientError as exc:
            result = {"status": 0, "body": None, "error": f"{type(exc).__name__}: {exc}"}
        self.state.deliveries.append(
            {
                "kind": kind,
                "at": self.state.now(),
                **result,
                "retry_num": int(headers.get("X-Slack-Retry-Num", 0)),
            }
        )
        return result

    # --- slash commands and response_url --------------------------------------------------------------

    def _channel_name(self, channel_id: str) -> str:
        channel = self.state.channels.get(channel_id)
        if channel is None:
            return "directmessage" if channel_id.startswith("D") else "unknown"
        return "directmessage" if channel.is_im else channel.name

    async def command(
        self, user_id: str, channel_id: str, text: str, command: str = "/incident"
    ) -> dict[str, Any]:
        user = self.state.user(user_id)
        if self.should_escape:
            text = self._escaped(user.id, text)
        trigger_id = self.state.issue_trigger(user.id)
        target = self.state.new_response_url(user.id, channel_id, command)
        response_url = f"{self.state.base_url}/_sandbox/respond/{target.id}"
        form = {
            "token": VERIFICATION_TOKEN,
            "team_id": TEAM_ID,
            "team_domain": TEAM_DOMAIN,
            "channel_id": channel_id,
            "channel_name": self._channel_name(channel_id),
            "user_id": user.id,
            "user_name": user.name,
            "command": command,
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id,
        }
        result = await self.deliver("command", urlencode(form).encode(), FORM_CONTENT_TYPE)
        if result["status"] == 200 and result["body"]:
            self.record_response(target, result["body"], source="command_ack")
        return {**result, "trigger_id": trigger_id, "response_url": response_url}

    def _escaped(self, user_id: str, text: str) -> str:
        """`@name` and `#channel` the person can see, as IDs (the channel must be public or theirs)."""
        users = {u.name.lower(): u.id for u in self.state.users.values()}
        channels = {
            c.name: c.id
            for c in self.state.channels.values()
            if not c.is_im and (not c.is_private or user_id in c.members)
        }
        return mrkdwn.escape_command(text, users, channels)

    def record_response(self, target: ResponseUrl, payload: Any, *, source: str) -> None:
        """What the app showed the user: an ack body or a response_url post (in_channel ones are posted).

        Content Slack refuses is recorded as a refusal; a refused ack shows the user Slack's failure notice,
        a refused response_url post raises `Refused` (the endpoint answers 400)."""
        if isinstance(payload, str):
            payload = {"text": payload}
        if not isinstance(payload, dict):
            return
        response_type = str(payload.get("response_type") or "ephemeral")
        text = str(payload.get("text") or "")
        raw_blocks = payload.get("blocks")
        try:
            check_text_and_blocks(text, raw_blocks)
        except Refused as refused:
            self.state.refuse(source, refused)
            if source != "command_ack":
                raise
            self._command_failed(target, refused.error)
            return
        blocks: list[dict[str, Any]] | None = raw_blocks if isinstance(raw_blocks, list) else None
        if response_type == "in_channel" and (text or blocks):
            channel = self.state.channels.get(target.channel_id)
            if channel is not None:
                try:
                    self.state.post(channel, user=BOT_USER_ID, bot_id=BOT_ID, text=text, blocks=blocks)
                except ApiError:
                    pass
        flags = {k: payload[k] for k in ("replace_original", "delete_original") if k in payload}
        self.state.add_ephemeral(
            source,
            target.user_id,
            target.channel_id,
            text,
            blocks=blocks,
            response_type=response_type,
            thread_ts=payload.get("thread_ts"),
            command=target.command,
            **flags,
        )

    def _command_failed(self, target: ResponseUrl, error: str) -> None:
        """What Slack shows the user when it cannot display the app's answer to a slash command."""
        notice = (
            f"Darn - that slash command didn't work (error message: `{error}`). "
            f"Manage the command at {BOT_NAME}."
        )
        self.state.add_ephemeral(
            "command_ack", target.user_id, target.channel_id, notice, command=target.command, error=error
        )

    # --- events ---------------------------------------------------------------------------------------

    async def react(
        self,
        user_id: str,
        channel_id: str,
        ts: str,
        reaction: str,
        *,
        repeat: int = 0,
        remove: bool = False,
    ) -> dict[str, Any]:
        """Records the reaction; the app hears of it only if the bot is in the channel, as in Slack."""
        channel = self.state.channel(channel_id, viewer=None)
        user = self.state.user(user_id)
        message = self.state.react(channel, ts, user.id, reaction, remove=remove)
        if BOT_USER_ID not in channel.members:
            return {"event_id": None, "delivered": False, "reason": "bot_not_in_channel", "deliveries": []}
        event = {
            "type": "reaction_removed" if remove else "reaction_added",
            "user": user.id,
            "reaction": reaction.strip(":"),
            "item_user": message.user,
            "item": {"type": "message", "channel": channel.id, "ts": message.ts},
            "event_ts": f"{self.state.now():.6f}",
        }
        return await self._deliver_event(event, repeat)

    async def message_posted(self, channel_id: str, ts: str) -> dict[str, Any]:
        """Delivers the `message` event of a person's message, if the bot is in the channel, as in Slack."""
        channel = self.state.channel(channel_id, viewer=None)
        if BOT_USER_ID not in channel.members:
            return {"event_id": None, "delivered": False, "reason": "bot_not_in_channel", "deliveries": []}
        message = channel.messages[ts]
        event: dict[str, Any] = {
            "type": "message",
            "channel": channel.id,
            "channel_type": "group" if channel.is_private else "channel",
            "user": message.user,
            "text": message.text,
            "ts": message.ts,
            "event_ts": message.ts,
        }
        if message.thread_ts:
            event["thread_ts"] = message.thread_ts
        return await self._deliver_event(event, 0)

    async def _deliver_event(self, event: dict[str, Any], repeat: int) -> dict[str, Any]:
        """Wraps an event in Events API's envelope and delivers it, `repeat` more times as Slack retries."""
        now = self.state.now()
        event_id = self.state.new_id("Ev")
        envelope = {
            "token": VERIFICATION_TOKEN,
            "team_id": TEAM_ID,
            "context_team_id": TEAM_ID,
            "context_enterprise_id": None,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(now),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": TEAM_ID,
                    "user_id": BOT_USER_ID,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-sandbox-{event_id}",
        }
        body = json.dumps(envelope).encode()
        deliveries = [await self.deliver("event", body, JSON_CONTENT_TYPE)]
        for retry in range(1, max(0, repeat) + 1):
            headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
            deliveries.append(await self.deliver("event", body, JSON_CONTENT_TYPE, headers))
        return {
            "event_id": event_id,
            "delivered": True,
            "status": deliveries[0]["status"],
            "body": deliveries[0]["body"],
            "statuses": [d["status"] for d in deliveries],
            "deliveries": deliveries,
        }

    # --- buttons --------------------------------------------------------------------------------------

    async def click(self, user_id: str, channel_id: str, ts: str, action_id: str) -> dict[str, Any]:
        """A person clicks the button `action_id` of a bot message: Slack sends a `block_actions` payload
        with a fresh trigger_id, so the app may open a form."""
        channel = self.state.channel(channel_id, viewer=None)
        message = channel.messages.get(ts)
        if message is None:
            raise ApiError("message_not_found")
        buttons = [
            e
            for b in message.blocks or []
            for e in b.get("elements") or []
            if e.get("action_id") == action_id
        ]
        if not buttons:
            raise ApiError("action_not_found")
        user = self.state.user(user_id)
        trigger_id = self.state.issue_trigger(user.id)
        button = buttons[0]
        body = self._interaction(
            "block_actions",
            user,
            trigger_id,
            channel={"id": channel.id, "name": channel.name},
            message=channel.render(message, include_metadata=False),
            container={"type": "message", "message_ts": ts, "channel_id": channel.id},
            actions=[
                {
                    "type": button.get("type", "button"),
                    "action_id": action_id,
                    "block_id": "b",
                    "value": button.get("value"),
                    "action_ts": f"{self.state.now():.6f}",
                }
            ],
        )
        result = await self.deliver("block_actions", body, FORM_CONTENT_TYPE)
        return {**result, "trigger_id": trigger_id}

    @staticmethod
    def _interaction(kind: str, user: User, trigger_id: str, **fields: Any) -> bytes:
        """An interactivity request body (`payload=` JSON) as Slack sends it: who, which trigger, and more."""
        payload = {
            "type": kind,
            "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
            "user": {"id": user.id, "username": user.name, "name": user.name, "team_id": TEAM_ID},
            "api_app_id": APP_ID,
            "token": VERIFICATION_TOKEN,
            "trigger_id": trigger_id,
            **fields,
        }
        return urlencode({"payload": json.dumps(payload)}).encode()

    # --- modals ---------------------------------------------------------------------------------------

    async def submit_view(
        self, view_id: str, values: dict[str, Any] | None = None, user_id: str | None = None
    ) -> dict[str, Any]:
        """Submits an open modal with the given `state.values` and applies the app's response_action."""
        stored = self.state.views.find(view_id)
        if stored.closed:
            raise ApiError("view_closed")
        user = self.state.user(user_id or stored.user_id)
        stored.values = build_values(stored.view, values or {})
        trigger_id = self.state.issue_trigger(user.id)
        body = self._interaction(
            "view_submission",
            user,
            trigger_id,
            view=stored.to_api(),
            response_urls=[],
            is_enterprise_install=False,
            enterprise=None,
        )
        result = await self.deliver("view_submission", body, FORM_CONTENT_TYPE)
        out = {**result, "view_id": stored.id, "trigger_id": trigger_id}
        try:
            out["response_action"] = self._apply_response_action(stored.id, result)
        except ApiError as err:  # the app answered with a view Slack would reject
            if isinstance(err, Refused):
                self.state.refuse("view_submission", err)
            out["response_action"], out["response_error"] = None, err.error
        return {**out, "errors": stored.errors, "view_closed": stored.closed}

    def _apply_response_action(self, view_id: str, result: dict[str, Any]) -> str | None:
        stored = self.state.views.find(view_id)
        if result["status"] != 200:
            return None  # Slack keeps the modal open and shows a connection error
        body = result["body"] if isinstance(result["body"], dict) else {}
        action = body.get("response_action")
        if action == "errors":
            stored.errors = dict(body.get("errors") or {})
        elif action == "update":
            self.state.views.replace(stored, parse_view(body.get("view")))
        elif action == "push":
            self.state.views.push_for(stored.user_id, parse_view(body.get("view")))
        elif action == "clear":
            self.state.views.close_stack(stored.root_view_id)
        else:
            stored.closed = True
        return str(action) if action else None
