"""The directory per deployment: workflow IDs carry the task queue, so two deployments share a namespace and
each lists only its own incidents; a resolved incident leaves the directory (patch `directory-close`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from domain.alerts import DEFAULT_SEVERITY_MAP, AlertmanagerPayload, from_alertmanager
from domain.models import DirectoryState, IncidentResult, Resolution
from domain.naming import (
    DEFAULT_TASK_QUEUE,
    directory_workflow_id,
    incident_id_of,
    incident_workflow_id,
    incidents_query,
    reminder_workflow_id,
    task_queue_of,
)
from sandbox import SandboxServer
from starter.incidents import Incidents
from starter.report import collect
from tests.conftest import RESPONDER, SIGNING_SECRET, TOKEN, Stack, eventually, running_stack
from tests.test_alerts import alertmanager_payload
from tests.test_incident_workflow import declare
from workflows.directory import IncidentDirectoryWorkflow

# --- naming -------------------------------------------------------------------------------------------------


def test_the_default_queue_keeps_the_ids_of_every_earlier_version() -> None:
    assert DEFAULT_TASK_QUEUE == "warroom"
    assert directory_workflow_id("warroom") == "warroom-directory"
    assert incident_workflow_id(42, "warroom") == "incident-42"
    assert reminder_workflow_id("42-1", "warroom") == "reminder-42-1"


def test_any_other_queue_prefixes_every_id() -> None:
    assert directory_workflow_id("staging") == "staging-directory"
    assert incident_workflow_id(42, "staging") == "staging-incident-42"
    assert reminder_workflow_id("42-1", "staging") == "staging-reminder-42-1"
    assert incident_workflow_id(7, "warroom-ab12") == "warroom-ab12-incident-7"


@pytest.mark.parametrize(
    ("workflow_id", "incident_id", "queue"),
    [
        ("incident-42", 42, "warroom"),
        ("staging-incident-42", 42, "staging"),
        ("warroom-3f1c-incident-7", 7, "warroom-3f1c"),
        ("incident-incident-3", 3, "incident"),  # a queue named `incident`
        ("reminder-42-1", None, "warroom"),
        ("staging-reminder-42-1", None, "staging"),
        ("warroom-directory", None, None),
        ("staging-directory", None, None),
        ("incident-", None, None),
        ("soak-1", None, None),
    ],
)
def test_ids_are_read_back_in_both_forms(
    workflow_id: str, incident_id: int | None, queue: str | None
) -> None:
    assert incident_id_of(workflow_id) == incident_id
    assert task_queue_of(workflow_id) == queue


@pytest.mark.parametrize("queue", ["warroom", "staging", "warroom-3f1c", "team-a-prod"])
def test_ids_round_trip(queue: str) -> None:
    assert incident_id_of(incident_workflow_id(123, queue)) == 123
    assert task_queue_of(incident_workflow_id(123, queue)) == queue
    assert task_queue_of(reminder_workflow_id("123-4", queue)) == queue


def test_the_listing_names_the_queue() -> None:
    assert incidents_query("staging") == "WorkflowType = 'IncidentWorkflow' AND TaskQueue = 'staging'"


def test_a_directory_state_from_before_still_loads() -> None:
    """A run from before `closed` existed continues as new with its old state."""
    state = DirectoryState.model_validate({"next_id": 5, "channels": {"C1": 4}, "open_keys": {"k": 4}})
    assert state.closed == 0 and state.channels == {"C1": 4} and state.next_id == 5


# --- two deployments, one namespace ------------------------------------------------------------------------


async def test_two_deployments_share_a_namespace_and_list_only_their_own(
    temporal: WorkflowEnvironment, sandbox: SandboxServer
) -> None:
    async with (
        SandboxServer(token=TOKEN, signing_secret=SIGNING_SECRET) as staging_slack,
        running_stack(temporal, sandbox, WARROOM_TASK_QUEUE="warroom") as prod,
        running_stack(temporal, staging_slack, WARROOM_TASK_QUEUE="staging") as staging,
    ):
        prod_id, _ = await declare(prod, "Checkout down in production")
        staging_id, _ = await declare(staging, "Checkout down in staging")
        second_staging_id, _ = await declare(staging, "Search slow in staging")
        # Each deployment hands out its own IDs: both start at 1.
        assert (prod_id, staging_id, second_staging_id) == (1, 1, 2)
        client = temporal.client
        for workflow_id in ("incident-1", "warroom-directory", "staging-incident-1", "staging-directory"):
            description = await client.get_workflow_handle(workflow_id).describe()
            queue = "staging" if workflow_id.startswith("staging") else "warroom"
            assert description.task_queue == queue, workflow_id
        assert (await prod.state(1)).title == "Checkout down in production"
        assert (await staging.state(1)).title == "Checkout down in staging"

        async def listed(stack: Stack, want: int) -> list[str]:
            titles = sorted(i.title for i in await stack.incidents.list())
            assert len(titles) == want, titles
            return titles

        assert await eventually(lambda: listed(prod, 1)) == ["Checkout down in production"]
        assert await eventually(lambda: listed(staging, 2)) == [
            "Checkout down in staging",
            "Search slow in staging",
        ]

        # Resolving staging's INC-1 leaves production's INC-1 open; each report counts its own.
        await staging.incidents.resolve(1, Resolution(summary="fixed", actor=RESPONDER))
        await client.get_workflow_handle("staging-incident-1", result_type=IncidentResult).result()
        assert (
            await client.get_workflow_handle("incident-1").describe()
        ).status == WorkflowExecutionStatus.RUNNING
        since = datetime.now(UTC) - timedelta(hours=1)

        async def reported(queue: str, want: tuple[int, int]) -> bool:
            report = await collect(client, queue, since)
            counts = report.by_severity["sev2"]
            assert (counts.open, counts.resolved) == want, (queue, counts)
            return True

        await eventually(lambda: reported("warroom", (1, 0)))
        await eventually(lambda: reported("staging", (1, 1)))


# --- the directory forgets closed incidents ----------------------------------------------------------------


async def directory_lookup(stack: Stack, query: object, arg: str) -> int | None:
    found: int | None = await stack.incidents.directory.query(query, arg)
    return found


async def test_resolve_removes_the_channel_from_the_directory(stack: Stack) -> None:
    incident_id, channel = await declare(stack)
    other_id, other_channel = await declare(stack, "Search slow")
    lookup = IncidentDirectoryWorkflow.incident_for_channel
    assert await directory_lookup(stack, lookup, channel) == incident_id
    await stack.incidents.resolve(incident_id, Resolution(summary="fixed", actor=RESPONDER))
    workflow_id = incident_workflow_id(incident_id, stack.settings.task_queue)
    await stack.temporal.client.get_workflow_handle(workflow_id).result()

    async def forgotten() -> bool:
        return await directory_lookup(stack, lookup, channel) is None

    await eventually(forgotten)
    # The open incident's channel is still known.
    assert await directory_lookup(stack, lookup, other_channel) == other_id
    # A command in the resolved channel, from an ingress that never saw it, still finds it by its name.
    fresh = Incidents(stack.temporal.client, stack.settings.task_queue)
    name = (await stack.state(incident_id)).channel_name
    assert await fresh.for_channel(channel, name) == incident_id
    reply = await stack.command("update still here?", channel=channel)
    assert "already resolved" in str(reply["body"]), reply


async def test_resolve_frees_an_alert_key_through_the_close(stack: Stack) -> None:
    payload = AlertmanagerPayload.model_validate(alertmanager_payload("web-1"))
    group = from_alertmanager(payload, "alertmanager", DEFAULT_SEVERITY_MAP)
    outcome = await stack.incidents.handle_alert(group)
    assert outcome.action == "declared" and outcome.incident_id is not None
    incident_id = outcome.incident_id
    channel = await stack.incident_channel(incident_id)
    by_key = IncidentDirectoryWorkflow.incident_for_key
    assert await directory_lookup(stack, by_key, group.dedup_key or "") == incident_id
    await stack.incidents.resolve(incident_id, Resolution(summary="fixed", actor=RESPONDER))
    workflow_id = incident_workflow_id(incident_id, stack.settings.task_queue)
    await stack.temporal.client.get_workflow_handle(workflow_id).result()

    async def forgotten() -> bool:
        key_gone = await directory_lookup(stack, by_key, group.dedup_key or "") is None
        channel_gone = await directory_lookup(stack, IncidentDirectoryWorkflow.incident_for_channel, channel)
        return key_gone and channel_gone is None

    await eventually(forgotten)
    again = await stack.incidents.handle_alert(group)
    assert again.action == "declared" and again.incident_id == incident_id + 1


async def test_an_incident_from_before_keeps_the_directory_it_registered_with(
    temporal: WorkflowEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An `incident-<n>` started before IDs carried the queue, on a queue `staging`, reaches
    `warroom-directory` (its ID says so), not `staging-directory` (its queue would)."""
    async with running_stack(temporal, sandbox, WARROOM_TASK_QUEUE="staging") as stack:
        # The client as the version before this one was: `incident-<n>` and `warroom-directory` on any queue.
        monkeypatch.setattr("starter.incidents.incident_workflow_id", lambda n, _queue: f"incident-{n}")
        stack.incidents.directory.workflow_id = "warroom-directory"
        incident_id, channel = await declare(stack)
        client = temporal.client
        assert (await client.get_workflow_handle("incident-1").describe()).task_queue == "staging"
        lookup = IncidentDirectoryWorkflow.incident_for_channel
        assert await directory_lookup(stack, lookup, channel) == incident_id
        await stack.incidents.resolve(incident_id, Resolution(summary="fixed", actor=RESPONDER))
        await client.get_workflow_handle("incident-1").result()

        async def forgotten() -> bool:
            return await directory_lookup(stack, lookup, channel) is None

        await eventually(forgotten)
        with pytest.raises(RPCError):
            await client.get_workflow_handle(directory_workflow_id("staging")).describe()
        problems = [e.text for e in (await stack.state(incident_id)).timeline if e.kind == "problem"]
        assert problems == []
