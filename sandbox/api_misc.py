"""auth.test, users.info, bookmarks.* and views.* Web API methods."""

from __future__ import annotations

from typing import Any

from sandbox.args import Args, invalid_arguments
from sandbox.models import BOT_ID, BOT_NAME, BOT_USER_ID, TEAM_ID, TEAM_NAME, ApiError, Bookmark, Channel
from sandbox.state import SandboxState


def auth_test(state: SandboxState, args: Args) -> dict[str, Any]:
    return {
        "url": f"{state.base_url}/",
        "team": TEAM_NAME,
        "user": BOT_NAME,
        "team_id": TEAM_ID,
        "user_id": BOT_USER_ID,
        "bot_id": BOT_ID,
        "is_enterprise_install": False,
    }


def users_info(state: SandboxState, args: Args) -> dict[str, Any]:
    return {"user": state.user(args.required("user")).to_api(state.now())}


def users_lookup_by_email(state: SandboxState, args: Args) -> dict[str, Any]:
    """As Slack: the exact address, any case; `users_not_found` when nobody has it."""
    email = args.required("email").strip().lower()
    for user in state.users.values():
        if user.email and user.email.lower() == email:
            return {"user": user.to_api(state.now())}
    raise ApiError("users_not_found")


def _bookmark_channel(state: SandboxState, args: Args) -> Channel:
    channel = state.channel(args.required("channel_id"))
    if channel.is_archived:
        raise ApiError("is_archived")
    return channel


def _check_link(link: str) -> None:
    if not link.startswith(("http://", "https://")):
        raise ApiError("invalid_link")


def bookmarks_add(state: SandboxState, args: Args) -> dict[str, Any]:
    channel = _bookmark_channel(state, args)
    title = args.required("title")
    kind = args.required("type")
    if kind != "link":
        raise ApiError("invalid_bookmark_type")
    link = args.text("link") or ""
    _check_link(link)
    now = int(state.now())
    bookmark = Bookmark(
        id=state.new_id("Bk"),
        channel_id=channel.id,
        title=title,
        link=link,
        type=kind,
        emoji=args.text("emoji"),
        created=now,
        updated=now,
        rank=str(len(channel.bookmarks)),
    )
    channel.bookmarks.append(bookmark)
    return {"bookmark": bookmark.to_api()}


def _find_bookmark(channel: Channel, bookmark_id: str) -> Bookmark:
    for bookmark in channel.bookmarks:
        if bookmark.id == bookmark_id:
            return bookmark
    raise ApiError("not_found")


def bookmarks_edit(state: SandboxState, args: Args) -> dict[str, Any]:
    channel = _bookmark_channel(state, args)
    bookmark = _find_bookmark(channel, args.required("bookmark_id"))
    if args.has("link"):
        link = args.text("link") or ""
        _check_link(link)
        bookmark.link = link
    if args.has("title"):
        bookmark.title = args.text("title") or ""
    if args.has("emoji"):
        bookmark.emoji = args.text("emoji")
    bookmark.updated = int(state.now())
    return {"bookmark": bookmark.to_api()}


def bookmarks_remove(state: SandboxState, args: Args) -> dict[str, Any]:
    channel = _bookmark_channel(state, args)
    channel.bookmarks.remove(_find_bookmark(channel, args.required("bookmark_id")))
    return {}


def bookmarks_list(state: SandboxState, args: Args) -> dict[str, Any]:
    channel = state.channel(args.required("channel_id"))
    return {"bookmarks": [b.to_api() for b in channel.bookmarks]}


def _view_arg(args: Args) -> Any:
    if not args.has("view"):
        raise invalid_arguments("missing required field: view")
    return args.data["view"]


def views_open(state: SandboxState, args: Args) -> dict[str, Any]:
    view = _view_arg(args)
    return {"view": state.views.open(args.required("trigger_id"), view).to_api()}


def views_push(state: SandboxState, args: Args) -> dict[str, Any]:
    view = _view_arg(args)
    return {"view": state.views.push(args.required("trigger_id"), view).to_api()}


def views_update(state: SandboxState, args: Args) -> dict[str, Any]:
    view = _view_arg(args)
    view_id, external_id = args.text("view_id"), args.text("external_id")
    if not view_id and not external_id:
        raise invalid_arguments("one of view_id or external_id is required")
    return {"view": state.views.update(view_id, external_id, view, args.text("hash")).to_api()}


METHODS = {
    "auth.test": auth_test,
    "users.info": users_info,
    "users.lookupByEmail": users_lookup_by_email,
    "bookmarks.add": bookmarks_add,
    "bookmarks.edit": bookmarks_edit,
    "bookmarks.remove": bookmarks_remove,
    "bookmarks.list": bookmarks_list,
    "views.open": views_open,
    "views.push": views_push,
    "views.update": views_update,
}
