"""The floor: the least a signal that runs one activity costs on the same server, measured in the same run.

`FloorWorkflow` has the shape of `IncidentWorkflow` with nothing else in it: its signal handler queues,
its main loop runs one activity per signal. The activity does nothing but send one UDP datagram (the
signal's number) to the benchmark, so the benchmark sees when it ran without asking Temporal.

Its worker is a separate process, like warroom's: `python -m bench.floor`, configured by TEMPORAL_ADDRESS,
BENCH_FLOOR_QUEUE and BENCH_BEACON (`127.0.0.1:<port>`).
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from datetime import timedelta

from temporalio import activity, workflow


class BeaconActivities:
    def __init__(self, address: tuple[str, int]) -> None:
        self._address = address
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    @activity.defn(name="floor_noop")
    async def noop(self, seq: int) -> None:
        self._sock.sendto(str(seq).encode(), self._address)


@workflow.defn
class FloorWorkflow:
    def __init__(self) -> None:
        self._queue: list[int] = []

    @workflow.run
    async def run(self) -> None:
        while True:
            await workflow.wait_condition(lambda: bool(self._queue))
            seq = self._queue.pop(0)
            await workflow.execute_activity_method(
                BeaconActivities.noop, seq, start_to_close_timeout=timedelta(seconds=30)
            )

    @workflow.signal
    def poke(self, seq: int) -> None:
        self._queue.append(seq)


class Beacons(asyncio.DatagramProtocol):
    """The benchmark's end: when each floor activity ran (perf_counter at arrival)."""

    def __init__(self) -> None:
        self.arrived: dict[int, float] = {}

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.arrived.setdefault(int(data), time.perf_counter())


async def serve() -> None:
    from temporalio.client import Client
    from temporalio.worker import Worker

    host, port = os.environ["BENCH_BEACON"].rsplit(":", 1)
    from domain.temporal_profile import DEFAULT_ADDRESS, load_connect_config

    # Connects the way warroom's worker does (temporalio.envconfig), without warroom's data converter.
    config = load_connect_config()
    config.setdefault("target_host", DEFAULT_ADDRESS)
    client = await Client.connect(**config)
    acts = BeaconActivities((host, int(port)))
    queue = os.environ["BENCH_FLOOR_QUEUE"]
    await Worker(client, task_queue=queue, workflows=[FloorWorkflow], activities=[acts.noop]).run()


def main() -> None:
    code = 0
    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        code = 130
    sys.stdout.flush()
    os._exit(code)  # the Temporal SDK can crash during interpreter teardown (sdk-python #300)


if __name__ == "__main__":
    main()
