"""The worker process: runs incident workflows and their activities on the task queue."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from activities.slack import SlackActivities
from domain.settings import Settings
from workflows.directory import IncidentDirectoryWorkflow
from workflows.incident import IncidentWorkflow

WORKFLOWS: Sequence[type] = (IncidentWorkflow, IncidentDirectoryWorkflow)


async def connect(settings: Settings) -> Client:
    """A Temporal client with the pydantic data converter every warroom process uses."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )


def slack_client(settings: Settings) -> AsyncWebClient:
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return AsyncWebClient(token=token, base_url=settings.slack_api_url, timeout=15)


def activities_for(slack: AsyncWebClient) -> list[Any]:
    acts = SlackActivities(slack)
    return [
        acts.create_channel,
        acts.set_up_channel,
        acts.publish_overview,
        acts.announce,
        acts.fetch_message,
        acts.post_note,
    ]


def build_worker(client: Client, settings: Settings, slack: AsyncWebClient | None = None) -> Worker:
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=list(WORKFLOWS),
        activities=activities_for(slack or slack_client(settings)),
    )


async def run_worker(settings: Settings) -> None:
    client = await connect(settings)
    await build_worker(client, settings).run()
