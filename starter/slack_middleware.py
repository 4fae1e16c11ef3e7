"""The Bolt middleware that runs right after Slack's signature is verified, before authorization.

It stamps when the request arrived (in HTTP mode web.py already has, at an earlier moment) so listeners know
how much of Slack's 3 s is left, and it answers `app_rate_limited`: Slack posts that to the Events URL when
it has started dropping this app's events for the rest of a minute (Events API, "Rate limiting"). Bolt has no
listener for it and would answer 404; here it is logged as a warning, counted
(`warroom_slack_app_rate_limited_total`) and answered 200. Bolt's request verification runs before this
middleware, so an unsigned one gets 401 like any request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from starter.metrics import WebMetrics
from starter.slack_deadline import stamp

log = structlog.get_logger("warroom.ingress")


class FirstMiddleware(AsyncMiddleware):
    """Stamps the request's arrival; answers `app_rate_limited` itself (see the module docstring)."""

    def __init__(self, metrics: WebMetrics | None = None) -> None:
        self.metrics = metrics

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],  # Bolt passes it by this name
    ) -> BoltResponse | None:
        stamp(req.context)
        body = req.body if isinstance(req.body, dict) else {}
        if body.get("type") != "app_rate_limited":
            return await next()
        minute = body.get("minute_rate_limited")
        log.warning(
            "slack_app_rate_limited",
            minute_rate_limited=minute if isinstance(minute, int) else None,
            team_id=body.get("team_id") if isinstance(body.get("team_id"), str) else None,
        )
        if self.metrics is not None:
            self.metrics.app_rate_limited()
        return BoltResponse(status=200, body="")
