"""Slack's size limits, in one place, and pure functions that keep warroom's text and Block Kit within them.

Slack answers `invalid_blocks` (a block over its limits) or `msg_too_long` (message text over 40,000
characters) and posts nothing, so a long summary or a busy incident would lose the whole message. Every
renderer shortens its own parts first (keeping who and what readable) and `fit_message` / `fit_view` are the
last guard before a payload leaves. Shortened text ends with a visible marker saying where the full text is.

Lengths are counted as slack-sdk's validators count them: Python characters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

# --- Block Kit (messages and modals) ------------------------------------------------------------------
SECTION_TEXT = 3_000
SECTION_FIELD = 2_000
SECTION_FIELDS = 10
HEADER_TEXT = 150
MESSAGE_BLOCKS = 50
MODAL_BLOCKS = 100
CONTEXT_ELEMENTS = 10
CONTEXT_TEXT = 3_000  # a context element's text object: the mrkdwn text object limit
BUTTON_TEXT = 75  # a button's plain_text
OPTION_TEXT = 75  # a select option's text
MODAL_TITLE = 24
INPUT_LABEL = 2_000
INPUT_MAX_LENGTH = 3_000  # the largest `max_length` a plain_text_input may declare
# --- message text ------------------------------------------------------------------------------------
MESSAGE_TEXT = 40_000  # chat.postMessage / chat.update `text`
EPHEMERAL_TEXT = MESSAGE_TEXT  # chat.postEphemeral
ACK_TEXT = MESSAGE_TEXT  # a slash command's acknowledgement body
RESPONSE_URL_TEXT = MESSAGE_TEXT  # posts to a command's response_url

# Where the full text of something shortened can be read (`… (shortened: full text in <where>)`).
TIMELINE_FILE = "the timeline file uploaded at resolve"
SOURCE_MESSAGE = "the source message"
TIMELINE = "the incident's timeline"

_ENTITY_PREFIX = re.compile(r"&#?[A-Za-z0-9]*")
_ENTITY_MAX = 10  # `&#x1F525;` and the named entities Slack uses are shorter


def marker(where: str = "") -> str:
    """What ends shortened text: an ellipsis and, when known, where the full text is."""
    return f"… (shortened: full text in {where})" if where else "… (shortened)"


def safe_cut(text: str, at: int) -> int:
    """The largest cut position <= `at` that is not inside an `&entity;` or a `<link|mention>`."""
    cut = max(min(at, len(text)), 0)
    opened, closed = text.rfind("<", 0, cut), text.rfind(">", 0, cut)
    if opened > closed:  # inside `<...>`: cut before it, never through a link or mention
        cut = opened
    amp = text.rfind("&", max(cut - _ENTITY_MAX, 0), cut)
    if amp != -1 and _ENTITY_PREFIX.fullmatch(text, amp, cut):
        cut = amp
    return cut


def shorten(text: str, limit: int, where: str = "") -> str:
    """mrkdwn text within `limit` characters; cut whole entities and links, marked, pointing to `where`."""
    if len(text) <= limit:
        return text
    mark = marker(where)
    if len(mark) * 2 > limit:  # tiny limits: a bare ellipsis
        mark = "…"
    return text[: safe_cut(text, limit - len(mark))].rstrip() + mark


def shorten_plain(text: str, limit: int) -> str:
    """plain_text within `limit` characters (buttons, options, titles): no entities to respect."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def fit_part(whole: str, part: str, limit: int, where: str = "") -> str:
    """`part` shortened so that `whole` (which contains it once) fits `limit`: the rest stays intact."""
    if len(whole) <= limit:
        return part
    room = limit - (len(whole) - len(part))
    return shorten(part, max(room, 0), where) if room > 0 else ""


def fit_lines(
    head: Sequence[str],
    items: Sequence[str],
    tail: Sequence[str] = (),
    *,
    limit: int = MESSAGE_TEXT,
    omitted: Callable[[int], str] = lambda n: f"… and {n} more",
    newest_last: bool = False,
) -> str:
    """Lines joined within `limit`: `head`, as many `items` as fit, then `tail`. Items left out are counted
    in an `omitted(n)` line; with `newest_last` the last items are kept (and the note goes first)."""
    text = "\n".join([*head, *items, *tail])
    if len(text) <= limit:
        return text
    fixed = len("\n".join([*head, *tail, omitted(len(items))])) + 1
    budget, kept = limit - fixed, 0
    for line in reversed(items) if newest_last else items:
        if len(line) + 1 > budget:
            break
        budget -= len(line) + 1
        kept += 1
    chosen = list(items[len(items) - kept :] if newest_last else items[:kept])
    note = omitted(len(items) - kept)
    body = [note, *chosen] if newest_last else [*chosen, note]
    return shorten("\n".join([*head, *body, *tail]), limit)


# --- Block Kit guards ------------------------------------------------------------------------------------


def _text_object(obj: dict[str, Any], limit: int, where: str) -> dict[str, Any]:
    text = str(obj.get("text", ""))
    fitted = shorten(text, limit, where) if obj.get("type") == "mrkdwn" else shorten_plain(text, limit)
    return obj if fitted == text else {**obj, "text": fitted}


def _section(block: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """A section within limits: text capped, each field capped, fields past 10 in further sections."""
    fitted = dict(block)
    if isinstance(block.get("text"), dict):
        fitted["text"] = _text_object(block["text"], SECTION_TEXT, where)
    fields = [_text_object(f, SECTION_FIELD, where) for f in block.get("fields") or []]
    if not fields:
        return [fitted]
    fitted["fields"] = fields[:SECTION_FIELDS]
    more = [
        {"type": "section", "fields": fields[i : i + SECTION_FIELDS]}
        for i in range(SECTION_FIELDS, len(fields), SECTION_FIELDS)
    ]
    return [fitted, *more]


def _context(block: dict[str, Any], where: str) -> dict[str, Any]:
    elements = [
        _text_object(e, CONTEXT_TEXT, where) if e.get("type") in ("mrkdwn", "plain_text") else e
        for e in block.get("elements") or []
    ]
    if len(elements) > CONTEXT_ELEMENTS:  # the rest join the last element, when it and they are text
        last, rest = elements[CONTEXT_ELEMENTS - 1], elements[CONTEXT_ELEMENTS - 1 :]
        texts = [str(e.get("text", "")) for e in rest if e.get("type") in ("mrkdwn", "plain_text")]
        joined = {"type": "mrkdwn", "text": shorten(" · ".join(texts), CONTEXT_TEXT, where)}
        elements = [*elements[: CONTEXT_ELEMENTS - 1], joined if texts else last]
    return {**block, "elements": elements}


def _actions(block: dict[str, Any]) -> dict[str, Any]:
    elements = [
        {**e, "text": _text_object(e["text"], BUTTON_TEXT, "")} if isinstance(e.get("text"), dict) else e
        for e in block.get("elements") or []
    ]
    return {**block, "elements": elements}


def fit_blocks(
    blocks: Sequence[dict[str, Any]], limit: int = MESSAGE_BLOCKS, where: str = ""
) -> list[dict[str, Any]]:
    """Blocks Slack accepts: each within its limits, at most `limit` of them (the last says how many more)."""
    fitted: list[dict[str, Any]] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "section":
            fitted += _section(block, where)
        elif kind == "header":
            fitted.append({**block, "text": _text_object(block["text"], HEADER_TEXT, where)})
        elif kind == "context":
            fitted.append(_context(block, where))
        elif kind == "actions":
            fitted.append(_actions(block))
        else:
            fitted.append(dict(block))
    if len(fitted) <= limit:
        return fitted
    hidden = len(fitted) - (limit - 1)
    note = f"… {hidden} more block{'s' if hidden != 1 else ''} not shown" + (
        f" (see {where})" if where else ""
    )
    return [*fitted[: limit - 1], {"type": "context", "elements": [{"type": "mrkdwn", "text": note}]}]


def fit_message(
    text: str, blocks: Sequence[dict[str, Any]] | None = None, where: str = ""
) -> tuple[str, list[dict[str, Any]] | None]:
    """The last guard before a message leaves (postMessage, update, postEphemeral, ack, response_url):
    its text within 40,000 characters and its blocks within Block Kit's limits."""
    fitted = fit_blocks(blocks, MESSAGE_BLOCKS, where) if blocks is not None else None
    return shorten(text, MESSAGE_TEXT, where), fitted


def fit_text(text: str, where: str = "") -> str:
    """Message text (a reply, an ephemeral, an ack body) within 40,000 characters."""
    return shorten(text, MESSAGE_TEXT, where)


def _option(option: dict[str, Any]) -> dict[str, Any]:
    return {**option, "text": _text_object(option["text"], OPTION_TEXT, "")}


def _input(block: dict[str, Any]) -> dict[str, Any]:
    fitted = {**block, "label": _text_object(block["label"], INPUT_LABEL, "")}
    element = dict(block.get("element") or {})
    if "options" in element:
        element["options"] = [_option(o) for o in element["options"]]
    if "initial_option" in element:
        element["initial_option"] = _option(element["initial_option"])
    if element.get("type") == "plain_text_input":
        cap = min(int(element.get("max_length") or INPUT_MAX_LENGTH), INPUT_MAX_LENGTH)
        element["max_length"] = cap
        if "initial_value" in element:
            element["initial_value"] = str(element["initial_value"])[:cap]
    fitted["element"] = element
    return fitted


def fit_view(view: dict[str, Any]) -> dict[str, Any]:
    """A modal Slack accepts: title and button texts, option texts, inputs and at most 100 blocks."""
    fitted = dict(view)
    for key, limit in (("title", MODAL_TITLE), ("submit", MODAL_TITLE), ("close", MODAL_TITLE)):
        if isinstance(view.get(key), dict):
            fitted[key] = _text_object(view[key], limit, "")
    blocks = [_input(b) if b.get("type") == "input" else b for b in view.get("blocks") or []]
    fitted["blocks"] = fit_blocks(blocks, MODAL_BLOCKS)
    return fitted
