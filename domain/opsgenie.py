"""Opsgenie as an alert source: its outgoing Webhook integration's alert actions, as AlertGroups.

One warroom incident per Opsgenie alert (its `alias`, which Opsgenie also dedups on; the alert ID when there
is none): `Create` declares (a re-delivery joins), `Acknowledge` joins with a note naming who acknowledged,
`Close` is "all resolved"; every other action (AddNote, AddTag, ...) is ignored. Severity from `priority`:
P1 -> sev1, P2 -> sev2, P3 -> sev3, P4 and P5 -> sev4. An alert `/incident page` made carries the page's key
as its alias, so its webhooks join the incident that paged (domain.paging.directory_key).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from domain.alerts import AlertGroup, AlertItem, Labels, Loose, PagerRef, Responder, clip
from domain.paging import PAGE_PREFIX, directory_key
from domain.vocab import Severity

HANDLED = {"Create", "Acknowledge", "Close"}
PRIORITIES = {"P1": Severity.SEV1, "P2": Severity.SEV2, "P3": Severity.SEV3, "P4": Severity.SEV4}


class OpsgenieAlert(Loose):
    alertId: str = Field(min_length=1)
    message: str = Field(min_length=1)
    alias: str = ""
    tinyId: str = ""
    tags: list[str] = Field(default_factory=list)
    priority: Literal["P1", "P2", "P3", "P4", "P5"] = "P3"
    username: str = ""  # who did the action: an Opsgenie username is the user's email
    userId: str = ""
    entity: str = ""
    source: str = ""
    description: str = ""


class OpsgenieWebhook(Loose):
    action: str = Field(min_length=1)
    alert: OpsgenieAlert


def from_opsgenie(data: Any) -> AlertGroup | None:
    """The webhook as an AlertGroup; None for an action warroom does not act on (pydantic's ValidationError
    for a handled one without the documented fields)."""
    if not isinstance(data, dict) or not isinstance(data.get("action"), str):
        raise ValueError("not an Opsgenie webhook: it needs `action` and `alert`")
    if data["action"] not in HANDLED:
        return None
    hook = OpsgenieWebhook.model_validate(data)
    alert = hook.alert
    paged = alert.alias.startswith(PAGE_PREFIX)
    if hook.action == "Create" and paged:
        return None  # `/incident page` made it: its channel already says so
    labels: Labels = {"opsgenie_alert": alert.tinyId or alert.alertId, "priority": alert.priority}
    if alert.entity:
        labels["entity"] = clip(alert.entity, 100)
    if alert.tags:
        labels["tags"] = clip(",".join(alert.tags), 200)
    item = AlertItem(
        fingerprint=f"opsgenie:{alert.alertId}",
        status="firing",
        name=clip(alert.message),
        summary=clip(alert.description or alert.source, 300),
        labels=labels,
    )
    responder = None
    if hook.action == "Acknowledge":
        who = alert.username or "someone"
        item = item.model_copy(
            update={
                "fingerprint": f"opsgenie-ack:{alert.alertId}:{who}",  # one note per person
                "summary": clip(f"acknowledged in Opsgenie by {who}", 300),
            }
        )
        if "@" in alert.username:
            responder = Responder(provider="opsgenie", user_id=alert.userId, email=alert.username)
    return AlertGroup(
        source="opsgenie",
        dedup_key=directory_key("opsgenie", alert.alias or alert.alertId),
        status="resolved" if hook.action == "Close" else "firing",
        title=clip(alert.message),
        severity=PRIORITIES.get(alert.priority, Severity.SEV4),
        description=clip(alert.description, 2000),
        alerts=(item,),
        responder=responder,
        # the alert itself (an alias can name a later alert once this one closes); a page is resolved as one
        pager=None if paged else PagerRef(provider="opsgenie", vendor_id=alert.alertId, label=alert.tinyId),
    )
