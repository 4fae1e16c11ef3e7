"""Open-loop load: requests leave on schedule whatever the answers do, as many users would send them.

`paced` sends `rate * duration` requests, the i-th at start + i/rate (bounded in count and time); `ramp`
doubles the offered rate until a step fails (halving instead while the first rates fail), then tries once
between the highest rate that held and the lowest that did not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Paced:
    results: list[Any]
    sent: int
    send_rate: float  # what the sender achieved; below the offered rate when this process fell behind


async def paced(rate: float, duration: float, fire: Callable[[int], Awaitable[T]]) -> Paced:
    loop = asyncio.get_running_loop()
    count = max(1, round(rate * duration))
    start = loop.time()
    tasks: list[asyncio.Future[T]] = []
    for i in range(count):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(fire(i)))
    spread = loop.time() - start
    results = await asyncio.gather(*tasks)  # each request has its own timeout
    return Paced(list(results), count, count / spread if count > 1 and spread > 0 else rate)


@dataclass
class Step:
    rate: float
    holds: bool
    figures: dict[str, Any]


async def ramp(step: Callable[[float], Awaitable[Step]], start: float, ceiling: float) -> list[Step]:
    """At most log2(ceiling/start) + 2 steps going up, or 4 going down."""
    steps = [await step(start)]
    factor, rate = (2.0, start * 2) if steps[0].holds else (0.5, start / 2)
    for _ in range(12):
        if rate > ceiling or rate < start / 8 or steps[-1].holds != steps[0].holds:
            break
        steps.append(await step(rate))
        rate *= factor
    held = max((s.rate for s in steps if s.holds), default=None)
    failed = min((s.rate for s in steps if not s.holds and (held is None or s.rate > held)), default=None)
    if held is not None and failed is not None and failed > held * 1.3:
        steps.append(await step(round((held + failed) / 2)))
    return steps


def highest_holding(steps: list[Step]) -> float:
    return max((s.rate for s in steps if s.holds), default=0.0)
