"""Reading an `IncidentState` written by an older warroom (a run continued as new before a deploy).

Pure functions over the raw payload, applied before validation, so the model itself only describes today's
shape. Each rule says which older shape it reads; remove a rule once no run that could carry it is open.
"""

from __future__ import annotations

from typing import Any

UPDATE_KINDS = ("update", "reaction")  # timeline kinds that count as a status update sent out


def upgrade(data: Any) -> Any:
    """The raw state, in today's shape. Anything but a dict (an already built model) passes unchanged."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    _reactions_into_outbox(data)
    _counters_from_timeline(data)
    return data


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, dict) else getattr(item, name)


def _reactions_into_outbox(data: dict[str, Any]) -> None:
    """Runs from before patch `reactions-in-order` kept broadcast reactions in a second queue,
    `pending_reactions`, read before the outbox. They join the outbox marked `read_first`, which the outbox
    drains exactly as that queue was drained."""
    legacy = data.pop("pending_reactions", None) or []
    if not legacy:
        return
    outbox = list(data.get("outbox") or [])
    for pending in legacy:
        reaction = _field(pending, "reaction")
        outbox.append(
            {
                "key": _field(pending, "key"),
                "kind": "reaction",
                "text": "",
                "actor": _field(reaction, "user_id"),
                "reaction": reaction,
                "read_first": True,
            }
        )
    data["outbox"] = outbox


def _counters_from_timeline(data: dict[str, Any]) -> None:
    """States from before the timeline was archived in parts held every event: count them once."""
    if "events_recorded" in data:
        return
    kinds = [_field(e, "kind") for e in data.get("timeline") or []]
    data["events_recorded"] = len(kinds)
    data["updates_posted"] = sum(k in UPDATE_KINDS for k in kinds)
    data["nudges_sent"] = sum(k == "nudge" for k in kinds)
