"""The declare and stage forms (Slack modals) and reading their submitted values."""

from __future__ import annotations

from typing import Any

from activities import slack_limits as limits
from domain.models import CALL_LABELS, IncidentState
from domain.slack_payloads import NO_CALL, block_value
from domain.vocab import Severity, Stage

DECLARE_CALLBACK = "warroom_declare"
STAGE_CALLBACK = "warroom_stage"


def _plain(text: str) -> dict[str, str]:
    return {"type": "plain_text", "text": text}


def _option(value: str, label: str) -> dict[str, Any]:
    return {"text": _plain(label), "value": value}


def _select(block_id: str, label: str, options: list[tuple[str, str]], initial: str) -> dict[str, Any]:
    opts = [_option(v, lbl) for v, lbl in options]
    return {
        "type": "input",
        "block_id": block_id,
        "label": _plain(label),
        "element": {
            "type": "static_select",
            "action_id": "value",
            "options": opts,
            "initial_option": next(o for o in opts if o["value"] == initial),
        },
    }


def _text(block_id: str, label: str, *, optional: bool, multiline: bool, max_length: int) -> dict[str, Any]:
    return {
        "type": "input",
        "block_id": block_id,
        "optional": optional,
        "label": _plain(label),
        "element": {
            "type": "plain_text_input",
            "action_id": "value",
            "multiline": multiline,
            "max_length": max_length,
        },
    }


def _channels(initial: list[str]) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "multi_conversations_select",
        "action_id": "value",
        "filter": {"include": ["public", "private"], "exclude_bot_users": True},
    }
    if initial:
        element["initial_conversations"] = initial
    return {
        "type": "input",
        "block_id": "broadcast",
        "optional": True,
        "label": _plain("Broadcast channels"),
        "element": element,
    }


def declare_modal(
    default_channels: list[str],
    severity: Severity,
    slash_command: str,
    call_providers: tuple[str, ...] = (),
    default_call: str | None = None,
) -> dict[str, Any]:
    """The declare form; `call_providers` (those set up) add a call choice, preset to `default_call`.

    Every form goes through `limits.fit_view`: titles, option texts and inputs within Slack's limits."""
    severities = [(s.value, s.label) for s in Severity]
    call: list[dict[str, Any]] = []
    if call_providers:
        choices = [(NO_CALL, "No call"), *((p, CALL_LABELS[p]) for p in call_providers)]
        initial = default_call if default_call in call_providers else NO_CALL
        call = [_select("call", "Call", choices, initial)]
    return limits.fit_view(
        {
            "type": "modal",
            "callback_id": DECLARE_CALLBACK,
            "private_metadata": slash_command,
            "title": _plain("Declare an incident"),
            "submit": _plain("Declare"),
            "close": _plain("Cancel"),
            "blocks": [
                _text("title", "Title", optional=False, multiline=False, max_length=150),
                _select("severity", "Severity", severities, severity.value),
                _channels(default_channels),
                *call,
                {
                    "type": "input",
                    "block_id": "private",
                    "optional": True,
                    "label": _plain("Visibility"),
                    "element": {
                        "type": "checkboxes",
                        "action_id": "value",
                        "options": [_option("private", "Private incident (private channel)")],
                    },
                },
            ],
        }
    )


UPDATE_CALLBACK = "warroom_update"


def update_modal(incident_id: int, label: str) -> dict[str, Any]:
    """The status update form a nudge's button opens (`label`: `INC-7`)."""
    return limits.fit_view(
        {
            "type": "modal",
            "callback_id": UPDATE_CALLBACK,
            "private_metadata": str(incident_id),
            "title": _plain(f"Update {label}"),
            "submit": _plain("Post"),
            "close": _plain("Cancel"),
            "blocks": [
                _text(
                    "update",
                    "Status update for stakeholders",
                    optional=False,
                    multiline=True,
                    max_length=3000,
                )
            ],
        }
    )


def stage_modal(state: IncidentState) -> dict[str, Any]:
    stages = [(s.value, s.label) for s in Stage]
    return limits.fit_view(
        {
            "type": "modal",
            "callback_id": STAGE_CALLBACK,
            "private_metadata": str(state.incident_id),
            "title": _plain("Change stage"),
            "submit": _plain("Change"),
            "close": _plain("Cancel"),
            "blocks": [
                _select("stage", "Stage", stages, state.stage.value),
                _text("context", "What changed", optional=True, multiline=True, max_length=3000),
                _channels(state.broadcast_channel_ids),
            ],
        }
    )


def value(view: dict[str, Any], block_id: str) -> Any:
    """The submitted value of one block's `value` action, whatever its element type (see `block_value`)."""
    return block_value(view, block_id)
