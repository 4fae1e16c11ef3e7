"""The programmatic API: every Temporal call warroom's ingress and CLI make, in one place.

from starter.incidents import Incidents
incidents = Incidents(client, task_queue="warroom")
incident_id = await incidents.declare("Checkout latency above 2s", Severity.SEV2)
await incidents.post_update(incident_id, StatusUpdate(text="Rolled back"))
"""

from __future__ import annotations

import asyncio
import builtins
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from domain.alerts import AlertGroup
from domain.config import WarroomConfig
from domain.models import (
    BroadcastChange,
    CallProviderName,
    CallStart,
    CommanderChange,
    CommandReply,
    DebriefNote,
    DebriefStart,
    Declaration,
    FollowupAdd,
    FollowupTicket,
    IncidentInput,
    IncidentState,
    ReactionAdded,
    ReminderOrder,
    ReminderRecord,
    Resolution,
    RoleChange,
    SeverityChange,
    StageChange,
    StatusUpdate,
    TicketOrder,
    TimelineEvent,
)
from domain.naming import incident_id_of, incident_workflow_id, incidents_query
from domain.paging import PageOrder
from domain.settings import Settings
from domain.statuspage import PublicRequest
from domain.storm import StormLimit
from domain.vocab import Severity, Stage, Status, incident_label
from starter import incident_alerts, logs
from starter.directory_client import Directory

# The errors callers catch are imported from here too (`from starter.incidents import IncidentError`).
from starter.errors import CommandRejected as CommandRejected
from starter.errors import IncidentBusy as IncidentBusy
from starter.errors import IncidentError as IncidentError
from starter.errors import IncidentNotFound as IncidentNotFound
from starter.incident_alerts import AlertOutcome as AlertOutcome
from starter.reminders import Reminders
from workflows import attributes, details
from workflows.directory import IncidentDirectoryWorkflow
from workflows.incident import IncidentWorkflow

# Temporal did not take a command but the incident is open: tried again after 0.1 s and 0.2 s (inside Slack's
# 3 s), then the caller is told to send it again.
BUSY_ATTEMPTS = 3
BUSY_RPC = frozenset({RPCStatusCode.FAILED_PRECONDITION, RPCStatusCode.RESOURCE_EXHAUSTED})


@dataclass(frozen=True)
class IncidentSummary:
    incident_id: int
    title: str
    stage: str
    severity: str
    status: str
    commander: str | None
    channel_id: str | None
    started: datetime | None


def _provider(choice: CallProviderName | Literal["none"]) -> CallProviderName | None:
    return None if choice == "none" else choice


class Incidents:
    """Declares incidents and sends them commands, through Temporal only.

    Once a call knows its incident, every line logged for the request carries the incident's ID
    (`starter.logs.bind_incident`). `on_declared(severity, source)` runs after each incident started here.
    """

    def __init__(
        self,
        client: Client,
        task_queue: str,
        broadcast_channels: tuple[str, ...] = (),
        on_declared: Callable[[Severity, str], None] | None = None,
        config: WarroomConfig | None = None,
        call_provider: CallProviderName | None = None,
        storm: StormLimit | None = None,
    ) -> None:
        self.client = client
        self.task_queue = task_queue
        self.broadcast_channels = broadcast_channels
        self.on_declared = on_declared
        self.config = config or WarroomConfig()
        self.call_provider = call_provider  # a call for every incident declared here
        self.storm = storm  # storm control for incidents declared from alerts (domain.storm)
        self._channels: dict[str, int] = {}  # channel -> incident; never changes once known
        self.directory = Directory(client, task_queue)
        self.reminders = Reminders(client, task_queue)

    @classmethod
    def from_settings(
        cls, client: Client, settings: Settings, on_declared: Callable[[Severity, str], None] | None = None
    ) -> Incidents:
        return cls(
            client,
            settings.task_queue,
            settings.broadcast_channels,
            on_declared=on_declared,
            config=settings.config,
            call_provider=None if settings.call_provider == "none" else settings.call_provider,
            storm=StormLimit(cap=settings.alert_storm_cap, window_seconds=settings.alert_storm_window)
            if settings.alert_storm_cap
            else None,
        )

    # --- declaring ------------------------------------------------------------------------------------

    async def declare(
        self,
        title: str,
        severity: Severity,
        *,
        private: bool = False,
        declared_by: str | None = None,
        declared_by_name: str | None = None,
        source: str = "api",
        broadcast_channels: tuple[str, ...] | None = None,
        slash_command: str = "/incident",
        call_provider: CallProviderName | Literal["none"] | None = None,
        request_id: str | None = None,
    ) -> int:
        """Starts a new incident and returns its ID; the channel and overviews follow within seconds.

        `declared_by_name`: the declarer's Slack name, shown in the Temporal UI instead of their ID.
        `call_provider`: the call it gets at once; None means this deployment's default, "none" no call.
        `request_id` (e.g. a Slack form's view ID) makes a repeated request declare once: it is the ID of
        the directory update that allocates the incident's ID, so a repeat gets the same incident, and
        finding that incident already started means this request started it. The repeat is not counted
        in `on_declared` again. (A repeat after the directory continued as new, every few hundred
        incidents, would get a new ID.)
        """
        incident_id = await self.directory.allocate_id(request_id)
        logs.bind_incident(incident_id, self.task_queue)
        # A private incident's broadcast channels only ever see that it exists and who leads it.
        channels = self.broadcast_channels if broadcast_channels is None else broadcast_channels
        declaration = Declaration(
            incident_id=incident_id,
            title=title,
            severity=severity,
            private=private,
            declared_by=declared_by,
            declared_by_name=declared_by_name,
            source=source,
            broadcast_channels=channels if private else self._with(channels, severity),
            slash_command=slash_command,
            call_provider=self.call_provider if call_provider is None else _provider(call_provider),
            **self.config.declaration_fields(),
        )
        try:
            await self._start(declaration)
        except WorkflowAlreadyStartedError:
            if request_id is None:
                raise
            return incident_id  # this same request declared it before (its answer was lost or late)
        self._declared(declaration)
        return incident_id

    def _with(self, channels: tuple[str, ...], severity: Severity) -> tuple[str, ...]:
        """`channels` plus warroom.toml's `broadcast.by_severity` channels for `severity`."""
        return tuple(dict.fromkeys(channels + self.config.severity_channels(severity)))

    def _declared(self, declaration: Declaration) -> None:
        if self.on_declared is not None:
            self.on_declared(declaration.severity, declaration.source)

    async def _start(self, declaration: Declaration, alerts: AlertGroup | None = None) -> None:
        """Starts the incident; with `alerts`, signal-with-start: a running incident just gets the signal."""
        incident_id = declaration.incident_id
        extra: dict[str, Any] = {}
        if alerts is not None:
            extra = {"start_signal": "alerts_fired", "start_signal_args": [alerts]}
        await self.client.start_workflow(
            IncidentWorkflow.run,
            IncidentInput(declaration=declaration),
            id=incident_workflow_id(incident_id, self.task_queue),
            task_queue=self.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=attributes.initial(declaration),
            memo={attributes.MEMO_TITLE: declaration.title},
            static_summary=details.declaration_summary(declaration),
            static_details=details.declaration_details(declaration),
            **extra,
        )

    async def handle_alert(self, group: AlertGroup, *, resolve_mitigates: bool = False) -> AlertOutcome:
        """Declares an incident for a firing alert group, or joins the open one with the same dedup key (or
        the alert storm incident): starter.incident_alerts."""
        return await incident_alerts.handle_alert(self, group, resolve_mitigates)

    async def split(self, incident_id: int, number: int, actor: str | None = None) -> str:
        """`/incident split <n>` in the alert storm's channel (starter.incident_alerts)."""
        return await incident_alerts.split(self, incident_id, number, actor)

    # --- finding ----------------------------------------------------------------------------------------

    async def for_channel(self, channel_id: str, channel_name: str | None = None) -> int | None:
        """The incident whose channel this is: by channel ID (so renames do not matter) through the
        directory; by the `inc-<id>-` name, verified against that incident, in the moment before the
        directory has recorded a brand-new channel."""
        if channel_id in self._channels:
            logs.bind_incident(self._channels[channel_id], self.task_queue)
            return self._channels[channel_id]
        found = await self.directory.query(IncidentDirectoryWorkflow.incident_for_channel, channel_id)
        if found is None and channel_name:
            found = await self._by_channel_name(channel_id, channel_name)
        if found is not None:
            self._channels[channel_id] = found
            logs.bind_incident(found, self.task_queue)
        return found

    async def _by_channel_name(self, channel_id: str, channel_name: str) -> int | None:
        named = re.match(r"inc-(\d{1,9})(?:-|$)", channel_name)
        if not named:
            return None
        try:
            state = await self.state(int(named[1]))
        except IncidentNotFound:
            return None
        return state.incident_id if state.channel_id == channel_id else None

    async def state(self, incident_id: int) -> IncidentState:
        return await self._call(incident_id, "query", IncidentWorkflow.state)

    async def timeline(self, incident_id: int) -> list[TimelineEvent]:
        return await self._call(incident_id, "query", IncidentWorkflow.timeline)

    async def list(
        self, stage: Stage | None = None, severity: Severity | None = None, status: Status | None = None
    ) -> list[IncidentSummary]:
        """This deployment's incidents (its task queue's) from Temporal visibility, newest first."""
        clauses = [incidents_query(self.task_queue)]
        for key, value in (
            (attributes.STAGE, stage),
            (attributes.SEVERITY, severity),
            (attributes.STATUS, status),
        ):
            if value is not None:
                clauses.append(f"{key.name} = '{value.value}'")
        found = []
        async for wf in self.client.list_workflows(" AND ".join(clauses)):
            sa = wf.typed_search_attributes
            if (incident_id := incident_id_of(wf.id)) is None:  # not warroom's (e.g. started by hand)
                continue
            memo = await wf.memo()
            found.append(
                IncidentSummary(
                    incident_id=incident_id,
                    title=str(memo.get(attributes.MEMO_TITLE, "")),
                    stage=sa.get(attributes.STAGE) or "",
                    severity=sa.get(attributes.SEVERITY) or "",
                    status=sa.get(attributes.STATUS) or "",
                    commander=sa.get(attributes.COMMANDER),
                    channel_id=sa.get(attributes.CHANNEL),
                    started=wf.start_time,
                )
            )
        return found

    # --- commands ---------------------------------------------------------------------------------------

    async def change_stage(self, incident_id: int, change: StageChange, request_id: str | None = None) -> str:
        return await self._update(incident_id, IncidentWorkflow.change_stage, change, request_id)

    async def post_update(self, incident_id: int, update: StatusUpdate, request_id: str | None = None) -> str:
        return await self._update(incident_id, IncidentWorkflow.post_update, update, request_id)

    async def change_severity(
        self, incident_id: int, change: SeverityChange, request_id: str | None = None
    ) -> str:
        return await self._update(incident_id, IncidentWorkflow.change_severity, change, request_id)

    async def assign_commander(
        self, incident_id: int, change: CommanderChange, request_id: str | None = None
    ) -> str:
        return await self._update(incident_id, IncidentWorkflow.assign_commander, change, request_id)

    async def change_broadcast(
        self, incident_id: int, change: BroadcastChange, request_id: str | None = None
    ) -> str:
        return await self._update(incident_id, IncidentWorkflow.change_broadcast, change, request_id)

    async def resolve(self, incident_id: int, resolution: Resolution, request_id: str | None = None) -> str:
        return await self._update(incident_id, IncidentWorkflow.resolve, resolution, request_id)

    async def start_call(self, incident_id: int, start: CallStart, request_id: str | None = None) -> str:
        return await self._update(incident_id, IncidentWorkflow.start_call, start, request_id)

    async def create_ticket(self, incident_id: int, order: TicketOrder, request_id: str | None = None) -> str:
        return await self._update(incident_id, IncidentWorkflow.create_ticket, order, request_id)

    async def statuspage(self, incident_id: int, req: PublicRequest, request_id: str | None = None) -> str:
        """A status page preview, or publishing one (IncidentWorkflow.statuspage)."""
        return await self._update(incident_id, IncidentWorkflow.statuspage, req, request_id)

    async def page(self, incident_id: int, order: PageOrder, request_id: str | None = None) -> str:
        return await self._update(incident_id, IncidentWorkflow.page, order, request_id)

    async def set_reminder(
        self, incident_id: int, order: ReminderOrder, request_id: str | None = None
    ) -> str:
        return await self._update(incident_id, IncidentWorkflow.set_reminder, order, request_id)

    async def pending_reminders(self, incident_id: int, user_id: str) -> builtins.list[ReminderRecord]:
        """`user_id`'s reminders from this incident that have not been delivered or cancelled yet."""
        return await self.reminders.pending((await self.state(incident_id)).reminders, user_id)

    async def cancel_reminder(self, reminder_id: str, user_id: str, request_id: str | None = None) -> str:
        """Cancels one of `user_id`'s reminders; it works after the incident has resolved, too."""
        return await self.reminders.cancel(reminder_id, user_id, request_id)

    async def assign_role(self, incident_id: int, change: RoleChange, request_id: str | None = None) -> str:
        return await self._update(incident_id, IncidentWorkflow.assign_role, change, request_id)

    async def add_followup(
        self, incident_id: int, followup: FollowupAdd, request_id: str | None = None
    ) -> str:
        return await self._update(incident_id, IncidentWorkflow.add_followup, followup, request_id)

    async def ticket_followup(
        self, incident_id: int, ticket: FollowupTicket, request_id: str | None = None
    ) -> str:
        return await self._update(incident_id, IncidentWorkflow.ticket_followup, ticket, request_id)

    async def start_debrief(
        self, incident_id: int, start: DebriefStart, request_id: str | None = None
    ) -> str:
        return await self._update(incident_id, IncidentWorkflow.start_debrief, start, request_id)

    async def debrief_note(self, incident_id: int, note: DebriefNote) -> bool:
        """Records a reply in the incident's debrief thread; False (and nothing sent) for any other thread."""
        thread: str | None = await self._call(incident_id, "query", IncidentWorkflow.debrief_thread)
        if thread is None or thread != note.thread_ts:
            return False
        await self._call(incident_id, "signal", IncidentWorkflow.debrief_note, note)
        return True

    async def react(self, incident_id: int, reaction: ReactionAdded) -> None:
        await self._call(incident_id, "signal", IncidentWorkflow.reaction_added, reaction)

    async def _update(self, incident_id: int, update: Any, arg: Any, request_id: str | None) -> str:
        """Runs an update; Slack's trigger/event ID as the update ID makes a retried delivery act once."""
        reply: CommandReply = await self._call(incident_id, "execute_update", update, arg, id=request_id)
        return reply.text

    @staticmethod
    async def _is_closed(handle: Any) -> bool:
        try:
            description = await handle.describe()
        except RPCError:
            return False
        return description.status is not None and description.status != WorkflowExecutionStatus.RUNNING

    async def _call(self, incident_id: int, verb: str, *args: Any, **kwargs: Any) -> Any:
        if verb != "query":  # a query may be checking a candidate (_by_channel_name): not bound yet
            logs.bind_incident(incident_id, self.task_queue)
        handle = self.client.get_workflow_handle(incident_workflow_id(incident_id, self.task_queue))
        label = incident_label(incident_id)
        for attempt in range(BUSY_ATTEMPTS):
            try:
                return await getattr(handle, verb)(*args, **kwargs)
            except WorkflowUpdateFailedError as err:
                cause = err.cause
                if isinstance(cause, ApplicationError):
                    raise CommandRejected(cause.message) from None
                raise
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:
                    if verb != "query" and await self._is_closed(handle):
                        raise CommandRejected(f"{label} is already resolved.") from None
                    raise IncidentNotFound(f"{label} does not exist.") from None
                if err.status not in BUSY_RPC:
                    raise
                if await self._is_closed(handle):
                    raise CommandRejected(f"{label} is already resolved.") from None
                # Not taken: the workflow's last task failed or timed out (an overloaded worker), or ten
                # updates are already in flight. Nothing was applied, so trying again is safe.
                if attempt + 1 < BUSY_ATTEMPTS:
                    await asyncio.sleep(0.1 * 2**attempt)
        raise IncidentBusy(
            f"{label} is busy and did not take this; nothing was changed. Send it again in a moment."
        )
