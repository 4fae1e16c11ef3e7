"""A stand-in for the slice of Opsgenie's Alert API v2 warroom uses, over HTTP under `/opsgenie`, and the
outgoing webhooks Opsgenie sends back.

Served: create an alert (202 with a `requestId`: processed asynchronously, visible PROCESS_LAG seconds later
through `GET /v2/alerts/requests/{requestId}`), close an alert (by `identifierType=id|alias|tiny`). Every
route wants `Authorization: GenieKey API_KEY`; errors have Opsgenie's shape, `{"message", "took",
"requestId"}` (422 with `errors` for a bad field). A create with the alias of an open alert is folded into it
(its `count` grows), as Opsgenie deduplicates; a responder team that does not exist fails the request.

`acknowledge(alias, username)` (or `POST /_sandbox/opsgenie/acknowledge` with `{"alias", "username"}`)
acknowledges and POSTs the `Acknowledge` webhook to warroom's `/alerts/opsgenie` with the custom header
`Authorization: Bearer WEBHOOK_TOKEN`; closing sends `Close` the same way.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from sandbox.vendor import Payload, VendorFault, VendorStandIn, send_webhook

API_KEY = "og-sandbox-genie-key"
WEBHOOK_TOKEN = "og-sandbox-webhook-token"
PREFIX = "/opsgenie"
API = f"{PREFIX}/v2"
PROCESS_LAG = 0.2  # seconds before a request's result is visible
RESPONDER_TYPES = ("team", "escalation", "schedule", "user")

FaultRoute = Literal["create_alert", "close_alert", "get_request"]
FAULT_ROUTES: tuple[str, ...] = ("create_alert", "close_alert", "get_request")

Action = Callable[[web.Request, Any], Awaitable[tuple[int, Payload]]]


class OpsgenieError(Exception):
    def __init__(self, status: int, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message, "took": 0.001, "requestId": str(uuid.uuid4())}
        if errors:
            self.body["errors"] = errors


class OpsgenieFake(VendorStandIn[FaultRoute]):
    name = "opsgenie"
    fault_routes = FAULT_ROUTES

    def __init__(self, ingress: Callable[[], str | None] = lambda: None) -> None:
        super().__init__()
        self._ingress = ingress
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.teams = {"Payments", "Database"}
        self.escalations = {"Payments_Escalation"}
        self.schedules = {"Payments_Schedule"}
        self.alerts: list[dict[str, Any]] = []
        self.requests: dict[str, dict[str, Any]] = {}
        self.webhooks: list[tuple[str, int]] = []
        self.process_lag = PROCESS_LAG

    def alert(self, alias: str) -> dict[str, Any] | None:
        return next((a for a in self.alerts if a["alias"] == alias), None)

    def snapshot(self) -> dict[str, Any]:
        return {"alerts": [dict(a) for a in self.alerts], **super().snapshot()}

    def persisted(self) -> dict[str, Any]:
        """The alerts; requests still being processed are not kept (Opsgenie's own take seconds)."""
        return {"alerts": [dict(a) for a in self.alerts]}

    def restore(self, saved: dict[str, Any]) -> None:
        alerts = list(saved["alerts"])
        if not all(isinstance(a, dict) for a in alerts):
            raise TypeError("opsgenie alerts must be objects")
        self.alerts = [dict(a) for a in alerts]

    async def acknowledge(self, alias: str, username: str) -> int | None:
        found = self.alert(alias)
        if found is None:
            raise KeyError(alias)
        found["acknowledged"] = True
        return await self._send_webhook("Acknowledge", found, username)

    # --- VendorFake -------------------------------------------------------------------------------------

    def settings(self, base_url: str, workdir: Path) -> dict[str, str]:
        return {"OPSGENIE_API_URL": f"{base_url}{PREFIX}", "OPSGENIE_API_KEY": API_KEY}

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("POST", f"{API}/alerts", self._route("create_alert", self._create))
        app.router.add_route(
            "POST", f"{API}/alerts/{{identifier}}/close", self._route("close_alert", self._close)
        )
        app.router.add_route(
            "GET", f"{API}/alerts/requests/{{request}}", self._route("get_request", self._request)
        )
        self.add_control_routes(app)
        app.router.add_route("POST", f"/_sandbox/{self.name}/acknowledge", self._control_acknowledge)

    # --- plumbing ---------------------------------------------------------------------------------------

    def _route(self, route: str, action: Action) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            if request.headers.get("Authorization", "") != f"GenieKey {API_KEY}":
                err = OpsgenieError(401, "Could not authenticate")
                return self._answer(route, 401, err.body)
            try:
                body = await request.json() if request.method == "POST" else None
            except ValueError:
                return self._answer(route, 400, OpsgenieError(400, "Invalid JSON").body)
            fault = self._take_fault(route)
            if fault is not None and not fault.after_effect:
                return self._fault_answer(route, fault)
            try:
                status, payload = await action(request, body)
            except OpsgenieError as err:
                status, payload = err.status, err.body
            if fault is not None:
                return self._fault_answer(route, fault)
            return self._answer(route, status, payload)

        return handle

    def _fault_answer(self, route: str, fault: VendorFault) -> web.Response:
        if fault.status == 429:
            body = OpsgenieError(429, "You are making too many requests!").body
            return self._answer(route, 429, body, {"Retry-After": str(fault.retry_after or 1)})
        return self._answer(route, fault.status, OpsgenieError(fault.status, "Sandbox injected failure").body)

    def _accepted(self, action: str, result: dict[str, Any]) -> tuple[int, Payload]:
        request_id = str(uuid.uuid4())
        self.requests[request_id] = {
            "action": action,
            "visible_at": time.monotonic() + self.process_lag,
            **result,
        }
        return 202, {"result": "Request will be processed", "took": 0.002, "requestId": request_id}

    # --- routes -----------------------------------------------------------------------------------------

    async def _create(self, request: web.Request, body: Any) -> tuple[int, Payload]:
        if not isinstance(body, dict):
            raise OpsgenieError(
                422, "Request body is not processable", {"message": "Message can not be empty."}
            )
        message, alias = body.get("message"), body.get("alias") or ""
        if not isinstance(message, str) or not message.strip() or len(message) > 130:
            raise OpsgenieError(
                422, "Request body is not processable", {"message": "Message must be 1-130 chars"}
            )
        if not isinstance(alias, str) or len(alias) > 512:
            raise OpsgenieError(
                422, "Request body is not processable", {"alias": "Alias can be 512 chars at most"}
            )
        if body.get("priority", "P3") not in ("P1", "P2", "P3", "P4", "P5"):
            raise OpsgenieError(
                422, "Request body is not processable", {"priority": "Priority must be P1..P5"}
            )
        missing = ""
        for who in body.get("responders") or []:
            kind = who.get("type") if isinstance(who, dict) else None
            if kind not in RESPONDER_TYPES:
                raise OpsgenieError(422, "Request body is not processable", {"responders": "Invalid type"})
            known = {"team": self.teams, "escalation": self.escalations, "schedule": self.schedules}.get(kind)
            if known is not None and who.get("name") not in known:
                missing = f"{kind.capitalize()} [{who.get('name')}] does not exist"
        if missing:
            return self._accepted(
                "Create", {"isSuccess": False, "status": missing, "alertId": "", "alias": alias}
            )
        existing = next(
            (a for a in self.alerts if alias and a["alias"] == alias and a["status"] == "open"), None
        )
        if existing is not None:
            existing["count"] += 1
            return self._accepted(
                "Create", {"isSuccess": True, "status": "Alert deduplicated", **_ids(existing)}
            )
        alert = {
            "id": str(uuid.uuid4()),
            "tinyId": str(len(self.alerts) + 1),
            "alias": alias or "",
            "message": message,
            "description": str(body.get("description") or ""),
            "responders": list(body.get("responders") or []),
            "tags": list(body.get("tags") or []),
            "priority": body.get("priority", "P3"),
            "status": "open",
            "acknowledged": False,
            "count": 1,
        }
        alert["alias"] = alert["alias"] or alert["id"]
        self.alerts.append(alert)
        await self._send_webhook("Create", alert, "System")
        return self._accepted("Create", {"isSuccess": True, "status": "Created alert", **_ids(alert)})

    async def _close(self, request: web.Request, body: Any) -> tuple[int, Payload]:
        kind = request.query.get("identifierType", "id")
        field = {"id": "id", "alias": "alias", "tiny": "tinyId"}.get(kind)
        if field is None:
            raise OpsgenieError(
                422, "Request is not processable", {"identifierType": "must be id, alias or tiny"}
            )
        ident = request.match_info["identifier"]
        alert = next((a for a in self.alerts if a[field] == ident), None)
        if alert is None:
            return self._accepted(
                "Close", {"isSuccess": False, "status": "Alert does not exist", "alertId": ""}
            )
        if alert["status"] != "closed":
            alert["status"] = "closed"
            await self._send_webhook("Close", alert, "warroom")
        return self._accepted("Close", {"isSuccess": True, "status": "Closed alert", **_ids(alert)})

    async def _request(self, request: web.Request, body: Any) -> tuple[int, Payload]:
        found = self.requests.get(request.match_info["request"])
        if found is None or found["visible_at"] > time.monotonic():
            raise OpsgenieError(404, "Request not found. It might not be processed, yet.")
        data = {k: v for k, v in found.items() if k != "visible_at"}
        return 200, {
            "data": {"success": data["isSuccess"], **data},
            "took": 0.001,
            "requestId": str(uuid.uuid4()),
        }

    # --- webhooks ---------------------------------------------------------------------------------------

    async def _send_webhook(self, action: str, alert: dict[str, Any], username: str) -> int | None:
        ingress = self._ingress()
        if not ingress:
            return None
        url = ingress.rsplit("/slack/", 1)[0] + "/alerts/opsgenie"
        body = {
            "action": action,
            "alert": {
                "alertId": alert["id"],
                "message": alert["message"],
                "tags": alert["tags"],
                "tinyId": alert["tinyId"],
                "entity": "",
                "alias": alert["alias"],
                "createdAt": int(time.time() * 1000),
                "updatedAt": int(time.time() * 1000),
                "username": username,
                "userId": "",
                "description": alert["description"][:1000],
                "team": "",
                "responders": alert["responders"],
                "priority": alert["priority"],
                "source": "warroom",
            },
            "source": {"name": "", "type": "API"},
            "integrationName": "Webhook",
            "integrationId": "sandbox-webhook",
            "integrationType": "Webhook",
        }
        headers = {"Authorization": f"Bearer {WEBHOOK_TOKEN}", "Content-Type": "application/json"}
        status = await send_webhook(url, json.dumps(body).encode(), headers)
        self.webhooks.append((action, status))
        return status

    async def _control_acknowledge(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            status = await self.acknowledge(str(body["alias"]), str(body["username"]))
        except (ValueError, KeyError, TypeError) as err:
            return web.json_response(
                {"ok": False, "error": f"unknown alert or missing field: {err}"}, status=400
            )
        return web.json_response({"ok": True, "webhook_status": status})


def _ids(alert: dict[str, Any]) -> dict[str, str]:
    return {"alertId": alert["id"], "alias": alert["alias"]}
