"""Opsgenie's Alert API v2, the slice paging uses: create an alert for a team, escalation or schedule, wait
briefly for Opsgenie to process the request, close the alert by its alias (or, one warroom did not make, by
its ID).

Every call sends `Authorization: GenieKey <OPSGENIE_API_KEY>`. The Alert API is asynchronous: a create or
close is answered 202 with a `requestId`, and `GET /v2/alerts/requests/{requestId}` says later whether it
worked (and the alert's ID). The page's key is the alert's `alias`: Opsgenie folds a create with the alias of
an open alert into that alert, so a retry after a lost answer pages once.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import aiohttp
from temporalio.exceptions import ApplicationError

from activities.vendor_http import VendorHttp
from domain.paging import PageLink, PageRequest, page_text
from domain.settings import Settings

VENDOR = "Opsgenie"
TIMEOUT = aiohttp.ClientTimeout(total=15)
AUTH_ADVICE = "check OPSGENIE_API_KEY: an API integration's key with create and update access"
CONFIG_ADVICE = "check the team, escalation or schedule name"
MESSAGE_MAX = 130  # Opsgenie's limit for an alert's message
DESCRIPTION_MAX = 15_000
RESPONDER_TYPES = ("team", "escalation", "schedule", "user")
PROCESS_WAIT = 5.0  # seconds to wait for Opsgenie to process a create before going on without the alert ID
PROCESS_POLL = 0.5


def responder(target: str) -> dict[str, str]:
    """`team:Payments`, `escalation:Payments_Escalation`, `schedule:...`, `user:a@b.c`; bare: a team."""
    kind, sep, name = target.partition(":")
    if sep and kind.strip().lower() in RESPONDER_TYPES and name.strip():
        kind = kind.strip().lower()
        return {"username" if kind == "user" else "name": name.strip(), "type": kind}
    return {"name": target.strip(), "type": "team"}


def error_text(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    parts = [str(body.get("message") or "")]
    errors = body.get("errors")
    if isinstance(errors, dict):
        parts += [f"{k}: {v}" for k, v in errors.items()]
    return " ".join("; ".join(p for p in parts if p).split())


class OpsgenieApi:
    def __init__(self, session: aiohttp.ClientSession, settings: Settings) -> None:
        assert settings.opsgenie_api_key is not None
        self._session = session
        self._base = settings.opsgenie_api_url.rstrip("/") + "/v2"
        self._key = settings.opsgenie_api_key.get_secret_value()
        self._headers = {"Authorization": f"GenieKey {self._key}"}
        self._http = VendorHttp(VENDOR, self._key, error_text, AUTH_ADVICE, CONFIG_ADVICE)

    async def call(
        self,
        method: str,
        path: str,
        what: str,
        *,
        body: Any = None,
        params: Any = None,
        missing_ok: bool = False,
    ) -> Any:
        answer = await self._http.exchange(
            self._session,
            method,
            self._base + path,
            what,
            headers=self._headers,
            client_timeout=TIMEOUT,
            body=body,
            params=params,
        )
        if answer.status == 404 and missing_ok:
            return None
        if answer.status >= 400:
            raise self._http.failure(what, answer) from None
        return answer.data

    async def create(self, req: PageRequest) -> PageLink:
        who = responder(req.target)
        description = page_text(req)
        body = {
            "message": req.title[:MESSAGE_MAX],
            "alias": req.key,
            "description": description[:DESCRIPTION_MAX],
            "responders": [who],
            "tags": ["warroom", f"warroom-inc-{req.incident_id}"],
            "source": "warroom",
            "priority": _priority(req.severity),
        }
        answer = await self.call("POST", "/alerts", "creating an alert", body=body)
        request_id = str((answer or {}).get("requestId") or "")
        alert_id = await self._processed(request_id) if request_id else ""
        target = who.get("name") or who.get("username") or req.target
        return PageLink(provider="opsgenie", key=req.key, vendor_id=alert_id, target=target)

    async def _processed(self, request_id: str) -> str:
        """The alert ID once Opsgenie has processed the create (raises when it failed); "" if it has not
        within PROCESS_WAIT seconds (the alias is enough to close it later)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PROCESS_WAIT
        while True:
            found = await self.call(
                "GET", f"/alerts/requests/{quote(request_id, safe='')}", "checking the alert", missing_ok=True
            )
            data = (found or {}).get("data") if isinstance(found, dict) else None
            if isinstance(data, dict):
                if data.get("isSuccess") is False:
                    raise ApplicationError(
                        f"Opsgenie did not create the alert: {data.get('status') or 'no reason given'}"
                        f" ({CONFIG_ADVICE})",
                        type="OpsgenieRejected",
                        non_retryable=True,
                    )
                return str(data.get("alertId") or "")
            if loop.time() >= deadline:
                return ""
            await asyncio.sleep(PROCESS_POLL)

    async def close(self, identifier: str, kind: str = "alias") -> None:
        """Closes the alert with this alias (or `kind="id"`: alert ID); closing a closed alert is accepted."""
        body = {"source": "warroom", "note": "Resolved in warroom."}
        path = f"/alerts/{quote(identifier, safe='')}/close"
        await self.call("POST", path, "closing an alert", body=body, params={"identifierType": kind})


def _priority(severity: str) -> str:
    """sev1..sev4 -> P1..P4 (anything else P3, Opsgenie's default)."""
    digits = "".join(ch for ch in severity if ch.isdigit())
    return f"P{digits}" if digits in ("1", "2", "3", "4") else "P3"
