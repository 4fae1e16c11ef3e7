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
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError

from activities import slack_render as render
from domain import commands as cmd
from domain.commands import UsageError, parse_command
from domain.models import (
    CALL_LABELS,
    DEFAULT_REACTIONS,
    DebriefNote,
    ReactionAdded,
    StageChange,
    StatusUpdate,
)
from domain.slack_payloads import (
    SlackPayloadError,
    SlashCommand,
    declare_form,
    reaction_event,
    slash_command,
    stage_form,
)
from domain.vocab import Severity, incident_label
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
NO_TRIGGER = "Slack sent no trigger ID with this command, so warroom cannot open the form. {usage}"


def _error_block(body: dict[str, Any], field: str, fallback: str) -> str:
    """The form block a SlackPayloadError belongs under: its field if the form has that block, else
    `fallback` (Slack rejects `errors` for a block the view does not have)."""
    view = body.get("view")
    blocks = view.get("blocks") if isinstance(view, dict) else None
    ids = {b.get("block_id") for b in blocks if isinstance(b, dict)} if isinstance(blocks, list) else set()
    return field if field in ids else fallback


def _rejected(kind: str, err: SlackPayloadError) -> None:
    """Logs a command or form that did not parse (the person was told why): which kind and which field,
    never the payload's content. Info, not a warning: a blank title is a person's slip, not a fault."""
    log.info("slack_payload_rejected", kind=kind, field=err.field)


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
    app.event("message")(listeners.on_message)
    app.view(modals.DECLARE_CALLBACK)(listeners.on_declare_form)
    app.view(modals.STAGE_CALLBACK)(listeners.on_stage_form)
    app.action(render.NUDGE_ACTION)(listeners.on_nudge_button)
    app.view(modals.UPDATE_CALLBACK)(listeners.on_update_form)
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
        try:
            payload = slash_command(command)
        except SlackPayloadError as err:
            _rejected("command", err)
            await ack(text=render.safe(err.message))
            return
        slash = payload.command
        who = Invocation(
            user_id=payload.user_id,
            channel_id=payload.channel_id,
            slash_command=slash,
            request_id=payload.trigger_id,
            channel_name=payload.channel_name,
        )
        try:
            parsed = parse_command(payload.text, slash)
        except UsageError as err:
            await ack(text=render.safe(str(err)))
            return
        reply = await self._answer(self.dispatcher.run(parsed, who), slash, parsed.kind)
        if reply.modal:
            if payload.trigger_id is None:
                await ack(text=NO_TRIGGER.format(usage=render.safe(cmd.usage_for(parsed.kind, slash))))
                return
            try:
                await self._open_modal(reply, payload, client)
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
        except (TimeoutError, RPCError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
            # An update cut off by our deadline surfaces as WorkflowUpdateRPCTimeoutOrCancelledError: it may
            # still be applied, so the answer is "degraded, check status", never "try again".
            log.warning("temporal_unavailable", command=kind, error=type(err).__name__)
            return Reply(DEGRADED.format(cmd=slash))
        except Exception:
            log.exception("command_failed", command=kind)
            return Reply(":x: warroom hit an internal error and logged it. Please try again in a moment.")

    async def _open_modal(self, reply: Reply, payload: SlashCommand, client: AsyncWebClient) -> None:
        if reply.modal == "declare":
            integrations = self.dispatcher.integrations
            view = modals.declare_modal(
                list(self.incidents.broadcast_channels),
                self.default_severity,
                payload.command,
                call_providers=tuple(p for p in CALL_LABELS if integrations.ready(p)),
                default_call=integrations.call_provider,
            )
        else:
            assert reply.state is not None
            view = modals.stage_modal(reply.state)
        await client.views_open(trigger_id=payload.trigger_id, view=view)

    async def on_reaction(self, event: dict[str, Any]) -> None:
        """A broadcast emoji on a message in an incident channel: that message becomes a status update."""
        try:
            reacted = reaction_event(event)
        except SlackPayloadError as err:
            # Nobody to tell (no one waits for an event's answer): only the log hears of it, without content.
            log.warning("slack_payload_rejected", kind="reaction", field=err.field)
            return
        if reacted is None or reacted.reaction not in self.reactions:
            return
        incident_id = await self.incidents.for_channel(reacted.channel_id)
        if incident_id is None:
            return  # reactions elsewhere are none of our business
        reaction = ReactionAdded(
            channel_id=reacted.channel_id,
            message_ts=reacted.message_ts,
            user_id=reacted.user_id,
            reaction=reacted.reaction,
        )
        try:
            await self.incidents.react(incident_id, reaction)
        except IncidentError:
            return  # resolved meanwhile: nothing to broadcast

    async def on_message(self, event: dict[str, Any]) -> None:
        """A reply in an incident's debrief thread goes into its timeline; every other message is ignored."""
        thread_ts, ts = event.get("thread_ts"), event.get("ts")
        user, text = event.get("user"), event.get("text")
        if event.get("subtype") or event.get("bot_id") or not thread_ts or thread_ts == ts:
            return  # edits, joins, bots, and top-level messages are none of the debrief's business
        if not all(isinstance(v, str) and v for v in (thread_ts, ts, user, text)):
            return
        incident_id = await self.incidents.for_channel(str(event.get("channel", "")))
        if incident_id is None:
            return
        note = DebriefNote(user_id=str(user), text=str(text), ts=str(ts), thread_ts=str(thread_ts))
        try:
            await self.incidents.debrief_note(incident_id, note)
        except IncidentError:
            return  # resolved meanwhile

    async def on_declare_form(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        try:
            form = declare_form(body)
        except SlackPayloadError as err:
            _rejected("declare_form", err)
            await ack(response_action="errors", errors={_error_block(body, err.field, "title"): err.message})
            return
        await self.incidents.declare(
            form.title,
            form.severity or self.default_severity,
            private=form.private,
            declared_by=form.user_id,
            source="slack",
            broadcast_channels=form.broadcast_channels,
            slash_command=form.slash_command,
            call_provider=form.call,
        )
        await ack()

    async def on_nudge_button(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        """The nudge DM's "Post an update" button: opens the status update form for that incident."""
        await ack()
        actions = body.get("actions")
        value = actions[0].get("value") if isinstance(actions, list) and actions else None
        trigger_id = body.get("trigger_id")
        if not isinstance(value, str) or not value.isdigit() or not isinstance(trigger_id, str):
            log.info("slack_payload_rejected", kind="nudge_button", field="actions")
            return
        view = modals.update_modal(int(value), incident_label(int(value)))
        try:
            await client.views_open(trigger_id=trigger_id, view=view)
        except SlackApiError as err:
            error = err.response.get("error") if err.response is not None else "unknown"
            log.warning("form_not_opened", form="update", error=error)

    async def on_update_form(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        """The update form's submission: one status update, posted as its author."""
        view = body.get("view")
        view = view if isinstance(view, dict) else {}
        text = cmd.clean_text(str(modals.value(view, "update") or ""))
        metadata = str(view.get("private_metadata") or "")
        user = body.get("user")
        actor = user.get("id") if isinstance(user, dict) else None
        if not text or not metadata.isdigit():
            await ack(
                response_action="errors", errors={"update": "Write the update stakeholders should read."}
            )
            return
        update = StatusUpdate(text=text[: cmd.TEXT_MAX], actor=actor if isinstance(actor, str) else None)
        try:
            await self.incidents.post_update(int(metadata), update, request_id=body.get("trigger_id"))
        except IncidentError as err:
            await ack(response_action="errors", errors={"update": str(err)})
            return
        await ack()

    async def on_stage_form(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        try:
            form = stage_form(body)
        except SlackPayloadError as err:
            _rejected("stage_form", err)
            await ack(response_action="errors", errors={_error_block(body, err.field, "stage"): err.message})
            return
        change = StageChange(
            stage=form.stage,
            context=form.context,
            actor=form.actor,
            broadcast_channels=form.broadcast_channels,
        )
        try:
            await self.incidents.change_stage(form.incident_id, change, request_id=form.trigger_id)
        except IncidentError as err:
            await ack(response_action="errors", errors={"stage": str(err)})
            return
        await ack()
