"""How long something took, as people read it: one rule for every place that shows a duration (the
`/incident status` age, the resolve summary in Slack, the timeline files, `warroom report`).

The rule: truncate, never round up, so a duration never claims time that has not passed yet and the same
interval reads the same everywhere. Under a second, whole milliseconds (`350ms`); under a minute, whole
seconds (`4s`); from a minute on, the two largest units, the second left out when it is zero (`1m`,
`1m 4s`, `42m 10s`, `1h 5m`, `2d 3h`). A negative span (clocks apart) reads `0ms`.
"""

from __future__ import annotations

from itertools import pairwise

_UNITS = (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))


def human(seconds: float) -> str:
    """`seconds` as `350ms`, `4s`, `1m`, `1m 4s`, `1h 5m` or `2d 3h` (truncated, see the module)."""
    millis = max(int(seconds * 1000), 0)
    if millis < 1000:
        return f"{millis}ms"
    whole = millis // 1000
    for (unit, size), (smaller, smaller_size) in pairwise(_UNITS):
        if whole >= size:
            first, rest = divmod(whole, size)
            second = rest // smaller_size
            return f"{first}{unit} {second}{smaller}" if second else f"{first}{unit}"
    return f"{whole}s"
