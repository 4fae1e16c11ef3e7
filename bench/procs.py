"""The processes a benchmark starts (worker, ingress, floor worker) and what /proc says about them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NoReturn

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# The product's own entry points, run as the separate processes a deployment runs.
WORKER = (
    "import asyncio, worker; from domain.settings import Settings; asyncio.run(worker.run_worker(Settings()))"
)
INGRESS = "from starter.cli import main; main(['web'])"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _stat_fields(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2 :].split()  # fields from the 3rd (state) on; comm may hold spaces


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (utime + stime)."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_cpu() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine since boot, from /proc/stat (idle, iowait: not busy)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(ticks[:8])  # guest time is already counted in user
    return (total - ticks[3] - ticks[4]) / CLOCK_TICKS, total / CLOCK_TICKS


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A memory figure from /proc/<pid>/status in MB: VmRSS (resident now) or VmHWM (the peak of VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child_named(name: str) -> int | None:
    """A direct child of this process with that command name (the dev server the SDK started)."""
    me = str(os.getpid())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            if comm == name and _stat_fields(int(entry.name))[1] == me:
                return int(entry.name)
        except (OSError, IndexError):
            continue
    return None


@dataclass
class Proc:
    """A child process whose output goes to a log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    _out: IO[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def cpu(self) -> float:
        return cpu_seconds(self.pid) if self.alive() else 0.0

    def rss(self) -> float:
        return rss_mb(self.pid) if self.alive() else 0.0

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s; only this process, by its pid."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        self._out.close()


def spawn(name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> Proc:
    log = log_dir / f"{name}.log"
    out = log.open("ab")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "WARROOM_", "TEMPORAL_"))}
    popen = subprocess.Popen(
        [sys.executable, *argv], cwd=ROOT, env={**full_env, **env}, stdout=out, stderr=subprocess.STDOUT
    )
    return Proc(name, popen, log, out)


def exit_after(name: str, body: Callable[[], None]) -> NoReturn:
    """Runs a bench command's `body`, then leaves with os._exit: 0, 130 on Ctrl-C, 1 on an error (printed
    with its traceback). os._exit: the Temporal SDK can crash in interpreter teardown (sdk-python #300)."""
    code = 0
    try:
        body()
    except KeyboardInterrupt:
        code = 130
    except Exception as err:
        import traceback

        traceback.print_exc()
        print(f"{name}: {type(err).__name__}: {err}", file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
