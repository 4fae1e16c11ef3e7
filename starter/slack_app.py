"""The Bolt app: slash commands, reactions and form submissions, each turned into one Temporal call.

Listeners answer through `ack()` (ephemeral), so the person who ran a command sees the workflow's own
reply, and nothing else is posted on the request path. Opening a form (`views.open`) is the one Slack call
made here: Slack requires it within 3 s of the command, with the trigger it gave.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.service import RPCError

from activities import slack_render as render
from domain import commands as cmd
from domain.commands import UsageError, parse_command
from domain.models import CALL_LABELS, DEFAULT_REACTIONS, ReactionAdded, StageChange
from domain.vocab import Severity, Stage
from starter import modals
from starter.dispatch import Dispatcher, Integrations, Invocation, Reply
from starter.incidents import IncidentError, Incidents
from starter.metrics import WebMetrics

log = structlog.get_logger("warroom.ingress")

# Slack gives an app 3 s to answer; leave room for the network on both sides.
ANSWER_WITHIN = 2.5
DEGRADED = (
    ":hourglass: warroom is degraded: Temporal did not answer in time. Your command may still go through; "
    "check `{cmd} status` in a moment before running it again."
)


def build_slack_app(
    incidents: Incidents,
    client: AsyncWebClient,
    signing_secret: str,
    default_severity: Severity = Severity.SEV3,
    metrics: WebMetrics | None = None,
    reactions: tuple[str, ...] = DEFAULT_REACTIONS,
    integrations: Integrations | None = None,
) -> AsyncApp:
    app = AsyncApp(
        client=client,
        signing_secret=signing_secret,
        process_before_response=True,  # we answer from ack() after the Temporal call
        ignoring_self_events_enabled=True,
    )
    dispatcher = Dispatcher(incidents, integrations)
    listeners = _Listeners(incidents, dispatcher, default_severity, metrics, frozenset(reactions))
    app.command(re.compile(r"^/.+"))(listeners.on_command)
    app.event("reaction_added")(listeners.on_reaction)
    app.view(modals.DECLARE_CALLBACK)(listeners.on_declare_form)
    app.view(modals.STAGE_CALLBACK)(listeners.on_stage_form)
    return app


class _Listeners:
    def __init__(
        self,
        incidents: Incidents,
        dispatcher: Dispatcher,
        default_severity: Severity,
        metrics: WebMetrics | None,
        reactions: frozenset[str],
    ) -> None:
        self.incidents = incidents
        self.dispatcher = dispatcher
        self.default_severity = default_severity
        self.metrics = metrics
        self.reactions = reactions  # warroom.toml `reactions.broadcast`; the workflow checks them again

    async def on_command(self, ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient) -> None:
        slash = str(command.get("command") or "/incident")
        who = Invocation(
            user_id=str(command.get("user_id", "")),
            channel_id=str(command.get("channel_id", "")),
            slash_command=slash,
            request_id=command.get("trigger_id"),
            channel_name=command.get("channel_name"),
        )
        try:
            parsed = parse_command(str(command.get("text") or ""), slash)
        except UsageError as err:
            await ack(text=render.safe(str(err)))
            return
        reply = await self._answer(self.dispatcher.run(parsed, who), slash, parsed.kind)
        if reply.modal:
            try:
                await self._open_modal(reply, command, client, slash)
            except SlackApiError as err:
                error = err.response.get("error") if err.response is not None else "unknown"
                log.warning("form_not_opened", form=reply.modal, error=error)
                if self.metrics is not None:
                    self.metrics.integration_failed("slack", "SlackFormNotOpened")
                usage = render.safe(cmd.usage_for(parsed.kind, slash))
                await ack(text=f"Slack did not open the form ({error}). {usage}")
                return
            await ack()
            return
        await ack(text=reply.text)

    async def _answer(self, work: Any, slash: str, kind: str) -> Reply:
        """Runs one Temporal call with Slack's deadline in mind; errors become a message, never a trace."""
        try:
            return await asyncio.wait_for(work, ANSWER_WITHIN)
        except IncidentError as err:
            return Reply(str(err))
        except (TimeoutError, RPCError) as err:
            log.warning("temporal_unavailable", command=kind, error=type(err).__name__)
            return Reply(DEGRADED.format(cmd=slash))
        except Exception:
            log.exception("command_failed", command=kind)
            return Reply(":x: warroom hit an internal error and logged it. Please try again in a moment.")

    async def _open_modal(
        self, reply: Reply, command: dict[str, Any], client: AsyncWebClient, slash: str
    ) -> None:
        if reply.modal == "declare":
            integrations = self.dispatcher.integrations
            view = modals.declare_modal(
                list(self.incidents.broadcast_channels),
                self.default_severity,
                slash,
                call_providers=tuple(p for p in CALL_LABELS if integrations.ready(p)),
                default_call=integrations.call_provider,
            )
        else:
            assert reply.state is not None
            view = modals.stage_modal(reply.state)
        await client.views_open(trigger_id=command["trigger_id"], view=view)

    async def on_reaction(self, event: dict[str, Any]) -> None:
        """A broadcast emoji on a message in an incident channel: that message becomes a status update."""
        item = event.get("item") or {}
        if event.get("reaction") not in self.reactions or item.get("type") != "message":
            return
        channel = str(item.get("channel", ""))
        incident_id = await self.incidents.for_channel(channel)
        if incident_id is None:
            return  # reactions elsewhere are none of our business
        reaction = ReactionAdded(
            channel_id=channel,
            message_ts=str(item.get("ts", "")),
            user_id=str(event.get("user", "")),
            reaction=str(event.get("reaction")),
        )
        try:
            await self.incidents.react(incident_id, reaction)
        except IncidentError:
            return  # resolved meanwhile: nothing to broadcast

    async def on_declare_form(self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        title = cmd.clean_text(str(modals.value(view, "title") or ""), single_line=True)
        if not title:
            await ack(response_action="errors", errors={"title": "Give the incident a title."})
            return
        severity = Severity(modals.value(view, "severity") or self.default_severity.value)
        channels = tuple(modals.value(view, "broadcast") or ())
        private = "private" in (modals.value(view, "private") or [])
        call = modals.value(view, "call")  # absent when no provider is set up: the deployment's default
        await self.incidents.declare(
            title[: cmd.TITLE_MAX],
            severity,
            private=private,
            declared_by=(body.get("user") or {}).get("id"),
            source="slack",
            broadcast_channels=channels,
            slash_command=str(view.get("private_metadata") or "/incident"),
            call_provider=call if call in CALL_LABELS or call == modals.NO_CALL else None,
        )
        await ack()

    async def on_stage_form(self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        incident_id = int(view.get("private_metadata") or 0)
        change = StageChange(
            stage=Stage(modals.value(view, "stage") or Stage.INVESTIGATING.value),
            context=cmd.clean_text(str(modals.value(view, "context") or "")),
            actor=(body.get("user") or {}).get("id"),
            broadcast_channels=tuple(modals.value(view, "broadcast") or ()),
        )
        try:
            await self.incidents.change_stage(incident_id, change, request_id=body.get("trigger_id"))
        except IncidentError as err:
            await ack(response_action="errors", errors={"stage": str(err)})
            return
        await ack()
