"""Atlassian Statuspage (REST API v1): opens, updates and resolves the public incident of an incident.

Idempotency: every incident warroom opens or changes carries `metadata.warroom.key`, the order's key. An
order retried after an attempt whose answer never came first looks for its own work: a create lists the
page's unresolved incidents and reuses the one carrying its key (never two status page incidents), an
update or resolve reads the incident and skips the change if it already carries its key (never the same
public update twice). The API key is read here, from the worker's settings; it never travels through
workflow history, and failures carry Statuspage's short error text only, with the key redacted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import aiohttp
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.vendor_errors import not_configured
from activities.vendor_http import VendorHttp
from domain.settings import Settings
from domain.statuspage import NAME_MAX, PublicOrder, StatuspageInfo, StatuspageRequest

VENDOR = "Statuspage"
TIMEOUT = aiohttp.ClientTimeout(total=15)
AUTH_ADVICE = "check STATUSPAGE_API_KEY, an organization API key listed under API info in Statuspage"
CONFIG_ADVICE = "check STATUSPAGE_PAGE_ID and the component IDs in STATUSPAGE_COMPONENTS"
MARKER = (
    "warroom"  # the metadata object warroom's incidents carry: {"warroom": {"key": ..., "workflow": ...}}
)


def request_body(order: PublicOrder, workflow_id: str) -> dict[str, Any]:
    """The `incident` object of a create or update: only what a person wrote for the page, or a neutral
    line; component statuses; the order's key as metadata."""
    fields: dict[str, Any] = {
        "status": order.status,
        "body": order.body,
        "metadata": {MARKER: {"key": order.key, "workflow": workflow_id}},
    }
    if order.action == "create":
        fields["name"] = order.name[:NAME_MAX]
        fields["deliver_notifications"] = True
    if order.components:
        fields["component_ids"] = [c.component_id for c in order.components]
        fields["components"] = {
            c.component_id: "operational" if order.action == "resolve" else c.status for c in order.components
        }
    return {"incident": fields}


def carries(incident: Any, key: str) -> bool:
    """The incident records the order `key` (in warroom's metadata object)."""
    meta = incident.get("metadata") if isinstance(incident, dict) else None
    mine = meta.get(MARKER) if isinstance(meta, dict) else None
    return isinstance(mine, dict) and mine.get("key") == key


def info(incident: Any) -> StatuspageInfo:
    if not isinstance(incident, dict) or not incident.get("id"):
        raise ApplicationError("Statuspage answered without the incident's ID", type="StatuspageUnavailable")
    shortlink = incident.get("shortlink")
    return StatuspageInfo(
        page_incident_id=str(incident["id"]),
        shortlink=str(shortlink) if shortlink else None,
        status=str(incident.get("status") or ""),
    )


def _error_text(data: Any) -> str:
    said = data.get("message") or data.get("error") if isinstance(data, dict) else ""
    return " ".join(str(said or "").split())


class _StatuspageApi:
    """JSON calls to one page; failures become activities.vendor_errors failures."""

    def __init__(self, session: aiohttp.ClientSession, settings: Settings) -> None:
        assert settings.statuspage_api_key and settings.statuspage_page_id
        self._session = session
        page = quote(settings.statuspage_page_id.strip(), safe="")
        self._base = f"{settings.statuspage_api_url.rstrip('/')}/pages/{page}"
        self._key = settings.statuspage_api_key.get_secret_value()
        self._headers = {"Accept": "application/json", "Authorization": f"OAuth {self._key}"}
        self._http = VendorHttp(VENDOR, self._key, _error_text, AUTH_ADVICE, CONFIG_ADVICE)

    async def call(self, method: str, path: str, what: str, body: dict[str, Any] | None = None) -> Any:
        answer = await self._http.exchange(
            self._session,
            method,
            self._base + path,
            what,
            headers=self._headers,
            client_timeout=TIMEOUT,
            body=body,
        )
        if answer.status >= 400:
            raise self._http.failure(what, answer) from None
        return answer.data


class StatuspageActivities:
    """Publishes an incident's orders on the status page; the session is shared when given."""

    provider = "statuspage"  # the label its failures are counted under (activities.telemetry)

    def __init__(self, settings: Settings, session: aiohttp.ClientSession | None = None) -> None:
        self._settings = settings
        self._session = session

    @asynccontextmanager
    async def _api(self) -> AsyncIterator[_StatuspageApi]:
        if self._session is not None:
            yield _StatuspageApi(self._session, self._settings)
            return
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            yield _StatuspageApi(session, self._settings)

    @activity.defn
    async def publish_statuspage(self, req: StatuspageRequest) -> StatuspageInfo:
        """Creates, updates or resolves the page incident; on a retry, finds what an earlier attempt did."""
        missing = self._settings.missing_for("statuspage")
        if missing:
            raise not_configured(VENDOR, missing)
        order = req.order
        retry = activity.info().attempt > 1
        body = request_body(order, activity.info().workflow_id or "")
        async with self._api() as api:
            if order.action == "create":
                result = await self._earlier_create(api, order.key) if retry else None
                reused = result is not None
                if result is None:
                    result = await api.call("POST", "/incidents", "creating the incident", body)
            else:
                if not req.page_incident_id:
                    raise ApplicationError(
                        "no status page incident to update", type="StatuspageRejected", non_retryable=True
                    )
                path = f"/incidents/{quote(req.page_incident_id, safe='')}"
                result = await api.call("GET", path, "reading the incident") if retry else None
                reused = carries(result, order.key)
                if not reused:
                    result = await api.call("PATCH", path, "updating the incident", body)
        published = info(result)
        activity.logger.info(
            "statuspage incident published",
            extra={
                "incident_id": req.incident_id,
                "action": order.action,
                "page_incident": published.page_incident_id,
                "reused": reused,
            },
        )
        return published

    async def _earlier_create(self, api: _StatuspageApi, key: str) -> Any:
        """The unresolved page incident an earlier attempt created for this order, if any."""
        listed = await api.call(
            "GET", "/incidents/unresolved", "looking for an incident an earlier attempt made"
        )
        for incident in listed if isinstance(listed, list) else []:
            if carries(incident, key):
                return incident
        return None
