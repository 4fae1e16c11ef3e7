"""Slack API failures mapped to Temporal retry semantics; messages never include tokens or payloads."""

from __future__ import annotations

from datetime import timedelta

from slack_sdk.errors import SlackApiError
from temporalio.exceptions import ApplicationError

# Errors that no retry will fix: bad credentials, missing scopes, config mistakes.
PERMANENT = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "not_allowed_token_type",
        "ekm_access_denied",
        "team_access_not_granted",
        "invalid_arguments",
        "invalid_arg_name",
        "invalid_form_data",
        "invalid_json",
        "method_deprecated",
        "unknown_method",
        # What warroom sent is malformed: sending it again fails again (senders fall back to plain text).
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_metadata_format",
        # A file download answered with Slack's sign-in page: the token cannot read files.
        "sign_in_page",
    }
)
# The message is too big for Slack: it fails the same way everywhere (senders shorten it and try once more).
REFUSED_CONTENT = frozenset({"invalid_blocks", "invalid_blocks_format", "msg_too_long"})
# Errors that concern one channel or message: the others still get their copy.
PER_CHANNEL = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "thread_not_found",
        "msg_too_long",
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
    }
)

TRANSIENT = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout"})
# No answer at all (connection dropped or timed out): Slack may or may not have done the work.
CONNECTION_LOST = "connection_lost"

ADVICE = {
    "invalid_auth": "check SLACK_BOT_TOKEN",
    "not_authed": "set SLACK_BOT_TOKEN",
    "token_revoked": "reinstall the Slack app and update SLACK_BOT_TOKEN",
    "missing_scope": "add the missing scope from manifest.yml and reinstall the app",
    "sign_in_page": "add the `files:read` scope from manifest.yml and reinstall the app",
    "channel_not_found": "invite @warroom to the channel or remove it with `/incident broadcast remove`",
    "not_in_channel": "invite @warroom to the channel",
    "is_archived": "unarchive the channel or remove it with `/incident broadcast remove`",
}


class SlackCallError(Exception):
    """A Slack error a caller may handle (e.g. `name_taken`); becomes an ApplicationError otherwise."""

    def __init__(self, method: str, error: str, status: int, retry_after: float | None) -> None:
        super().__init__(f"Slack {method} failed: {error}")
        self.method = method
        self.error = error
        self.status = status
        self.retry_after = retry_after

    @classmethod
    def from_sdk(cls, method: str, exc: SlackApiError) -> SlackCallError:
        response = exc.response
        status = int(getattr(response, "status_code", 0) or 0)
        data = getattr(response, "data", None)
        error = data.get("error", "") if isinstance(data, dict) else ""
        headers = getattr(response, "headers", {}) or {}
        retry_after = _retry_after(headers)
        if status == 429:
            error = "ratelimited"
        return cls(method, error or f"http_{status}", status, retry_after)

    @property
    def per_channel(self) -> bool:
        return self.error in PER_CHANNEL

    @property
    def rate_limited(self) -> bool:
        return self.status == 429 or self.error == "ratelimited"

    @classmethod
    def unanswered(cls, method: str, exc: BaseException) -> SlackCallError:
        """The call got no answer (dropped connection, timeout): whether Slack acted is unknown."""
        error = "request_timeout" if isinstance(exc, TimeoutError) else CONNECTION_LOST
        return cls(method, error, 0, None)

    @property
    def transient(self) -> bool:
        """A failure that may pass: a 5xx, Slack's own internal/fatal/timeout errors, or no answer at all."""
        return self.status >= 500 or self.error in TRANSIENT or self.error == CONNECTION_LOST

    @property
    def refused_content(self) -> bool:
        """Slack refused the message itself (malformed blocks, too long): repeating it cannot help."""
        return self.error in REFUSED_CONTENT

    def to_application_error(self) -> ApplicationError:
        advice = ADVICE.get(self.error)
        message = f"{self} ({advice})" if advice else str(self)
        if self.status == 429 or self.error == "ratelimited":
            delay = timedelta(seconds=self.retry_after if self.retry_after is not None else 1.0)
            return ApplicationError(message, type="SlackRateLimited", next_retry_delay=delay)
        if self.status == 0:  # never answered: retried by Temporal; the retry looks for what happened
            return ApplicationError(
                f"Slack unreachable during {self.method}: {self.error}", type="SlackUnavailable"
            )
        permanent = self.error in PERMANENT or self.error in PER_CHANNEL
        return ApplicationError(
            message, type="SlackPermanentError" if permanent else "SlackError", non_retryable=permanent
        )


def _retry_after(headers: object) -> float | None:
    getter = getattr(headers, "get", None)
    if getter is None:
        return None
    raw = getter("Retry-After") or getter("retry-after")
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    try:
        return max(float(raw), 0.0) if raw is not None else None
    except (TypeError, ValueError):
        return None
