"""Signed but malformed Slack payloads, end to end through the real ingress: each gets a clear message (an
ephemeral answer, or `response_action: errors` on the form), never a 500, and changes nothing.

Odd values a person could not pick are sent through the sandbox's `submit_view`; what the sandbox cannot
produce (a tampered `private_metadata`, a form field left out) is built and signed by hand, as Slack would.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlencode

import aiohttp
import pytest
from structlog.testing import capture_logs

from domain.slack_payloads import (
    SlackPayloadError,
    block_value,
    declare_form,
    reaction_event,
    slash_command,
    stage_form,
)
from domain.vocab import Severity, Stage
from sandbox.models import APP_ID, TEAM_DOMAIN, TEAM_ID, VERIFICATION_TOKEN
from sandbox.signing import JSON_CONTENT_TYPE, signed_headers
from tests.conftest import RESPONDER, SIGNING_SECRET, Stack, eventually
from tests.test_incident_workflow import wait_quiet
from tests.test_ingress import declare_via_slack, replies
from tests.test_ingress_modals import open_form, open_views, selected, typed
from tests.test_ingress_security import post, slash_body
from tests.test_properties import DECLARE_FORM, REACTION, SLASH, STAGE_FORM


def changed(payload: dict[str, Any], *path: Any, to: Any) -> dict[str, Any]:
    """A deep copy of `payload` with the value at `path` replaced."""
    copy: dict[str, Any] = json.loads(json.dumps(payload))
    parent: Any = copy
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = to
    return copy


def test_the_well_formed_payloads_parse() -> None:
    command = slash_command(SLASH)
    assert (command.user_id, command.channel_id, command.command) == ("U0RESPONDER", "C0GENERAL", "/incident")
    reaction = reaction_event(REACTION)
    assert reaction is not None and (reaction.channel_id, reaction.reaction) == ("C0INCIDENT", "mega")
    declared = declare_form(DECLARE_FORM)
    assert (declared.title, declared.severity, declared.call) == ("Search is down", Severity.SEV2, "zoom")
    assert declared.broadcast_channels == ("C0STATUS", "G0EXEC") and declared.private
    staged = stage_form(STAGE_FORM)
    assert (staged.incident_id, staged.stage, staged.actor) == (42, Stage.MITIGATED, "U0RESPONDER")
    assert reaction_event(changed(REACTION, "item", to={"type": "file", "file": "F1"})) is None
    # The caller's Slack name, for the Temporal UI: only a name to show, and never a reason to refuse
    assert command.user_name == "responder" and declared.user_name == "responder"
    for odd in (None, "", 7, ["x"], "me@example.com", "\u200b"):
        assert slash_command(changed(SLASH, "user_name", to=odd)).user_name is None
        assert declare_form(changed(DECLARE_FORM, "user", "username", to=odd)).user_name is None
    assert declare_form(changed(DECLARE_FORM, "user", to={"id": "U0RESPONDER", "name": "r"})).user_name == "r"


VALUES = ("view", "state", "values")


@pytest.mark.parametrize(
    ("parse", "payload", "field", "says"),
    [
        (
            stage_form,
            changed(STAGE_FORM, "view", "private_metadata", to="abc"),
            "private_metadata",
            "incident",
        ),
        (stage_form, changed(STAGE_FORM, *VALUES, "stage", to=selected("bogus")), "stage", "`bogus`"),
        (declare_form, changed(DECLARE_FORM, *VALUES, "severity", to=selected("sev9")), "severity", "`sev9`"),
        (declare_form, changed(DECLARE_FORM, "user", to="U0RESPONDER"), "user", "user"),
        (
            declare_form,
            changed(DECLARE_FORM, *VALUES, "broadcast", "value", "selected_conversations", to=["general"]),
            "broadcast",
            "`general`",
        ),
        (slash_command, changed(SLASH, "user_id", to=None), "user_id", "no user ID"),
        (reaction_event, changed(REACTION, "item", to=[REACTION["item"]]), "item", "reaction item"),
    ],
)
def test_odd_payloads_are_one_error_naming_the_field(
    parse: Any, payload: dict[str, Any], field: str, says: str
) -> None:
    with pytest.raises(SlackPayloadError) as raised:
        parse(payload)
    assert raised.value.field == field and says in raised.value.message


def test_block_value_reads_every_element_type() -> None:
    view = DECLARE_FORM["view"]
    assert block_value(view, "title") == "Search is down"
    assert block_value(view, "severity") == "sev2"
    assert block_value(view, "broadcast") == ["C0STATUS", "G0EXEC"]
    assert block_value(view, "private") == ["private"]
    assert block_value(view, "missing") is None


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def submission_body(view: dict[str, Any], values: dict[str, Any], **changes: Any) -> bytes:
    """A `view_submission` of an opened form (as `open_views` lists it) with `values` as its state, and
    `changes` made to the view itself: the form field Slack posts, field for field."""
    api_view = {k: v for k, v in view.items() if k not in ("user_id", "closed", "errors")}
    payload = {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
        "user": {
            "id": RESPONDER,
            "username": RESPONDER.lower(),
            "name": RESPONDER.lower(),
            "team_id": TEAM_ID,
        },
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": "1.2.tampered",
        "view": {**api_view, "state": {"values": values}, **changes},
        "response_urls": [],
        "is_enterprise_install": False,
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


async def assert_stage_unchanged(stack: Stack, incident_id: int) -> None:
    """The incident is still investigating: no stage change in its timeline, nothing broadcast."""
    await wait_quiet(stack, incident_id)
    state = await stack.state(incident_id)
    assert state.stage is Stage.INVESTIGATING and not state.ever_mitigated
    assert [e.kind for e in state.timeline].count("stage") == 0
    assert state.broadcast_channel_ids == stack.broadcast
    for bc in stack.broadcast:
        assert await replies(stack, bc) == []


async def test_a_stage_form_that_lost_its_incident_gets_a_form_error(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    incident_id, channel = await declare_via_slack(stack)
    view = await open_form(stack, "stage", channel, "warroom_stage")
    body = submission_body(view, {"stage": selected("mitigated")}, private_metadata="abc")

    status, text = await post(http, stack, body, signed_headers(SIGNING_SECRET, body))

    assert status == 200, text
    answer = json.loads(text)
    assert answer["response_action"] == "errors" and list(answer["errors"]) == ["stage"]
    assert "lost track of its incident" in answer["errors"]["stage"]
    assert "run the stage command again" in answer["errors"]["stage"]
    await assert_stage_unchanged(stack, incident_id)


async def test_a_stage_no_form_offers_gets_a_form_error(stack: Stack) -> None:
    incident_id, channel = await declare_via_slack(stack)
    view = await open_form(stack, "stage", channel, "warroom_stage")

    submitted = await stack.slack.submit_view(view["id"], {"stage": selected("bogus")})

    assert submitted["status"] == 200 and submitted["response_action"] == "errors", submitted
    assert not submitted["view_closed"]
    message = submitted["errors"]["stage"]
    assert "`bogus` is not a stage" in message and "investigating, identified or mitigated" in message
    await assert_stage_unchanged(stack, incident_id)


async def test_a_severity_no_form_offers_gets_a_form_error_and_declares_nothing(stack: Stack) -> None:
    view = await open_form(stack, "declare", None, "warroom_declare")

    submitted = await stack.slack.submit_view(
        view["id"], {"title": typed("Search is down"), "severity": selected("sev9")}
    )

    assert submitted["status"] == 200 and submitted["response_action"] == "errors", submitted
    assert not submitted["view_closed"] and list(submitted["errors"]) == ["severity"]
    assert "`sev9` is not a severity" in submitted["errors"]["severity"]
    assert "SEV1" in submitted["errors"]["severity"] and "SEV4" in submitted["errors"]["severity"]
    assert await stack.incidents.list() == []
    snapshot = await stack.slack.state()
    assert [c["name"] for c in snapshot["channels"] if c["name"].startswith("inc-")] == []
    [still_open] = await open_views(stack, "warroom_declare")
    assert still_open["id"] == view["id"]


async def test_a_slash_command_without_a_user_gets_an_ephemeral_error_not_a_500(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    form = dict(parse_qsl(slash_body(stack, "declare sev1 Search is down", stack.general).decode()))
    del form["user_id"]
    body = urlencode(form).encode()

    status, text = await post(http, stack, body, signed_headers(SIGNING_SECRET, body))

    assert status == 200, text
    answer: Any = json.loads(text) if text.startswith("{") else {"text": text}
    assert answer.get("response_type", "ephemeral") == "ephemeral"
    assert "Slack sent no user ID" in answer["text"] and "did nothing" in answer["text"]
    assert await stack.incidents.list() == []
    snapshot = await stack.slack.state()
    assert [c["name"] for c in snapshot["channels"] if c["name"].startswith("inc-")] == []


async def test_a_reaction_on_an_item_that_is_a_list_is_ignored_and_logged_not_a_500(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    incident_id, channel = await declare_via_slack(stack)
    text = "Root cause: an expired certificate"
    ts = (await stack.slack.message(RESPONDER, channel, text))["ts"]
    envelope = {
        "token": VERIFICATION_TOKEN,
        "team_id": TEAM_ID,
        "api_app_id": APP_ID,
        "event": {
            "type": "reaction_added",
            "user": RESPONDER,
            "reaction": "mega",
            "item": [{"type": "message", "channel": channel, "ts": ts}],
            "event_ts": f"{ts}1",
        },
        "type": "event_callback",
        "event_id": "Ev0MALFORMED",
        "event_time": int(float(ts)),
    }
    body = json.dumps(envelope).encode()

    with capture_logs() as logs:
        status, answer = await post(
            http, stack, body, signed_headers(SIGNING_SECRET, body, content_type=JSON_CONTENT_TYPE)
        )

    assert status == 200, answer
    rejected = [entry for entry in logs if entry["event"] == "slack_payload_rejected"]
    assert rejected == [
        {"event": "slack_payload_rejected", "kind": "reaction", "field": "item", "log_level": "warning"}
    ]
    await wait_quiet(stack, incident_id)
    assert (await stack.state(incident_id)).updates_posted == 0
    for bc in stack.broadcast:
        assert await replies(stack, bc) == []

    # The same reaction, well formed, is a status update: it was the payload's shape that was refused.
    assert (await stack.slack.react(RESPONDER, channel, ts, "mega"))["status"] == 200

    async def broadcast_everywhere() -> bool:
        return all([any(text in r for r in await replies(stack, bc)) for bc in stack.broadcast])

    await eventually(broadcast_everywhere)
