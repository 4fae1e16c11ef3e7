"""What a vendor stand-in (Zoom, Google Meet, Jira) offers the sandbox server it is mounted on, and the
part every stand-in shares: injected faults, the record of what it answered and its control routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import aiohttp
from aiohttp import web

Payload = dict[str, Any] | list[Any]  # a JSON answer
RouteT = TypeVar("RouteT", bound=str)  # a stand-in's fault routes, e.g. Literal["token", "create_space"]


class VendorFake(Protocol):
    """A stateful stand-in for one vendor API, served over HTTP by the sandbox under its own prefix."""

    name: str  # "zoom", "meet", "jira": also its URL prefix and control prefix `/_sandbox/<name>/`

    def add_routes(self, app: web.Application) -> None:
        """Adds the vendor's API routes (e.g. `/zoom/v2/users/me/meetings`) and control routes."""

    def settings(self, base_url: str, workdir: Path) -> dict[str, str]:
        """warroom's environment settings (e.g. `ZOOM_API_URL`) that point it at this stand-in.

        `workdir` is where a file such settings need (a service account key) may be written.
        """
        ...

    def reset(self) -> None:
        """Forgets all state and faults."""

    def persisted(self) -> dict[str, Any]:
        """What `warroom dev` keeps across a restart (JSON): the vendor's records and ID counters, not its
        tokens, faults or call log."""
        ...

    def restore(self, saved: dict[str, Any]) -> None:
        """Takes back what `persisted` returned (KeyError, TypeError or ValueError if it is not that)."""


@dataclass
class VendorFault:
    route: str
    status: int
    retry_after: float | str | None = None  # seconds, or a timestamp as Zoom sends for daily limits
    remaining: int = 1
    after_effect: bool = False  # the effect happens, then the client gets the error (a lost response)

    def to_dict(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "status": self.status,
            "retry_after": self.retry_after,
            "times": self.remaining,
            "after_effect": self.after_effect,
        }


class VendorStandIn(Generic[RouteT]):
    """Injected faults, the `(route, status)` of every answer and the control routes of one stand-in.

    A subclass names itself (`name`) and its fault routes (`fault_routes`), answers through `_answer`,
    asks `_take_fault` for the fault of each call, and extends `reset` and `snapshot` with its own state.
    """

    name: str
    fault_routes: tuple[str, ...]

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []  # (route, HTTP status answered)
        self.faults: list[VendorFault] = []

    # --- Python API for tests ---------------------------------------------------------------------------

    def add_fault(
        self,
        route: RouteT,
        status: int,
        *,
        retry_after: float | str | None = None,
        times: int = 1,
        after_effect: bool = False,
    ) -> VendorFault:
        """The next `times` calls of `route` answer `status` (a 429 carries `Retry-After`, default 1 s).

        `after_effect=True`: the call takes effect (a token issued, a meeting, space or issue created),
        then the client gets the error.
        """
        if route not in self.fault_routes:
            raise ValueError(f"route must be one of {', '.join(self.fault_routes)}, not {route!r}")
        if not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error status")
        if times < 1:
            raise ValueError("times must be at least 1")
        if status == 429 and retry_after is None:
            retry_after = 1
        fault = VendorFault(route, status, retry_after, times, after_effect)
        self.faults.append(fault)
        return fault

    def calls_of(self, route: str) -> list[int]:
        """The statuses answered to `route`, in order."""
        return [status for name, status in self.calls if name == route]

    def reset(self) -> None:
        """Forgets calls and faults; a subclass forgets its own state too."""
        self.calls.clear()
        self.faults.clear()

    def snapshot(self) -> dict[str, Any]:
        """Calls and faults as JSON; a subclass adds its own state."""
        return {
            "calls": [{"route": route, "status": status} for route, status in self.calls],
            "faults": [fault.to_dict() for fault in self.faults],
        }

    # --- plumbing ---------------------------------------------------------------------------------------

    def _answer(
        self, route: str, status: int, payload: Payload, headers: dict[str, str] | None = None
    ) -> web.Response:
        self.calls.append((route, status))
        return web.json_response(payload, status=status, headers=headers)

    def _take_fault(self, route: str) -> VendorFault | None:
        """The fault for this call of `route`, if any, using up one of its times."""
        for fault in self.faults:
            if fault.route == route:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    # --- control ----------------------------------------------------------------------------------------

    def add_control_routes(self, app: web.Application, **actions: Callable[[], None]) -> None:
        """`GET /_sandbox/<name>/state`, `POST .../reset`, `POST .../faults`, and `POST .../<action>` for
        each of `actions` (e.g. `expire_tokens=self.expire_tokens`); each answers `{"ok": true, ...}`."""
        control = f"/_sandbox/{self.name}"
        app.router.add_route("GET", f"{control}/state", self._control_state)
        app.router.add_route("POST", f"{control}/reset", _control_action(self.reset))
        app.router.add_route("POST", f"{control}/faults", self._control_fault)
        for path, action in actions.items():
            app.router.add_route("POST", f"{control}/{path}", _control_action(action))

    def _state(self, request: web.Request) -> dict[str, Any]:
        """What `GET /_sandbox/<name>/state` shows besides `"ok"`."""
        return self.snapshot()

    def _retry_after_from_json(self, value: Any) -> float | str | None:
        """`retry_after` as `POST /_sandbox/<name>/faults` passes it to `add_fault`: by default as sent."""
        return value

    async def _control_state(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, **self._state(request)})

    async def _control_fault(self, request: web.Request) -> web.Response:
        """Body `{"route", "status", "retry_after"?, "times"?, "after_effect"?}`; bad values answer 400."""
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "route" not in body or "status" not in body:
            payload = {"ok": False, "error": "missing_fields", "fields": ["route", "status"]}
            return web.json_response(payload, status=400)
        fault = self.add_fault(
            body["route"],
            int(body["status"]),
            retry_after=self._retry_after_from_json(body.get("retry_after")),
            times=int(body.get("times", 1)),
            after_effect=bool(body.get("after_effect", False)),
        )
        return web.json_response({"ok": True, "fault": fault.to_dict()})


def _control_action(action: Callable[[], None]) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        action()
        return web.json_response({"ok": True})

    return handle


async def send_webhook(url: str, body: bytes, headers: dict[str, str]) -> int:
    """A stand-in's webhook to warroom, as the vendor sends it: warroom's answer status (0: unreachable)."""
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=body, headers=headers) as answer,
        ):
            return answer.status
    except aiohttp.ClientError:
        return 0
