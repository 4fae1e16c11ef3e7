"""`POST /alerts/pagerduty`: PagerDuty V3 webhooks and Events API v2 events (domain.pagerduty).

Which sender is allowed depends on the body, so it is read first (within the usual slots and size limit):
- a V3 webhook is signed: with PAGERDUTY_WEBHOOK_SECRET set, `X-PagerDuty-Signature` must hold
  `v1=<hex HMAC-SHA256 of the body>` (one of several, comma-separated, while PagerDuty rotates the secret);
  without it, the bearer token (a custom header on the subscription);
- an Events v2 event: the bearer token, or a `routing_key` equal to PAGERDUTY_ROUTING_KEY.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Literal

from aiohttp import web

from domain import pagerduty
from domain.alerts import AlertGroup
from starter.alerts import CLOSED, OPEN_ON_PURPOSE, UNAUTHORIZED, AlertRoutes, Refused, _error, read_body

SIGNATURE_HEADER = "X-PagerDuty-Signature"
BAD_SIGNATURE = (
    f"missing or wrong {SIGNATURE_HEADER}: it must hold v1=<HMAC-SHA256 of the body> with the webhook"
    " subscription's signing secret (PAGERDUTY_WEBHOOK_SECRET)"
)
V3_CLOSED = (
    "PagerDuty V3 webhooks are not taken: set PAGERDUTY_WEBHOOK_SECRET (the subscription's signing secret)"
    f" or WARROOM_ALERT_TOKEN (sent as a bearer token), {OPEN_ON_PURPOSE}"
)
EVENTS_CLOSED = (
    "Events API v2 events are not taken: set PAGERDUTY_ROUTING_KEY (matched against `routing_key`) or"
    f" WARROOM_ALERT_TOKEN (sent as a bearer token), {OPEN_ON_PURPOSE}"
)
BAD_ROUTING_KEY = "missing or wrong bearer token or `routing_key` (PAGERDUTY_ROUTING_KEY)"


def signed(secret: bytes, header: str, body: bytes) -> bool:
    """True when one of the header's `v1=` signatures is the body's HMAC-SHA256 with `secret`."""
    expected = b"v1=" + hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
    given = (part.strip().lower().encode(errors="replace") for part in header.split(","))
    return any(hmac.compare_digest(part, expected) for part in given)


class PagerDutyRoute:
    def __init__(self, routes: AlertRoutes) -> None:
        self.routes = routes
        self.settings = routes.settings

    def register(self, app: web.Application) -> None:
        app.router.add_post("/alerts/pagerduty", self.pagerduty)

    async def pagerduty(self, request: web.Request) -> web.Response:
        if self.routes._closed("pagerduty"):
            return _error(403, CLOSED["pagerduty"])
        return await self.routes.in_slot(self._take(request))

    async def _take(self, request: web.Request) -> web.Response:
        body = await read_body(request)
        if isinstance(body, web.Response):
            return body

        def parse() -> AlertGroup | None:
            data = json.loads(body)
            kind = pagerduty.form(data)
            self._check(request, body, data, kind)
            if kind == "v3":
                return pagerduty.from_pagerduty_v3(data)
            event = pagerduty.EventsV2.model_validate(data)
            return pagerduty.from_pagerduty_event(event, self.routes.severity_map)

        return await self.routes.take(parse)

    def _check(self, request: web.Request, body: bytes, data: Any, kind: Literal["v3", "events"]) -> None:
        """Raises Refused unless this sender may send this form of body."""
        s = self.settings
        bearer = bool(s.alert_token and s.alert_token.get_secret_value())
        if kind == "v3":
            if s.pagerduty_webhook_secret is not None:
                secret = s.pagerduty_webhook_secret.get_secret_value().encode()
                if not signed(secret, request.headers.get(SIGNATURE_HEADER, ""), body):
                    raise Refused(401, BAD_SIGNATURE)
            elif bearer:
                if not self.routes.authorized(request):
                    raise Refused(401, UNAUTHORIZED)
            elif not s.alerts_unauthenticated:
                raise Refused(403, V3_CLOSED)
            return
        if bearer and self.routes.authorized(request):
            return
        key = s.pagerduty_routing_key
        if key is not None:
            given = data.get("routing_key")
            if isinstance(given, str) and hmac.compare_digest(
                given.encode(errors="replace"), key.get_secret_value().encode()
            ):
                return
            raise Refused(401, BAD_ROUTING_KEY)
        if bearer:
            raise Refused(401, UNAUTHORIZED)
        if not s.alerts_unauthenticated:
            raise Refused(403, EVENTS_CLOSED)
