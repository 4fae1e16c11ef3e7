"""`/_sandbox/*`: inspect and steer the sandbox, and act as the humans and the Slack platform."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox import mrkdwn
from sandbox.models import BOT_USER_ID, ApiError
from sandbox.platform import NoIngress, Platform
from sandbox.refusals import Refused
from sandbox.state import SandboxState
from sandbox.views import SubmissionError
from sandbox.webapi import STATE_KEY, slack_json, state_of

PLATFORM_KEY = web.AppKey("sandbox_platform", Platform)

_NOT_FOUND = {"channel_not_found", "message_not_found", "not_found", "thread_not_found", "user_not_found"}


class ControlError(Exception):
    def __init__(self, error: str, status: int = 400, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.extra = extra


def _error(error: str, status: int, **extra: Any) -> web.Response:
    return slack_json({"ok": False, "error": error, **extra}, status)


@web.middleware
async def control_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Control endpoints answer failures as JSON with a 4xx status; the Web API has its own rules."""
    if not request.path.startswith("/_sandbox/"):
        return await handler(request)
    try:
        return await handler(request)
    except ControlError as err:
        return _error(err.error, err.status, **err.extra)
    except ApiError as err:
        return _error(err.error, 404 if err.error in _NOT_FOUND else 400, **err.extra)
    except SubmissionError as err:
        return _error(err.error, 400, detail=err.detail)
    except NoIngress:
        return _error("no_ingress_url", 409, detail="set the sandbox's ingress_url first")
    except ValueError as err:
        return _error("invalid_request", 400, detail=str(err))


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.body_exists:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise ControlError("invalid_json") from None
    if not isinstance(body, dict):
        raise ControlError("invalid_json")
    return body


def _need(body: dict[str, Any], *keys: str) -> None:
    missing = [key for key in keys if body.get(key) in (None, "")]
    if missing:
        raise ControlError("missing_fields", fields=missing)


def _ok(**data: Any) -> web.Response:
    return slack_json({"ok": True, **data})


# --- inspection -------------------------------------------------------------------------------------------


async def get_state(request: web.Request) -> web.Response:
    return _ok(**state_of(request).snapshot())


async def list_channels(request: web.Request) -> web.Response:
    state = state_of(request)
    name = request.query.get("name")
    channels = [c for c in state.channels.values() if not c.is_im and (name is None or c.name == name)]
    return _ok(channels=[state.channel_summary(c) for c in channels])


async def channel_messages(request: web.Request) -> web.Response:
    state = state_of(request)
    channel = state.channel(request.match_info["channel_id"], viewer=None)
    return _ok(channel=channel.id, messages=state.channel_messages(channel))


async def list_calls(request: web.Request) -> web.Response:
    state = state_of(request)
    method = request.query.get("method")
    calls = state.calls if method is None else state.calls_for(method)
    return _ok(calls=[c.to_dict() for c in calls], counts=state.call_log.counts())


async def ephemerals(request: web.Request) -> web.Response:
    state = state_of(request)
    user_id = request.query.get("user_id")
    found = state.ephemerals if user_id is None else state.ephemerals_for(user_id)
    return _ok(ephemerals=[e.to_dict() for e in found])


# --- steering ---------------------------------------------------------------------------------------------


async def reset(request: web.Request) -> web.Response:
    state_of(request).reset()
    return _ok()


async def create_channel(request: web.Request) -> web.Response:
    body = await _body(request)
    _need(body, "name")
    members = [str(m) for m in body.get("members") or []]
    creator = str(body["creator"]) if body.get("creator") else None
    channel = state_of(request).create_human_channel(
        str(body["name"]), is_private=bool(body.get("is_private", False)), members=members, creator=creator
    )
    return _ok(id=channel.id, channel=state_of(request).channel_summary(channel))


async def add_user(request: web.Request) -> web.Response:
    body = await _body(request)
    _need(body, "id")
    state = state_of(request)
    user = state.add_user(
        str(body["id"]),
        name=body.get("name"),
        tz=body.get("tz"),
        real_name=body.get("real_name"),
        is_bot=bool(body.get("is_bot", False)),
        email=body.get("email"),
    )
    return _ok(user=user.to_api(state.now()))


async def create_usergroup(request: web.Request) -> web.Response:
    body = await _body(request)
    _need(body, "handle")
    state = state_of(request)
    group_id = str(body.get("id") or state.new_id("S"))
    group = state.usergroups.create(group_id, str(body["handle"]), [str(u) for u in body.get("users") or []])
    return _ok(usergroup=state.usergroups.to_api(group))


async def add_fault(request: web.Request) -> web.Response:
    body = await _body(request)
    _need(body, "method")
    fault = state_of(request).add_fault(
        str(body["method"]),
        error=body.get("error"),
        status=int(body["status"]) if body.get("status") is not None else None,
        retry_after=int(body["retry_after"]) if body.get("retry_after") is not None else None,
        count=int(body.get("count", 1)),
        delay_ms=int(body.get("delay_ms") or 0),
        skip=int(body.get("skip") or 0),
        after_effect=bool(body.get("after_effect")),
        drop=bool(body.get("drop")),
    )
    return _ok(fault=fault.to_dict())


async def clear_faults(request: web.Request) -> web.Response:
    state_of(request).clear_faults()
    return _ok()


async def list_faults(request: web.Request) -> web.Response:
    return _ok(faults=[f.to_dict() for f in state_of(request).faults])


async def issue_trigger(request: web.Request) -> web.Response:
    body = await _body(request)
    _need(body, "user_id")
    state = state_of(request)
    return _ok(trigger_id=state.issue_trigger(state.user(str(body["user_id"])).id))


# --- humans and the platform ------------------------------------------------------------------------------


def stored_text(state: SandboxState, body: dict[str, Any]) -> str | None:
    """The text as Slack stores it: typed text escaped and linkified, or `formatted` text checked as is."""
    text = body.get("text")
    if text is None:
        return None
    text = str(text)
    if body.get("formatted"):
        problem = mrkdwn.stored_text_problem(text)
        if problem is not None:
            raise ControlError("invalid_formatted_text", detail=problem)
        return text
    return mrkdwn.from_typed(text, {u.name: u.id for u in state.users.values() if not u.is_bot})


async def human_message(request: web.Request) -> web.Response:
    """A person posts: `text` as typed in the Slack client, or with `formatted` already in Slack's stored form
    (`&amp;`, `<https://x|label>`), which must then be well-formed."""
    body = await _body(request)
    _need(body, "user_id", "channel_id")
    state = state_of(request)
    user = state.user(str(body["user_id"]))
    channel = state.channel(str(body["channel_id"]), viewer=None)
    blocks = body.get("blocks")
    message = state.post(
        channel,
        user=user.id,
        text=stored_text(state, body),
        blocks=blocks if isinstance(blocks, list) else None,
        thread_ts=body.get("thread_ts") or None,
        broadcast=bool(body.get("reply_broadcast", False)),
    )
    delivery = None
    if body.get("deliver_event"):  # opt in: most tests post context that no app should hear of
        delivery = await request.app[PLATFORM_KEY].message_posted(channel.id, message.ts)
    rendered = channel.render(message, include_metadata=True)
    return _ok(channel=channel.id, ts=message.ts, message=rendered, delivery=delivery)


async def command(request: web.Request) -> web.Response:
    body = await _body(request)
    _need(body, "user_id", "channel_id")
    result = await request.app[PLATFORM_KEY].command(
        str(body["user_id"]),
        str(body["channel_id"]),
        str(body.get("text") or ""),
        str(body.get("command") or "/incident"),
    )
    return _ok(**result)


async def react(request: web.Request) -> web.Response:
    body = await _body(request)
    _need(body, "user_id", "channel_id", "ts", "reaction")
    result = await request.app[PLATFORM_KEY].react(
        str(body["user_id"]),
        str(body["channel_id"]),
        str(body["ts"]),
        str(body["reaction"]),
        repeat=int(body.get("repeat") or 0),
        remove=bool(body.get("remove", False)),
    )
    return _ok(**result)


async def submit_view(request: web.Request) -> web.Response:
    body = await _body(request)
    _need(body, "view_id")
    values = body.get("values") or {}
    if not isinstance(values, dict):
        raise ControlError("invalid_values")
    user_id = body.get("user_id")
    result = await request.app[PLATFORM_KEY].submit_view(
        str(body["view_id"]), values, str(user_id) if user_id else None
    )
    return _ok(**result)


async def click(request: web.Request) -> web.Response:
    body = await _body(request)
    _need(body, "user_id", "channel_id", "ts", "action_id")
    result = await request.app[PLATFORM_KEY].click(
        str(body["user_id"]), str(body["channel_id"]), str(body["ts"]), str(body["action_id"])
    )
    return _ok(**result)


async def respond(request: web.Request) -> web.Response:
    """The response_url the sandbox hands out: the app POSTs what the user should see."""
    state = state_of(request)
    target = state.response_urls.get(request.match_info["response_id"])
    if target is None:
        raise ControlError("expired_url", 404)
    body = await _body(request)
    target.uses += 1
    try:
        request.app[PLATFORM_KEY].record_response(target, body, source="response_url")
    except Refused as refused:  # Slack answers a bad response_url post with 400 and the error
        return _error(refused.error, 400, **refused.extra)
    return _ok()


async def permalink_target(request: web.Request) -> web.Response:
    """Where a permalink points: the message as JSON."""
    state = request.app[STATE_KEY]
    channel = state.channels.get(request.match_info["channel_id"])
    raw = request.match_info["p"].removeprefix("p")
    ts = f"{raw[:-6]}.{raw[-6:]}"
    if channel is None or ts not in channel.messages:
        return _error("message_not_found", 404)
    return _ok(channel=channel.id, message=channel.render(channel.messages[ts], include_metadata=True))


async def index(request: web.Request) -> web.Response:
    return _ok(sandbox=True, api_url=f"{state_of(request).base_url}/api/", bot_user_id=BOT_USER_ID)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/", index)
    r.add_get("/archives/{channel_id}/{p}", permalink_target)
    r.add_get("/_sandbox/state", get_state)
    r.add_post("/_sandbox/reset", reset)
    r.add_get("/_sandbox/channels", list_channels)
    r.add_post("/_sandbox/channels", create_channel)
    r.add_get("/_sandbox/channels/{channel_id}/messages", channel_messages)
    r.add_post("/_sandbox/users", add_user)
    r.add_post("/_sandbox/usergroups", create_usergroup)
    r.add_get("/_sandbox/calls", list_calls)
    r.add_get("/_sandbox/faults", list_faults)
    r.add_post("/_sandbox/faults", add_fault)
    r.add_delete("/_sandbox/faults", clear_faults)
    r.add_post("/_sandbox/triggers", issue_trigger)
    r.add_get("/_sandbox/ephemeral", ephemerals)
    r.add_post("/_sandbox/message", human_message)
    r.add_post("/_sandbox/command", command)
    r.add_post("/_sandbox/react", react)
    r.add_post("/_sandbox/submit_view", submit_view)
    r.add_post("/_sandbox/click", click)
    r.add_post("/_sandbox/respond/{response_id}", respond)
