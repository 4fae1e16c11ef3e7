"""The Bolt app: slash commands, reactions and form submissions, each turned into one Temporal call.

Listeners answer through `ack()` (ephemeral), so the person who ran a command sees the workflow's own
reply, and nothing else is posted on the request path. Opening a form (`views.open`) is the one Slack call
made here: Slack requires it within 3 s of the command, with the trigger it gave.

Every listener answers within Slack's 3 s, whatever Temporal does: its Temporal call runs through
`Deadline.run`, and what it answers when Temporal did not answer in time (degraded ephemeral, 503 so Slack
re-sends an event, `errors` that keep a form open) is listed in starter/slack_deadline.py. A form's view ID,
the same on every submission of one modal, keys its Temporal update (and declare's allocation), so
submitting a form again acts once.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable
from functools import partial
from typing import Any

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.response import BoltResponse
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
from starter.permissions import PermissionDenied, Permissions, declare_if_allowed
from starter.slack_deadline import (
    DEGRADED,
    EVENT_NOT_TAKEN,
    LATE_FORM,
    Deadline,
    RequestKind,
    form_error_block,
)
from starter.slack_middleware import FirstMiddleware

__all__ = ["DEGRADED", "build_slack_app"]  # DEGRADED: what tests and the chaos harness expect

log = structlog.get_logger("warroom.ingress")

# Temporal did not answer in time: the call was cut off by our deadline (TimeoutError; an update surfaces as
# WorkflowUpdateRPCTimeoutOrCancelledError) or the server is unreachable (RPCError).
NOT_IN_TIME = (TimeoutError, RPCError, WorkflowUpdateRPCTimeoutOrCancelledError)
FORM_RESERVE = 0.6  # of the budget, kept for `views.open` after the query that fills a form
NO_TRIGGER = "Slack sent no trigger ID with this command, so warroom cannot open the form. {usage}"
INTERNAL = ":x: warroom hit an internal error and logged it. Please try again in a moment."


def _error_block(body: dict[str, Any], field: str, fallback: str) -> str:
    """The form block a SlackPayloadError belongs under: its field if the form has that block, else
    `fallback` (Slack rejects `errors` for a block the view does not have)."""
    view = body.get("view")
    blocks = view.get("blocks") if isinstance(view, dict) else None
    ids = {b.get("block_id") for b in blocks if isinstance(b, dict)} if isinstance(blocks, list) else set()
    return field if field in ids else fallback


def _view_id(body: dict[str, Any]) -> str | None:
    """The submitted modal's ID: the same on every submission of one form (a trigger ID is not)."""
    view = body.get("view")
    view_id = view.get("id") if isinstance(view, dict) else None
    return view_id if isinstance(view_id, str) and view_id else None


def _rejected(kind: str, err: SlackPayloadError) -> None:
    """Logs a command or form that did not parse (the person was told why): which kind and which field,
    never the payload's content. Info, not a warning: a blank title is a person's slip, not a fault."""
    log.info("slack_payload_rejected", kind=kind, field=err.field)


def build_slack_app(
    incidents: Incidents,
    client: AsyncWebClient,
    signing_secret: str | None,
    default_severity: Severity = Severity.SEV3,
    metrics: WebMetrics | None = None,
    reactions: tuple[str, ...] = DEFAULT_REACTIONS,
    integrations: Integrations | None = None,
) -> AsyncApp:
    """`signing_secret` None: an app for Socket Mode only, which verifies no signatures, so it must never
    serve HTTP (starter/serve.py mounts `/slack/events` only with a secret)."""
    app = AsyncApp(
        client=client,
        # Never None: Bolt would then read SLACK_SIGNING_SECRET itself.
        signing_secret=signing_secret or "",
        request_verification_enabled=signing_secret is not None,
        before_authorize=FirstMiddleware(metrics),
        process_before_response=True,  # we answer from ack() after the Temporal call
        ignoring_self_events_enabled=True,
    )
    permissions = Permissions(incidents.config.permissions, client)
    dispatcher = Dispatcher(incidents, integrations, permissions, default_severity)
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

    def _late(self, kind: RequestKind, what: str, err: BaseException) -> None:
        """Temporal did not answer one request in time: one warning and one count per answer of that kind."""
        log.warning("temporal_unavailable", kind=kind, command=what, error=type(err).__name__)
        if self.metrics is not None:
            self.metrics.temporal_timeout(kind)

    # --- slash commands ----------------------------------------------------------------------------------

    async def on_command(
        self, ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient, context: dict[str, Any]
    ) -> None:
        deadline = Deadline.of(context)
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
            user_name=payload.user_name,
        )
        try:
            parsed = parse_command(payload.text, slash)
        except UsageError as err:
            await ack(text=render.safe(str(err)))
            return
        opens_form = isinstance(parsed, cmd.SetStage) and parsed.stage is None
        work = self.dispatcher.run(parsed, who)
        reply = await self._answer(work, deadline, slash, parsed.kind, FORM_RESERVE if opens_form else 0.0)
        if reply.modal:
            problem = await self._open_form_or_explain(reply, payload, deadline, client, parsed.kind)
            await (ack(text=problem) if problem else ack())
            return
        await ack(text=reply.text)

    async def _answer(
        self, work: Awaitable[Reply], deadline: Deadline, slash: str, kind: str, reserve: float = 0.0
    ) -> Reply:
        """Runs one Temporal call within Slack's deadline; errors become a message, never a trace."""
        try:
            return await deadline.run(work, reserve)
        except IncidentError as err:
            return Reply(str(err))
        except NOT_IN_TIME as err:
            # An update cut off by our deadline may still be applied, so the answer is "degraded, check
            # status", never "try again".
            self._late("command", kind, err)
            return Reply(DEGRADED.format(cmd=slash))
        except Exception:
            log.exception("command_failed", command=kind)
            return Reply(INTERNAL)

    async def _open_form_or_explain(
        self, reply: Reply, payload: SlashCommand, deadline: Deadline, client: AsyncWebClient, kind: str
    ) -> str | None:
        """Opens the form the command asked for within what is left of the budget; None when it opened,
        else what to tell the person."""
        usage = render.safe(cmd.usage_for(kind, payload.command))
        if payload.trigger_id is None:
            return NO_TRIGGER.format(usage=usage)
        try:
            await deadline.run(self._open_modal(reply, payload, client))
        except SlackApiError as err:
            error = err.response.get("error") if err.response is not None else "unknown"
        except TimeoutError:
            error = "no answer within 3 s"
        else:
            return None
        log.warning("form_not_opened", form=reply.modal, error=error)
        if self.metrics is not None:
            self.metrics.integration_failed("slack", "SlackFormNotOpened")
        return f"Slack did not open the form ({error}). {usage}"

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

    # --- events ------------------------------------------------------------------------------------------

    async def _event(self, what: str, work: Awaitable[None], context: dict[str, Any]) -> BoltResponse | None:
        """Runs an event's Temporal work within the budget; a 503 (Slack re-sends) when it did not finish."""
        try:
            await Deadline.of(context).run(work)
        except IncidentError:
            return None  # resolved meanwhile: nothing to do, and nothing to retry
        except NOT_IN_TIME as err:
            self._late("event", what, err)
            return BoltResponse(status=503, body=dict(EVENT_NOT_TAKEN))
        return None

    async def on_reaction(self, event: dict[str, Any], context: dict[str, Any]) -> BoltResponse | None:
        """A broadcast emoji on a message in an incident channel: that message becomes a status update."""
        return await self._event("reaction_added", self._react(event), context)

    async def _react(self, event: dict[str, Any]) -> None:
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
        await self.incidents.react(incident_id, reaction)  # the workflow acts once per message ts

    async def on_message(self, event: dict[str, Any], context: dict[str, Any]) -> BoltResponse | None:
        """A reply in an incident's debrief thread goes into its timeline; every other message is ignored."""
        thread_ts, ts = event.get("thread_ts"), event.get("ts")
        user, text = event.get("user"), event.get("text")
        if event.get("subtype") or event.get("bot_id") or not thread_ts or thread_ts == ts:
            return None  # edits, joins, bots, and top-level messages are none of the debrief's business
        if not all(isinstance(v, str) and v for v in (thread_ts, ts, user, text)):
            return None
        note = DebriefNote(user_id=str(user), text=str(text), ts=str(ts), thread_ts=str(thread_ts))
        return await self._event("message", self._debrief_note(str(event.get("channel", "")), note), context)

    async def _debrief_note(self, channel_id: str, note: DebriefNote) -> None:
        incident_id = await self.incidents.for_channel(channel_id)
        if incident_id is not None:
            await self.incidents.debrief_note(incident_id, note)  # once per ts

    # --- forms -------------------------------------------------------------------------------------------

    async def _submitted(
        self, ack: AsyncAck, body: dict[str, Any], context: dict[str, Any], form: str, block: str, work: Any
    ) -> None:
        """Answers a form's submission with `work`'s outcome, within the budget: closed when it is done;
        otherwise `errors` under `block`, so the form stays open with its input."""
        block = form_error_block(body.get("view"), block)
        try:
            await Deadline.of(context).run(work)
        except PermissionDenied as err:  # nothing reached Temporal; the form stays open to choose again
            block, message = form_error_block(body.get("view"), err.block), err.denial.plain
        except IncidentError as err:
            message = str(err)
        except NOT_IN_TIME as err:
            self._late("view_submission", form, err)
            message = LATE_FORM
        except Exception:
            log.exception("form_failed", form=form)
            message = INTERNAL
        else:
            await ack()
            return
        await ack(response_action="errors", errors={block: message})

    async def on_declare_form(self, ack: AsyncAck, body: dict[str, Any], context: dict[str, Any]) -> None:
        try:
            form = declare_form(body)
        except SlackPayloadError as err:
            _rejected("declare_form", err)
            await ack(response_action="errors", errors={_error_block(body, err.field, "title"): err.message})
            return
        severity = form.severity or self.default_severity
        declare = partial(
            self.incidents.declare,
            form.title,
            severity,
            private=form.private,
            declared_by=form.user_id,
            declared_by_name=form.user_name,
            source="slack",
            broadcast_channels=form.broadcast_channels,
            slash_command=form.slash_command,
            call_provider=form.call,
            request_id=_view_id(body),
        )
        work = declare_if_allowed(self.dispatcher.permissions, severity, form.user_id, declare)
        await self._submitted(ack, body, context, "declare", "title", work)

    async def on_nudge_button(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: dict[str, Any]
    ) -> None:
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
            await Deadline.of(context).run(client.views_open(trigger_id=trigger_id, view=view))
        except SlackApiError as err:
            error = err.response.get("error") if err.response is not None else "unknown"
            log.warning("form_not_opened", form="update", error=error)
        except TimeoutError:
            log.warning("form_not_opened", form="update", error="timeout")
            if self.metrics is not None:
                self.metrics.integration_failed("slack", "SlackFormNotOpened")

    async def on_update_form(self, ack: AsyncAck, body: dict[str, Any], context: dict[str, Any]) -> None:
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
        request_id = _view_id(body) or body.get("trigger_id")
        work = self.incidents.post_update(int(metadata), update, request_id=request_id)
        await self._submitted(ack, body, context, "update", "update", work)

    async def on_stage_form(self, ack: AsyncAck, body: dict[str, Any], context: dict[str, Any]) -> None:
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
        work = self.incidents.change_stage(
            form.incident_id, change, request_id=_view_id(body) or form.trigger_id
        )
        await self._submitted(ack, body, context, "stage", "stage", work)
