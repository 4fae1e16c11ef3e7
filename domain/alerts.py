"""Alert payloads (Alertmanager v4, Grafana, generic JSON) and the one shape warroom turns them into."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.vocab import Severity

MAX_ALERTS_SHOWN = 20  # alerts of a group kept and shown; the rest are counted (`truncated`)
MAX_DISTINCT_LABELS = 4
DEFAULT_SEVERITY_MAP = {"critical": Severity.SEV1, "error": Severity.SEV2, "warning": Severity.SEV3}
FALLBACK_SEVERITY = Severity.SEV4
TITLE_MAX = 150

Labels = dict[str, str]


class Loose(BaseModel):
    """Vendor payloads: unknown fields are ignored, known ones are typed."""

    model_config = ConfigDict(extra="ignore")


# --- Prometheus Alertmanager webhook, version 4 -----------------------------------------------------------


class AlertmanagerAlert(Loose):
    status: Literal["firing", "resolved"]
    labels: Labels = Field(default_factory=dict)
    annotations: Labels = Field(default_factory=dict)
    startsAt: str = ""
    endsAt: str = ""
    generatorURL: str = ""
    fingerprint: str = ""


class AlertmanagerPayload(Loose):
    version: str
    groupKey: str = Field(min_length=1)
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupLabels: Labels = Field(default_factory=dict)
    commonLabels: Labels = Field(default_factory=dict)
    commonAnnotations: Labels = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[AlertmanagerAlert] = Field(min_length=1)
    truncatedAlerts: int = 0

    @field_validator("version")
    @classmethod
    def _version_4(cls, value: str) -> str:
        if value != "4":
            raise ValueError(f"warroom reads Alertmanager webhook version 4, not {value!r}")
        return value


# --- Grafana alerting webhook (same core as Alertmanager's, plus a few fields) ------------------------------


class GrafanaAlert(AlertmanagerAlert):
    silenceURL: str = ""
    dashboardURL: str = ""
    panelURL: str = ""


class GrafanaPayload(Loose):
    groupKey: str = Field(min_length=1)
    status: Literal["firing", "resolved"]
    receiver: str = ""
    orgId: int | None = None
    groupLabels: Labels = Field(default_factory=dict)
    commonLabels: Labels = Field(default_factory=dict)
    commonAnnotations: Labels = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[GrafanaAlert] = Field(min_length=1)
    truncatedAlerts: int = 0
    title: str = ""


# --- Generic JSON ----------------------------------------------------------------------------------------


class GenericAlert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=TITLE_MAX)
    severity: str = "sev3"
    dedup_key: str | None = Field(default=None, min_length=1, max_length=500)
    description: str = Field(default="", max_length=3000)
    source: str = Field(default="generic", max_length=100)
    url: str = Field(default="", max_length=2000)
    labels: Labels = Field(default_factory=dict)
    status: Literal["firing", "resolved"] = "firing"


# --- What warroom keeps of an alert group ------------------------------------------------------------


class AlertItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    fingerprint: str
    status: Literal["firing", "resolved"]
    name: str
    summary: str = ""
    labels: Labels = Field(default_factory=dict)
    url: str = ""
    distinct: Labels = Field(default_factory=dict)  # the labels that tell it from the rest of its group


class Responder(BaseModel):
    """Who acknowledged a page in the pager (PagerDuty user ID, or Opsgenie's username, its email)."""

    model_config = ConfigDict(frozen=True)

    provider: Literal["pagerduty", "opsgenie"]
    user_id: str = ""
    email: str = ""
    name: str = ""


class PagerRef(BaseModel):
    """The PagerDuty incident (`data.id` of a V3 webhook) or Opsgenie alert (`alert.alertId`) a notification
    is about, as the webhook names it: resolving the warroom incident resolves it (domain.paging)."""

    model_config = ConfigDict(frozen=True)

    provider: Literal["pagerduty", "opsgenie"]
    vendor_id: str
    label: str = ""  # `#2` (PagerDuty's number) or Opsgenie's tiny ID, for the channel's words
    url: str = ""


class AlertGroup(BaseModel):
    """One notification, normalised: crosses into the workflow (no secrets, bounded size)."""

    model_config = ConfigDict(frozen=True)

    source: str  # alertmanager, grafana, or the generic payload's `source`
    dedup_key: str | None  # hashed; None: every notification declares a new incident
    status: Literal["firing", "resolved"]
    title: str
    severity: Severity
    description: str = ""
    alerts: tuple[AlertItem, ...] = ()
    external_url: str = ""
    truncated: int = 0  # alerts left out of `alerts`
    responder: Responder | None = None  # an acknowledgement: who, so a paged incident can invite them
    pager: PagerRef | None = None  # a PagerDuty incident / Opsgenie alert warroom did not page itself


def hash_key(source: str, raw: str) -> str:
    """Dedup keys can carry label values; the directory only ever sees a digest."""
    return hashlib.sha256(f"{source}\x00{raw}".encode()).hexdigest()[:32]


def map_severity(label: str | None, mapping: dict[str, Severity]) -> Severity:
    if label is None:
        return FALLBACK_SEVERITY
    label = label.strip().lower()
    if label in {s.value for s in Severity}:
        return Severity(label)
    return mapping.get(label, FALLBACK_SEVERITY)


def clip(text: str, limit: int = TITLE_MAX) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _item(alert: AlertmanagerAlert, shared: Labels) -> AlertItem:
    labels = dict(sorted(alert.labels.items()))
    fingerprint = alert.fingerprint or hashlib.sha256(json.dumps(labels).encode()).hexdigest()[:16]
    summary = alert.annotations.get("summary") or alert.annotations.get("description") or ""
    distinct = {k: v for k, v in labels.items() if k != "alertname" and shared.get(k) != v}
    return AlertItem(
        fingerprint=fingerprint,
        status=alert.status,
        name=alert.labels.get("alertname", "alert"),
        summary=clip(summary, 300),
        labels=labels,
        url=alert.generatorURL,
        distinct=dict(list(distinct.items())[:MAX_DISTINCT_LABELS]),
    )


def _shared_labels(alerts: list[AlertmanagerAlert] | list[GrafanaAlert]) -> Labels:
    """The labels every alert of the group carries with the same value (what Alertmanager's commonLabels
    holds; worked out here, as not every sender fills it in). A group of one shares all of its labels."""
    shared = dict(alerts[0].labels)
    for alert in alerts[1:]:
        shared = {k: v for k, v in shared.items() if alert.labels.get(k) == v}
    return shared


def from_alertmanager(
    payload: AlertmanagerPayload | GrafanaPayload, source: str, mapping: dict[str, Severity]
) -> AlertGroup:
    first = payload.alerts[0]
    name = payload.commonLabels.get("alertname") or first.labels.get("alertname") or "Alert"
    summary = payload.commonAnnotations.get("summary") or first.annotations.get("summary") or ""
    title = f"{name}: {summary}" if summary else name
    severity_label = payload.commonLabels.get("severity") or first.labels.get("severity")
    shared = _shared_labels(payload.alerts)
    items = [_item(a, shared) for a in payload.alerts[:MAX_ALERTS_SHOWN]]
    return AlertGroup(
        source=source,
        dedup_key=hash_key(source, payload.groupKey),
        status=payload.status,
        title=clip(title),
        severity=map_severity(severity_label, mapping),
        description=clip(payload.commonAnnotations.get("description", ""), 3000),
        alerts=tuple(items),
        external_url=payload.externalURL,
        truncated=len(payload.alerts) - len(items) + payload.truncatedAlerts,
    )


def from_generic(alert: GenericAlert, mapping: dict[str, Severity]) -> AlertGroup:
    labels = dict(sorted(alert.labels.items()))
    item = AlertItem(
        fingerprint=hashlib.sha256(json.dumps([alert.title, labels]).encode()).hexdigest()[:16],
        status=alert.status,
        name=clip(alert.title),
        summary=clip(alert.description, 300),
        labels=labels,
        url=alert.url,
    )
    return AlertGroup(
        source=alert.source,
        dedup_key=hash_key("generic", alert.dedup_key) if alert.dedup_key else None,
        status=alert.status,
        title=clip(alert.title),
        severity=map_severity(alert.severity, mapping),
        description=alert.description,
        alerts=(item,),
        external_url=alert.url,
    )


def describe_alerts(items: list[AlertItem]) -> str:
    """`2 alerts firing: HighLatency — p99 over 2s; ...` for the incident channel (plain text)."""
    head = f"{len(items)} alert{'s' if len(items) != 1 else ''} firing"
    lines = [_line(a) for a in items[:MAX_ALERTS_SHOWN]]
    more = f" (+{len(items) - MAX_ALERTS_SHOWN} more)" if len(items) > MAX_ALERTS_SHOWN else ""
    return f"{head}{more}: " + "; ".join(lines)


def _line(alert: AlertItem) -> str:
    """`HighErrorRate (instance=web-7) — Checkout 5xx above 5%`: which one, not only what kind."""
    which = ", ".join(f"{k}={v}" for k, v in alert.distinct.items())
    name = f"{alert.name} ({which})" if which else alert.name
    return f"{name} — {alert.summary}" if alert.summary else name


def parse_severity_map(text: str) -> dict[str, Severity]:
    """`critical=sev1,error=sev2` -> mapping; a bad entry raises ValueError naming it."""
    mapping: dict[str, Severity] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        label, sep, severity = entry.partition("=")
        if not sep or severity.strip().lower() not in {s.value for s in Severity}:
            raise ValueError(f"WARROOM_ALERT_SEVERITY_MAP entry {entry!r} must look like critical=sev1")
        mapping[label.strip().lower()] = Severity(severity.strip().lower())
    return mapping
