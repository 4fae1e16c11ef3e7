"""`POST /alerts/opsgenie`: Opsgenie's outgoing Webhook integration (domain.opsgenie).

Opsgenie's webhook integration sends the custom headers configured on it: warroom wants
`Authorization: Bearer <OPSGENIE_WEBHOOK_TOKEN>` (or the shared WARROOM_ALERT_TOKEN). Without either, the
route answers 403 naming them, unless WARROOM_ALERTS_UNAUTHENTICATED=true.
"""

from __future__ import annotations

import hmac
import json

from aiohttp import web

from domain.alerts import AlertGroup
from domain.opsgenie import from_opsgenie
from starter.alerts import CLOSED, AlertRoutes, _error, read_body

HEADER_HINT = (
    "send `Authorization: Bearer $OPSGENIE_WEBHOOK_TOKEN` (a custom header on the webhook integration)"
)


class OpsgenieRoute:
    def __init__(self, routes: AlertRoutes) -> None:
        self.routes = routes
        token = routes.settings.opsgenie_webhook_token
        self._token = token.get_secret_value().encode() if token and token.get_secret_value() else b""

    def register(self, app: web.Application) -> None:
        app.router.add_post("/alerts/opsgenie", self.opsgenie)

    async def opsgenie(self, request: web.Request) -> web.Response:
        if self.routes._closed("opsgenie"):
            return _error(403, CLOSED["opsgenie"])
        if not self._authorized(request):
            return _error(401, f"missing or wrong bearer token: {HEADER_HINT}")
        return await self.routes.in_slot(self._take(request))

    def _authorized(self, request: web.Request) -> bool:
        if not self._token:
            return self.routes.authorized(request)  # the shared token, or none when open on purpose
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        mine = scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self._token)
        return mine or (bool(self.routes._token) and self.routes.authorized(request))

    async def _take(self, request: web.Request) -> web.Response:
        body = await read_body(request)
        if isinstance(body, web.Response):
            return body

        def parse() -> AlertGroup | None:
            return from_opsgenie(json.loads(body))

        return await self.routes.take(parse)
