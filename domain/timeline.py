"""The analysis afterwards: how long an incident took to reach each stage, from its recorded result."""

from __future__ import annotations

from datetime import timedelta

from domain.models import IncidentResult, Model
from domain.vocab import Stage

DURATION_NAMES = ("to_identified", "to_mitigated", "to_resolved")


class Durations(Model):
    """Time from declare to the first Identified, the first Mitigated, and the resolve; None: never."""

    to_identified: timedelta | None = None
    to_mitigated: timedelta | None = None
    to_resolved: timedelta | None = None

    def as_seconds(self) -> dict[str, float | None]:
        return {name: _seconds(getattr(self, name)) for name in DURATION_NAMES}


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def durations(result: IncidentResult) -> Durations:
    """A stage skipped on the way (Investigating straight to Mitigated) counts as reached with the later one:
    an incident mitigated at 40 minutes was identified by then at the latest."""
    start = result.declared_at

    def since(stage: Stage) -> timedelta | None:
        at = result.stage_reached.get(stage.value)
        return None if at is None else at - start

    mitigated = since(Stage.MITIGATED)
    reached = [t for t in (since(Stage.IDENTIFIED), mitigated) if t is not None]
    identified = min(reached) if reached else None
    resolved = result.resolved_at - start if result.resolved_at else None
    return Durations(to_identified=identified, to_mitigated=mitigated, to_resolved=resolved)
