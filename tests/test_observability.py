"""Logs, metrics and the Temporal UI's current details, on a real dev server with the Slack sandbox."""

from __future__ import annotations

import io
import json
import logging
import socket
from typing import Any

import aiohttp
import structlog
from prometheus_client.parser import text_string_to_metric_families
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client
from temporalio.common import MetricMeter
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

import worker
from domain.models import CommanderChange, Resolution, StageChange, StatusUpdate
from domain.naming import directory_workflow_id, incident_workflow_id
from domain.settings import Settings
from domain.vocab import Stage, Status
from sandbox import SandboxServer
from starter.logs import REDACTED
from tests.conftest import SIGNING_SECRET, TOKEN, Stack, eventually, running_stack
from tests.test_incident_workflow import RESPONDER, TITLE, declare, wait_quiet
from tests.test_ingress import declare_via_slack, run
from workflows import details as details_module

# --- logs -------------------------------------------------------------------------------------------------


def log_lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def test_ingress_workflow_and_activity_lines_carry_the_incident_and_no_secret(
    log_output: io.StringIO, stack: Stack
) -> None:
    incident_id, channel = await declare_via_slack(stack)
    await run(stack, "stage identified bad deploy", channel)
    await run(stack, "update Rolling back", channel)
    await run(stack, "resolve Rolled back", channel)
    await stack.temporal.client.get_workflow_handle(
        incident_workflow_id(incident_id, stack.settings.task_queue)
    ).result()

    lines = log_lines(log_output)  # every line is one JSON object
    workflow_id = incident_workflow_id(incident_id, stack.settings.task_queue)

    def about_incident(logger: str) -> list[dict[str, Any]]:
        found = [line for line in lines if line.get("logger") == logger]
        assert found, f"no lines from {logger}"
        assert all(line.get("workflow_id") for line in found), found
        return [line for line in found if line["workflow_id"] == workflow_id]

    ingress = [line for line in lines if line.get("event") == "slack_request"]
    assert len(ingress) == 4 and all(line["status"] == 200 for line in ingress), ingress
    assert all((line["incident_id"], line["workflow_id"]) == (incident_id, workflow_id) for line in ingress)

    in_workflow = about_incident("temporalio.workflow")
    assert all(line["incident_id"] == incident_id and line["run_id"] for line in in_workflow)
    events = [line["event"] for line in in_workflow]
    for expected in ("incident declared", "channel created", "stage changed", "incident resolved"):
        assert expected in events, events
    assert [line["stage"] for line in in_workflow if line["event"] == "stage changed"] == ["identified"]

    in_activities = about_incident("temporalio.activity")
    assert all(line["incident_id"] == incident_id for line in in_activities)
    assert {"channel created", "update posted"} <= {line["event"] for line in in_activities}

    text = log_output.getvalue()
    assert TOKEN not in text and SIGNING_SECRET not in text


def test_secrets_and_slack_tokens_are_redacted_from_every_value(log_output: io.StringIO) -> None:
    app_token = "xapp-1-A0123-4567-abcdef"
    user_token = "xoxp-1234-5678-abcd"
    structlog.get_logger("warroom.test").info(
        f"posting with {TOKEN}", headers={"Authorization": f"Bearer {TOKEN}"}, tokens=[app_token]
    )
    logging.getLogger("slack_sdk.test").warning("signing with %s and %s", SIGNING_SECRET, user_token)
    try:
        raise RuntimeError(f"bad secret {SIGNING_SECRET}")
    except RuntimeError:
        logging.getLogger("aiohttp.test").exception("request failed")

    text = log_output.getvalue()
    for secret in (TOKEN, SIGNING_SECRET, app_token, user_token):
        assert secret not in text
    first, second, third = log_lines(log_output)
    assert first["event"] == f"posting with {REDACTED}"
    assert first["headers"] == {"Authorization": f"Bearer {REDACTED}"} and first["tokens"] == [REDACTED]
    assert second["event"] == f"signing with {REDACTED} and {REDACTED}" and second["level"] == "warning"
    assert f"RuntimeError: bad secret {REDACTED}" in third["exception"]


# --- metrics ----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def scrape(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return await response.text()


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels`."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


async def test_web_and_worker_metrics_count_what_happened(
    temporal: WorkflowEnvironment, sandbox: SandboxServer
) -> None:
    port = free_port()
    runtime = worker.telemetry(f"127.0.0.1:{port}")
    client = await Client.connect(
        temporal.client.service_client.config.target_host,
        namespace=temporal.client.namespace,
        data_converter=pydantic_data_converter,
        runtime=runtime,
    )
    async with running_stack(temporal, sandbox, client=client) as stack:
        incident_id, channel = await declare_via_slack(stack)
        await run(stack, "stage identified bad deploy", channel)
        # One 500: warroom looks for the post and posts again within the attempt; the metric still counts it.
        stack.sandbox.state.add_fault("chat.postMessage", status=500)
        await run(stack, "update Rolling back", channel)
        await wait_quiet(stack, incident_id)
        await run(stack, "resolve Rolled back", channel)
        await client.get_workflow_handle(
            incident_workflow_id(incident_id, stack.settings.task_queue)
        ).result()

        web = await scrape(f"http://127.0.0.1:{stack.web.port}/metrics")
        assert value(web, "warroom_incidents_declared_total", severity="sev2", source="slack") == 1
        assert value(web, "warroom_incidents_declared_total") == 1
        slack_route = {"route": "/slack/events", "method": "POST", "status": "200"}
        assert value(web, "warroom_ingress_request_duration_seconds_count", **slack_route) == 4
        assert value(web, "warroom_ingress_request_duration_seconds_sum", **slack_route) > 0
        assert value(web, "process_resident_memory_bytes") > 0

        async def worker_counted() -> str:
            text = await scrape(f"http://127.0.0.1:{port}/metrics")
            assert value(text, "warroom_incidents_resolved_total", severity="sev2") == 1
            return text

        text = await eventually(worker_counted)
        # stage, update, resolved: each in the incident channel and the two broadcast threads
        assert value(text, "warroom_updates_broadcast_total", target="broadcast_channel") == 6
        assert value(text, "warroom_updates_broadcast_total", kind="update", target="incident_channel") == 1
        assert value(text, "warroom_integration_failures_total", provider="slack", error="SlackError") == 1
        assert value(text, "temporal_workflow_completed_total", workflow_type="IncidentWorkflow") == 1
        assert value(text, "temporal_activity_execution_failed_total") == 0  # recovered within the attempt


def test_worker_metrics_are_off_with_port_0_and_a_taken_port_does_not_stop_the_worker() -> None:
    assert worker.metrics_address(Settings(WARROOM_WORKER_METRICS_PORT=0)) is None
    assert worker.metrics_address(Settings()) == "0.0.0.0:9464"
    assert worker.telemetry(None).metric_meter is MetricMeter.noop
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        runtime = worker.telemetry(f"127.0.0.1:{taken.getsockname()[1]}")
    assert runtime.metric_meter is MetricMeter.noop  # no metrics, but a runtime the worker can use


# --- Temporal UI ------------------------------------------------------------------------------------------


async def current_details(stack: Stack, workflow_id: str) -> str:
    handle = stack.temporal.client.get_workflow_handle(workflow_id)
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return str(metadata.current_details)


async def test_the_ui_shows_what_each_incident_is_and_its_status_filters_resolved_ones_out(
    stack: Stack,
) -> None:
    """Summary and details as the Temporal UI reads them (describe, the metadata query), readable: names
    and channel names, never Slack's `<@U..>` syntax; `IncidentStatus` tells open from resolved."""
    incident_id, _ = await declare(stack)
    other, _ = await declare(stack, title="Search results stale")
    workflow_id = incident_workflow_id(incident_id, stack.settings.task_queue)
    described = await stack.temporal.client.get_workflow_handle(workflow_id).describe()
    assert await described.static_summary() == f"INC-{incident_id} · SEV2 · {TITLE}"
    assert f"declared by @{RESPONDER} from the Python API at SEV2" in str(await described.static_details())
    details = await current_details(stack, workflow_id)
    assert details.startswith(f"**INC-{incident_id} · SEV2 · Investigating** {TITLE}"), details
    assert f"none named yet (declared by @{RESPONDER})" in details
    state = await stack.incidents.state(incident_id)
    assert f"**Channel:** #{state.channel_name}" in details and "<#" not in details and "<@" not in details

    await stack.incidents.change_stage(incident_id, StageChange(stage=Stage.IDENTIFIED, context="deploy"))
    await stack.incidents.assign_commander(incident_id, CommanderChange(user_id="U0ALICE", actor=RESPONDER))
    await stack.incidents.post_update(incident_id, StatusUpdate(text="Rolling back <b>now</b>"))
    await stack.incidents.change_stage(other, StageChange(stage=Stage.IDENTIFIED, context="cache"))
    await stack.incidents.resolve(other, Resolution(summary="cache flushed"))

    async def shown() -> str:
        details = await current_details(stack, workflow_id)
        assert "SEV2 · Identified**" in details and "**Commander:** @U0ALICE" in details, details
        assert "Rolling back &lt;b&gt;now&lt;/b&gt;" in details, details  # shown as typed, not as HTML
        assert "**Updates posted:** 1" in details, details
        return details

    await eventually(shown)
    resolved = incident_workflow_id(other, stack.settings.task_queue)
    await stack.temporal.client.get_workflow_handle(resolved).result()
    details = await current_details(stack, resolved)
    assert "Resolved (was Identified, never Mitigated)" in details and "no commander was named" in details
    assert "cache flushed" in details

    # The trap: the stage alone also matches the resolved incident; with IncidentStatus only the open one.
    async def listed() -> bool:
        by_stage = await stack.incidents.list(stage=Stage.IDENTIFIED)
        assert sorted(i.incident_id for i in by_stage) == sorted([incident_id, other])
        open_ones = await stack.incidents.list(stage=Stage.IDENTIFIED, status=Status.OPEN)
        assert [i.incident_id for i in open_ones] == [incident_id]
        return True

    await eventually(listed)

    async def directory_shown() -> bool:
        directory = await current_details(stack, directory_workflow_id(stack.settings.task_queue))
        assert "Incidents declared: 2 (next: INC-3)" in directory and "Incident channels: 1" in directory
        assert "Incidents closed: 1" in directory and "Open alert keys: 0" in directory
        return True

    await eventually(directory_shown)
    handle = stack.temporal.client.get_workflow_handle(directory_workflow_id(stack.settings.task_queue))
    assert await (await handle.describe()).static_summary() == details_module.DIRECTORY_SUMMARY


async def test_workflows_log_nothing_while_replaying(log_output: io.StringIO, stack: Stack) -> None:
    """A worker that picks an incident up again replays its history silently."""
    incident_id, _ = await declare(stack)
    handle = stack.temporal.client.get_workflow_handle(
        incident_workflow_id(incident_id, stack.settings.task_queue)
    )
    history = await handle.fetch_history()
    logged = [line for line in log_lines(log_output) if line.get("logger") == "temporalio.workflow"]
    assert logged  # the first execution did log
    seen = len(log_output.getvalue())

    replayer = Replayer(workflows=list(worker.WORKFLOWS), data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None
    replayed = io.StringIO(log_output.getvalue()[seen:])
    assert not [line for line in log_lines(replayed) if line.get("logger") == "temporalio.workflow"]
