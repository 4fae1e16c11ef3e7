"""A stand-in for Google's OAuth token endpoint and the Meet REST API v2, over HTTP under `/meet`.

`settings()` writes a real service-account key file (a fresh RSA key per instance) whose `token_uri` points
here. `POST /meet/token` takes the JWT-bearer grant google-auth sends, checks the RS256 signature with the
key's public half and the claims (issuer, audience, delegated subject, scope, lifetime), and issues an
access token; `POST /meet/v2/spaces` creates a space for a valid token. Errors come in Google's shapes:
`{"error", "error_description"}` from the token endpoint, `{"error": {"code", "message", "status"}}` from
the API. Tests steer it in Python (`add_fault`, `expire_tokens`, `spaces`, `calls`);
`GET /_sandbox/meet/state`, `POST /_sandbox/meet/reset` and `POST /_sandbox/meet/faults` do the same over
HTTP.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from sandbox.vendor import VendorFault, VendorStandIn

SUBJECT = "oncall@example.com"  # the Workspace user the service account may act for
CLIENT_EMAIL = "warroom-sandbox@warroom-sandbox.iam.gserviceaccount.com"
PROJECT_ID = "warroom-sandbox"
SCOPE = "https://www.googleapis.com/auth/meetings.space.created"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"  # the audience google-auth always signs for
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
KEY_FILE = "google-sandbox-service-account.json"
TOKEN_TTL = 3599
MAX_ASSERTION_LIFETIME = 3600
CLOCK_SKEW = 300

PREFIX = "/meet"
API = f"{PREFIX}/v2"

FaultRoute = Literal["token", "create_space"]
FAULT_ROUTES: tuple[str, ...] = ("token", "create_space")

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


class GrantError(Exception):
    """The token endpoint's refusal: `{"error": error, "error_description": description}`."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.body = {"error": error, "error_description": description}


@dataclass
class _Grant:
    principal: str  # the delegated user, or the service account itself when the JWT had no `sub`
    expiry: float


def api_error(status: int, message: str) -> dict[str, Any]:
    """Google's JSON error body for an API (not OAuth) failure."""
    return {"error": {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "UNKNOWN")}}


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _meeting_code() -> str:
    letters = string.ascii_lowercase
    return "-".join("".join(secrets.choice(letters) for _ in range(n)) for n in (3, 4, 3))


class MeetFake(VendorStandIn[FaultRoute]):
    """Google's token endpoint (JWT-bearer grant) and `spaces.create` of the Meet REST API."""

    name = "meet"
    fault_routes = FAULT_ROUTES

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._clock = clock  # wall-clock seconds: JWT `iat` / `exp` are Unix times
        self.subject = SUBJECT
        self.client_email = CLIENT_EMAIL
        self.spaces: list[dict[str, Any]] = []
        self.token_requests = 0
        self.key_path: Path | None = None
        self._key: rsa.RSAPrivateKey | None = None
        self._key_id = secrets.token_hex(20)
        self._token_uris: set[str] = set()
        self._grants: dict[str, _Grant] = {}  # access token -> grant

    # --- Python API for tests ---------------------------------------------------------------------------

    @property
    def tokens(self) -> list[str]:
        """Every access token issued since the last reset (for tests that look for leaks)."""
        return list(self._grants)

    @property
    def private_key_pem(self) -> str:
        """The service account's private key as written to the key file (for tests that look for leaks)."""
        return self._private_pem().decode()

    def expire_tokens(self) -> None:
        """Every token issued so far is now expired (API calls with it answer 401)."""
        for grant in self._grants.values():
            grant.expiry = -math.inf

    def reset(self) -> None:
        """Forgets spaces, tokens, calls and faults; the service account and its key stay valid."""
        super().reset()
        self.spaces.clear()
        self.token_requests = 0
        self._grants.clear()

    def persisted(self) -> dict[str, Any]:
        return {"spaces": [dict(s) for s in self.spaces]}

    def restore(self, saved: dict[str, Any]) -> None:
        spaces = list(saved["spaces"])
        if not all(isinstance(s, dict) for s in spaces):
            raise TypeError("meet spaces must be objects")
        self.spaces = [dict(s) for s in spaces]

    def snapshot(self) -> dict[str, Any]:
        return {
            "spaces": [dict(s) for s in self.spaces],
            "token_requests": self.token_requests,
            **super().snapshot(),
            "subject": self.subject,
            "client_email": self.client_email,
        }

    # --- VendorFake -------------------------------------------------------------------------------------

    def settings(self, base_url: str, workdir: Path) -> dict[str, str]:
        """Writes the service-account key file (mode 0600) into `workdir` and points warroom at it."""
        token_uri = f"{base_url}{PREFIX}/token"
        self._token_uris.add(token_uri)
        info = {
            "type": "service_account",
            "project_id": PROJECT_ID,
            "private_key_id": self._key_id,
            "private_key": self._private_pem().decode(),
            "client_email": self.client_email,
            "client_id": "100000000000000000001",
            "auth_uri": f"{base_url}{PREFIX}/auth",
            "token_uri": token_uri,
            "auth_provider_x509_cert_url": f"{base_url}{PREFIX}/certs",
            "client_x509_cert_url": f"{base_url}{PREFIX}/certs/{self.client_email}",
            "universe_domain": "googleapis.com",
        }
        path = Path(workdir) / KEY_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(info, out, indent=2)
        path.chmod(0o600)  # the file may have existed with looser permissions
        self.key_path = path
        return {
            "GOOGLE_APPLICATION_CREDENTIALS": str(path),
            "GOOGLE_MEET_SUBJECT": self.subject,
            "GOOGLE_MEET_API_URL": f"{base_url}{API}",
        }

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("POST", f"{PREFIX}/token", self._token)
        app.router.add_route("POST", f"{API}/spaces", self._create_space)
        self.add_control_routes(app, expire_tokens=self.expire_tokens)

    # --- plumbing ---------------------------------------------------------------------------------------

    def _private_key(self) -> rsa.RSAPrivateKey:
        if self._key is None:
            self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return self._key

    def _private_pem(self) -> bytes:
        return self._private_key().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def _fault_answer(self, route: str, fault: VendorFault) -> web.Response:
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else None
        if route == "token":
            if fault.status >= 500:
                error = "internal_failure"
            elif fault.status == 429:
                error = "rate_limit_exceeded"
            else:
                error = "invalid_grant"
            body = {"error": error, "error_description": "Sandbox injected failure."}
            return self._answer(route, fault.status, body, headers)
        return self._answer(
            route, fault.status, api_error(fault.status, "Sandbox injected failure."), headers
        )

    # --- OAuth ------------------------------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        fault = self._take_fault("token")
        if fault is not None and not fault.after_effect:
            return self._fault_answer("token", fault)
        form = await request.post() if request.content_type == "application/x-www-form-urlencoded" else {}
        origin_uri = f"{request.scheme}://{request.host}{PREFIX}/token"
        try:
            if form.get("grant_type") != JWT_BEARER:
                raise GrantError(400, "unsupported_grant_type", "Invalid grant_type.")
            assertion = form.get("assertion")
            if not isinstance(assertion, str) or not assertion:
                raise GrantError(400, "invalid_request", "Missing required parameter: assertion")
            principal = self._verify(assertion, {GOOGLE_TOKEN_URI, origin_uri, *self._token_uris})
        except GrantError as err:
            return self._answer("token", err.status, err.body)
        token = f"ya29.sandbox-{secrets.token_urlsafe(32)}"
        self._grants[token] = _Grant(principal, self._clock() + TOKEN_TTL)
        if fault is not None:
            return self._fault_answer("token", fault)  # issued, but the answer is lost
        return self._answer(
            "token", 200, {"access_token": token, "expires_in": TOKEN_TTL, "token_type": "Bearer"}
        )

    def _verify(self, assertion: str, audiences: set[str]) -> str:
        """The principal the JWT-bearer `assertion` grants access for; GrantError when it grants none."""
        if self._key is None:
            raise GrantError(400, "invalid_grant", "Invalid grant: account not found")
        parts = assertion.split(".")
        if len(parts) != 3:
            raise GrantError(400, "invalid_grant", "Invalid JWT: not a JWS compact serialization.")
        try:
            header = json.loads(_b64url(parts[0]))
            claims = json.loads(_b64url(parts[1]))
            signature = _b64url(parts[2])
        except (ValueError, binascii.Error):
            raise GrantError(400, "invalid_grant", "Invalid JWT: undecodable header or claims.") from None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise GrantError(400, "invalid_grant", "Invalid JWT: header and claims must be objects.")
        if header.get("alg") != "RS256" or header.get("kid", self._key_id) != self._key_id:
            raise GrantError(400, "invalid_grant", "Invalid JWT Signature.")
        try:
            self._key.public_key().verify(
                signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            raise GrantError(400, "invalid_grant", "Invalid JWT Signature.") from None
        self._check_claims(claims, audiences)
        subject = claims.get("sub")
        if subject is None:
            return self.client_email
        if subject != self.subject:
            raise GrantError(
                401,
                "unauthorized_client",
                "Client is unauthorized to retrieve access tokens for this subject or these scopes.",
            )
        return str(subject)

    def _check_claims(self, claims: dict[str, Any], audiences: set[str]) -> None:
        if claims.get("iss") != self.client_email:
            raise GrantError(400, "invalid_grant", "Invalid JWT: the issuer is not the service account.")
        if claims.get("aud") not in audiences:
            raise GrantError(400, "invalid_grant", "Invalid JWT: the audience is not the token endpoint.")
        now = self._clock()
        iat, exp = claims.get("iat"), claims.get("exp")
        if (
            not isinstance(iat, int | float)
            or not isinstance(exp, int | float)
            or exp <= now
            or iat > now + CLOCK_SKEW
            or exp - iat > MAX_ASSERTION_LIFETIME
        ):
            raise GrantError(
                400,
                "invalid_grant",
                "Invalid JWT: the token must be short-lived; check the iat and exp claims.",
            )
        scopes = str(claims.get("scope") or "").split()
        if not scopes:
            raise GrantError(400, "invalid_scope", "Empty or missing scope not allowed.")
        if SCOPE not in scopes:
            raise GrantError(
                401,
                "unauthorized_client",
                "Client is unauthorized to retrieve access tokens for this subject or these scopes.",
            )

    # --- spaces -----------------------------------------------------------------------------------------

    async def _create_space(self, request: web.Request) -> web.Response:
        route = "create_space"
        fault = self._take_fault(route)
        if fault is not None and not fault.after_effect:
            return self._fault_answer(route, fault)
        status, payload = self._authorized(request)
        if status == 200:
            body: Any = {}
            if request.body_exists:
                try:
                    body = await request.json()
                except ValueError:
                    body = None
            if not isinstance(body, dict):
                status, payload = 400, api_error(400, "Invalid JSON payload received.")
            else:
                payload = self._store(body)
        if fault is not None and status == 200:
            return self._fault_answer(route, fault)  # created, but the answer is lost
        return self._answer(route, status, payload)

    def _authorized(self, request: web.Request) -> tuple[int, dict[str, Any]]:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        grant = self._grants.get(token.strip()) if scheme.lower() == "bearer" else None
        if grant is None or self._clock() >= grant.expiry:
            message = "Request had invalid authentication credentials. Expected a valid OAuth 2 access token."
            return 401, api_error(401, message)
        if grant.principal != self.subject:
            return 403, api_error(403, "The caller does not have permission")
        return 200, {}

    def _store(self, body: dict[str, Any]) -> dict[str, Any]:
        code = _meeting_code()
        asked = body.get("config")
        config = {"accessType": "TRUSTED", "entryPointAccess": "ALL"}
        if isinstance(asked, dict):
            config.update({k: str(v) for k, v in asked.items() if k in config})
        space = {
            "name": f"spaces/{secrets.token_urlsafe(9)}",
            "meetingUri": f"https://meet.google.com/{code}",
            "meetingCode": code,
            "config": config,
        }
        self.spaces.append(space)
        return space

    # --- control ----------------------------------------------------------------------------------------

    def _retry_after_from_json(self, value: Any) -> float | None:
        return float(value) if value is not None else None
