"""Calls and Jira end to end: signed slash commands into the real ingress, the incident workflow on a real
Temporal dev server, and the real Zoom, Meet and Jira clients against the sandbox's stand-ins over HTTP."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.jira import INDEX_WAIT
from domain.models import CommanderChange, Resolution, StatusUpdate
from sandbox import SandboxServer
from tests.conftest import RESPONDER, Stack, eventually, running_stack
from tests.test_ingress import declare_via_slack, run

TITLE = "Payments API returns 502"


async def settled(stack: Stack, incident_id: int, within: float = 15.0) -> Any:
    """Waits until every queued effect is done: Slack work, calls, tickets and the call's bookmark."""

    async def check() -> Any:
        s = await stack.state(incident_id)
        busy = s.outbox or s.overview_stale or s.pending_calls or s.pending_tickets
        missing = [b for b in s.broadcasts if b.active and b.overview_ts is None and b.error is None]
        unmarked = s.call is not None and not s.call_bookmarked
        return s if s.channel_ready and not busy and not missing and not unmarked else None

    return await eventually(check, within=within)


def channel_info(sandbox: SandboxServer, channel_id: str) -> dict[str, Any]:
    return sandbox.state.channel_summary(sandbox.state.channel(channel_id, viewer=None))


def messages(sandbox: SandboxServer, channel_id: str) -> list[dict[str, Any]]:
    return sandbox.state.channel_messages(sandbox.state.channel(channel_id, viewer=None))


def notes_saying(sandbox: SandboxServer, channel_id: str, words: str) -> list[str]:
    return [m["text"] for m in messages(sandbox, channel_id) if words in m["text"]]


def overview_text(message: dict[str, Any]) -> str:
    """Everything an overview shows: its fallback text and every block's text and fields."""
    parts = [message.get("text") or ""]
    for block in message.get("blocks") or []:
        parts.append((block.get("text") or {}).get("text", ""))
        parts += [f.get("text", "") for f in block.get("fields") or []]
        parts += [e.get("text", "") for e in block.get("elements") or []]
    return "\n".join(parts)


@pytest.fixture
async def zoom_stack(temporal: WorkflowEnvironment, sandbox: SandboxServer) -> AsyncIterator[Stack]:
    async with running_stack(temporal, sandbox, WARROOM_CALL_PROVIDER="zoom") as s:
        yield s


# --- calls ------------------------------------------------------------------------------------------------


async def test_declare_with_zoom_links_the_call_everywhere(zoom_stack: Stack) -> None:
    stack = zoom_stack
    incident_id, channel = await declare_via_slack(stack, f"declare sev1 {TITLE}")
    state = await settled(stack, incident_id)
    [meeting] = stack.sandbox.zoom.meetings
    url = meeting["join_url"]
    assert state.call is not None and state.call.join_url == url and state.call.provider == "zoom"
    assert meeting["topic"] == f"INC-{incident_id}: {TITLE}"

    info = channel_info(stack.sandbox, channel)
    assert url in info["purpose"]["value"]
    [bookmark] = info["bookmarks"]
    assert bookmark["link"] == url and "Zoom" in bookmark["title"]

    overview, *rest = messages(stack.sandbox, channel)
    assert url in overview_text(overview)
    assert any(url in m["text"] for m in rest), "the call is announced in the incident channel"
    for broadcast in stack.broadcast:
        [top] = messages(stack.sandbox, broadcast)  # edited in place, never posted twice
        assert url in overview_text(top)
        assert not top["replies"], "a call is for responders: nothing new in the broadcast thread"

    [event] = [e for e in state.timeline if e.kind == "call"]
    assert event.link == url
    status = await run(stack, "status", channel=channel)
    assert url in status


async def test_a_new_call_replaces_the_link_and_edits_the_bookmark(zoom_stack: Stack) -> None:
    stack = zoom_stack
    incident_id, channel = await declare_via_slack(stack, f"declare sev2 {TITLE}")
    await settled(stack, incident_id)
    answer = await run(stack, "meet", channel=channel)
    assert "Replacing the call with a new Google Meet call" in answer
    state = await settled(stack, incident_id)
    [space] = stack.sandbox.meet.spaces
    assert state.call is not None and state.call.join_url == space["meetingUri"]
    info = channel_info(stack.sandbox, channel)
    [bookmark] = info["bookmarks"]
    assert bookmark["link"] == space["meetingUri"] and "Meet" in bookmark["title"]
    assert space["meetingUri"] in info["purpose"]["value"]
    for broadcast in stack.broadcast:
        [top] = messages(stack.sandbox, broadcast)
        assert space["meetingUri"] in overview_text(top)
        assert stack.sandbox.zoom.meetings[0]["join_url"] not in overview_text(top)


async def test_private_incident_tells_broadcast_channels_only_that_it_exists(zoom_stack: Stack) -> None:
    stack = zoom_stack
    incident_id = await stack.incidents.declare(
        TITLE, stack.settings.default_severity, private=True, broadcast_channels=(stack.broadcast[0],)
    )
    state = await settled(stack, incident_id)
    assert state.call is not None
    await stack.incidents.assign_commander(incident_id, CommanderChange(user_id="U0LEAD"))
    await stack.incidents.post_update(incident_id, StatusUpdate(text="secret payments detail"))
    state = await settled(stack, incident_id)
    [top] = messages(stack.sandbox, stack.broadcast[0])
    shown = overview_text(top)
    assert "private incident" in shown and "<@U0LEAD>" in shown, shown
    for hidden in (TITLE, state.call.join_url, "secret payments detail"):
        assert hidden not in str(top), hidden
    assert top["replies"] == [], "no updates in a private incident's broadcast thread"
    [overview, *rest] = messages(stack.sandbox, state.channel_id)
    assert state.call.join_url in overview_text(overview) and TITLE in overview_text(overview)
    assert any("secret payments detail" in m["text"] for m in rest)
    await stack.incidents.resolve(incident_id, Resolution(summary="fixed"))
    await eventually(lambda: _resolved_shown(stack, stack.broadcast[0]))
    [top] = messages(stack.sandbox, stack.broadcast[0])
    assert top["replies"] == [] and "fixed" not in str(top)


async def _resolved_shown(stack: Stack, channel_id: str) -> bool:
    [top] = messages(stack.sandbox, channel_id)
    return "has been resolved" in overview_text(top)


async def test_call_without_a_configured_provider_says_which_settings_are_missing(
    temporal: WorkflowEnvironment, sandbox: SandboxServer
) -> None:
    async with running_stack(temporal, sandbox, ZOOM_CLIENT_SECRET="", ZOOM_ACCOUNT_ID="") as stack:
        incident_id, channel = await declare_via_slack(stack)
        answer = await run(stack, "zoom", channel=channel)
        assert "Zoom is not set up" in answer
        assert "ZOOM_ACCOUNT_ID" in answer and "ZOOM_CLIENT_SECRET" in answer
        assert "ZOOM_CLIENT_ID`" not in answer
        state = await stack.state(incident_id)
        assert not state.pending_calls and state.call is None
        assert not stack.sandbox.zoom.meetings and stack.sandbox.zoom.token_requests == 0


async def test_zoom_refusing_credentials_gives_one_clear_note_and_no_retry_storm(zoom_stack: Stack) -> None:
    stack = zoom_stack
    stack.sandbox.zoom.revoke_credentials()
    incident_id, channel = await declare_via_slack(stack, f"declare sev1 {TITLE}")
    state = await settled(stack, incident_id)
    assert state.call is None
    notes = notes_saying(stack.sandbox, channel, "could not create the Zoom call")
    assert len(notes) == 1, notes
    assert "ZOOM_CLIENT_ID" in notes[0] and "call` again" in notes[0]
    assert stack.sandbox.zoom.token_requests <= 2
    # The incident goes on.
    answer = await run(stack, "update Rolling back", channel=channel)
    assert "Update posted" in answer


async def test_zoom_rate_limit_is_retried_after_retry_after(zoom_stack: Stack) -> None:
    stack = zoom_stack
    stack.sandbox.zoom.add_fault("create_meeting", 429, retry_after=1, times=1)
    incident_id, _ = await declare_via_slack(stack)
    state = await settled(stack, incident_id)
    assert state.call is not None
    assert len(stack.sandbox.zoom.meetings) == 1


async def test_zoom_lost_response_creates_one_meeting(zoom_stack: Stack) -> None:
    stack = zoom_stack
    stack.sandbox.zoom.add_fault("create_meeting", 500, after_effect=True, times=1)
    incident_id, _ = await declare_via_slack(stack)
    state = await settled(stack, incident_id)
    [meeting] = stack.sandbox.zoom.meetings
    assert state.call is not None and state.call.join_url == meeting["join_url"]


# --- Jira -------------------------------------------------------------------------------------------------


def jira_issue_key(text: str) -> str:
    found = re.search(r"\b(OPS-\d+)\b", text)
    assert found, text
    return found[1]


async def test_jira_creates_one_linked_issue_and_posts_it(stack: Stack) -> None:
    incident_id, channel = await declare_via_slack(stack, f"declare sev2 {TITLE}")
    answer = await run(stack, "jira Roll back payments deploy", channel=channel)
    assert "Creating the Jira issue" in answer
    state = await settled(stack, incident_id)
    [issue] = stack.sandbox.jira.issues
    [ticket] = state.tickets
    assert ticket.key == issue["key"] and ticket.summary == "Roll back payments deploy"
    assert ticket.url.endswith(f"/browse/{ticket.key}")
    posted = [m["text"] for m in messages(stack.sandbox, channel) if ticket.key in m["text"]]
    assert len(posted) == 1 and ticket.url in posted[0]
    for broadcast in stack.broadcast:
        assert all(ticket.key not in m["text"] for m in messages(stack.sandbox, broadcast))
    assert [e.kind for e in state.timeline].count("ticket") == 1
    status = await run(stack, "status", channel=channel)
    assert ticket.key in status
    links = issue["remote_links"]
    assert len(links) == 1 and channel in links[0]["object"]["url"]


@pytest.mark.parametrize("after_effect", [False, True], ids=["500-before", "500-after-creating"])
async def test_jira_500_then_success_creates_exactly_one_issue(stack: Stack, after_effect: bool) -> None:
    incident_id, channel = await declare_via_slack(stack)
    stack.sandbox.jira.add_fault("create_issue", 500, times=1, after_effect=after_effect)
    await run(stack, "jira Check the payment queue", channel=channel)
    # After a 500 the retry gives Jira's search index up to INDEX_WAIT to show an issue the failed attempt
    # may have made, before creating one.
    state = await settled(stack, incident_id, within=INDEX_WAIT + 15)
    assert len(stack.sandbox.jira.issues) == 1
    assert len(state.tickets) == 1
    assert state.tickets[0].key == stack.sandbox.jira.issues[0]["key"]
    assert len(stack.sandbox.jira.issues[0]["remote_links"]) == 1


async def test_jira_misconfigured_gives_one_note_and_the_incident_goes_on(
    temporal: WorkflowEnvironment, sandbox: SandboxServer
) -> None:
    async with running_stack(temporal, sandbox, JIRA_ISSUE_TYPE="Epicc") as stack:
        incident_id, channel = await declare_via_slack(stack)
        await run(stack, "jira Check the payment queue", channel=channel)
        state = await settled(stack, incident_id)
        assert not state.tickets and not stack.sandbox.jira.issues
        notes = notes_saying(stack.sandbox, channel, "could not create the Jira issue")
        assert len(notes) == 1, notes
        assert "JIRA_ISSUE_TYPE" in notes[0] or "issue type" in notes[0].lower()
        creates = [c for c in stack.sandbox.jira.calls if c[0] == "create_issue"]
        assert len(creates) == 1, "a 400 is not retried"
        assert "Update posted" in await run(stack, "update still on it", channel=channel)


async def test_jira_not_configured_answers_at_once(
    temporal: WorkflowEnvironment, sandbox: SandboxServer
) -> None:
    async with running_stack(temporal, sandbox, JIRA_API_TOKEN="", JIRA_URL="") as stack:
        incident_id, channel = await declare_via_slack(stack)
        answer = await run(stack, "jira Roll back", channel=channel)
        assert "Jira is not set up" in answer and "JIRA_URL" in answer and "JIRA_API_TOKEN" in answer
        state = await stack.state(incident_id)
        assert not state.pending_tickets and not stack.sandbox.jira.issues


async def test_commands_from_another_user_keep_their_actor(zoom_stack: Stack) -> None:
    stack = zoom_stack
    incident_id, channel = await declare_via_slack(stack)
    await settled(stack, incident_id)
    await run(stack, "call zoom", channel=channel, user="U0SECOND")
    state = await settled(stack, incident_id)
    calls = [e for e in state.timeline if e.kind == "call"]
    assert [e.actor for e in calls] == [None, "U0SECOND"]
    assert RESPONDER == state.declared_by
    assert len(stack.sandbox.zoom.meetings) == 2


@pytest.mark.parametrize(("choice", "meetings"), [("zoom", 1), ("none", 0)])
async def test_declare_form_offers_the_call_providers_set_up(
    zoom_stack: Stack, choice: str, meetings: int
) -> None:
    from tests.test_ingress_modals import element, open_form, selected, typed

    stack = zoom_stack
    view = await open_form(stack, "declare", None, "warroom_declare")
    call = element(view, "call")
    assert [o["value"] for o in call["options"]] == ["none", "zoom", "meet"]
    assert call["initial_option"]["value"] == "zoom"  # WARROOM_CALL_PROVIDER
    submitted = await stack.slack.submit_view(
        view["id"], {"title": typed(TITLE), "severity": selected("sev2"), "call": selected(choice)}
    )
    assert submitted["status"] == 200 and submitted["view_closed"], submitted
    state = await settled(stack, 1)
    assert len(stack.sandbox.zoom.meetings) == meetings
    assert (state.call is not None) == bool(meetings)
