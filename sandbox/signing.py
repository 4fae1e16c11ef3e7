"""Slack request signing (v0): what the platform sends and what an app checks. Standard library only."""

from __future__ import annotations

import hashlib
import hmac
import time

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"
MAX_AGE_SECONDS = 300


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def signature(secret: str, timestamp: str | int, body: str | bytes) -> str:
    """`v0=` + hex HMAC-SHA256 over `v0:<timestamp>:<body>` keyed by the signing secret."""
    base = b"v0:" + str(timestamp).encode() + b":" + _bytes(body)
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(
    secret: str,
    body: str | bytes,
    timestamp: int | None = None,
    content_type: str = FORM_CONTENT_TYPE,
) -> dict[str, str]:
    """The headers Slack puts on a request it delivers to an app."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature(secret, ts, body),
        "Content-Type": content_type,
    }


def verify(
    secret: str,
    timestamp: str | None,
    body: str | bytes,
    received: str | None,
    *,
    now: float | None = None,
    max_age: int = MAX_AGE_SECONDS,
) -> bool:
    """True if the signature matches and the timestamp is fresh (replay protection)."""
    if not timestamp or not received:
        return False
    try:
        age = abs((time.time() if now is None else now) - int(timestamp))
    except ValueError:
        return False
    return age <= max_age and hmac.compare_digest(signature(secret, timestamp, body), received)
