"""What warroom reads from Slack's payloads, checked before anything acts on it.

Slack signs what it sends, but a signed payload can still be odd: a field missing, a list where an object
belongs, a select value no form of ours offers, a form's `private_metadata` that is not what we put there.
The listeners in `starter.slack_app` build these models first; anything malformed is one
`SlackPayloadError`, whose message can be shown to the person as it is and whose `field` names what is wrong
(for a form: the block the message belongs under). So bad input gets a clear message, never a traceback,
and nothing is half-done.

Nothing here imports from `starter`: `starter.modals.value` reads form values through `block_value`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.commands import TEXT_MAX, TITLE_MAX, ChannelId, UserId
from domain.models import CallProviderName
from domain.usage import DEFAULT_COMMAND_NAME, clean_text, display_name, quote
from domain.vocab import Severity, Stage

# Where a slash command can be run (a DM too); broadcast channels are `ChannelId`s (no DMs).
ConversationId = Annotated[str, Field(pattern=r"^[CDG][A-Z0-9]{1,30}$")]
SlashName = Annotated[str, Field(pattern=r"^/\S{1,100}$")]
MessageTs = Annotated[str, Field(pattern=r"^[0-9]{1,12}\.[0-9]{1,9}$")]
Reaction = Annotated[str, Field(pattern=r"^\S{1,100}$")]
TriggerId = Annotated[str, Field(min_length=1, max_length=255)]
CallChoice = CallProviderName | Literal["none"]

_USER_ID = re.compile(r"[UW][A-Z0-9]{1,30}")
_CONVERSATION_ID = re.compile(r"[CDG][A-Z0-9]{1,30}")
_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{1,30}")
_SLASH_NAME = re.compile(r"/\S{1,100}")
_MESSAGE_TS = re.compile(r"[0-9]{1,12}\.[0-9]{1,9}")
_REACTION = re.compile(r"\S{1,100}")
_INCIDENT_ID = re.compile(r"[0-9]{1,15}")
NO_CALL: Literal["none"] = "none"  # the declare form's "No call" choice
_CALL_CHOICES: dict[str, CallChoice] = {"zoom": "zoom", "meet": "meet", NO_CALL: NO_CALL}
_SEVERITIES = frozenset(s.value for s in Severity)
_STAGES = frozenset(s.value for s in Stage)
M = TypeVar("M", bound=BaseModel)
_AGAIN = "Try again; if it keeps happening, tell whoever runs warroom."


class SlackPayloadError(ValueError):
    """A payload warroom cannot act on.

    `message` is safe to show the person (user input in it is quoted and cut short); `field` names what
    is wrong: a payload field (`user_id`, `item`...) or, for a form, the block id (`severity`, `stage`...).
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _unusable(field: str, what: str, got: Any = None) -> SlackPayloadError:
    """A value Slack sent (or left out) that warroom cannot use: the person can only try again."""
    if got is None or got == "":
        said = f"Slack sent no {what} with this request"
    else:
        shown = f" {quote(got)}" if isinstance(got, str) else ""
        said = f"Slack sent the {what}{shown}, which warroom cannot use"
    return SlackPayloadError(field, f"{said}, so warroom did nothing. {_AGAIN}")


_LABELS = {"broadcast": "broadcast channels", "private": "visibility", "context": "what changed"}


def _unreadable(field: str) -> SlackPayloadError:
    """A form value in a shape no form element produces."""
    label = _LABELS.get(field, field)
    return SlackPayloadError(
        field, f"warroom could not read the {label} sent with this form; fill this in again."
    )


# --- reading raw values ----------------------------------------------------------------------------------


def _object(value: Any, field: str, what: str | None = None) -> Mapping[str, Any]:
    """`value` as an object; None (absent) is an empty one. Else: unusable `what`, or an unreadable value."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _unusable(field, what, value) if what else _unreadable(field)
    return value


def _optional_str(value: Any, field: str, what: str) -> str | None:
    """A string field that may be absent; empty counts as absent."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _unusable(field, what, value)
    return value


def _required(value: Any, pattern: re.Pattern[str], field: str, what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _unusable(field, what, value)
    return value


def _str_or_none(value: Any, field: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise _unreadable(field)
    return value


def _str_list(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _unreadable(field)
    return list(value)


def block_value(view: Any, block_id: str) -> str | list[str] | None:
    """The submitted value of one block's `value` action, whatever its element type; None if absent.

    A select gives its option's value, a multi-select or checkboxes the list of values, a conversations
    select the list of IDs, a text input its text. Anything else is a SlackPayloadError naming the block.
    """
    form = _object(view, "view", "form")
    values = _object(_object(form.get("state"), "view", "form").get("values"), "view", "form")
    element = _object(_object(values.get(block_id), block_id).get("value"), block_id)
    if "selected_option" in element:
        return _str_or_none(_object(element["selected_option"], block_id).get("value"), block_id)
    if "selected_conversations" in element:
        return _str_list(element["selected_conversations"], block_id)
    if "selected_options" in element:
        options = element["selected_options"]
        if options is None:
            return []
        if not isinstance(options, list):
            raise _unreadable(block_id)
        return _str_list([_object(o, block_id).get("value") for o in options], block_id)
    return _str_or_none(element.get("value"), block_id)


def _text(view: Any, block_id: str) -> str:
    got = block_value(view, block_id)
    if isinstance(got, list):
        raise _unreadable(block_id)
    return got or ""


def _choice(view: Any, block_id: str) -> str | None:
    """A single select's value; None when nothing is chosen."""
    got = block_value(view, block_id)
    if isinstance(got, list):
        raise _unreadable(block_id)
    return got or None


def _channels(view: Any, block_id: str = "broadcast") -> tuple[str, ...]:
    got = block_value(view, block_id)
    if isinstance(got, str):
        raise _unreadable(block_id)
    for channel in got or ():
        if not _CHANNEL_ID.fullmatch(channel):
            raise SlackPayloadError(
                block_id, f"{quote(channel)} is not a channel warroom can broadcast to; pick channels again."
            )
    return tuple(got or ())


def _submitter(body: Mapping[str, Any]) -> str | None:
    """Who submitted a form: `user.id`, if Slack said."""
    user_id = _object(body.get("user"), "user", "submitting user").get("id")
    if user_id is None:
        return None
    return _required(user_id, _USER_ID, "user", "user ID")


def _name(value: Any) -> str | None:
    """A Slack name to show (`domain.usage.display_name`); anything unusable is no name, never an error."""
    return display_name(value) if isinstance(value, str) else None


def _submitter_name(body: Mapping[str, Any]) -> str | None:
    """The submitter's Slack name: `user.username` (or `user.name`), if Slack said."""
    user = body.get("user")
    if not isinstance(user, Mapping):
        return None
    return _name(user.get("username")) or _name(user.get("name"))


def _body(payload: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(payload, Mapping):
        raise _unusable("body", what, payload)
    return payload


def _view(body: Mapping[str, Any]) -> Mapping[str, Any]:
    view = body.get("view")
    if not isinstance(view, Mapping):
        raise _unusable("view", "form", view)
    return view


def _validated(model: type[M], data: dict[str, Any], fallback: str) -> M:
    """Builds `model`; a constraint the checks above missed is still a SlackPayloadError, never a 500."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        loc = err.errors()[0]["loc"]
        field = str(loc[0]) if loc else fallback
        raise _unusable(field, field.replace("_id", " ID").replace("_", " "), got=True) from None


# --- the payloads ----------------------------------------------------------------------------------------


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SlashCommand(_Payload):
    """A slash command as Slack posts it (form-encoded): who, where, which command and what they typed."""

    user_id: UserId
    channel_id: ConversationId
    command: SlashName
    text: str = ""
    trigger_id: TriggerId | None = None  # needed to open a form; dedupes a retried delivery
    channel_name: str | None = None
    user_name: str | None = None  # the caller's Slack name (`display_name`), for the Temporal UI


class ReactionEvent(_Payload):
    """A `reaction_added` on a message."""

    user_id: UserId
    channel_id: ConversationId
    message_ts: MessageTs
    reaction: Reaction


class DeclareForm(_Payload):
    """The declare form, submitted."""

    title: Annotated[str, Field(min_length=1, max_length=TITLE_MAX)]
    severity: Severity | None = None  # None: the deployment's default
    broadcast_channels: tuple[ChannelId, ...] = ()
    private: bool = False
    call: CallChoice | None = None  # None: the deployment's default; "none": no call
    slash_command: SlashName = DEFAULT_COMMAND_NAME
    user_id: UserId | None = None
    user_name: str | None = None


class StageForm(_Payload):
    """The stage form, submitted."""

    incident_id: Annotated[int, Field(gt=0)]
    stage: Stage
    context: Annotated[str, Field(max_length=TEXT_MAX)] = ""
    broadcast_channels: tuple[ChannelId, ...] = ()
    actor: UserId | None = None
    trigger_id: TriggerId | None = None


def slash_command(payload: Any) -> SlashCommand:
    """The slash command in Slack's form fields; SlackPayloadError (field: the form field) if malformed."""
    form = _body(payload, "command")
    text = form.get("text")
    if text is not None and not isinstance(text, str):
        raise _unusable("text", "command text", text)
    channel_name = form.get("channel_name")
    return _validated(
        SlashCommand,
        {
            "user_id": _required(form.get("user_id"), _USER_ID, "user_id", "user ID"),
            "channel_id": _required(form.get("channel_id"), _CONVERSATION_ID, "channel_id", "channel ID"),
            "command": _required(form.get("command"), _SLASH_NAME, "command", "command name"),
            "text": text or "",
            "trigger_id": _optional_str(form.get("trigger_id"), "trigger_id", "trigger ID"),
            "channel_name": _optional_str(channel_name, "channel_name", "channel name"),
            "user_name": _name(form.get("user_name")),
        },
        "body",
    )


def reaction_event(payload: Any) -> ReactionEvent | None:
    """A `reaction_added` event; None when it is not about a message (a file, say): none of warroom's
    business. SlackPayloadError (field: the event field) if malformed."""
    event = _body(payload, "event")
    kind = event.get("type")
    if kind is not None and kind != "reaction_added":
        return None
    item = event.get("item")
    if not isinstance(item, Mapping):
        raise _unusable("item", "reaction item", item)
    item_type = item.get("type")
    if not isinstance(item_type, str):
        raise _unusable("item", "reaction item type", item_type)
    if item_type != "message":
        return None
    return _validated(
        ReactionEvent,
        {
            "user_id": _required(event.get("user"), _USER_ID, "user", "user ID"),
            "channel_id": _required(item.get("channel"), _CONVERSATION_ID, "item", "channel ID"),
            "message_ts": _required(item.get("ts"), _MESSAGE_TS, "item", "message timestamp"),
            "reaction": _required(event.get("reaction"), _REACTION, "reaction", "reaction name"),
        },
        "body",
    )


def declare_form(payload: Any) -> DeclareForm:
    """The declare form's `view_submission`; SlackPayloadError naming the block (or `view`, `user`)."""
    body = _body(payload, "form")
    view = _view(body)
    title = clean_text(_text(view, "title"), single_line=True)[:TITLE_MAX]
    if not title:
        raise SlackPayloadError("title", "Give the incident a title.")
    severity = _choice(view, "severity")
    if severity is not None and severity not in _SEVERITIES:
        raise SlackPayloadError(
            "severity", f"{quote(severity)} is not a severity; pick one from SEV1 (worst) to SEV4."
        )
    call = _choice(view, "call")  # absent when no provider is set up: the deployment's default
    if call is not None and call not in _CALL_CHOICES:
        raise SlackPayloadError("call", f"{quote(call)} is not a call choice; pick one from the list.")
    visibility = block_value(view, "private")
    if isinstance(visibility, str) or not set(visibility or ()) <= {"private"}:
        raise _unreadable("private")
    slash = view.get("private_metadata") or DEFAULT_COMMAND_NAME
    if not isinstance(slash, str) or not _SLASH_NAME.fullmatch(slash):
        raise SlackPayloadError(
            "private_metadata",
            "This form lost track of the command that opened it; close it and run the command again.",
        )
    return _validated(
        DeclareForm,
        {
            "title": title,
            "severity": Severity(severity) if severity else None,
            "broadcast_channels": _channels(view),
            "private": "private" in (visibility or ()),
            "call": _CALL_CHOICES[call] if call else None,
            "slash_command": slash,
            "user_id": _submitter(body),
            "user_name": _submitter_name(body),
        },
        "title",
    )


def stage_form(payload: Any) -> StageForm:
    """The stage form's `view_submission`; SlackPayloadError naming the block (or `private_metadata`...)."""
    body = _body(payload, "form")
    view = _view(body)
    metadata = view.get("private_metadata")
    if not isinstance(metadata, str) or not _INCIDENT_ID.fullmatch(metadata) or int(metadata) == 0:
        raise SlackPayloadError(
            "private_metadata",
            "This form lost track of its incident; close it and run the stage command again "
            "in the incident's channel.",
        )
    stage = _choice(view, "stage")
    if stage is None:
        raise SlackPayloadError("stage", "Pick a stage.")
    if stage not in _STAGES:
        raise SlackPayloadError(
            "stage", f"{quote(stage)} is not a stage; pick investigating, identified or mitigated."
        )
    context = clean_text(_text(view, "context"))
    if len(context) > TEXT_MAX:
        raise SlackPayloadError(
            "context", f"What changed is {len(context)} characters; keep it to {TEXT_MAX}."
        )
    return _validated(
        StageForm,
        {
            "incident_id": int(metadata),
            "stage": Stage(stage),
            "context": context,
            "broadcast_channels": _channels(view),
            "actor": _submitter(body),
            "trigger_id": _optional_str(body.get("trigger_id"), "trigger_id", "trigger ID"),
        },
        "stage",
    )
