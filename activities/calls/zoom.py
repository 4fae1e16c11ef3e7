"""Zoom calls: a scheduled meeting per request, through a Server-to-Server OAuth app.

Auth: the `account_credentials` grant (HTTP Basic client ID and secret, the account ID in the form). The
access token lives only in this provider instance, in worker memory, until 5 minutes before it expires; a
lock makes concurrent calls share one fetch. Zoom invalidates a token when a newer one is issued for the same
app (another worker process, say), so an API 401 drops the token and retries once with a fresh one.

Idempotency: the meeting's agenda starts with a `warroom-key:` line carrying `CallRequest.key`; a retried
attempt lists the user's scheduled meetings first and reuses the one with that line, so a lost response
never leaves two meetings. The meeting starts "now" so that Zoom lists it (`type=scheduled` shows unexpired
meetings, past and upcoming).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from multidict import CIMultiDict
from pydantic import SecretStr
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.vendor_errors import http_failure, not_configured, retry_after_seconds, unreachable
from domain.effects import CallInfo, CallProviderName, CallRequest
from domain.settings import Settings

VENDOR = "Zoom"
TIMEOUT_SECONDS = 15.0
REFRESH_MARGIN_SECONDS = 300.0  # drop a cached token this long before Zoom says it expires
TOPIC_MAX = 200
MEETING_MINUTES = 60
KEY_PREFIX = "warroom-key: "
LIST_PAGE_SIZE = 300
MAX_LIST_PAGES = 10
AUTH_ADVICE = (
    "check ZOOM_ACCOUNT_ID, ZOOM_CLIENT_ID and ZOOM_CLIENT_SECRET, and that the Server-to-Server OAuth app "
    "is activated with the scopes meeting:write:meeting:admin and meeting:read:list_meetings:admin"
)
LIST_SCOPE_ADVICE = "add meeting:read:list_meetings:admin (classic: meeting:read:admin) to the Zoom app"
# OAuth errors by which a token endpoint refuses the credentials themselves (RFC 6749, section 5.2).
CREDENTIAL_ERRORS = frozenset({"invalid_client", "invalid_grant", "invalid_request", "unauthorized_client"})


@dataclass(frozen=True, repr=False)
class _Token:
    value: str
    refresh_at: float  # monotonic clock

    def __repr__(self) -> str:
        return "_Token(<redacted>)"


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: Mapping[str, str]
    body: Any  # parsed JSON, or None when the body was not JSON


def agenda_for(req: CallRequest) -> str:
    """The meeting agenda: the idempotency line first, so a truncated agenda still carries it."""
    return f"{KEY_PREFIX}{req.key}\nIncident call for INC-{req.incident_id}, opened by warroom."


def carries_key(agenda: object, key: str) -> bool:
    return isinstance(agenda, str) and f"{KEY_PREFIX}{key}" in agenda.splitlines()


def zoom_retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds to wait from `Retry-After`: seconds, or a timestamp (Zoom's daily limits send one)."""
    seconds = retry_after_seconds(headers)
    raw = headers.get("Retry-After") or headers.get("retry-after")
    if seconds is not None or not raw:
        return seconds
    when: datetime | None
    try:
        when = datetime.fromisoformat(raw.strip())
    except ValueError:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def _detail(body: Any, hidden: tuple[str, ...]) -> str:
    """Zoom's own short error text (`message`, or an OAuth `error: reason`), with any secret blanked."""
    if not isinstance(body, dict):
        return ""
    parts: list[str] = []
    if isinstance(body.get("error"), str):
        parts.append(body["error"])
    for name in ("reason", "message"):
        if isinstance(body.get(name), str):
            parts.append(body[name])
    text = ": ".join(parts)
    for secret in hidden:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


class ZoomProvider:
    """Creates Zoom meetings for incident calls; see the module docstring for auth and idempotency."""

    name: CallProviderName = "zoom"

    def __init__(
        self,
        *,
        account_id: str,
        client_id: str,
        client_secret: SecretStr,
        api_url: str,
        oauth_url: str,
        session: aiohttp.ClientSession | None = None,
        timeout: float = TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._account_id = account_id
        self._client_id = client_id
        self._client_secret = client_secret
        self._api_url = api_url.rstrip("/")
        self._oauth_url = oauth_url
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock
        self._token: _Token | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, session: aiohttp.ClientSession | None) -> ZoomProvider:
        missing = settings.missing_for("zoom")
        if missing or settings.zoom_client_secret is None:
            raise not_configured(VENDOR, missing)
        return cls(
            account_id=str(settings.zoom_account_id).strip(),
            client_id=str(settings.zoom_client_id).strip(),
            client_secret=settings.zoom_client_secret,
            api_url=settings.zoom_api_url,
            oauth_url=settings.zoom_oauth_url,
            session=session,
        )

    async def create(self, req: CallRequest) -> CallInfo:
        async with self._session_for() as session:
            if activity.in_activity() and activity.info().attempt > 1:
                found = await self._reusable(session, req)
                if found is not None:
                    activity.logger.info(
                        "reusing the Zoom meeting an earlier attempt created",
                        extra={"incident_id": req.incident_id, "meeting_id": found.meeting_id},
                    )
                    return found
            body = {
                "topic": req.topic[:TOPIC_MAX],
                "type": 2,  # scheduled: listed by `GET /users/me/meetings`, unlike instant meetings
                "start_time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "duration": MEETING_MINUTES,
                "timezone": "UTC",
                "agenda": agenda_for(req),
                # Nobody joins as the app's host user: responders must be able to start the call themselves.
                "settings": {"join_before_host": True, "jbh_time": 0, "waiting_room": False},
            }
            what = "creating a meeting"
            meeting = await self._api(session, "POST", "/users/me/meetings", what, json_body=body)
            return self._info(meeting, what, 201)

    # --- meetings ---------------------------------------------------------------------------------------

    async def _reusable(self, session: aiohttp.ClientSession, req: CallRequest) -> CallInfo | None:
        """The meeting an earlier attempt made, if Zoom lets the app list meetings. An app without the list
        scope creates the meeting rather than failing the call (a lost answer could then leave a second,
        unused meeting); the log says which scope to add."""
        try:
            return await self._find(session, req.key)
        except ApplicationError as err:
            if err.non_retryable:
                activity.logger.warning(
                    f"cannot list Zoom meetings to reuse an earlier attempt's, creating one: {err.message};"
                    f" {LIST_SCOPE_ADVICE}",
                    extra={"incident_id": req.incident_id},
                )
                return None
            raise

    async def _find(self, session: aiohttp.ClientSession, key: str) -> CallInfo | None:
        """The meeting an earlier attempt made for `key`, from the user's scheduled meetings."""
        what = "listing meetings"
        params = {"type": "scheduled", "page_size": str(LIST_PAGE_SIZE)}
        for _ in range(MAX_LIST_PAGES):
            page = await self._api(session, "GET", "/users/me/meetings", what, params=params)
            meetings = page.get("meetings")
            for meeting in meetings if isinstance(meetings, list) else []:
                if isinstance(meeting, dict) and carries_key(meeting.get("agenda"), key):
                    return self._info(meeting, what, 200)
            next_token = page.get("next_page_token")
            if not isinstance(next_token, str) or not next_token:
                return None
            params = {**params, "next_page_token": next_token}
        return None

    def _info(self, meeting: dict[str, Any], what: str, status: int) -> CallInfo:
        join_url, meeting_id = meeting.get("join_url"), meeting.get("id")
        if not isinstance(join_url, str) or not join_url or meeting_id in (None, ""):
            raise http_failure(VENDOR, what, status, detail="the answer has no meeting id or join_url")
        return CallInfo(provider="zoom", join_url=join_url, meeting_id=str(meeting_id))

    # --- HTTP -------------------------------------------------------------------------------------------

    @asynccontextmanager
    async def _session_for(self) -> AsyncIterator[aiohttp.ClientSession]:
        if self._session is not None:
            yield self._session
            return
        async with aiohttp.ClientSession(timeout=self._timeout) as session:
            yield session

    async def _api(
        self,
        session: aiohttp.ClientSession,
        method: str,
        path: str,
        what: str,
        *,
        json_body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """One API call; a 401 fetches a fresh token and tries once more."""
        for last_try in (False, True):
            token = await self._access_token(session)
            answer = await self._send(
                session,
                method,
                f"{self._api_url}{path}",
                what,
                headers={"Authorization": f"Bearer {token}"},
                json_body=json_body,
                params=params,
            )
            if answer.status == 401 and not last_try:
                self._drop(token)
                continue
            if 200 <= answer.status < 300 and isinstance(answer.body, dict):
                return answer.body
            if 200 <= answer.status < 300:
                raise http_failure(VENDOR, what, answer.status, detail="the answer is not a JSON object")
            raise self._failure(answer, what, token)
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns or raises

    async def _send(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        what: str,
        *,
        headers: dict[str, str] | None = None,
        json_body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        form: dict[str, str] | None = None,
    ) -> _Answer:
        try:
            async with session.request(
                method,
                url,
                headers=headers,
                json=json_body,
                params=params,
                data=form,
                timeout=self._timeout,
            ) as resp:
                raw = await resp.read()
                answer_headers = CIMultiDict(resp.headers)  # header names are case-insensitive
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as err:
            raise unreachable(VENDOR, what, err) from None
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        return _Answer(status, answer_headers, body)

    def _failure(self, answer: _Answer, what: str, token: str = "") -> ApplicationError:
        return http_failure(
            VENDOR,
            what,
            answer.status,
            detail=_detail(answer.body, (self._client_secret.get_secret_value(), token)),
            retry_after=zoom_retry_after(answer.headers) if answer.status == 429 else None,
            auth_advice=AUTH_ADVICE,
            config_advice="check ZOOM_API_URL, ZOOM_OAUTH_URL and the app's scopes",
        )

    # --- token ------------------------------------------------------------------------------------------

    async def _access_token(self, session: aiohttp.ClientSession) -> str:
        async with self._lock:
            cached = self._token
            if cached is not None and self._clock() < cached.refresh_at:
                return cached.value
            self._token = None
            self._token = await self._fetch_token(session)
            return self._token.value

    def _drop(self, token: str) -> None:
        """Forgets `token` if it is still the cached one (a concurrent call may have replaced it)."""
        if self._token is not None and self._token.value == token:
            self._token = None

    async def _fetch_token(self, session: aiohttp.ClientSession) -> _Token:
        what = "fetching an access token"
        answer = await self._send(
            session,
            "POST",
            self._oauth_url,
            what,
            headers={
                "Authorization": aiohttp.encode_basic_auth(
                    self._client_id, self._client_secret.get_secret_value()
                )
            },
            form={"grant_type": "account_credentials", "account_id": self._account_id},
        )
        body = answer.body if isinstance(answer.body, dict) else {}
        if answer.status == 200:
            value, expires_in = body.get("access_token"), body.get("expires_in", 3600)
            if not isinstance(value, str) or not value or not isinstance(expires_in, int | float):
                raise http_failure(VENDOR, what, answer.status, detail="the answer has no access_token")
            margin = min(REFRESH_MARGIN_SECONDS, expires_in / 2)
            return _Token(value, self._clock() + expires_in - margin)
        if answer.status == 400 and body.get("error") in CREDENTIAL_ERRORS:
            # OAuth lets a token endpoint refuse client credentials with 400; to warroom that is a 401.
            said = _detail(body, (self._client_secret.get_secret_value(),))
            detail = f"{said}; the token endpoint answered HTTP 400"
            raise http_failure(VENDOR, what, 401, detail=detail, auth_advice=AUTH_ADVICE)
        raise self._failure(answer, what)
