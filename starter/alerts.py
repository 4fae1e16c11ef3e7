"""`POST /alerts/alertmanager`, `/alerts/grafana`, `/alerts` (and `/alerts/pagerduty`, in
starter.alerts_pagerduty): monitoring declares and joins incidents.

Every problem with a request is a 4xx JSON answer naming it. 5xx only when Temporal cannot be reached
(Alertmanager and Grafana retry on 5xx), never once the incident was started.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from aiohttp import web
from pydantic import ValidationError
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError

from domain.alerts import (
    AlertGroup,
    AlertmanagerPayload,
    GenericAlert,
    GrafanaPayload,
    from_alertmanager,
    from_generic,
)
from domain.settings import Settings
from domain.vocab import incident_label
from starter.incidents import IncidentBusy, IncidentError, Incidents

log = structlog.get_logger("warroom.alerts")

TEMPORAL_DEADLINE = 10.0  # seconds before we answer 503 and let the sender retry
# Alert notifications handled at once by this process (each may hold a body of up to ALERT_MAX_BODY in
# memory). More wait up to SLOT_WAIT for a turn, enough for a burst while Temporal answers; when it does not,
# the sender is told to retry rather than work piling up behind it.
MAX_IN_FLIGHT = 32
SLOT_WAIT = 2.0
RETRY_AFTER = 10  # seconds, in every 503's Retry-After
GRAFANA_MAX_AGE = 300
# Alertmanager sends a whole group in one request (about 500 bytes an alert, without limit unless the
# receiver sets `max_alerts`) and treats 413 as final: take any group a sender can make, keep what is shown.
ALERT_MAX_BODY = 16 * 1024 * 1024
TOO_LARGE = (
    "the body is larger than 16 MiB; set `max_alerts` in the sender's webhook configuration"
    " (warroom shows 20 alerts of a group and counts the rest)"
)
UNAUTHORIZED = "missing or wrong bearer token: send `Authorization: Bearer $WARROOM_ALERT_TOKEN`"
OPEN_ON_PURPOSE = "or WARROOM_ALERTS_UNAUTHENTICATED=true to take alerts from anyone who can reach this port"
CLOSED = {
    "bearer": (
        f"this alert route is closed: set WARROOM_ALERT_TOKEN (sent as a bearer token), {OPEN_ON_PURPOSE}"
    ),
    "grafana": (
        "this alert route is closed: set WARROOM_GRAFANA_SECRET (Grafana's HMAC signature) or"
        f" WARROOM_ALERT_TOKEN (sent as a bearer token), {OPEN_ON_PURPOSE}"
    ),
    "pagerduty": (
        "this alert route is closed: set PAGERDUTY_WEBHOOK_SECRET (the V3 webhook's signing secret),"
        " PAGERDUTY_ROUTING_KEY (Events API v2) or WARROOM_ALERT_TOKEN (sent as a bearer token),"
        f" {OPEN_ON_PURPOSE}"
    ),
    "opsgenie": (
        "this alert route is closed: set OPSGENIE_WEBHOOK_TOKEN (a bearer token in Opsgenie's webhook)"
        f" or WARROOM_ALERT_TOKEN, {OPEN_ON_PURPOSE}"
    ),
}


class Refused(Exception):
    """Raised while parsing a body whose sender turns out not to be allowed (the body says how to check)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error(status: int, message: str, **extra: Any) -> web.Response:
    headers = {"Retry-After": str(RETRY_AFTER)} if status == 503 else None
    return web.json_response({"ok": False, "error": message, **extra}, status=status, headers=headers)


async def _read(request: web.Request, limit: int) -> bytes | None:
    """The body, read as it arrives; None once it passes `limit` (the rest is not read)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(256 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def read_body(request: web.Request) -> bytes | web.Response:
    """The JSON body's bytes, or the 4xx answer for a body that is not JSON content or too large."""
    if request.content_type != "application/json":
        return _error(415, f"send JSON (application/json), not {request.content_type or 'nothing'}")
    body = await _read(request, ALERT_MAX_BODY)
    return _error(413, TOO_LARGE) if body is None else body


def _routes(kinds: list[str]) -> str:
    paths = {
        "bearer": "/alerts, /alerts/alertmanager",
        "grafana": "/alerts/grafana",
        "pagerduty": "/alerts/pagerduty",
        "opsgenie": "/alerts/opsgenie",
    }
    return ", ".join(paths[k] for k in kinds)


def _problems(err: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "problem": e["msg"]}
        for e in err.errors(include_url=False)
    ][:20]


class AlertRoutes:
    def __init__(self, incidents: Incidents, settings: Settings) -> None:
        self.incidents = incidents
        self.settings = settings
        self.severity_map = settings.alert_severity_map
        token = settings.alert_token.get_secret_value() if settings.alert_token else ""
        self._token = token.encode()
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        closed = [kind for kind in CLOSED if self._closed(kind)]
        if closed:
            log.warning("alert_routes_closed", routes=_routes(closed), hint=CLOSED[closed[-1]])
        elif settings.alerts_unauthenticated and not token:
            log.warning(
                "alert_routes_unauthenticated",
                hint="anyone who can reach this port can declare incidents; set WARROOM_ALERT_TOKEN",
            )

    def register(self, app: web.Application) -> None:
        app.router.add_post("/alerts/alertmanager", self.alertmanager)
        app.router.add_post("/alerts/grafana", self.grafana)
        app.router.add_put("/alerts/grafana", self.grafana)  # Grafana's webhook can be set to PUT
        app.router.add_post("/alerts", self.generic)

    async def alertmanager(self, request: web.Request) -> web.Response:
        def parse(data: Any) -> AlertGroup:
            return from_alertmanager(
                AlertmanagerPayload.model_validate(data), "alertmanager", self.severity_map
            )

        return await self._intake(request, parse)

    async def grafana(self, request: web.Request) -> web.Response:
        def parse(data: Any) -> AlertGroup:
            return from_alertmanager(GrafanaPayload.model_validate(data), "grafana", self.severity_map)

        return await self._intake(request, parse, verify=self._grafana_signature, kind="grafana")

    async def generic(self, request: web.Request) -> web.Response:
        def parse(data: Any) -> AlertGroup:
            return from_generic(GenericAlert.model_validate(data), self.severity_map)

        return await self._intake(request, parse)

    async def _intake(
        self,
        request: web.Request,
        parse: Callable[[Any], AlertGroup],
        verify: Callable[[web.Request, bytes], str | None] | None = None,
        kind: str = "bearer",
    ) -> web.Response:
        if self._closed(kind):
            return _error(403, CLOSED[kind])
        if not self.authorized(request):
            return _error(401, UNAUTHORIZED)
        return await self.in_slot(self._take(request, parse, verify))

    async def in_slot(self, work: Coroutine[Any, Any, web.Response]) -> web.Response:
        """`work` once one of MAX_IN_FLIGHT slots is free; 503 when none is within SLOT_WAIT."""
        try:
            await asyncio.wait_for(self._slots.acquire(), SLOT_WAIT)
        except TimeoutError:
            work.close()
            log.warning("alerts_behind", in_flight=MAX_IN_FLIGHT)
            return _error(503, f"warroom is behind: {MAX_IN_FLIGHT} alert notifications are waiting; retry")
        try:
            return await work
        finally:
            self._slots.release()

    async def _take(
        self,
        request: web.Request,
        parse: Callable[[Any], AlertGroup],
        verify: Callable[[web.Request, bytes], str | None] | None,
    ) -> web.Response:
        body = await read_body(request)
        if isinstance(body, web.Response):
            return body
        if verify is not None and (problem := verify(request, body)):
            return _error(401, problem)
        return await self.take(lambda: parse(json.loads(body)))

    async def take(self, parse: Callable[[], AlertGroup | None]) -> web.Response:
        """What `parse` makes of the body, to its incident: 400 not JSON, 422 wrong shape, 200 ignored (None),
        or the `Refused` answer it raises."""
        try:
            group = parse()
        except Refused as err:
            return _error(err.status, err.message)
        except json.JSONDecodeError as err:
            return _error(400, f"the body is not JSON: {err.msg} (line {err.lineno}, column {err.colno})")
        except ValidationError as err:
            return _error(422, "the payload does not have the expected shape", problems=_problems(err))
        except ValueError as err:
            return _error(422, str(err))
        if group is None:
            return web.json_response({"ok": True, "action": "ignored", "incident": None})
        return await self._route(group)

    async def _route(self, group: AlertGroup) -> web.Response:
        handling = self.incidents.handle_alert(group, resolve_mitigates=self.settings.alert_resolve_mitigates)
        try:
            outcome = await asyncio.wait_for(handling, TEMPORAL_DEADLINE)
        except IncidentBusy as err:
            return _error(503, str(err))
        except IncidentError as err:
            return _error(409, str(err))
        except (RPCError, TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
            log.warning("temporal_unavailable", route=group.source, error=type(err).__name__)
            return _error(503, "warroom cannot reach Temporal right now; retry")
        incident = incident_label(outcome.incident_id) if outcome.incident_id is not None else None
        log.info("alert", source=group.source, status=group.status, action=outcome.action, incident=incident)
        status = 202 if outcome.action != "ignored" else 200
        return web.json_response({"ok": True, "action": outcome.action, "incident": incident}, status=status)

    def _closed(self, kind: str) -> bool:
        """No credential configured for this kind of route, and not opened on purpose."""
        s = self.settings
        if self._token or s.alerts_unauthenticated:
            return False
        if kind == "pagerduty":
            return s.pagerduty_webhook_secret is None and s.pagerduty_routing_key is None
        if kind == "opsgenie":
            return s.opsgenie_webhook_token is None
        return kind != "grafana" or s.grafana_secret is None

    def authorized(self, request: web.Request) -> bool:
        if not self._token:
            return True
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), self._token)

    def _grafana_signature(self, request: web.Request, body: bytes) -> str | None:
        """Grafana's optional HMAC: hex SHA-256 of the body (of `timestamp:body` with a timestamp header)."""
        secret = self.settings.grafana_secret
        if secret is None:
            return None
        signed = body
        ts_header = self.settings.grafana_timestamp_header
        if ts_header:
            stamp = request.headers.get(ts_header, "")
            if not stamp.isdigit() or abs(time.time() - int(stamp)) > GRAFANA_MAX_AGE:
                return f"missing or stale {ts_header}"
            signed = stamp.encode() + b":" + body
        expected = hmac.new(secret.get_secret_value().encode(), signed, hashlib.sha256).hexdigest()
        header = self.settings.grafana_signature_header
        given = request.headers.get(header, "").strip().lower()
        return None if hmac.compare_digest(given, expected) else f"missing or wrong {header}"
