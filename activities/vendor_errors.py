"""HTTP failures of Zoom, Google Meet and Jira mapped to Temporal retry semantics.

One rule for every vendor: 429 retries after `Retry-After`; 5xx and transport errors retry with backoff;
bad credentials and other 4xx stop at once. Messages name the vendor, the status and what to do; they never
carry tokens, request bodies or response bodies beyond the vendor's own short error text.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from temporalio.exceptions import ApplicationError

DETAIL_MAX = 200  # characters of the vendor's own error text kept in the message


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return max(float(raw), 0.0) if raw is not None else None
    except (TypeError, ValueError):
        return None


def http_failure(
    vendor: str,
    what: str,
    status: int,
    *,
    detail: str = "",
    retry_after: float | None = None,
    auth_advice: str = "",
    config_advice: str = "",
) -> ApplicationError:
    """The ApplicationError an activity raises for an HTTP error answer.

    `vendor` is the display name (`Zoom`), `what` the call (`creating a meeting`), `auth_advice` what to
    check on 401/403 (`check ZOOM_CLIENT_ID and ZOOM_CLIENT_SECRET`), `config_advice` on other 4xx.
    The type is `<Vendor>RateLimited`, `<Vendor>AuthFailed`, `<Vendor>Rejected` or `<Vendor>Unavailable`.
    """
    name = vendor.replace(" ", "")
    said = f": {detail[:DETAIL_MAX]}" if detail else ""
    if status == 429:
        delay = timedelta(seconds=retry_after if retry_after is not None else 5.0)
        return ApplicationError(
            f"{vendor} rate-limited {what} (HTTP 429); retrying in {delay.total_seconds():g} s",
            type=f"{name}RateLimited",
            next_retry_delay=delay,
        )
    if status in (401, 403):
        advice = f" ({auth_advice})" if auth_advice else ""
        return ApplicationError(
            f"{vendor} refused warroom's credentials while {what} (HTTP {status}{said}){advice}",
            type=f"{name}AuthFailed",
            non_retryable=True,
        )
    if 400 <= status < 500 and status not in (408, 409, 425):
        advice = f" ({config_advice})" if config_advice else ""
        return ApplicationError(
            f"{vendor} rejected {what} (HTTP {status}{said}){advice}",
            type=f"{name}Rejected",
            non_retryable=True,
        )
    return ApplicationError(f"{vendor} failed while {what} (HTTP {status}{said})", type=f"{name}Unavailable")


def unreachable(vendor: str, what: str, err: BaseException) -> ApplicationError:
    """A transport error (connection refused, timeout): retried. Only the error's type is kept."""
    name = vendor.replace(" ", "")
    return ApplicationError(
        f"{vendor} unreachable while {what}: {type(err).__name__}", type=f"{name}Unavailable"
    )


def not_configured(vendor: str, missing: list[str]) -> ApplicationError:
    return ApplicationError(
        f"{vendor} is not configured on the worker: set {', '.join(missing)}",
        type=f"{vendor.replace(' ', '')}NotConfigured",
        non_retryable=True,
    )
