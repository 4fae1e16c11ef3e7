"""Incident IDs, workflow IDs and Slack channel names."""

from __future__ import annotations

import re
import unicodedata

MAX_CHANNEL_NAME = 80
DIRECTORY_WORKFLOW_ID = "warroom-directory"
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_REPEATED_DASH = re.compile(r"-{2,}")
DEFAULT_CHANNEL_TEMPLATE = "inc-{id}-{slug}"


def incident_workflow_id(incident_id: int) -> str:
    return f"incident-{incident_id}"


def incident_id_of(workflow_id: str) -> int | None:
    """`incident-42` -> 42; any other workflow ID (the directory's) -> None."""
    m = re.fullmatch(r"incident-(\d{1,9})", workflow_id)
    return int(m.group(1)) if m else None


def parse_incident_ref(text: str) -> int | None:
    """Accepts `42`, `INC-42`, `inc-42` or `incident-42`."""
    m = re.fullmatch(r"(?:inc(?:ident)?-)?(\d{1,9})", text.strip(), flags=re.IGNORECASE)
    return int(m.group(1)) if m else None


def channel_name(
    incident_id: int, title: str, suffix: int = 1, template: str = DEFAULT_CHANNEL_TEMPLATE
) -> str:
    """`inc-42-checkout-latency-above-2s`: valid for Slack (lowercase, `-`, at most 80 characters).

    `template` (warroom.toml `channels.name_template`, validated there) places `{id}` and `{slug}`.
    suffix > 1 gives the name to try when the first is taken: `inc-42-checkout-2`.
    """
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    slug = _NOT_SLUG.sub("-", ascii_title).strip("-")
    fixed = template.format(id=incident_id, slug="")
    tail = f"-{suffix}" if suffix > 1 else ""
    room = MAX_CHANNEL_NAME - len(fixed) - len(tail)
    slug = slug[: max(room, 0)].rstrip("-")
    name = template.format(id=incident_id, slug=slug)
    if not slug:  # no title left: drop the separators that framed it
        name = _REPEATED_DASH.sub("-", name).strip("-_")
    return f"{name}{tail}"[:MAX_CHANNEL_NAME]
