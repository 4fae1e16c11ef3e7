"""`/api/<method>`: auth, injected faults, rate limits and the call log around each Web API method."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from sandbox import api_chat, api_conversations, api_files, api_misc, api_usergroups
from sandbox.args import Args
from sandbox.models import ApiError, Fault, RateLimited
from sandbox.refusals import Refused
from sandbox.state import SandboxState

Handler = Callable[[SandboxState, Args], dict[str, Any]]

METHODS: dict[str, Handler] = {
    **api_conversations.METHODS,
    **api_chat.METHODS,
    **api_misc.METHODS,
    **api_files.METHODS,
    **api_usergroups.METHODS,
}

STATE_KEY = web.AppKey("sandbox_state", SandboxState)

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

DROPPED = "connection_dropped"  # the call log's error for a call performed but never answered


def origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def state_of(request: web.Request) -> SandboxState:
    state = request.app[STATE_KEY]
    if not state.base_url:
        state.base_url = origin(request)
    return state


async def read_args(request: web.Request) -> dict[str, Any]:
    """Query string, then the body (JSON or form) on top."""
    data: dict[str, Any] = dict(request.query)
    if request.method != "POST" or not request.body_exists:
        return data
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise ApiError("invalid_json") from None
        if not isinstance(body, dict):
            raise ApiError("invalid_json")
        data.update(body)
    elif request.content_type in _FORM_TYPES:
        form = await request.post()
        data.update({k: v for k, v in form.items() if isinstance(v, str)})
    else:
        raise ApiError("invalid_form_data")
    return data


def _token(request: web.Request, data: dict[str, Any]) -> str | None:
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, bearer = header.partition(" ")
        return bearer.strip() if scheme.lower() == "bearer" else ""
    field = data.get("token")
    return str(field) if field is not None else None


def slack_json(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def _fault_response(fault: Fault) -> tuple[web.Response, str]:
    if fault.status == 429:
        retry_after = str(fault.retry_after if fault.retry_after is not None else 1)
        body = {"ok": False, "error": "ratelimited"}
        return slack_json(body, 429, {"Retry-After": retry_after}), "ratelimited"
    if fault.status is not None and fault.error:
        return slack_json({"ok": False, "error": fault.error}, fault.status), fault.error
    if fault.status is not None:
        text = f"{fault.status} sandbox injected failure"
        return web.Response(status=fault.status, text=text), f"http_{fault.status}"
    error = fault.error or "internal_error"
    return slack_json({"ok": False, "error": error}), error


def _drop(request: web.Request) -> web.Response:
    """Closes the connection before answering: the client sees the server disconnect (aiohttp's
    ServerDisconnectedError), as when a load balancer drops a connection after Slack did the work. aiohttp
    does not write the returned response to a closed transport."""
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=200)


def _call(
    state: SandboxState, method: str, args: Args, request: web.Request
) -> tuple[web.Response, str | None]:
    handler = METHODS.get(method)
    if handler is None:
        return slack_json({"ok": False, "error": "unknown_method"}), "unknown_method"
    token = _token(request, args.data)
    if not token:
        return slack_json({"ok": False, "error": "not_authed"}), "not_authed"
    if token != state.token:
        return slack_json({"ok": False, "error": "invalid_auth"}), "invalid_auth"
    try:
        result = handler(state, args)
    except Refused as refused:
        state.refuse(method, refused)
        return slack_json({"ok": False, "error": refused.error, **refused.extra}), refused.error
    except RateLimited as limited:
        headers = {"Retry-After": str(limited.retry_after)}
        return slack_json({"ok": False, "error": "ratelimited"}, 429, headers), "ratelimited"
    except ApiError as err:
        return slack_json({"ok": False, "error": err.error, **err.extra}), err.error
    return slack_json({"ok": True, **result}), None


async def handle_api(request: web.Request) -> web.Response:
    state = state_of(request)
    method = request.match_info["method"]
    if method == api_files.UPLOAD:  # an upload URL handed out by files.getUploadURLExternal: raw bytes
        return await api_files.handle_upload(state, request)
    try:
        args = Args(await read_args(request))
    except ApiError as err:
        state.call_log.record(method, {}, 200, err.error)
        return slack_json({"ok": False, "error": err.error})
    fault = state.take_fault(method)
    if fault is not None:
        if fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        if fault.drop:
            _call(state, method, args, request)
            state.call_log.record(method, args.redacted(), 0, DROPPED)
            return _drop(request)
        if fault.after_effect:
            _call(state, method, args, request)  # the effect happens; the caller never hears of it
        if fault.status is not None or fault.error is not None:
            injected, reason = _fault_response(fault)
            state.call_log.record(method, args.redacted(), injected.status, reason)
            return injected
    response, error = _call(state, method, args, request)
    state.call_log.record(method, args.redacted(), response.status, error)
    return response
