"""PagerDuty as an alert source: V3 webhooks (incident events) and Events API v2 events, as AlertGroups.

V3 webhooks: one warroom incident per PagerDuty incident (`data.id`). `incident.triggered` declares,
`incident.acknowledged` joins with a note naming who acknowledged, `incident.resolved` is "all resolved";
every other event type is ignored. Severity: priority `P1` -> sev1, else urgency `high` (or none) -> sev2,
`low` -> sev3.

Events API v2 (the format tools send to PagerDuty, sent here instead): `trigger` declares or joins by
`dedup_key` (none: every trigger is a new incident), `resolve` is "all resolved", `acknowledge` is ignored.
`payload.severity` goes through the alert severity map (`critical` -> sev1 ... `info` -> sev4).
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import Field, model_validator

from domain.alerts import (
    AlertGroup,
    AlertItem,
    Labels,
    Loose,
    PagerRef,
    Responder,
    clip,
    hash_key,
    map_severity,
)
from domain.paging import PAGE_PREFIX, directory_key
from domain.vocab import Severity

V3_HANDLED = {"incident.triggered", "incident.acknowledged", "incident.resolved"}


def form(data: Any) -> Literal["v3", "events"]:
    """Which of the two bodies this is: a V3 webhook carries `event`, an Events v2 event `event_action`."""
    if isinstance(data, dict):
        if "event" in data:
            return "v3"
        if "event_action" in data or "routing_key" in data:
            return "events"
    raise ValueError(
        "neither a PagerDuty V3 webhook (an `event` object) nor an Events API v2 event (`event_action`)"
    )


# --- V3 webhooks -----------------------------------------------------------------------------------------


class Reference(Loose):
    """PagerDuty's references (user, service, priority): `summary` is the readable name."""

    id: str = ""
    type: str = ""
    summary: str = ""
    html_url: str = ""


class V3Envelope(Loose):
    """Any V3 webhook, before its event type says whether warroom reads its `data`."""

    class Event(Loose):
        id: str = Field(min_length=1)
        event_type: str = Field(min_length=1)
        resource_type: str = ""
        occurred_at: str = ""

    event: Event


class V3Incident(Loose):
    id: str = Field(min_length=1)
    type: Literal["incident"]
    title: str = Field(min_length=1)
    status: str = ""
    number: int | None = None
    html_url: str = ""
    self_: str = Field(default="", alias="self")
    incident_key: str | None = None
    urgency: Literal["high", "low"] | None = None
    priority: Reference | None = None
    service: Reference | None = None


class V3IncidentEvent(Loose):
    id: str = Field(min_length=1)
    event_type: str
    resource_type: Literal["incident"]
    occurred_at: str = ""
    agent: Reference | None = None
    data: V3Incident


class V3IncidentWebhook(Loose):
    event: V3IncidentEvent


def v3_key(incident: V3Incident) -> str:
    """One warroom incident per PagerDuty incident; one that `/incident page` made (its `incident_key` is the
    page's key) belongs to the incident that paged (domain.paging.directory_key)."""
    key = incident.incident_key or ""
    if key.startswith(PAGE_PREFIX):
        return directory_key("pagerduty", key)
    return hash_key("pagerduty", incident.id)


def v3_severity(incident: V3Incident) -> Severity:
    if incident.priority is not None and incident.priority.summary.strip().upper() == "P1":
        return Severity.SEV1
    return Severity.SEV3 if incident.urgency == "low" else Severity.SEV2


def from_pagerduty_v3(data: Any) -> AlertGroup | None:
    """The webhook as an AlertGroup; None for an event type warroom does not act on (pydantic's
    ValidationError for a handled one without the documented fields)."""
    if V3Envelope.model_validate(data).event.event_type not in V3_HANDLED:
        return None
    event = V3IncidentWebhook.model_validate(data).event
    incident = event.data
    paged = (incident.incident_key or "").startswith(PAGE_PREFIX)
    if event.event_type == "incident.triggered" and paged:
        return None  # `/incident page` made it: its channel already says so
    labels: Labels = {"pagerduty_incident": incident.id}
    if incident.service is not None and incident.service.summary:
        labels["service"] = incident.service.summary
    if incident.urgency:
        labels["urgency"] = incident.urgency
    if incident.priority is not None and incident.priority.summary:
        labels["priority"] = incident.priority.summary
    name = f"[#{incident.number}] {incident.title}" if incident.number is not None else incident.title
    item = AlertItem(
        fingerprint=f"pagerduty:{incident.id}",
        status="firing",
        name=clip(name),
        summary=clip(incident.service.summary if incident.service else "", 300),
        labels=labels,
        url=incident.html_url,
    )
    items: tuple[AlertItem, ...] = (item,)
    responder = None
    if event.event_type == "incident.acknowledged":
        who = event.agent.summary if event.agent and event.agent.summary else "someone"
        ack = AlertItem(
            fingerprint=f"pagerduty-ack:{event.id}",  # a re-sent event says nothing new
            status="firing",
            name=clip(name),
            summary=clip(f"acknowledged in PagerDuty by {who}", 300),
            labels=labels,
            url=incident.html_url,
        )
        items = (ack,)  # the incident itself is already shown
        if event.agent is not None and event.agent.type.startswith("user") and event.agent.id:
            responder = Responder(provider="pagerduty", user_id=event.agent.id, name=event.agent.summary)
    return AlertGroup(
        source="pagerduty",
        dedup_key=v3_key(incident),
        responder=responder,
        status="resolved" if event.event_type == "incident.resolved" else "firing",
        title=clip(incident.title),
        severity=v3_severity(incident),
        alerts=items,
        external_url=incident.html_url,
        pager=None if paged else pager_ref(incident),  # a page is resolved as a page (domain.paging)
    )


def pager_ref(incident: V3Incident) -> PagerRef:
    label = f"#{incident.number}" if incident.number is not None else ""
    return PagerRef(provider="pagerduty", vendor_id=incident.id, label=label, url=incident.html_url)


# --- Events API v2 ---------------------------------------------------------------------------------------


class EventsPayload(Loose):
    summary: str = Field(min_length=1, max_length=1024)
    source: str = Field(min_length=1, max_length=255)
    severity: Literal["critical", "error", "warning", "info"]
    timestamp: str = ""
    component: str = ""
    group: str = ""
    class_: str = Field(default="", alias="class")
    custom_details: dict[str, Any] | str | None = None


class EventsLink(Loose):
    href: str
    text: str = ""


class EventsV2(Loose):
    routing_key: str = Field(min_length=1)
    event_action: Literal["trigger", "acknowledge", "resolve"]
    dedup_key: str | None = Field(default=None, min_length=1, max_length=255)
    payload: EventsPayload | None = None
    client: str = ""
    client_url: str = ""
    links: list[EventsLink] = Field(default_factory=list)

    @model_validator(mode="after")
    def _documented_requirements(self) -> EventsV2:
        if self.event_action == "trigger" and self.payload is None:
            raise ValueError("a trigger event needs `payload` (summary, source, severity)")
        if self.event_action != "trigger" and self.dedup_key is None:
            raise ValueError(f"an {self.event_action} event needs the `dedup_key` of its trigger")
        return self


def from_pagerduty_event(event: EventsV2, mapping: dict[str, Severity]) -> AlertGroup | None:
    """The event as an AlertGroup; None for `acknowledge` (warroom has nothing to do with it)."""
    key = hash_key("pagerduty-events", event.dedup_key) if event.dedup_key else None
    if event.event_action == "acknowledge":
        return None
    if event.event_action == "resolve":
        title = "resolved"  # a resolved group never declares, so this is never shown
        return AlertGroup(
            source="pagerduty-events", dedup_key=key, status="resolved", title=title, severity=Severity.SEV4
        )
    payload = event.payload
    assert payload is not None  # the model requires it for a trigger
    labels = {
        k: v
        for k, v in (("source", payload.source), ("component", payload.component), ("group", payload.group))
        if v
    }
    if payload.class_:
        labels["class"] = payload.class_
    url = event.links[0].href if event.links else event.client_url
    item = AlertItem(
        fingerprint=hashlib.sha256(f"{event.dedup_key}\x00{payload.summary}".encode()).hexdigest()[:16],
        status="firing",
        name=clip(payload.summary),
        summary=clip(f"{payload.severity} from {payload.source}", 300),
        labels=dict(sorted(labels.items())),
        url=url,
    )
    return AlertGroup(
        source="pagerduty-events",
        dedup_key=key,
        status="firing",
        title=clip(payload.summary),
        severity=map_severity(payload.severity, mapping),
        alerts=(item,),
        external_url=url,
    )
