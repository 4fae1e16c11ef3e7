"""Slack's 3 s: the budget every Slack request is answered within, and what each kind of request is answered
when Temporal has not answered by then.

Slack shows the user an error for a command or form it got no answer to within 3 s, and re-sends an event it
got no 2xx for. The budget is counted from the moment the request arrived: web.py stamps it into the Bolt
context before dispatching (in Socket Mode the first middleware does, see starter/slack_middleware.py).
Listeners run their Temporal call through `Deadline.run` with `ANSWER_WITHIN`; web.py cuts off anything
that still runs at `LAST_CHANCE` (a `views.open` after a slow query, say) and answers with `late_answer`.

When Temporal did not answer in time, each kind of request gets:

- slash command: 200 with the "degraded" ephemeral. The command may still go through, so it says to check
  `status` before running it again.
- event (`reaction_added`, `message`): 503 `{"ok": false, "error": "temporal_unavailable"}`, so Slack
  delivers it again. The workflow acts on a message once (a broadcast per message ts, a debrief note per ts),
  so a retry of an event whose signal did land changes nothing.
- view_submission (declare, stage, update forms): 200 with `response_action: errors` on a block of the form,
  which stays open with its input. Submitting again acts once: the view's ID keys the Temporal update (and
  declare's ID allocation).
- block_actions (the nudge's button): 200; the form did not open, and clicking again opens it.

Each such answer is logged (`temporal_unavailable` or `slack_answer_overran`, with the kind) and counted in
`warroom_slack_temporal_timeouts_total{kind}`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from slack_bolt.response import BoltResponse

T = TypeVar("T")
RequestKind = Literal["command", "event", "view_submission", "block_actions", "other"]

# Slack gives an app 3 s to answer; leave room for the network on both sides.
ANSWER_WITHIN = 2.5  # a listener's own answer, Temporal's or "not in time"
LAST_CHANCE = 2.8  # web.py's answer for a request whose listener still runs
RECEIVED_AT = "warroom_received_at"  # Bolt context key: time.monotonic() when the request arrived

DEGRADED = (
    ":hourglass: warroom is degraded: Temporal did not answer in time. Your command may still go through; "
    "check `{cmd} status` in a moment before running it again."
)
LATE_FORM = (
    "warroom is degraded: Temporal did not answer in time. Submit the form again in a moment; "
    "it will act only once."
)
EVENT_NOT_TAKEN = {"ok": False, "error": "temporal_unavailable"}


def stamp(context: MutableMapping[str, Any], at: float | None = None) -> None:
    """Records when the request arrived, unless an earlier step already did."""
    context.setdefault(RECEIVED_AT, time.monotonic() if at is None else at)


@dataclass(frozen=True)
class Deadline:
    """The time left to answer one Slack request, counted from its arrival."""

    received_at: float

    @classmethod
    def of(cls, context: Mapping[str, Any]) -> Deadline:
        received = context.get(RECEIVED_AT)
        return cls(received if isinstance(received, float) else time.monotonic())

    def left(self, reserve: float = 0.0, within: float = ANSWER_WITHIN) -> float:
        """Seconds left, keeping `reserve` for what must still follow (e.g. opening a form)."""
        return max(0.0, self.received_at + within - reserve - time.monotonic())

    async def run(self, work: Awaitable[T], reserve: float = 0.0) -> T:
        """`work`, cancelled with TimeoutError when the budget (less `reserve`) runs out."""
        return await asyncio.wait_for(work, self.left(reserve))


def request_kind(body: Mapping[str, Any]) -> RequestKind:
    if "command" in body:
        return "command"
    kind = body.get("type")
    if kind == "event_callback":
        return "event"
    if kind in ("view_submission", "block_actions"):
        return kind  # type: ignore[return-value]
    return "other"


def form_error_block(view: Any, preferred: str | None = None) -> str:
    """The block of a form an `errors` answer goes under: `preferred` if the form has it, else its first
    input (Slack rejects `errors` for a block the view does not have)."""
    blocks = view.get("blocks") if isinstance(view, Mapping) else None
    inputs = [
        str(b["block_id"])
        for b in blocks or []
        if isinstance(b, Mapping) and b.get("type") == "input" and isinstance(b.get("block_id"), str)
    ]
    if preferred is not None and preferred in inputs:
        return preferred
    return inputs[0] if inputs else (preferred or "title")


def late_answer(body: Mapping[str, Any]) -> BoltResponse:
    """What a request is answered when Temporal has not answered within the budget (table above)."""
    kind = request_kind(body)
    if kind == "command":
        return BoltResponse(status=200, body=DEGRADED.format(cmd=str(body.get("command") or "/incident")))
    if kind == "view_submission":
        errors = {form_error_block(body.get("view")): LATE_FORM}
        return BoltResponse(status=200, body={"response_action": "errors", "errors": errors})
    if kind == "block_actions":
        return BoltResponse(status=200, body="")
    return BoltResponse(status=503, body=dict(EVENT_NOT_TAKEN))
