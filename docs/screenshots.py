"""Screenshots of the Temporal UI for the README ("Temporal UI for operators"), from a real browser.

    .venv/bin/python docs/screenshots.py [--chromium /usr/bin/chromium] [--out docs]

Runs `warroom dev` on free ports in a fresh state directory, declares three incidents through the Slack
sandbox (one Identified with a commander and an update, one Investigating, one resolved) and a reminder,
then renders in headless Chromium, driven over the DevTools protocol: the workflow list filtered to open
incidents (the link `warroom dev` prints), an open incident's page and the resolved incident's page. Each
page is captured once it shows the text expected (the UI keeps polling, so no "network idle" ever comes).
Needs Chromium (Debian: `apt-get install chromium`). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from domain.naming import incident_workflow_id  # noqa: E402
from starter.dev import open_incidents_query, ui_list_url  # noqa: E402

WIDTH, HEIGHT = 1280, 800
QUEUE = "warroom"
COLUMNS = ["Status", "Workflow ID", "IncidentSeverity", "IncidentStage", "IncidentCommander", "Start"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Dev:
    """`warroom dev` on free ports, and `warroom slack` against its sandbox."""

    def __init__(self, state: Path) -> None:
        self.temporal, self.ui, self.sandbox, self.http = (free_port() for _ in range(4))
        self.state = state
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = {
            **os.environ,
            "WARROOM_HTTP_PORT": str(self.http),
            "WARROOM_WORKER_METRICS_PORT": "0",
        }
        for key in ("SLACK_BOT_TOKEN", "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "WARROOM_TASK_QUEUE"):
            self.env.pop(key, None)

    def start(self) -> None:
        args = [str(ROOT / ".venv/bin/warroom"), "dev", "--state-dir", str(self.state)]
        args += ["--temporal-port", str(self.temporal), "--ui-port", str(self.ui)]
        args += ["--sandbox-port", str(self.sandbox)]
        log = (self.state / "dev.log").open("wb")
        self.proc = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def slack(self, *words: str, channel: str = "#general") -> str:
        args = [str(ROOT / ".venv/bin/warroom"), "slack", "--sandbox", f"http://127.0.0.1:{self.sandbox}"]
        done = subprocess.run(
            [*args, "--channel", channel, *words], env=self.env, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()


async def wait_until_up(dev: Dev) -> Client:
    deadline = time.monotonic() + 60
    while True:
        try:
            client = await Client.connect(f"127.0.0.1:{dev.temporal}")
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{dev.http}/healthz") as r:
                    if r.status == 200:
                        return client
        except Exception:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.5)


async def settled(client: Client, workflow_id: str, text: str) -> str:
    """The run ID once the workflow's current details contain `text`."""
    handle = client.get_workflow_handle(workflow_id)
    for _ in range(100):
        meta = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
        if text in meta.current_details:
            return (await handle.describe()).run_id
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{workflow_id} never showed {text!r}")


def stage_incidents(dev: Dev) -> None:
    dev.slack("/incident declare sev1 Checkout latency above 2s")
    inc1 = "#inc-1-checkout-latency-above-2s"
    dev.slack("/incident commander @alice", channel=inc1)
    dev.slack("/incident stage identified bad deploy of payments-api", channel=inc1)
    dev.slack("/incident update Rolling back payments-api; p99 down to 900ms", channel=inc1)
    dev.slack("/incident remind in 2h check the p99 graphs", channel=inc1)
    dev.slack("/incident declare sev3 Search results stale for EU users")
    dev.slack("/incident declare sev2 Payment webhooks delayed")
    inc3 = "#inc-3-payment-webhooks-delayed"
    dev.slack("/incident stage mitigated queue drained", channel=inc3)
    dev.slack("/incident resolve consumer restarted; backlog cleared", channel=inc3)


# The page's text, with what the UI renders in iframes (Markdown of the user metadata).
PAGE_TEXT = """
[document.body ? document.body.innerText : ''].concat([...document.querySelectorAll('iframe')].map(f => {
  try { return f.contentDocument.body.innerText; } catch (e) { return f.getAttribute('srcdoc') || ''; }
})).join('\\n')
"""


class Browser:
    """Headless Chromium, one page, driven over the DevTools websocket."""

    def __init__(self, chromium: str, profile: Path) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                f"--remote-debugging-port={self.port}",
                f"--window-size={WIDTH},{HEIGHT}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.ids = itertools.count(1)
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def open(self, http: aiohttp.ClientSession) -> None:
        for _ in range(100):
            try:
                async with http.get(f"http://127.0.0.1:{self.port}/json/list") as r:
                    pages = [t for t in await r.json() if t["type"] == "page"]
                if pages:
                    break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        self.ws = await http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)
        await self.call("Page.enable")
        await self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
        )

    async def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        assert self.ws is not None
        call_id = next(self.ids)
        await self.ws.send_str(json.dumps({"id": call_id, "method": method, "params": params or {}}))
        async for msg in self.ws:
            data = json.loads(msg.data)
            if data.get("id") == call_id:
                if "error" in data:
                    raise RuntimeError(f"{method}: {data['error']}")
                return dict(data.get("result", {}))
        raise RuntimeError("the browser closed the DevTools connection")

    async def text(self) -> str:
        result = await self.call("Runtime.evaluate", {"expression": PAGE_TEXT})
        return str(result.get("result", {}).get("value", ""))

    async def shoot(self, url: str, expect: list[str], out: Path, settle: float = 1.5) -> None:
        await self.call("Page.navigate", {"url": url})
        deadline = time.monotonic() + 45
        while True:
            text = await self.text()
            if all(e in text for e in expect):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} never showed {expect}; it showed:\n{text[:2000]}")
            await asyncio.sleep(0.5)
        await asyncio.sleep(settle)  # let fonts and late panels paint
        shot = await self.call("Page.captureScreenshot", {"format": "png"})
        png = base64.b64decode(shot["data"])
        await asyncio.to_thread(out.write_bytes, png)
        print(f"wrote {out} ({len(png) // 1024} KiB)")

    async def list_columns(self, ui: str, namespace: str, columns: list[str]) -> None:
        """Sets the workflow list's columns, as a user does with the list's column settings (the UI keeps
        them in the browser's localStorage)."""
        await self.call("Page.navigate", {"url": f"{ui}/namespaces/{namespace}/workflows"})
        await asyncio.sleep(2)
        value = json.dumps({namespace: [{"label": c} for c in columns]})
        expression = f"localStorage.setItem('namespace-workflow-table-columns', {json.dumps(value)})"
        await self.call("Runtime.evaluate", {"expression": expression})

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="warroom-shots-") as tmp:
        dev = Dev(Path(tmp) / "state")
        dev.state.mkdir()
        dev.start()
        browser = Browser(args.chromium, Path(tmp) / "chromium")
        try:
            client = await wait_until_up(dev)
            stage_incidents(dev)
            run1 = await settled(client, incident_workflow_id(1, QUEUE), "Rolling back")
            run3 = await settled(client, incident_workflow_id(3, QUEUE), "Resolved")
            await settled(client, incident_workflow_id(2, QUEUE), "Investigating")
            ui = f"http://127.0.0.1:{dev.ui}"
            async with aiohttp.ClientSession() as http:
                await browser.open(http)
                await browser.list_columns(ui, "default", COLUMNS)
                listing = ui_list_url(ui, "default", open_incidents_query(QUEUE))
                expect = ["incident-1", "incident-2", "identified"]
                await browser.shoot(listing, expect, args.out / "ui-open-incidents.png")
                page = f"{ui}/namespaces/default/workflows"
                await browser.shoot(
                    f"{page}/incident-1/{run1}/user-metadata",
                    ["INC-1 · SEV1 · Checkout latency", "Rolling back"],
                    args.out / "ui-incident.png",
                )
                await browser.shoot(
                    f"{page}/incident-3/{run3}/user-metadata",
                    ["Resolved (was Mitigated)"],
                    args.out / "ui-incident-resolved.png",
                )
        finally:
            browser.stop()
            dev.stop()


if __name__ == "__main__":
    asyncio.run(main())
