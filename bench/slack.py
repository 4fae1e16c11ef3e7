"""Talking to warroom the way Slack and Alertmanager do, and watching what it posts in the sandbox.

Every request carries a unique marker (`bk<n>q`) in its text; the sandbox tells `PostLog` about every
message it stores, so each post is traced back to the request that caused it, timed where Slack would
receive it, without polling anything.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp

from sandbox.models import Channel, Message
from sandbox.signing import JSON_CONTENT_TYPE, signed_headers
from sandbox.state import SandboxState

TOKEN, SECRET, USER, ALERT_TOKEN = "xoxb-bench", "bench-secret", "U0BENCH", "bench-alert-token"
REQUEST_TIMEOUT = 10.0
_MARK = re.compile(r"bk(\d+)q")


@dataclass(frozen=True)
class ChannelRef:
    id: str
    name: str


@dataclass(frozen=True)
class Ack:
    """What the sender saw: milliseconds from request to response, the HTTP status and the answer text."""

    ms: float
    status: int
    text: str

    def says(self, *words: str) -> bool:
        """Answered, with one of `words` in its text."""
        return self.status in (200, 202) and any(w in self.text for w in words)


# The two answers that mean an update was taken: posted (within its own workflow task), or accepted (queued
# behind earlier messages, or Slack did not take it at once). Anything else ("degraded", "Slack is behind")
# was not.
TAKEN = ("Update posted", "Update accepted")


class Marks:
    """Unique markers for request texts."""

    def __init__(self) -> None:
        self._n = 0

    def next(self) -> str:
        self._n += 1
        return f"bk{self._n}q"


def _answer(raw: str) -> str:
    try:
        body = json.loads(raw)
    except ValueError:
        return raw
    return str(body.get("text") or body) if isinstance(body, dict) else raw


class Ingress:
    """Signed requests to one ingress process."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str, response_url: str) -> None:
        self.http = http
        self.base_url = base_url
        self.response_url = response_url

    async def _post(self, path: str, body: bytes, headers: dict[str, str]) -> Ack:
        started = time.perf_counter()
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        try:
            async with self.http.post(self.base_url + path, data=body, headers=headers, timeout=timeout) as r:
                status, raw = r.status, await r.text()
        except (aiohttp.ClientError, TimeoutError) as err:
            status, raw = 0, type(err).__name__
        return Ack((time.perf_counter() - started) * 1000, status, _answer(raw))

    async def command(self, text: str, channel: ChannelRef) -> Ack:
        """A signed `/incident <text>` from USER in `channel`, as Slack delivers it."""
        form = {
            "command": "/incident",
            "text": text,
            "user_id": USER,
            "user_name": "bench",
            "channel_id": channel.id,
            "channel_name": channel.name,
            "team_id": "T0SANDBOX",
            "trigger_id": f"bench.{time.perf_counter_ns()}",
            "response_url": self.response_url,
        }
        body = urllib.parse.urlencode(form).encode()
        return await self._post("/slack/events", body, signed_headers(SECRET, body))

    async def alertmanager(self, payload: dict[str, Any]) -> Ack:
        body = json.dumps(payload).encode()
        headers = {"Content-Type": JSON_CONTENT_TYPE, "Authorization": f"Bearer {ALERT_TOKEN}"}
        return await self._post("/alerts/alertmanager", body, headers)

    async def pagerduty(self, payload: dict[str, Any]) -> Ack:
        """A PagerDuty V3 webhook; the bench's ingress has no PAGERDUTY_WEBHOOK_SECRET: the bearer token."""
        body = json.dumps(payload).encode()
        headers = {"Content-Type": JSON_CONTENT_TYPE, "Authorization": f"Bearer {ALERT_TOKEN}"}
        return await self._post("/alerts/pagerduty", body, headers)

    async def has_route(self, path: str) -> bool:
        async with self.http.post(self.base_url + path, json={}) as response:
            return response.status not in (404, 405)

    async def healthy(self) -> bool:
        try:
            async with self.http.get(self.base_url + "/healthz") as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False


class PostLog:
    """When each marked message first landed in each channel (perf_counter, in the sandbox's handler)."""

    def __init__(self) -> None:
        self.landed: dict[str, dict[str, float]] = {}
        self.posts = 0

    def install(self, state: SandboxState) -> None:
        original = state.post

        def post(channel: Channel, *args: Any, **kwargs: Any) -> Message:
            message = original(channel, *args, **kwargs)
            self.saw(channel.id, message.text)
            return message

        state.post = post  # type: ignore[method-assign]

    def saw(self, channel_id: str, text: str) -> None:
        now = time.perf_counter()
        self.posts += 1
        for match in _MARK.finditer(text):
            self.landed.setdefault(match.group(0), {}).setdefault(channel_id, now)

    def done_at(self, mark: str, channels: Iterable[str]) -> float | None:
        """When the last of `channels` got the marked message, or None while one has not."""
        seen = self.landed.get(mark, {})
        times = [seen.get(c) for c in channels]
        return None if any(t is None for t in times) else max(t for t in times if t is not None)

    async def wait(self, marks: list[str], channels: Callable[[str], Iterable[str]], within: float) -> int:
        """Waits (at most `within` s) until every mark reached all its channels; returns how many did."""
        deadline = time.perf_counter() + within
        pending = list(marks)
        while pending and time.perf_counter() < deadline:
            pending = [m for m in pending if self.done_at(m, channels(m)) is None]
            if pending:
                await asyncio.sleep(0.002 if len(pending) == 1 else 0.05)
        return len(marks) - len(pending)
