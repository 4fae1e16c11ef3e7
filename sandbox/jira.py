"""A stand-in for the slice of Jira Cloud's REST API v3 warroom uses, over HTTP under `/jira`.

Served: create an issue, search issues with a small JQL subset, add / update / list remote links, read an
issue. Every route wants HTTP Basic auth (`EMAIL`:`API_TOKEN`) and answers errors in Jira's shape,
`{"errorMessages": [...], "errors": {field: message}}`. Tests steer it in Python (`add_fault`, `issues`,
`calls`). Search is eventually consistent, as Jira's is: a new issue shows up INDEX_LAG seconds after it was
made, at once when its ID is passed in `reconcileIssues` (at most 50). `GET /_sandbox/jira/state`,
`POST /_sandbox/jira/reset` and `POST /_sandbox/jira/faults` do the same over HTTP.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from sandbox.jira_checks import adf_problem as adf_problem
from sandbox.jira_checks import label_problem, summary_problem
from sandbox.vendor import Payload, VendorFault, VendorStandIn

EMAIL = "warroom-bot@example.com"
API_TOKEN = "jira-sandbox-api-token"
PROJECT_KEY = "OPS"
ISSUE_TYPES = ("Task", "Bug", "Story", "Incident")
GLOBAL_ID_MAX = 255
MAX_RESULTS = 5000
MAX_RECONCILE = 50
INDEX_LAG = 1.0  # seconds; Jira says "from a few seconds to minutes", most within seconds

PREFIX = "/jira"
API = f"{PREFIX}/rest/api/3"

FaultRoute = Literal["create_issue", "search", "remote_link"]
FAULT_ROUTES: tuple[str, ...] = ("create_issue", "search", "remote_link")

NO_ISSUE = "Issue does not exist or you do not have permission to see it."
NOT_AUTHENTICATED = "You are not authenticated. Authentication required to perform this operation."
BAD_PAYLOAD = "Invalid request payload. Refer to the REST API documentation and try again."

Action = Callable[[web.Request, Any], tuple[int, Payload]]


class JiraError(Exception):
    """An error answer: `messages` become `errorMessages`, `errors` maps a field to its problem."""

    def __init__(self, status: int, *messages: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(messages[0] if messages else status)
        self.status = status
        self.body: dict[str, Any] = {"errorMessages": list(messages), "errors": dict(errors or {})}


# --- records ----------------------------------------------------------------------------------------------


Issue = dict[str, Any]  # {"id", "key", "fields", "labels", "remote_links": [Jira-shaped links]}


def issue_json(issue: Issue, api_url: str, wanted: list[str] | None = None) -> dict[str, Any]:
    """The issue as Jira shows it; `wanted` limits `fields` (None, `*all` or `*navigable`: every field)."""
    shown: dict[str, Any] = issue["fields"]
    if wanted is not None and "*all" not in wanted and "*navigable" not in wanted:
        shown = {name: value for name, value in shown.items() if name in wanted}
    return {
        "id": issue["id"],
        "key": issue["key"],
        "self": f"{api_url}/issue/{issue['id']}",
        "fields": dict(shown),
    }


def link_json(link: dict[str, Any], issue_url: str) -> dict[str, Any]:
    return {**link, "self": f"{issue_url}/remotelink/{link['id']}"}


# --- JQL --------------------------------------------------------------------------------------------------

_JQL_CLAUSE = re.compile(r'\s*(project|labels)\s*=\s*("(?:[^"\\]|\\.)*"|[A-Za-z0-9_.\-]+)\s*', re.IGNORECASE)
_JQL_AND = re.compile(r"AND\b", re.IGNORECASE)


def parse_jql(jql: str) -> dict[str, str]:
    """`project = X AND labels = "y"` (either clause alone, either order, any case for AND and the field
    names, values quoted or not) -> {"project": "X", "labels": "y"}; anything else raises JiraError(400)."""
    found: dict[str, str] = {}
    pos = 0
    while True:
        clause = _JQL_CLAUSE.match(jql, pos)
        if clause is None:
            raise JiraError(
                400, f"Error in the JQL Query: the sandbox only understands project and labels: {jql!r}"
            )
        name, raw = clause.group(1).lower(), clause.group(2)
        if name in found:
            raise JiraError(400, f"Error in the JQL Query: '{name}' appears twice.")
        found[name] = re.sub(r"\\(.)", r"\1", raw[1:-1]) if raw.startswith('"') else raw
        pos = clause.end()
        if pos == len(jql):
            return found
        joined = _JQL_AND.match(jql, pos)
        if joined is None:
            raise JiraError(400, f"Error in the JQL Query: expected AND at character {pos}.")
        pos = joined.end()


# --- the stand-in -----------------------------------------------------------------------------------------


class JiraFake(VendorStandIn[FaultRoute]):
    """Jira Cloud's REST API v3 as warroom uses it: one project (`OPS`), issues, remote links, faults."""

    name = "jira"
    fault_routes = FAULT_ROUTES

    def __init__(self) -> None:
        super().__init__()
        self.projects: dict[str, str] = {PROJECT_KEY: "10000"}  # key -> id
        self.issues: list[Issue] = []
        self._next_issue_id = 10001
        self._next_link_id = 10001
        self._next_number: dict[str, int] = {}
        self.index_lag = INDEX_LAG  # seconds before search sees a new issue (unless reconciled)

    # --- Python API for tests ---------------------------------------------------------------------------

    def reset(self) -> None:
        super().reset()
        self.issues.clear()
        self._next_issue_id = 10001
        self._next_link_id = 10001
        self._next_number.clear()
        self.index_lag = INDEX_LAG

    def persisted(self) -> dict[str, Any]:
        return {
            "projects": dict(self.projects),
            "issues": [{k: v for k, v in i.items() if k != "indexed_at"} for i in self.issues],
            "next_issue_id": self._next_issue_id,
            "next_link_id": self._next_link_id,
            "next_number": dict(self._next_number),
        }

    def restore(self, saved: dict[str, Any]) -> None:
        issues = list(saved["issues"])
        if not all(isinstance(i, dict) and {"id", "key", "fields"} <= i.keys() for i in issues):
            raise TypeError("jira issues must be objects with id, key and fields")
        self.projects = {str(k): str(v) for k, v in dict(saved["projects"]).items()}
        self.issues = [{**i, "indexed_at": 0.0} for i in issues]  # indexed long ago
        self._next_issue_id = int(saved["next_issue_id"])
        self._next_link_id = int(saved["next_link_id"])
        self._next_number = {str(k): int(v) for k, v in dict(saved["next_number"]).items()}

    def issue(self, id_or_key: str) -> Issue | None:
        wanted = id_or_key.upper()
        return next((i for i in self.issues if wanted in (i["id"], i["key"])), None)

    def snapshot(self, api_url: str = API) -> dict[str, Any]:
        return {
            "issues": [
                {
                    **issue_json(issue, api_url),
                    "labels": list(issue["labels"]),
                    "remote_links": [
                        link_json(link, f"{api_url}/issue/{issue['id']}") for link in issue["remote_links"]
                    ],
                }
                for issue in self.issues
            ],
            **super().snapshot(),
        }

    # --- VendorFake -------------------------------------------------------------------------------------

    def settings(self, base_url: str, workdir: Path) -> dict[str, str]:
        return {
            "JIRA_URL": f"{base_url}{PREFIX}",
            "JIRA_EMAIL": EMAIL,
            "JIRA_API_TOKEN": API_TOKEN,
            "JIRA_PROJECT_KEY": PROJECT_KEY,
        }

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("POST", f"{API}/issue", self._route("create_issue", self._create_issue))
        app.router.add_route("POST", f"{API}/search/jql", self._route("search", self._search))
        app.router.add_route("GET", f"{API}/issue/{{issue}}", self._route("get_issue", self._get_issue))
        app.router.add_route(
            "POST", f"{API}/issue/{{issue}}/remotelink", self._route("remote_link", self._add_remote_link)
        )
        app.router.add_route(
            "GET", f"{API}/issue/{{issue}}/remotelink", self._route("list_remote_links", self._list_links)
        )
        self.add_control_routes(app)

    # --- plumbing ---------------------------------------------------------------------------------------

    def _route(self, route: str, action: Action) -> Callable[[web.Request], Awaitable[web.Response]]:
        """Auth, the request body, injected faults and the call log around one route's `action`."""

        async def handle(request: web.Request) -> web.Response:
            if not _authorized(request):
                return self._answer(route, 401, JiraError(401, NOT_AUTHENTICATED).body)
            try:
                body = await _json_body(request) if request.method == "POST" else None
            except JiraError as err:
                return self._answer(route, err.status, err.body)
            fault = self._take_fault(route)
            if fault is not None:
                if fault.after_effect:
                    _run(action, request, body)  # the effect happens; the client never hears of it
                return self._fault_answer(route, fault)
            status, payload = _run(action, request, body)
            return self._answer(route, status, payload)

        return handle

    def _fault_answer(self, route: str, fault: VendorFault) -> web.Response:
        if fault.status == 429:
            body = JiraError(429, "Rate limit exceeded.").body
            return self._answer(route, 429, body, {"Retry-After": str(fault.retry_after or 1)})
        return self._answer(route, fault.status, JiraError(fault.status, "Sandbox injected failure.").body)

    def _found(self, request: web.Request) -> Issue:
        issue = self.issue(request.match_info["issue"])
        if issue is None:
            raise JiraError(404, NO_ISSUE)
        return issue

    # --- routes -----------------------------------------------------------------------------------------

    def _create_issue(self, request: web.Request, body: Any) -> tuple[int, Payload]:
        fields = body.get("fields") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            raise JiraError(400, BAD_PAYLOAD)
        errors: dict[str, str] = {}
        known = {"project", "summary", "issuetype", "description", "labels"}
        for name in fields.keys() - known:
            errors[name] = f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
        project = fields.get("project")
        project_key = project.get("key") if isinstance(project, dict) else None
        if project_key not in self.projects:
            errors["project"] = "valid project is required"
        issuetype = fields.get("issuetype")
        type_name = issuetype.get("name") if isinstance(issuetype, dict) else None
        if type_name not in ISSUE_TYPES:
            errors["issuetype"] = "Specify a valid issue type"
        problem = summary_problem(fields.get("summary"))
        if problem:
            errors["summary"] = problem
        if "description" in fields and fields["description"] is not None:
            problem = adf_problem(fields["description"])
            if problem:
                errors["description"] = f"Operation value must be an Atlassian Document: {problem}"
        problem = label_problem(fields.get("labels", []))
        if problem:
            errors["labels"] = problem
        if errors:
            raise JiraError(400, errors=errors)
        assert isinstance(project_key, str) and isinstance(type_name, str)
        issue = self._store(project_key, type_name, fields)
        return 201, {
            "id": issue["id"],
            "key": issue["key"],
            "self": f"{_api_url(request)}/issue/{issue['id']}",
        }

    def _store(self, project_key: str, type_name: str, fields: dict[str, Any]) -> Issue:
        number = self._next_number.get(project_key, 1)
        self._next_number[project_key] = number + 1
        issue_id = str(self._next_issue_id)
        self._next_issue_id += 1
        stored = {
            "project": {"id": self.projects[project_key], "key": project_key},
            "issuetype": {"id": str(ISSUE_TYPES.index(type_name) + 1), "name": type_name},
            "summary": fields["summary"],
            "description": fields.get("description"),
            "labels": list(fields.get("labels") or []),
            "status": {"name": "To Do"},
            "created": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        issue: Issue = {
            "id": issue_id,
            "key": f"{project_key}-{number}",
            "fields": stored,
            "labels": list(stored["labels"]),
            "remote_links": [],
            "indexed_at": time.monotonic() + self.index_lag,
        }
        self.issues.append(issue)
        return issue

    def _search(self, request: web.Request, body: Any) -> tuple[int, Payload]:
        if not isinstance(body, dict) or not isinstance(body.get("jql"), str):
            raise JiraError(400, BAD_PAYLOAD)
        query = parse_jql(body["jql"])
        if "project" in query and query["project"].upper() not in self.projects:
            raise JiraError(400, f"The value '{query['project']}' does not exist for the field 'project'.")
        wanted = body.get("fields")
        if wanted is not None and not (isinstance(wanted, list) and all(isinstance(f, str) for f in wanted)):
            raise JiraError(400, BAD_PAYLOAD)
        limit = body.get("maxResults", 50)
        start = body.get("nextPageToken") or "0"
        if not isinstance(limit, int) or not isinstance(start, str) or not start.isdigit():
            raise JiraError(400, BAD_PAYLOAD)
        reconcile = body.get("reconcileIssues", [])
        if not (isinstance(reconcile, list) and all(type(i) is int for i in reconcile)):
            raise JiraError(400, BAD_PAYLOAD)
        if len(reconcile) > MAX_RECONCILE:
            raise JiraError(400, f"The number of issues to reconcile must not exceed {MAX_RECONCILE}.")
        limit = max(1, min(limit, MAX_RESULTS))
        now = time.monotonic()
        matches = [
            issue
            for issue in self.issues
            if (issue["indexed_at"] <= now or int(issue["id"]) in reconcile)
            and ("project" not in query or issue["fields"]["project"]["key"] == query["project"].upper())
            and ("labels" not in query or query["labels"] in issue["labels"])
        ]
        first = int(start)
        page = matches[first : first + limit]
        api_url = _api_url(request)
        answer: dict[str, Any] = {
            "issues": [issue_json(issue, api_url, wanted if wanted is not None else []) for issue in page],
            "isLast": first + limit >= len(matches),
        }
        if not answer["isLast"]:
            answer["nextPageToken"] = str(first + limit)
        return 200, answer

    def _get_issue(self, request: web.Request, body: Any) -> tuple[int, Payload]:
        return 200, issue_json(self._found(request), _api_url(request))

    def _add_remote_link(self, request: web.Request, body: Any) -> tuple[int, Payload]:
        issue = self._found(request)
        if not isinstance(body, dict):
            raise JiraError(400, BAD_PAYLOAD)
        obj = body.get("object")
        errors: dict[str, str] = {}
        if not isinstance(obj, dict) or not isinstance(obj.get("url"), str) or not obj["url"]:
            errors["url"] = "Remote link URL is required."
        if not isinstance(obj, dict) or not isinstance(obj.get("title"), str) or not obj["title"]:
            errors["title"] = "Remote link title is required."
        global_id = body.get("globalId")
        if global_id is not None and (not isinstance(global_id, str) or len(global_id) > GLOBAL_ID_MAX):
            errors["globalId"] = f"The global ID must be a string of at most {GLOBAL_ID_MAX} characters."
        if errors:
            raise JiraError(400, errors=errors)
        assert isinstance(obj, dict)
        issue_url = f"{_api_url(request)}/issue/{issue['id']}"
        links: list[dict[str, Any]] = issue["remote_links"]
        existing = next((li for li in links if global_id and li.get("globalId") == global_id), None)
        link: dict[str, Any] = {"id": existing["id"] if existing else self._next_link_id, "object": dict(obj)}
        for name in ("globalId", "relationship", "application"):
            if body.get(name) is not None:
                link[name] = body[name]
        if existing is not None:  # same globalId on this issue: updated in place
            links[links.index(existing)] = link
        else:
            self._next_link_id += 1
            links.append(link)
        return (200 if existing else 201), {"id": link["id"], "self": f"{issue_url}/remotelink/{link['id']}"}

    def _list_links(self, request: web.Request, body: Any) -> tuple[int, Payload]:
        issue = self._found(request)
        issue_url = f"{_api_url(request)}/issue/{issue['id']}"
        return 200, [link_json(link, issue_url) for link in issue["remote_links"]]

    # --- control ----------------------------------------------------------------------------------------

    def _state(self, request: web.Request) -> dict[str, Any]:
        return self.snapshot(_api_url(request))


def _run(action: Action, request: web.Request, body: Any) -> tuple[int, Payload]:
    try:
        return action(request, body)
    except JiraError as err:
        return err.status, err.body


def _api_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}{API}"


def _authorized(request: web.Request) -> bool:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    email, _, token = decoded.partition(":")
    return hmac.compare_digest(email.encode(), EMAIL.encode()) and hmac.compare_digest(
        token.encode(), API_TOKEN.encode()
    )


async def _json_body(request: web.Request) -> Any:
    if not request.body_exists:
        raise JiraError(400, BAD_PAYLOAD)
    try:
        return await request.json()
    except (ValueError, UnicodeDecodeError):
        raise JiraError(400, BAD_PAYLOAD) from None
