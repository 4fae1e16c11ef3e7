"""Jira tickets: the real activity against the sandbox's Jira stand-in over HTTP, retries included."""

from __future__ import annotations

import base64
import dataclasses
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import jira as jira_module
from activities.jira import JiraActivities, key_label
from domain.effects import TicketInfo, TicketRequest
from domain.models import IncidentView
from domain.settings import Settings
from domain.vocab import Severity, Stage, Status
from sandbox import SandboxServer
from sandbox.jira import API_TOKEN, EMAIL, NO_ISSUE, PROJECT_KEY, JiraFake, adf_problem, parse_jql

CHANNEL_ID = "C0INC7"
CHANNEL_NAME = "inc-7-checkout-latency"
SLACK_URL = f"https://slack.com/app_redirect?channel={CHANNEL_ID}"
GLOBAL_ID = f"warroom-slack-channel-{CHANNEL_ID}"
KEY = "inc7:12:ticket"
REQUESTER = "U0RESPONDER"
TITLE = "Checkout latency above 2s"


@pytest.fixture
async def sb() -> AsyncIterator[SandboxServer]:
    async with SandboxServer(token="xoxb-t", signing_secret="s") as server:
        yield server


def jira_settings(sb: SandboxServer, tmp_path: Path, **extra: Any) -> Settings:
    return Settings(**{**sb.vendor_settings(tmp_path), **extra})


def ticket(summary: str = "Fix the retry storm", *, channel: bool = True) -> TicketRequest:
    incident = IncidentView(
        incident_id=7,
        title=TITLE,
        severity=Severity.SEV2,
        stage=Stage.IDENTIFIED,
        status=Status.OPEN,
        private=False,
        commander=None,
        declared_by=REQUESTER,
        declared_at=datetime(2026, 1, 5, 9, 30, tzinfo=UTC),
        channel_id=CHANNEL_ID if channel else None,
        channel_name=CHANNEL_NAME if channel else None,
    )
    return TicketRequest(incident=incident, summary=summary, requested_by=REQUESTER, key=KEY)


async def create(
    settings: Settings, req: TicketRequest, attempt: int = 1, beats: list[tuple[Any, ...]] | None = None
) -> TicketInfo:
    """One attempt. `beats`, shared by successive attempts, carries heartbeat details from one to the next
    as Temporal does: each attempt starts with the last details recorded."""
    beats = [] if beats is None else beats
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt, heartbeat_details=beats[-1] if beats else ())
    env.on_heartbeat = lambda *details: beats.append(details)
    result: TicketInfo = await env.run(JiraActivities(settings).create_ticket, req)
    return result


async def failure(
    settings: Settings, req: TicketRequest, attempt: int = 1, beats: list[tuple[Any, ...]] | None = None
) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await create(settings, req, attempt, beats)
    return caught.value


def adf_texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["text"]] if node.get("type") == "text" else []
        return own + [t for child in node.get("content", []) for t in adf_texts(child)]
    return []


def adf_links(node: Any) -> list[tuple[str, str]]:
    if not isinstance(node, dict):
        return []
    found = [
        (node["text"], mark["attrs"]["href"])
        for mark in node.get("marks", [])
        if node.get("type") == "text" and mark.get("type") == "link"
    ]
    return found + [link for child in node.get("content", []) for link in adf_links(child)]


def created_logs(caplog: pytest.LogCaptureFixture) -> list[tuple[str, bool]]:
    return [
        (r.__dict__["issue"], r.__dict__["reused"])
        for r in caplog.records
        if str(r.msg).startswith("jira issue created")
    ]


# --- the activity -----------------------------------------------------------------------------------------


async def test_creates_an_issue_with_an_adf_description_and_one_link_back_to_slack(
    sb: SandboxServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = jira_settings(sb, tmp_path)
    info = await create(settings, ticket())

    [issue] = sb.jira.issues
    assert info == TicketInfo(
        key="OPS-1", url=f"{settings.jira_url}/browse/OPS-1", summary="Fix the retry storm"
    )
    fields = issue["fields"]
    assert (issue["key"], fields["project"]["key"], fields["summary"]) == ("OPS-1", PROJECT_KEY, info.summary)
    assert fields["issuetype"]["name"] == "Task"
    assert issue["labels"] == fields["labels"] == ["warroom", "warroom-inc-7", "warroom-inc7-12-ticket"]
    assert adf_problem(fields["description"]) is None
    text = " ".join(adf_texts(fields["description"]))
    for shown in (f"INC-7: {TITLE}", "SEV2", "Identified", f"#{CHANNEL_NAME}", REQUESTER):
        assert shown in text
    assert adf_links(fields["description"]) == [(f"#{CHANNEL_NAME}", SLACK_URL)]
    [link] = issue["remote_links"]
    assert (link["globalId"], link["object"]["url"], link["object"]["title"]) == (
        GLOBAL_ID,
        SLACK_URL,
        f"Slack #{CHANNEL_NAME}",
    )
    assert sb.jira.calls == [("create_issue", 201), ("remote_link", 201)]  # a first attempt never searches
    assert created_logs(caplog) == [("OPS-1", False)]


async def test_configured_severity_names_and_issue_type_are_used(sb: SandboxServer, tmp_path: Path) -> None:
    req = ticket()
    req = req.model_copy(
        update={"incident": req.incident.model_copy(update={"severity_labels": {"sev2": "Major"}})}
    )
    await create(jira_settings(sb, tmp_path, JIRA_ISSUE_TYPE="Incident"), req)
    [issue] = sb.jira.issues
    assert issue["fields"]["issuetype"]["name"] == "Incident"
    assert "Major" in adf_texts(issue["fields"]["description"])


async def test_without_a_channel_there_is_no_link(sb: SandboxServer, tmp_path: Path) -> None:
    await create(jira_settings(sb, tmp_path), ticket(channel=False))
    [issue] = sb.jira.issues
    assert issue["remote_links"] == []
    assert adf_links(issue["fields"]["description"]) == []
    assert sb.jira.calls == [("create_issue", 201)]


async def test_server_error_on_create_then_the_retry_creates_exactly_one_issue(
    sb: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jira_module, "INDEX_WAIT", 1.5)
    settings = jira_settings(sb, tmp_path)
    sb.jira.add_fault("create_issue", 500)
    beats: list[tuple[Any, ...]] = []
    err = await failure(settings, ticket(), beats=beats)
    assert (err.type, err.non_retryable) == ("JiraUnavailable", False)
    assert sb.jira.issues == []

    info = await create(settings, ticket(), attempt=2, beats=beats)
    [issue] = sb.jira.issues
    assert info.key == issue["key"]
    assert len(issue["remote_links"]) == 1
    # The first attempt's create got no usable answer: the retry gave Jira's index time before creating.
    assert len(sb.jira.calls_of("search")) >= 2


async def test_lost_create_response_then_the_retry_reuses_the_issue(
    sb: SandboxServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = jira_settings(sb, tmp_path)
    sb.jira.add_fault("create_issue", 504, after_effect=True)
    sb.jira.index_lag = 3.0  # search will not show the new issue for a while
    beats: list[tuple[Any, ...]] = []
    err = await failure(settings, ticket(), beats=beats)
    assert (err.type, err.non_retryable) == ("JiraUnavailable", False)
    [issue] = sb.jira.issues  # Jira made it; warroom never heard
    assert issue["remote_links"] == []

    info = await create(settings, ticket(), attempt=2, beats=beats)
    [again] = sb.jira.issues
    assert again is issue and info.key == issue["key"] == "OPS-1"
    assert [link["globalId"] for link in issue["remote_links"]] == [GLOBAL_ID]
    assert sb.jira.calls_of("create_issue") == [504]  # the retry found the issue instead of creating
    assert len(sb.jira.calls_of("search")) >= 3  # it looked until Jira's index showed it
    assert created_logs(caplog) == [("OPS-1", True)]


@pytest.mark.parametrize("after_effect", [False, True], ids=["failed", "lost-response"])
async def test_remote_link_failure_then_the_retry_leaves_one_issue_and_one_link(
    sb: SandboxServer, tmp_path: Path, after_effect: bool
) -> None:
    settings = jira_settings(sb, tmp_path)
    sb.jira.add_fault("remote_link", 503, after_effect=after_effect)
    sb.jira.index_lag = 60.0  # search would not show the new issue in time
    beats: list[tuple[Any, ...]] = []
    err = await failure(settings, ticket(), beats=beats)
    assert (err.type, err.non_retryable) == ("JiraUnavailable", False)

    info = await create(settings, ticket(), attempt=2, beats=beats)
    [issue] = sb.jira.issues
    assert sb.jira.calls_of("search") == [200]  # the issue's ID, from the heartbeat, reconciled at once
    assert info.key == issue["key"]
    [link] = issue["remote_links"]
    assert link["globalId"] == GLOBAL_ID
    # the lost response's link is updated in place (200), not added a second time
    assert sb.jira.calls_of("remote_link") == [503, 200 if after_effect else 201]


async def test_rate_limit_retries_after_what_jira_asked(sb: SandboxServer, tmp_path: Path) -> None:
    sb.jira.add_fault("create_issue", 429, retry_after=7)
    err = await failure(jira_settings(sb, tmp_path), ticket())
    assert (err.type, err.non_retryable) == ("JiraRateLimited", False)
    assert err.next_retry_delay == timedelta(seconds=7)


async def test_rate_limit_on_the_retry_search_is_also_honoured(sb: SandboxServer, tmp_path: Path) -> None:
    sb.jira.add_fault("search", 429, retry_after=11)
    err = await failure(jira_settings(sb, tmp_path), ticket(), attempt=3)
    assert (err.type, err.next_retry_delay) == ("JiraRateLimited", timedelta(seconds=11))
    assert sb.jira.issues == []


async def test_wrong_token_stops_at_once_and_never_shows_the_token(
    sb: SandboxServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "ATATT-wrong-secret-4242"
    err = await failure(jira_settings(sb, tmp_path, JIRA_API_TOKEN=wrong), ticket())
    assert (err.type, err.non_retryable) == ("JiraAuthFailed", True)
    assert "JIRA_EMAIL" in err.message and "JIRA_API_TOKEN" in err.message
    shown = f"{err!r} {err.message} {err.details} {err.__cause__!r} {err.__context__!r} {caplog.text}"
    assert wrong not in shown and API_TOKEN not in shown
    assert sb.jira.issues == [] and sb.jira.calls == [("create_issue", 401)]


async def test_unknown_issue_type_is_rejected_with_jiras_words(sb: SandboxServer, tmp_path: Path) -> None:
    err = await failure(jira_settings(sb, tmp_path, JIRA_ISSUE_TYPE="Epicc"), ticket())
    assert (err.type, err.non_retryable) == ("JiraRejected", True)
    assert "issuetype: Specify a valid issue type" in err.message
    assert "JIRA_ISSUE_TYPE" in err.message
    assert sb.jira.issues == []


async def test_unknown_project_is_rejected_naming_the_setting(sb: SandboxServer, tmp_path: Path) -> None:
    err = await failure(jira_settings(sb, tmp_path, JIRA_PROJECT_KEY="NOPE"), ticket())
    assert (err.type, err.non_retryable) == ("JiraRejected", True)
    assert "project: valid project is required" in err.message and "JIRA_PROJECT_KEY" in err.message


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({}, ["JIRA_URL", "JIRA_EMAIL", "JIRA_API_TOKEN", "JIRA_PROJECT_KEY"]),
        (
            {"JIRA_URL": "https://acme.atlassian.net", "JIRA_EMAIL": EMAIL, "JIRA_PROJECT_KEY": "OPS"},
            ["JIRA_API_TOKEN"],
        ),
    ],
    ids=["nothing", "no-token"],
)
async def test_not_configured_names_the_missing_variables(given: dict[str, str], missing: list[str]) -> None:
    unset = dict.fromkeys(["JIRA_URL", "JIRA_EMAIL", "JIRA_API_TOKEN", "JIRA_PROJECT_KEY"])
    err = await failure(Settings.model_validate({**unset, **given}), ticket())
    assert (err.type, err.non_retryable) == ("JiraNotConfigured", True)
    assert err.message.endswith("set " + ", ".join(missing))


async def test_unreachable_jira_is_retried(tmp_path: Path) -> None:
    async with SandboxServer(token="xoxb-t", signing_secret="s") as gone:
        settings = jira_settings(gone, tmp_path)
    err = await failure(settings, ticket())  # the server has stopped: connection refused
    assert (err.type, err.non_retryable) == ("JiraUnavailable", False)
    assert "unreachable" in err.message


HOSTILE = ("<!channel> *deploy* `now`\nrollback\r\n<https://evil.example|click> " + "z" * 255)[:255]


@pytest.mark.parametrize(
    ("summary", "sent"),
    [
        (HOSTILE, " ".join(HOSTILE.split())),
        ("<!channel> " + "y" * 244, "<!channel> " + "y" * 244),  # exactly 255: sent unchanged
        ("x" * 300, "x" * 254 + "…"),
        (" \n ", f"INC-7: {TITLE}"),
    ],
    ids=["markup-and-newlines", "255-chars", "too-long", "blank"],
)
async def test_hostile_summary_is_sent_as_plain_text(
    sb: SandboxServer, tmp_path: Path, summary: str, sent: str
) -> None:
    info = await create(jira_settings(sb, tmp_path), ticket(summary))
    [issue] = sb.jira.issues
    assert issue["fields"]["summary"] == info.summary == sent
    assert len(sent) <= 255 and "\n" not in sent


async def test_a_shared_session_is_used_and_left_open(sb: SandboxServer, tmp_path: Path) -> None:
    async with aiohttp.ClientSession() as session:
        acts = JiraActivities(jira_settings(sb, tmp_path), session)
        info = await ActivityEnvironment().run(acts.create_ticket, ticket())
        assert not session.closed
    assert info.key == "OPS-1"


def test_key_labels_use_only_characters_jira_allows() -> None:
    assert key_label("inc7:12:ticket") == "warroom-inc7-12-ticket"
    assert key_label("Inc 7 / ticket #3") == "warroom-inc-7-ticket-3"
    long = key_label("k" * 400)
    assert len(long) == 255 and long != key_label("k" * 401)


# --- the stand-in itself ----------------------------------------------------------------------------------


def auth(email: str = EMAIL, token: str = API_TOKEN) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{email}:{token}".encode()).decode()}


def doc(*content: Any) -> dict[str, Any]:
    return {"type": "doc", "version": 1, "content": list(content)}


def fields(**over: Any) -> dict[str, Any]:
    base = {"project": {"key": "OPS"}, "summary": "s", "issuetype": {"name": "Bug"}, "labels": ["a"]}
    return {"fields": {**base, **over}}


async def post(
    sb: SandboxServer, path: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{sb.url}{path}", json=body, headers=auth() if headers is None else headers
        ) as r:
            return r.status, await r.json()


async def get(sb: SandboxServer, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{sb.url}{path}", headers=auth()) as r:
        return r.status, await r.json()


ISSUE = "/jira/rest/api/3/issue"


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"project": {"key": "NOPE"}}, "project"),
        ({"issuetype": {"name": "Epic"}}, "issuetype"),
        ({"summary": ""}, "summary"),
        ({"summary": "x" * 256}, "summary"),
        ({"summary": "two\nlines"}, "summary"),
        ({"labels": ["has space"]}, "labels"),
        ({"description": "plain string"}, "description"),
        ({"description": {"type": "doc", "version": 2, "content": []}}, "description"),
        ({"description": doc({"type": "paragraph", "content": [{"type": "text"}]})}, "description"),
        ({"description": doc({"type": "text", "text": "top-level"})}, "description"),
        (
            {
                "description": doc(
                    {
                        "type": "paragraph",
                        "content": [{"type": "text", "text": "x", "marks": [{"type": "link"}]}],
                    }
                )
            },
            "description",
        ),
        ({"priority": {"name": "High"}}, "priority"),
    ],
)
async def test_the_stand_in_validates_issues_like_jira(
    sb: SandboxServer, over: dict[str, Any], field: str
) -> None:
    status, body = await post(sb, ISSUE, fields(**over))
    assert status == 400 and field in body["errors"] and body["errorMessages"] == []
    assert sb.jira.issues == []


async def test_the_stand_in_wants_basic_auth(sb: SandboxServer) -> None:
    for headers in (
        {},
        auth(token="nope"),
        auth(email="x@example.com"),
        {"Authorization": "Bearer " + API_TOKEN},
    ):
        status, body = await post(sb, ISSUE, fields(), headers)
        assert status == 401 and body["errorMessages"]
    assert sb.jira.issues == []


async def test_the_stand_in_search_is_eventually_consistent_unless_reconciled(sb: SandboxServer) -> None:
    sb.jira.index_lag = 60.0
    status, created = await post(sb, ISSUE, fields(labels=["fresh"]))
    assert status == 201
    search = "/jira/rest/api/3/search/jql"
    jql = 'project = OPS AND labels = "fresh"'
    assert (await post(sb, search, {"jql": jql}))[1]["issues"] == []  # not indexed yet
    status, found = await post(sb, search, {"jql": jql, "reconcileIssues": [int(created["id"])]})
    assert status == 200 and [i["key"] for i in found["issues"]] == [created["key"]]
    status, body = await post(sb, search, {"jql": jql, "reconcileIssues": list(range(51))})
    assert status == 400 and body["errorMessages"]
    status, body = await post(sb, search, {"jql": jql, "reconcileIssues": [created["key"]]})  # IDs, not keys
    assert status == 400


async def test_the_stand_in_searches_links_and_reports(sb: SandboxServer) -> None:
    sb.jira.index_lag = 0.0  # search sees new issues at once here
    assert (await post(sb, ISSUE, fields(labels=["x-1"])))[0] == 201
    status, created = await post(sb, ISSUE, fields(labels=["y"]))
    assert status == 201 and created["key"] == "OPS-2" and created["self"].endswith(f"/issue/{created['id']}")
    for jql in ('project = OPS AND labels = "y"', 'labels=y and PROJECT = "OPS"'):
        status, found = await post(sb, "/jira/rest/api/3/search/jql", {"jql": jql, "fields": ["summary"]})
        assert status == 200 and found["isLast"] is True
        assert [(i["key"], i["fields"]) for i in found["issues"]] == [("OPS-2", {"summary": "s"})]
    for bad in ("project = OPS OR labels = y", "text ~ boom", "project = NOPE"):
        status, body = await post(sb, "/jira/rest/api/3/search/jql", {"jql": bad})
        assert status == 400 and body["errorMessages"]

    link = {"globalId": "g-1", "object": {"url": "https://example.com", "title": "one"}}
    assert (await post(sb, f"{ISSUE}/OPS-2/remotelink", link))[0] == 201
    link["object"] = {"url": "https://example.com/2", "title": "two"}
    assert (await post(sb, f"{ISSUE}/OPS-2/remotelink", link))[0] == 200
    status, links = await get(sb, f"{ISSUE}/OPS-2/remotelink")
    assert status == 200 and [(li["globalId"], li["object"]["title"]) for li in links] == [("g-1", "two")]
    status, body = await post(sb, f"{ISSUE}/OPS-99/remotelink", link)
    assert (status, body) == (404, {"errorMessages": [NO_ISSUE], "errors": {}})
    status, issue = await get(sb, f"{ISSUE}/{created['id']}")
    assert status == 200 and issue["key"] == "OPS-2" and issue["fields"]["labels"] == ["y"]

    status, state = await get(sb, "/_sandbox/jira/state")
    assert status == 200 and [i["key"] for i in state["issues"]] == ["OPS-1", "OPS-2"]
    assert state["issues"][1]["remote_links"][0]["globalId"] == "g-1"
    assert (await post(sb, "/_sandbox/jira/reset", {}))[0] == 200
    assert sb.jira.issues == [] and sb.jira.calls == []


async def test_the_stand_in_answers_faults_with_retry_after(sb: SandboxServer) -> None:
    sb.jira.add_fault("create_issue", 429, retry_after=9, times=2)
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            async with session.post(f"{sb.url}{ISSUE}", json=fields(), headers=auth()) as r:
                assert (r.status, r.headers["Retry-After"]) == (429, "9")
    assert (await post(sb, ISSUE, fields()))[0] == 201
    assert sb.jira.calls_of("create_issue") == [429, 429, 201]
    with pytest.raises(ValueError):
        sb.jira.add_fault("nope", 500)  # type: ignore[arg-type]


def test_jql_subset() -> None:
    assert parse_jql('labels = "a\\"b" AND project = OPS') == {"labels": 'a"b', "project": "OPS"}
    assert parse_jql("project=OPS and labels=warroom-x") == {"project": "OPS", "labels": "warroom-x"}
    assert adf_problem(doc({"type": "paragraph", "content": [{"type": "text", "text": "ok"}]})) is None
    assert isinstance(JiraFake().settings("http://h", Path(".")), dict)
