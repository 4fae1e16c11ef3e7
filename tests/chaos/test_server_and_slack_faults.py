"""Chaos around warroom: the Temporal server stopped and restarted mid-incident, a storm of Slack Web API
errors, and Slack delivering the same reaction event again and out of order.

The outage scenario runs once (a module fixture on its own file-backed dev server) and records what every
actor saw; each test below judges one promise from that record. Known warroom bugs are `xfail(strict=True)`
tests that state the right behaviour, so a fix turns them into failures that ask to drop the marker.
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RetryConfig

from domain.models import IncidentResult
from domain.naming import incident_workflow_id
from sandbox.models import BOT_USER_ID, Fault
from sandbox.signing import JSON_CONTENT_TYPE, signed_headers
from starter.alerts import TEMPORAL_DEADLINE
from starter.slack_app import DEGRADED
from tests.conftest import RESPONDER, SIGNING_SECRET, Stack, eventually, stack_on
from tests.temporal_server import FileBackedServer
from tests.test_ingress import declare_via_slack, run, update_taken
from tests.test_ingress_security import slash_body
from tests.test_integrations import settled


def taken(body: object) -> bool:
    """Posted, or accepted (queued, or Slack did not take it at once): both mean it goes out exactly once."""
    return isinstance(body, str) and update_taken(body, 2)


SLACK_DEADLINE = 3.0  # Slack shows the user an error when the ingress takes longer than this
# The SDK retries an unreachable server for this long on its own; an outage that outlasts it (plus a
# margin) cannot be bridged by a call still in flight in the SDK.
SDK_RETRY_WINDOW = (RetryConfig().max_elapsed_time_millis or 10_000) / 1000 + 2.0
TAG = re.compile(r"\[([a-z0-9-]+)\]")


def tags(texts: list[str]) -> list[str]:
    """The `[tag]` of each text that has one, in order: which of our updates a channel shows."""
    return [found[1] for t in texts if (found := TAG.search(t))]


async def timed(work: Awaitable[Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = await work
    return result, time.perf_counter() - started


# --- 1. the Temporal server stopped and restarted mid-incident --------------------------------------------


@dataclass
class Answer:
    """What one request got back: HTTP status (0: no answer within Slack's 3 s), body, seconds taken."""

    status: int
    body: Any
    seconds: float


@dataclass
class Outage:
    """Everything the outage scenario saw, for the tests to judge."""

    incident_id: int = 0
    before: list[Answer] = field(default_factory=list)  # updates before the stop
    update_down: Answer | None = None  # `/incident update` through the sandbox while the server is down
    declare_down: Answer | None = None  # `/incident declare` POSTed straight to the ingress while down
    alert_down: Answer | None = None  # POST /alerts while down
    healthz_down: Answer | None = None
    healthy_after: float = 0.0  # seconds from the restart until /healthz says 200
    update_restarted: Answer | None = None  # sent as soon as /healthz is 200 again
    worker_back_after: float = 0.0  # seconds from the restart until a workflow answers a query
    down_landed_before_retry: int = -1  # how often the outage's update was in the timeline then
    retry: Answer | None = None  # the outage's update run again, as its answer told the user
    after: list[Answer] = field(default_factory=list)  # updates once everything is back
    channel_tags: list[str] = field(default_factory=list)
    thread_tags: list[list[str]] = field(default_factory=list)
    incidents: list[int] = field(default_factory=list)


async def slash(stack: Stack, text: str, channel: str) -> Answer:
    """A slash command through the sandbox (which gives up after Slack's 3 s, as Slack does)."""
    result, seconds = await timed(stack.slack.command(user_id=RESPONDER, channel_id=channel, text=text))
    return Answer(result["status"], result["body"], seconds)


async def post_signed(http: aiohttp.ClientSession, stack: Stack, body: bytes) -> Answer:
    """A signed slash command straight to the ingress, waiting as long as it takes (to time it)."""
    started = time.perf_counter()
    async with http.post(stack.ingress_url, data=body, headers=signed_headers(SIGNING_SECRET, body)) as r:
        text = await r.text()
    return Answer(r.status, text, time.perf_counter() - started)


ALERT_TOKEN = "chaos-alert-token"


async def post_alert(http: aiohttp.ClientSession, stack: Stack) -> Answer:
    url = f"http://127.0.0.1:{stack.web.port}/alerts"
    alert = {"title": "Payments database unreachable", "severity": "sev2", "source": "chaos"}
    started = time.perf_counter()
    async with http.post(url, json=alert, headers={"Authorization": f"Bearer {ALERT_TOKEN}"}) as r:
        body = await r.json(content_type=None) if r.content_type == JSON_CONTENT_TYPE else await r.text()
    return Answer(r.status, body, time.perf_counter() - started)


async def healthz(http: aiohttp.ClientSession, stack: Stack) -> Answer:
    started = time.perf_counter()
    async with http.get(f"http://127.0.0.1:{stack.web.port}/healthz") as r:
        body = await r.json(content_type=None) if r.content_type == JSON_CONTENT_TYPE else await r.text()
    return Answer(r.status, body, time.perf_counter() - started)


async def times_in_timeline(stack: Stack, incident_id: int, body: str) -> int:
    return sum(e.kind == "update" and e.text == body for e in (await stack.state(incident_id)).timeline)


@pytest.fixture(scope="module")
async def outage(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Outage]:
    """Declares, posts updates, stops the server (SIGTERM), uses warroom while it is down, restarts it on the
    same port and database, and posts more updates. Each update's body carries a `[tag]`."""
    seen = Outage()
    server = FileBackedServer(tmp_path_factory.mktemp("temporal"))
    server.start()
    try:
        async with (
            stack_on(await server.connect(), WARROOM_ALERT_TOKEN=ALERT_TOKEN) as stack,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=90)) as http,
        ):
            incident_id, channel = await declare_via_slack(stack)
            seen.incident_id = incident_id
            for n in (1, 2, 3):
                seen.before.append(await slash(stack, f"update [before-{n}] still degraded", channel))
            await settled(stack, incident_id)

            await server.stop()
            alert = asyncio.create_task(post_alert(http, stack))
            trigger = stack.sandbox.state.issue_trigger(RESPONDER)
            form = slash_body(stack, "declare sev2 Declared while Temporal is down", stack.general, trigger)
            declare = asyncio.create_task(post_signed(http, stack, form))
            sent = time.monotonic()
            seen.update_down = await slash(stack, "update [during] failover started", channel)
            seen.healthz_down = await healthz(http, stack)
            seen.alert_down, seen.declare_down = await asyncio.gather(alert, declare)
            await asyncio.sleep(max(0.0, SDK_RETRY_WINDOW - (time.monotonic() - sent)))

            server.start()
            restarted = time.monotonic()

            async def healthy() -> bool:
                return (await healthz(http, stack)).status == 200

            await eventually(healthy, within=30)
            seen.healthy_after = time.monotonic() - restarted
            seen.update_restarted = await slash(stack, "update [restarted] server is back", channel)

            async def worker_back() -> bool:
                return (await run(stack, "status", channel)).startswith(f"*INC-{incident_id}:")

            await eventually(worker_back, within=60)
            seen.worker_back_after = time.monotonic() - restarted

            async def restarted_landed() -> bool:
                return await times_in_timeline(stack, incident_id, "[restarted] server is back") > 0

            await eventually(restarted_landed, within=30)
            # The user does what the outage's answer said: check, and run the update again only if missing.
            down = "[during] failover started"
            seen.down_landed_before_retry = await times_in_timeline(stack, incident_id, down)
            if seen.down_landed_before_retry == 0:
                seen.retry = await slash(stack, f"update {down}", channel)
            for n in (1, 2, 3):
                seen.after.append(await slash(stack, f"update [after-{n}] recovering", channel))
            await settled(stack, incident_id)

            posts = [m["text"] for m in await stack.slack.messages(channel) if m["user"] == BOT_USER_ID]
            seen.channel_tags = tags(posts)
            for bc in stack.broadcast:
                [overview] = await stack.slack.messages(bc)
                seen.thread_tags.append(tags([r["text"] for r in overview["replies"]]))
            seen.incidents = sorted(i.incident_id for i in await stack.incidents.list())
    finally:
        await server.stop()
    # Some SDK futures of the outage end with RPCError("tcp connect error") that nobody retrieves; collected,
    # each logs "Future exception was never retrieved" with its traceback. Let that happen now: inside
    # pytest's own ast.parse (building a failure report), the log's nested ast.parse trips CPython 3.11.7's
    # "AST constructor recursion depth mismatch" and pytest stops with INTERNALERROR.
    gc.collect()
    yield seen


async def test_nothing_accepted_around_a_temporal_restart_is_lost_or_doubled(outage: Outage) -> None:
    # Before the stop, every update was accepted at once.
    assert all(a.status == 200 and taken(a.body) for a in outage.before) and len(outage.before) == 3
    # While the server was down the ingress answered Slack in time, privately, and said it was not healthy.
    down = outage.update_down
    assert down is not None and down.status == 200 and down.seconds < SLACK_DEADLINE, down
    assert isinstance(down.body, str) and down.body and not taken(down.body), down
    health = outage.healthz_down
    assert health is not None and health.status == 503 and health.body["ok"] is False, health
    alert = outage.alert_down
    assert alert is not None and alert.status == 503, alert
    assert alert.body["ok"] is False and "retry" in alert.body["error"], alert
    # After the restart, the client and the worker came back by themselves.
    assert outage.healthy_after < 30 and outage.worker_back_after < 60
    # The outage's update never landed on its own (the server was down past the SDK's retry window), so
    # the user ran it again; the one sent as the server came back landed although nobody repeated it.
    assert outage.down_landed_before_retry == 0
    assert outage.retry is not None and outage.retry.status == 200 and taken(outage.retry.body), outage.retry
    assert all(a.status == 200 and taken(a.body) for a in outage.after) and len(outage.after) == 3
    # Every update exactly once, in order, in the incident channel and in both broadcast threads.
    expected = ["before-1", "before-2", "before-3", "restarted", "during", "after-1", "after-2", "after-3"]
    assert outage.channel_tags == expected
    assert outage.thread_tags == [expected, expected]
    # Neither the alert (answered 503, so its sender retries) nor the declare started an incident.
    assert outage.incidents == [outage.incident_id]


async def test_an_update_while_temporal_is_down_is_answered_degraded(outage: Outage) -> None:
    degraded = DEGRADED.format(cmd="/incident")
    assert outage.update_down is not None and outage.update_down.body == degraded
    # An update the server took but the worker had not yet run when Slack's deadline came: "posted" or
    # "degraded" (check before running it again), never "try again", which would post it twice.
    restarted = outage.update_restarted
    assert restarted is not None and (restarted.body == degraded or taken(restarted.body)), restarted


async def test_an_alert_while_temporal_is_down_gets_its_503_within_the_deadline(outage: Outage) -> None:
    assert outage.alert_down is not None and outage.alert_down.status == 503
    assert outage.alert_down.seconds < TEMPORAL_DEADLINE + 1.0, outage.alert_down


async def test_a_declare_while_temporal_is_down_is_answered_within_slacks_deadline(outage: Outage) -> None:
    declare = outage.declare_down
    assert declare is not None and declare.status == 200
    assert declare.seconds < SLACK_DEADLINE, declare
    assert declare.body == DEGRADED.format(cmd="/incident")


# --- 2. a Slack storm --------------------------------------------------------------------------------------

STORMY = (
    "chat.postMessage",
    "chat.update",
    "conversations.history",
    "conversations.replies",
    "conversations.setPurpose",
)
STORM_SEED = 1
STORM_BUDGET = 50.0  # seconds from the resolve command to the workflow's end (the test stays under ~60 s)


class SlackStorm:
    """Wraps the fault book's `take_fault`: after any queued fault, each call to a stormy method fails with
    429 (`Retry-After: 1`) or a bare 500 at the given rates. Reproducible: the n-th call to a method always
    draws the same number (`random.Random(f"{seed}:{method}:{n}")`), whatever other methods do meanwhile."""

    def __init__(
        self,
        take_fault: Callable[[str], Fault | None],
        seed: int,
        rate_limited: float = 0.3,
        failing: float = 0.1,
    ) -> None:
        self.take_fault = take_fault
        self.seed = seed
        self.rate_limited = rate_limited
        self.failing = failing
        self.calls: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()

    def __call__(self, method: str) -> Fault | None:
        queued = self.take_fault(method)
        if queued is not None or method not in STORMY:
            return queued
        draw = random.Random(f"{self.seed}:{method}:{self.calls[method]}").random()
        self.calls[method] += 1
        if draw < self.rate_limited:
            self.outcomes["429"] += 1
            return Fault(method, status=429, retry_after=1)
        if draw < self.rate_limited + self.failing:
            self.outcomes["500"] += 1
            return Fault(method, status=500)
        self.outcomes["ok"] += 1
        return None


async def storm_through_an_incident(stack: Stack, storm: SlackStorm, monkeypatch: pytest.MonkeyPatch) -> None:
    """Declares, posts 15 updates and resolves through Slack while `storm` rages; waits (within the
    budget) for the workflow to finish; then every message must be in place exactly once, in order."""
    monkeypatch.setattr(stack.sandbox.state, "take_fault", storm)
    ack = await run(stack, "declare sev2 Checkout latency above 2s")
    found = re.search(r"\*INC-(\d+)\*", ack)
    assert found, ack
    incident_id = int(found[1])
    channel = await stack.incident_channel(incident_id)
    for n in range(1, 16):
        assert taken(await run(stack, f"update [storm-{n:02d}] error rate {40 - 2 * n}%", channel))
    assert (await run(stack, "resolve [resolved] rolled back", channel)).startswith(
        f"INC-{incident_id} resolved."
    )
    handle = stack.temporal.client.get_workflow_handle(
        incident_workflow_id(incident_id, stack.settings.task_queue), result_type=IncidentResult
    )

    async def finished() -> bool:
        return (await handle.describe()).status is not WorkflowExecutionStatus.RUNNING

    try:
        await eventually(finished, within=STORM_BUDGET, interval=0.5)
    except AssertionError:
        state = await stack.state(incident_id)
        pytest.fail(
            f"not done {STORM_BUDGET:.0f} s after the resolve: {len(state.outbox)} announcements queued; "
            f"Slack storm so far {dict(storm.outcomes)}"
        )
    result = await handle.result()
    assert [e.text for e in result.timeline if e.kind == "problem"] == []

    expected = [f"storm-{n:02d}" for n in range(1, 16)] + ["resolved"]
    posts = [m["text"] for m in await stack.slack.messages(channel) if m["user"] == BOT_USER_ID]
    assert tags(posts) == expected
    assert not [p for p in posts if "could not" in p], posts
    for bc in stack.broadcast:
        [overview] = await stack.slack.messages(bc)  # one overview: a retried post was never doubled
        assert tags([r["text"] for r in overview["replies"]]) == expected
        assert "Resolved" in overview["text"]
    assert storm.outcomes["429"] and storm.outcomes["500"], storm.outcomes  # it did storm


async def test_a_light_slack_storm_still_delivers_every_message_once_and_in_order(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """10% of calls rate limited and 5% failing: retried activities resume where they stopped (a post a
    previous attempt made is found by its metadata key), so nothing is doubled, skipped or reordered."""
    storm = SlackStorm(stack.sandbox.state.take_fault, STORM_SEED, rate_limited=0.1, failing=0.05)
    await storm_through_an_incident(stack, storm, monkeypatch)


async def test_a_slack_storm_delivers_every_message_once_and_in_order(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """About 30% of calls rate limited (`Retry-After: 1`) and 10% answered 500."""
    storm = SlackStorm(stack.sandbox.state.take_fault, STORM_SEED, rate_limited=0.3, failing=0.1)
    await storm_through_an_incident(stack, storm, monkeypatch)


# --- 3. Slack delivering reaction events again and out of order -------------------------------------------


async def test_redelivered_and_reordered_reaction_events_broadcast_each_message_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Already covered elsewhere (tests/test_ingress.py): one event delivered 3 times back to back, and a
    second person's emoji on the same message. Added here: the 4th delivery (`X-Slack-Retry-Num` 1..3),
    retries arriving after another event, and reactions arriving in the reverse order of their messages.

    What is asserted: one broadcast per message, in the order the events first arrived (signals are queued
    in arrival order), not in the order the messages were written."""
    incident_id, channel = await declare_via_slack(stack)
    older = (await stack.slack.message("U0HUMAN", channel, "Replica promoted in eu-west-1"))["ts"]
    newer = (await stack.slack.message("U0OTHER", channel, "Traffic drained from the old primary"))["ts"]
    platform = stack.sandbox.platform
    events: list[bytes] = []
    deliver = platform.deliver

    async def recording(
        kind: str, body: bytes, content_type: str, extra_headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        if kind == "event" and not extra_headers:
            events.append(body)
        return await deliver(kind, body, content_type, extra_headers)

    monkeypatch.setattr(platform, "deliver", recording)
    first = await stack.slack.react("U0OTHER", channel, newer, "mega")  # the newer message's event first
    second = await stack.slack.react("U0HUMAN", channel, older, "pushpin")
    assert first["delivered"] and second["delivered"] and first["event_id"] != second["event_id"]
    assert [json.loads(e)["event_id"] for e in events] == [first["event_id"], second["event_id"]]
    for retry in (1, 2, 3):  # Slack's retries of the first event, after the second one
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
        again = await platform.deliver("event", events[0], JSON_CONTENT_TYPE, headers)
        assert again["status"] == 200, again
    retried = [
        d["retry_num"] for d in stack.sandbox.state.deliveries if d["kind"] == "event" and d["status"] == 200
    ]
    assert retried == [0, 0, 1, 2, 3]

    await settled(stack, incident_id)
    drained, promoted = "Traffic drained from the old primary", "Replica promoted in eu-west-1"
    for bc in stack.broadcast:
        [overview] = await stack.slack.messages(bc)
        replies = [r["text"] for r in overview["replies"]]
        assert len(replies) == 2, replies
        assert drained in replies[0] and promoted not in replies[0], replies
        assert promoted in replies[1] and drained not in replies[1], replies
    posts = [m["text"] for m in await stack.slack.messages(channel) if m["user"] == BOT_USER_ID]
    assert [sum(text in p for p in posts) for text in (drained, promoted)] == [1, 1], posts
    state = await stack.state(incident_id)
    assert state.reacted_messages == [newer, older]
    assert state.updates_posted == 2
    assert [e.kind for e in state.timeline].count("reaction") == 2
