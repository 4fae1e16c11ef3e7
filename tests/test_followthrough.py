"""Follow-through: roles and their DMs, follow-ups (typed, by reaction, to Jira), the hot debrief and the
timeline posted at resolve; end to end through the ingress, the workflow and the sandbox."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from domain.models import IncidentResult
from domain.naming import incident_workflow_id
from domain.timeline import durations as domain_durations
from sandbox import SandboxServer
from sandbox.api_files import uploaded_bytes
from tests.conftest import RESPONDER, Stack, eventually, running_stack
from tests.test_ingress import declare_via_slack, run
from tests.test_integrations import messages, overview_text, settled
from tests.test_observability import current_details
from tests.test_reminders import dms

COMMS, SCRIBE = "U0COMMS", "U0SCRIBE"


@pytest.fixture
async def configured(
    temporal: WorkflowEnvironment, sandbox: SandboxServer, tmp_path: Path
) -> AsyncIterator[Stack]:
    """A scribe role, and :mailbox: recording follow-ups instead of broadcasting."""
    toml = tmp_path / "warroom.toml"
    toml.write_text(
        '[roles]\nscribe = "Scribe: keeps the timeline."\n'
        '[reactions]\nbroadcast = ["mega", "pushpin"]\nfollowup = ["mailbox"]\n'
    )
    async with running_stack(temporal, sandbox, WARROOM_CONFIG=str(toml), WARROOM_CALL_PROVIDER="zoom") as s:
        yield s


async def test_roles_are_dmed_and_shown_in_the_overview_description_and_status(configured: Stack) -> None:
    stack = configured
    incident_id, channel = await declare_via_slack(stack)
    assert "now the comms" in await run(stack, f"role comms <@{COMMS}>", channel=channel)
    assert "now the scribe" in await run(stack, f"role scribe <@{SCRIBE}|scribe>", channel=channel)
    stack.sandbox.state.add_user(RESPONDER, name="alice")
    # typed as a person types it: Slack (should_escape) sends <@U0RESPONDER|alice>
    assert "commander" in await run(stack, "commander @alice", channel=channel)
    unknown = await run(stack, f"role pilot <@{COMMS}>", channel=channel)
    assert "no role `pilot`" in unknown and "`scribe`" in unknown
    await settled(stack, incident_id)

    [comms_dm] = dms(stack.sandbox, COMMS)
    assert "*comms*" in comms_dm and "stakeholders informed" in comms_dm and f"<#{channel}>" in comms_dm
    [scribe_dm] = dms(stack.sandbox, SCRIBE)
    assert "*scribe*" in scribe_dm and "keeps the timeline" in scribe_dm
    [commander_dm] = dms(stack.sandbox, RESPONDER)
    assert "*commander*" in commander_dm

    purpose = stack.sandbox.state.channel(channel, viewer=None).purpose
    assert f"comms: <@{COMMS}>" in str(purpose) and f"scribe: <@{SCRIBE}>" in str(purpose)
    overview, *_ = messages(stack.sandbox, channel)
    assert f"<@{COMMS}>" in overview_text(overview) and f"<@{SCRIBE}>" in overview_text(overview)
    status = await run(stack, "status", channel=channel)
    assert f"Comms: <@{COMMS}>" in status and f"Scribe: <@{SCRIBE}>" in status
    state = await stack.state(incident_id)
    assert [e.kind for e in state.timeline].count("role") == 2
    # The Temporal UI names people by the name Slack sent with the mention or the command, else by ID.
    shown = await current_details(stack, incident_workflow_id(incident_id, stack.settings.task_queue))
    assert "**Commander:** @alice" in shown and "**Roles:** comms @U0COMMS, scribe @scribe" in shown, shown
    assert "by @alice;" in shown and "RESPONDER" not in shown, shown  # the declarer, renamed since


async def test_followups_typed_and_by_reaction_become_jira_issues(configured: Stack) -> None:
    stack = configured
    incident_id, channel = await declare_via_slack(stack)
    answer = await run(stack, "followup Add an alert on queue depth", channel=channel)
    assert "Follow-up #1 recorded" in answer
    posted = await stack.slack.message(
        user_id=COMMS, channel_id=channel, text="Document the failover runbook"
    )
    await stack.slack.react(user_id=RESPONDER, channel_id=channel, ts=posted["ts"], reaction="mailbox")
    await stack.slack.react(user_id=SCRIBE, channel_id=channel, ts=posted["ts"], reaction="mailbox")
    state = await eventually(lambda: _with_followups(stack, incident_id, 2))
    second = state.followups[1]
    assert second.text == "Document the failover runbook" and second.author == RESPONDER and second.link
    for broadcast in stack.broadcast:  # a follow-up is not a status update
        [top] = messages(stack.sandbox, broadcast)
        assert not top["replies"]

    assert "Creating a Jira issue for follow-up #2" in await run(stack, "followup jira 2", channel=channel)
    state = await settled(stack, incident_id)
    [issue] = stack.sandbox.jira.issues
    assert state.followups[1].ticket is not None and state.followups[1].ticket.key == issue["key"]
    assert issue["fields"]["summary"] == "Document the failover runbook"
    listed = await run(stack, "followups", channel=channel)
    assert "#1 Add an alert on queue depth" in listed and "open" in listed and issue["key"] in listed
    again = await run(stack, "followup jira 2", channel=channel)
    assert f"already {issue['key']}" in again
    assert "no follow-up #7" in await run(stack, "followup jira 7", channel=channel)

    offered = await run(stack, "resolve fixed", channel=channel)  # open follow-ups: offered first
    assert "1 open follow-up(s)" in offered and "#1 Add an alert on queue depth" in offered
    assert "followup jira" in offered and "debrief" in offered and "resolve --now" in offered
    assert "Document the failover runbook" not in offered
    assert (await stack.state(incident_id)).status.value == "open"
    resolved = await run(stack, "resolve --now fixed", channel=channel)
    assert "resolved" in resolved and "Open follow-ups" in resolved and "#1 Add an alert" in resolved
    assert (await stack.state(incident_id)).summary == "fixed"


async def _with_followups(stack: Stack, incident_id: int, n: int) -> object:
    state = await stack.state(incident_id)
    return state if len(state.followups) >= n else None


async def test_debrief_starts_a_call_and_a_thread_whose_replies_go_into_the_timeline(
    configured: Stack,
) -> None:
    stack = configured
    incident_id, channel = await declare_via_slack(stack)
    await settled(stack, incident_id)
    answer = await run(stack, "debrief", channel=channel)
    assert "a call and a things-to-revisit thread" in answer
    state = await settled(stack, incident_id)
    assert state.debrief_ts and len(stack.sandbox.zoom.meetings) == 2
    assert "The debrief has started" in await run(stack, "debrief", channel=channel)
    note = await stack.slack.message(
        user_id=SCRIBE,
        channel_id=channel,
        text="Why did the canary not catch it?",
        thread_ts=state.debrief_ts,
        deliver_event=True,
    )
    assert note["delivery"]["delivered"], note
    await stack.slack.message(
        user_id=SCRIBE, channel_id=channel, text="unrelated chatter", deliver_event=True
    )

    async def noted() -> object:
        s = await stack.state(incident_id)
        return [e for e in s.timeline if e.kind == "debrief" and e.actor == SCRIBE]

    [event] = await eventually(noted)
    assert event.text == "Why did the canary not catch it?"
    state = await stack.state(incident_id)
    assert not [e for e in state.timeline if "unrelated chatter" in e.text]


async def test_resolve_posts_the_timeline_with_markdown_and_json_files(stack: Stack) -> None:
    incident_id, channel = await declare_via_slack(stack)
    await run(stack, "stage identified bad deploy", channel=channel)
    await run(stack, "update rolling back", channel=channel)
    await run(stack, "stage mitigated rolled back", channel=channel)
    await run(stack, "resolve all good", channel=channel)
    result = await stack.temporal.client.get_workflow_handle(
        incident_workflow_id(incident_id, stack.settings.task_queue), result_type=IncidentResult
    ).result()
    summary = [
        m for m in messages(stack.sandbox, channel) if m.get("replies") and "timeline" in m["text"].lower()
    ]
    assert len(summary) == 1, [m["text"] for m in messages(stack.sandbox, channel)]
    files = {f["name"]: f for reply in summary[0]["replies"] for f in reply.get("files") or []}
    assert set(files) == {f"inc-{incident_id}-timeline.md", f"inc-{incident_id}-timeline.json"}
    exported = json.loads(
        uploaded_bytes(stack.sandbox.state, files[f"inc-{incident_id}-timeline.json"]["id"])
    )

    def iso(at: datetime) -> str:
        return at.astimezone(UTC).isoformat().replace("+00:00", "Z")

    happened = [(iso(e.at), e.kind, e.actor, e.text, e.link) for e in result.timeline]
    assert [(e["at"], e["kind"], e["actor"], e["text"], e["link"]) for e in exported["events"]] == happened
    assert [e[1] for e in happened] == [
        "declared", "channel", "stage", "update", "stage", "resolved"
    ]  # fmt: skip
    durations = exported["durations_seconds"]
    assert durations == pytest.approx(domain_durations(result).as_seconds())
    assert durations["to_identified"] <= durations["to_mitigated"] <= durations["to_resolved"]
    assert exported["incident"]["stage_reached"] == {k: iso(v) for k, v in result.stage_reached.items()}
    assert set(result.stage_reached) == {"identified", "mitigated"}
    markdown = uploaded_bytes(stack.sandbox.state, files[f"inc-{incident_id}-timeline.md"]["id"]).decode()
    assert "rolling back" in markdown and "bad deploy" in markdown
