"""The sandbox's workspace on disk, so `warroom dev` resumes where it stopped.

Only a sandbox given a file persists (`SandboxServer(..., state_file=path)`); tests and the bench never do.
What is kept: users, channels (members, topic, purpose, bookmarks, every message with its thread, reactions
and files), DMs, user groups, uploaded files, ephemerals, response URLs, the ID and ts counters, and the
vendor stand-ins' records (Zoom meetings, Meet spaces, Jira issues). What is not: injected faults, the call
and refusal logs, deliveries, open modals and trigger IDs (they expire within seconds anyway), vendor tokens
(the worker asks for new ones when it restarts).

Every request that can change something is written before its answer leaves (`Persistence.middleware`):
whatever a client was told happened is on disk. A write goes to a temporary file beside the real one, is
flushed to disk, then renamed over it, so a crash or `kill -9` at any moment leaves the old file or the new
one, never a torn one.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from aiohttp import web

from sandbox import api_files
from sandbox.api_usergroups import UserGroup
from sandbox.models import Bookmark, Channel, Ephemeral, Message, User
from sandbox.state import ResponseUrl, SandboxState
from sandbox.vendor import VendorFake

FORMAT = "warroom-slack-sandbox"
VERSION = 1

# Web API methods that only read (everything else may write). A read listed nowhere only costs a save.
_READS = re.compile(r"(\.(info|history|replies|list|members|getPermalink|test)|users\.\w+)$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class SandboxFileError(RuntimeError):
    """The saved workspace cannot be read: one line saying which file and what to do."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(
            f"cannot resume the Slack sandbox from {path} ({why}); "
            "`warroom dev --fresh` starts over (it forgets the saved incidents too)"
        )


# --- to and from JSON --------------------------------------------------------------------------------------


def dump(state: SandboxState, vendors: Sequence[VendorFake]) -> dict[str, Any]:
    files = api_files.store(state).files.values()
    return {
        "format": FORMAT,
        "version": VERSION,
        "slack": {
            "counters": dict(state._counters),
            "last_ts": state._last_ts,
            "users": [asdict(u) for u in state.users.values()],
            "channels": [asdict(c) for c in state.channels.values()],
            "dms": dict(state.dms),
            "usergroups": [asdict(g) for g in state.usergroups.groups.values()],
            "usergroups_read_scope": state.usergroups.read_scope,
            "files": [_file_json(f) for f in files],
            "ephemerals": [asdict(e) for e in state.ephemerals],
            "response_urls": [asdict(r) for r in state.response_urls.values()],
        },
        "vendors": {v.name: v.persisted() for v in vendors},
    }


def _file_json(stored: api_files.StoredFile) -> dict[str, Any]:
    raw = asdict(stored)
    raw["content"] = base64.b64encode(stored.content).decode() if stored.content is not None else None
    return raw


def _channel(raw: dict[str, Any]) -> Channel:
    fields = dict(raw)
    bookmarks = [Bookmark(**b) for b in fields.pop("bookmarks")]
    messages = {m["ts"]: Message(**m) for m in fields.pop("messages").values()}
    return Channel(**fields, bookmarks=bookmarks, messages=messages)


def _file(raw: dict[str, Any]) -> api_files.StoredFile:
    fields = dict(raw)
    content = fields.pop("content")
    stored = api_files.StoredFile(**fields)
    stored.content = base64.b64decode(content, validate=True) if content is not None else None
    return stored


def load(state: SandboxState, vendors: Sequence[VendorFake], saved: Any) -> None:
    """Replaces the state's workspace and the vendors' records with `saved`; ValueError (TypeError,
    KeyError) when it is not a file this version wrote."""
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise ValueError("not a saved Slack sandbox")
    if saved.get("version") != VERSION:
        raise ValueError(f"saved by a version that writes format {saved.get('version')!r}, not {VERSION}")
    slack = saved["slack"]
    users = {u["id"]: User(**u) for u in slack["users"]}
    channels = {c["id"]: _channel(c) for c in slack["channels"]}
    groups = {g["id"]: UserGroup(**g) for g in slack["usergroups"]}
    files = {f["id"]: _file(f) for f in slack["files"]}
    ephemerals = [Ephemeral(**e) for e in slack["ephemerals"]]
    response_urls = {r["id"]: ResponseUrl(**r) for r in slack["response_urls"]}
    counters = {str(k): int(v) for k, v in dict(slack["counters"]).items()}
    last_ts, dms = int(slack["last_ts"]), {str(k): str(v) for k, v in dict(slack["dms"]).items()}
    for vendor in vendors:
        vendor.restore(saved["vendors"][vendor.name])
    state.reset()
    state._counters, state._last_ts = counters, last_ts
    state.users.update(users)
    state.channels = channels
    state._names = {c.name: c.id for c in channels.values() if not c.is_im}
    state.dms = dms
    state.usergroups.groups = groups
    state.usergroups.read_scope = bool(slack["usergroups_read_scope"])
    api_files.store(state).files = files
    state.ephemerals = ephemerals
    state.response_urls = response_urls


# --- on disk -----------------------------------------------------------------------------------------------


def read(path: Path, state: SandboxState, vendors: Sequence[VendorFake]) -> bool:
    """Loads the saved workspace if there is one (False if not); SandboxFileError if it is unreadable."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return False
    except OSError as err:
        raise SandboxFileError(path, err.strerror or type(err).__name__) from None
    try:
        load(state, vendors, json.loads(raw))
    except ValueError as err:
        raise SandboxFileError(path, str(err) if "saved" in str(err) else "not valid JSON") from None
    except (KeyError, TypeError, AttributeError) as err:
        raise SandboxFileError(path, f"unexpected content: {type(err).__name__} {err}") from None
    return True


def write(path: Path, data: dict[str, Any]) -> None:
    """Atomically: a temporary file beside `path`, flushed to disk, renamed over it."""
    body = json.dumps(data, separators=(",", ":")).encode()
    temp = path.with_name(f".{path.name}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


class Persistence:
    """Keeps one sandbox's workspace in `path`."""

    def __init__(self, path: Path, state: SandboxState, vendors: Sequence[VendorFake]) -> None:
        self.path = path
        self.state = state
        self.vendors = tuple(vendors)
        self.saves = 0

    def resume(self) -> bool:
        """Loads the file if it exists; SandboxFileError if it cannot be read."""
        return read(self.path, self.state, self.vendors)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write(self.path, dump(self.state, self.vendors))
        self.saves += 1

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Saves after every request that may have changed something, before its answer goes out."""
        try:
            return await handler(request)
        finally:
            if _may_write(request):
                self.save()


def _may_write(request: web.Request) -> bool:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return False
    method = request.match_info.get("method") if request.path.startswith("/api/") else None
    return method is None or not _READS.search(method)
