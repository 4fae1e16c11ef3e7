"""Records real incident histories for tests/test_histories_replay.py.

    .venv/bin/python -m tests.histories.record [scenario ...]   # e.g. `integrations`; none: all of them

Runs scripted incidents on a throwaway Temporal dev server with the Slack sandbox (the same building blocks as
tests/conftest.py) and writes each workflow's history to `tests/histories/<workflow-id>__<label>.json`.
Scenarios run on the default task queue (`warroom`), so the workflow IDs are production's (`incident-1`,
`warroom-directory`); `staging-queue` runs on a queue of its own (`staging-incident-1`, `staging-directory`).
A scenario that needs minutes or hours to pass (`nudge-fired`: the update-nudge timer fires) runs on a dev
server with per-workflow time skipping (`start_time_skipping`, as tests/test_nudges.py) and moves its
incident's clock with `fast_forward`; the others run in real time.
Files with the same names are overwritten; any other file in the folder is left alone, so a history kept
from an older version of the workflow code (renamed, e.g. `incident-1__full-lifecycle-before-x.json`) stays
covered by the replay test until it is deleted on purpose.

Record AFTER the existing histories replay (`pytest tests/test_histories_replay.py`), never instead: a
failing old history means the change breaks incidents that are already running.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import tempfile
from collections.abc import Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from domain.models import (
    BroadcastChange,
    CommanderChange,
    DebriefNote,
    DebriefStart,
    Resolution,
    SeverityChange,
    StageChange,
    StatusUpdate,
)
from domain.naming import DEFAULT_TASK_QUEUE, directory_workflow_id, incident_workflow_id
from domain.vocab import Severity, Stage
from sandbox import SandboxServer
from sandbox.pagerduty import WEBHOOK_SECRET as PD_WEBHOOK_SECRET
from tests.conftest import (
    RESPONDER,
    SIGNING_SECRET,
    TOKEN,
    Stack,
    eventually,
    running_stack,
    start_temporal,
    start_time_skipping,
)
from tests.histories.alert_scenarios import alert_lifecycle, alert_storm
from tests.histories.paging_scenario import paged, pagerduty_declared
from tests.histories.statuspage_scenario import statuspage
from tests.histories.update_scenario import update_in_task
from tests.test_incident_workflow import declare, wait_quiet
from workflows.incident import IncidentWorkflow

HERE = Path(__file__).resolve().parent
CONTINUE_AS_NEW_AFTER = 60  # events: low, so that a short incident continues as new
UPDATES_BEFORE_HANDOVER = 8

Histories = dict[str, str]  # file name -> history JSON


async def _save(client: Client, workflow_id: str, label: str, run_id: str | None = None) -> Histories:
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    compact = json.dumps(json.loads(history.to_json()), separators=(",", ":"))  # a third of the indented size
    return {f"{workflow_id}__{label}.json": compact}


async def _resolve_and_save(stack: Stack, incident_id: int, summary: str, label: str) -> Histories:
    """Resolves the incident, waits for its workflow to complete and saves its history as `label`."""
    await stack.incidents.resolve(incident_id, Resolution(summary=summary, actor=RESPONDER))
    client = stack.temporal.client
    await client.get_workflow_handle(incident_workflow_id(incident_id, stack.settings.task_queue)).result()
    return await _save(client, incident_workflow_id(incident_id, stack.settings.task_queue), label)


def readable(history_json: str) -> str:
    """The history with every payload decoded (payload data is base64 in the JSON)."""
    decoded = [history_json]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("data"), str):
                decoded.append(base64.b64decode(node["data"]).decode(errors="replace"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(history_json))
    return "\n".join(decoded)


async def full_lifecycle(stack: Stack) -> Histories:
    """Declare, stages, updates, a :mega: reaction, broadcast add/remove, severity, commander, resolve."""
    inc = stack.incidents
    incident_id, channel = await declare(stack)
    await inc.change_stage(
        incident_id, StageChange(stage=Stage.IDENTIFIED, context="bad deploy", actor=RESPONDER)
    )
    await inc.post_update(incident_id, StatusUpdate(text="Rolling back payments-api", actor=RESPONDER))
    await inc.change_severity(
        incident_id, SeverityChange(severity=Severity.SEV1, reason="checkout down", actor=RESPONDER)
    )
    await inc.assign_commander(incident_id, CommanderChange(user_id="U0ALICE", actor=RESPONDER))
    oncall = (await stack.slack.create_channel("oncall"))["id"]
    await inc.change_broadcast(incident_id, BroadcastChange(add=(oncall,), actor=RESPONDER))
    await wait_quiet(stack, incident_id)
    await inc.change_broadcast(incident_id, BroadcastChange(remove=(stack.broadcast[1],), actor=RESPONDER))
    posted = await stack.slack.message(user_id=RESPONDER, channel_id=channel, text="p99 back to 300ms")
    await stack.slack.react(user_id=RESPONDER, channel_id=channel, ts=posted["ts"], reaction="mega")
    await wait_quiet(stack, incident_id)
    await inc.change_stage(
        incident_id, StageChange(stage=Stage.MITIGATED, context="rolled back", actor=RESPONDER)
    )
    await inc.post_update(incident_id, StatusUpdate(text="Watching error rates", actor=RESPONDER))
    await wait_quiet(stack, incident_id)
    await inc.resolve(incident_id, Resolution(summary="Rolled back the bad deploy", actor=RESPONDER))
    client = stack.temporal.client
    await client.get_workflow_handle(incident_workflow_id(incident_id, stack.settings.task_queue)).result()
    return {
        **await _save(client, incident_workflow_id(incident_id, stack.settings.task_queue), "full-lifecycle"),
        **await _save(client, directory_workflow_id(stack.settings.task_queue), "after-one-incident"),
    }


async def continued_as_new(stack: Stack) -> Histories:
    """An incident long enough to continue as new; every run of it, in order."""
    inc = stack.incidents
    incident_id, _ = await declare(stack)
    client = stack.temporal.client
    workflow_id = incident_workflow_id(incident_id, stack.settings.task_queue)
    first_run = (await client.get_workflow_handle(workflow_id).describe()).run_id
    await inc.change_stage(
        incident_id, StageChange(stage=Stage.IDENTIFIED, context="found it", actor=RESPONDER)
    )
    for i in range(UPDATES_BEFORE_HANDOVER):
        await inc.post_update(incident_id, StatusUpdate(text=f"update {i}", actor=RESPONDER))
    await wait_quiet(stack, incident_id)
    await inc.resolve(incident_id, Resolution(summary="done", actor=RESPONDER))
    await client.get_workflow_handle(workflow_id).result()

    histories: Histories = {}
    run_id: str | None = first_run
    run = 0
    while run_id:
        run += 1
        histories |= await _save(client, workflow_id, f"continue-as-new-run-{run}", run_id)
        events = client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history_events()
        run_id = None
        async for event in events:
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                run_id = event.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    if run < 2:
        raise RuntimeError("the incident did not continue as new; lower CONTINUE_AS_NEW_AFTER")
    return histories


async def integrations(stack: Stack) -> Histories:
    """A Zoom call at declare, a Jira issue, the call replaced by Meet, a reminder delivered after the resolve
    and one cancelled: the incident's history and both reminders'."""
    from domain.models import CallStart, ReminderOrder, TicketOrder
    from domain.naming import reminder_workflow_id

    inc = stack.incidents
    incident_id, _ = await declare(stack)
    await inc.create_ticket(incident_id, TicketOrder(summary="Roll back payments deploy", actor=RESPONDER))
    await inc.start_call(incident_id, CallStart(provider="meet", actor=RESPONDER))
    await inc.set_reminder(
        incident_id, ReminderOrder(when="in 2s", text="check the rollback", actor=RESPONDER)
    )
    await inc.set_reminder(incident_id, ReminderOrder(when="in 1h", text="never mind", actor=RESPONDER))
    await inc.cancel_reminder(f"{incident_id}-2", RESPONDER)
    await wait_quiet(stack, incident_id)
    await inc.resolve(incident_id, Resolution(summary="Rolled back", actor=RESPONDER))
    client = stack.temporal.client
    await client.get_workflow_handle(incident_workflow_id(incident_id, stack.settings.task_queue)).result()
    for n in (1, 2):
        await client.get_workflow_handle(
            reminder_workflow_id(f"{incident_id}-{n}", stack.settings.task_queue)
        ).result()
    return {
        **await _save(client, incident_workflow_id(incident_id, stack.settings.task_queue), "integrations"),
        **await _save(
            client, reminder_workflow_id(f"{incident_id}-1", stack.settings.task_queue), "delivered"
        ),
        **await _save(
            client, reminder_workflow_id(f"{incident_id}-2", stack.settings.task_queue), "cancelled"
        ),
    }


async def followthrough(stack: Stack) -> Histories:
    """Roles (with DMs), follow-ups typed and ticketed, a hot debrief with a thread reply, a commander, the
    timeline posted at resolve."""
    from domain.models import DebriefNote, DebriefStart, FollowupAdd, FollowupTicket, RoleChange

    inc = stack.incidents
    incident_id, channel = await declare(stack)
    await inc.assign_role(incident_id, RoleChange(role="comms", user_id="U0COMMS", actor=RESPONDER))
    await inc.assign_commander(incident_id, CommanderChange(user_id="U0ALICE", actor=RESPONDER))
    await inc.add_followup(incident_id, FollowupAdd(text="Alert on queue depth", actor=RESPONDER))
    await inc.ticket_followup(incident_id, FollowupTicket(followup_id=1, actor=RESPONDER))
    await inc.start_debrief(incident_id, DebriefStart(actor=RESPONDER))
    await wait_quiet(stack, incident_id)

    async def thread() -> str | None:
        return (await inc.state(incident_id)).debrief_ts or None

    from tests.conftest import eventually

    debrief_ts = await eventually(thread)
    reply = await stack.slack.message(
        user_id="U0COMMS", channel_id=channel, text="why no canary", thread_ts=debrief_ts
    )
    await inc.debrief_note(
        incident_id,
        DebriefNote(user_id="U0COMMS", text="why no canary", ts=reply["ts"], thread_ts=debrief_ts),
    )
    await inc.change_stage(
        incident_id, StageChange(stage=Stage.MITIGATED, context="rolled back", actor=RESPONDER)
    )
    await wait_quiet(stack, incident_id)
    return await _resolve_and_save(stack, incident_id, "Rolled back", "followthrough")


async def channel_refused(stack: Stack) -> Histories:
    """Slack refuses the incident channel for good: the declarer gets a DM, updates reach the broadcast
    channels, and resolve completes the workflow (patch `channel-failure-exit`)."""
    stack.sandbox.state.add_fault("conversations.create", error="restricted_action", count=-1)
    inc = stack.incidents
    incident_id = await inc.declare("Checkout down", Severity.SEV2, declared_by=RESPONDER)
    await inc.post_update(incident_id, StatusUpdate(text="Rolled back", actor=RESPONDER))
    return await _resolve_and_save(stack, incident_id, "fixed", "channel-refused")


CONFIG_TEXT = "warroom.toml"  # a scenario setting holding warroom.toml's text, written to a file for the run
SUPPORT = "C0000000004"  # the sandbox's fourth channel: made first by the stage-broadcasts scenario


async def stage_broadcasts(stack: Stack) -> Histories:
    """warroom.toml's `broadcast.by_stage` adds #support when the incident reaches Identified (patch
    `stage-broadcasts`): #support gets the overview, then the stage change and later updates under it."""
    support = (await stack.slack.create_channel("support"))["id"]
    assert support == SUPPORT, f"the sandbox named #support {support}, the configuration says {SUPPORT}"
    inc = stack.incidents
    incident_id, _ = await declare(stack)
    await inc.change_stage(
        incident_id, StageChange(stage=Stage.IDENTIFIED, context="bad deploy", actor=RESPONDER)
    )
    await inc.post_update(incident_id, StatusUpdate(text="Rolling back", actor=RESPONDER))
    await wait_quiet(stack, incident_id)
    return await _resolve_and_save(stack, incident_id, "Rolled back", "stage-broadcasts")


async def nudge_fired(stack: Stack) -> Histories:
    """A Sev2 without an update for its nudge interval: the timer fires and the declarer gets a DM. Five
    minutes later an update moves the next nudge on, so the timer started by the nudge fires with nothing due
    and sleeps for what is left; resolve cancels that one. Runs with time skipping (SKIPPING_TIME)."""
    from tests.conftest import eventually
    from tests.test_nudges import nudges_to

    inc = stack.incidents
    env = stack.temporal
    incident_id, _ = await declare(stack)
    handle = env.client.get_workflow_handle(incident_workflow_id(incident_id, stack.settings.task_queue))
    interval = timedelta(minutes=(await inc.state(incident_id)).nudge_minutes[Severity.SEV2.value])

    async def nudged() -> bool:
        return len(nudges_to(stack.sandbox, RESPONDER)) == 1

    await env.fast_forward(handle, interval + timedelta(seconds=30))
    await eventually(nudged)
    await wait_quiet(stack, incident_id)
    await env.fast_forward(handle, timedelta(minutes=5))
    await inc.post_update(incident_id, StatusUpdate(text="Rolled back; watching", actor=RESPONDER))
    await wait_quiet(stack, incident_id)
    # Past the nudge's timer (due `interval` after the nudge, at least 5 minutes before the update's nudge),
    # short of the update's nudge by at least two minutes.
    await env.fast_forward(handle, interval - timedelta(minutes=2, seconds=30))

    async def slept_again() -> bool:
        events = [e.event_type async for e in handle.fetch_history_events()]
        return events.count(EventType.EVENT_TYPE_TIMER_STARTED) == 3  # declare's, the nudge's, the rest

    await eventually(slept_again)
    state = await inc.state(incident_id)
    assert state.nudges_sent == 1 and len(nudges_to(stack.sandbox, RESPONDER)) == 1, state.timeline
    return await _resolve_and_save(stack, incident_id, "Rolled back", "nudge-fired")


Scenario = Callable[[Stack], Coroutine[Any, Any, Histories]]


# name -> (scenario, Temporal dynamic config, warroom settings)
async def timeline_archive(stack: Stack) -> Histories:
    """A long debrief: enough thread replies that the oldest timeline events go to a private Slack file
    (patch timeline-archive), then the resolve reads them back into the export."""
    from workflows.archive import ARCHIVE_AT

    inc = stack.incidents
    incident_id, _ = await declare(stack)
    await inc.start_debrief(incident_id, DebriefStart(actor=RESPONDER))
    await wait_quiet(stack, incident_id)
    thread = (await inc.state(incident_id)).debrief_ts or ""
    handle = stack.temporal.client.get_workflow_handle(
        incident_workflow_id(incident_id, stack.settings.task_queue)
    )
    batch = 65  # signals a batch at a time: few workflow tasks, a short history
    for start in range(0, ARCHIVE_AT + 10, batch):
        notes = [
            DebriefNote(user_id=RESPONDER, text=f"note {i}", ts=f"1700000000.{i:06d}", thread_ts=thread)
            for i in range(start, start + batch)
        ]
        await asyncio.gather(*(handle.signal(IncidentWorkflow.debrief_note, n) for n in notes))

    async def archived() -> bool:
        return bool((await inc.state(incident_id)).timeline_parts)

    await eventually(archived, within=30)
    return await _resolve_and_save(stack, incident_id, "Long debrief done", "timeline-archive")


SCENARIOS: dict[str, tuple[Scenario, tuple[str, ...], dict[str, str]]] = {
    "full-lifecycle": (full_lifecycle, (), {}),
    "alert-lifecycle": (alert_lifecycle, (), {}),
    "continue-as-new": (
        continued_as_new,
        (f"limit.historyCount.suggestContinueAsNew={CONTINUE_AS_NEW_AFTER}",),
        {},
    ),
    "integrations": (integrations, (), {"WARROOM_CALL_PROVIDER": "zoom"}),
    "statuspage": (statuspage, (), {}),
    "followthrough": (followthrough, (), {"WARROOM_CALL_PROVIDER": "zoom"}),
    "channel-refused": (channel_refused, (), {}),
    "timeline-archive": (timeline_archive, (), {}),
    "stage-broadcasts": (
        stage_broadcasts,
        (),
        {CONFIG_TEXT: f'[broadcast]\nby_stage = {{ identified = ["{SUPPORT}"] }}\n'},
    ),
    "nudge-fired": (nudge_fired, (), {}),
    "alert-storm": (alert_storm, (), {"WARROOM_ALERT_STORM_CAP": "1"}),
    "update-in-task": (update_in_task, (), {}),
    "pagerduty-declared": (pagerduty_declared, (), {"PAGERDUTY_WEBHOOK_SECRET": PD_WEBHOOK_SECRET}),
    "paged": (paged, (), {"PAGERDUTY_WEBHOOK_SECRET": PD_WEBHOOK_SECRET}),
    # A deployment on its own task queue: `staging-incident-1` reaches `staging-directory` (domain.naming).
    "staging-queue": (full_lifecycle, (), {"WARROOM_TASK_QUEUE": "staging"}),
}
SKIPPING_TIME = frozenset({"nudge-fired"})  # run with per-workflow time skipping (no dynamic config)


async def _on_stack(
    scenario: Scenario, *config: str, time_skipping: bool = False, **settings: Any
) -> Histories:
    if time_skipping and config:
        raise ValueError("the time-skipping server takes no dynamic config here")
    settings.setdefault("WARROOM_TASK_QUEUE", DEFAULT_TASK_QUEUE)  # production's IDs, not a test's
    if CONFIG_TEXT in settings:
        toml = Path(tempfile.mkdtemp(prefix="warroom-record-")) / "warroom.toml"
        toml.write_text(settings.pop(CONFIG_TEXT))
        settings["WARROOM_CONFIG"] = str(toml)
    async with (
        await (start_time_skipping(auto=False) if time_skipping else start_temporal(*config)) as env,
        SandboxServer(token=TOKEN, signing_secret=SIGNING_SECRET) as sandbox,
        running_stack(env, sandbox, **settings) as stack,
    ):
        histories = await scenario(stack)
        secrets = stack.settings.secrets()
        leaked = [name for name, text in histories.items() for s in secrets if s in readable(text)]
        if leaked:
            raise RuntimeError(f"a secret is in {leaked}")
        return histories


async def record(names: list[str]) -> list[Path]:
    """Records the named scenarios (all when none are named)."""
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenario {unknown}; choose from {sorted(SCENARIOS)}")
    histories: Histories = {}
    for name in names or SCENARIOS:
        scenario, config, settings = SCENARIOS[name]
        histories |= await _on_stack(scenario, *config, time_skipping=name in SKIPPING_TIME, **settings)
    written = []
    for name, text in sorted(histories.items()):
        path = HERE / name
        path.write_text(text + "\n")
        written.append(path)
    return written


def main() -> None:
    """Ends with os._exit: the Temporal SDK can crash at interpreter exit (sdk-python #300)."""
    code = 0
    try:
        for path in asyncio.run(record(sys.argv[1:])):
            print(f"{path}  {path.stat().st_size // 1024} KB")
    except Exception as err:  # report and fail, without a half-written summary
        print(f"record: {type(err).__name__}: {err}", file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
