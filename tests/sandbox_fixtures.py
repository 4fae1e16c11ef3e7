"""Helpers for the sandbox tests: a fake app ingress that checks Slack's signatures, and small builders."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import pytest
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.signing import signature

TOKEN = "xoxb-sandbox-test"
SECRET = "sandbox-test-signing-secret"
ALICE, BOB = "U0ALICE", "U0BOB"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    signature_ok: bool

    @property
    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def payload(self) -> Any:
        """The `payload=` JSON of an interactivity request."""
        return json.loads(self.form["payload"])


class FakeIngress:
    """Answers with queued (status, body) pairs, or 200 and an empty body."""

    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret
        self.received: list[Received] = []
        self.replies: list[tuple[int, Any]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        ts = request.headers.get("X-Slack-Request-Timestamp", "")
        ok = signature(self.secret, ts, body) == request.headers.get("X-Slack-Signature")
        self.received.append(Received(dict(request.headers), body, ok))
        if not ok:
            return web.Response(status=401, text="bad signature")
        status, reply = self.replies.pop(0) if self.replies else (200, "")
        if isinstance(reply, dict):
            return web.json_response(reply, status=status)
        return web.Response(status=status, text=reply)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/slack/events", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/slack/events"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def slack_error(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value


async def new_channel(slack: AsyncWebClient, name: str = "inc-1-db-down") -> str:
    return str((await slack.conversations_create(name=name))["channel"]["id"])


def stage_modal() -> dict[str, Any]:
    """A modal with a required select (with an initial option), a required text and an optional picker."""
    return {
        "type": "modal",
        "callback_id": "stage_change",
        "private_metadata": json.dumps({"incident": 7}),
        "title": {"type": "plain_text", "text": "Change stage"},
        "submit": {"type": "plain_text", "text": "Save"},
        "blocks": [
            {
                "type": "input",
                "block_id": "stage",
                "label": {"type": "plain_text", "text": "Stage"},
                "element": {
                    "type": "static_select",
                    "action_id": "value",
                    "initial_option": {
                        "text": {"type": "plain_text", "text": "Inv"},
                        "value": "investigating",
                    },
                    "options": [],
                },
            },
            {
                "type": "input",
                "block_id": "context",
                "label": {"type": "plain_text", "text": "Context"},
                "element": {"type": "plain_text_input", "action_id": "value"},
            },
            {
                "type": "input",
                "block_id": "broadcast",
                "optional": True,
                "label": {"type": "plain_text", "text": "Also post to"},
                "element": {"type": "multi_conversations_select", "action_id": "value"},
            },
        ],
    }
