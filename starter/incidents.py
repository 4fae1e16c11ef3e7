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
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
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
    DedupClaim,
    DedupGrant,
    DirectoryState,
    FollowupAdd,
    FollowupTicket,
    IncidentInput,
    IncidentState,
    ReactionAdded,
    ReminderCancel,
    ReminderOrder,
    ReminderRecord,
    ReminderView,
    Resolution,
    RoleChange,
    SeverityChange,
    StageChange,
    StatusUpdate,
    TicketOrder,
    TimelineEvent,
)
from domain.naming import DIRECTORY_WORKFLOW_ID, incident_workflow_id
from domain.settings import Settings
from domain.vocab import Severity, Stage, Status, incident_label
from starter import logs
from workflows import attributes
from workflows.directory import IncidentDirectoryWorkflow
from workflows.incident import IncidentWorkflow
from workflows.reminder import ReminderWorkflow, reminder_workflow_id

DIRECTORY_ATTEMPTS = 4  # 0.1 + 0.2 + 0.4 s of backoff at most
PERMANENT_RPC = frozenset(
    {RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNAUTHENTICATED}
)


class IncidentError(Exception):
    """A problem the caller can act on; the message is safe to show a user."""


class IncidentNotFound(IncidentError):
    pass


class CommandRejected(IncidentError):
    pass


class IncidentBusy(IncidentError):
    """A transient state worth retrying (e.g. an alert key that is being released)."""


@dataclass(frozen=True)
class AlertOutcome:
    action: Literal["declared", "joined", "ignored"]
    incident_id: int | None


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
    ) -> None:
        self.client = client
        self.task_queue = task_queue
        self.broadcast_channels = broadcast_channels
        self.on_declared = on_declared
        self.config = config or WarroomConfig()
        self.call_provider = call_provider  # a call for every incident declared here
        self._channels: dict[str, int] = {}  # channel -> incident; never changes once known
        self._claims: dict[str, asyncio.Future[DedupGrant]] = {}

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
        )

    # --- declaring ------------------------------------------------------------------------------------

    async def allocate_id(self, request_id: str | None = None) -> int:
        """The next incident ID; the same `request_id` again gets the same ID (see `declare`)."""
        update_id = None if request_id is None else f"allocate-{request_id}"
        return await self._directory_update(IncidentDirectoryWorkflow.allocate_id, update_id=update_id)

    async def _directory_update(self, update: Any, *args: Any, update_id: str | None = None) -> Any:
        """An update on the directory, starting it first if this is the deployment's first incident.

        An update that lands while the directory continues as new is aborted by the server; it is retried
        a few times (within Slack's 3 s). A retried allocation may skip an ID, never reuse one. With
        `update_id` every attempt is the same update: Temporal applies it once per directory run and hands
        a repeat the first one's result.
        """
        for attempt in range(DIRECTORY_ATTEMPTS):
            start = WithStartWorkflowOperation(  # one operation object per call
                IncidentDirectoryWorkflow.run,
                DirectoryState(),
                id=DIRECTORY_WORKFLOW_ID,
                task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            )
            try:
                return await self.client.execute_update_with_start_workflow(
                    update, *args, start_workflow_operation=start, id=update_id
                )
            except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
                permanent = isinstance(err, RPCError) and err.status in PERMANENT_RPC
                task = asyncio.current_task()  # cancelled: our caller's deadline, not the server, ended it
                cancelled = task is not None and task.cancelling() > 0
                if permanent or cancelled or attempt == DIRECTORY_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.1 * 2**attempt)
        raise AssertionError("unreachable")

    async def declare(
        self,
        title: str,
        severity: Severity,
        *,
        private: bool = False,
        declared_by: str | None = None,
        source: str = "api",
        broadcast_channels: tuple[str, ...] | None = None,
        slash_command: str = "/incident",
        call_provider: CallProviderName | Literal["none"] | None = None,
        request_id: str | None = None,
    ) -> int:
        """Starts a new incident and returns its ID; the channel and overviews follow within seconds.

        `call_provider`: the call it gets at once; None means this deployment's default, "none" no call.
        `request_id` (e.g. a Slack form's view ID) makes a repeated request declare once: it is the ID of
        the directory update that allocates the incident's ID, so a repeat gets the same incident, and
        finding that incident already started means this request started it. The repeat is not counted
        in `on_declared` again. (A repeat after the directory continued as new, every few hundred
        incidents, would get a new ID.)
        """
        incident_id = await self.allocate_id(request_id)
        logs.bind_incident(incident_id)
        # A private incident's broadcast channels only ever see that it exists and who leads it.
        channels = self.broadcast_channels if broadcast_channels is None else broadcast_channels
        declaration = Declaration(
            incident_id=incident_id,
            title=title,
            severity=severity,
            private=private,
            declared_by=declared_by,
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
            id=incident_workflow_id(incident_id),
            task_queue=self.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=attributes.initial(declaration),
            memo={attributes.MEMO_TITLE: declaration.title},
            static_summary=f"{incident_label(incident_id)}: {declaration.title}"[:200],
            **extra,
        )

    async def handle_alert(self, group: AlertGroup, *, resolve_mitigates: bool = False) -> AlertOutcome:
        """Declares an incident for a firing alert group, or joins the open one with the same dedup key.

        A resolved group only ever reaches an open incident; it never declares or resolves one.
        """
        key = group.dedup_key
        # Repeats are the common case (Alertmanager re-sends every repeat_interval): a query and a signal.
        # Only a key the directory does not know yet costs an update there (at most 10 run at once).
        found = await self._query_directory(IncidentDirectoryWorkflow.incident_for_key, key) if key else None
        if found is not None:
            try:
                await self._call(found, "signal", IncidentWorkflow.alerts_fired, group)
                return AlertOutcome("joined", found)
            except IncidentNotFound:
                pass  # it has just resolved; claiming below tells us when its key is free
        if group.status == "resolved":
            return AlertOutcome("ignored", None)
        grant = (
            await self._claim(key) if key else DedupGrant(incident_id=await self.allocate_id(), created=True)
        )
        logs.bind_incident(grant.incident_id)
        declaration = Declaration(
            incident_id=grant.incident_id,
            title=group.title,
            severity=group.severity,
            source=group.source,
            broadcast_channels=self._with(self.broadcast_channels, group.severity),
            dedup_key=key,
            alert=group,
            resolve_mitigates=resolve_mitigates,
            call_provider=self.call_provider,
            **self.config.declaration_fields(),
        )
        try:
            await self._start(declaration, alerts=group if key else None)
        except WorkflowAlreadyStartedError:
            # That incident has just resolved and the directory has not yet freed its key.
            label = incident_label(grant.incident_id)
            raise IncidentBusy(f"{label} is closing; send the alert again") from None
        if grant.created:
            self._declared(declaration)
        return AlertOutcome("declared" if grant.created else "joined", grant.incident_id)

    async def _claim(self, key: str) -> DedupGrant:
        """One directory update per key at a time in this process: a burst of identical alerts shares it
        (the server runs at most 10 updates per workflow at once)."""
        pending = self._claims.get(key)
        if pending is not None:  # a follower: the incident is the leader's, declared once
            grant = await asyncio.shield(pending)
            return DedupGrant(incident_id=grant.incident_id, created=False)
        pending = asyncio.ensure_future(self._claim_now(key))
        self._claims[key] = pending
        pending.add_done_callback(lambda _: self._claims.pop(key, None))
        return await asyncio.shield(pending)

    async def _claim_now(self, key: str) -> DedupGrant:
        grant: DedupGrant = await self._directory_update(IncidentDirectoryWorkflow.claim, DedupClaim(key=key))
        return grant

    async def _query_directory(self, query: Any, arg: str) -> Any:
        handle = self.client.get_workflow_handle(DIRECTORY_WORKFLOW_ID)
        try:
            return await handle.query(query, arg)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            raise

    # --- finding ----------------------------------------------------------------------------------------

    async def for_channel(self, channel_id: str, channel_name: str | None = None) -> int | None:
        """The incident whose channel this is: by channel ID (so renames do not matter) through the
        directory; by the `inc-<id>-` name, verified against that incident, in the moment before the
        directory has recorded a brand-new channel."""
        if channel_id in self._channels:
            logs.bind_incident(self._channels[channel_id])
            return self._channels[channel_id]
        found = await self._query_directory(IncidentDirectoryWorkflow.incident_for_channel, channel_id)
        if found is None and channel_name:
            found = await self._by_channel_name(channel_id, channel_name)
        if found is not None:
            self._channels[channel_id] = found
            logs.bind_incident(found)
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
        """Incidents from Temporal visibility, newest first."""
        clauses = ["WorkflowType = 'IncidentWorkflow'"]
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
            memo = await wf.memo()
            found.append(
                IncidentSummary(
                    incident_id=int(wf.id.removeprefix("incident-")),
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

    async def set_reminder(
        self, incident_id: int, order: ReminderOrder, request_id: str | None = None
    ) -> str:
        return await self._update(incident_id, IncidentWorkflow.set_reminder, order, request_id)

    async def pending_reminders(self, incident_id: int, user_id: str) -> builtins.list[ReminderRecord]:
        """`user_id`'s reminders from this incident that have not been delivered or cancelled yet."""
        state = await self.state(incident_id)
        mine = [r for r in state.reminders if r.user_id == user_id]
        running = await asyncio.gather(*(self._reminder_running(r.reminder_id) for r in mine))
        return [r for r, pending in zip(mine, running, strict=True) if pending]

    async def _reminder_running(self, reminder_id: str) -> bool:
        handle = self.client.get_workflow_handle(reminder_workflow_id(reminder_id))
        try:
            description = await handle.describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return description.status == WorkflowExecutionStatus.RUNNING

    async def cancel_reminder(self, reminder_id: str, user_id: str, request_id: str | None = None) -> str:
        """Cancels one of `user_id`'s reminders; it works after the incident has resolved, too."""
        handle = self.client.get_workflow_handle(reminder_workflow_id(reminder_id))
        try:
            reply: CommandReply = await handle.execute_update(
                ReminderWorkflow.cancel, ReminderCancel(actor=user_id), id=request_id
            )
        except WorkflowUpdateFailedError as err:
            if isinstance(err.cause, ApplicationError):
                raise CommandRejected(err.cause.message) from None
            raise
        except RPCError as err:
            if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                raise CommandRejected(await self._finished_reminder(reminder_id)) from None
            raise
        return reply.text

    async def _finished_reminder(self, reminder_id: str) -> str:
        """What to say about a reminder that cannot be cancelled: it does not exist, or it has finished."""
        handle = self.client.get_workflow_handle(reminder_workflow_id(reminder_id), result_type=ReminderView)
        try:
            await handle.describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return f"There is no reminder `{reminder_id}`."
            raise
        try:
            view = await handle.result()
        except Exception:  # failed or terminated from the Temporal UI
            return f"Reminder `{reminder_id}` has already ended."
        if view.status == "cancelled":
            return f"Reminder `{reminder_id}` was already cancelled."
        return f"Reminder `{reminder_id}` was already delivered ({view.local})."

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
            logs.bind_incident(incident_id)
        handle = self.client.get_workflow_handle(incident_workflow_id(incident_id))
        label = incident_label(incident_id)
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
            if err.status == RPCStatusCode.FAILED_PRECONDITION:
                raise CommandRejected(f"{label} is already resolved.") from None
            raise
