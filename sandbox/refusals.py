"""Content Slack refuses (bad blocks, views or text) and the record the sandbox keeps of every refusal.

A refusal is the sandbox saying no to what the app *sent* (a malformed message or view), as opposed to an
ordinary API answer like `channel_not_found` or an injected fault: it almost always means a bug in the app,
so tests see every one of them (tests/refusals.py fails a test on any it did not declare).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.models import ApiError

ANY_ERROR = "*"


class Refused(ApiError):
    """Slack refuses the content of a call; `reason` says what was wrong, like Slack's `[ERROR]` message."""

    def __init__(self, error: str, reason: str, **extra: Any) -> None:
        extra.setdefault("response_metadata", {"messages": [f"[ERROR] {reason}"]})
        super().__init__(error, **extra)
        self.reason = reason


@dataclass(frozen=True)
class Refusal:
    """One refused call: where (a Web API method, `response_url`, `command_ack`, `view_submission`), why."""

    method: str
    error: str
    reason: str
    at: float
    expected: bool  # declared with `SandboxState.expect_refusals` before it happened

    def describe(self) -> str:
        return f"{self.method}: {self.error} ({self.reason})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "error": self.error,
            "reason": self.reason,
            "at": self.at,
            "expected": self.expected,
        }


class RefusalLog:
    """Every refusal of one sandbox, oldest first; kept across `reset` so no check ever misses one."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.refusals: list[Refusal] = []
        self.expected: set[str] = set()

    def expect(self, *errors: str) -> None:
        """Declares errors (e.g. "invalid_blocks") the caller means to provoke; none given: any error."""
        self.expected.update(errors or (ANY_ERROR,))

    def is_expected(self, error: str) -> bool:
        return ANY_ERROR in self.expected or error in self.expected

    def record(self, method: str, refused: Refused) -> Refusal:
        refusal = Refusal(
            method, refused.error, refused.reason, self._clock(), self.is_expected(refused.error)
        )
        self.refusals.append(refusal)
        return refusal
