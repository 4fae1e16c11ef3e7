"""Nudges: the commander (or the declarer) gets a DM when no status update went out for the severity's
interval (warroom.toml `nudge_minutes`).

`until_nudge` and `nudge` are pure functions over IncidentState; `Nudges.loop` is the timer loop the
workflow runs beside its main loop.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.models import IncidentState, PendingDm
    from domain.vocab import Stage, Status
    from workflows import transitions
    from workflows.context import IncidentContext


def until_nudge(s: IncidentState, now: datetime) -> timedelta | None:
    """How long until the next nudge is due (zero or less: now); None while no nudge can be due (no interval
    for the severity, Mitigated, resolved)."""
    minutes = s.nudge_minutes.get(s.severity.value, 0)
    if not minutes or s.status is Status.RESOLVED or s.stage is Stage.MITIGATED:
        return None
    since = max(t for t in (s.declared_at, s.last_update_at, s.last_nudge_at) if t is not None)
    return since + timedelta(minutes=minutes) - now


def nudge(s: IncidentState, now: datetime) -> None:
    """Records the nudge and queues its DM (none when there is nobody to nudge)."""
    s.last_nudge_at = now
    who = s.commander or s.declared_by
    minutes = s.nudge_minutes.get(s.severity.value, 0)
    transitions.record(s, now, "nudge", f"no status update for {minutes} min; nudged {_mention(who)}", None)
    if who:
        s.pending_dms.append(PendingDm(key=transitions.key(s, "dm"), user_id=who, kind="nudge"))


def _mention(user_id: str | None) -> str:
    return f"<@{user_id}>" if user_id else "nobody (no commander or declarer)"


class Nudges:
    """The nudge timer of one incident."""

    def __init__(self, ctx: IncidentContext) -> None:
        self._ctx = ctx
        self._s = ctx.s

    async def loop(self) -> None:
        """One timer per interval: an update while it runs does not restart it; on waking, the loop sleeps
        again for what is left. Stops at Mitigated and on resolve; picks up again if the stage moves back.
        """
        while True:
            delay = until_nudge(self._s, workflow.now())
            if delay is None:
                await workflow.wait_condition(lambda: until_nudge(self._s, workflow.now()) is not None)
            elif delay > timedelta(0):
                await workflow.sleep(delay)
            else:
                nudge(self._s, workflow.now())
                self._ctx.report()
