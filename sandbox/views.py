"""Modals: trigger ids the platform issued, the views the app opened, and what a submission carries."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.blockkit import view_problem
from sandbox.models import APP_ID, BOT_ID, TEAM_ID, ApiError
from sandbox.refusals import Refused

MAX_VIEW_BLOCKS = 100
MAX_TITLE = 24
MAX_PRIVATE_METADATA = 3000
MAX_CALLBACK_ID = 255
MAX_STACK = 3

# What an untouched element of each type puts in state.values, and where its initial value comes from.
_ELEMENT_VALUES: dict[str, tuple[str, str, Any]] = {
    "plain_text_input": ("value", "initial_value", None),
    "number_input": ("value", "initial_value", None),
    "email_text_input": ("value", "initial_value", None),
    "url_text_input": ("value", "initial_value", None),
    "rich_text_input": ("rich_text_value", "initial_value", None),
    "static_select": ("selected_option", "initial_option", None),
    "external_select": ("selected_option", "initial_option", None),
    "radio_buttons": ("selected_option", "initial_option", None),
    "multi_static_select": ("selected_options", "initial_options", []),
    "multi_external_select": ("selected_options", "initial_options", []),
    "checkboxes": ("selected_options", "initial_options", []),
    "users_select": ("selected_user", "initial_user", None),
    "multi_users_select": ("selected_users", "initial_users", []),
    "conversations_select": ("selected_conversation", "initial_conversation", None),
    "multi_conversations_select": ("selected_conversations", "initial_conversations", []),
    "channels_select": ("selected_channel", "initial_channel", None),
    "multi_channels_select": ("selected_channels", "initial_channels", []),
    "datepicker": ("selected_date", "initial_date", None),
    "timepicker": ("selected_time", "initial_time", None),
    "datetimepicker": ("selected_date_time", "initial_date_time", None),
}


class SubmissionError(Exception):
    """The sandbox's user could not have submitted this (unknown block, missing required input...)."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(f"{error}: {detail}")
        self.error = error
        self.detail = detail


@dataclass
class Trigger:
    user_id: str
    issued_at: float
    used: bool = False


@dataclass
class StoredView:
    id: str
    user_id: str
    view: dict[str, Any]  # as the app sent it
    hash: str
    root_view_id: str
    previous_view_id: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    closed: bool = False
    errors: dict[str, str] | None = None

    def to_api(self) -> dict[str, Any]:
        v = self.view
        return {
            "id": self.id,
            "team_id": TEAM_ID,
            "type": v.get("type", "modal"),
            "blocks": v.get("blocks", []),
            "private_metadata": v.get("private_metadata", ""),
            "callback_id": v.get("callback_id", ""),
            "state": {"values": self.values},
            "hash": self.hash,
            "title": v.get("title"),
            "clear_on_close": bool(v.get("clear_on_close", False)),
            "notify_on_close": bool(v.get("notify_on_close", False)),
            "close": v.get("close"),
            "submit": v.get("submit"),
            "previous_view_id": self.previous_view_id,
            "root_view_id": self.root_view_id,
            "app_id": APP_ID,
            "external_id": v.get("external_id", ""),
            "app_installed_team_id": TEAM_ID,
            "bot_id": BOT_ID,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.to_api(), "user_id": self.user_id, "closed": self.closed, "errors": self.errors}


def _invalid(message: str) -> Refused:
    return Refused("invalid_arguments", message)


def _text_len(obj: Any) -> int:
    return len(str(obj.get("text", ""))) if isinstance(obj, dict) else 0


def parse_view(raw: Any) -> dict[str, Any]:
    """Checks a view the way Slack does before storing it (these checks, then slack-sdk's models'); raises
    `invalid_arguments` with a reason."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raise Refused("invalid_json", "view is not valid JSON") from None
    if not isinstance(raw, dict):
        raise _invalid("view must be an object")
    if raw.get("type") not in ("modal", "home"):
        raise _invalid("must be one of modal, home [json-pointer:/view/type]")
    blocks = raw.get("blocks")
    if not isinstance(blocks, list) or len(blocks) > MAX_VIEW_BLOCKS:
        raise _invalid(f"blocks must be a list of at most {MAX_VIEW_BLOCKS} [json-pointer:/view/blocks]")
    seen: set[str] = set()
    has_input = False
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise _invalid(f"missing required field: type [json-pointer:/view/blocks/{i}]")
        block_id = block.get("block_id")
        if block_id is not None:
            if block_id in seen:
                raise _invalid(f"duplicate block_id {block_id} [json-pointer:/view/blocks/{i}/block_id]")
            seen.add(block_id)
        if block["type"] == "input":
            has_input = True
            if not isinstance(block.get("element"), dict) or not isinstance(block.get("label"), dict):
                raise _invalid(f"input needs element and label [json-pointer:/view/blocks/{i}]")
    if raw["type"] == "modal":
        if not isinstance(raw.get("title"), dict):
            raise _invalid("missing required field: title [json-pointer:/view/title]")
        for key in ("title", "submit", "close"):
            if _text_len(raw.get(key)) > MAX_TITLE:
                raise _invalid(
                    f"must be less than {MAX_TITLE + 1} characters [json-pointer:/view/{key}/text]"
                )
        if has_input and not isinstance(raw.get("submit"), dict):
            raise _invalid("submit is required when an input block is present [json-pointer:/view/submit]")
    if len(str(raw.get("private_metadata", ""))) > MAX_PRIVATE_METADATA:
        raise _invalid(
            "private_metadata must be at most 3000 characters [json-pointer:/view/private_metadata]"
        )
    if len(str(raw.get("callback_id", ""))) > MAX_CALLBACK_ID:
        raise _invalid("callback_id must be at most 255 characters [json-pointer:/view/callback_id]")
    problem = view_problem(raw)
    if problem is not None:
        raise _invalid(problem)
    return raw


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def build_values(view: dict[str, Any], provided: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`state.values` for a submission: the given values over each input's initial (or empty) value."""
    blocks = [b for b in view.get("blocks", []) if isinstance(b, dict)]
    by_id = {b["block_id"]: b for b in blocks if b.get("block_id")}
    for block_id in provided:
        if block_id not in by_id:
            raise SubmissionError("unknown_block_id", f"no block with block_id {block_id!r} in the view")
    values: dict[str, dict[str, Any]] = {}
    for index, block in enumerate(blocks):
        element = block.get("element") if block.get("type") == "input" else block.get("accessory")
        block_id = str(block.get("block_id") or f"sandbox_block_{index}")
        given = provided.get(block_id)
        if not isinstance(element, dict):
            if given is not None:
                values[block_id] = dict(given)
            continue
        etype = str(element.get("type", ""))
        action_id = str(element.get("action_id") or f"sandbox_action_{index}")
        if given is not None:
            if not isinstance(given, dict):
                raise SubmissionError("invalid_values", f"values[{block_id!r}] must map action_id to a value")
            if element.get("action_id") and set(given) != {action_id}:
                raise SubmissionError("unknown_action_id", f"block {block_id!r} has action_id {action_id!r}")
            state = {key: dict(val) for key, val in given.items()}
            for val in state.values():
                val.setdefault("type", etype)
        elif block.get("type") == "input":
            key, initial_key, empty = _ELEMENT_VALUES.get(etype, ("value", "initial_value", None))
            initial = element.get(initial_key, empty)
            state = {action_id: {"type": etype, key: initial}}
        else:
            continue
        if block.get("type") == "input" and not block.get("optional", False):
            for val in state.values():
                key = _ELEMENT_VALUES.get(str(val.get("type")), ("value", "", None))[0]
                if _is_empty(val.get(key)):
                    raise SubmissionError("required_field_missing", f"input block {block_id!r} is required")
        values[block_id] = state
    return values


class ViewStore:
    """Trigger ids and the modal stack of each user."""

    def __init__(self, clock: Callable[[], float], new_id: Callable[[str], str], trigger_ttl: float) -> None:
        self._clock = clock
        self._new_id = new_id
        self.trigger_ttl = trigger_ttl
        self.triggers: dict[str, Trigger] = {}
        self.views: dict[str, StoredView] = {}

    def issue_trigger(self, user_id: str) -> str:
        now = self._clock()
        trigger_id = f"{self._new_id('')}.{int(now)}.{secrets.token_hex(16)}"
        self.triggers[trigger_id] = Trigger(user_id=user_id, issued_at=now)
        return trigger_id

    def add_trigger(self, trigger_id: str, user_id: str) -> None:
        """Lets a test make up a trigger id that views.open will accept."""
        self.triggers[trigger_id] = Trigger(user_id=user_id, issued_at=self._clock())

    def _exchange(self, trigger_id: str) -> Trigger:
        trigger = self.triggers.get(trigger_id)
        if trigger is None:
            raise ApiError("invalid_trigger_id")
        if trigger.used:
            raise ApiError("exchanged_trigger_id")
        if self._clock() - trigger.issued_at > self.trigger_ttl:
            raise ApiError("expired_trigger_id")
        trigger.used = True
        return trigger

    def _new_hash(self) -> str:
        return f"{int(self._clock())}.{secrets.token_hex(4)}"

    def _stack(self, user_id: str) -> list[StoredView]:
        return [v for v in self.views.values() if v.user_id == user_id and not v.closed]

    def open(self, trigger_id: str, raw_view: Any) -> StoredView:
        view = parse_view(raw_view)
        trigger = self._exchange(trigger_id)
        for old in self._stack(trigger.user_id):
            old.closed = True
        view_id = self._new_id("V")
        stored = StoredView(view_id, trigger.user_id, view, self._new_hash(), root_view_id=view_id)
        self.views[view_id] = stored
        return stored

    def push(self, trigger_id: str, raw_view: Any) -> StoredView:
        view = parse_view(raw_view)
        trigger = self._exchange(trigger_id)
        return self.push_for(trigger.user_id, view)

    def push_for(self, user_id: str, view: dict[str, Any]) -> StoredView:
        stack = self._stack(user_id)
        if len(stack) >= MAX_STACK:
            raise ApiError("push_limit_reached")
        view_id = self._new_id("V")
        top = stack[-1] if stack else None
        stored = StoredView(
            view_id,
            user_id,
            view,
            self._new_hash(),
            root_view_id=top.root_view_id if top else view_id,
            previous_view_id=top.id if top else None,
        )
        self.views[view_id] = stored
        return stored

    def find(self, view_id: str | None, external_id: str | None = None) -> StoredView:
        if view_id:
            found = self.views.get(view_id)
        else:
            found = next(
                (v for v in self.views.values() if external_id and v.view.get("external_id") == external_id),
                None,
            )
        if found is None:
            raise ApiError("not_found")
        return found

    def update(
        self, view_id: str | None, external_id: str | None, raw_view: Any, hash_: str | None
    ) -> StoredView:
        view = parse_view(raw_view)
        stored = self.find(view_id, external_id)
        if hash_ and hash_ != stored.hash:
            raise ApiError("hash_conflict")
        self.replace(stored, view)
        return stored

    def replace(self, stored: StoredView, view: dict[str, Any]) -> None:
        stored.view = view
        stored.hash = self._new_hash()
        stored.values = {}
        stored.errors = None

    def close_stack(self, root_view_id: str) -> None:
        for view in self.views.values():
            if view.root_view_id == root_view_id:
                view.closed = True
