"""A stand-in for the slice of Atlassian Statuspage's REST API v1 warroom uses, over HTTP under `/statuspage`.

Served: list a page's components, create an incident, update it, read it, list unresolved incidents. Every
route wants `Authorization: OAuth <API_KEY>` (401 otherwise) and the one page `PAGE_ID` (404 for another);
errors answer `{"message": ...}` (the published API's error entity) with 400, 401, 404 or 422. Tests steer it
in Python (`add_fault`, `incidents`, `calls`); `after_effect=True` does the work and then loses the answer.
`GET /_sandbox/statuspage/state` shows the public page (its incidents and components); `POST
/_sandbox/statuspage/reset` and `POST /_sandbox/statuspage/faults` do the rest over HTTP.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from sandbox.vendor import Payload, VendorFault, VendorStandIn

API_KEY = "statuspage-sandbox-api-key"
PAGE_ID = "sbxpage0001"
COMPONENTS = {"api": ("cmp0api00001", "API"), "checkout": ("cmp0chk00001", "Checkout")}
PREFIX = "/statuspage"
API = f"{PREFIX}/v1"
NAME_MAX = 255
BODY_MAX = 25_000

INCIDENT_STATUSES = ("investigating", "identified", "monitoring", "resolved")
COMPONENT_STATUSES = (
    "operational",
    "degraded_performance",
    "partial_outage",
    "major_outage",
    "under_maintenance",
)

FaultRoute = Literal["create_incident", "update_incident", "get_incident", "unresolved"]
FAULT_ROUTES: tuple[str, ...] = ("create_incident", "update_incident", "get_incident", "unresolved")

Action = Callable[[web.Request, Any], tuple[int, Payload]]
Incident = dict[str, Any]


class StatuspageError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"message": message}


class StatuspageFake(VendorStandIn[FaultRoute]):
    """One page (`PAGE_ID`) with the components `COMPONENTS`, its incidents and their updates, faults."""

    name = "statuspage"
    fault_routes = FAULT_ROUTES

    def __init__(self) -> None:
        super().__init__()
        self.incidents: list[Incident] = []
        self.components: dict[str, dict[str, Any]] = {}
        self._next = 1
        self.reset()

    # --- Python API for tests ---------------------------------------------------------------------------

    def reset(self) -> None:
        super().reset()
        self.incidents.clear()
        self.components = {
            cid: {"id": cid, "page_id": PAGE_ID, "name": label, "status": "operational", "group": False}
            for cid, label in COMPONENTS.values()
        }
        self._next = 1

    def persisted(self) -> dict[str, Any]:
        return {
            "incidents": [dict(i) for i in self.incidents],
            "components": [dict(c) for c in self.components.values()],
            "next": self._next,
        }

    def restore(self, saved: dict[str, Any]) -> None:
        incidents, components, following = (
            list(saved["incidents"]),
            list(saved["components"]),
            int(saved["next"]),
        )
        if not all(isinstance(x, dict) for x in (*incidents, *components)):
            raise TypeError("statuspage incidents and components must be objects")
        self.incidents = [dict(i) for i in incidents]
        self.components = {str(c["id"]): dict(c) for c in components}
        self._next = following

    def snapshot(self) -> dict[str, Any]:
        return {
            "incidents": [dict(i) for i in self.incidents],
            "components": list(self.components.values()),
            **super().snapshot(),
        }

    # --- VendorFake -------------------------------------------------------------------------------------

    def settings(self, base_url: str, workdir: Path) -> dict[str, str]:
        return {
            "STATUSPAGE_API_URL": f"{base_url}{API}",
            "STATUSPAGE_API_KEY": API_KEY,
            "STATUSPAGE_PAGE_ID": PAGE_ID,
            "STATUSPAGE_COMPONENTS": ",".join(f"{name}={cid}" for name, (cid, _) in COMPONENTS.items()),
        }

    def add_routes(self, app: web.Application) -> None:
        page = f"{API}/pages/{{page_id}}"
        app.router.add_route("GET", f"{page}/components", self._route("components", self._list_components))
        app.router.add_route("POST", f"{page}/incidents", self._route("create_incident", self._create))
        app.router.add_route(
            "GET", f"{page}/incidents/unresolved", self._route("unresolved", self._unresolved)
        )
        app.router.add_route(
            "GET", f"{page}/incidents/{{incident_id}}", self._route("get_incident", self._get)
        )
        app.router.add_route(
            "PATCH", f"{page}/incidents/{{incident_id}}", self._route("update_incident", self._update)
        )
        self.add_control_routes(app)

    # --- plumbing ---------------------------------------------------------------------------------------

    def _route(self, route: str, action: Action) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            scheme, _, key = request.headers.get("Authorization", "").partition(" ")
            if scheme != "OAuth" or not hmac.compare_digest(key.strip().encode(), API_KEY.encode()):
                return self._answer(route, 401, StatuspageError(401, "Could not authenticate").body)
            if request.match_info["page_id"] != PAGE_ID:
                return self._answer(
                    route, 404, StatuspageError(404, "The requested resource could not be found.").body
                )
            body: Any = None
            if request.method in ("POST", "PATCH"):
                try:
                    body = json.loads(await request.text())
                except ValueError:
                    return self._answer(route, 400, StatuspageError(400, "Invalid JSON body").body)
            fault = self._take_fault(route)
            if fault is not None:
                if fault.after_effect:
                    _run(action, request, body)  # done, and the answer is lost
                return self._fault_answer(route, fault)
            status, payload = _run(action, request, body)
            return self._answer(route, status, payload)

        return handle

    def _fault_answer(self, route: str, fault: VendorFault) -> web.Response:
        if fault.status == 429:
            body = StatuspageError(429, "Rate limit exceeded").body
            return self._answer(route, 429, body, {"Retry-After": str(fault.retry_after or 1)})
        return self._answer(
            route, fault.status, StatuspageError(fault.status, "Sandbox injected failure").body
        )

    def _found(self, request: web.Request) -> Incident:
        wanted = request.match_info["incident_id"]
        for incident in self.incidents:
            if incident["id"] == wanted:
                return incident
        raise StatuspageError(404, "The requested resource could not be found.")

    # --- routes -----------------------------------------------------------------------------------------

    def _list_components(self, request: web.Request, body: Any) -> tuple[int, Payload]:
        return 200, list(self.components.values())

    def _unresolved(self, request: web.Request, body: Any) -> tuple[int, Payload]:
        return 200, [i for i in reversed(self.incidents) if i["status"] != "resolved"]

    def _get(self, request: web.Request, body: Any) -> tuple[int, Payload]:
        return 200, self._found(request)

    def _create(self, request: web.Request, body: Any) -> tuple[int, Payload]:
        fields = _incident_fields(body)
        name = fields.get("name")
        if not isinstance(name, str) or not name.strip():
            raise StatuspageError(422, "Name can't be blank")
        if len(name) > NAME_MAX:
            raise StatuspageError(422, f"Name is too long (maximum is {NAME_MAX} characters)")
        now = _now()
        incident: Incident = {
            "id": f"sbxinc{self._next:06d}",
            "page_id": PAGE_ID,
            "name": name,
            "status": "investigating",
            "impact": "none",
            "shortlink": f"https://stspg.io/sbx{self._next}",
            "created_at": now,
            "updated_at": now,
            "resolved_at": None,
            "metadata": {},
            "components": [],
            "incident_updates": [],
        }
        self._next += 1
        self._apply(incident, fields)
        self.incidents.append(incident)
        return 201, incident

    def _update(self, request: web.Request, body: Any) -> tuple[int, Payload]:
        incident = self._found(request)
        fields = _incident_fields(body)
        if "name" in fields and (not isinstance(fields["name"], str) or len(fields["name"]) > NAME_MAX):
            raise StatuspageError(422, "Name is not valid")
        self._apply(incident, fields)
        if isinstance(fields.get("name"), str):
            incident["name"] = fields["name"]
        return 200, incident

    def _apply(self, incident: Incident, fields: dict[str, Any]) -> None:
        """Checks everything first (a 422 changes nothing), then the status, components, metadata and the
        new incident update."""
        status = fields.get("status", incident["status"])
        if status not in INCIDENT_STATUSES:
            raise StatuspageError(422, f"Status is not included in the list: {status!r}")
        body = fields.get("body")
        if body is not None and (not isinstance(body, str) or len(body) > BODY_MAX):
            raise StatuspageError(422, f"Body must be text of at most {BODY_MAX} characters")
        changes = fields.get("components") or {}
        ids = fields.get("component_ids") or []
        if not isinstance(changes, dict) or not isinstance(ids, list):
            raise StatuspageError(400, "components must be an object and component_ids a list")
        for cid in [*changes, *ids]:
            if cid not in self.components:
                raise StatuspageError(422, f"Component {cid} does not belong to this page")
        for new in changes.values():
            if new not in COMPONENT_STATUSES:
                raise StatuspageError(422, f"Component status is not included in the list: {new!r}")
        metadata = fields.get("metadata")
        if metadata is not None and not (
            isinstance(metadata, dict) and all(isinstance(v, dict) for v in metadata.values())
        ):
            raise StatuspageError(422, "Metadata top-level values must be objects")
        affected = []
        for cid, new in changes.items():
            old = self.components[cid]["status"]
            self.components[cid]["status"] = new
            affected.append(
                {"code": cid, "name": self.components[cid]["name"], "old_status": old, "new_status": new}
            )
        listed = {c["id"] for c in incident["components"]}
        for cid in [*ids, *changes]:
            if cid not in listed:
                incident["components"].append(self.components[cid])
                listed.add(cid)
        incident["components"] = [self.components[c["id"]] for c in incident["components"]]
        if metadata is not None:
            incident["metadata"] = metadata
        now = _now()
        if body is not None or status != incident["status"] or not incident["incident_updates"]:
            update = {
                "id": f"{incident['id']}u{len(incident['incident_updates']) + 1}",
                "incident_id": incident["id"],
                "status": status,
                "body": body or "",
                "affected_components": affected,
                "created_at": now,
                "display_at": now,
                "deliver_notifications": bool(fields.get("deliver_notifications", True)),
            }
            incident["incident_updates"].insert(0, update)  # newest first, as Statuspage lists them
        incident["status"] = status
        incident["updated_at"] = now
        if status == "resolved":
            incident["resolved_at"] = incident["resolved_at"] or now


def _incident_fields(body: Any) -> dict[str, Any]:
    fields = body.get("incident") if isinstance(body, dict) else None
    if not isinstance(fields, dict):
        raise StatuspageError(400, "The request body must be an object with an `incident` object")
    return fields


def _run(action: Action, request: web.Request, body: Any) -> tuple[int, Payload]:
    try:
        return action(request, body)
    except StatuspageError as err:
        return err.status, err.body


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
