"""Block Kit checks made with slack-sdk's own models, so the sandbox refuses what the SDK knows Slack refuses.

slack-sdk's `validate_json` checks one object's own fields; `to_dict` also validates every nested object
(a button's text, an option's value...), so both run. A block or element type the SDK does not know parses to
None (or disappears from the rendering): that is refused too, as Slack refuses an unknown type.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

# slack-sdk raises these, not SlackObjectFormationError, on shapes it never expected (a list for an object).
_MALFORMED = (SlackObjectFormationError, TypeError, ValueError, AttributeError, KeyError)


def _dropped(value: Any) -> bool:
    """Whether slack-sdk's rendering lost something: an element it could not parse becomes None."""
    if isinstance(value, dict):
        return any(_dropped(v) for v in value.values())
    if isinstance(value, list):
        return any(v is None or _dropped(v) for v in value)
    return False


def block_problem(block: Any) -> str | None:
    """Why slack-sdk refuses this block, or None if it accepts it."""
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        return "missing required field: type"
    try:
        parsed = Block.parse(block)
        if parsed is None:
            return f"unsupported block type: {block['type']}"
        parsed.validate_json()
        rendered = parsed.to_dict()
    except _MALFORMED as err:
        return f"{block['type']}: {err}"
    for key in ("accessory", "element"):
        if isinstance(block.get(key), dict) and key not in rendered:
            return f"{block['type']}: unsupported {key} type: {block[key].get('type')}"
    if _dropped(rendered):
        return f"{block['type']}: an element of an unsupported type"
    return None


def blocks_problem(blocks: list[Any], *, pointer: str) -> str | None:
    """The first refused block of a list, with Slack's json-pointer to it (e.g. `/blocks/3`)."""
    for index, block in enumerate(blocks):
        problem = block_problem(block)
        if problem is not None:
            return f"{problem} [json-pointer:{pointer}/{index}]"
    return None


def view_problem(view: dict[str, Any]) -> str | None:
    """Why slack-sdk refuses this view (its own fields, then each block), or None if it accepts it."""
    try:
        View(**view).validate_json()
    except _MALFORMED as err:
        return f"{err} [json-pointer:/view]"
    blocks = view.get("blocks")
    return blocks_problem(blocks, pointer="/view/blocks") if isinstance(blocks, list) else None
