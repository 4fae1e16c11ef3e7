"""The Zoom and Google Meet call providers, run as the `create_call` activity against the sandbox."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import socket
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from temporalio.api.failure.v1 import Failure
from temporalio.converter import DefaultFailureConverter, DefaultPayloadConverter
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.calls import CallActivities, providers_from
from activities.calls import zoom as zoom_module
from activities.calls.zoom import ZoomProvider, zoom_retry_after
from domain.effects import CallInfo, CallProviderName, CallRequest
from domain.settings import Settings
from sandbox import SandboxServer
from sandbox import meet as meet_fake
from sandbox import zoom as zoom_fake

# --- helpers ----------------------------------------------------------------------------------------------


@pytest.fixture
async def sb() -> AsyncIterator[SandboxServer]:
    async with SandboxServer(token="xoxb-t", signing_secret="s") as server:
        yield server


def settings_for(sb: SandboxServer, workdir: Path, **overrides: str | None) -> Settings:
    """Settings pointing at the sandbox's stand-ins; an override of None removes that variable."""
    values: dict[str, Any] = {**sb.vendor_settings(workdir), **overrides}
    return Settings(**{k: v for k, v in values.items() if v is not None})


def call_request(provider: CallProviderName = "zoom", key: str = "inc-7-call-1") -> CallRequest:
    return CallRequest(incident_id=7, topic="INC-7: Checkout latency above 2s", provider=provider, key=key)


async def create(acts: CallActivities, req: CallRequest, attempt: int = 1) -> CallInfo:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt)
    return await env.run(acts.create_call, req)


async def create_fails(acts: CallActivities, req: CallRequest, attempt: int = 1) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await create(acts, req, attempt)
    return caught.value


def as_temporal_sees_it(err: BaseException) -> str:
    """Everything the worker would send to Temporal for this error: messages, types, stack traces, causes."""
    failure = Failure()
    DefaultFailureConverter().to_failure(err, DefaultPayloadConverter(), failure)
    return f"{err}\n{err!r}\n{failure}"


def assert_no_secret(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret and secret not in text, "a secret leaked"


def zoom_secrets(sb: SandboxServer) -> list[str]:
    basic = base64.b64encode(f"{zoom_fake.CLIENT_ID}:{zoom_fake.CLIENT_SECRET}".encode()).decode()
    return [zoom_fake.CLIENT_SECRET, basic, *sb.zoom.tokens]


def meet_secrets(sb: SandboxServer) -> list[str]:
    key_lines = [line for line in sb.meet.private_key_pem.splitlines() if "-----" not in line]
    return [*sb.meet.tokens, *key_lines[1:4]]


def read_json(path: str | Path | None) -> dict[str, Any]:
    return dict(json.loads(Path(str(path)).read_text()))


def file_mode(path: str | Path | None) -> int:
    return stat.S_IMODE(Path(str(path)).stat().st_mode)


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- Zoom -------------------------------------------------------------------------------------------------


async def test_zoom_creates_meetings_with_one_token(sb: SandboxServer, tmp_path: Path) -> None:
    acts = providers_from(settings_for(sb, tmp_path), None)
    infos = await asyncio.gather(*(create(acts, call_request(key=f"k{i}")) for i in range(3)))

    assert sb.zoom.token_requests == 1  # three concurrent calls, one fetch
    assert len(sb.zoom.meetings) == 3
    by_id = {str(m["id"]): m for m in sb.zoom.meetings}
    for i, info in enumerate(infos):
        meeting = by_id[info.meeting_id]
        assert info.provider == "zoom"
        assert info.join_url == meeting["join_url"]
        assert info.join_url.startswith(f"{zoom_fake.JOIN_HOST}/j/{info.meeting_id}?pwd=")
        assert meeting["topic"] == "INC-7: Checkout latency above 2s"
        assert meeting["type"] == 2
        assert meeting["agenda"].splitlines()[0] == f"warroom-key: k{i}"
        assert meeting["settings"]["join_before_host"] is True
    assert_no_secret("".join(i.model_dump_json() for i in infos), zoom_secrets(sb))


async def test_zoom_shares_a_session_and_its_token(sb: SandboxServer, tmp_path: Path) -> None:
    async with aiohttp.ClientSession() as session:
        acts = providers_from(settings_for(sb, tmp_path), session)
        first = await create(acts, call_request(key="a"))
        second = await create(acts, call_request(key="b"))
    assert first.meeting_id != second.meeting_id
    assert sb.zoom.token_requests == 1
    assert sb.zoom.calls_of("create_meeting") == [201, 201]


async def test_zoom_fetches_a_new_token_when_the_old_one_expired(sb: SandboxServer, tmp_path: Path) -> None:
    acts = providers_from(settings_for(sb, tmp_path), None)
    await create(acts, call_request(key="a"))
    sb.zoom.expire_tokens()
    await create(acts, call_request(key="b"))

    assert sb.zoom.token_requests == 2
    assert sb.zoom.calls_of("create_meeting") == [201, 401, 201]
    assert len(sb.zoom.meetings) == 2


async def test_zoom_token_is_renewed_five_minutes_before_expiry(sb: SandboxServer, tmp_path: Path) -> None:
    now = [1000.0]
    settings = settings_for(sb, tmp_path)
    assert settings.zoom_client_secret is not None
    provider = ZoomProvider(
        account_id=zoom_fake.ACCOUNT_ID,
        client_id=zoom_fake.CLIENT_ID,
        client_secret=settings.zoom_client_secret,
        api_url=settings.zoom_api_url,
        oauth_url=settings.zoom_oauth_url,
        clock=lambda: now[0],
    )
    await provider.create(call_request(key="a"))
    now[0] += zoom_fake.TOKEN_TTL - 301  # still more than 5 minutes left
    await provider.create(call_request(key="b"))
    assert sb.zoom.token_requests == 1
    now[0] += 2  # now less than 5 minutes left
    await provider.create(call_request(key="c"))
    assert sb.zoom.token_requests == 2
    assert sb.zoom.calls_of("create_meeting") == [201, 201, 201]
    assert "redacted" in repr(vars(provider)) and all(t not in repr(vars(provider)) for t in sb.zoom.tokens)


async def test_zoom_retry_after_a_lost_response_reuses_the_meeting(sb: SandboxServer, tmp_path: Path) -> None:
    acts = providers_from(settings_for(sb, tmp_path), None)
    sb.zoom.add_fault("create_meeting", 502, after_effect=True)
    err = await create_fails(acts, call_request())
    assert not err.non_retryable
    assert len(sb.zoom.meetings) == 1  # Zoom made it; warroom never heard

    info = await create(acts, call_request(), attempt=2)

    assert len(sb.zoom.meetings) == 1
    assert info.meeting_id == str(sb.zoom.meetings[0]["id"])
    assert info.join_url == sb.zoom.meetings[0]["join_url"]
    assert sb.zoom.calls_of("list_meetings") == [200]
    assert sb.zoom.calls_of("create_meeting") == [502]


async def test_zoom_retry_looks_through_every_page(
    sb: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(zoom_module, "LIST_PAGE_SIZE", 2)
    acts = providers_from(settings_for(sb, tmp_path), None)
    for key in ("other-1", "other-2", "other-3", "wanted", "other-4"):
        await create(acts, call_request(key=key))

    info = await create(acts, call_request(key="wanted"), attempt=3)

    assert info.meeting_id == str(sb.zoom.meetings[3]["id"])
    assert len(sb.zoom.meetings) == 5
    assert sb.zoom.calls_of("list_meetings") == [200, 200]


async def test_zoom_retry_without_an_earlier_meeting_creates_one(sb: SandboxServer, tmp_path: Path) -> None:
    acts = providers_from(settings_for(sb, tmp_path), None)
    await create(acts, call_request(key="someone-else"))

    info = await create(acts, call_request(key="mine"), attempt=2)

    assert len(sb.zoom.meetings) == 2
    assert info.meeting_id == str(sb.zoom.meetings[1]["id"])
    assert sb.zoom.calls_of("list_meetings") == [200]


async def test_zoom_app_without_the_list_scope_creates_rather_than_failing(
    sb: SandboxServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sb.zoom.grant_scope("meeting:write:meeting")  # listing meetings was not added on the Marketplace page
    acts = providers_from(settings_for(sb, tmp_path), None)

    info = await create(acts, call_request(), attempt=2)

    assert sb.zoom.calls_of("list_meetings") == [400]  # Zoom's 4711: the token lacks the scope
    assert sb.zoom.calls_of("create_meeting") == [201]
    assert info.meeting_id == str(sb.zoom.meetings[0]["id"])
    assert "meeting:read:list_meetings:admin" in caplog.text


async def test_zoom_rate_limit_waits_for_retry_after(sb: SandboxServer, tmp_path: Path) -> None:
    acts = providers_from(settings_for(sb, tmp_path), None)
    sb.zoom.add_fault("create_meeting", 429, retry_after=7)

    err = await create_fails(acts, call_request())

    assert err.type == "ZoomRateLimited"
    assert not err.non_retryable
    assert err.next_retry_delay == timedelta(seconds=7)
    assert sb.zoom.meetings == []


def test_zoom_retry_after_as_a_timestamp() -> None:
    now = datetime(2026, 5, 31, 23, 59, 30, tzinfo=UTC)
    assert zoom_retry_after({"Retry-After": "2026-06-01T00:00:00Z"}, now) == 30.0
    assert zoom_retry_after({"Retry-After": "Mon, 01 Jun 2026 00:00:00 GMT"}, now) == 30.0
    assert zoom_retry_after({"Retry-After": "12"}, now) == 12.0
    assert zoom_retry_after({"Retry-After": "2020-01-01T00:00:00Z"}, now) == 0.0
    assert zoom_retry_after({"Retry-After": "soon"}, now) is None
    assert zoom_retry_after({}, now) is None


async def test_zoom_server_error_is_retryable(sb: SandboxServer, tmp_path: Path) -> None:
    acts = providers_from(settings_for(sb, tmp_path), None)
    sb.zoom.add_fault("create_meeting", 500)

    err = await create_fails(acts, call_request())

    assert err.type == "ZoomUnavailable"
    assert not err.non_retryable
    assert "HTTP 500" in err.message
    assert sb.zoom.meetings == []


async def test_zoom_token_endpoint_outage_is_retryable(sb: SandboxServer, tmp_path: Path) -> None:
    acts = providers_from(settings_for(sb, tmp_path), None)
    sb.zoom.add_fault("token", 503)

    err = await create_fails(acts, call_request())

    assert err.type == "ZoomUnavailable" and not err.non_retryable
    assert sb.zoom.calls_of("create_meeting") == []


async def test_zoom_unreachable_is_retryable(sb: SandboxServer, tmp_path: Path) -> None:
    acts = providers_from(settings_for(sb, tmp_path, ZOOM_OAUTH_URL=f"{closed_port_url()}/oauth/token"), None)

    err = await create_fails(acts, call_request())

    assert err.type == "ZoomUnavailable" and not err.non_retryable
    assert "unreachable" in err.message


async def test_zoom_revoked_credentials_stop_without_a_token_storm(sb: SandboxServer, tmp_path: Path) -> None:
    acts = providers_from(settings_for(sb, tmp_path), None)
    await create(acts, call_request(key="before"))
    sb.zoom.revoke_credentials()

    err = await create_fails(acts, call_request(key="after"))

    assert err.type == "ZoomAuthFailed"
    assert err.non_retryable
    assert sb.zoom.token_requests <= 2
    assert sb.zoom.calls_of("token")[-1] == 400  # the token endpoint refused the credentials themselves
    for name in ("ZOOM_ACCOUNT_ID", "ZOOM_CLIENT_ID", "ZOOM_CLIENT_SECRET"):
        assert name in err.message
    assert_no_secret(as_temporal_sees_it(err), zoom_secrets(sb))


async def test_zoom_wrong_secret_is_refused_at_once(sb: SandboxServer, tmp_path: Path) -> None:
    wrong = "not-the-secret-0123456789"
    acts = providers_from(settings_for(sb, tmp_path, ZOOM_CLIENT_SECRET=wrong), None)

    err = await create_fails(acts, call_request())

    assert err.type == "ZoomAuthFailed" and err.non_retryable
    assert "invalid_client" in err.message
    assert sb.zoom.calls_of("token") == [400]
    assert_no_secret(as_temporal_sees_it(err), [wrong, *zoom_secrets(sb)])


async def test_zoom_wrong_account_is_refused(sb: SandboxServer, tmp_path: Path) -> None:
    acts = providers_from(settings_for(sb, tmp_path, ZOOM_ACCOUNT_ID="someone-elses-account"), None)

    err = await create_fails(acts, call_request())

    assert err.type == "ZoomAuthFailed" and err.non_retryable
    assert sb.zoom.token_requests == 1


async def test_zoom_second_401_gives_up(sb: SandboxServer, tmp_path: Path) -> None:
    acts = providers_from(settings_for(sb, tmp_path), None)
    sb.zoom.add_fault("create_meeting", 401, times=3)

    err = await create_fails(acts, call_request())

    assert err.type == "ZoomAuthFailed" and err.non_retryable
    assert sb.zoom.token_requests == 2  # one fresh token after the first 401, none after the second
    assert sb.zoom.calls_of("create_meeting") == [401, 401]
    assert_no_secret(as_temporal_sees_it(err), zoom_secrets(sb))


async def test_zoom_secrets_stay_out_of_logs(
    sb: SandboxServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    acts = providers_from(settings_for(sb, tmp_path), None)
    await create(acts, call_request(key="a"))
    sb.zoom.add_fault("create_meeting", 502, after_effect=True)
    await create_fails(acts, call_request(key="b"))
    await create(acts, call_request(key="b"), attempt=2)

    logged = "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    assert "call created" in logged
    assert_no_secret(logged, zoom_secrets(sb))


# --- Google Meet ------------------------------------------------------------------------------------------


async def test_meet_creates_a_space(sb: SandboxServer, tmp_path: Path) -> None:
    settings = settings_for(sb, tmp_path)
    acts = providers_from(settings, None)

    first = await create(acts, call_request("meet", key="a"))
    second = await create(acts, call_request("meet", key="b"))

    assert sb.meet.token_requests == 1  # the signed JWT was accepted once; its token is reused
    assert sb.meet.calls_of("token") == [200]
    assert [s["name"] for s in sb.meet.spaces] == [first.meeting_id, second.meeting_id]
    assert first.provider == "meet"
    assert first.join_url == sb.meet.spaces[0]["meetingUri"]
    assert first.join_url.startswith("https://meet.google.com/")
    assert first.meeting_id.startswith("spaces/")
    assert file_mode(settings.google_credentials_path) == 0o600
    assert_no_secret(first.model_dump_json() + second.model_dump_json(), meet_secrets(sb))


async def test_meet_concurrent_calls_share_one_token(sb: SandboxServer, tmp_path: Path) -> None:
    async with aiohttp.ClientSession() as session:
        acts = providers_from(settings_for(sb, tmp_path), session)
        infos = await asyncio.gather(*(create(acts, call_request("meet", key=f"k{i}")) for i in range(3)))
    assert len({i.meeting_id for i in infos}) == 3
    assert len(sb.meet.spaces) == 3
    assert sb.meet.token_requests == 1


async def test_meet_refreshes_a_token_the_api_refuses(sb: SandboxServer, tmp_path: Path) -> None:
    acts = providers_from(settings_for(sb, tmp_path), None)
    await create(acts, call_request("meet", key="a"))
    sb.meet.expire_tokens()  # google-auth still believes its token fresh

    await create(acts, call_request("meet", key="b"))

    assert sb.meet.token_requests == 2
    assert sb.meet.calls_of("create_space") == [200, 401, 200]


async def test_meet_subject_without_delegation_is_not_retried(sb: SandboxServer, tmp_path: Path) -> None:
    acts = providers_from(settings_for(sb, tmp_path, GOOGLE_MEET_SUBJECT="intruder@example.com"), None)

    err = await create_fails(acts, call_request("meet"))

    assert err.type == "GoogleMeetAuthFailed"
    assert err.non_retryable
    assert "unauthorized_client" in err.message and "GOOGLE_MEET_SUBJECT" in err.message
    assert sb.meet.calls_of("token") == [401]
    assert sb.meet.spaces == []
    assert_no_secret(as_temporal_sees_it(err), meet_secrets(sb))


async def test_meet_jwt_signed_with_another_key_is_refused(sb: SandboxServer, tmp_path: Path) -> None:
    genuine = read_json(sb.meet.settings(sb.url, tmp_path)["GOOGLE_APPLICATION_CREDENTIALS"])
    forged = tmp_path / "forged.json"  # the same account and key ID, another private key
    forged.write_text(json.dumps({**genuine, "private_key": meet_fake.MeetFake().private_key_pem}))
    acts = providers_from(settings_for(sb, tmp_path, GOOGLE_APPLICATION_CREDENTIALS=str(forged)), None)

    err = await create_fails(acts, call_request("meet"))

    assert err.type == "GoogleMeetAuthFailed" and err.non_retryable
    assert "invalid_grant" in err.message
    assert sb.meet.calls_of("token") == [400]


async def test_meet_unreadable_key_file_is_not_retried(sb: SandboxServer, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.json"
    acts = providers_from(settings_for(sb, tmp_path, GOOGLE_APPLICATION_CREDENTIALS=str(missing)), None)
    err = await create_fails(acts, call_request("meet"))
    assert err.type == "GoogleMeetNotConfigured" and err.non_retryable
    assert "GOOGLE_APPLICATION_CREDENTIALS" in err.message and str(missing) in err.message

    garbage = tmp_path / "garbage.json"
    garbage.write_text('{"type": "service_account", "private_key": "TOP-SECRET-KEY-MATERIAL"')
    acts = providers_from(settings_for(sb, tmp_path, GOOGLE_APPLICATION_CREDENTIALS=str(garbage)), None)
    err = await create_fails(acts, call_request("meet"))
    assert err.type == "GoogleMeetNotConfigured" and err.non_retryable
    assert "GOOGLE_APPLICATION_CREDENTIALS" in err.message
    assert_no_secret(as_temporal_sees_it(err), ["TOP-SECRET-KEY-MATERIAL"])

    bad_key = tmp_path / "bad-key.json"
    info = read_json(settings_for(sb, tmp_path).google_credentials_path)
    bad_key.write_text(json.dumps({**info, "private_key": "-----BEGIN PRIVATE KEY-----\nTOPSECRETKEY\n"}))
    acts = providers_from(settings_for(sb, tmp_path, GOOGLE_APPLICATION_CREDENTIALS=str(bad_key)), None)
    err = await create_fails(acts, call_request("meet"))
    assert err.type == "GoogleMeetNotConfigured" and err.non_retryable
    assert_no_secret(as_temporal_sees_it(err), ["TOPSECRETKEY"])
    assert sb.meet.token_requests == 0


async def test_meet_rate_limit_and_outage(sb: SandboxServer, tmp_path: Path) -> None:
    acts = providers_from(settings_for(sb, tmp_path), None)
    sb.meet.add_fault("create_space", 429, retry_after=4)
    err = await create_fails(acts, call_request("meet"))
    assert err.type == "GoogleMeetRateLimited" and not err.non_retryable
    assert err.next_retry_delay == timedelta(seconds=4)

    sb.meet.add_fault("create_space", 503)
    err = await create_fails(acts, call_request("meet"))
    assert err.type == "GoogleMeetUnavailable" and not err.non_retryable
    assert sb.meet.spaces == []
    assert_no_secret(as_temporal_sees_it(err), meet_secrets(sb))


async def test_meet_token_endpoint_unreachable_is_retryable(sb: SandboxServer, tmp_path: Path) -> None:
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    path = meet_fake.MeetFake().settings(closed_port_url(), other_dir)["GOOGLE_APPLICATION_CREDENTIALS"]
    acts = providers_from(settings_for(sb, tmp_path, GOOGLE_APPLICATION_CREDENTIALS=path), None)

    err = await create_fails(acts, call_request("meet"))

    assert err.type == "GoogleMeetUnavailable" and not err.non_retryable
    assert "unreachable" in err.message


async def test_meet_lost_response_leaves_one_unused_space(sb: SandboxServer, tmp_path: Path) -> None:
    """Meet cannot find a space by our key: the retry makes a second one, and only its link is returned."""
    acts = providers_from(settings_for(sb, tmp_path), None)
    sb.meet.add_fault("create_space", 500, after_effect=True)
    await create_fails(acts, call_request("meet"))

    info = await create(acts, call_request("meet"), attempt=2)

    assert len(sb.meet.spaces) == 2
    assert info.meeting_id == sb.meet.spaces[1]["name"]


# --- configuration ----------------------------------------------------------------------------------------


async def test_unconfigured_zoom_names_what_is_missing(sb: SandboxServer, tmp_path: Path) -> None:
    settings = settings_for(sb, tmp_path, ZOOM_ACCOUNT_ID=None, ZOOM_CLIENT_SECRET=None)
    acts = providers_from(settings, None)

    err = await create_fails(acts, call_request("zoom"))

    assert err.type == "ZoomNotConfigured" and err.non_retryable
    assert "ZOOM_ACCOUNT_ID" in err.message and "ZOOM_CLIENT_SECRET" in err.message
    assert "ZOOM_CLIENT_ID" not in err.message
    assert sb.zoom.token_requests == 0
    assert len(sb.meet.spaces) == 0
    assert (await create(acts, call_request("meet"))).provider == "meet"  # Meet is still set up


async def test_unconfigured_meet_names_what_is_missing(sb: SandboxServer, tmp_path: Path) -> None:
    acts = providers_from(settings_for(sb, tmp_path, GOOGLE_MEET_SUBJECT=None), None)

    err = await create_fails(acts, call_request("meet"))

    assert err.type == "GoogleMeetNotConfigured" and err.non_retryable
    assert "GOOGLE_MEET_SUBJECT" in err.message
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in err.message


# --- the stand-ins' control routes --------------------------------------------------------------------------


async def test_control_routes_show_and_reset_state(sb: SandboxServer, tmp_path: Path) -> None:
    acts = providers_from(settings_for(sb, tmp_path), None)
    await create(acts, call_request("zoom"))
    await create(acts, call_request("meet"))
    async with aiohttp.ClientSession() as http:
        for vendor, items in (("zoom", "meetings"), ("meet", "spaces")):
            async with http.get(f"{sb.url}/_sandbox/{vendor}/state") as resp:
                state = await resp.json()
            assert state["ok"] and len(state[items]) == 1 and state["token_requests"] == 1
            async with http.post(
                f"{sb.url}/_sandbox/{vendor}/faults", json={"route": "token", "status": 500}
            ) as resp:
                assert (await resp.json())["fault"]["status"] == 500
            async with http.post(
                f"{sb.url}/_sandbox/{vendor}/faults", json={"route": "nope", "status": 500}
            ) as r:
                assert r.status == 400
            async with http.post(f"{sb.url}/_sandbox/{vendor}/reset") as resp:
                assert (await resp.json()) == {"ok": True}
    assert sb.zoom.meetings == [] and sb.zoom.token_requests == 0 and sb.zoom.faults == []
    assert sb.meet.spaces == [] and sb.meet.token_requests == 0 and sb.meet.faults == []
