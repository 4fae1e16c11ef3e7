"""Percentiles over latency samples; a lost sample (never observed) counts as infinitely slow."""

from __future__ import annotations

import math
from typing import Any

LOST = math.inf


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile of `values` (which must not be empty)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def finite(value: float) -> float | None:
    """JSON has no infinity: a percentile that lands on a lost sample is reported as null."""
    return round(value, 2) if math.isfinite(value) else None


def dist(samples_ms: list[float]) -> dict[str, Any]:
    """n, p50, p99 and max in ms, and how many samples were lost."""
    if not samples_ms:
        return {"n": 0, "p50": None, "p99": None, "max": None, "lost": 0}
    return {
        "n": len(samples_ms),
        "p50": finite(pct(samples_ms, 50)),
        "p99": finite(pct(samples_ms, 99)),
        "max": finite(max(samples_ms)),
        "lost": sum(1 for v in samples_ms if not math.isfinite(v)),
    }


def ratio(value: float | None, floor: float | None) -> float | None:
    if value is None or not floor:
        return None
    return round(value / floor, 2)
