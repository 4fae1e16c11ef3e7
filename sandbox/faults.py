"""Injected failures, per-channel rate limiting and the record of every Web API call."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from sandbox.models import Call, Fault

RATE_LIMITED_METHOD = "chat.postMessage"


class FaultBook:
    """Faults queued per method (FIFO); a fault applies to the next `count` calls (`-1`: every call)."""

    def __init__(self) -> None:
        self.faults: list[Fault] = []

    def add(
        self,
        method: str,
        *,
        error: str | None = None,
        status: int | None = None,
        retry_after: int | None = None,
        count: int = 1,
        delay_ms: int = 0,
        skip: int = 0,
        after_effect: bool = False,
        drop: bool = False,
    ) -> Fault:
        """`drop`: perform the call, then close the connection without answering (the client sees the server
        disconnect), as when a load balancer loses the answer after Slack did the work."""
        if not method:
            raise ValueError("a fault needs a method")
        if drop and (error is not None or status is not None or after_effect):
            raise ValueError(
                "a dropped call answers nothing: give no error, status or after_effect with drop"
            )
        if error is None and status is None and not delay_ms and not drop:
            raise ValueError("a fault needs an error, a status, a delay_ms or drop")
        if status is not None and not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error status")
        if count == 0 or count < -1:
            raise ValueError("count must be positive or -1")
        if status == 429 and retry_after is None:
            retry_after = 1
        fault = Fault(
            method, error, status, retry_after, count, max(0, delay_ms), max(0, skip), after_effect, drop
        )
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        self.faults.clear()

    def take(self, method: str) -> Fault | None:
        """The fault for this call, if any, using up one of its count."""
        for fault in self.faults:
            if fault.method in (method, "*"):
                if fault.skip > 0:
                    fault.skip -= 1
                    return None
                if fault.remaining > 0:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self.faults.remove(fault)
                return fault
        return None


class RateLimiter:
    """About one chat.postMessage per second per channel, like Slack's special tier."""

    def __init__(self, clock: Callable[[], float], interval: float = 1.0) -> None:
        self._clock = clock
        self.interval = interval
        self._last: dict[str, float] = {}

    def allow(self, channel_id: str) -> bool:
        now = self._clock()
        last = self._last.get(channel_id)
        if last is not None and now - last < self.interval:
            return False
        self._last[channel_id] = now
        return True

    def clear(self) -> None:
        self._last.clear()


class CallLog:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.calls: list[Call] = []

    def record(self, method: str, args: dict[str, Any], status: int, error: str | None) -> Call:
        call = Call(method, args, status, status == 200 and error is None, error, self._clock())
        self.calls.append(call)
        return call

    def counts(self) -> dict[str, int]:
        return dict(Counter(call.method for call in self.calls))
