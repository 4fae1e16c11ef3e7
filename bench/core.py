"""Core latency figures: `python -m bench.core [--runs 20]`.

Starts an in-memory Temporal dev server, the Slack sandbox, a worker and the ingress in this process, then:
- ingress ack: a signed `/incident update` POSTed to /slack/events, request to HTTP response;
- declare -> overview: a signed `/incident declare` until the overview exists in the broadcast channel;
- update -> broadcast: a signed `/incident update` until its reply is in the broadcast thread;
- history events per status update, from the incident's Temporal history.
Prints a markdown table and writes bench/results/core.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from domain.naming import incident_workflow_id
from domain.settings import Settings
from sandbox import SandboxServer
from sandbox.signing import signed_headers
from starter.binaries import temporal_cli
from starter.incidents import Incidents
from starter.serve import serving
from workflows import attributes

TOKEN, SECRET, USER = "xoxb-bench", "bench-secret", "U0BENCH"
POLL = 0.002


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Bench:
    def __init__(self, sandbox: SandboxServer, incidents: Incidents, url: str, broadcast: str) -> None:
        self.sandbox, self.incidents, self.url, self.broadcast = sandbox, incidents, url, broadcast
        self.http = aiohttp.ClientSession()

    async def command(self, text: str, channel: str) -> tuple[float, dict[str, Any]]:
        body = urllib.parse.urlencode(
            {
                "command": "/incident",
                "text": text,
                "user_id": USER,
                "channel_id": channel,
                "trigger_id": uuid.uuid4().hex,
                "team_id": "T0SANDBOX",
                "response_url": f"{self.sandbox.url}/_sandbox/respond/bench",
            }
        ).encode()
        started = time.perf_counter()
        async with self.http.post(self.url, data=body, headers=signed_headers(SECRET, body)) as resp:
            raw = await resp.text()
            answer = {"status": resp.status, "body": raw}
        return (time.perf_counter() - started) * 1000, answer

    async def until(self, check: Any) -> None:
        """Polls the sandbox's in-process state every 2 ms (its resolution bounds every figure)."""
        for _ in range(int(30 / POLL)):
            if check():
                return
            await asyncio.sleep(POLL)
        raise TimeoutError("no broadcast within 30 s")

    def overview_count(self) -> int:
        return len(self.sandbox.state.channel_messages(self.sandbox.state.channel(self.broadcast)))

    def replies(self) -> int:
        return sum(
            len(m.get("replies", []))
            for m in self.sandbox.state.channel_messages(self.sandbox.state.channel(self.broadcast))
        )


async def measure(runs: int) -> dict[str, Any]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        search_attributes=list(attributes.ALL),
        data_converter=pydantic_data_converter,
        dev_server_log_level="error",
    )
    async with env, SandboxServer(token=TOKEN, signing_secret=SECRET) as sandbox:
        general = sandbox.state.create_human_channel("general", members=[USER]).id
        status = sandbox.state.create_human_channel("status").id
        settings = Settings(
            SLACK_BOT_TOKEN=SecretStr(TOKEN),
            SLACK_SIGNING_SECRET=SecretStr(SECRET),
            SLACK_API_URL=sandbox.api_url,
            WARROOM_BROADCAST_CHANNELS=status,
        )
        slack = AsyncWebClient(token=TOKEN, base_url=sandbox.api_url)
        async with serving(settings, env.client, slack, host="127.0.0.1", port=0) as web:
            incidents = Incidents(env.client, settings.task_queue, settings.broadcast_channels)
            bench = Bench(sandbox, incidents, f"http://127.0.0.1:{web.port}/slack/events", status)
            try:
                return await _run(bench, env, general, runs)
            finally:
                await bench.http.close()


async def _run(bench: Bench, env: WorkflowEnvironment, general: str, runs: int) -> dict[str, Any]:
    declare_ms = []
    for i in range(runs):
        before = bench.overview_count()
        started = time.perf_counter()
        _, answer = await bench.command(f"declare sev3 bench incident {i}", general)
        assert answer["status"] == 200, answer
        await bench.until(lambda before=before: bench.overview_count() > before)
        declare_ms.append((time.perf_counter() - started) * 1000)
    channel = (await bench.incidents.state(1)).channel_id
    assert channel is not None
    handle = env.client.get_workflow_handle(incident_workflow_id(1))
    events_before = len([e async for e in handle.fetch_history_events()])
    ack_ms, broadcast_ms = [], []
    for i in range(runs):
        before = bench.replies()
        started = time.perf_counter()
        ack, _ = await bench.command(f"update bench update {i}", channel)
        ack_ms.append(ack)
        await bench.until(lambda before=before: bench.replies() > before)
        broadcast_ms.append((time.perf_counter() - started) * 1000)
    events_after = len([e async for e in handle.fetch_history_events()])
    return {
        "runs": runs,
        "ingress_ack_ms": {"p50": statistics.median(ack_ms), "p99": pct(ack_ms, 99)},
        "declare_to_broadcast_overview_ms": {
            "p50": statistics.median(declare_ms),
            "p99": pct(declare_ms, 99),
        },
        "update_to_broadcast_reply_ms": {
            "p50": statistics.median(broadcast_ms),
            "p99": pct(broadcast_ms, 99),
        },
        "history_events_per_update": (events_after - events_before) / runs,
    }


def table(r: dict[str, Any]) -> str:
    rows = [
        ("ingress ack (`/incident update`)", r["ingress_ack_ms"]),
        ("declare -> overview in broadcast channel", r["declare_to_broadcast_overview_ms"]),
        ("update -> reply in broadcast thread", r["update_to_broadcast_reply_ms"]),
    ]
    lines = [f"| figure ({r['runs']} runs each) | p50 ms | p99 ms |", "|---|---|---|"]
    lines += [f"| {name} | {v['p50']:.1f} | {v['p99']:.1f} |" for name, v in rows]
    lines.append(f"| history events per status update | {r['history_events_per_update']:.1f} | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    result = asyncio.run(measure(args.runs))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "core.json").write_text(json.dumps(result, indent=2))
    print(table(result))
    sys.stdout.flush()
    os._exit(0)  # the Temporal SDK can crash during interpreter teardown (sdk-python #300)


if __name__ == "__main__":
    main()
