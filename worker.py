"""The worker process: runs incident workflows and their activities on the task queue."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import aiohttp
import structlog
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.client import Client
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.worker import Worker

from activities.calls import providers_from
from activities.jira import JiraActivities
from activities.pager import PagerActivities
from activities.slack import SlackActivities
from activities.slack_base import CALL_TIMEOUT
from activities.slack_dm import SlackDmActivities
from activities.slack_invite import SlackInviteActivities
from activities.slack_timeline import SlackTimelineActivities
from activities.statuspage import StatuspageActivities
from activities.telemetry import IntegrationFailures
from domain.encryption import data_converter
from domain.settings import Settings
from domain.temporal_profile import TemporalConnectError, describe, load_connect_config
from workflows.directory import IncidentDirectoryWorkflow
from workflows.incident import IncidentWorkflow
from workflows.reminder import ReminderWorkflow

WORKFLOWS: Sequence[type] = (IncidentWorkflow, IncidentDirectoryWorkflow, ReminderWorkflow)

log = structlog.get_logger("warroom.worker")


def telemetry(metrics_address: str | None = None) -> Runtime:
    """A Temporal runtime whose Core logs go through Python logging (so they share warroom's format) and,
    with an address (`host:port`), that serves the SDK's and warroom's worker metrics in Prometheus text
    format at `http://<address>/metrics`.

    A taken port does not stop the worker: it runs without metrics and logs why.
    """
    core_logs = LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
        forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
    )
    if metrics_address:
        metrics = PrometheusConfig(bind_address=metrics_address, counters_total_suffix=True)
        try:
            runtime = Runtime(telemetry=TelemetryConfig(logging=core_logs, metrics=metrics))
            log.info("worker_metrics_serving", url=f"http://{metrics_address}/metrics")
            return runtime
        except ValueError as err:  # e.g. "Failed starting Prometheus exporter: Address already in use"
            log.error(
                "worker_metrics_unavailable",
                address=metrics_address,
                error=str(err),
                hint="set WARROOM_WORKER_METRICS_PORT to a free port, or 0 to turn metrics off",
            )
    return Runtime(telemetry=TelemetryConfig(logging=core_logs))


def metrics_address(settings: Settings, host: str = "0.0.0.0") -> str | None:
    """Where the worker serves its metrics; None when WARROOM_WORKER_METRICS_PORT is 0."""
    return f"{host}:{settings.worker_metrics_port}" if settings.worker_metrics_port else None


def connect_args(
    settings: Settings, runtime: Runtime | None = None, *, dev_server: bool = False
) -> dict[str, Any]:
    """`Client.connect` keyword arguments for every warroom process.

    First the client configuration every Temporal tool reads (domain.temporal_profile: a temporal.toml
    profile, then TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY and TEMPORAL_TLS_* over it). Then
    Settings, only where it holds a value explicitly: read from those same variables (so the same value), or
    set by warroom itself or a test. Settings' defaults (localhost:7233, `default`) fill in only what neither
    gives. Then warroom's data converter and `runtime`.

    `dev_server`: `warroom dev`'s own server on loopback, plaintext; a Cloud or mTLS configuration in the
    environment is not sent to it. TemporalConfigError when the configuration is unusable.
    """
    config: dict[str, Any] = {} if dev_server else dict(load_connect_config())
    explicit = settings.model_fields_set
    if dev_server or "temporal_address" in explicit or "target_host" not in config:
        config["target_host"] = settings.temporal_address
    if dev_server or "temporal_namespace" in explicit or "namespace" not in config:
        config["namespace"] = settings.temporal_namespace
    if dev_server:
        config["tls"] = False
    elif settings.temporal_api_key is not None:
        config["api_key"] = settings.temporal_api_key.get_secret_value()
        config.setdefault("tls", True)  # as envconfig does: an API key is only ever sent over TLS by default
    return {**config, "data_converter": data_converter(settings), "runtime": runtime}


async def connect(settings: Settings, runtime: Runtime | None = None, *, dev_server: bool = False) -> Client:
    """A Temporal client with the data converter every warroom process uses: pydantic, and encrypting every
    payload when WARROOM_ENCRYPTION_KEY is set (ValueError when that setting is malformed). A connection that
    fails raises TemporalConnectError naming the address, namespace and TLS mode (never a secret)."""
    args = connect_args(settings, runtime, dev_server=dev_server)
    try:
        return await Client.connect(**args)
    except RuntimeError as err:
        reason = str(err)
        if args.get("api_key"):
            reason = reason.replace(args["api_key"], "***")
        raise TemporalConnectError(f"cannot connect to Temporal at {describe(args)}: {reason}") from err


def slack_client(settings: Settings, session: aiohttp.ClientSession | None = None) -> AsyncWebClient:
    """The Web API client every warroom process uses. With `session`, every Slack call reuses its
    connections (without, each call opens a new one).

    No SDK retry handlers, on purpose: slack-sdk's default re-sends a request whose connection dropped, which
    posts a message twice when Slack stored it before the answer was lost. warroom handles both cases itself
    (activities.slack_base): a rate limit is waited out or becomes Temporal's next retry delay, and a call
    that got no answer is repeated only when repeating is harmless, or after looking for the post it made.
    """
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return AsyncWebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=int(CALL_TIMEOUT),
        session=session,
        retry_handlers=[],
    )


def activities_for(
    settings: Settings, slack: AsyncWebClient, session: aiohttp.ClientSession | None = None
) -> list[Any]:
    """Every activity: Slack (channel, broadcasts, DMs), calls (Zoom, Meet) and Jira. Vendors that are not
    configured still register, and answer with the settings they miss."""
    acts = SlackActivities(slack)
    dms = SlackDmActivities(slack)
    timeline = SlackTimelineActivities(slack)
    return [
        acts.create_channel,
        acts.set_up_channel,
        acts.publish_overview,
        acts.announce,
        acts.fetch_message,
        acts.post_note,
        acts.link_call,
        dms.plan_reminder,
        dms.deliver_reminder,
        dms.send_dm,
        timeline.publish_timeline,
        timeline.archive_timeline,
        providers_from(settings, session).create_call,
        JiraActivities(settings, session).create_ticket,
        StatuspageActivities(settings, session).publish_statuspage,
        *pager_activities(settings, slack, session),
    ]


def pager_activities(
    settings: Settings, slack: AsyncWebClient, session: aiohttp.ClientSession | None
) -> list[Any]:
    """`/incident page`: the pagers (PagerDuty, Opsgenie) and inviting whoever acknowledges."""
    pager = PagerActivities(settings, session)
    return [
        pager.page,
        pager.responder_email,
        pager.resolve_page,
        pager.resolve_source,
        SlackInviteActivities(slack).invite_by_email,
    ]


def build_worker(
    client: Client,
    settings: Settings,
    slack: AsyncWebClient | None = None,
    session: aiohttp.ClientSession | None = None,
) -> Worker:
    """With `session`, Zoom, Meet and Jira calls reuse its connections too. Cache size and task concurrency
    come from Settings (WARROOM_MAX_CACHED_WORKFLOWS and WARROOM_MAX_CONCURRENT_*)."""
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=list(WORKFLOWS),
        activities=activities_for(settings, slack or slack_client(settings, session), session),
        interceptors=[IntegrationFailures()],
        max_cached_workflows=settings.max_cached_workflows,
        max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
        max_concurrent_activities=settings.max_concurrent_activities,
    )


async def run_worker(settings: Settings) -> None:
    client = await connect(settings, telemetry(metrics_address(settings)))
    log.info("worker_started", task_queue=settings.task_queue, namespace=client.namespace)
    async with aiohttp.ClientSession() as session:
        await build_worker(client, settings, slack_client(settings, session), session).run()
