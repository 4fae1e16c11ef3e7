"""How people write `/incident` commands: the usage lines, the error they see when they get one wrong, and
how Slack hands us what they typed.

Slack sends the text with "escape channels, users and links" on: people arrive as `<@U123|name>`, channels
as `<#C123|name>`, and a literal `&`, `<`, `>` as `&amp;`, `&lt;`, `&gt;`. Free text is returned as the
person typed it (entities decoded, control characters dropped); escaping it for Slack is rendering's job.

Usage lines name the slash command as `/incident`; `help_text` and `usage_for` substitute the name the app is
actually registered under (for example `/inc`). Usage, help and error messages are mrkdwn with literal `<`
and `>` (`<title>`, echoed input) that Slack would read as links or mentions: escape them when sending.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_COMMAND_NAME = "/incident"

# Zero-width characters that copy-and-paste leaves around words.
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"

# How close a mistyped word must be to a known one to be suggested (difflib's ratio: `updte` and `update`
# score 0.91, `stat` and `status` 0.8, `escalate` and `declare` 0.67: no suggestion).
SUGGEST_CUTOFF = 0.75

WHEN_EXAMPLES = "`in 10m`, `in 2h`, `30m`, `at 16:00`, `tomorrow 09:00` or `2026-11-28T09:00`"


class UsageError(Exception):
    """Input that does not fit a command's grammar: what is wrong, and how the command is used."""

    def __init__(self, message: str, usage: str = "") -> None:
        super().__init__(message, usage)
        self.message = message
        self.usage = usage

    def __str__(self) -> str:
        return f"{self.message}\nUsage: {self.usage}" if self.usage else self.message

    def with_usage(self, usage: str) -> UsageError:
        """The same complaint, pointing at another command's usage (e.g. a time error inside `remind`)."""
        return UsageError(self.message, usage)


@dataclass(frozen=True)
class CommandDoc:
    """One line of the help: the canonical word, its aliases, the command kinds it produces and its syntax."""

    word: str
    aliases: tuple[str, ...]
    kinds: tuple[str, ...]
    syntax: str
    does: str


_C = DEFAULT_COMMAND_NAME

COMMAND_DOCS: tuple[CommandDoc, ...] = (
    CommandDoc(
        "help",
        ("?", "-h", "--help"),
        ("help",),
        f"`{_C} help [command]`",
        "this list, or the usage of one command",
    ),
    CommandDoc(
        "declare",
        ("new", "open"),
        ("declare",),
        f"`{_C} declare [sev1..sev4] [--private] <title>`",
        "declare an incident; with no title opens a form (aliases `new`, `open`)",
    ),
    CommandDoc(
        "stage",
        (),
        ("set_stage",),
        f"`{_C} stage <investigating|identified|mitigated> [context]`",
        "change the stage; with no argument opens a form",
    ),
    CommandDoc(
        "update",
        (),
        ("post_update", "public_update"),
        f"`{_C} update [--public] <text>`",
        "post a status update here and to every broadcast channel; `--public`: for the status page instead",
    ),
    CommandDoc(
        "severity",
        ("sev",),
        ("set_severity",),
        f"`{_C} severity <sev1..sev4> [reason]`",
        "change the severity (alias `sev`)",
    ),
    CommandDoc(
        "commander",
        ("ic", "lead"),
        ("set_commander",),
        f"`{_C} commander <@user>`",
        "set the incident commander (aliases `ic`, `lead`)",
    ),
    CommandDoc(
        "call",
        ("zoom", "meet"),
        ("start_call",),
        f"`{_C} call [zoom|meet]`",
        f"start a call and link it here (shorthands `{_C} zoom`, `{_C} meet`)",
    ),
    CommandDoc(
        "jira",
        ("ticket",),
        ("create_ticket",),
        f"`{_C} jira <summary>`",
        "create a Jira issue linked to this channel (alias `ticket`)",
    ),
    CommandDoc(
        "statuspage",
        ("status-page",),
        ("statuspage", "confirm_statuspage"),
        f"`{_C} statuspage [component[:status] ...] <public title>[ | message]` or "
        f"`{_C} statuspage --confirm <n>`",
        "preview a public incident on the status page; `--confirm` publishes the preview numbered n",
    ),
    CommandDoc(
        "page",
        (),
        ("page",),
        f"`{_C} page <service|escalation policy|team> [message]`",
        'page the on-call through PagerDuty or Opsgenie; quote a name with spaces (`"Payments API"`)',
    ),
    CommandDoc(
        "remind",
        (),
        ("remind", "cancel_reminder"),
        f"`{_C} remind <when> <text>` or `{_C} remind cancel <id>`, where `<when>` is {WHEN_EXAMPLES}",
        "DM you a reminder, in your Slack time zone",
    ),
    CommandDoc("reminders", (), ("list_reminders",), f"`{_C} reminders`", "list your pending reminders"),
    CommandDoc(
        "broadcast",
        (),
        ("broadcast",),
        f"`{_C} broadcast [add|remove <#channel> ...]`",
        "show or change the channels that get this incident's updates",
    ),
    CommandDoc("status", (), ("status",), f"`{_C} status`", "title, stage, severity, commander, call, age"),
    CommandDoc("timeline", (), ("timeline",), f"`{_C} timeline`", "the incident's timeline so far"),
    CommandDoc("role", (), ("assign_role",), f"`{_C} role <role> <@user>`", "assign a role, e.g. `comms`"),
    CommandDoc(
        "followup",
        ("follow-up",),
        ("add_followup", "ticket_followup"),
        f"`{_C} followup <text>` or `{_C} followup jira <n>`",
        "record a follow-up to do after the incident, or make follow-up n a Jira issue",
    ),
    CommandDoc("followups", ("follow-ups",), ("list_followups",), f"`{_C} followups`", "list the follow-ups"),
    CommandDoc(
        "split",
        (),
        ("split_group",),
        f"`{_C} split <n>`",
        "in an alert storm: give alert group n its own incident",
    ),
    CommandDoc(
        "debrief", (), ("debrief",), f"`{_C} debrief`", "hot debrief: a call and a things-to-revisit thread"
    ),
    CommandDoc(
        "resolve",
        ("close",),
        ("resolve",),
        f"`{_C} resolve [--now] [summary]`",
        "resolve the incident and post the summary (alias `close`); `--now` skips the follow-up check",
    ),
)

HELP_TEXT: str = "\n".join(f"{doc.syntax} — {doc.does}" for doc in COMMAND_DOCS)

# Every word a user may type first (canonical words and aliases), lower case, to its canonical word.
WORDS: dict[str, str] = {
    **{alias: doc.word for doc in COMMAND_DOCS for alias in doc.aliases},
    **{doc.word: doc.word for doc in COMMAND_DOCS},
}
_BY_KIND: dict[str, CommandDoc] = {kind: doc for doc in COMMAND_DOCS for kind in doc.kinds}
_BY_WORD: dict[str, CommandDoc] = {doc.word: doc for doc in COMMAND_DOCS}


def with_command_name(text: str, command_name: str) -> str:
    """Usage text naming the slash command as registered (`/inc`) instead of `/incident`."""
    if command_name == DEFAULT_COMMAND_NAME:
        return text
    name = command_name if command_name.startswith("/") else f"/{command_name}"
    return text.replace(f"{DEFAULT_COMMAND_NAME} ", f"{name} ")


def quote(fragment: str) -> str:
    """User input echoed in an error message: short, on one line, in a code span it cannot break out of.

    Format characters go too, so a right-to-left override cannot reverse the rest of the message.
    """
    short = " ".join(
        "".join(ch for ch in fragment[:200] if unicodedata.category(ch) not in ("Cc", "Cf")).split()
    )
    short = (short if len(short) <= 30 else f"{short[:30]}…") or "…"
    return "`" + short.replace("`", "'") + "`"


def help_text(command_name: str = DEFAULT_COMMAND_NAME) -> str:
    """The full usage listing, naming the slash command as the app registered it."""
    return with_command_name(HELP_TEXT, command_name)


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def usage_for(kind_or_word: str, command_name: str = DEFAULT_COMMAND_NAME) -> str:
    """The usage of one command, found by kind (`set_stage`), class name (`SetStage`), word or alias.

    Anything unknown gets the full help.
    """
    key = kind_or_word.strip()
    doc = _BY_KIND.get(_snake(key)) or _BY_WORD.get(WORDS.get(key.lower(), ""))
    return with_command_name(doc.syntax if doc else HELP_TEXT, command_name)


def closest(typed: str, known: Iterable[str]) -> str | None:
    """The one known word `typed` is most likely a typo of (`updte` -> `update`), or None if none is close."""
    found = difflib.get_close_matches(typed, list(known), n=1, cutoff=SUGGEST_CUTOFF)
    return found[0] if found else None


def unknown_command(typed: str) -> UsageError:
    """A first word that is no command: one line, naming the nearest command and how to learn it, never the
    whole listing. The usage is empty: the message itself points at `help`."""
    near = closest(typed.lower(), WORDS)
    if near is not None:
        return UsageError(
            f"I don't know {quote(typed)}. Did you mean `{_C} {near}`? `{_C} help {near}` shows how."
        )
    return UsageError(f"I don't know {quote(typed)}; `{_C} help` lists the commands.")


# --- free text as Slack sends it ------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")  # keeps \t and \n
_ENTITY = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}
_RUN_OF_SPACES = re.compile(r"[^\S\n]{2,}")
_LINE_EDGES = re.compile(r"[^\S\n]*\n[^\S\n]*")
_BLANK_LINES = re.compile(r"\n{3,}")


def strip_controls(text: str) -> str:
    """Drops control characters (and lone surrogates, which cannot be encoded); line breaks become `\n`."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n")
    return _CONTROL.sub("", text)


def _is_blank(text: str) -> bool:
    """Only spaces and invisible format characters (zero-width space, direction marks, ...)."""
    return all(unicodedata.category(ch)[0] in "ZC" for ch in text)


def clean_text(text: str, *, single_line: bool = False) -> str:
    """Free text as typed: entities decoded, control characters dropped, runs of spaces collapsed."""
    text = _ENTITY.sub(lambda m: _ENTITIES[m[1]], strip_controls(text))
    if single_line:
        text = " ".join(text.split())
    else:
        text = _BLANK_LINES.sub("\n\n", _LINE_EDGES.sub("\n", _RUN_OF_SPACES.sub(" ", text)))
    text = text.strip()
    return "" if _is_blank(text) else text


# --- Slack references ------------------------------------------------------------------------------------

_REF = re.compile(r"<([@#!])([^|<>]*)(?:\|[^<>]*)?>")
_USER_ID = re.compile(r"[UW][A-Z0-9]{1,30}")
_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{1,30}")
_REF_TOKEN = re.compile(r"<[^<>\s]*(?:\|[^<>]*)?>|\S+")
_REF_LABEL = re.compile(r"<@[^|<>]*\|([^<>]*)>")


def _parse_ref(token: str, sigil: str, ids: re.Pattern[str], what: str, unsure: str) -> str:
    token = token.strip()
    ref = _REF.fullmatch(token)
    if ref and ref[1] == sigil and ids.fullmatch(ref[2]):
        return ref[2]
    if ref and ref[1] != sigil and ref[1] in "@#":
        other = "a person" if ref[1] == "@" else "a channel"
        raise UsageError(f"{quote(token)} is {other}; name {what} with `{sigil}`.")
    hint = f"pick {what} from Slack's autocomplete as you type `{sigil}`, so Slack sends the ID."
    if token.startswith(sigil) or not token.startswith("<"):
        raise UsageError(f"I can't tell {unsure} {quote(token)} is: {hint}")
    raise UsageError(f"{quote(token)} is not {what}; {hint}")


def ref_tokens(rest: str) -> list[str]:
    """Words, keeping `<@U123|Ada Lovelace>` whole even if its label has spaces."""
    return _REF_TOKEN.findall(rest)


def parse_user(token: str) -> str:
    """`<@U123ABC>` or `<@U123ABC|alice>` to `U123ABC`."""
    return _parse_ref(token, "@", _USER_ID, "a person", "who")


def parse_user_named(token: str) -> tuple[str, str | None]:
    """`<@U123ABC|alice>` to (`U123ABC`, `alice`): the name Slack put in the mention, if it is one to show
    (`display_name`); `<@U123ABC>` to (`U123ABC`, None)."""
    user_id = parse_user(token)
    ref = _REF_LABEL.fullmatch(token.strip())
    return user_id, display_name(ref[1]) if ref else None


NAME_MAX = 80  # Slack's limit for a display name


def display_name(raw: str | None) -> str | None:
    """A name to show for a person, from a mention's label or a payload's `user_name`: entities decoded,
    control and format characters dropped, one line, cut to NAME_MAX characters. None when nothing is left
    or it looks like an email address (only names are kept, never contact details)."""
    if not raw:
        return None
    name = clean_text(raw, single_line=True)
    name = "".join(ch for ch in name if unicodedata.category(ch) != "Cf")
    if not name or "@" in name:
        return None
    return name[:NAME_MAX].rstrip()


def parse_channel(token: str) -> str:
    """`<#C123ABC>` or `<#C123ABC|general>` to `C123ABC`."""
    return _parse_ref(token, "#", _CHANNEL_ID, "a channel", "which channel")
