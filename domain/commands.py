"""`/incident ...` text to a typed command. Every problem with the input is a UsageError, never a traceback.

How Slack's escaped input (mentions, channel references, entities) is read lives in `domain.usage`.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.paging import Page, parse_page
from domain.remind_commands import CancelReminder, ListReminders, Remind, parse_remind
from domain.statuspage import PublicCommand, is_public_update, parse_public
from domain.usage import (
    DEFAULT_COMMAND_NAME,
    HELP_TEXT,
    INVISIBLE,
    WORDS,
    UsageError,
    clean_text,
    help_text,
    parse_channel,
    parse_user_named,
    quote,
    ref_tokens,
    strip_controls,
    unknown_command,
    usage_for,
    with_command_name,
)
from domain.vocab import Severity, Stage

TITLE_MAX = 150
TEXT_MAX = 3000
TICKET_SUMMARY_MAX = 255  # Jira's limit for a summary

UserId = Annotated[str, Field(pattern=r"^[UW][A-Z0-9]{1,30}$")]
ChannelId = Annotated[str, Field(pattern=r"^[CG][A-Z0-9]{1,30}$")]
RoleName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,30}$")]
Text = Annotated[str, Field(max_length=TEXT_MAX)]


class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Help(_Command):
    """The usage listing, or one command's usage when `topic` names it."""

    kind: Literal["help"] = "help"
    topic: str | None = None


class Declare(_Command):
    """Declare an incident; no title means: open the declare form."""

    kind: Literal["declare"] = "declare"
    title: Annotated[str, Field(min_length=1, max_length=TITLE_MAX)] | None = None
    severity: Severity | None = None  # none given: the deployment's WARROOM_DEFAULT_SEVERITY
    private: bool = False


class SetStage(_Command):
    """Change the stage; no stage means: open the stage form."""

    kind: Literal["set_stage"] = "set_stage"
    stage: Stage | None = None
    context: Text = ""


class PostUpdate(_Command):
    """A status update for the channel and every broadcast channel."""

    kind: Literal["post_update"] = "post_update"
    text: Annotated[str, Field(min_length=1, max_length=TEXT_MAX)]


class SetSeverity(_Command):
    kind: Literal["set_severity"] = "set_severity"
    severity: Severity
    reason: Text = ""


class SetCommander(_Command):
    kind: Literal["set_commander"] = "set_commander"
    user_id: UserId
    user_name: str | None = None  # the name in Slack's mention (`<@U1|alice>`), shown in the Temporal UI


class StartCall(_Command):
    """Create a call; no provider means the configured default."""

    kind: Literal["start_call"] = "start_call"
    provider: Literal["zoom", "meet"] | None = None


class CreateTicket(_Command):
    kind: Literal["create_ticket"] = "create_ticket"
    summary: Annotated[str, Field(min_length=1, max_length=TICKET_SUMMARY_MAX)]


class Broadcast(_Command):
    """Show, add or remove this incident's broadcast channels."""

    kind: Literal["broadcast"] = "broadcast"
    action: Literal["show", "add", "remove"] = "show"
    channel_ids: tuple[ChannelId, ...] = ()


class Status(_Command):
    kind: Literal["status"] = "status"


class Timeline(_Command):
    kind: Literal["timeline"] = "timeline"


class AssignRole(_Command):
    kind: Literal["assign_role"] = "assign_role"
    role: RoleName
    user_id: UserId
    user_name: str | None = None  # the name in Slack's mention, as for SetCommander


class AddFollowup(_Command):
    kind: Literal["add_followup"] = "add_followup"
    text: Annotated[str, Field(min_length=1, max_length=TEXT_MAX)]


class TicketFollowup(_Command):
    """`followup jira <n>`: follow-up number n becomes a Jira issue."""

    kind: Literal["ticket_followup"] = "ticket_followup"
    followup_id: Annotated[int, Field(ge=1, le=10_000)]


class SplitGroup(_Command):
    """`split <n>` in the alert storm incident: alert group n gets an incident of its own."""

    kind: Literal["split_group"] = "split_group"
    number: Annotated[int, Field(ge=1, le=10_000)]


class ListFollowups(_Command):
    kind: Literal["list_followups"] = "list_followups"


class Debrief(_Command):
    kind: Literal["debrief"] = "debrief"


class Resolve(_Command):
    kind: Literal["resolve"] = "resolve"
    summary: Text = ""
    now: bool = False  # `resolve --now`: even with open follow-ups


Command = Annotated[
    Help
    | Declare
    | SetStage
    | PostUpdate
    | SetSeverity
    | SetCommander
    | StartCall
    | CreateTicket
    | Remind
    | CancelReminder
    | ListReminders
    | Broadcast
    | Status
    | Timeline
    | AssignRole
    | AddFollowup
    | TicketFollowup
    | ListFollowups
    | Debrief
    | SplitGroup
    | Page
    | Resolve
    | PublicCommand,  # Statuspage: domain.statuspage
    Field(discriminator="kind"),
]

# --- the grammar -----------------------------------------------------------------------------------------

_STAGES: dict[str, Stage] = {
    **{stage.value: stage for stage in Stage},
    "investigate": Stage.INVESTIGATING,
    "identify": Stage.IDENTIFIED,
    "mitigate": Stage.MITIGATED,
}
_SEVERITY = re.compile(r"sev([0-9]+)", re.IGNORECASE | re.ASCII)
_PRIVATE_FLAGS = ("--private", "\u2014private", "\u2013private")  # phones turn `--` into a dash
_ROLE = re.compile(r"[a-z][a-z0-9_-]{0,30}")
_PROVIDERS: dict[str, Literal["zoom", "meet"]] = {"zoom": "zoom", "meet": "meet"}


def _no_arguments(word: str, rest: str) -> None:
    if rest.strip():
        raise UsageError(f"`{word}` takes no arguments.", usage_for(word))


def _severity(token: str, word: str) -> Severity | None:
    """A `sevN` token as a Severity; None if the token is not shaped like one."""
    m = _SEVERITY.fullmatch(token)
    if m is None:
        return None
    if m[1] not in ("1", "2", "3", "4"):
        raise UsageError(f"{quote(token)} is not a severity; use sev1 (worst) to sev4.", usage_for(word))
    return Severity(f"sev{m[1]}")


def _text(word: str, rest: str, what: str, *, required: bool = True, limit: int = TEXT_MAX) -> str:
    """Free text for `word`; a ticket summary or title must fit on one line."""
    text = clean_text(rest, single_line=word in ("jira", "declare"))
    if required and not text:
        raise UsageError(f"`{word}` needs the {what}.", usage_for(word))
    if len(text) > limit:
        raise UsageError(f"The {what} is {len(text)} characters; keep it to {limit}.", usage_for(word))
    return text


def _parse_declare(rest: str) -> Declare:
    severity: Severity | None = None
    private = False
    remaining = rest
    while parts := remaining.split(None, 1):
        token = parts[0]
        sev = _severity(token, "declare")
        if sev is not None:
            if severity is not None:
                raise UsageError("Give the severity once.", usage_for("declare"))
            severity = sev
        elif token.lower() in _PRIVATE_FLAGS:
            private = True
        elif token.startswith("--") and len(token) > 2:
            raise UsageError(
                f"Unknown option {quote(token)}; the only one is `--private`.", usage_for("declare")
            )
        else:
            break
        remaining = parts[1] if len(parts) > 1 else ""
    title = _text("declare", remaining, "title", required=False, limit=TITLE_MAX)
    return Declare(title=title or None, severity=severity, private=private)


def _parse_stage(rest: str) -> SetStage:
    parts = rest.split(None, 1)
    if not parts:
        return SetStage(stage=None)
    stage = _STAGES.get(parts[0].lower())
    if stage is None:
        raise UsageError(
            f"{quote(parts[0])} is not a stage; use investigating, identified or mitigated.",
            usage_for("stage"),
        )
    context = _text("stage", parts[1] if len(parts) > 1 else "", "context", required=False)
    return SetStage(stage=stage, context=context)


def _parse_severity(rest: str) -> SetSeverity:
    parts = rest.split(None, 1)
    severity = _severity(parts[0], "severity") if parts else None
    if severity is None:
        raise UsageError("Give a severity from sev1 (worst) to sev4.", usage_for("severity"))
    reason = _text("severity", parts[1] if len(parts) > 1 else "", "reason", required=False)
    return SetSeverity(severity=severity, reason=reason)


def _one_user(word: str, tokens: list[str], what: str) -> tuple[str, str | None]:
    """The one person named (their ID, and the name Slack's mention carried)."""
    if not tokens:
        raise UsageError(f"Name the {what} with `@`.", usage_for(word))
    if len(tokens) > 1:
        raise UsageError(f"Name one {what}, and nothing after them.", usage_for(word))
    try:
        return parse_user_named(tokens[0])
    except UsageError as e:
        raise e.with_usage(usage_for(word)) from None


def _parse_role(rest: str) -> AssignRole:
    tokens = ref_tokens(rest)
    if not tokens:
        raise UsageError("Name the role and the person.", usage_for("role"))
    role = tokens[0].lower()
    if not _ROLE.fullmatch(role):
        raise UsageError(
            f"{quote(tokens[0])} is not a role name: use a letter, then letters, digits, `-` or `_`.",
            usage_for("role"),
        )
    user_id, name = _one_user("role", tokens[1:], "person")
    return AssignRole(role=role, user_id=user_id, user_name=name)


def _parse_call(word: str, rest: str) -> StartCall:
    tokens = rest.split()
    if word in _PROVIDERS:
        _no_arguments(word, rest)
        return StartCall(provider=_PROVIDERS[word])
    if not tokens:
        return StartCall()
    provider = _PROVIDERS.get(tokens[0].lower())
    if provider is None or len(tokens) > 1:
        raise UsageError("The call provider is `zoom` or `meet`.", usage_for("call"))
    return StartCall(provider=provider)


def _parse_followup(rest: str) -> AddFollowup | TicketFollowup:
    """`followup <text>`, or `followup jira <n>` for a Jira issue from follow-up n."""
    words = rest.split()
    if len(words) == 2 and words[0].lower() in ("jira", "ticket") and words[1].lstrip("#").isdigit():
        number = int(words[1].lstrip("#")[:5])
        if number < 1:
            complaint = "Follow-ups are numbered from 1, as `followups` lists them."
            raise UsageError(complaint, usage_for("followup"))
        return TicketFollowup(followup_id=number)
    return AddFollowup(text=_text("followup", rest, "follow-up text"))


def _parse_broadcast(rest: str) -> Broadcast:
    tokens = ref_tokens(rest.replace(",", " "))
    if not tokens or (tokens[0].lower() in ("show", "list") and len(tokens) == 1):
        return Broadcast()
    action = tokens[0].lower()
    if action not in ("add", "remove"):
        raise UsageError(
            f"{quote(tokens[0])}: use `add` or `remove` and then channels.", usage_for("broadcast")
        )
    if len(tokens) == 1:
        raise UsageError(f"Name the channels to {action} with `#`.", usage_for("broadcast"))
    try:
        ids = tuple(dict.fromkeys(parse_channel(token) for token in tokens[1:]))
    except UsageError as e:
        raise e.with_usage(usage_for("broadcast")) from None
    return Broadcast(action="add" if action == "add" else "remove", channel_ids=ids)


def _parse_help(rest: str) -> Help:
    tokens = rest.split()
    if not tokens:
        return Help()
    topic = WORDS.get(tokens[0].lower().lstrip("/"))
    if topic is None or len(tokens) > 1:
        raise UsageError(f"There is no command {quote(' '.join(tokens))}.", HELP_TEXT)
    return Help(topic=topic)


def _dispatch(text: str) -> Command:
    parts = strip_controls(text).strip().lstrip(INVISIBLE).split(None, 1)
    if not parts:
        return Help()
    typed, rest = parts[0].strip(INVISIBLE).lower(), parts[1] if len(parts) > 1 else ""
    match WORDS.get(typed):
        case "help":
            return _parse_help(rest)
        case "declare":
            return _parse_declare(rest)
        case "stage":
            return _parse_stage(rest)
        case ("statuspage" | "update") as word if word == "statuspage" or is_public_update(rest):
            return parse_public(word, rest)
        case "update":
            return PostUpdate(text=_text("update", rest, "update text"))
        case "severity":
            return _parse_severity(rest)
        case "commander":
            user_id, name = _one_user("commander", ref_tokens(rest), "commander")
            return SetCommander(user_id=user_id, user_name=name)
        case "call":
            return _parse_call(typed, rest)
        case "jira":
            return CreateTicket(summary=_text("jira", rest, "summary", limit=TICKET_SUMMARY_MAX))
        case "remind":
            return parse_remind(rest, lambda body: _text("remind", body, "text to remind you of"))
        case "page":
            return parse_page(rest)
        case "broadcast":
            return _parse_broadcast(rest)
        case "role":
            return _parse_role(rest)
        case "followup":
            return _parse_followup(rest)
        case "split" if rest.strip().lstrip("#").isdigit() and int(rest.strip().lstrip("#")[:5]) >= 1:
            return SplitGroup(number=int(rest.strip().lstrip("#")[:5]))
        case "split":
            raise UsageError(
                "Give the number of an alert group, as the storm overview shows it.", usage_for("split")
            )
        case "resolve":
            first, _, after = rest.strip().partition(" ")
            if first.lower() in ("--now", "--force"):
                return Resolve(summary=_text("resolve", after, "summary", required=False), now=True)
            return Resolve(summary=_text("resolve", rest, "summary", required=False))
        case "reminders" | "followups" | "status" | "timeline" | "debrief" as word:
            _no_arguments(typed, rest)
            return _NO_ARGUMENTS[word]()
        case _:
            raise unknown_command(parts[0].strip(INVISIBLE))


_NO_ARGUMENTS: dict[str, type[ListReminders | ListFollowups | Status | Timeline | Debrief]] = {
    "reminders": ListReminders,
    "followups": ListFollowups,
    "status": Status,
    "timeline": Timeline,
    "debrief": Debrief,
}


def parse_command(text: str, command_name: str = DEFAULT_COMMAND_NAME) -> Command:
    """The command in the text after the slash command; UsageError (naming `command_name`) if none fits."""
    try:
        return _dispatch(text or "")
    except UsageError as e:
        raise UsageError(*(with_command_name(part, command_name) for part in (e.message, e.usage))) from None
    except ValidationError as e:  # a model constraint the grammar missed: still a problem with the input
        problem = e.errors()[0]
        field = ".".join(str(part) for part in problem["loc"]) or "input"
        raise UsageError(f"The {field} is not valid: {problem['msg']}.", help_text(command_name)) from None
