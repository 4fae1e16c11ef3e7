"""Alert groups reaching incidents (`Incidents.handle_alert`): a repeat joins its open incident, a new key
declares one, and past the storm cap (domain.storm) new keys join the alert storm incident, whose groups
`/incident split <n>` gives incidents of their own."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from temporalio.exceptions import WorkflowAlreadyStartedError

from domain.alerts import AlertGroup
from domain.models import Declaration, DedupGrant, StormSplit
from domain.storm import STORM_TITLE, StormGroup, split_candidate
from domain.vocab import incident_label
from starter import logs
from starter.errors import CommandRejected, IncidentBusy, IncidentNotFound
from workflows.directory import IncidentDirectoryWorkflow
from workflows.incident import IncidentWorkflow

if TYPE_CHECKING:
    from starter.incidents import Incidents


@dataclass(frozen=True)
class AlertOutcome:
    action: Literal["declared", "joined", "ignored"]
    incident_id: int | None


async def handle_alert(inc: Incidents, group: AlertGroup, resolve_mitigates: bool) -> AlertOutcome:
    """Declares an incident for a firing alert group, or joins the open one with the same dedup key.

    A resolved group only ever reaches an open incident; it never declares or resolves one.
    """
    key = group.dedup_key
    # Repeats are the common case (Alertmanager re-sends every repeat_interval): a query and a signal.
    # Only a key the directory does not know yet costs an update there (at most 10 run at once).
    found = await inc.directory.query(IncidentDirectoryWorkflow.incident_for_key, key) if key else None
    if found is not None:
        try:
            await inc._call(found, "signal", IncidentWorkflow.alerts_fired, group)
            return AlertOutcome("joined", found)
        except IncidentNotFound:
            pass  # it has just resolved; claiming below tells us when its key is free
    if group.status == "resolved":
        return AlertOutcome("ignored", None)
    claimed = key or uuid.uuid4().hex  # a keyless alert counts toward the storm cap under a key of its own
    if key or inc.storm:
        grant = await inc.directory.claim(claimed, inc.storm)
    else:
        grant = DedupGrant(incident_id=await inc.directory.allocate_id(), created=True)
    logs.bind_incident(grant.incident_id, inc.task_queue)
    if grant.storm:  # the storm's digest tells groups apart by key: a keyless one gets the key it claimed
        return await _join_storm(inc, grant, group.model_copy(update={"dedup_key": claimed}))
    declaration = _declaration(
        inc,
        grant.incident_id,
        group,
        dedup_key=key,
        alert=group,
        resolve_mitigates=resolve_mitigates,
    )
    try:
        await inc._start(declaration, alerts=group if key else None)
    except WorkflowAlreadyStartedError:
        # That incident has just resolved and the directory has not yet freed its key.
        label = incident_label(grant.incident_id)
        raise IncidentBusy(f"{label} is closing; send the alert again") from None
    if grant.created:
        inc._declared(declaration)
    return AlertOutcome("declared" if grant.created else "joined", grant.incident_id)


async def _join_storm(inc: Incidents, grant: DedupGrant, group: AlertGroup) -> AlertOutcome:
    """The group joins the alert storm incident: signal-with-start, so the first one starts it."""
    storm = _declaration(inc, grant.incident_id, group, title=STORM_TITLE, storm=True)
    try:
        await inc._start(storm, alerts=group)
    except WorkflowAlreadyStartedError:  # the storm incident has just been resolved
        raise IncidentBusy(f"{incident_label(grant.incident_id)} is closing; send the alert again") from None
    if grant.created:
        inc._declared(storm)
    return AlertOutcome("declared" if grant.created else "joined", grant.incident_id)


async def split(inc: Incidents, incident_id: int, number: int, actor: str | None) -> str:
    """`/incident split <n>` in the alert storm's channel: group n gets an incident of its own, and its
    next notifications go there."""
    state = await inc.state(incident_id)
    if state.storm is None:
        raise CommandRejected("Only the alert storm incident has alert groups to split out.")
    group = split_candidate(state.storm, number)
    if group is None:
        raise CommandRejected(
            f"There is no alert group {number} left to split out; the overview numbers the groups."
        )
    new_id = await inc.directory.split(group.key)
    declaration = _declaration(inc, new_id, group, declared_by=actor, dedup_key=group.key)
    await inc._start(declaration)
    inc._declared(declaration)
    split = StormSplit(key=group.key, incident_id=new_id, actor=actor)
    return await inc._update(incident_id, IncidentWorkflow.split_group, split, None)


def _declaration(
    inc: Incidents, incident_id: int, group: AlertGroup | StormGroup, **fields: Any
) -> Declaration:
    """An incident declared for an alert group (or the storm, or a group split out of it): its title,
    severity and source unless `fields` say otherwise, and this deployment's broadcast and warroom.toml."""
    return Declaration(
        **{
            "incident_id": incident_id,
            "title": group.title,
            "severity": group.severity,
            "source": group.source,
            "broadcast_channels": inc._with(inc.broadcast_channels, group.severity),
            "call_provider": inc.call_provider,
            **inc.config.declaration_fields(),
            **fields,
        }
    )
