"""A sandbox given a state file (`warroom dev`) comes back exactly as it stopped, through the real Web API and
the vendors' HTTP routes; a file it cannot read is one line naming the file and `--fresh`; without a file
nothing is written."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from sandbox import SandboxServer
from sandbox.api_files import uploaded_bytes
from sandbox.client import SandboxClient
from sandbox.persist import SandboxFileError
from tests.sandbox_fixtures import ALICE, SECRET, TOKEN, FakeIngress


def server(path: Path | None, ingress: FakeIngress | None = None) -> SandboxServer:
    url = ingress.url if ingress else None
    return SandboxServer(token=TOKEN, signing_secret=SECRET, ingress_url=url, state_file=path)


def workspace(sb: SandboxServer) -> dict[str, Any]:
    """Everything persisted, as the control API and the stand-ins show it."""
    shot = sb.state.snapshot()
    kept = {k: shot[k] for k in ("channels", "dms", "messages", "users", "ephemerals")}
    return {
        **kept,
        "zoom": sb.zoom.persisted(),
        "jira": sb.jira.persisted(),
        "meet": sb.meet.persisted(),
    }


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def jira_issue(sb: SandboxServer, summary: str) -> str:
    settings = sb.jira.settings(sb.url, Path("."))
    basic = base64.b64encode(f"{settings['JIRA_EMAIL']}:{settings['JIRA_API_TOKEN']}".encode()).decode()
    headers = {"Authorization": f"Basic {basic}"}
    body = {"fields": {"project": {"key": "OPS"}, "issuetype": {"name": "Task"}, "summary": summary}}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{settings['JIRA_URL']}/rest/api/3/issue", json=body, headers=headers) as answer,
    ):
        assert answer.status == 201, await answer.text()
        return str((await answer.json())["key"])


async def test_a_restarted_sandbox_resumes_every_record_and_never_reuses_an_id(
    tmp_path: Path, ingress: FakeIngress
) -> None:
    path = tmp_path / "slack-sandbox.json"
    first = server(path, ingress)
    assert not first.resumed
    async with first as sb:
        sb.state.add_user(ALICE, name="alice")
        slack = AsyncWebClient(token=TOKEN, base_url=sb.api_url)
        channel = (await slack.conversations_create(name="inc-2-db-down"))["channel"]["id"]
        await slack.conversations_invite(channel=channel, users=ALICE)
        await slack.conversations_setPurpose(channel=channel, purpose="sev2 · investigating")
        parent = (await slack.chat_postMessage(channel=channel, text="overview"))["ts"]
        await slack.chat_postMessage(channel=channel, text="update 1", thread_ts=parent)
        await slack.bookmarks_add(
            channel_id=channel, title="Call", type="link", link="https://zoom.example/j/1"
        )
        await slack.chat_postMessage(channel=ALICE, text="you are the commander")
        async with SandboxClient(sb.url) as control:
            await control.react(user_id=ALICE, channel_id=channel, ts=parent, reaction="mega")
        upload = await slack.files_upload_v2(channel=channel, content="timeline", filename="t.md")
        file_id = upload["file"]["id"]
        key = await jira_issue(sb, "Roll back")
        before = workspace(sb)
        assert json.loads(path.read_text())["slack"]["channels"][-1]["messages"]  # saved before stop
    assert files_in(tmp_path) == ["slack-sandbox.json"]  # no temporary file left

    second = server(path)
    assert second.resumed
    async with second as sb:
        assert workspace(sb) == before
        assert uploaded_bytes(sb.state, file_id) == b"timeline"
        slack = AsyncWebClient(token=TOKEN, base_url=sb.api_url)
        replies = (await slack.conversations_replies(channel=channel, ts=parent))["messages"]
        assert [m["text"] for m in replies] == ["overview", "update 1"]
        assert replies[0]["reactions"] == [{"name": "mega", "users": [ALICE], "count": 1}]
        # new IDs and ts continue after the old ones
        newer = (await slack.conversations_create(name="inc-3-api-down"))["channel"]["id"]
        assert newer not in before["messages"] and newer > channel
        assert (await slack.chat_postMessage(channel=channel, text="after"))["ts"] > replies[-1]["ts"]
        assert await jira_issue(sb, "Again") == f"OPS-{int(key.split('-')[1]) + 1}"
        with pytest.raises(Exception, match="name_taken"):
            await slack.conversations_create(name="inc-2-db-down")


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b'{"slack": ', "not valid JSON"),
        (json.dumps({"format": "warroom-slack-sandbox", "version": 99}).encode(), "format 99"),
        (json.dumps({"format": "warroom-slack-sandbox", "version": 1, "slack": {}}).encode(), "KeyError"),
        (b"[1, 2]", "not a saved Slack sandbox"),
    ],
)
def test_an_unreadable_file_is_one_line_naming_fresh(tmp_path: Path, content: bytes, why: str) -> None:
    path = tmp_path / "slack-sandbox.json"
    path.write_bytes(content)
    with pytest.raises(SandboxFileError) as caught:
        server(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and why in message
    assert "`warroom dev --fresh` starts over" in message


async def test_without_a_file_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    async with server(None) as sb:
        slack = AsyncWebClient(token=TOKEN, base_url=sb.api_url)
        await slack.conversations_create(name="inc-1-x")
        assert sb.persistence is None
    assert files_in(tmp_path) == []


def test_a_write_cut_short_leaves_the_previous_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "slack-sandbox.json"
    first = server(path)
    first.state.create_channel("inc-1-kept")
    assert first.persistence is not None
    first.persistence.save()
    saved = path.read_bytes()

    def crash(fd: int) -> None:
        raise OSError(28, "No space left on device")

    first.state.create_channel("inc-2-lost")
    monkeypatch.setattr("sandbox.persist.os.fsync", crash)  # as if killed halfway through the write
    with pytest.raises(OSError):
        first.persistence.save()
    assert path.read_bytes() == saved and files_in(tmp_path) == ["slack-sandbox.json"]
    monkeypatch.undo()
    assert server(path).state.channel_by_name("inc-1-kept") is not None
