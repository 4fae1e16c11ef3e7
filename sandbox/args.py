"""Web API arguments as Slack receives them: query string, form fields or a JSON body, all strings or not."""

from __future__ import annotations

import base64
import binascii
import json
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from sandbox.models import ApiError

T = TypeVar("T")

MAX_PAGE = 1000


def invalid_arguments(message: str) -> ApiError:
    return ApiError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {message}"]})


class Args:
    """One call's arguments with Slack's lenient typing (`"1"`, `"true"` and `true` are all true)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, dict | list):
            return json.dumps(value)
        return str(value)

    def required(self, key: str) -> str:
        value = self.text(key)
        if value is None or value == "":
            raise invalid_arguments(f"missing required field: {key}")
        return value

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.data.get(key)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        return str(value).strip().lower() in ("1", "true", "yes")

    def integer(self, key: str, default: int) -> int:
        value = self.data.get(key)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise invalid_arguments(f"{key} must be an integer") from None

    def structured(self, key: str, error: str) -> Any:
        """A JSON argument that form-encoded callers send as a string; `error` if it does not parse."""
        value = self.data.get(key)
        if isinstance(value, str):
            if not value.strip():
                return None
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                raise ApiError(error) from None
        return value

    def id_list(self, key: str) -> list[str]:
        value = self.data.get(key)
        if value is None:
            return []
        items = value if isinstance(value, list) else str(value).split(",")
        return [str(item).strip() for item in items if str(item).strip()]

    def ts(self, key: str, error: str) -> Decimal | None:
        value = self.text(key)
        if value is None or value == "":
            return None
        try:
            return Decimal(value)
        except InvalidOperation:
            raise ApiError(error) from None

    def redacted(self) -> dict[str, Any]:
        return {k: v for k, v in self.data.items() if k != "token"}


def encode_cursor(offset: int) -> str:
    return base64.b64encode(f"sandbox:{offset}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        prefix, _, offset = base64.b64decode(cursor, validate=True).decode().partition(":")
        if prefix != "sandbox" or int(offset) < 0:
            raise ValueError(cursor)
        return int(offset)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ApiError("invalid_cursor") from None


def paginate(items: list[T], args: Args, default_limit: int = 100) -> tuple[list[T], str]:
    """One page of items and the next cursor ("" at the end)."""
    limit = args.integer("limit", default_limit)
    if limit <= 0:
        limit = default_limit
    limit = min(limit, MAX_PAGE)
    cursor = args.text("cursor") or ""
    offset = decode_cursor(cursor) if cursor else 0
    end = offset + limit
    return items[offset:end], encode_cursor(end) if end < len(items) else ""
