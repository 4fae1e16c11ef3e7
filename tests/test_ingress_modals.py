"""The declare and stage forms: `/incident declare` and `/incident stage` with no argument open a modal
(`views.open` in the sandbox); submitting it (a signed `view_submission`) acts on the incident.
"""

from __future__ import annotations

import asyncio
from typing import Any

from domain.naming import incident_workflow_id
from domain.vocab import Severity, Stage
from tests.conftest import RESPONDER, Stack
from tests.test_incident_workflow import wait_quiet
from tests.test_ingress import bot_posts, declare_via_slack, replies, run


async def open_views(stack: Stack, callback_id: str) -> list[dict[str, Any]]:
    """Modals the app opened with this callback_id and the user has not closed, oldest first."""
    snapshot = await stack.slack.state()
    return [v for v in snapshot["views"] if v["callback_id"] == callback_id and not v["closed"]]


def element(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    [block] = [b for b in view["blocks"] if b.get("block_id") == block_id]
    return dict(block["element"])


def selected(value: str) -> dict[str, Any]:
    return {"value": {"selected_option": {"value": value}}}


def typed(text: str) -> dict[str, Any]:
    return {"value": {"value": text}}


def conversations(*ids: str) -> dict[str, Any]:
    return {"value": {"selected_conversations": list(ids)}}


async def open_form(
    stack: Stack, text: str, channel: str | None, callback_id: str, **kw: Any
) -> dict[str, Any]:
    """Runs the command, checks it answered with a form rather than text, and returns the form."""
    result = await stack.slack.command(
        user_id=RESPONDER, channel_id=channel or stack.general, text=text, **kw
    )
    assert result["status"] == 200 and not result["body"], result
    [view] = await open_views(stack, callback_id)
    assert view["user_id"] == RESPONDER
    [opened] = (await stack.slack.calls("views.open"))["calls"][-1:]
    assert opened["ok"] and opened["args"]["trigger_id"] == result["trigger_id"]
    return view


async def test_stage_form_is_prefilled_and_can_move_the_broadcasts(stack: Stack) -> None:
    incident_id, channel = await declare_via_slack(stack)
    newsroom = (await stack.slack.create_channel("newsroom"))["id"]
    view = await open_form(stack, "stage", channel, "warroom_stage")
    assert view["private_metadata"] == str(incident_id)
    assert element(view, "broadcast")["initial_conversations"] == stack.broadcast
    assert element(view, "stage")["initial_option"]["value"] == "investigating"

    submitted = await stack.slack.submit_view(
        view["id"],
        {
            "stage": selected("mitigated"),
            "context": typed("Traffic moved to the standby region"),
            "broadcast": conversations(stack.broadcast[0], newsroom),
        },
    )
    assert submitted["status"] == 200 and submitted["view_closed"] and not submitted["errors"]

    await wait_quiet(stack, incident_id)
    state = await stack.state(incident_id)
    assert state.stage is Stage.MITIGATED and state.ever_mitigated
    assert state.broadcast_channel_ids == [stack.broadcast[0], newsroom]
    [stage_event] = [e for e in state.timeline if e.kind == "stage"]
    assert stage_event.actor == RESPONDER and "Traffic moved to the standby region" in stage_event.text

    # The new channel gets the overview first (already showing the new stage), the change in its thread.
    [news_overview] = await stack.slack.messages(newsroom)
    assert "INC-1" in news_overview["text"] and "Mitigated" in news_overview["text"]
    [news_reply] = [r["text"] for r in news_overview["replies"]]
    assert "Mitigated" in news_reply and "Traffic moved to the standby region" in news_reply
    [kept_reply] = await replies(stack, stack.broadcast[0])
    assert "Mitigated" in kept_reply and "Traffic moved" in kept_reply
    assert await replies(stack, stack.broadcast[1]) == []  # removed: hears nothing more
    assert any("Traffic moved to the standby region" in t for t in await bot_posts(stack, channel))


async def test_declare_without_a_title_opens_a_form_that_declares(stack: Stack) -> None:
    view = await open_form(stack, "declare", None, "warroom_declare")
    assert element(view, "broadcast")["initial_conversations"] == stack.broadcast
    assert element(view, "severity")["initial_option"]["value"] == "sev3"

    blank = await stack.slack.submit_view(view["id"], {"title": typed("   ")})
    assert blank["response_action"] == "errors" and "title" in blank["errors"]
    assert not blank["view_closed"]

    submitted = await stack.slack.submit_view(
        view["id"], {"title": typed("Search is down"), "severity": selected("sev1")}
    )
    # (the sandbox keeps showing the earlier `errors`; what matters is that the app closed the form)
    assert submitted["status"] == 200 and submitted["view_closed"] and submitted["response_action"] is None

    channel = await stack.incident_channel(1)  # the blank try declared nothing: this is INC-1
    await wait_quiet(stack, 1)
    state = await stack.state(1)
    assert (state.title, state.severity, state.declared_by) == ("Search is down", Severity.SEV1, RESPONDER)
    assert state.broadcast_channel_ids == stack.broadcast and not state.private
    info = await stack.slack.channel_by_name("inc-1-search-is-down")
    assert info is not None and info["id"] == channel and RESPONDER in info["members"]
    for bc in stack.broadcast:
        [overview] = await stack.slack.messages(bc)
        assert "INC-1: Search is down" in overview["text"] and "SEV1" in overview["text"]


async def test_declare_form_remembers_the_command_name(stack: Stack) -> None:
    view = await open_form(stack, "declare", None, "warroom_declare", command="/inc")
    assert view["private_metadata"] == "/inc"
    await stack.slack.submit_view(view["id"], {"title": typed("Queue backlog")})
    channel = await stack.incident_channel(1)
    state = await stack.state(1)
    assert (state.severity, state.slash_command) == (Severity.SEV3, "/inc")
    assert "Usage: `/inc stage" in await run(stack, "stage bogus", channel, command="/inc")


async def test_stage_form_submitted_unchanged_posts_nothing(stack: Stack) -> None:
    incident_id, _ = await declare_via_slack(stack)
    view = await open_form(stack, "stage", (await stack.state(1)).channel_id, "warroom_stage")
    await stack.slack.submit_view(view["id"], {})
    await wait_quiet(stack, incident_id)
    assert [e.kind for e in (await stack.state(incident_id)).timeline].count("stage") == 0
    for bc in stack.broadcast:
        assert await replies(stack, bc) == []


async def test_a_form_that_cannot_open_gets_a_message_not_a_500(stack: Stack) -> None:
    _, channel = await declare_via_slack(stack)
    await stack.slack.fault("views.open", error="expired_trigger_id")
    result = await stack.command("stage", channel=channel)
    assert result["status"] == 200, result
    assert "expired_trigger_id" in result["body"] and "`/incident stage" in result["body"]
    assert await open_views(stack, "warroom_stage") == []
    # Once Slack opens forms again, so does the command.
    await open_form(stack, "stage", channel, "warroom_stage")


async def test_stage_form_in_a_resolved_incident_says_it_is_resolved(stack: Stack) -> None:
    incident_id, channel = await declare_via_slack(stack)
    await run(stack, "resolve Fixed", channel)
    await asyncio.wait_for(
        stack.temporal.client.get_workflow_handle(
            incident_workflow_id(incident_id, stack.settings.task_queue)
        ).result(),
        30,
    )
    answer = await run(stack, "stage", channel)
    assert "already resolved" in answer
    assert await open_views(stack, "warroom_stage") == []
