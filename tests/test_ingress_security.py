"""The ingress's HTTP edge: Slack's request signature, content types, body size, health, retried deliveries.

Requests are built and POSTed by hand (as sandbox/platform.py does), so each can be signed wrongly on purpose.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from pydantic import SecretStr
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from domain.naming import directory_workflow_id
from sandbox import SandboxServer
from sandbox.models import APP_ID, TEAM_DOMAIN, TEAM_ID, VERIFICATION_TOKEN
from sandbox.signing import FORM_CONTENT_TYPE, JSON_CONTENT_TYPE, signature, signed_headers
from starter.serve import ConfigError, RunningWeb, start_web
from tests.conftest import RESPONDER, SIGNING_SECRET, TOKEN, Stack, make_settings
from tests.test_incident_workflow import wait_quiet
from tests.test_ingress import declare_via_slack, replies, update_taken

FORGED = "declare sev1 Forged incident"
APP_TOKEN = "xapp-1-A0TEST-1-socketmodetoken"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def slash_body(stack: Stack, text: str, channel: str, trigger_id: str = "1.2.forged") -> bytes:
    """A slash command's form body, field for field what Slack (and the sandbox) sends."""
    return slash_body_for(
        text, channel, trigger_id, response_url=f"{stack.sandbox.url}/_sandbox/respond/none"
    )


def slash_body_for(
    text: str, channel: str, trigger_id: str = "1.2.forged", response_url: str = "https://hooks.invalid/none"
) -> bytes:
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
        "response_url": response_url,
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
    assert first == retry and first[0] == 200 and update_taken(str(first[1]), 2), (first, retry)

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


# --- Socket Mode, a missing signing secret, app_rate_limited ---------------------------------------------


class SocketModeStandIn:
    """Takes the place of Slack's Socket Mode connection: records what it was given, reaches nothing."""

    def __init__(self) -> None:
        self.apps: list[tuple[AsyncApp, str]] = []
        self.closed = False

    async def __call__(self, bolt: AsyncApp, app_token: str) -> SocketModeStandIn:
        self.apps.append((bolt, app_token))
        return self

    async def close_async(self) -> None:
        self.closed = True


@asynccontextmanager
async def socket_mode_web(
    temporal: WorkflowEnvironment, sandbox: SandboxServer, **settings: Any
) -> AsyncIterator[tuple[RunningWeb, SocketModeStandIn]]:
    """The web ingress in Socket Mode (no worker: nothing it serves may need one)."""
    stand_in = SocketModeStandIn()
    config = make_settings(sandbox, [], SLACK_APP_TOKEN=SecretStr(APP_TOKEN), **settings)
    slack = AsyncWebClient(token=TOKEN, base_url=sandbox.api_url)
    running = await start_web(config, temporal.client, slack, host="127.0.0.1", port=0, connect=stand_in)
    try:
        yield running, stand_in
    finally:
        await running.stop()
    assert stand_in.closed


def help_command() -> dict[str, str]:
    """`/incident help` as Socket Mode delivers a slash command (the payload, no signature)."""
    return {
        "command": "/incident",
        "text": "help",
        "user_id": RESPONDER,
        "channel_id": "C0GENERAL",
        "team_id": TEAM_ID,
        "trigger_id": "1.2.socket",
    }


async def test_socket_mode_without_a_signing_secret_serves_no_slack_route(
    temporal: WorkflowEnvironment, sandbox: SandboxServer, http: aiohttp.ClientSession
) -> None:
    queue = "socket-mode"
    async with socket_mode_web(temporal, sandbox, SLACK_SIGNING_SECRET=None, WARROOM_TASK_QUEUE=queue) as (
        web,
        stand_in,
    ):
        base = f"http://127.0.0.1:{web.port}"
        body = slash_body_for(FORGED, "C0GENERAL")
        for secret in ("socket-mode", ""):
            async with http.post(
                f"{base}/slack/events", data=body, headers=signed_headers(secret, body)
            ) as r:
                assert r.status == 404, secret
        async with http.get(f"{base}/healthz") as r:
            assert r.status == 200 and await r.json() == {"ok": True}
        async with http.get(f"{base}/metrics") as r:
            assert r.status == 200
        # Nothing was declared: the directory that hands out incident IDs was never even started.
        with pytest.raises(RPCError):
            await temporal.client.get_workflow_handle(directory_workflow_id(queue)).describe()
        # Slack's requests arrive over the connection instead, where Bolt needs no signature.
        [(bolt, token)] = stand_in.apps
        assert token == APP_TOKEN
        answer = await bolt.async_dispatch(AsyncBoltRequest(mode="socket_mode", body=help_command()))
        assert answer.status == 200 and "/incident declare" in answer.body


async def test_socket_mode_with_a_signing_secret_also_serves_slack_over_http_verified(
    temporal: WorkflowEnvironment, sandbox: SandboxServer, http: aiohttp.ClientSession
) -> None:
    async with socket_mode_web(temporal, sandbox) as (web, _):
        url = f"http://127.0.0.1:{web.port}/slack/events"
        body = slash_body_for("help", "C0GENERAL")
        async with http.post(url, data=body, headers=signed_headers("socket-mode", body)) as r:
            assert r.status == 401
        async with http.post(url, data=body, headers=signed_headers(SIGNING_SECRET, body)) as r:
            assert r.status == 200 and "/incident declare" in await r.text()


@pytest.mark.parametrize("secret", [None, "", "   "])
async def test_http_mode_without_a_signing_secret_refuses_to_start(
    temporal: WorkflowEnvironment, sandbox: SandboxServer, secret: str | None
) -> None:
    config = make_settings(sandbox, [], SLACK_SIGNING_SECRET=None if secret is None else SecretStr(secret))
    slack = AsyncWebClient(token=TOKEN, base_url=sandbox.api_url)
    with pytest.raises(ConfigError) as err:
        await start_web(config, temporal.client, slack, host="127.0.0.1", port=0)
    message = str(err.value)
    assert message.startswith("SLACK_SIGNING_SECRET is not set")
    assert "Basic Information" in message and "SLACK_APP_TOKEN" in message


def app_rate_limited() -> bytes:
    notice = {
        "token": VERIFICATION_TOKEN,
        "type": "app_rate_limited",
        "team_id": TEAM_ID,
        "minute_rate_limited": 1518467820,
        "api_app_id": APP_ID,
    }
    return json.dumps(notice).encode()


async def rate_limited_count(http: aiohttp.ClientSession, stack: Stack) -> float:
    async with http.get(stack.ingress_url.removesuffix("/slack/events") + "/metrics") as r:
        text = await r.text()
    [line] = [n for n in text.splitlines() if n.startswith("warroom_slack_app_rate_limited_total ")]
    return float(line.split()[1])


async def test_app_rate_limited_is_logged_counted_and_answered_200_only_when_signed(
    stack: Stack, http: aiohttp.ClientSession, log_output: io.StringIO
) -> None:
    body = app_rate_limited()
    assert await rate_limited_count(http, stack) == 0
    headers = signed_headers(SIGNING_SECRET, body, content_type=JSON_CONTENT_TYPE)
    assert (await post(http, stack, body, headers))[0] == 200
    assert await rate_limited_count(http, stack) == 1
    [logged] = [
        line
        for line in map(json.loads, log_output.getvalue().splitlines())
        if line["event"] == "slack_app_rate_limited"
    ]
    assert logged["level"] == "warning" and logged["minute_rate_limited"] == 1518467820
    unsigned_headers = {"Content-Type": JSON_CONTENT_TYPE, "X-Slack-Request-Timestamp": str(int(time.time()))}
    assert (await post(http, stack, body, unsigned_headers))[0] == 401
    assert (
        await post(
            http, stack, body, signed_headers("not-the-signing-secret", body, content_type=JSON_CONTENT_TYPE)
        )
    )[0] == 401
    assert await rate_limited_count(http, stack) == 1
