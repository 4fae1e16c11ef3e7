"""Slack's 3 s whatever Temporal does: with the Temporal server paused (SIGSTOP: it keeps its connections
and answers nothing), every kind of Slack request is answered in time with the answer chosen for its kind
(starter/slack_deadline.py); once it resumes, what Slack re-sends and what people submit again acts once.

The paused scene runs once (a module fixture on its own dev server) and records each answer; the tests
below judge it, then redeliver and resubmit on the same stack.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.testing import WorkflowEnvironment

from activities import slack_render as render
from sandbox import SandboxServer
from sandbox.models import BOT_USER_ID
from sandbox.signing import FORM_CONTENT_TYPE, JSON_CONTENT_TYPE, signed_headers
from starter.incidents import IncidentNotFound
from starter.metrics import WebMetrics
from starter.slack_deadline import DEGRADED, LAST_CHANCE, LATE_FORM
from starter.web import create_web_app
from tests.conftest import SIGNING_SECRET, TOKEN, Stack, eventually, stack_on
from tests.temporal_server import FileBackedServer
from tests.test_ingress import declare_via_slack, run
from tests.test_ingress_modals import open_form, open_views, selected, typed
from tests.test_integrations import settled

SLACK_DEADLINE = 3.0  # Slack gives up on an answer after this
HUMAN = "U0HUMAN"
# One person per form: Slack (and the sandbox) keeps one open modal per person.
STAGER = "U0STAGER"
NUDGED = "U0NUDGED"
REACTED = "Replica promoted in the west region"
NOTE = "Why did the canary miss it"
DECLARED = "Search is down"
STAGED = "Bad deploy found"
UPDATED = "Traffic moved to the standby region"
DEGRADED_ANSWER = DEGRADED.format(cmd="/incident")
EVENT_503 = {"ok": False, "error": "temporal_unavailable"}


@dataclass
class Answer:
    """What Slack got back for one request: HTTP status (0: nothing within Slack's 3 s), body, seconds."""

    status: int
    body: Any
    seconds: float
    result: dict[str, Any] = field(default_factory=dict)  # the sandbox's whole record of it


@dataclass
class Scene:
    stack: Stack
    incident_id: int
    channel: str
    reacted_ts: str
    views: dict[str, str] = field(default_factory=dict)  # form -> view ID
    answers: dict[str, Answer] = field(default_factory=dict)  # request kind -> its answer while paused
    events: dict[str, bytes] = field(default_factory=dict)  # event type -> the body Slack sent


async def timed(work: Awaitable[dict[str, Any]], status_of: str = "status") -> Answer:
    started = time.perf_counter()
    result = await work
    seconds = time.perf_counter() - started
    delivery = result.get("delivery") if status_of == "delivery" else result
    assert isinstance(delivery, dict), result
    return Answer(int(delivery["status"]), delivery.get("body"), seconds, result)


async def post_nudge(stack: Stack, incident_id: int) -> tuple[str, str]:
    """The nudge DM the workflow would send (built by the product's renderer), posted with the bot token:
    returns its DM channel and ts."""
    slack = AsyncWebClient(token=TOKEN, base_url=stack.sandbox.api_url)
    dm = (await slack.conversations_open(users=NUDGED))["channel"]["id"]
    text, blocks = render.nudge_message((await stack.state(incident_id)).view())
    posted = await slack.chat_postMessage(channel=dm, text=text, blocks=blocks)
    return dm, str(posted["ts"])


async def open_stage_form(stack: Stack, channel: str) -> str:
    """`/incident stage` run by STAGER: returns the ID of the form it opened."""
    opened = await stack.command("stage", channel=channel, user=STAGER)
    assert opened["status"] == 200 and not opened["body"], opened
    [view] = [v for v in await open_views(stack, "warroom_stage") if v["user_id"] == STAGER]
    return str(view["id"])


class Recorder:
    """Keeps the body of each first delivery (events by event type, other requests by kind: "command",
    "view_submission", ...), to deliver it again as Slack would."""

    def __init__(self, sandbox: SandboxServer) -> None:
        self.platform = sandbox.platform
        self.deliver = sandbox.platform.deliver
        self.bodies: dict[str, bytes] = {}

    async def __call__(
        self, kind: str, body: bytes, content_type: str, extra_headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        if not extra_headers:
            self.bodies[json.loads(body)["event"]["type"] if kind == "event" else kind] = body
        return await self.deliver(kind, body, content_type, extra_headers)

    def __enter__(self) -> Recorder:
        self.platform.deliver = self  # type: ignore[method-assign]
        return self

    def __exit__(self, *_: object) -> None:
        self.platform.deliver = self.deliver  # type: ignore[method-assign]


async def send_while_paused(scene: Scene, dm: str, nudge_ts: str, debrief_ts: str) -> None:
    """One request of each kind, one after the other, each timed as Slack would see it."""
    stack, channel, answers = scene.stack, scene.channel, scene.answers
    answers["command"] = await timed(stack.command("update Failover in progress", channel=channel))
    answers["command_opening_a_form"] = await timed(stack.command("stage", channel=channel))
    with Recorder(stack.sandbox) as recorder:  # the events' bodies, for Slack's retries
        answers["reaction_added"] = await timed(stack.slack.react(HUMAN, channel, scene.reacted_ts, "mega"))
        reply = stack.slack.message(HUMAN, channel, NOTE, thread_ts=debrief_ts, deliver_event=True)
        answers["message"] = await timed(reply, status_of="delivery")
    scene.events.update(recorder.bodies)
    declare = {"title": typed(DECLARED), "severity": selected("sev2")}
    answers["declare_form"] = await timed(stack.slack.submit_view(scene.views["declare"], declare))
    stage = {"stage": selected("identified"), "context": typed(STAGED)}
    answers["stage_form"] = await timed(stack.slack.submit_view(scene.views["stage"], stage))
    answers["nudge_button"] = await timed(stack.slack.click(NUDGED, dm, nudge_ts, render.NUDGE_ACTION))
    [update_form] = await open_views(stack, "warroom_update")
    scene.views["update"] = update_form["id"]
    update = {"update": typed(UPDATED)}
    answers["update_form"] = await timed(stack.slack.submit_view(scene.views["update"], update))


@pytest.fixture(scope="module")
async def paused(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Scene]:
    """Declares an incident, opens the declare and stage forms, starts its debrief and gets a nudge DM;
    pauses the server, sends one request of each kind, resumes it (always), and waits until it answers."""
    server = FileBackedServer(tmp_path_factory.mktemp("temporal"))
    server.start()
    try:
        async with stack_on(await server.connect()) as stack:
            incident_id, channel = await declare_via_slack(stack)
            reacted_ts = (await stack.slack.message(HUMAN, channel, REACTED))["ts"]
            assert "things-to-revisit thread" in await run(stack, "debrief", channel)

            async def debrief_thread() -> str:
                return str((await stack.state(incident_id)).debrief_ts or "")

            debrief_ts = await eventually(debrief_thread)
            scene = Scene(stack, incident_id, channel, reacted_ts)
            scene.views["declare"] = (await open_form(stack, "declare", None, "warroom_declare"))["id"]
            scene.views["stage"] = await open_stage_form(stack, channel)
            dm, nudge_ts = await post_nudge(stack, incident_id)

            server.pause()
            try:
                await send_while_paused(scene, dm, nudge_ts, debrief_ts)
            finally:
                server.resume()
            await eventually(lambda: stack.state(incident_id), within=60)
            yield scene
    finally:
        await server.stop()


async def test_every_kind_of_slack_request_is_answered_within_3s_while_temporal_is_paused(
    paused: Scene,
) -> None:
    for kind, answer in paused.answers.items():
        print(f"temporal paused: {kind} answered {answer.status} in {answer.seconds:.2f} s")
    for kind, answer in paused.answers.items():
        assert answer.status != 0 and answer.seconds < SLACK_DEADLINE, (kind, answer)
    a = paused.answers
    assert (a["command"].status, a["command"].body) == (200, DEGRADED_ANSWER)
    # The stage form needs the incident's state first: no state, no form, the same degraded answer.
    assert (a["command_opening_a_form"].status, a["command_opening_a_form"].body) == (200, DEGRADED_ANSWER)
    # Events: not taken, so Slack delivers them again (a 2xx would make Slack forget them).
    for event in ("reaction_added", "message"):
        assert (a[event].status, a[event].body) == (503, EVENT_503), a[event]
    # Forms: kept open with their input, saying to submit again.
    for form, block in (("declare_form", "title"), ("stage_form", "stage"), ("update_form", "update")):
        submitted = a[form].result
        assert a[form].status == 200 and submitted["response_action"] == "errors", submitted
        assert submitted["errors"] == {block: LATE_FORM} and not submitted["view_closed"], submitted
    # The nudge's button needs no Temporal: acked, and its form opened.
    assert a["nudge_button"].status == 200 and "update" in paused.views


async def test_each_answer_without_temporal_is_counted(paused: Scene) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{paused.stack.web.port}/metrics") as response,
    ):
        text = await response.text()
    counted = {
        line.split('kind="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("warroom_slack_temporal_timeouts_total{")
    }
    assert counted == {"command": 2.0, "event": 2.0, "view_submission": 3.0}, counted


async def thread_replies(scene: Scene, broadcast_channel: str) -> list[str]:
    """The replies under the scene's incident's overview in a broadcast channel (other incidents have their
    own overviews there)."""
    label = f"INC-{scene.incident_id}:"
    overviews = [m for m in await scene.stack.slack.messages(broadcast_channel) if label in m["text"]]
    assert len(overviews) == 1, overviews
    return [r["text"] for r in overviews[0]["replies"]]


async def redeliver(scene: Scene, event: str) -> list[int]:
    """Delivers an event's first body again as Slack retries it (`X-Slack-Retry-Num` 1, 2, 3), until it
    is taken; returns the statuses."""
    statuses = []
    for retry in (1, 2, 3):
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_error"}
        result = await scene.stack.sandbox.platform.deliver(
            "event", scene.events[event], JSON_CONTENT_TYPE, headers
        )
        statuses.append(int(result["status"]))
        if result["status"] == 200:
            break
        await asyncio.sleep(1.0)
    return statuses


async def test_a_redelivered_reaction_broadcasts_the_message_exactly_once(paused: Scene) -> None:
    stack, channel = paused.stack, paused.channel
    statuses = await redeliver(paused, "reaction_added")
    assert statuses[-1] == 200, statuses
    await settled(stack, paused.incident_id)
    posts = [m["text"] for m in await stack.slack.messages(channel) if m["user"] == BOT_USER_ID]
    assert sum(REACTED in p for p in posts) == 1, posts
    for bc in stack.broadcast:
        replies = await thread_replies(paused, bc)
        assert sum(REACTED in r for r in replies) == 1, replies
    state = await stack.state(paused.incident_id)
    assert state.reacted_messages.count(paused.reacted_ts) == 1
    assert [e.kind for e in state.timeline].count("reaction") == 1


async def test_a_redelivered_debrief_reply_is_noted_exactly_once(paused: Scene) -> None:
    statuses = await redeliver(paused, "message")
    assert statuses[-1] == 200, statuses
    state = await settled(paused.stack, paused.incident_id)
    assert [e.text for e in state.timeline if e.kind == "debrief" and e.actor == HUMAN] == [NOTE]


async def submit_again(scene: Scene, form: str, values: dict[str, Any]) -> list[dict[str, Any]]:
    """Submits an open form again, as its user would after being told to, until it closes."""
    tries = []
    for _ in range(5):
        submitted = await scene.stack.slack.submit_view(scene.views[form], values)
        tries.append(submitted)
        if submitted["view_closed"]:
            break
        await asyncio.sleep(1.0)
    return tries


async def test_the_declare_form_submitted_again_declares_exactly_once(paused: Scene) -> None:
    stack = paused.stack
    tries = await submit_again(paused, "declare", {"title": typed(DECLARED), "severity": selected("sev2")})
    assert tries[-1]["view_closed"] and tries[-1]["status"] == 200, tries
    titles = []
    for incident_id in range(1, 8):  # every incident this deployment has
        try:
            titles.append((await stack.state(incident_id)).title)
        except IncidentNotFound:
            continue
    assert titles.count(DECLARED) == 1, titles
    assert len(titles) == 2, titles  # the one declared before the pause, and this one


async def test_the_stage_and_update_forms_submitted_again_act_exactly_once(paused: Scene) -> None:
    stack = paused.stack
    staged = await submit_again(paused, "stage", {"stage": selected("identified"), "context": typed(STAGED)})
    updated = await submit_again(paused, "update", {"update": typed(UPDATED)})
    assert staged[-1]["view_closed"] and updated[-1]["view_closed"], (staged, updated)
    state = await settled(stack, paused.incident_id)
    assert [e.kind for e in state.timeline if STAGED in e.text] == ["stage"]
    assert [e.kind for e in state.timeline if e.text == UPDATED] == ["update"]
    for bc in stack.broadcast:
        replies = await thread_replies(paused, bc)
        assert sum(UPDATED in r for r in replies) == 1, replies


# --- without pausing anything -------------------------------------------------------------------------


async def test_a_form_slack_is_slow_to_open_is_answered_within_3s(stack: Stack) -> None:
    """The query that fills the stage form answers, `views.open` does not: the command still answers."""
    _, channel = await declare_via_slack(stack)
    await stack.slack.fault("views.open", delay_ms=5_000)
    answer = await timed(stack.command("stage", channel=channel))
    print(f"views.open slow: command answered {answer.status} in {answer.seconds:.2f} s")
    assert answer.status == 200 and answer.seconds < SLACK_DEADLINE, answer
    assert "Slack did not open the form" in answer.body and "`/incident stage" in answer.body


def overrunning_app(client: AsyncWebClient, ran: list[str]) -> AsyncApp:
    """A Bolt app whose every listener takes far longer than Slack's 3 s, as no warroom listener should."""
    app = AsyncApp(client=client, signing_secret=SIGNING_SECRET, process_before_response=True)

    async def slow(ack: AsyncAck, body: dict[str, Any]) -> None:
        ran.append(str(body.get("type") or body.get("command")))
        await asyncio.sleep(30)
        await ack()

    app.command("/incident")(slow)
    app.event("reaction_added")(slow)
    app.view("warroom_declare")(slow)
    app.action("warroom_nudge_update")(slow)
    return app


OVERRUN_BODIES: dict[str, tuple[bytes, str]] = {
    "command": (b"command=%2Fincident&text=status&user_id=U0X&channel_id=C0X&team_id=T0X", FORM_CONTENT_TYPE),
    "event": (
        json.dumps(
            {
                "type": "event_callback",
                "team_id": "T0X",
                "event_id": "Ev0X",
                "event": {"type": "reaction_added", "user": "U0X", "reaction": "mega", "item": {}},
            }
        ).encode(),
        JSON_CONTENT_TYPE,
    ),
}


def interaction(payload: dict[str, Any]) -> tuple[bytes, str]:
    return urlencode({"payload": json.dumps(payload)}).encode(), FORM_CONTENT_TYPE


async def test_the_ingress_answers_for_a_listener_that_overruns_its_deadline(
    temporal: WorkflowEnvironment, sandbox: SandboxServer
) -> None:
    """web.py's safety net: whatever a listener does, Slack gets the answer for its kind in time."""
    view = {
        "id": "V0X",
        "type": "modal",
        "callback_id": "warroom_declare",
        "blocks": [{"type": "input", "block_id": "title", "element": {}}],
        "state": {"values": {}},
    }
    user = {"id": "U0X"}
    bodies = {
        **OVERRUN_BODIES,
        "view_submission": interaction({"type": "view_submission", "user": user, "view": view}),
        "block_actions": interaction(
            {
                "type": "block_actions",
                "user": user,
                "trigger_id": "1.2.x",
                "actions": [{"action_id": "warroom_nudge_update", "block_id": "b", "value": "1"}],
            }
        ),
    }
    ran: list[str] = []
    metrics = WebMetrics()
    slack = AsyncWebClient(token=TOKEN, base_url=sandbox.api_url)  # Bolt's auth.test goes to the sandbox
    app = create_web_app(overrunning_app(slack, ran), temporal.client, metrics=metrics)
    async with TestClient(TestServer(app)) as http:
        got: dict[str, tuple[int, str, float]] = {}
        for kind, (body, content_type) in bodies.items():
            headers = signed_headers(SIGNING_SECRET, body, content_type=content_type)
            started = time.perf_counter()
            response = await http.post("/slack/events", data=body, headers=headers)
            got[kind] = (response.status, await response.text(), time.perf_counter() - started)
    assert len(ran) == 4, ran  # every request reached its (slow) listener
    for kind, (_, _, seconds) in got.items():
        assert LAST_CHANCE - 0.1 < seconds < SLACK_DEADLINE, (kind, got[kind])
    assert got["command"][:2] == (200, DEGRADED_ANSWER)
    assert (got["event"][0], json.loads(got["event"][1])) == (503, EVENT_503)
    assert json.loads(got["view_submission"][1]) == {
        "response_action": "errors",
        "errors": {"title": LATE_FORM},
    }
    assert got["block_actions"][:2] == (200, "")
    timeouts = {
        k: metrics.registry.get_sample_value("warroom_slack_temporal_timeouts_total", {"kind": k})
        for k in bodies
    }
    assert timeouts == {"command": 1.0, "event": 1.0, "view_submission": 1.0, "block_actions": 1.0}


async def test_a_form_submitted_again_after_it_acted_acts_once(stack: Stack) -> None:
    """Slack sends a resubmission of one modal with the same view ID and a new trigger ID: the declare and
    stage forms act once, and the repeat is answered as the first was (the form closes)."""
    incident_id, channel = await declare_via_slack(stack)
    declare_view = (await open_form(stack, "declare", None, "warroom_declare"))["id"]
    stage_view = await open_stage_form(stack, channel)
    sent: dict[str, bytes] = {}
    for view_id, values in (
        (declare_view, {"title": typed(DECLARED), "severity": selected("sev2")}),
        (stage_view, {"stage": selected("identified"), "context": typed(STAGED)}),
    ):
        with Recorder(stack.sandbox) as recorder:
            submitted = await stack.slack.submit_view(view_id, values)
        assert submitted["status"] == 200 and submitted["view_closed"], submitted
        sent[view_id] = recorder.bodies["view_submission"]
    for view_id, body in sent.items():
        payload = json.loads(parse_qs(body.decode())["payload"][0])
        payload["trigger_id"] = stack.sandbox.state.issue_trigger(payload["user"]["id"])
        again = urlencode({"payload": json.dumps(payload)}).encode()
        answer = await stack.sandbox.platform.deliver("view_submission", again, FORM_CONTENT_TYPE)
        assert (answer["status"], answer["body"]) == (200, ""), (view_id, answer)  # closes, no errors
    declared = (await stack.state(incident_id + 1)).title
    assert declared == DECLARED
    with pytest.raises(IncidentNotFound):
        await stack.state(incident_id + 2)  # the repeat declared nothing more
    state = await settled(stack, incident_id)
    assert [e.kind for e in state.timeline if STAGED in e.text] == ["stage"]
