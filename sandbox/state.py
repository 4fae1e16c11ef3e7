"""The sandbox's whole in-memory Slack workspace; the Web API and the control API both act on it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.api_usergroups import UserGroups
from sandbox.faults import CallLog, FaultBook, RateLimiter
from sandbox.messages import MessageOps
from sandbox.models import (
    BOT_NAME,
    BOT_USER_ID,
    DEFAULT_HUMAN_ID,
    ApiError,
    Call,
    Channel,
    Ephemeral,
    Fault,
    Message,
    User,
    is_known_tz,
    is_user_id,
    validate_channel_name,
)
from sandbox.refusals import Refusal, RefusalLog, Refused
from sandbox.views import ViewStore


@dataclass
class ResponseUrl:
    id: str
    user_id: str
    channel_id: str
    command: str
    uses: int = 0


class SandboxState(MessageOps):
    """Channels, messages, users, modals, faults and the call log of one sandbox workspace."""

    def __init__(
        self,
        token: str,
        *,
        default_tz: str = "UTC",
        rate_limit_per_channel: bool = False,
        trigger_ttl: float = 3.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.token = token
        self.default_tz = default_tz
        self.rate_limit_per_channel = rate_limit_per_channel
        self.clock = clock
        self.base_url = ""  # set by the server once it listens; used for permalinks and response_urls
        self._counters: dict[str, int] = {}
        self._last_ts = 0
        self.fault_book = FaultBook()
        self.call_log = CallLog(clock)
        self.refusal_log = RefusalLog(clock)
        self.rate_limiter = RateLimiter(clock)
        self.views = ViewStore(clock, self.new_id, trigger_ttl)
        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        self._names: dict[str, str] = {}
        self.dms: dict[str, str] = {}
        self.ephemerals: list[Ephemeral] = []
        self.response_urls: dict[str, ResponseUrl] = {}
        self.deliveries: list[dict[str, Any]] = []
        self.usergroups = UserGroups()
        self.reset()

    def reset(self) -> None:
        """Forgets everything but the configuration; ids and timestamps keep increasing."""
        self.users = {BOT_USER_ID: User(BOT_USER_ID, BOT_NAME, "Warroom", self.default_tz, is_bot=True)}
        self.channels = {}
        self._names = {}
        self.dms = {}
        self.ephemerals = []
        self.response_urls = {}
        self.deliveries = []
        self.usergroups = UserGroups()
        self.views.triggers.clear()
        self.views.views.clear()
        self.fault_book.clear()
        self.call_log.calls.clear()
        self.rate_limiter.clear()

    # --- ids and time ---------------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock()

    def new_id(self, prefix: str) -> str:
        n = self._counters.get(prefix, 0) + 1
        self._counters[prefix] = n
        return f"{prefix}{n:010d}"

    def next_ts(self) -> str:
        """A message ts: wall-clock seconds plus a micro part bumped so every ts is unique and increasing."""
        candidate = int(self.clock()) * 1_000_000 + 100
        self._last_ts = max(candidate, self._last_ts + 1)
        return f"{self._last_ts // 1_000_000}.{self._last_ts % 1_000_000:06d}"

    # --- calls, faults, triggers ----------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        return self.call_log.calls

    def calls_for(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    @property
    def faults(self) -> list[Fault]:
        return self.fault_book.faults

    def add_fault(
        self,
        method: str,
        *,
        error: str | None = None,
        status: int | None = None,
        retry_after: int | None = None,
        count: int = 1,
        delay_ms: int = 0,
        skip: int = 0,
        after_effect: bool = False,
        drop: bool = False,
    ) -> Fault:
        return self.fault_book.add(
            method,
            error=error,
            status=status,
            retry_after=retry_after,
            count=count,
            delay_ms=delay_ms,
            skip=skip,
            after_effect=after_effect,
            drop=drop,
        )

    def clear_faults(self) -> None:
        self.fault_book.clear()

    def take_fault(self, method: str) -> Fault | None:
        return self.fault_book.take(method)

    # --- refusals -------------------------------------------------------------------------------------

    @property
    def refusals(self) -> list[Refusal]:
        """Every content refusal of this sandbox's life, oldest first (`reset` keeps them)."""
        return self.refusal_log.refusals

    def expect_refusals(self, *errors: str) -> None:
        """Declares refusals a test means to provoke (e.g. "invalid_blocks"); none given: any.
        tests/refusals.py forgets the declaration after each test."""
        self.refusal_log.expect(*errors)

    def refuse(self, method: str, refused: Refused) -> Refusal:
        return self.refusal_log.record(method, refused)

    def issue_trigger(self, user_id: str) -> str:
        return self.views.issue_trigger(user_id)

    def add_trigger(self, trigger_id: str, user_id: str) -> None:
        self.views.add_trigger(trigger_id, user_id)

    # --- users ----------------------------------------------------------------------------------------

    def user(self, user_id: str) -> User:
        """Any syntactically valid user id is a known user."""
        found = self.users.get(user_id)
        if found is not None:
            return found
        if not is_user_id(user_id):
            raise ApiError("user_not_found")
        created = User(user_id, user_id.lower(), f"User {user_id}", self.default_tz)
        self.users[user_id] = created
        return created

    def add_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        tz: str | None = None,
        real_name: str | None = None,
        is_bot: bool = False,
        email: str | None = None,
    ) -> User:
        if not is_user_id(user_id):
            raise ValueError(f"not a Slack user id: {user_id!r}")
        if tz is not None and not is_known_tz(tz):
            raise ValueError(f"unknown time zone: {tz!r}")
        user = self.user(user_id)
        if name is not None:
            user.name = name
            user.real_name = real_name or name
        if real_name is not None:
            user.real_name = real_name
        if tz is not None:
            user.tz = tz
        user.is_bot = is_bot or user.is_bot
        if email is not None:
            user.email = email
        return user

    # --- channels -------------------------------------------------------------------------------------

    def create_channel(
        self,
        name: str,
        *,
        is_private: bool = False,
        creator: str = BOT_USER_ID,
        members: list[str] | None = None,
    ) -> Channel:
        validate_channel_name(name)
        if name in self._names:
            raise ApiError("name_taken")
        member_ids = list(dict.fromkeys([creator, *(members or [])]))
        for member in member_ids:
            self.user(member)
        channel = Channel(
            id=self.new_id("C"), name=name, created=int(self.now()), creator=creator, is_private=is_private
        )
        channel.members = member_ids
        self.channels[channel.id] = channel
        self._names[name] = channel.id
        return channel

    def create_human_channel(
        self,
        name: str,
        *,
        is_private: bool = False,
        members: list[str] | None = None,
        creator: str | None = None,
    ) -> Channel:
        """A channel a person made in Slack: the bot is a member only if listed."""
        humans = [m for m in members or [] if m != BOT_USER_ID]
        creator = creator or (humans[0] if humans else DEFAULT_HUMAN_ID)
        return self.create_channel(name, is_private=is_private, creator=creator, members=members)

    def channel(self, channel_id: str, *, viewer: str | None = BOT_USER_ID) -> Channel:
        """A conversation by id; a private one the viewer is not in does not exist for them."""
        found = self.channels.get(channel_id)
        if found is None or (viewer is not None and found.is_private and viewer not in found.members):
            raise ApiError("channel_not_found")
        return found

    def channel_by_name(self, name: str) -> Channel | None:
        channel_id = self._names.get(name.removeprefix("#"))
        return self.channels.get(channel_id) if channel_id else None

    def resolve_target(self, target: str, *, viewer: str | None = BOT_USER_ID) -> Channel:
        """What chat.postMessage's `channel` names: a conversation id, a user id (their DM) or a name."""
        if target in self.channels:
            return self.channel(target, viewer=viewer)
        if is_user_id(target):
            return self.open_dm(target)[0]
        by_name = self.channel_by_name(target)
        if by_name is None:
            raise ApiError("channel_not_found")
        return self.channel(by_name.id, viewer=viewer)

    def open_dm(self, user_id: str) -> tuple[Channel, bool]:
        """The bot's DM with the user, and whether it already existed."""
        self.user(user_id)
        existing = self.dms.get(user_id)
        if existing is not None:
            return self.channels[existing], True
        dm = Channel(
            id=self.new_id("D"),
            name=user_id,
            created=int(self.now()),
            creator=BOT_USER_ID,
            is_im=True,
            im_user=user_id,
        )
        dm.members = list(dict.fromkeys([BOT_USER_ID, user_id]))
        self.channels[dm.id] = dm
        self.dms[user_id] = dm.id
        return dm, False

    def rename_channel(self, channel: Channel, name: str) -> None:
        validate_channel_name(name)
        if name != channel.name and name in self._names:
            raise ApiError("name_taken")
        del self._names[channel.name]
        channel.name = name
        self._names[name] = channel.id

    # --- what one user saw ----------------------------------------------------------------------------

    def add_ephemeral(
        self,
        source: str,
        user_id: str,
        channel_id: str,
        text: str,
        *,
        blocks: list[dict[str, Any]] | None = None,
        response_type: str = "ephemeral",
        thread_ts: str | None = None,
        **extra: Any,
    ) -> Ephemeral:
        ephemeral = Ephemeral(
            seq=len(self.ephemerals) + 1,
            source=source,
            user_id=user_id,
            channel_id=channel_id,
            text=text,
            blocks=blocks,
            response_type=response_type,
            ts=self.next_ts(),
            thread_ts=thread_ts,
            extra=extra,
        )
        self.ephemerals.append(ephemeral)
        return ephemeral

    def ephemerals_for(self, user_id: str) -> list[Ephemeral]:
        return [e for e in self.ephemerals if e.user_id == user_id]

    def new_response_url(self, user_id: str, channel_id: str, command: str) -> ResponseUrl:
        target = ResponseUrl(uuid.uuid4().hex, user_id, channel_id, command)
        self.response_urls[target.id] = target
        return target

    # --- inspection -----------------------------------------------------------------------------------

    def channel_messages(self, channel: Channel) -> list[dict[str, Any]]:
        """Top-level messages oldest first, each with its replies, metadata and edit count."""

        def inspect(message: Message) -> dict[str, Any]:
            return {**channel.render(message, include_metadata=True), "edit_count": message.edit_count}

        return [
            {**inspect(m), "replies": [inspect(channel.messages[r]) for r in m.replies]}
            for m in channel.messages.values()
            if m.thread_ts is None
        ]

    def channel_summary(self, channel: Channel) -> dict[str, Any]:
        return {
            **channel.to_api(),
            "name": channel.name,
            "is_im": channel.is_im,
            "user": channel.im_user,
            "members": list(channel.members),
            "bookmarks": [b.to_api() for b in channel.bookmarks],
        }

    def snapshot(self) -> dict[str, Any]:
        now = self.now()
        return {
            "channels": [self.channel_summary(c) for c in self.channels.values() if not c.is_im],
            "dms": dict(self.dms),
            "messages": {c.id: self.channel_messages(c) for c in self.channels.values()},
            "users": [u.to_api(now) for u in self.users.values()],
            "ephemerals": [e.to_dict() for e in self.ephemerals],
            "views": [v.to_dict() for v in self.views.views.values()],
            "faults": [f.to_dict() for f in self.faults],
            "calls": self.call_log.counts(),
            "refusals": [r.to_dict() for r in self.refusals],
            "deliveries": list(self.deliveries),
        }
