"""`/incident` end to end: signed slash commands and reaction events from the Slack sandbox into the real
ingress, answered by the incident workflow on a real Temporal dev server. Assertions look at Slack's state
(the sandbox) and at the workflow's queried state.
"""

from __future__ import annotations

import asyncio
import re

import aiohttp
from temporalio.testing import WorkflowEnvironment

from domain.models import IncidentResult
from domain.naming import incident_workflow_id
from domain.vocab import Severity, Stage, Status
from sandbox import SandboxServer
from sandbox.models import BOT_USER_ID
from starter.incidents import Incidents
from tests.conftest import RESPONDER, Stack, eventually, running_stack
from tests.test_incident_workflow import history_events, wait_quiet


def escaped(text: str) -> str:
    """How Slack mrkdwn needs literal `&`, `<`, `>` (usage placeholders must not become links)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


TITLE = "Checkout latency above 2s"
CHANNEL_NAME = "inc-1-checkout-latency-above-2s"
HUMAN = "U0HUMAN"
OTHER_HUMAN = "U0OTHER"
# A `<...>` Slack reads as a reference, not literal text: a user, channel or special mention, or a link.
SLACK_REFERENCE = re.compile(r"<(?:[@#][UWCG][A-Z0-9]+|![a-z]+|https?://[^<>\s]+)(?:\|[^<>]*)?>")


def update_taken(answer: str, channels: int) -> bool:
    """One of the two truthful answers to `/incident update` reaching `channels` broadcast channels: posted
    (by its own workflow task), or accepted (queued behind earlier messages, or Slack did not take it at
    once)."""
    where = f"here and to {channels} broadcast channel{'s' if channels != 1 else ''}"
    accepted = answer.startswith("Update accepted")
    return answer == f"Update posted {where}." or (
        accepted and (f"goes out {where}" in answer or f"posts it {where}" in answer)
    )


async def run(
    stack: Stack, text: str, channel: str | None = None, user: str = RESPONDER, command: str = "/incident"
) -> str:
    """Runs a slash command through the sandbox; checks it got a 200 ephemeral answer; returns its text."""
    result = await stack.slack.command(
        user_id=user, channel_id=channel or stack.general, text=text, command=command
    )
    assert result["status"] == 200, result
    body = result["body"]
    if isinstance(body, dict):
        assert body.get("response_type", "ephemeral") == "ephemeral", body
        return str(body.get("text") or "")
    return str(body)


async def declare_via_slack(stack: Stack, text: str = f"declare sev2 {TITLE}") -> tuple[int, str]:
    """Declares from #general and waits until the channel, its overview and every broadcast overview exist."""
    ack = await run(stack, text)
    found = re.search(r"\*INC-(\d+)\*", ack)
    assert found, ack
    incident_id = int(found[1])
    channel = await stack.incident_channel(incident_id)
    await wait_quiet(stack, incident_id)
    return incident_id, channel


async def bot_posts(stack: Stack, channel: str) -> list[str]:
    return [m["text"] for m in await stack.slack.messages(channel) if m["user"] == BOT_USER_ID]


async def replies(stack: Stack, channel: str) -> list[str]:
    """The replies under a broadcast channel's one overview."""
    [overview] = await stack.slack.messages(channel)
    return [r["text"] for r in overview["replies"]]


# --- declare ---------------------------------------------------------------------------------------------


async def test_declare_from_general_answers_privately_and_opens_the_incident(stack: Stack) -> None:
    result = await stack.command(f"declare sev2 {TITLE}")
    assert result["status"] == 200
    body = result["body"]
    text = body if isinstance(body, str) else body.get("text")
    assert isinstance(text, str) and "INC-1" in text and f"#{CHANNEL_NAME}" in text
    assert not (isinstance(body, dict) and body.get("response_type") == "in_channel")
    [seen] = await stack.slack.ephemerals(RESPONDER)
    assert (
        seen["text"] == text and seen["response_type"] == "ephemeral" and seen["channel_id"] == stack.general
    )

    channel = await stack.incident_channel(1)
    await wait_quiet(stack, 1)
    info = await stack.slack.channel_by_name(CHANNEL_NAME)
    assert info is not None and info["id"] == channel
    assert RESPONDER in info["members"]
    [overview] = await stack.slack.messages(channel)
    assert overview["user"] == BOT_USER_ID and TITLE in overview["text"] and "SEV2" in overview["text"]
    for bc in stack.broadcast:
        [bc_overview] = await stack.slack.messages(bc)
        assert f"INC-1: {TITLE}" in bc_overview["text"] and "Investigating" in bc_overview["text"]
        assert f"<#{channel}>" in str(bc_overview["blocks"])
    assert await stack.slack.messages(stack.general) == []  # the ack was only for the person who ran it

    state = await stack.state(1)
    assert (state.title, state.severity, state.declared_by) == (TITLE, Severity.SEV2, RESPONDER)
    assert state.broadcast_channel_ids == stack.broadcast


# --- commands in the incident channel ---------------------------------------------------------------------


async def test_commands_in_the_channel_answer_with_the_workflows_reply_and_thread_in_order(
    stack: Stack,
) -> None:
    incident_id, channel = await declare_via_slack(stack)
    late = (await stack.slack.create_channel("late"))["id"]

    async def here(text: str) -> str:
        return await run(stack, text, channel)

    assert await here("stage identified bad deploy") == "Stage set to *Identified*."
    assert update_taken(await here("update Rolled back"), 2)
    assert await here("severity sev1 customer impact") == "Severity set to *SEV1*."
    assert await here("commander <@U0ALICE|alice>") == "<@U0ALICE> is now the incident commander."
    await wait_quiet(stack, incident_id)
    assert await here(f"broadcast add <#{late}|late>") == f"Broadcast channels: added <#{late}>."
    shown = await here("broadcast")
    assert shown.startswith(f"Updates go to <#{stack.broadcast[0]}>, <#{stack.broadcast[1]}>, <#{late}>.")
    assert update_taken(await here("update Error rate back to normal"), 3)

    status = await here("status")
    for expected in (TITLE, "Stage: *Identified*", "Severity: *SEV1*", "Commander: <@U0ALICE>"):
        assert expected in status
    timeline = await here("timeline")
    for expected in ("*declared*", "Identified: bad deploy", "*update*", "Rolled back", "SEV2 → SEV1"):
        assert expected in timeline
    assert "<@U0ALICE> is the incident commander" in timeline

    await wait_quiet(stack, incident_id)
    state = await stack.state(incident_id)
    assert (state.stage, state.severity, state.commander) == (Stage.IDENTIFIED, Severity.SEV1, "U0ALICE")
    assert state.broadcast_channel_ids == [*stack.broadcast, late]
    for bc in stack.broadcast:
        [overview] = await stack.slack.messages(bc)
        texts = [r["text"] for r in overview["replies"]]
        assert len(texts) == 5, texts
        assert "Identified" in texts[0] and "bad deploy" in texts[0]
        assert "Rolled back" in texts[1]
        assert "SEV1" in texts[2] and "customer impact" in texts[2]
        assert "<@U0ALICE>" in texts[3]
        assert "Error rate back to normal" in texts[4]
        assert "Identified" in overview["text"] and "SEV1" in overview["text"]
        assert overview.get("edited") and "<@U0ALICE>" in str(overview["blocks"])
    # The channel added later got its own overview (already current) first, then only what came after.
    [late_overview] = await stack.slack.messages(late)
    assert "Identified" in late_overview["text"] and "SEV1" in late_overview["text"]
    assert ["Error rate back to normal" in r["text"] for r in late_overview["replies"]] == [True]
    posted = await bot_posts(stack, channel)
    assert any("Rolled back" in t for t in posted) and any("Error rate back to normal" in t for t in posted)


async def test_an_update_right_after_broadcast_add_reaches_the_new_channel(stack: Stack) -> None:
    """Also: an update whose post outlasts its own workflow task is answered "accepted", not "posted", and the
    post Slack carried out after warroom gave up on it is found, not made a second time."""
    incident_id, channel = await declare_via_slack(stack)
    late = (await stack.slack.create_channel("late"))["id"]
    # Hold the first announcement's Slack post, so what follows arrives while the workflow is announcing.
    await stack.slack.fault("chat.postMessage", delay_ms=3000)
    first = await run(stack, "update First", channel)
    assert first.startswith("Update accepted but not posted yet: Slack did not take it at once"), first

    async def held() -> bool:
        return (await stack.slack.state())["faults"] == []  # taken: the delayed post is in flight

    await eventually(held)
    assert (
        await run(stack, f"broadcast add <#{late}|late>", channel) == f"Broadcast channels: added <#{late}>."
    )
    second = await run(stack, "update Second", channel)
    assert (
        second
        == "Update accepted: it goes out here and to 3 broadcast channels after the 1 message ahead of it."
    )
    assert [a.text for a in (await stack.state(incident_id)).outbox] == ["First", "Second"]

    await wait_quiet(stack, incident_id)
    [late_overview] = await stack.slack.messages(late)
    assert ["Second" in r["text"] for r in late_overview["replies"]] == [True]
    assert sum("First" in m["text"] for m in await stack.slack.messages(channel)) == 1
    for bc in stack.broadcast:
        [overview] = await stack.slack.messages(bc)
        texts = [r["text"] for r in overview["replies"]]
        assert len(texts) == 2 and "First" in texts[0] and "Second" in texts[1], texts


# --- reactions --------------------------------------------------------------------------------------------


async def test_a_broadcast_reaction_turns_a_message_into_one_update_with_a_permalink(stack: Stack) -> None:
    incident_id, channel = await declare_via_slack(stack)
    text = "Failover to the replica is done"
    ts = (await stack.slack.message(HUMAN, channel, text))["ts"]

    retried = await stack.slack.react(HUMAN, channel, ts, "mega", repeat=2)
    assert retried["delivered"] and retried["statuses"] == [200, 200, 200]
    again = await stack.slack.react(OTHER_HUMAN, channel, ts, "pushpin")
    assert again["delivered"] and again["status"] == 200

    async def broadcast_everywhere() -> bool:
        return all([len(await replies(stack, bc)) >= 1 for bc in stack.broadcast])

    await eventually(broadcast_everywhere)
    await wait_quiet(stack, incident_id)
    links = set()
    for bc in stack.broadcast:
        [reply] = await replies(stack, bc)
        assert text in reply
        link = re.search(r"<(https?://[^|>]+)\|source>", reply)
        assert link, reply
        links.add(link[1])
    [permalink] = links
    async with aiohttp.ClientSession() as http, http.get(permalink) as response:
        target = await response.json()
    assert target["message"]["ts"] == ts and target["message"]["text"] == text
    assert len([t for t in await bot_posts(stack, channel) if text in t]) == 1
    state = await stack.state(incident_id)
    assert state.updates_posted == 1
    assert [(e.kind, e.link) for e in state.timeline if e.kind == "reaction"] == [("reaction", permalink)]


async def test_other_emoji_other_channels_and_warroom_posts_are_not_broadcast(stack: Stack) -> None:
    incident_id, channel = await declare_via_slack(stack)
    thumbs = (await stack.slack.message(HUMAN, channel, "I am looking at the dashboards"))["ts"]
    result = await stack.slack.react(OTHER_HUMAN, channel, thumbs, "thumbsup")
    assert result["delivered"] and result["status"] == 200

    elsewhere = (await stack.slack.create_channel("random", members=[BOT_USER_ID, HUMAN]))["id"]
    chatter = (await stack.slack.message(HUMAN, elsewhere, "Lunch is here"))["ts"]
    result = await stack.slack.react(HUMAN, elsewhere, chatter, "mega")
    assert result["delivered"] and result["status"] == 200

    warroom_overview = (await stack.slack.messages(channel))[0]
    assert warroom_overview["user"] == BOT_USER_ID
    result = await stack.slack.react(HUMAN, channel, warroom_overview["ts"], "mega")
    assert result["delivered"] and result["status"] == 200

    # A reaction that does broadcast, after the others: once it is out, the earlier ones had their chance.
    real = (await stack.slack.message(HUMAN, channel, "Cache warmed up"))["ts"]
    await stack.slack.react(HUMAN, channel, real, "mailbox")

    async def broadcast_everywhere() -> bool:
        return all([len(await replies(stack, bc)) >= 1 for bc in stack.broadcast])

    await eventually(broadcast_everywhere)
    await wait_quiet(stack, incident_id)
    for bc in stack.broadcast:
        [only] = await replies(stack, bc)
        assert "Cache warmed up" in only
    assert [m["text"] for m in await stack.slack.messages(elsewhere)] == ["Lunch is here"]
    posted = await bot_posts(stack, channel)
    assert len(posted) == 2 and "Cache warmed up" in posted[1]  # the overview, then the one update
    state = await stack.state(incident_id)
    assert state.updates_posted == 1 and state.reacted_messages == [warroom_overview["ts"], real]


# --- resolve ----------------------------------------------------------------------------------------------


async def test_resolve_warns_ends_the_workflow_and_later_commands_say_it_is_resolved(stack: Stack) -> None:
    incident_id, channel = await declare_via_slack(stack)
    ack = await run(stack, "resolve Rolled back the deploy", channel)
    assert ack.startswith("INC-1 resolved.") and "never marked Mitigated" in ack

    handle = stack.temporal.client.get_workflow_handle(
        incident_workflow_id(incident_id, stack.settings.task_queue), result_type=IncidentResult
    )
    result = await asyncio.wait_for(handle.result(), 30)
    assert result.summary == "Rolled back the deploy" and not result.ever_mitigated
    assert result.timeline[-1].kind == "resolved"

    for bc in stack.broadcast:
        [overview] = await stack.slack.messages(bc)
        assert "Resolved" in overview["text"] and "Investigating" not in overview["text"]
        assert "Rolled back the deploy" in overview["replies"][-1]["text"]
    channel_overview = (await stack.slack.messages(channel))[0]
    assert "Resolved" in channel_overview["text"]

    before = await stack.slack.messages(channel)
    late = await run(stack, "update Still seeing errors", channel)
    assert "INC-1 is already resolved" in late
    status = await run(stack, "status", channel)
    assert "Stage: *Resolved*" in status and "never marked Mitigated" in status
    assert await stack.slack.messages(channel) == before
    assert (await stack.state(incident_id)).status is Status.RESOLVED


# --- errors and usage -------------------------------------------------------------------------------------


async def test_malformed_commands_answer_with_usage_and_change_nothing(stack: Stack) -> None:
    incident_id, channel = await declare_via_slack(stack)
    events_before = len(await history_events(stack, incident_id))
    messages_before = await stack.slack.messages(channel)
    cases = {
        "stage bogus": "Usage: `/incident stage <investigating|identified|mitigated> [context]`",
        "commander @alice": "Usage: `/incident commander <@user>`",
        "severity sev9 worse": "Usage: `/incident severity <sev1..sev4> [reason]`",
        "broadcast add #late": "Usage: `/incident broadcast [add|remove <#channel> ...]`",
        "frobnicate the cache": "I don't know `frobnicate`; `/incident help` lists the commands.",
        "update": "Usage: `/incident update [--public] <text>`",
    }
    for text, usage in cases.items():
        answer = await run(stack, text, channel)
        assert escaped(usage) in answer, (text, answer)
    assert "`bogus` is not a stage" in await run(stack, "stage bogus", channel)
    assert await run(stack, "updte Rolling back", channel) == (
        "I don't know `updte`. Did you mean `/incident update`? `/incident help update` shows how."
    )
    assert await run(stack, "severity sev2", channel) == "The severity is already SEV2."

    assert len(await history_events(stack, incident_id)) == events_before
    assert await stack.slack.messages(channel) == messages_before
    state = await stack.state(incident_id)
    assert (state.stage, state.severity, state.commander) == (Stage.INVESTIGATING, Severity.SEV2, None)
    assert state.broadcast_channel_ids == stack.broadcast and state.updates_posted == 0


async def test_incident_commands_elsewhere_explain_where_to_run_them(stack: Stack) -> None:
    for text, word in (
        ("update All good", "update"),
        ("stage identified", "stage"),
        ("commander <@U0ALICE|alice>", "commander"),
        ("status", "status"),
        ("resolve", "resolve"),
    ):
        answer = await run(stack, text)
        assert answer.startswith("This is not an incident channel."), answer
        assert f"`/incident {word}`" in answer and "`/incident declare" in answer
    assert await stack.slack.messages(stack.general) == []
    snapshot = await stack.slack.state()
    assert [c["name"] for c in snapshot["channels"] if c["name"].startswith("inc-")] == []


async def test_bare_command_and_help_list_every_command(stack: Stack) -> None:
    bare, help_ = await run(stack, ""), await run(stack, "help")
    assert bare == help_
    for word in ("declare", "stage", "update", "severity", "commander", "broadcast", "status", "resolve"):
        assert f"`/incident {word}" in bare
    assert "I don't know" not in bare
    assert await run(stack, "help stage") == escaped(
        "`/incident stage <investigating|identified|mitigated> [context]`"
    )


async def test_works_under_another_command_name_and_says_so(stack: Stack) -> None:
    for text in ("", "help", "stage bogus", "update x"):
        answer = await run(stack, text, command="/inc")
        assert "`/inc " in answer and "/incident" not in answer, (text, answer)
    ack = await run(stack, "declare sev3 Search is slow", command="/inc")
    assert "INC-1" in ack
    channel = await stack.incident_channel(1)
    assert "Update posted" in await run(stack, "update Reindexing", channel, command="/inc")
    state = await stack.state(1)
    assert (state.title, state.severity, state.slash_command) == ("Search is slow", Severity.SEV3, "/inc")


async def test_usage_text_escapes_angle_brackets_for_slack(stack: Stack) -> None:
    for text in ("frobnicate", "commander @alice", "broadcast add #late", "update x"):
        answer = await run(stack, text)
        stray = [m for m in re.findall(r"<[^<>]*>", answer) if not SLACK_REFERENCE.fullmatch(m)]
        assert stray == [], (text, stray)


async def test_commands_find_their_incident_right_away_and_after_a_rename(stack: Stack) -> None:
    ack = await run(stack, f"declare sev2 {TITLE}")
    incident_id = int(re.search(r"\*INC-(\d+)\*", ack)[1])  # type: ignore[index]
    channel = await stack.incident_channel(incident_id)
    # No waiting for the workflow to settle: a brand-new channel is found at once.
    assert "Update posted here" in await run(stack, "update first words", channel)
    stack.sandbox.state.rename_channel(stack.sandbox.state.channel(channel), "payments-outage")
    fresh = Incidents(stack.temporal.client, stack.settings.task_queue)  # no cache: a new web process
    assert await fresh.for_channel(channel) == incident_id
    assert "Stage set to *Identified*" in await run(stack, "stage identified found it", channel)
    await wait_quiet(stack, incident_id)
    assert (await stack.state(incident_id)).stage is Stage.IDENTIFIED


async def test_a_reaction_keeps_its_place_among_a_stream_of_updates(stack: Stack) -> None:
    """A :mega: arriving while updates keep coming is broadcast where it arrived, not after the stream."""
    incident_id, channel = await declare_via_slack(stack)
    marked = await stack.slack.message(user_id=HUMAN, channel_id=channel, text="[m] replica promoted")
    # Slack answers slowly, so the first update is still being posted when everything else arrives.
    stack.sandbox.state.add_fault("chat.postMessage", delay_ms=400, count=3)
    first = asyncio.ensure_future(run(stack, "update [u1] failing over", channel))
    await asyncio.sleep(0.2)
    await stack.slack.react(user_id=HUMAN, channel_id=channel, ts=marked["ts"], reaction="mega")
    await run(stack, "update [u2] traffic moving", channel)
    await run(stack, "update [u3] error rate falling", channel)
    await first
    await wait_quiet(stack, incident_id)
    for bc in stack.broadcast:
        tags = [re.findall(r"\[(\w+)\]", text)[0] for text in await replies(stack, bc)]
        assert tags == ["u1", "m", "u2", "u3"], tags


async def test_declare_without_a_severity_takes_the_deployments_default(
    temporal: WorkflowEnvironment, sandbox: SandboxServer
) -> None:
    async with running_stack(temporal, sandbox, WARROOM_DEFAULT_SEVERITY="sev2") as stack:
        answer = await run(stack, "declare Checkout is slow")
        assert "(SEV2)" in answer
        assert (await stack.state(1)).severity is Severity.SEV2
        assert "(SEV4)" in await run(stack, "declare sev4 Search is slow")  # a severity given still wins
