"""One JSON request to a vendor's REST API (Jira, Statuspage, PagerDuty, Opsgenie): what every client shares.

The clients keep what differs (base URL, credentials, which statuses they handle themselves); this module
does the request, reads the body as JSON (None when empty or not JSON) and maps failures the same way for
all of them (activities.vendor_errors), with the client's secret blanked out of the vendor's error text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from temporalio.exceptions import ApplicationError

from activities.vendor_errors import http_failure, retry_after_seconds, unreachable


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    data: Any  # the body as JSON, None when empty or not JSON


@dataclass(frozen=True)
class VendorHttp:
    """How one vendor's failures read: its display name, its secret (never shown), its advice, and how to
    pull its own short error text out of an error body."""

    vendor: str
    secret: str
    error_text: Callable[[Any], str]
    auth_advice: str = ""
    config_advice: str = ""

    async def exchange(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        what: str,
        *,
        headers: Mapping[str, str],
        client_timeout: aiohttp.ClientTimeout,
        body: Any = None,
        params: Any = None,
    ) -> Answer:
        """Sends one request; a transport error (refused, timed out) raises the retried `unreachable`."""
        try:
            async with session.request(
                method, url, json=body, params=params, headers=dict(headers), timeout=client_timeout
            ) as response:
                status, answer_headers, raw = response.status, response.headers, await response.read()
        except (aiohttp.ClientError, TimeoutError) as err:
            raise unreachable(self.vendor, what, err) from None
        try:
            data = json.loads(raw.decode("utf-8", errors="replace")) if raw else None
        except ValueError:
            data = None
        return Answer(status, answer_headers, data)

    def failure(self, what: str, answer: Answer, config_advice: str | None = None) -> ApplicationError:
        """The error for an HTTP error answer: 429 retried after Retry-After, other 4xx final, 5xx retried."""
        detail = self.error_text(answer.data)
        if self.secret:
            detail = detail.replace(self.secret, "[redacted]")
        return http_failure(
            self.vendor,
            what,
            answer.status,
            detail=detail,
            retry_after=retry_after_seconds(answer.headers),
            auth_advice=self.auth_advice,
            config_advice=self.config_advice if config_advice is None else config_advice,
        )
