"""Slack as it really is, end to end: text Slack stored escaped is quoted as it is, and what warroom sends
fits Slack's limits, so the stricter sandbox (which refuses what Slack refuses) accepts every message."""

from __future__ import annotations

import pytest

from domain.vocab import Status
from starter.sandbox_cli import run_slack
from tests.conftest import Stack, eventually
from tests.test_incident_workflow import wait_quiet
from tests.test_ingress import HUMAN, declare_via_slack, replies, run

# Exactly as Slack stores and delivers it: entities escaped, the link in Slack's own syntax.
STORED = "Rolled back 1234 &amp; restarted &lt;pods&gt;, see <https://grafana.example/d/abc|dashboard>"


async def test_a_mega_on_escaped_text_broadcasts_it_as_slack_stored_it(stack: Stack) -> None:
    incident_id, channel = await declare_via_slack(stack)
    ts = (await stack.slack.message(HUMAN, channel, STORED, formatted=True))["ts"]
    await stack.slack.react(HUMAN, channel, ts, "mega")

    async def everywhere() -> bool:
        return all([len(await replies(stack, bc)) == 1 for bc in stack.broadcast])

    await eventually(everywhere)
    await wait_quiet(stack, incident_id)
    for bc in stack.broadcast:
        [reply] = await replies(stack, bc)
        assert STORED in reply, reply  # the link intact, each entity escaped once
        assert "&amp;amp;" not in reply and "&amp;lt;" not in reply


async def test_a_typed_message_and_a_debrief_reply_keep_slacks_escaping(stack: Stack) -> None:
    incident_id, channel = await declare_via_slack(stack)
    # Typed in the client: the sandbox stores it as Slack would (`&amp;`, `&lt;`, the URL as a link).
    typed = "p99 < 300ms & falling, https://grafana.example/d/xyz"
    ts = (await stack.slack.message(HUMAN, channel, typed))["ts"]
    stored = (await stack.slack.messages(channel))[-1]["text"]
    assert "&amp;" in stored and "&lt;" in stored and "<https://grafana.example/d/xyz>" in stored
    await stack.slack.react(HUMAN, channel, ts, "pushpin")
    await eventually(lambda: _replied(stack))
    for bc in stack.broadcast:
        [reply] = await replies(stack, bc)
        assert stored in reply and "&amp;amp;" not in reply

    await run(stack, "debrief", channel)
    thread = await eventually(lambda: _debrief_thread(stack, incident_id))
    await stack.slack.message(HUMAN, channel, STORED, thread_ts=thread, formatted=True, deliver_event=True)

    async def noted() -> bool:
        return any(
            e.kind == "debrief" and e.text == STORED for e in (await stack.state(incident_id)).timeline
        )

    await eventually(noted)
    timeline = await run(stack, "timeline", channel)
    assert STORED in timeline and "&amp;amp;" not in timeline


async def test_warroom_slack_say_and_show_read_as_in_slack(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    _, channel = await declare_via_slack(stack)
    typed = "p99 < 300ms & falling"
    assert await run_slack(["say", channel, *typed.split()], HUMAN, None, stack.sandbox.url) == 0
    assert (await stack.slack.messages(channel))[-1]["text"] == "p99 &lt; 300ms &amp; falling"  # stored
    capsys.readouterr()
    assert await run_slack(["show", channel], HUMAN, None, stack.sandbox.url) == 0
    assert f": {typed}" in capsys.readouterr().out  # shown as a person sees it in Slack


async def _replied(stack: Stack) -> bool:
    return all([len(await replies(stack, bc)) == 1 for bc in stack.broadcast])


async def _debrief_thread(stack: Stack, incident_id: int) -> str | None:
    return (await stack.state(incident_id)).debrief_ts or None


async def test_a_resolve_summary_near_slacks_section_limit_still_shows_resolved_everywhere(
    stack: Stack,
) -> None:
    incident_id, channel = await declare_via_slack(stack)
    # 2,990 characters, a fifth of them `&` (each becomes `&amp;`): well past a section's 3,000 once escaped.
    summary = ("Rolled back & restarted " * 125)[:2990]
    answer = await run(stack, f"resolve --now {summary}", channel)
    assert "resolved" in answer
    await eventually(lambda: _resolved(stack, incident_id))
    await wait_quiet(stack, incident_id)
    for place in (channel, *stack.broadcast):
        overview = (await stack.slack.messages(place))[0]
        assert "Resolved" in str(overview.get("blocks")), overview
        assert ":white_check_mark:" in str(overview.get("blocks"))


async def _resolved(stack: Stack, incident_id: int) -> bool:
    return (await stack.state(incident_id)).status is Status.RESOLVED
