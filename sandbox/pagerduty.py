"""A stand-in for the slice of PagerDuty's REST API v2 warroom uses, over HTTP under `/pagerduty`, and the V3
webhooks PagerDuty sends back.

Served: list services and escalation policies (`query` matches names, any case, anywhere), create an incident
(refused with 400 while an open incident of the same service has the same `incident_key`), list incidents
(`incident_key`, `statuses[]`), read one, update one's status (resolving one resolved already is a 400,
"Incident Already Resolved"), read a user. Every route wants
`Authorization: Token token=API_TOKEN` and PagerDuty's `Accept: application/vnd.pagerduty+json;version=2`;
writes want a `From` header naming a user of the account. Errors have PagerDuty's shape,
`{"error": {"message", "code", "errors": [...]}}`.

`acknowledge(incident_id, user_id)` (or `POST /_sandbox/pagerduty/acknowledge` with `{"incident", "user"}`)
acknowledges as that user and, as PagerDuty does, sends a V3 `incident.acknowledged` webhook signed with
WEBHOOK_SECRET to warroom's `/alerts/pagerduty` (so `warroom dev` shows the whole loop); resolving sends
`incident.resolved` the same way (even when the answer to the resolve is lost). `trigger(service, title)` (or
`POST /_sandbox/pagerduty/trigger` with `{"service", "title"}`) opens an incident as a monitoring integration
would, and sends `incident.triggered`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from sandbox.vendor import Payload, VendorFault, VendorStandIn, send_webhook

API_TOKEN = "pd-sandbox-api-token"
FROM_EMAIL = "warroom-bot@example.com"
WEBHOOK_SECRET = "pd-sandbox-webhook-secret"
ACCEPT = "application/vnd.pagerduty+json;version=2"
PREFIX = "/pagerduty"
SITE = "https://sandbox.pagerduty.com"

FaultRoute = Literal[
    "create_incident", "list_incidents", "get_incident", "update_incident", "list_services", "get_user"
]
FAULT_ROUTES: tuple[str, ...] = (
    "create_incident",
    "list_incidents",
    "get_incident",
    "update_incident",
    "list_services",
    "get_user",
)

Action = Callable[[web.Request, Any], tuple[int, Payload]]


class PagerDutyError(Exception):
    def __init__(self, status: int, message: str, code: int, *errors: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "code": code, "errors": list(errors)}}


def _ref(kind: str, record: dict[str, Any], path: str) -> dict[str, Any]:
    return {
        "id": record["id"],
        "type": f"{kind}_reference",
        "summary": record["name"],
        "self": f"https://api.pagerduty.com/{path}/{record['id']}",
        "html_url": f"{SITE}/{path}/{record['id']}",
    }


class PagerDutyFake(VendorStandIn[FaultRoute]):
    name = "pagerduty"
    fault_routes = FAULT_ROUTES

    def __init__(self, ingress: Callable[[], str | None] = lambda: None) -> None:
        super().__init__()
        self._ingress = ingress  # warroom's Slack events URL, as the sandbox knows it; webhooks go beside it
        self.webhooks: list[tuple[str, int]] = []  # (event type, warroom's answer status)
        self.reset()

    # --- Python API for tests ---------------------------------------------------------------------------

    def reset(self) -> None:
        super().reset()
        self.users: dict[str, dict[str, Any]] = {
            "PBOTUSR": {"id": "PBOTUSR", "name": "warroom bot", "email": FROM_EMAIL},
            "PLH1HKV": {"id": "PLH1HKV", "name": "Earline Greenholt", "email": "earline@example.com"},
        }
        policy: dict[str, Any] = {"id": "PJ7Y8B2", "name": "Payments Escalation", "services": []}
        self.policies: dict[str, dict[str, Any]] = {policy["id"]: policy}
        self.services: dict[str, dict[str, Any]] = {}
        for sid, name in (
            ("PF9KMXH", "Payments API"),
            ("PF9KMXJ", "Payments Worker"),
            ("PQ1DB00", "Database"),
        ):
            self.services[sid] = {"id": sid, "name": name, "escalation_policy": policy["id"]}
            if name.startswith("Payments"):
                policy["services"].append(sid)
        self.incidents: list[dict[str, Any]] = []
        self.webhooks = []

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        return next((i for i in self.incidents if i["id"] == incident_id), None)

    def snapshot(self) -> dict[str, Any]:
        return {"incidents": [self._incident_json(i) for i in self.incidents], **super().snapshot()}

    def persisted(self) -> dict[str, Any]:
        return {"incidents": [dict(i) for i in self.incidents]}

    def restore(self, saved: dict[str, Any]) -> None:
        incidents = list(saved["incidents"])
        if not all(isinstance(i, dict) for i in incidents):
            raise TypeError("pagerduty incidents must be objects")
        self.incidents = [dict(i) for i in incidents]

    async def acknowledge(self, incident_id: str, user_id: str = "PLH1HKV") -> int | None:
        """Acknowledges as `user_id` and sends the webhook; warroom's answer status (None: no ingress)."""
        found = self.incident(incident_id)
        if found is None or user_id not in self.users:
            raise KeyError(incident_id if found is None else user_id)
        found["status"] = "acknowledged"
        return await self._send_webhook("incident.acknowledged", found, user_id)

    async def trigger(
        self, service: str = "Payments API", title: str = "Payments API is returning 500s"
    ) -> str:
        """An incident opened by a monitoring integration of `service` (not through the REST API), and its
        `incident.triggered` webhook; the incident's ID."""
        found = next((x for x in self.services.values() if service in (x["id"], x["name"])), None)
        if found is None:
            raise KeyError(service)
        made = self._open(found, title, None, found["escalation_policy"], "")
        await self._send_webhook("incident.triggered", made, "")
        return str(made["id"])

    # --- VendorFake -------------------------------------------------------------------------------------

    def settings(self, base_url: str, workdir: Path) -> dict[str, str]:
        return {
            "PAGERDUTY_API_URL": f"{base_url}{PREFIX}",
            "PAGERDUTY_API_TOKEN": API_TOKEN,
            "PAGERDUTY_FROM_EMAIL": FROM_EMAIL,
        }

    def add_routes(self, app: web.Application) -> None:
        add = app.router.add_route
        add("GET", f"{PREFIX}/services", self._route("list_services", self._list("services")))
        add("GET", f"{PREFIX}/escalation_policies", self._route("list_policies", self._list("policies")))
        add("POST", f"{PREFIX}/incidents", self._route("create_incident", self._create))
        add("GET", f"{PREFIX}/incidents", self._route("list_incidents", self._list_incidents))
        add("GET", f"{PREFIX}/incidents/{{id}}", self._route("get_incident", self._get_incident))
        add("PUT", f"{PREFIX}/incidents/{{id}}", self._route("update_incident", self._update))
        add("GET", f"{PREFIX}/users/{{id}}", self._route("get_user", self._get_user))
        self.add_control_routes(app)
        app.router.add_route("POST", f"/_sandbox/{self.name}/acknowledge", self._control_acknowledge)
        app.router.add_route("POST", f"/_sandbox/{self.name}/trigger", self._control_trigger)

    # --- plumbing ---------------------------------------------------------------------------------------

    def _route(self, route: str, action: Action) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            try:
                self._check_headers(request)
                body = await request.json() if request.method in ("POST", "PUT") else None
            except PagerDutyError as err:
                return self._answer(route, err.status, err.body)
            except ValueError:
                bad = PagerDutyError(400, "Invalid Input Provided", 2001, "The body is not JSON.")
                return self._answer(route, 400, bad.body)
            fault = self._take_fault(route)
            if fault is not None and not fault.after_effect:
                return self._fault_answer(route, fault)
            try:
                status, payload = action(request, body)
            except PagerDutyError as err:
                status, payload = err.status, err.body
            if route == "update_incident" and status == 200:  # PagerDuty tells its webhooks either way
                incident = self.incident(request.match_info["id"])
                if incident is not None and incident["status"] == "resolved":
                    await self._send_webhook("incident.resolved", incident, incident["resolved_by"])
            if fault is not None:  # the effect happened; the answer is lost
                return self._fault_answer(route, fault)
            return self._answer(route, status, payload)

        return handle

    def _check_headers(self, request: web.Request) -> None:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Token token={API_TOKEN}".encode()):
            raise PagerDutyError(401, "Unauthorized", 2006)
        if request.headers.get("Accept", "").replace(" ", "") != ACCEPT:
            raise PagerDutyError(406, "Not Acceptable", 2000, f"Send Accept: {ACCEPT}")
        if request.method in ("POST", "PUT") and self._from(request) is None:
            raise PagerDutyError(
                400, "Invalid Input Provided", 2001, "A From header naming a user of the account is required."
            )

    def _from(self, request: web.Request) -> dict[str, Any] | None:
        email = request.headers.get("From", "").strip().lower()
        return next((u for u in self.users.values() if u["email"].lower() == email), None) if email else None

    def _fault_answer(self, route: str, fault: VendorFault) -> web.Response:
        if fault.status == 429:
            body = PagerDutyError(429, "Rate Limit Exceeded", 2020).body
            return self._answer(route, 429, body, {"Retry-After": str(fault.retry_after or 1)})
        return self._answer(
            route, fault.status, PagerDutyError(fault.status, "Sandbox injected failure", 0).body
        )

    # --- routes -----------------------------------------------------------------------------------------

    def _list(self, kind: str) -> Action:
        def action(request: web.Request, body: Any) -> tuple[int, Payload]:
            query = request.query.get("query", "").casefold()
            records = getattr(self, kind).values()
            if kind == "services":
                shown = [
                    {**_ref("service", r, "services"), "type": "service", "name": r["name"]}
                    for r in records
                    if query in r["name"].casefold()
                ]
                return 200, {"services": shown, "limit": 25, "offset": 0, "more": False}
            shown = [
                {
                    **_ref("escalation_policy", r, "escalation_policies"),
                    "type": "escalation_policy",
                    "name": r["name"],
                    "services": [_ref("service", self.services[s], "services") for s in r["services"]],
                }
                for r in records
                if query in r["name"].casefold()
            ]
            return 200, {"escalation_policies": shown, "limit": 25, "offset": 0, "more": False}

        return action

    def _create(self, request: web.Request, body: Any) -> tuple[int, Payload]:
        incident = body.get("incident") if isinstance(body, dict) else None
        if not isinstance(incident, dict) or incident.get("type") != "incident":
            raise PagerDutyError(400, "Invalid Input Provided", 2001, "incident.type must be incident")
        title = incident.get("title")
        if not isinstance(title, str) or not title.strip() or len(title) > 1024:
            raise PagerDutyError(400, "Invalid Input Provided", 2001, "Title cannot be empty.")
        service = self.services.get(str((incident.get("service") or {}).get("id")))
        if service is None or (incident.get("service") or {}).get("type") != "service_reference":
            raise PagerDutyError(400, "Invalid Input Provided", 2001, "Service not found.")
        policy_ref = incident.get("escalation_policy")
        policy_id = service["escalation_policy"]
        if policy_ref is not None:
            policy_id = str(policy_ref.get("id"))
            if policy_id not in self.policies or policy_ref.get("type") != "escalation_policy_reference":
                raise PagerDutyError(400, "Invalid Input Provided", 2001, "Escalation policy not found.")
        key = incident.get("incident_key")
        if key is not None:
            for other in self.incidents:
                if other["incident_key"] == key and other["service"] == service["id"]:
                    if other["status"] != "resolved":
                        raise PagerDutyError(
                            400,
                            "Invalid Input Provided",
                            2001,
                            f"Open incident with key {key!r} already exists: {other['id']}",
                        )
        details = str((incident.get("body") or {}).get("details") or "")
        made = self._open(service, title, key, policy_id, details)
        return 201, {"incident": self._incident_json(made)}

    def _open(
        self, service: dict[str, Any], title: str, key: str | None, policy_id: str, details: str
    ) -> dict[str, Any]:
        number = len(self.incidents) + 1
        made = {
            "id": f"Q{number:05d}SANDBOX"[:14],
            "number": number,
            "title": title,
            "service": service["id"],
            "escalation_policy": policy_id,
            "incident_key": key or hashlib.sha256(f"{number}".encode()).hexdigest()[:32],
            "status": "triggered",
            "details": details,
            "created_at": _now(),
            "resolved_by": "",
        }
        self.incidents.append(made)
        return made

    def _get_incident(self, request: web.Request, body: Any) -> tuple[int, Payload]:
        incident = self.incident(request.match_info["id"])
        if incident is None:
            raise PagerDutyError(404, "Not Found", 2100)
        return 200, {"incident": self._incident_json(incident)}

    def _list_incidents(self, request: web.Request, body: Any) -> tuple[int, Payload]:
        key = request.query.get("incident_key")
        statuses = request.query.getall("statuses[]", [])
        found = [
            self._incident_json(i)
            for i in self.incidents
            if (key is None or i["incident_key"] == key) and (not statuses or i["status"] in statuses)
        ]
        return 200, {"incidents": found, "limit": 25, "offset": 0, "more": False}

    def _update(self, request: web.Request, body: Any) -> tuple[int, Payload]:
        incident = self.incident(request.match_info["id"])
        if incident is None:
            raise PagerDutyError(404, "Not Found", 2100)
        change = body.get("incident") if isinstance(body, dict) else None
        status = change.get("status") if isinstance(change, dict) else None
        if (
            not isinstance(change, dict)
            or status not in ("resolved", "acknowledged")
            or change.get("type")
            not in (
                "incident",
                "incident_reference",
            )
        ):
            raise PagerDutyError(
                400, "Invalid Input Provided", 2001, "status must be resolved or acknowledged"
            )
        if status == "resolved" and incident["status"] == "resolved":
            raise PagerDutyError(400, "Invalid Input Provided", 2001, "Incident Already Resolved")
        incident["status"] = status
        if status == "resolved":
            incident["resolved_by"] = (self._from(request) or {}).get("id", "")
        return 200, {"incident": self._incident_json(incident)}

    def _get_user(self, request: web.Request, body: Any) -> tuple[int, Payload]:
        user = self.users.get(request.match_info["id"])
        if user is None:
            raise PagerDutyError(404, "Not Found", 2100)
        return 200, {"user": {**_ref("user", user, "users"), "type": "user", "email": user["email"]}}

    # --- records and webhooks ---------------------------------------------------------------------------

    def _incident_json(self, i: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": i["id"],
            "type": "incident",
            "summary": f"[#{i['number']}] {i['title']}",
            "self": f"https://api.pagerduty.com/incidents/{i['id']}",
            "html_url": f"{SITE}/incidents/{i['id']}",
            "incident_number": i["number"],
            "title": i["title"],
            "status": i["status"],
            "incident_key": i["incident_key"],
            "created_at": i["created_at"],
            "urgency": "high",
            "service": _ref("service", self.services[i["service"]], "services"),
            "escalation_policy": _ref(
                "escalation_policy", self.policies[i["escalation_policy"]], "escalation_policies"
            ),
        }

    async def _send_webhook(self, event_type: str, incident: dict[str, Any], user_id: str) -> int | None:
        """A V3 webhook about `incident`, as PagerDuty signs it, to warroom's `/alerts/pagerduty`."""
        ingress = self._ingress()
        if not ingress:
            return None
        url = ingress.rsplit("/slack/", 1)[0] + "/alerts/pagerduty"
        agent = self.users.get(user_id)
        body = {
            "event": {
                # the same change (type, incident, agent) again is a re-delivery of the same event
                "id": hashlib.sha256(f"{event_type}{incident['id']}{user_id}".encode()).hexdigest()[:26],
                "event_type": event_type,
                "resource_type": "incident",
                "occurred_at": _now(),
                "agent": {**_ref("user", agent, "users")} if agent else None,
                "client": None,
                "data": {
                    **{k: v for k, v in self._incident_json(incident).items() if k != "incident_number"},
                    "number": incident["number"],
                    "assignees": [],
                    "teams": [],
                    "priority": None,
                    "conference_bridge": None,
                    "resolve_reason": None,
                },
            }
        }
        raw = json.dumps(body).encode()
        signature = "v1=" + hmac.new(WEBHOOK_SECRET.encode(), raw, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-PagerDuty-Signature": signature}
        status = await send_webhook(url, raw, headers)
        self.webhooks.append((event_type, status))
        return status

    async def _control_trigger(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            made = await self.trigger(
                str(body["service"]), str(body.get("title") or "Triggered in PagerDuty")
            )
        except (ValueError, KeyError, TypeError) as err:
            return web.json_response({"ok": False, "error": f"unknown service: {err}"}, status=400)
        return web.json_response({"ok": True, "incident": made})

    async def _control_acknowledge(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            status = await self.acknowledge(str(body["incident"]), str(body.get("user") or "PLH1HKV"))
        except (ValueError, KeyError, TypeError) as err:
            return web.json_response({"ok": False, "error": f"unknown incident or user: {err}"}, status=400)
        return web.json_response({"ok": True, "webhook_status": status})


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
