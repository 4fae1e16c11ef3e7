"""The ingress's HTTP edge: Slack's request signature, content types, body size, health, retried deliveries.

Requests are built and POSTed by hand (as sandbox/platform.py does), so each can be signed wrongly on purpose.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlencode

import aiohttp
import pytest

from sandbox.models import APP_ID, TEAM_DOMAIN, TEAM_ID, VERIFICATION_TOKEN
from sandbox.signing import FORM_CONTENT_TYPE, JSON_CONTENT_TYPE, signature, signed_headers
from tests.conftest import RESPONDER, SIGNING_SECRET, Stack
from tests.test_incident_workflow import wait_quiet
from tests.test_ingress import declare_via_slack, replies

FORGED = "declare sev1 Forged incident"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def slash_body(stack: Stack, text: str, channel: str, trigger_id: str = "1.2.forged") -> bytes:
    """A slash command's form body, field for field what Slack (and the sandbox) sends."""
    form = {
        "token": VERIFICATION_TOKEN,
        "team_id": TEAM_ID,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel,
        "channel_name": "general",
        "user_id": RESPONDER,
        "user_name": RESPONDER.lower(),
        "command": "/incident",
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": f"{stack.sandbox.url}/_sandbox/respond/none",
        "trigger_id": trigger_id,
    }
    return urlencode(form).encode()


async def post(
    http: aiohttp.ClientSession, stack: Stack, body: bytes, headers: dict[str, str]
) -> tuple[int, str]:
    async with http.post(stack.ingress_url, data=body, headers=headers) as response:
        return response.status, await response.text()


async def assert_no_incident(stack: Stack, http: aiohttp.ClientSession) -> None:
    """Nothing was declared: no workflow, no channel, and the next real declare still gets INC-1."""
    assert await stack.incidents.list() == []
    snapshot = await stack.slack.state()
    assert [c["name"] for c in snapshot["channels"] if c["name"].startswith("inc-")] == []
    body = slash_body(stack, FORGED, stack.general)
    status, text = await post(http, stack, body, signed_headers(SIGNING_SECRET, body))
    assert status == 200 and "*INC-1*" in text  # the same body, signed correctly, does declare


def unsigned(body: bytes) -> dict[str, str]:
    return {"Content-Type": FORM_CONTENT_TYPE, "X-Slack-Request-Timestamp": str(int(time.time()))}


def wrong_secret(body: bytes) -> dict[str, str]:
    return signed_headers("not-the-signing-secret", body)


def other_body(body: bytes) -> dict[str, str]:
    return signed_headers(SIGNING_SECRET, body + b"&x=1")


def stale(body: bytes) -> dict[str, str]:
    return signed_headers(SIGNING_SECRET, body, timestamp=int(time.time()) - 6 * 60)


def from_the_future(body: bytes) -> dict[str, str]:
    return signed_headers(SIGNING_SECRET, body, timestamp=int(time.time()) + 6 * 60)


def replayed_with_a_fresh_timestamp(body: bytes) -> dict[str, str]:
    """A request captured 10 minutes ago, sent again with today's timestamp and its old signature."""
    captured = signed_headers(SIGNING_SECRET, body, timestamp=int(time.time()) - 10 * 60)
    return {**captured, "X-Slack-Request-Timestamp": str(int(time.time()))}


def not_a_timestamp(body: bytes) -> dict[str, str]:
    return {
        "Content-Type": FORM_CONTENT_TYPE,
        "X-Slack-Request-Timestamp": "yesterday",
        "X-Slack-Signature": signature(SIGNING_SECRET, "yesterday", body),
    }


@pytest.mark.parametrize(
    "sign",
    [
        unsigned,
        wrong_secret,
        other_body,
        stale,
        from_the_future,
        replayed_with_a_fresh_timestamp,
        not_a_timestamp,
    ],
)
async def test_badly_signed_requests_get_401_and_declare_nothing(
    stack: Stack, http: aiohttp.ClientSession, sign: Callable[[bytes], dict[str, str]]
) -> None:
    body = slash_body(stack, FORGED, stack.general)
    status, _ = await post(http, stack, body, sign(body))
    assert status == 401
    await assert_no_incident(stack, http)


async def test_wrong_content_type_gets_415(stack: Stack, http: aiohttp.ClientSession) -> None:
    body = slash_body(stack, FORGED, stack.general)
    headers = {**signed_headers(SIGNING_SECRET, body), "Content-Type": "text/plain"}
    status, text = await post(http, stack, body, headers)
    assert status == 415 and "text/plain" in json.loads(text)["error"]
    await assert_no_incident(stack, http)


async def test_body_over_one_mebibyte_gets_413(stack: Stack, http: aiohttp.ClientSession) -> None:
    body = slash_body(stack, FORGED + " " + "x" * (1024 * 1024), stack.general)
    status, _ = await post(http, stack, body, signed_headers(SIGNING_SECRET, body))
    assert status == 413
    await assert_no_incident(stack, http)


async def test_healthz_reports_temporal_reachable(stack: Stack, http: aiohttp.ClientSession) -> None:
    url = stack.ingress_url.removesuffix("/slack/events") + "/healthz"
    async with http.get(url) as response:
        assert response.status == 200
        assert await response.json() == {"ok": True}


async def test_url_verification_answers_the_challenge_only_when_signed(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    body = json.dumps(
        {"token": VERIFICATION_TOKEN, "challenge": "c-7f3a", "type": "url_verification"}
    ).encode()
    status, text = await post(
        http, stack, body, signed_headers(SIGNING_SECRET, body, content_type=JSON_CONTENT_TYPE)
    )
    assert status == 200 and json.loads(text) == {"challenge": "c-7f3a"}
    status, text = await post(http, stack, body, {"Content-Type": JSON_CONTENT_TYPE})
    assert status == 401 and "c-7f3a" not in text


async def test_a_retried_slash_command_posts_its_update_once(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    incident_id, channel = await declare_via_slack(stack)
    trigger = stack.sandbox.state.issue_trigger(RESPONDER)
    body = slash_body(stack, "update Deploy rolled back", channel, trigger_id=trigger)
    headers = signed_headers(SIGNING_SECRET, body)
    first = await post(http, stack, body, headers)
    retry = await post(
        http, stack, body, {**headers, "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "timeout"}
    )
    assert first == retry == (200, "Update posted here and to 2 broadcast channels.")

    await wait_quiet(stack, incident_id)
    in_channel = [m for m in await stack.slack.messages(channel) if "Deploy rolled back" in m["text"]]
    assert len(in_channel) == 1
    for bc in stack.broadcast:
        assert ["Deploy rolled back" in r for r in await replies(stack, bc)] == [True]
    state = await stack.state(incident_id)
    assert state.updates_posted == 1 and [e.kind for e in state.timeline].count("update") == 1

    # The same words under a new trigger are a new update: it is the trigger that dedupes, not the text.
    body = slash_body(
        stack, "update Deploy rolled back", channel, trigger_id=stack.sandbox.state.issue_trigger(RESPONDER)
    )
    assert (await post(http, stack, body, signed_headers(SIGNING_SECRET, body)))[0] == 200
    await wait_quiet(stack, incident_id)
    assert (await stack.state(incident_id)).updates_posted == 2
    for bc in stack.broadcast:
        assert ["Deploy rolled back" in r for r in await replies(stack, bc)] == [True, True]
