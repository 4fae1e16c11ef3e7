"""The timeline at resolve: rendered as Markdown and JSON, posted and uploaded once in its channel."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.slack_timeline import SlackTimelineActivities
from activities.timeline_render import summary_text, timeline_json, timeline_markdown
from domain.effects import TimelineExportRequest
from domain.models import CallInfo, Followup, IncidentResult, IncidentView, TicketInfo, TimelineEvent
from domain.vocab import Severity, Stage, Status
from sandbox import BOT_USER_ID, SandboxServer
from sandbox.api_files import UPLOAD, shared_files, uploaded_bytes
from sandbox.models import Call

TOKEN = "xoxb-timeline"
ALICE, BOB, CAROL, DAN = "U0ALICE", "U0BOB", "U0CAROL", "U0DAN"
T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
PERMALINK = "https://warroom-sandbox.slack.com/archives/C0INC7/p1767606300000100"
FOLLOWUP_LINK = "https://warroom-sandbox.slack.com/archives/C0INC7/p1767607800000100"
JOIN_URL = "https://zoom.example.com/j/8123?pwd=abc"
TICKET = TicketInfo(key="OPS-42", url="https://jira.example.com/browse/OPS-42", summary="Fix the retry storm")
MD_NAME, JSON_NAME = "inc-7-timeline.md", "inc-7-timeline.json"
KEY = "inc7:timeline"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def make_result(*, resolved: bool = True) -> IncidentResult:
    """Mitigated before Identified; a reaction with its permalink, a call, a ticket, a follow-up; text with
    `|`, `<!channel>` and a line break."""
    events = [
        TimelineEvent(at=T0, kind="declared", text="SEV2 Checkout latency above 2s (declared)", actor=ALICE),
        TimelineEvent(at=at(0.1), kind="channel", text="created #inc-7-checkout-latency"),
        TimelineEvent(at=at(12), kind="stage", text="Mitigated: rolled back | partially", actor=BOB),
        TimelineEvent(
            at=at(15),
            kind="reaction",
            text=":mega: <!channel> db is back | mostly",
            actor=CAROL,
            link=PERMALINK,
        ),
        TimelineEvent(at=at(20), kind="call", text="Zoom call", actor=ALICE, link=JOIN_URL),
        TimelineEvent(at=at(25), kind="stage", text="Identified: bad deploy *again*", actor=BOB),
        TimelineEvent(
            at=at(30), kind="ticket", text="OPS-42: Fix the retry storm", actor=DAN, link=TICKET.url
        ),
        TimelineEvent(at=at(40), kind="update", text="pool resized\nerrors at 0.1%", actor=ALICE),
        TimelineEvent(
            at=at(45), kind="followup", text="#1: alert on pool size", actor=CAROL, link=FOLLOWUP_LINK
        ),
    ]
    if resolved:
        events.append(TimelineEvent(at=at(65), kind="resolved", text="rolled back and verified", actor=ALICE))
    return IncidentResult(
        incident_id=7,
        title="Checkout latency above 2s",
        severity=Severity.SEV2,
        final_stage=Stage.IDENTIFIED,
        ever_mitigated=True,
        summary="rolled back and verified" if resolved else "",
        declared_at=T0,
        resolved_at=at(65) if resolved else None,
        timeline=events,
        stage_reached={"mitigated": at(12), "identified": at(25)},
        followups=[
            Followup(
                followup_id=1,
                text="alert on pool size",
                author=CAROL,
                at=at(45),
                link=FOLLOWUP_LINK,
                ticket=TICKET,
            ),
            Followup(followup_id=2, text="write the | runbook", author=BOB, at=at(50)),
        ],
        tickets=[TICKET],
        commander=ALICE,
        roles={"scribe": DAN},
    )


def make_view(channel_id: str | None = "C0INC7", *, resolved: bool = True) -> IncidentView:
    return IncidentView(
        incident_id=7,
        title="Checkout latency above 2s",
        severity=Severity.SEV2,
        stage=Stage.IDENTIFIED,
        status=Status.RESOLVED if resolved else Status.OPEN,
        private=False,
        commander=ALICE,
        declared_by=ALICE,
        declared_at=T0,
        channel_id=channel_id,
        channel_name="inc-7-checkout-latency" if channel_id else None,
        summary="rolled back and verified",
        resolved_at=at(65) if resolved else None,
        call=CallInfo(provider="zoom", join_url=JOIN_URL, meeting_id="8123"),
        roles={"scribe": DAN},
    )


def cells(row: str) -> list[str]:
    """A Markdown table row's cells, split on unescaped pipes."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", row.strip())[1:-1]]


# --- rendering -------------------------------------------------------------------------------------------


def test_json_round_trips_and_matches_the_result_field_by_field() -> None:
    result, view = make_result(), make_view()
    doc = json.loads(timeline_json(result, view))

    assert list(doc) == ["version", "incident", "durations_seconds", "events", "followups", "tickets"]
    assert doc["version"] == 1
    inc = doc["incident"]
    assert (inc["id"], inc["label"], inc["title"]) == (7, "INC-7", "Checkout latency above 2s")
    assert (inc["severity"], inc["severity_label"], inc["status"]) == ("sev2", "SEV2", "resolved")
    assert (inc["final_stage"], inc["ever_mitigated"], inc["private"]) == ("identified", True, False)
    assert (inc["declared_at"], inc["resolved_at"]) == ("2026-01-05T09:30:00Z", "2026-01-05T10:35:00Z")
    assert (inc["declared_by"], inc["commander"], inc["roles"]) == (ALICE, ALICE, {"scribe": DAN})
    assert inc["stage_reached"] == {"mitigated": "2026-01-05T09:42:00Z", "identified": "2026-01-05T09:55:00Z"}
    assert (inc["channel_id"], inc["channel_name"]) == ("C0INC7", "inc-7-checkout-latency")
    assert inc["call"] == {"provider": "zoom", "join_url": JOIN_URL, "meeting_id": "8123"}
    assert inc["summary"] == result.summary and inc["source"] == "slack"
    # Mitigated at 12 min came first, so the incident was identified by then at the latest.
    assert doc["durations_seconds"] == {"to_identified": 720.0, "to_mitigated": 720.0, "to_resolved": 3900.0}

    assert len(doc["events"]) == len(result.timeline)
    for got, event in zip(doc["events"], result.timeline, strict=True):
        assert set(got) == {"at", "kind", "actor", "text", "link"}
        assert got["at"].endswith("Z") and datetime.fromisoformat(got["at"]) == event.at
        assert (got["kind"], got["actor"], got["text"], got["link"]) == (
            event.kind,
            event.actor,
            event.text,
            event.link,
        )
    links = {e["kind"]: e["link"] for e in doc["events"] if e["link"]}
    assert links == {"reaction": PERMALINK, "call": JOIN_URL, "ticket": TICKET.url, "followup": FOLLOWUP_LINK}

    ticket = {"key": "OPS-42", "url": TICKET.url, "summary": "Fix the retry storm"}
    assert doc["followups"] == [
        {
            "id": 1,
            "text": "alert on pool size",
            "author": CAROL,
            "at": "2026-01-05T10:15:00Z",
            "link": FOLLOWUP_LINK,
            "state": "ticketed",
            "ticket": ticket,
        },
        {
            "id": 2,
            "text": "write the | runbook",
            "author": BOB,
            "at": "2026-01-05T10:20:00Z",
            "link": None,
            "state": "open",
            "ticket": None,
        },
    ]
    assert doc["tickets"] == [ticket]


def test_json_and_markdown_say_never_for_milestones_not_reached() -> None:
    result = make_result(resolved=False).model_copy(update={"stage_reached": {}})
    view = make_view(resolved=False)
    doc = json.loads(timeline_json(result, view))
    assert doc["durations_seconds"] == {"to_identified": None, "to_mitigated": None, "to_resolved": None}
    assert (doc["incident"]["status"], doc["incident"]["resolved_at"]) == ("open", None)
    rows = [cells(line) for line in timeline_markdown(result, view).splitlines()]
    milestones = {r[0]: r[1:] for r in rows if r and r[0] in ("Identified", "Mitigated", "Resolved")}
    assert milestones == {m: ["never", "—"] for m in ("Identified", "Mitigated", "Resolved")}


def test_markdown_has_every_event_escaped_in_its_table() -> None:
    result, view = make_result(), make_view()
    text = timeline_markdown(result, view)
    lines = text.splitlines()
    assert lines[0] == "# INC-7: Checkout latency above 2s"

    durations = {
        r[0]: r[1:] for r in map(cells, lines) if r and r[0] in ("Identified", "Mitigated", "Resolved")
    }
    assert durations == {
        "Identified": ["12m", "2026-01-05T09:42:00Z"],
        "Mitigated": ["12m", "2026-01-05T09:42:00Z"],
        "Resolved": ["1h 5m", "2026-01-05T10:35:00Z"],
    }

    start = lines.index("| Time (UTC) | Actor | Kind | Text | Source |")
    rows = [cells(line) for line in lines[start + 2 : start + 2 + len(result.timeline)]]
    assert all(len(r) == 5 for r in rows), "a `|` in the text broke a row"
    assert not lines[start + 2 + len(result.timeline)].startswith("|"), "more rows than events"
    for (when, actor, kind, body, _), event in zip(rows, result.timeline, strict=True):
        assert datetime.fromisoformat(when) == event.at
        assert actor == (f"`{event.actor}`" if event.actor else "—")
        assert kind == event.kind
        unescaped = re.sub(r"\\(.)", r"\1", body).replace("<br>", "\n")
        assert unescaped == event.text
    by_kind = {r[2]: r for r in rows}
    assert by_kind["reaction"][3] == r":mega: \<!channel\> db is back \| mostly"
    assert by_kind["reaction"][4] == f"[source message]({PERMALINK})"
    assert by_kind["call"][4] == f"[call]({JOIN_URL})"
    assert by_kind["ticket"][4] == f"[ticket]({TICKET.url})"
    assert by_kind["update"][3] == "pool resized<br>errors at 0.1%"
    assert "<!channel>" not in text

    assert f"- #1 **ticketed as [OPS-42]({TICKET.url})**: alert on pool size by `{CAROL}`" in text
    assert r"- #2 **open**: write the \| runbook by `U0BOB` at 2026-01-05T10:20:00Z" in text
    assert f"- [OPS-42]({TICKET.url}): Fix the retry storm" in text
    assert f"- **Call:** [Zoom]({JOIN_URL})" in text


def test_markdown_never_links_what_is_not_http() -> None:
    bad = [
        "javascript:alert`1`",
        "ftp://files.example.com/dump",
        "https://ok.example.com/a)[x](https://evil.example",
    ]
    events = [TimelineEvent(at=T0, kind="call", text="call", link=link) for link in bad]
    text = timeline_markdown(make_result().model_copy(update={"timeline": events}), make_view())
    sources = [cells(line)[4] for line in text.splitlines() if line.startswith("| 2026-")]
    assert sources == [
        r"javascript:alert\`1\`",
        "ftp://files.example.com/dump",
        r"https://ok.example.com/a)\[x\](https://evil.example",
    ]
    assert "[call](" not in text


def test_summary_escapes_the_title_and_gives_the_durations() -> None:
    view = make_view().model_copy(update={"title": "<!here> checkout"})
    text = summary_text(make_result(), view)
    assert "<!here>" not in text and "@here checkout" in text  # reads as typed, pings nobody
    assert "Identified 12m · Mitigated 12m · Resolved 1h 5m" in text
    assert f"attached in this thread ({MD_NAME}, {JSON_NAME})" in text


# --- against the sandbox ---------------------------------------------------------------------------------


@pytest.fixture
async def sb() -> AsyncIterator[SandboxServer]:
    async with SandboxServer(token=TOKEN, signing_secret="s") as server:
        yield server


@pytest.fixture
def acts(sb: SandboxServer) -> SlackTimelineActivities:
    return SlackTimelineActivities(AsyncWebClient(token=TOKEN, base_url=sb.api_url))


@pytest.fixture
def channel(sb: SandboxServer) -> str:
    return sb.state.create_channel("inc-7-checkout-latency", members=[ALICE]).id


def request(channel_id: str | None) -> TimelineExportRequest:
    return TimelineExportRequest(incident=make_view(channel_id), result=make_result(), key=KEY)


async def publish(acts: SlackTimelineActivities, req: TimelineExportRequest, attempt: int = 1) -> str:
    env = ActivityEnvironment()
    scheduled = datetime.now(UTC) - timedelta(seconds=5)
    # An attempt as the workflow schedules it (the test environment's default started in 1970 and has 1 s).
    env.info = dataclasses.replace(
        env.info,
        attempt=attempt,
        scheduled_time=scheduled,
        started_time=datetime.now(UTC),
        start_to_close_timeout=timedelta(seconds=30),
    )
    ts: str = await env.run(acts.publish_timeline, req)
    return ts


async def publish_fails(
    acts: SlackTimelineActivities, req: TimelineExportRequest, attempt: int = 1
) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await publish(acts, req, attempt)
    return caught.value


def calls(sb: SandboxServer, method: str) -> list[Call]:
    return sb.state.calls_for(method)


def summaries(sb: SandboxServer, channel_id: str) -> list[dict[str, Any]]:
    """Top-level messages carrying the export's key, each with its replies."""
    messages = sb.state.channel_messages(sb.state.channel(channel_id))
    return [m for m in messages if ((m.get("metadata") or {}).get("event_payload") or {}).get("key") == KEY]


def thread_files(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for reply in summary["replies"] for f in reply.get("files", [])]


def assert_exported_once(sb: SandboxServer, channel_id: str, ts: str) -> None:
    """One summary; in its thread, warroom's replies with one file of each name, with the right bytes."""
    [summary] = summaries(sb, channel_id)
    assert summary["ts"] == ts and summary["user"] == BOT_USER_ID
    assert "*Timeline of INC-7: Checkout latency above 2s*" in summary["text"]
    assert "Resolved 1h 5m" in summary["text"] and "attached" in summary["text"]
    files = thread_files(summary)
    assert sorted(f["name"] for f in files) == [JSON_NAME, MD_NAME]
    assert all(r["user"] == BOT_USER_ID for r in summary["replies"])
    expected = {
        MD_NAME: timeline_markdown(make_result(), make_view(channel_id)).encode(),
        JSON_NAME: timeline_json(make_result(), make_view(channel_id)).encode(),
    }
    for f in files:
        assert uploaded_bytes(sb.state, f["id"]) == expected[f["name"]]
        assert f["size"] == len(expected[f["name"]])
    assert sorted(f.name for f in shared_files(sb.state, channel_id)) == [JSON_NAME, MD_NAME]


async def test_summary_posted_once_with_both_files_in_its_thread(
    sb: SandboxServer, acts: SlackTimelineActivities, channel: str
) -> None:
    ts = await publish(acts, request(channel))
    assert_exported_once(sb, channel, ts)
    [summary] = summaries(sb, channel)
    [reply] = summary["replies"]
    assert reply["thread_ts"] == ts
    assert [c.args["filename"] for c in calls(sb, "files.getUploadURLExternal")] == [MD_NAME, JSON_NAME]
    assert len(calls(sb, UPLOAD)) == 2 and len(calls(sb, "files.completeUploadExternal")) == 1
    assert not calls(sb, "conversations.replies")  # a first attempt has nothing to look for
    doc = json.loads(
        uploaded_bytes(sb.state, next(f["id"] for f in reply["files"] if f["name"] == JSON_NAME))
    )
    assert doc["incident"]["channel_id"] == channel

    info = await acts._client.files_info(file=reply["files"][0]["id"])
    assert (info["file"]["name"], info["file"]["size"]) == (
        reply["files"][0]["name"],
        reply["files"][0]["size"],
    )


async def test_lost_completion_then_retry_shares_each_file_once(
    sb: SandboxServer, acts: SlackTimelineActivities, channel: str
) -> None:
    sb.state.add_fault("files.completeUploadExternal", status=500, after_effect=True)
    err = await publish_fails(acts, request(channel))
    assert not err.non_retryable
    [summary] = summaries(sb, channel)
    assert len(thread_files(summary)) == 2  # the files were shared; only the answer was lost

    ts = await publish(acts, request(channel), attempt=2)
    assert_exported_once(sb, channel, ts)
    assert len(calls(sb, "chat.postMessage")) == 1
    assert len(calls(sb, "files.getUploadURLExternal")) == 2  # nothing uploaded again
    assert len(calls(sb, "files.completeUploadExternal")) == 1
    assert calls(sb, "conversations.replies")[-1].args["ts"] == ts


async def test_retry_uploads_only_the_file_still_missing(
    sb: SandboxServer, acts: SlackTimelineActivities, channel: str
) -> None:
    sb.state.add_fault(UPLOAD, status=503, skip=1)  # the Markdown goes up, the JSON does not
    await publish_fails(acts, request(channel))
    [summary] = summaries(sb, channel)
    assert thread_files(summary) == []  # nothing is shared before completion
    # As if an earlier attempt had shared the Markdown alone:
    await acts._client.files_upload_v2(
        filename=MD_NAME,
        content=timeline_markdown(make_result(), make_view(channel)),
        channel=channel,
        thread_ts=summary["ts"],
    )
    before = len(calls(sb, "files.getUploadURLExternal"))

    ts = await publish(acts, request(channel), attempt=2)
    assert ts == summary["ts"]
    assert_exported_once(sb, channel, ts)
    assert [c.args["filename"] for c in calls(sb, "files.getUploadURLExternal")[before:]] == [JSON_NAME]


@pytest.mark.parametrize("method", [UPLOAD, "files.getUploadURLExternal", "files.completeUploadExternal"])
async def test_rate_limit_on_upload_becomes_the_retry_delay(
    sb: SandboxServer, acts: SlackTimelineActivities, channel: str, method: str
) -> None:
    sb.state.add_fault(method, status=429, retry_after=7)
    err = await publish_fails(acts, request(channel))
    assert (err.type, err.next_retry_delay, err.non_retryable) == (
        "SlackRateLimited",
        timedelta(seconds=7),
        False,
    )
    assert "upload_url" not in str(err) and "sig=" not in str(err)

    ts = await publish(acts, request(channel), attempt=2)
    assert_exported_once(sb, channel, ts)


async def test_bot_not_in_the_channel_stops_at_once(sb: SandboxServer, acts: SlackTimelineActivities) -> None:
    channel = sb.state.create_human_channel("inc-7-elsewhere", members=[ALICE]).id
    err = await publish_fails(acts, request(channel))
    assert (err.type, err.non_retryable) == ("SlackPermanentError", True)
    assert "not_in_channel" in str(err) and "invite @warroom" in str(err)


async def test_no_channel_is_a_permanent_failure(sb: SandboxServer, acts: SlackTimelineActivities) -> None:
    err = await publish_fails(acts, request(None))
    assert (err.type, err.non_retryable) == ("NoIncidentChannel", True)
    assert not sb.state.calls


# --- the sandbox's upload flow ---------------------------------------------------------------------------


async def test_sandbox_upload_flow_checks_like_slack(sb: SandboxServer, channel: str) -> None:
    slack = AsyncWebClient(token=TOKEN, base_url=sb.api_url)
    target = await slack.files_getUploadURLExternal(filename="notes.md", length=5)
    file_id, url = str(target["file_id"]), str(target["upload_url"])
    assert url.startswith(f"{sb.url}/api/{UPLOAD}?")

    async def error_of(method: str, **kwargs: Any) -> str | None:
        try:
            await slack.api_call(method, params=kwargs)
        except SlackApiError as err:
            return str(err.response["error"])
        return None

    async def complete(**kwargs: Any) -> str | None:
        return await error_of("files.completeUploadExternal", **kwargs)

    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=b"too long") as r:
            assert r.status == 400
        assert await complete(files=json.dumps([{"id": file_id}]), channel_id=channel) == "file_not_found"
        async with http.post(url.replace("sig=", "sig=0"), data=b"hello") as r:
            assert r.status == 404
        async with http.post(url, data=b"hello") as r:
            assert r.status == 200
    assert uploaded_bytes(sb.state, file_id) == b"hello"
    assert await error_of("files.info", file=file_id) == "file_not_found"  # not completed yet

    secret = sb.state.create_channel("secret", is_private=True, creator=ALICE).id
    entry = json.dumps([{"id": file_id, "title": "Notes"}])
    assert await complete(files=entry, channel_id=secret) == "channel_not_found"
    assert await complete(files=json.dumps([{"id": "F404"}]), channel_id=channel) == "file_not_found"
    assert await complete(files=entry, channel_id=channel, thread_ts="1.000001") == "thread_not_found"
    assert await complete(files=entry, channel_id=channel, initial_comment="the notes") is None
    assert await complete(files=entry, channel_id=channel) == "file_not_found"  # completed already

    [message] = sb.state.channel_messages(sb.state.channel(channel))
    assert message["text"] == "the notes" and message["user"] == BOT_USER_ID
    [shared] = message["files"]
    assert (shared["id"], shared["name"], shared["title"], shared["size"]) == (
        file_id,
        "notes.md",
        "Notes",
        5,
    )
    assert shared["url_private"].endswith(f"-{file_id}/notes.md")
    info = (await slack.files_info(file=file_id))["file"]
    assert (info["name"], info["size"], info["channels"]) == ("notes.md", 5, [channel])


async def test_sandbox_upload_faults_apply_like_every_method(sb: SandboxServer, channel: str) -> None:
    slack = AsyncWebClient(token=TOKEN, base_url=sb.api_url)
    url = str((await slack.files_getUploadURLExternal(filename="a.txt", length=2))["upload_url"])
    sb.state.add_fault(UPLOAD, status=500, after_effect=True)
    async with aiohttp.ClientSession() as http, http.post(url, data=b"ok") as r:
        assert r.status == 500
    [call] = calls(sb, UPLOAD)
    assert (call.status, call.ok, call.args) == (500, False, {"file": call.args["file"], "bytes": 2})
    assert uploaded_bytes(sb.state, call.args["file"]) == b"ok"  # stored; the answer was lost
