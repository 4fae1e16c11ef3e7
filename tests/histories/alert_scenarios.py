"""The alert scenarios of tests/histories/record.py: `alert-lifecycle` (an Alertmanager group declares, grows,
resolves) and `alert-storm` (past the cap, groups join the storm incident; one is split out)."""

from __future__ import annotations

from typing import Any

from domain.naming import directory_workflow_id
from tests.conftest import RESPONDER, Stack
from tests.test_incident_workflow import wait_quiet


async def alert_lifecycle(stack: Stack) -> dict[str, str]:
    """Declared by Alertmanager, re-sent with a new alert, alerts resolved, resolved by a person."""
    from domain.alerts import DEFAULT_SEVERITY_MAP, AlertmanagerPayload, from_alertmanager
    from tests.histories.record import _resolve_and_save  # record.py imports this module
    from tests.test_alerts import alertmanager_payload

    def group(*instances: str, status: str = "firing") -> Any:
        payload = AlertmanagerPayload.model_validate(alertmanager_payload(*instances, status=status))
        return from_alertmanager(payload, "alertmanager", DEFAULT_SEVERITY_MAP)

    inc = stack.incidents
    outcome = await inc.handle_alert(group("web-1"))
    assert outcome.incident_id is not None
    incident_id = outcome.incident_id
    await stack.incident_channel(incident_id)
    await inc.handle_alert(group("web-1", "web-2"))
    await inc.handle_alert(group("web-1", "web-2", status="resolved"))
    await wait_quiet(stack, incident_id)
    return await _resolve_and_save(stack, incident_id, "autoscaled", "alert-lifecycle")


async def alert_storm(stack: Stack) -> dict[str, str]:
    """A cap of one incident from alerts: the first group declares, the next two make and join the alert
    storm, one re-sent; `/incident split 2` gives the third its own incident; the storm is resolved. The
    storm incident's and the directory's histories."""
    from domain.alerts import DEFAULT_SEVERITY_MAP, AlertmanagerPayload, from_alertmanager
    from tests.histories.record import _resolve_and_save, _save  # record.py imports this module
    from tests.test_alert_storm import group

    def alerts(n: int) -> Any:
        return from_alertmanager(
            AlertmanagerPayload.model_validate(group(n)), "alertmanager", DEFAULT_SEVERITY_MAP
        )

    inc = stack.incidents
    first = await inc.handle_alert(alerts(1))
    storm = await inc.handle_alert(alerts(2))
    assert first.incident_id == 1 and storm.incident_id == 2 and storm.action == "declared"
    await inc.handle_alert(alerts(3))
    await inc.handle_alert(alerts(2))
    await stack.incident_channel(2)
    await wait_quiet(stack, 2)
    await inc.split(2, 2, RESPONDER)
    await wait_quiet(stack, 2)
    directory = directory_workflow_id(stack.settings.task_queue)
    return {
        **await _resolve_and_save(stack, 2, "storm over", "alert-storm"),
        **await _save(stack.temporal.client, directory, "alert-storm"),
    }
