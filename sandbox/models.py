"""Plain records the sandbox keeps, the identities it plays, and the Slack-shaped views of them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

BOT_USER_ID = "UBOT0WARROOM"
BOT_ID = "BWARROOM"
BOT_NAME = "warroom"
TEAM_ID = "T0SANDBOX"
TEAM_NAME = "Warroom Sandbox"
TEAM_DOMAIN = "warroom-sandbox"
APP_ID = "A0WARROOM01"
VERIFICATION_TOKEN = "sandbox-verification-token"
DEFAULT_HUMAN_ID = "U0SANDBOX01"

MAX_CHANNEL_NAME = 80
MAX_PURPOSE = 250
MAX_TEXT = 40_000
MAX_MESSAGE_BLOCKS = 50

_USER_ID = re.compile(r"[UW][A-Za-z0-9]+")
_CHANNEL_NAME = re.compile(r"[a-z0-9_-]+")


class ApiError(Exception):
    """A Web API failure: answered as HTTP 200 `{"ok": false, "error": <error>, **extra}`."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


class RateLimited(Exception):
    """Answered as HTTP 429 with a Retry-After header."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("ratelimited")
        self.retry_after = retry_after


def is_user_id(value: str) -> bool:
    return bool(_USER_ID.fullmatch(value))


def validate_channel_name(name: str) -> None:
    """Raises the error Slack gives for a bad channel name."""
    if not name:
        raise ApiError("invalid_name_required")
    if len(name) > MAX_CHANNEL_NAME:
        raise ApiError("invalid_name_maxlength")
    if not _CHANNEL_NAME.fullmatch(name):
        raise ApiError("invalid_name_specials")
    if not name.strip("-_"):
        raise ApiError("invalid_name_punctuation")


def tz_offset(tz: str, at: float) -> int:
    """Seconds east of UTC for the zone at the given instant (0 for an unknown zone)."""
    try:
        offset = datetime.fromtimestamp(at, ZoneInfo(tz)).utcoffset()
    except (ZoneInfoNotFoundError, ValueError):
        return 0
    return int(offset.total_seconds()) if offset is not None else 0


def is_known_tz(tz: str) -> bool:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@dataclass
class User:
    id: str
    name: str
    real_name: str
    tz: str
    is_bot: bool = False
    email: str = ""  # set with SandboxState.add_user(email=...); `users.lookupByEmail` finds it

    def to_api(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "team_id": TEAM_ID,
            "name": self.name,
            "real_name": self.real_name,
            "deleted": False,
            "tz": self.tz,
            "tz_label": self.tz,
            "tz_offset": tz_offset(self.tz, now),
            "is_bot": self.is_bot,
            "is_app_user": False,
            "profile": {
                "real_name": self.real_name,
                "display_name": self.name,
                "team": TEAM_ID,
                **({"email": self.email} if self.email else {}),
                **({"bot_id": BOT_ID} if self.id == BOT_USER_ID else {}),
            },
        }


@dataclass
class Message:
    channel: str
    ts: str
    user: str
    text: str
    bot_id: str | None = None
    blocks: list[dict[str, Any]] | None = None
    thread_ts: str | None = None  # the parent's ts for a reply, None for a top-level message
    metadata: dict[str, Any] | None = None
    subtype: str | None = None
    edited: dict[str, str] | None = None
    edit_count: int = 0
    replies: list[str] = field(default_factory=list)  # reply ts, oldest first (parents only)
    reactions: dict[str, list[str]] = field(default_factory=dict)
    files: list[dict[str, Any]] | None = None  # files shared with this message (files.completeUploadExternal)

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None

    @property
    def in_history(self) -> bool:
        """Shown in conversations.history: top-level messages and replies also sent to the channel."""
        return self.thread_ts is None or self.subtype == "thread_broadcast"


@dataclass
class Bookmark:
    id: str
    channel_id: str
    title: str
    link: str
    type: str
    emoji: str | None
    created: int
    updated: int
    rank: str

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "channel_id": self.channel_id,
            "title": self.title,
            "link": self.link,
            "emoji": self.emoji,
            "icon_url": None,
            "type": self.type,
            "entity_id": None,
            "date_created": self.created,
            "date_updated": self.updated,
            "rank": self.rank,
            "last_updated_by_user_id": BOT_USER_ID,
            "last_updated_by_team_id": TEAM_ID,
            "shortcut_id": None,
            "app_id": APP_ID,
        }


@dataclass
class Channel:
    id: str
    name: str
    created: int
    creator: str
    is_private: bool = False
    is_im: bool = False
    im_user: str | None = None
    is_archived: bool = False
    members: list[str] = field(default_factory=list)
    purpose: dict[str, Any] = field(default_factory=lambda: {"value": "", "creator": "", "last_set": 0})
    topic: dict[str, Any] = field(default_factory=lambda: {"value": "", "creator": "", "last_set": 0})
    bookmarks: list[Bookmark] = field(default_factory=list)
    messages: dict[str, Message] = field(default_factory=dict)  # every message incl. replies, by ts

    def to_api(self, viewer: str = BOT_USER_ID) -> dict[str, Any]:
        if self.is_im:
            return {
                "id": self.id,
                "created": self.created,
                "is_im": True,
                "is_org_shared": False,
                "user": self.im_user,
                "is_user_deleted": False,
                "is_archived": False,
                "is_open": True,
                "priority": 0,
                "context_team_id": TEAM_ID,
            }
        return {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": True,
            "is_group": False,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "is_general": False,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "is_pending_ext_shared": False,
            "is_archived": self.is_archived,
            "is_member": viewer in self.members,
            "created": self.created,
            "creator": self.creator,
            "unlinked": 0,
            "context_team_id": TEAM_ID,
            "parent_conversation": None,
            "pending_shared": [],
            "previous_names": [],
            "purpose": dict(self.purpose),
            "topic": dict(self.topic),
            "num_members": len(self.members),
        }

    def render(self, msg: Message, *, include_metadata: bool) -> dict[str, Any]:
        """The message as the Web API returns it."""
        out: dict[str, Any] = {"type": "message", "ts": msg.ts, "user": msg.user, "text": msg.text}
        if msg.subtype:
            out["subtype"] = msg.subtype
        if msg.bot_id:
            out["bot_id"] = msg.bot_id
            out["app_id"] = APP_ID
        out["team"] = TEAM_ID
        if msg.blocks is not None:
            out["blocks"] = msg.blocks
        if msg.files:
            out["files"] = [dict(f) for f in msg.files]
            out["upload"] = True
        if msg.thread_ts is not None:
            out["thread_ts"] = msg.thread_ts
            parent = self.messages.get(msg.thread_ts)
            if parent is not None:
                out["parent_user_id"] = parent.user
        elif msg.replies:
            replies = [self.messages[ts] for ts in msg.replies if ts in self.messages]
            users = list(dict.fromkeys(reply.user for reply in replies))
            out["thread_ts"] = msg.ts
            out["reply_count"] = len(replies)
            out["reply_users"] = users
            out["reply_users_count"] = len(users)
            out["latest_reply"] = replies[-1].ts if replies else msg.ts
        if msg.edited is not None:
            out["edited"] = dict(msg.edited)
        if msg.reactions:
            out["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)}
                for name, users in msg.reactions.items()
            ]
        if include_metadata and msg.metadata is not None:
            out["metadata"] = msg.metadata
        return out


@dataclass
class Ephemeral:
    """Something only one user saw: chat.postEphemeral, a slash command's ack or a response_url post."""

    seq: int
    source: str  # "chat.postEphemeral" | "command_ack" | "response_url"
    user_id: str
    channel_id: str
    text: str
    blocks: list[dict[str, Any]] | None = None
    response_type: str = "ephemeral"
    ts: str | None = None
    thread_ts: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "source": self.source,
            "user_id": self.user_id,
            "channel_id": self.channel_id,
            "text": self.text,
            "blocks": self.blocks,
            "response_type": self.response_type,
            "ts": self.ts,
            "thread_ts": self.thread_ts,
            **self.extra,
        }


@dataclass
class Fault:
    method: str  # a Web API method name, or "*" for any
    error: str | None = None
    status: int | None = None
    retry_after: int | None = None
    remaining: int = 1  # -1: forever
    delay_ms: int = 0
    skip: int = 0  # let this many matching calls through first
    after_effect: bool = False  # perform the call, then answer with the failure (a lost response)
    drop: bool = False  # perform the call, then close the connection unanswered (a lost response)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "error": self.error,
            "status": self.status,
            "retry_after": self.retry_after,
            "count": self.remaining,
            "delay_ms": self.delay_ms,
            "skip": self.skip,
            "after_effect": self.after_effect,
            "drop": self.drop,
        }


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    status: int
    ok: bool
    error: str | None
    at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "args": self.args,
            "status": self.status,
            "ok": self.ok,
            "error": self.error,
            "at": self.at,
        }
