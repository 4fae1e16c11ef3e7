"""Search attributes and memo that make incidents findable in the Temporal UI and `warroom list`."""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

with workflow.unsafe.imports_passed_through():
    from domain.models import Declaration, IncidentState
    from domain.vocab import Stage, Status

STAGE = SearchAttributeKey.for_keyword("IncidentStage")
SEVERITY = SearchAttributeKey.for_keyword("IncidentSeverity")
STATUS = SearchAttributeKey.for_keyword("IncidentStatus")
COMMANDER = SearchAttributeKey.for_keyword("IncidentCommander")
CHANNEL = SearchAttributeKey.for_keyword("IncidentChannel")
ALL = (STAGE, SEVERITY, STATUS, COMMANDER, CHANNEL)
MEMO_TITLE = "title"


def _values(stage: Stage, severity: str, status: Status, commander: str | None, channel: str | None) -> dict:
    return {
        STAGE: stage.value,
        SEVERITY: severity,
        STATUS: status.value,
        COMMANDER: commander,
        CHANNEL: channel,
    }


def initial(declaration: Declaration) -> TypedSearchAttributes:
    """What the starter sets when it starts the workflow, so a new incident is findable at once."""
    values = _values(Stage.INVESTIGATING, declaration.severity.value, Status.OPEN, None, None)
    return TypedSearchAttributes([SearchAttributePair(k, v) for k, v in values.items() if v is not None])


def sync(s: IncidentState) -> None:
    """Upserts only what changed: every upsert is a history event."""
    wanted = _values(s.stage, s.severity.value, s.status, s.commander, s.channel_id)
    current = workflow.info().typed_search_attributes
    updates = [
        key.value_set(value) if value is not None else key.value_unset()
        for key, value in wanted.items()
        if current.get(key) != value
    ]
    if updates:
        workflow.upsert_search_attributes(updates)
    if workflow.memo_value(MEMO_TITLE, None, type_hint=str) != s.title:
        workflow.upsert_memo({MEMO_TITLE: s.title})
