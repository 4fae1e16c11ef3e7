"""The refusal guard (tests/refusals.py), proven by running a small pytest session that uses it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # the project root

CONFTEST = """
from tests.refusals import (  # noqa: F401
    pytest_runtest_call,
    pytest_terminal_summary,
    slack_refusal_check,
    slack_refusal_registry,
)
"""

# Each test makes the real sandbox refuse a message with a bad block, through the real slack-sdk client.
TESTS = """
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from sandbox import SandboxServer

BAD = [{"type": "section"}]


@pytest.fixture(scope="session")
async def shared():
    async with SandboxServer("xoxb-t", "s") as sb:  # made by a session fixture, before any refusal
        yield sb


async def refuse(sb, text="t", blocks=None):
    slack = AsyncWebClient(token="xoxb-t", base_url=sb.api_url)
    channel = (await slack.conversations_create(name="c"))["channel"]["id"]
    with pytest.raises(SlackApiError):
        await slack.chat_postMessage(channel=channel, text=text, blocks=blocks)


async def test_unexpected():
    async with SandboxServer("xoxb-t", "s") as sb:
        await refuse(sb, blocks=BAD)


async def test_declared_on_the_state():
    async with SandboxServer("xoxb-t", "s") as sb:
        sb.state.expect_refusals("invalid_blocks")
        await refuse(sb, blocks=BAD)


@pytest.mark.slack_refusals_expected("invalid_blocks")
async def test_declared_with_the_marker():
    async with SandboxServer("xoxb-t", "s") as sb:
        await refuse(sb, blocks=BAD)


@pytest.mark.slack_refusals_expected("invalid_blocks")
async def test_marker_for_another_error():
    async with SandboxServer("xoxb-t", "s") as sb:
        await refuse(sb, text="x" * 40_001)


@pytest.fixture
async def refuses_on_teardown():
    async with SandboxServer("xoxb-t", "s") as sb:
        yield sb
        await refuse(sb, blocks=BAD)


async def test_refused_while_tearing_down(refuses_on_teardown):
    pass


async def test_a_session_sandbox_declares(shared):
    shared.state.expect_refusals()
    await refuse(shared, blocks=BAD)


async def test_a_session_sandbox_forgets_the_last_tests_declaration(shared):
    slack = AsyncWebClient(token="xoxb-t", base_url=shared.api_url)
    with pytest.raises(SlackApiError):
        await slack.views_open(trigger_id="1.2.3", view={"type": "modal", "blocks": BAD})
"""

INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
markers = slack_refusals_expected: expected refusals
"""


def test_the_guard_fails_only_tests_with_refusals_they_did_not_declare(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text(INI)
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(TESTS))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = run.stdout
    assert run.returncode == 1, out + run.stderr
    failed = sorted(
        line.split("::")[1].split(" ")[0] for line in out.splitlines() if line.startswith("FAILED")
    )
    assert failed == [
        "test_a_session_sandbox_forgets_the_last_tests_declaration",
        "test_marker_for_another_error",
        "test_unexpected",
    ], out
    assert "chat.postMessage: invalid_blocks (section: text or fields attribute must be specified" in out
    assert "chat.postMessage: msg_too_long (text is 40001 characters" in out
    assert "views.open: invalid_arguments" in out
    errored = [line.split("::")[1].split(" ")[0] for line in out.splitlines() if line.startswith("ERROR")]
    assert errored == ["test_refused_while_tearing_down"], out
    assert "refused 1 call(s) while tearing down" in out
    assert "slack sandbox refusals: 4 unexpected, 3 expected" in out
