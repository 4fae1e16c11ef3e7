"""files.* Web API methods and the upload URL they hand out: Slack's external upload flow.

1. `files.getUploadURLExternal` (filename, length) answers a `file_id` and an `upload_url` on this sandbox.
2. The caller POSTs the bytes to `upload_url` (raw body or multipart); no token, as the URL is the credential.
   The length must be the one announced. Faults for this step are booked under the method `_upload`.
3. `files.completeUploadExternal` (files = `[{id, title}]`, channel_id or channels, thread_ts and
   initial_comment) shares the uploaded files: one bot message per channel (in the thread with `thread_ts`)
   carries them.
4. `files.info` (file) answers a completed file.

Files live beside the sandbox state (`store(state)`); tests read what was uploaded with `uploaded_bytes`.
`url_private_download` serves the bytes to the bot token (`sandbox.file_downloads`).
"""

from __future__ import annotations

import asyncio
import mimetypes
import secrets
import weakref
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from sandbox.args import Args, invalid_arguments
from sandbox.messages import check_content
from sandbox.models import BOT_ID, BOT_USER_ID, TEAM_ID, ApiError, Channel, Fault
from sandbox.state import SandboxState

UPLOAD = "_upload"  # the path under /api/ of upload URLs, and the fault book's name for uploads
MAX_FILES = 10
_FILETYPES = {"md": "markdown", "json": "json", "txt": "text", "csv": "csv", "png": "png"}


@dataclass
class StoredFile:
    """One file, from the upload URL being issued to being shared."""

    id: str
    name: str
    length: int
    user: str
    created: int
    secret: str
    alt_txt: str | None = None
    snippet_type: str | None = None
    title: str = ""
    content: bytes | None = None  # None until uploaded
    completed: bool = False
    channels: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    ims: list[str] = field(default_factory=list)

    @property
    def filetype(self) -> str:
        ext = self.name.rsplit(".", 1)[-1].lower() if "." in self.name else ""
        return _FILETYPES.get(ext, ext or "binary")

    def to_api(self, base_url: str) -> dict[str, Any]:
        """The file object as files.info and message `files` show it."""
        mimetype = mimetypes.guess_type(self.name)[0] or "application/octet-stream"
        private = f"{base_url}/files-pri/{TEAM_ID}-{self.id}/{self.name}"
        return {
            "id": self.id,
            "created": self.created,
            "timestamp": self.created,
            "name": self.name,
            "title": self.title or self.name,
            "mimetype": mimetype,
            "filetype": self.filetype,
            "pretty_type": self.filetype.capitalize(),
            "user": self.user,
            "user_team": TEAM_ID,
            "editable": False,
            "size": len(self.content) if self.content is not None else self.length,
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": bool(self.channels),
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": private,
            "url_private_download": f"{private}?download=1",
            "permalink": f"{base_url}/files/{self.user}/{self.id}/{self.name}",
            "channels": list(self.channels),
            "groups": list(self.groups),
            "ims": list(self.ims),
            "comments_count": 0,
            **({"alt_txt": self.alt_txt} if self.alt_txt else {}),
        }


class FileStore:
    """The files of one sandbox state, by ID."""

    def __init__(self) -> None:
        self.files: dict[str, StoredFile] = {}

    def get(self, file_id: str) -> StoredFile:
        found = self.files.get(file_id)
        if found is None:
            raise ApiError("file_not_found")
        return found


_STORES: weakref.WeakKeyDictionary[SandboxState, FileStore] = weakref.WeakKeyDictionary()


def store(state: SandboxState) -> FileStore:
    """The file store of this state (created on first use)."""
    found = _STORES.get(state)
    if found is None:
        found = _STORES[state] = FileStore()
    return found


def uploaded_bytes(state: SandboxState, file_id: str) -> bytes:
    """Test helper: the bytes uploaded for a file (KeyError if it is unknown or nothing was uploaded)."""
    content = store(state).files[file_id].content
    if content is None:
        raise KeyError(file_id)
    return content


def shared_files(state: SandboxState, channel_id: str) -> list[StoredFile]:
    """Test helper: the completed files shared in a channel, oldest first."""
    return [f for f in store(state).files.values() if channel_id in (*f.channels, *f.groups, *f.ims)]


# --- Web API methods ---------------------------------------------------------------------------------------


def get_upload_url(state: SandboxState, args: Args) -> dict[str, Any]:
    filename = args.required("filename")
    if not args.has("length"):
        raise invalid_arguments("missing required field: length")
    length = args.integer("length", 0)
    if length <= 0:
        raise invalid_arguments("length must be a positive integer")
    stored = StoredFile(
        id=state.new_id("F"),
        name=filename,
        length=length,
        user=BOT_USER_ID,
        created=int(state.now()),
        secret=secrets.token_hex(16),
        alt_txt=args.text("alt_txt") or None,
        snippet_type=args.text("snippet_type") or None,
    )
    store(state).files[stored.id] = stored
    upload_url = f"{state.base_url}/api/{UPLOAD}?file={stored.id}&sig={stored.secret}"
    return {"upload_url": upload_url, "file_id": stored.id}


def _file_entries(args: Args) -> list[dict[str, Any]]:
    if not args.has("files"):
        raise invalid_arguments("missing required field: files")
    entries = args.structured("files", "invalid_arguments")
    if (
        not isinstance(entries, list)
        or not entries
        or len(entries) > MAX_FILES
        or not all(isinstance(e, dict) and isinstance(e.get("id"), str) for e in entries)
    ):
        raise invalid_arguments("files must be a JSON array of {id, title} objects")
    return entries


def _share_targets(state: SandboxState, args: Args) -> list[Channel]:
    ids = [args.text("channel_id") or "", *args.id_list("channels")]
    targets = [state.resolve_target(i) for i in dict.fromkeys(i for i in ids if i)]
    if args.text("thread_ts") and len(targets) != 1:
        raise invalid_arguments("thread_ts needs exactly one channel")
    for channel in targets:
        if channel.is_archived:
            raise ApiError("is_archived")
        if BOT_USER_ID not in channel.members:
            raise ApiError("not_in_channel")
    return targets


def complete_upload(state: SandboxState, args: Args) -> dict[str, Any]:
    """Completes uploaded files and shares them; an unknown, unuploaded or already completed ID is
    `file_not_found`. Nothing changes unless the whole call succeeds."""
    entries = _file_entries(args)
    files = store(state)
    pending = [files.get(str(e["id"])) for e in entries]
    if len({f.id for f in pending}) != len(pending) or any(f.content is None or f.completed for f in pending):
        raise ApiError("file_not_found")
    targets = _share_targets(state, args)
    comment = args.text("initial_comment") or ""
    check_content(comment, None, has_files=True)
    thread_ts = args.text("thread_ts") or None
    if thread_ts:
        parent = targets[0].messages.get(thread_ts)
        if parent is None or parent.is_reply:
            raise ApiError("thread_not_found")
    for stored, entry in zip(pending, entries, strict=True):
        title = entry.get("title")
        stored.title = str(title) if title else stored.name
        stored.completed = True
    for channel in targets:
        for stored in pending:
            shares = stored.ims if channel.is_im else stored.groups if channel.is_private else stored.channels
            shares.append(channel.id)
        state.post(
            channel,
            user=BOT_USER_ID,
            bot_id=BOT_ID,
            text=comment,
            thread_ts=thread_ts,
            files=[f.to_api(state.base_url) for f in pending],
        )
    return {"files": [{"id": f.id, "title": f.title} for f in pending]}


def info(state: SandboxState, args: Args) -> dict[str, Any]:
    stored = store(state).get(args.required("file"))
    if not stored.completed:
        raise ApiError("file_not_found")
    return {"file": stored.to_api(state.base_url), "comments": [], "response_metadata": {"next_cursor": ""}}


METHODS = {
    "files.getUploadURLExternal": get_upload_url,
    "files.completeUploadExternal": complete_upload,
    "files.info": info,
}


# --- the upload URL ----------------------------------------------------------------------------------------


async def _body(request: web.Request) -> bytes:
    """Raw bytes, or the first file (else field) of a multipart form."""
    if request.content_type != "multipart/form-data":
        return await request.read()
    form = await request.post()
    for value in form.values():
        if isinstance(value, web.FileField):
            return bytes(value.file.read())
    for value in form.values():
        if isinstance(value, str):
            return value.encode()
    return b""


def _store_upload(state: SandboxState, file_id: str, sig: str, body: bytes) -> tuple[int, str]:
    """Stores the bytes; the status and text the upload URL answers."""
    stored = store(state).files.get(file_id)
    if stored is None or not secrets.compare_digest(stored.secret, sig):
        return 404, "not_found"
    if stored.completed:
        return 410, "already_completed"
    if len(body) != stored.length:
        return 400, f"length_mismatch: expected {stored.length} bytes, got {len(body)}"
    stored.content = body
    return 200, f"OK - {len(body)}"


def _fault_reply(fault: Fault) -> web.Response:
    if fault.status == 429:
        retry_after = str(fault.retry_after if fault.retry_after is not None else 1)
        return web.Response(status=429, text="ratelimited", headers={"Retry-After": retry_after})
    return web.Response(status=fault.status or 500, text=fault.error or "sandbox injected failure")


async def handle_upload(state: SandboxState, request: web.Request) -> web.Response:
    """POST `/api/_upload?file=…&sig=…`: the bytes of a file announced by files.getUploadURLExternal."""
    if request.method != "POST":
        return web.Response(status=405, text="method_not_allowed")
    file_id, sig = request.query.get("file", ""), request.query.get("sig", "")
    body = await _body(request)
    logged = {"file": file_id, "bytes": len(body)}
    fault = state.take_fault(UPLOAD)
    if fault is not None:
        if fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        if fault.after_effect:
            _store_upload(state, file_id, sig, body)  # stored; the caller never hears of it
        if fault.status is not None or fault.error is not None:
            reply = _fault_reply(fault)
            reason = "ratelimited" if reply.status == 429 else fault.error or f"http_{reply.status}"
            state.call_log.record(UPLOAD, logged, reply.status, reason)
            return reply
    status, text = _store_upload(state, file_id, sig, body)
    state.call_log.record(UPLOAD, logged, status, None if status == 200 else text.split(":")[0])
    return web.Response(status=status, text=text)
