"""Jira Cloud: the issue `/incident jira <summary>` asks for, linked back to the incident's Slack channel.

Idempotency: every issue carries a label derived from the request's idempotency key, and each attempt
records its progress as heartbeat details (`creating`, then the created issue's ID). A retry searches for the
label first and reuses the issue it finds. Jira's search is eventually consistent (a new issue can take
seconds to show), so a known ID is passed as `reconcileIssues` (found at once), and after an attempt whose
create got no usable answer the search is repeated for up to INDEX_WAIT seconds before creating: a lost
response never makes a second issue unless Jira's index lags longer than that. The remote link back to Slack
has a `globalId` per channel, so adding it again updates it in place.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import aiohttp
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import slack_mrkdwn
from activities.vendor_errors import not_configured
from activities.vendor_http import VendorHttp
from domain.effects import TicketInfo, TicketRequest
from domain.settings import Settings
from domain.vocab import incident_label

VENDOR = "Jira"
TIMEOUT = aiohttp.ClientTimeout(total=15)
SUMMARY_MAX = 255  # Jira's limit for an issue summary
LABEL_MAX = 255  # Jira's limit for one label
BASE_LABEL = "warroom"
AUTH_ADVICE = "check JIRA_EMAIL and JIRA_API_TOKEN"
CONFIG_ADVICE = "check JIRA_PROJECT_KEY and JIRA_ISSUE_TYPE"
LINK_ADVICE = "check that the JIRA_EMAIL account may link issues in JIRA_PROJECT_KEY"
SLACK_CHANNEL_URL = "https://slack.com/app_redirect?channel={}"
INDEX_WAIT = 10.0  # seconds a retry looks for an issue an earlier attempt may have made, before creating
INDEX_POLL = 1.0

_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


# --- what is sent -----------------------------------------------------------------------------------------


def key_label(key: str) -> str:
    """The label that finds the issue made for idempotency key `key` (`inc7:12:ticket` ->
    `warroom-inc7-12-ticket`): letters, digits, `-` and `_` only; a hash keeps a long key unique."""
    label = f"{BASE_LABEL}-{_LABEL_UNSAFE.sub('-', key).strip('-').lower()}"
    if len(label) <= LABEL_MAX:
        return label
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"{label[: LABEL_MAX - len(digest) - 1]}-{digest}"


def incident_tag(incident_id: int) -> str:
    """The label every issue of one incident carries (`warroom-inc-7`)."""
    return f"{BASE_LABEL}-inc-{incident_id}"


def plain_summary(text: str, fallback: str) -> str:
    """A summary Jira accepts as one line of plain text: whitespace runs (newlines included) become one
    space, at most 255 characters; `fallback` when nothing is left."""
    line = " ".join(text.split()) or " ".join(fallback.split())
    return line if len(line) <= SUMMARY_MAX else line[: SUMMARY_MAX - 1].rstrip() + "…"


def channel_url(channel_id: str) -> str:
    return SLACK_CHANNEL_URL.format(quote(channel_id, safe=""))


def link_global_id(channel_id: str) -> str:
    return f"warroom-slack-channel-{channel_id}"


def _text(text: str, *marks: dict[str, Any]) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "text", "text": text}
    if marks:
        node["marks"] = list(marks)
    return node


def _paragraph(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"type": "paragraph", "content": [p for p in parts if p.get("text")]}


STRONG = {"type": "strong"}


def description(req: TicketRequest) -> dict[str, Any]:
    """The issue's description in Atlassian Document Format: every user-written string is a text node,
    so Slack markup such as `<!channel>` stays literal text."""
    incident = req.incident
    body = [
        _paragraph(_text(f"{incident_label(incident.incident_id)}: {incident.title}", STRONG)),
        _paragraph(
            _text("Severity: "),
            _text(incident.severity_label, STRONG),
            _text(" · Stage: "),
            _text(incident.stage.label, STRONG),
        ),
    ]
    if incident.channel_id:
        name = f"#{incident.channel_name or incident.channel_id}"
        link = {"type": "link", "attrs": {"href": channel_url(incident.channel_id)}}
        body.append(_paragraph(_text("Slack channel: "), _text(name, link)))
    if req.requested_by:
        body.append(
            _paragraph(_text("Requested in Slack by user "), _text(req.requested_by, {"type": "code"}))
        )
    return {"type": "doc", "version": 1, "content": body}


def _jql_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def jira_error_text(body: Any) -> str:
    """Jira's own words from an error body (`errorMessages` and `errors`), on one line."""
    if not isinstance(body, dict):
        return ""
    parts = [str(m) for m in body.get("errorMessages") or [] if m]
    errors = body.get("errors")
    if isinstance(errors, dict):
        parts += [f"{name}: {message}" for name, message in errors.items()]
    if not parts and isinstance(body.get("message"), str):
        parts.append(body["message"])
    return " ".join("; ".join(parts).split())


# --- the API ----------------------------------------------------------------------------------------------


class _JiraApi:
    """Authenticated JSON calls to one Jira site; failures become activities.vendor_errors failures."""

    def __init__(self, session: aiohttp.ClientSession, settings: Settings) -> None:
        assert settings.jira_url and settings.jira_email and settings.jira_api_token
        self._session = session
        self._base = settings.jira_url.rstrip("/") + "/rest/api/3"
        self._token = settings.jira_api_token.get_secret_value()
        if ":" in settings.jira_email:  # HTTP Basic auth cannot carry it
            raise ApplicationError(
                "JIRA_EMAIL must be the Atlassian account's email address; it cannot contain ':'",
                type="JiraNotConfigured",
                non_retryable=True,
            )
        self._headers = {
            "Accept": "application/json",
            "Authorization": aiohttp.encode_basic_auth(settings.jira_email, self._token),
        }
        self._http = VendorHttp(VENDOR, self._token, jira_error_text, auth_advice=AUTH_ADVICE)

    async def call(self, method: str, path: str, what: str, body: dict[str, Any], advice: str) -> Any:
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
            raise self._http.failure(what, answer, config_advice=advice) from None
        return answer.data


class JiraActivities:
    """Creates Jira issues for incidents; the session is shared when given, else opened per call."""

    provider = "jira"  # the label its failures are counted under (activities.telemetry)

    def __init__(self, settings: Settings, session: aiohttp.ClientSession | None = None) -> None:
        self._settings = settings
        self._session = session

    @asynccontextmanager
    async def _api(self) -> AsyncIterator[_JiraApi]:
        if self._session is not None:
            yield _JiraApi(self._session, self._settings)
            return
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            yield _JiraApi(session, self._settings)

    @activity.defn
    async def create_ticket(self, req: TicketRequest) -> TicketInfo:
        """Creates the issue (or, on a retry, finds the one an earlier attempt made) and links the channel."""
        missing = self._settings.missing_for("jira")
        if missing:
            raise not_configured(VENDOR, missing)
        project = str(self._settings.jira_project_key).strip()
        label = key_label(req.key)
        incident = req.incident
        # A follow-up quoted from Slack is mrkdwn (`&amp;`, `<url|label>`): Jira gets it as plain text.
        text = slack_mrkdwn.to_plain(req.summary) if req.quoted else req.summary
        summary = plain_summary(text, f"{incident_label(incident.incident_id)}: {incident.title}")
        async with self._api() as api:
            key = await self._earlier_issue(api, project, label) if activity.info().attempt > 1 else None
            reused = key is not None
            if key is None:
                activity.heartbeat({"creating": label})
                created = await api.call(
                    "POST",
                    "/issue",
                    "creating an issue",
                    {
                        "fields": {
                            "project": {"key": project},
                            "issuetype": {"name": self._settings.jira_issue_type},
                            "summary": summary,
                            "description": description(req),
                            "labels": [BASE_LABEL, incident_tag(incident.incident_id), label],
                        }
                    },
                    CONFIG_ADVICE,
                )
                if not isinstance(created, dict) or not created.get("key"):
                    raise ApplicationError(
                        "Jira answered creating an issue without the issue's key", type="JiraUnavailable"
                    )
                key = str(created["key"])
                activity.heartbeat({"creating": label, "issue_id": str(created.get("id") or ""), "key": key})
            if incident.channel_id:
                await api.call(
                    "POST",
                    f"/issue/{quote(key, safe='')}/remotelink",
                    "linking the issue to Slack",
                    {
                        "globalId": link_global_id(incident.channel_id),
                        "application": {"type": "com.slack", "name": "Slack"},
                        "relationship": "incident channel",
                        "object": {
                            "url": channel_url(incident.channel_id),
                            "title": f"Slack #{incident.channel_name or incident.channel_id}",
                        },
                    },
                    LINK_ADVICE,
                )
        activity.logger.info(
            "jira issue created", extra={"incident_id": incident.incident_id, "issue": key, "reused": reused}
        )
        base = str(self._settings.jira_url).rstrip("/")
        return TicketInfo(key=key, url=f"{base}/browse/{key}", summary=summary)

    async def _earlier_issue(self, api: _JiraApi, project: str, label: str) -> str | None:
        """The issue an earlier attempt made for this request, if any (see the module docstring)."""
        details = activity.info().heartbeat_details
        progress = details[-1] if details and isinstance(details[-1], dict) else {}
        known = str(progress.get("issue_id") or "")
        unsure = bool(progress.get("creating")) and not known  # a create whose answer never came
        deadline = time.monotonic() + (INDEX_WAIT if unsure else 0.0)
        while True:
            key = await self._find(api, project, label, [int(known)] if known.isdigit() else [])
            if key is not None or time.monotonic() >= deadline:
                return key
            activity.heartbeat(progress)
            await asyncio.sleep(INDEX_POLL)

    async def _find(self, api: _JiraApi, project: str, label: str, reconcile: list[int]) -> str | None:
        """The issue with this label; `reconcile`: issue IDs Jira must include even before its index has
        caught up with them."""
        body: dict[str, Any] = {
            "jql": f"project = {_jql_string(project)} AND labels = {_jql_string(label)}",
            "fields": ["summary"],
            "maxResults": 1,
        }
        if reconcile:
            body["reconcileIssues"] = reconcile
        found = await api.call(
            "POST", "/search/jql", "looking for an issue made by an earlier attempt", body, CONFIG_ADVICE
        )
        issues = found.get("issues") if isinstance(found, dict) else None
        if issues and isinstance(issues[0], dict) and issues[0].get("key"):
            return str(issues[0]["key"])
        return None
