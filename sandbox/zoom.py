"""A stand-in for the slice of Zoom warroom uses, over HTTP under `/zoom`.

Served: Server-to-Server OAuth (`POST /zoom/oauth/token`, grant `account_credentials`, HTTP Basic
`CLIENT_ID`:`CLIENT_SECRET`), create a meeting and list meetings (`/zoom/v2/users/me/meetings`, Bearer).
Errors come in Zoom's shapes: `{"reason", "error"}` from the token endpoint, `{"code", "message"}` from the
API. Tests steer it in Python (`add_fault`, `expire_tokens`, `revoke_credentials`, `meetings`, `calls`);
`GET /_sandbox/zoom/state`, `POST /_sandbox/zoom/reset` and `POST /_sandbox/zoom/faults` do the same over
HTTP.
"""

from __future__ import annotations

import base64
import hmac
import math
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from aiohttp import BasicAuth, web

from sandbox.vendor import VendorFault, VendorStandIn

ACCOUNT_ID = "sandbox-zoom-account"
CLIENT_ID = "sandbox-zoom-client-id"
CLIENT_SECRET = "sandbox-zoom-client-secret-5f1c"
HOST_ID = "sandbox-host-0001"
HOST_EMAIL = "oncall@example.com"
JOIN_HOST = "https://zoom.example"  # a reserved domain: join links never reach a real Zoom
TOKEN_TTL = 3599
LIST_SCOPE = "meeting:read:list_meetings"
SCOPE = f"meeting:write:meeting {LIST_SCOPE}"
TOPIC_MAX = 200
AGENDA_MAX = 2000
PAGE_SIZE_DEFAULT = 30
PAGE_SIZE_MAX = 300
MEETING_TYPES = (1, 2, 3, 8)  # instant, scheduled, recurring without / with a fixed time
LIST_TYPES = ("scheduled", "live", "upcoming", "upcoming_meetings", "previous_meetings")

PREFIX = "/zoom"
API = f"{PREFIX}/v2"

FaultRoute = Literal["token", "create_meeting", "list_meetings"]
FAULT_ROUTES: tuple[str, ...] = ("token", "create_meeting", "list_meetings")

INVALID_TOKEN = {"code": 124, "message": "Invalid access token."}
EXPIRED_TOKEN = {"code": 124, "message": "Access token is expired."}
_TOKEN_ERRORS = {401: "invalid_client", 429: "too_many_requests"}


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _validation(message: str) -> tuple[int, dict[str, Any]]:
    return 400, {"code": 300, "message": message}


class ZoomFake(VendorStandIn[FaultRoute]):
    """Zoom's OAuth token endpoint and meetings API as warroom uses them, with injected faults."""

    name = "zoom"
    fault_routes = FAULT_ROUTES

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._clock = clock
        self.meetings: list[dict[str, Any]] = []
        self.token_requests = 0
        self.revoked = False
        self.scope = SCOPE  # what the app's tokens are granted (`grant_scope` narrows it)
        self._tokens: dict[str, float] = {}  # access token -> expiry (clock)
        self._scopes: dict[str, str] = {}  # access token -> the scopes it was granted
        self._pages: dict[str, tuple[str, int, int]] = {}  # next_page_token -> (type, offset, page size)
        self._next_id = 81_000_000_001

    # --- Python API for tests ---------------------------------------------------------------------------

    @property
    def tokens(self) -> list[str]:
        """Every access token issued since the last reset (for tests that look for leaks)."""
        return list(self._tokens)

    def expire_tokens(self) -> None:
        """Every token issued so far is now expired (API calls with it answer 401)."""
        for token in self._tokens:
            self._tokens[token] = -math.inf

    def revoke_credentials(self) -> None:
        """The app is deactivated: token requests fail with invalid_client, existing tokens with 401."""
        self.revoked = True

    def grant_scope(self, scope: str) -> None:
        """The app's scopes (space-separated), as set on its Zoom Marketplace page; tokens issued from now on
        carry them. Listing meetings without `meeting:read:list_meetings` answers Zoom's 4711."""
        self.scope = scope

    def reset(self) -> None:
        super().reset()
        self.meetings.clear()
        self.token_requests = 0
        self.revoked = False
        self.scope = SCOPE
        self._tokens.clear()
        self._scopes.clear()
        self._pages.clear()
        self._next_id = 81_000_000_001

    def persisted(self) -> dict[str, Any]:
        return {"meetings": [dict(m) for m in self.meetings], "next_id": self._next_id}

    def restore(self, saved: dict[str, Any]) -> None:
        meetings, next_id = list(saved["meetings"]), int(saved["next_id"])
        if not all(isinstance(m, dict) for m in meetings):
            raise TypeError("zoom meetings must be objects")
        self.meetings, self._next_id = [dict(m) for m in meetings], next_id

    def snapshot(self) -> dict[str, Any]:
        return {
            "meetings": [dict(m) for m in self.meetings],
            "token_requests": self.token_requests,
            **super().snapshot(),
            "revoked": self.revoked,
        }

    # --- VendorFake -------------------------------------------------------------------------------------

    def settings(self, base_url: str, workdir: Path) -> dict[str, str]:
        return {
            "ZOOM_ACCOUNT_ID": ACCOUNT_ID,
            "ZOOM_CLIENT_ID": CLIENT_ID,
            "ZOOM_CLIENT_SECRET": CLIENT_SECRET,
            "ZOOM_API_URL": f"{base_url}{API}",
            "ZOOM_OAUTH_URL": f"{base_url}{PREFIX}/oauth/token",
        }

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("POST", f"{PREFIX}/oauth/token", self._token)
        app.router.add_route("POST", f"{API}/users/me/meetings", self._create_meeting)
        app.router.add_route("GET", f"{API}/users/me/meetings", self._list_meetings)
        self.add_control_routes(
            app, expire_tokens=self.expire_tokens, revoke_credentials=self.revoke_credentials
        )

    # --- plumbing ---------------------------------------------------------------------------------------

    def _fault_answer(self, route: str, fault: VendorFault) -> web.Response:
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
        if route == "token":
            error = _TOKEN_ERRORS.get(
                fault.status, "server_error" if fault.status >= 500 else "invalid_request"
            )
            body = {"reason": "Sandbox injected failure", "error": error}
            return self._answer(route, fault.status, body, headers)
        if fault.status == 401:
            return self._answer(route, 401, INVALID_TOKEN)
        if fault.status == 429:
            message = "You have reached the maximum per-second rate limit for this API. Try again later."
            return self._answer(route, 429, {"code": 429, "message": message}, headers)
        return self._answer(
            route, fault.status, {"code": fault.status, "message": "Sandbox injected failure."}
        )

    def _bearer_problem(self, request: web.Request) -> dict[str, Any] | None:
        """Zoom's 401 body when the request's access token is missing, unknown, expired or revoked."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expiry = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if expiry is None or self.revoked:
            return INVALID_TOKEN
        if self._clock() >= expiry:
            return EXPIRED_TOKEN
        return None

    def _granted(self, request: web.Request, scope: str) -> bool:
        token = request.headers.get("Authorization", "").partition(" ")[2].strip()
        granted = self._scopes.get(token, "").split()
        return scope in granted or f"{scope}:admin" in granted

    # --- OAuth ------------------------------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        fault = self._take_fault("token")
        if fault is not None and not fault.after_effect:
            return self._fault_answer("token", fault)
        params: dict[str, str] = dict(request.query)
        if request.content_type == "application/x-www-form-urlencoded":
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        status, payload = self._grant(request.headers.get("Authorization", ""), params)
        if fault is not None:
            return self._fault_answer("token", fault)  # issued, but the answer is lost
        return self._answer("token", status, payload)

    def _grant(self, authorization: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        try:
            auth = BasicAuth.decode(authorization)
        except ValueError:
            return 400, {"reason": "Missing client_id or client_secret", "error": "invalid_request"}
        if params.get("grant_type") != "account_credentials":
            return 400, {"reason": "Unsupported grant type", "error": "unsupported_grant_type"}
        good_client = hmac.compare_digest(auth.login, CLIENT_ID) and hmac.compare_digest(
            auth.password, CLIENT_SECRET
        )
        if not good_client or self.revoked:
            return 400, {"reason": "Invalid client_id or client_secret", "error": "invalid_client"}
        if params.get("account_id") != ACCOUNT_ID:
            return 400, {"reason": "Invalid account_id", "error": "invalid_request"}
        token = secrets.token_urlsafe(32)
        self._tokens[token] = self._clock() + TOKEN_TTL
        self._scopes[token] = self.scope
        return 200, {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": TOKEN_TTL,
            "scope": self.scope,
        }

    # --- meetings ---------------------------------------------------------------------------------------

    async def _create_meeting(self, request: web.Request) -> web.Response:
        route = "create_meeting"
        fault = self._take_fault(route)
        if fault is not None and not fault.after_effect:
            return self._fault_answer(route, fault)
        problem = self._bearer_problem(request)
        if problem is not None:
            return self._answer(route, 401, problem)
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            status, payload = _validation("Request Body should be a valid JSON object.")
        else:
            status, payload = self._store(body)
        if fault is not None and status == 201:
            return self._fault_answer(route, fault)  # created, but the answer is lost
        return self._answer(route, status, payload)

    def _store(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        topic = body.get("topic", "")
        agenda = body.get("agenda", "")
        kind = body.get("type", 2)
        duration = body.get("duration", 60)
        if not isinstance(topic, str) or len(topic) > TOPIC_MAX:
            return _validation(f"Invalid field: topic (a string of at most {TOPIC_MAX} characters).")
        if not isinstance(agenda, str) or len(agenda) > AGENDA_MAX:
            return _validation(f"Invalid field: agenda (a string of at most {AGENDA_MAX} characters).")
        if kind not in MEETING_TYPES:
            return _validation("Invalid field: type.")
        if not isinstance(duration, int) or duration < 0:
            return _validation("Invalid field: duration.")
        now = datetime.now(UTC)
        start = now
        if kind != 1 and body.get("start_time"):
            parsed = _parse_time(str(body["start_time"]))
            if parsed is None:
                return _validation("Invalid field: start_time.")
            start = parsed
        meeting_id = self._next_id
        self._next_id += 1
        password = secrets.token_hex(3)
        pwd = base64.urlsafe_b64encode(secrets.token_bytes(18)).decode().rstrip("=")
        asked = body.get("settings")
        settings: dict[str, Any] = asked if isinstance(asked, dict) else {}
        meeting = {
            "uuid": base64.b64encode(secrets.token_bytes(16)).decode(),
            "id": meeting_id,
            "host_id": HOST_ID,
            "host_email": HOST_EMAIL,
            "topic": topic or "Zoom Meeting",
            "type": kind,
            "status": "waiting",
            "start_time": _stamp(start),
            "duration": duration,
            "timezone": str(body.get("timezone") or "UTC"),
            "agenda": agenda,
            "created_at": _stamp(now),
            "start_url": f"{JOIN_HOST}/s/{meeting_id}?zak={secrets.token_urlsafe(12)}",
            "join_url": f"{JOIN_HOST}/j/{meeting_id}?pwd={pwd}",
            "password": password,
            "pre_schedule": False,
            "settings": {"join_before_host": False, "waiting_room": False, **settings},
        }
        self.meetings.append(meeting)
        return 201, meeting

    async def _list_meetings(self, request: web.Request) -> web.Response:
        route = "list_meetings"
        fault = self._take_fault(route)
        if fault is not None:
            return self._fault_answer(route, fault)  # listing has no effect to keep
        problem = self._bearer_problem(request)
        if problem is not None:
            return self._answer(route, 401, problem)
        if not self._granted(request, LIST_SCOPE):
            message = f"Invalid access token, does not contain scopes:[{LIST_SCOPE}, {LIST_SCOPE}:admin]."
            return self._answer(route, 400, {"code": 4711, "message": message})
        status, payload = self._page(request.query.get("type", "scheduled"), request.query)
        return self._answer(route, status, payload)

    def _page(self, kind: str, query: Any) -> tuple[int, dict[str, Any]]:
        if kind not in LIST_TYPES:
            return _validation("Invalid field: type.")
        offset = 0
        try:
            size = min(int(query.get("page_size", PAGE_SIZE_DEFAULT)), PAGE_SIZE_MAX)
        except ValueError:
            return _validation("Invalid field: page_size.")
        if size < 1:
            return _validation("Invalid field: page_size.")
        token = query.get("next_page_token")
        if token:
            saved = self._pages.get(token)
            if saved is None or saved[0] != kind:
                return _validation("Invalid field: next_page_token.")
            kind, offset, size = saved
        found = self._listed(kind)
        page = found[offset : offset + size]
        next_token = ""
        if offset + size < len(found):
            next_token = secrets.token_urlsafe(24)
            self._pages[next_token] = (kind, offset + size, size)
        return 200, {
            "next_page_token": next_token,
            "page_size": size,
            "total_records": len(found),
            "meetings": [_summary(m) for m in page],
        }

    def _listed(self, kind: str) -> list[dict[str, Any]]:
        """The meetings `GET .../meetings?type=<kind>` shows: scheduled ones (never instant meetings)."""
        now = datetime.now(UTC)

        def ends(m: dict[str, Any]) -> datetime:
            start = _parse_time(m["start_time"]) or now
            return start + timedelta(minutes=int(m["duration"]))

        scheduled = [m for m in self.meetings if m["type"] != 1]
        if kind == "live":
            return []  # nobody ever starts a sandbox meeting
        if kind in ("upcoming", "upcoming_meetings"):
            return [m for m in scheduled if ends(m) > now]
        if kind == "previous_meetings":
            return [m for m in scheduled if ends(m) <= now]
        return scheduled


def _summary(meeting: dict[str, Any]) -> dict[str, Any]:
    """A meeting as `GET /users/{userId}/meetings` lists it."""
    keys = ("uuid", "id", "host_id", "topic", "type", "start_time", "duration", "timezone", "agenda")
    return {
        **{k: meeting[k] for k in keys},
        "created_at": meeting["created_at"],
        "join_url": meeting["join_url"],
    }
