"""GET `url_private_download`: a file's bytes, for a caller holding the bot token.

As Slack does, a request without a valid `Authorization: Bearer` token is answered with the sign-in page
(HTTP 200, `text/html`), not with an error, so a client that forgets the token or lacks `files:read` sees
what it would see against Slack. Faults for this step are booked under the method `_download`; the fault error
`sign_in_page` answers the sign-in page to a valid token too (as Slack does for a token without `files:read`).
"""

from __future__ import annotations

import asyncio
import mimetypes
import secrets

from aiohttp import web

from sandbox.api_files import store
from sandbox.models import TEAM_ID
from sandbox.webapi import state_of

DOWNLOAD = "_download"
SIGNED_OUT = "sign_in_page"  # a fault error: answer with the sign-in page though the token is right
ROUTE = "/files-pri/{team_file}/{name}"
SIGN_IN_PAGE = "<!DOCTYPE html><html><head><title>Sign in | Slack</title></head><body>Sign in</body></html>"


def _authorized(header: str | None, token: str) -> bool:
    scheme, _, bearer = (header or "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(bearer.strip(), token)


async def handle_download(request: web.Request) -> web.Response:
    state = state_of(request)
    team_file = request.match_info["team_file"]
    file_id = team_file.removeprefix(f"{TEAM_ID}-")
    logged = {"file": file_id}
    fault = state.take_fault(DOWNLOAD)
    if fault is not None:
        if fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        if fault.status is not None:
            state.call_log.record(DOWNLOAD, logged, fault.status, fault.error or f"http_{fault.status}")
            return web.Response(status=fault.status, text=fault.error or "sandbox injected failure")
    signed_out = fault is not None and fault.error == SIGNED_OUT  # as for a token without `files:read`
    if signed_out or not _authorized(request.headers.get("Authorization"), state.token):
        state.call_log.record(DOWNLOAD, logged, 200, "sign_in_page")
        return web.Response(text=SIGN_IN_PAGE, content_type="text/html")
    stored = store(state).files.get(file_id)
    if (
        stored is None
        or not stored.completed
        or stored.content is None
        or stored.name != request.match_info["name"]
    ):
        state.call_log.record(DOWNLOAD, logged, 404, "file_not_found")
        return web.Response(status=404, text="file_not_found")
    state.call_log.record(DOWNLOAD, logged, 200, None)
    mimetype = mimetypes.guess_type(stored.name)[0] or "application/octet-stream"
    return web.Response(body=stored.content, content_type=mimetype)


def add_download_route(app: web.Application) -> None:
    app.router.add_get(ROUTE, handle_download)
