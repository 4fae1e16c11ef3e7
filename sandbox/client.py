"""A small async client for the sandbox's control API (`/_sandbox/*`)."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import aiohttp


class SandboxError(Exception):
    """The control API refused a request (e.g. an unknown channel or no ingress configured)."""

    def __init__(self, status: int, body: Any) -> None:
        error = body.get("error") if isinstance(body, dict) else body
        super().__init__(f"sandbox answered {status}: {error}")
        self.status = status
        self.body = body
        self.error = error


class SandboxClient:
    """`async with SandboxClient(sb.url) as c: await c.command("U1", "C1", "new db down")`.

    Methods return the control API's parsed JSON, except `messages`/`ephemerals` (the list) and
    `channel_by_name` (the channel or None). Failures raise SandboxError.
    """

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SandboxClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(
        self, method: str, path: str, json: dict[str, Any] | None = None, params: dict[str, str] | None = None
    ) -> dict[str, Any]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        async with self._session.request(method, self.base_url + path, json=json, params=params) as response:
            body = await response.json(content_type=None)
            if response.status >= 400:
                raise SandboxError(response.status, body)
            return dict(body)

    # --- acting as people and as Slack ----------------------------------------------------------------

    async def command(
        self, user_id: str, channel_id: str, text: str, command: str = "/incident"
    ) -> dict[str, Any]:
        """Delivers a slash command; returns status, body, trigger_id and response_url."""
        payload = {"user_id": user_id, "channel_id": channel_id, "text": text, "command": command}
        return await self._request("POST", "/_sandbox/command", payload)

    async def message(
        self,
        user_id: str,
        channel_id: str,
        text: str,
        thread_ts: str | None = None,
        deliver_event: bool = False,
        formatted: bool = False,
    ) -> dict[str, Any]:
        """A person posts a message; with `deliver_event`, the app gets its `message` event (where the bot is
        a member). `text` is what they typed (the sandbox escapes and linkifies it as Slack does) or, with
        `formatted`, already in Slack's stored form (`&amp;`, `<https://x|label>`), refused unless
        well-formed. Returns its ts, the stored `message` (and the delivery)."""
        payload: dict[str, Any] = {"user_id": user_id, "channel_id": channel_id, "text": text}
        if thread_ts:
            payload["thread_ts"] = thread_ts
        if deliver_event:
            payload["deliver_event"] = True
        if formatted:
            payload["formatted"] = True
        return await self._request("POST", "/_sandbox/message", payload)

    async def react(
        self, user_id: str, channel_id: str, ts: str, reaction: str, repeat: int = 0, remove: bool = False
    ) -> dict[str, Any]:
        """Adds (or removes) a reaction and delivers the event, `repeat` more times as Slack retries."""
        payload = {
            "user_id": user_id,
            "channel_id": channel_id,
            "ts": ts,
            "reaction": reaction,
            "repeat": repeat,
            "remove": remove,
        }
        return await self._request("POST", "/_sandbox/react", payload)

    async def click(self, user_id: str, channel_id: str, ts: str, action_id: str) -> dict[str, Any]:
        """Clicks a button of a bot message (a DM's too); the app gets `block_actions`."""
        payload = {"user_id": user_id, "channel_id": channel_id, "ts": ts, "action_id": action_id}
        return await self._request("POST", "/_sandbox/click", payload)

    async def submit_view(
        self, view_id: str, values: dict[str, Any] | None = None, user_id: str | None = None
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"view_id": view_id, "values": values or {}}
        if user_id:
            payload["user_id"] = user_id
        return await self._request("POST", "/_sandbox/submit_view", payload)

    # --- looking ------------------------------------------------------------------------------------

    async def state(self) -> dict[str, Any]:
        return await self._request("GET", "/_sandbox/state")

    async def messages(self, channel_id: str) -> list[dict[str, Any]]:
        """Top-level messages oldest first, each with `replies`."""
        body = await self._request("GET", f"/_sandbox/channels/{channel_id}/messages")
        return list(body["messages"])

    async def channel_by_name(self, name: str) -> dict[str, Any] | None:
        body = await self._request("GET", "/_sandbox/channels", params={"name": name.removeprefix("#")})
        channels = body["channels"]
        return dict(channels[0]) if channels else None

    async def ephemerals(self, user_id: str) -> list[dict[str, Any]]:
        """What only this user saw (postEphemeral, command acks, response_url posts), oldest first."""
        body = await self._request("GET", "/_sandbox/ephemeral", params={"user_id": user_id})
        return list(body["ephemerals"])

    async def vendor_state(self, vendor: str) -> dict[str, Any]:
        """A vendor stand-in's state (`GET /_sandbox/<vendor>/state`), e.g. `statuspage`: the public page."""
        return await self._request("GET", f"/_sandbox/{vendor}/state")

    async def calls(self, method: str | None = None) -> dict[str, Any]:
        return await self._request("GET", "/_sandbox/calls", params={"method": method} if method else None)

    # --- steering -----------------------------------------------------------------------------------

    async def create_channel(
        self, name: str, members: list[str] | None = None, is_private: bool = False
    ) -> dict[str, Any]:
        """A channel made by a person; the bot is in it only if listed. Returns `id` and `channel`."""
        payload = {"name": name, "members": members or [], "is_private": is_private}
        return await self._request("POST", "/_sandbox/channels", payload)

    async def add_user(
        self,
        user_id: str,
        name: str | None = None,
        tz: str | None = None,
        real_name: str | None = None,
        email: str | None = None,
    ) -> dict[str, Any]:
        payload = {"id": user_id, "name": name, "tz": tz, "real_name": real_name, "email": email}
        return await self._request("POST", "/_sandbox/users", {k: v for k, v in payload.items() if v})

    async def create_usergroup(
        self, handle: str, users: list[str], group_id: str | None = None
    ) -> dict[str, Any]:
        """A user group (`@handle`) with these members, `group_id` (S...) or a new ID. Returns `usergroup`."""
        payload = {"handle": handle, "users": users, "id": group_id}
        return await self._request("POST", "/_sandbox/usergroups", {k: v for k, v in payload.items() if v})

    async def fault(
        self,
        method: str,
        *,
        error: str | None = None,
        status: int | None = None,
        retry_after: int | None = None,
        count: int = 1,
        delay_ms: int | None = None,
        skip: int = 0,
        after_effect: bool = False,
        drop: bool = False,
    ) -> dict[str, Any]:
        """Queues a fault for `method`; `after_effect` performs the call then answers the failure, `drop`
        performs it then closes the connection without answering."""
        payload: dict[str, Any] = {
            "method": method,
            "count": count,
            "skip": skip,
            "after_effect": after_effect,
            "drop": drop,
        }
        for key, value in (("error", error), ("status", status), ("retry_after", retry_after)):
            if value is not None:
                payload[key] = value
        if delay_ms:
            payload["delay_ms"] = delay_ms
        return await self._request("POST", "/_sandbox/faults", payload)

    async def clear_faults(self) -> dict[str, Any]:
        return await self._request("DELETE", "/_sandbox/faults")

    async def reset(self) -> dict[str, Any]:
        return await self._request("POST", "/_sandbox/reset")
