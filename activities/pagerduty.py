"""PagerDuty's REST API v2, the slice paging uses: find a service or escalation policy by name, create an
incident (idempotent by `incident_key`), find it again by key, resolve it (one resolved already counts as
done), read a user's email.

Every call sends `Authorization: Token token=<PAGERDUTY_API_TOKEN>` and PagerDuty's versioned `Accept`;
writes send `From: <PAGERDUTY_FROM_EMAIL>`, the user they are made as. Failures become
activities.vendor_errors failures (429 waits for `Retry-After`, 5xx retries, 401/403 and other 4xx stop).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp
from temporalio.exceptions import ApplicationError

from activities.vendor_errors import http_failure
from activities.vendor_http import VendorHttp
from domain.paging import PageLink, PageRequest, page_text
from domain.settings import Settings

VENDOR = "PagerDuty"
TIMEOUT = aiohttp.ClientTimeout(total=15)
ACCEPT = "application/vnd.pagerduty+json;version=2"
AUTH_ADVICE = "check PAGERDUTY_API_TOKEN, and that PAGERDUTY_FROM_EMAIL is a user of the account"
CONFIG_ADVICE = "check the service or escalation policy, and PAGERDUTY_FROM_EMAIL"
TITLE_MAX = 255
DETAILS_MAX = 10_000
OPEN = ("triggered", "acknowledged")


def error_text(body: Any) -> str:
    """PagerDuty's own words from an error body (`error.message` and `error.errors`), on one line."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return ""
    parts = [str(error.get("message") or "")] + [str(e) for e in error.get("errors") or [] if e]
    return " ".join("; ".join(p for p in parts if p).split())


class PagerDutyApi:
    """Authenticated JSON calls to PagerDuty's REST API."""

    def __init__(self, session: aiohttp.ClientSession, settings: Settings) -> None:
        assert settings.pagerduty_api_token is not None
        self._session = session
        self._base = settings.pagerduty_api_url.rstrip("/")
        self._token = settings.pagerduty_api_token.get_secret_value()
        self._headers = {"Accept": ACCEPT, "Authorization": f"Token token={self._token}"}
        self._from = str(settings.pagerduty_from_email or "").strip()
        self._http = VendorHttp(VENDOR, self._token, error_text, AUTH_ADVICE, CONFIG_ADVICE)

    async def call(
        self, method: str, path: str, what: str, *, body: Any = None, params: Any = None
    ) -> tuple[int, Any]:
        """(status, JSON) of a 2xx answer or a 400 (the caller may know what it means); raises otherwise."""
        headers = dict(self._headers)
        if method != "GET":
            headers["From"] = self._from
        answer = await self._http.exchange(
            self._session,
            method,
            self._base + path,
            what,
            headers=headers,
            client_timeout=TIMEOUT,
            body=body,
            params=params,
        )
        if answer.status == 400 or answer.status < 300:
            return answer.status, answer.data
        raise self._http.failure(what, answer) from None

    def rejected(self, what: str, data: Any) -> ApplicationError:
        return http_failure(VENDOR, what, 400, detail=error_text(data), config_advice=CONFIG_ADVICE)

    async def _named(self, collection: str, name: str) -> list[dict[str, Any]]:
        """Records of `/services` or `/escalation_policies` matching `name`: an exact name (any case) wins
        over PagerDuty's partial `query` matches."""
        what = f"looking up {collection.replace('_', ' ')}"
        status, data = await self.call("GET", f"/{collection}", what, params={"query": name, "limit": 25})
        if status == 400:
            raise self.rejected(what, data)
        found = [r for r in (data or {}).get(collection) or [] if isinstance(r, dict) and r.get("id")]
        exact = [r for r in found if str(r.get("name", "")).casefold() == name.casefold()]
        return exact or found

    async def target(self, name: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """(service, escalation policy or None) for a name: a service, else an escalation policy and the
        first service that uses it (PagerDuty incidents always belong to a service)."""
        services = await self._named("services", name)
        if len(services) == 1:
            return services[0], None
        if len(services) > 1:
            raise _ambiguous("services", name, services)
        policies = await self._named("escalation_policies", name)
        if len(policies) > 1:
            raise _ambiguous("escalation policies", name, policies)
        if not policies:
            raise ApplicationError(
                f"PagerDuty has no service or escalation policy named {name!r}",
                type="PagerDutyNotFound",
                non_retryable=True,
            )
        policy = policies[0]
        refs = [s for s in policy.get("services") or [] if isinstance(s, dict) and s.get("id")]
        if not refs:
            raise ApplicationError(
                f"PagerDuty escalation policy {policy.get('name')!r} is used by no service, so no incident"
                " can be created for it; page one of its services",
                type="PagerDutyNotFound",
                non_retryable=True,
            )
        return refs[0], policy

    async def by_key(self, key: str) -> dict[str, Any] | None:
        """The open incident with this `incident_key`, if any."""
        params = [("incident_key", key), ("statuses[]", OPEN[0]), ("statuses[]", OPEN[1])]
        status, data = await self.call("GET", "/incidents", "looking up an incident by key", params=params)
        if status == 400:
            raise self.rejected("looking up an incident by key", data)
        found = [i for i in (data or {}).get("incidents") or [] if isinstance(i, dict) and i.get("id")]
        return found[0] if found else None

    async def create(self, req: PageRequest) -> tuple[dict[str, Any], str]:
        """The incident for this page: created, or (PagerDuty refusing a second open incident with the same
        `incident_key`, after an attempt whose answer was lost) the one already made; and the target's
        name."""
        service, policy = await self.target(req.target)
        name = str((policy or service).get("name") or (policy or service).get("summary") or req.target)
        details = page_text(req)
        incident: dict[str, Any] = {
            "type": "incident",
            "title": req.title[:TITLE_MAX],
            "service": {"id": service["id"], "type": "service_reference"},
            "incident_key": req.key,
            "body": {"type": "incident_body", "details": details[:DETAILS_MAX]},
        }
        if policy is not None:
            incident["escalation_policy"] = {"id": policy["id"], "type": "escalation_policy_reference"}
        status, data = await self.call(
            "POST", "/incidents", "creating an incident", body={"incident": incident}
        )
        if status == 400:
            existing = await self.by_key(req.key)
            if existing is None:
                raise self.rejected("creating an incident", data)
            return existing, name
        made = (data or {}).get("incident")
        if not isinstance(made, dict) or not made.get("id"):
            raise ApplicationError(
                "PagerDuty answered creating an incident without the incident", type="PagerDutyUnavailable"
            )
        return made, name

    async def resolve(self, incident_id: str) -> None:
        """Resolves the incident; one resolved already (by someone in PagerDuty, or by an earlier attempt
        whose answer was lost) is refused with a 400, which then counts as done."""
        body = {"incident": {"type": "incident_reference", "status": "resolved"}}
        path = f"/incidents/{quote(incident_id, safe='')}"
        status, data = await self.call("PUT", path, "resolving an incident", body=body)
        if status == 400:
            again, found = await self.call("GET", path, "reading an incident")
            if again == 400 or str(((found or {}).get("incident") or {}).get("status")) != "resolved":
                raise self.rejected("resolving an incident", data)

    async def user_email(self, user_id: str) -> str:
        status, data = await self.call("GET", f"/users/{user_id}", "reading a user")
        if status == 400:
            raise self.rejected("reading a user", data)
        return str(((data or {}).get("user") or {}).get("email") or "")


def link_from(incident: dict[str, Any], req: PageRequest, target: str) -> PageLink:
    number = incident.get("incident_number")
    return PageLink(
        provider="pagerduty",
        key=req.key,
        vendor_id=str(incident["id"]),
        target=target,
        url=str(incident.get("html_url") or ""),
        number=number if isinstance(number, int) else None,
    )


def _ambiguous(kind: str, name: str, found: list[dict[str, Any]]) -> ApplicationError:
    names = ", ".join(repr(str(r.get("name") or r.get("summary") or r["id"])) for r in found[:10])
    return ApplicationError(
        f"{len(found)} PagerDuty {kind} match {name!r}: {names}; give the exact name",
        type="PagerDutyAmbiguous",
        non_retryable=True,
    )
