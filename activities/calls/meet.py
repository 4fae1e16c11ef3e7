"""Google Meet calls: a Meet space per request, created as a Workspace user through a service account.

Auth: google-auth's service-account credentials with domain-wide delegation (`GOOGLE_MEET_SUBJECT`), scope
`meetings.space.created`. The key file is read on first use; the credentials, and so the access token, live
only in this provider instance (worker memory). google-auth is synchronous and `requests` is not installed,
so the token is fetched over `urllib.request` in a thread, under a lock, only when the token is not fresh.

Idempotency: the Meet API offers no way to find a space by anything warroom chose (spaces cannot be listed
and carry no caller-supplied label). A retry after a lost response therefore creates a second space; the
first one stays unused and expires on its own. The incident still records exactly one link: the one the
successful attempt returned.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

import aiohttp
from google.auth import exceptions as google_exceptions
from google.auth import transport
from google.auth.credentials import TokenState
from google.oauth2 import service_account
from multidict import CIMultiDict
from temporalio.exceptions import ApplicationError

from activities.vendor_errors import http_failure, not_configured, retry_after_seconds, unreachable
from domain.effects import CallInfo, CallProviderName, CallRequest
from domain.settings import Settings

VENDOR = "Google Meet"
SCOPE = "https://www.googleapis.com/auth/meetings.space.created"
TIMEOUT_SECONDS = 15.0
AUTH_ADVICE = (
    "check GOOGLE_APPLICATION_CREDENTIALS and GOOGLE_MEET_SUBJECT, the service account's domain-wide "
    f"delegation of {SCOPE}, and that the Meet REST API is enabled in its project"
)


class UrllibResponse(transport.Response):
    """An HTTP answer in the shape google-auth expects."""

    def __init__(self, status: int, headers: Mapping[str, str], data: bytes) -> None:
        self._status = status
        self._headers = dict(headers)
        self._data = data

    @property
    def status(self) -> int:
        return self._status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._headers

    @property
    def data(self) -> bytes:
        return self._data


class UrllibRequest(transport.Request):
    """google-auth's transport over the standard library; error statuses are answers, not exceptions.

    Like aiohttp by default, it ignores proxy environment variables unless `trust_env` is set.
    """

    def __init__(self, timeout: float = TIMEOUT_SECONDS, trust_env: bool = False) -> None:
        self._timeout = timeout
        proxies = urllib.request.ProxyHandler() if trust_env else urllib.request.ProxyHandler({})
        self._opener = urllib.request.build_opener(proxies)

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> UrllibResponse:
        request = urllib.request.Request(url, data=body, headers=dict(headers or {}), method=method)
        try:
            with self._opener.open(request, timeout=timeout or self._timeout) as answer:
                return UrllibResponse(answer.status, dict(answer.headers), answer.read())
        except urllib.error.HTTPError as err:
            with err:
                return UrllibResponse(err.code, dict(err.headers or {}), err.read())
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
            # Only the error's type: a URLError's text may repeat the URL or the server's words.
            raise google_exceptions.TransportError(
                f"{type(err).__name__} reaching the token endpoint"
            ) from None


def _unreadable_key(reason: str) -> ApplicationError:
    return ApplicationError(
        f"{VENDOR} cannot use the key file GOOGLE_APPLICATION_CREDENTIALS names ({reason})",
        type="GoogleMeetNotConfigured",
        non_retryable=True,
    )


def _google_detail(body: Any) -> str:
    """Google's own short error text: `STATUS: message` from `{"error": {"status", "message"}}`."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return ""
    parts = [str(error[k]) for k in ("status", "message") if isinstance(error.get(k), str)]
    return ": ".join(parts)


class MeetProvider:
    """Creates Google Meet spaces for incident calls; see the module docstring for auth and retries."""

    name: CallProviderName = "meet"

    def __init__(
        self,
        *,
        credentials_path: str,
        subject: str,
        api_url: str,
        session: aiohttp.ClientSession | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self._credentials_path = credentials_path
        self._subject = subject
        self._api_url = api_url.rstrip("/")
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._transport = UrllibRequest(
            timeout, trust_env=session.trust_env if session is not None else False
        )
        self._credentials: service_account.Credentials | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, session: aiohttp.ClientSession | None) -> MeetProvider:
        missing = settings.missing_for("meet")
        if missing:
            raise not_configured(VENDOR, missing)
        return cls(
            credentials_path=str(settings.google_credentials_path).strip(),
            subject=str(settings.google_meet_subject).strip(),
            api_url=settings.google_meet_api_url,
            session=session,
        )

    async def create(self, req: CallRequest) -> CallInfo:
        """Creates one space. Not deduplicated across attempts: see the module docstring."""
        what = "creating a meeting space"
        for last_try in (False, True):
            token = await self._access_token()
            status, headers, body = await self._post_space(token, what)
            if status == 401 and not last_try:
                self._drop(token)
                continue
            if status == 200 and isinstance(body, dict):
                name, uri = body.get("name"), body.get("meetingUri")
                if isinstance(name, str) and name and isinstance(uri, str) and uri:
                    return CallInfo(provider="meet", join_url=uri, meeting_id=name)
                raise http_failure(VENDOR, what, status, detail="the answer has no name or meetingUri")
            raise http_failure(
                VENDOR,
                what,
                status,
                detail=_google_detail(body),
                retry_after=retry_after_seconds(headers) if status == 429 else None,
                auth_advice=AUTH_ADVICE,
                config_advice="check GOOGLE_MEET_API_URL",
            )
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns or raises

    # --- HTTP -------------------------------------------------------------------------------------------

    async def _post_space(self, token: str, what: str) -> tuple[int, Mapping[str, str], Any]:
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{self._api_url}/spaces"
        try:
            if self._session is not None:
                return await self._post(self._session, url, headers)
            async with aiohttp.ClientSession(timeout=self._timeout) as session:
                return await self._post(session, url, headers)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise unreachable(VENDOR, what, err) from None

    async def _post(
        self, session: aiohttp.ClientSession, url: str, headers: dict[str, str]
    ) -> tuple[int, Mapping[str, str], Any]:
        async with session.post(url, json={}, headers=headers, timeout=self._timeout) as resp:
            raw = await resp.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            return resp.status, CIMultiDict(resp.headers), body

    # --- token ------------------------------------------------------------------------------------------

    async def _access_token(self) -> str:
        async with self._lock:
            credentials = self._credentials
            if credentials is None:
                credentials = await asyncio.to_thread(self._load)
                self._credentials = credentials
            if credentials.token_state is not TokenState.FRESH:  # the same test as `not credentials.valid`
                await self._refresh(credentials)
            token = credentials.token
            if not isinstance(token, str) or not token:
                raise http_failure(VENDOR, "fetching an access token", 200, detail="no access token issued")
            return token

    def _drop(self, token: str) -> None:
        """Forgets `token` if the credentials still hold it: the next call refreshes them."""
        if self._credentials is not None and self._credentials.token == token:
            self._credentials.token = None

    def _load(self) -> service_account.Credentials:
        """The service-account credentials; an unusable key file is a non-retryable error (never quoted)."""
        try:
            return service_account.Credentials.from_service_account_file(
                self._credentials_path, scopes=[SCOPE], subject=self._subject
            )
        except OSError as err:
            raise _unreadable_key(f"{err.strerror or type(err).__name__}: {self._credentials_path}") from None
        except (ValueError, KeyError, TypeError) as err:
            reason = f"not a valid service account key file: {type(err).__name__}"
            raise _unreadable_key(reason) from None

    async def _refresh(self, credentials: service_account.Credentials) -> None:
        what = "fetching an access token"
        try:
            await asyncio.to_thread(credentials.refresh, self._transport)
        except google_exceptions.RefreshError as err:
            detail = str(err.args[0]) if err.args and isinstance(err.args[0], str) else ""
            status = 503 if err.retryable else 401
            raise http_failure(VENDOR, what, status, detail=detail, auth_advice=AUTH_ADVICE) from None
        except google_exceptions.TransportError as err:
            raise unreachable(VENDOR, what, err) from None
