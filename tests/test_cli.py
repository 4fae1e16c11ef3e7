"""The `warroom` command line as a newcomer meets it: a typo gets one line with a suggestion, `warroom slack`
explains itself and prints plain text, `say` prints a bare ts that `react` takes (or `last`), `list` has a
header row."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from activities.slack_mrkdwn import to_plain
from sandbox import SandboxServer
from starter.cli import _parser, list_table, unknown_command
from starter.incidents import IncidentSummary
from starter.sandbox_cli import run_slack
from tests.conftest import Stack

WARROOM = str(Path(sys.executable).parent / "warroom")
USER = "U0DEVUSER"


async def warroom(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        WARROOM, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


# --- did you mean ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("typed", "near"), [("updte", "update"), ("lst", "list"), ("repot", "report")])
def test_a_mistyped_subcommand_gets_a_suggestion(typed: str, near: str) -> None:
    assert unknown_command(_parser(), [typed, "INC-1"]) == (
        f"warroom: unknown command '{typed}'. Did you mean 'warroom {near}'? "
        f"'warroom {near} --help' shows how."
    )


@pytest.mark.parametrize("argv", [["xyz"], ["escalate", "INC-1"]])
def test_a_far_miss_gets_no_guess(argv: list[str]) -> None:
    assert unknown_command(_parser(), argv) == (
        f"warroom: unknown command '{argv[0]}'; 'warroom --help' lists the commands."
    )


@pytest.mark.parametrize("argv", [["update", "INC-1", "x"], ["--help"], []])
def test_known_subcommands_and_options_pass(argv: list[str]) -> None:
    assert unknown_command(_parser(), argv) is None


async def test_the_typo_is_one_line_on_stderr_and_exit_2() -> None:
    code, out, err = await warroom("updte", "INC-1", "Rolling back")
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        "warroom: unknown command 'updte'. Did you mean 'warroom update'? 'warroom update --help' shows how."
    ]


async def test_warroom_slack_help_lists_every_form_and_option() -> None:
    code, out, _ = await warroom("slack", "--help")
    assert code == 0
    for form in ('"/incident ..."', "say CHANNEL TEXT", "react CHANNEL TS|last", "show [CHANNEL]", "dms"):
        assert f"\n  {form}" in out, form
    assert "the sandbox user who acts (default: U0DEVUSER)" in out
    assert "a channel ID, #name or name" in out
    assert "--sandbox URL" in out and "http://127.0.0.1:3001" in out


# --- plain text in the terminal ----------------------------------------------------------------------------


def test_slack_text_reads_as_plain_text() -> None:
    slack = "`/incident declare &lt;title&gt;` &amp; <@U1|ada> <@U2> in <#C1|ops>, see <https://g.example/d|graph>"
    assert (
        to_plain(slack) == "`/incident declare <title>` & @ada @U2 in #ops, see graph (https://g.example/d)"
    )


async def test_slash_command_answers_print_without_slack_entities(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    url = stack.sandbox.url
    assert await run_slack(["/incident", "help", "declare"], USER, "general", url) == 0  # a name, no `#`
    # (the ingress runs in this process: its log lines come first)
    assert capsys.readouterr().out.splitlines()[-1] == "`/incident declare [sev1..sev4] [--private] <title>`"
    assert await run_slack(["/incident", "updte", "Rolling", "back"], USER, "#general", url) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "I don't know `updte`. Did you mean `/incident update`? `/incident help update` shows how."
    )


# --- say, react, --channel against the sandbox -------------------------------------------------------------


def messages(sandbox: SandboxServer, channel_id: str) -> list[dict[str, Any]]:
    return sandbox.state.channel_messages(sandbox.state.channel(channel_id, viewer=None))


async def test_say_prints_a_bare_ts_and_react_last_takes_the_newest_message(
    sandbox: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    channel = sandbox.state.create_channel("inc-1-checkout", creator=USER).id  # no bot: no event
    assert await run_slack(["say", "inc-1-checkout", "first"], USER, None, sandbox.url) == 0
    first = capsys.readouterr().out.strip()
    assert (
        await run_slack(["say", "#inc-1-checkout", "p99", "back", "to", "300ms"], USER, None, sandbox.url)
        == 0
    )
    newest = capsys.readouterr().out.strip()
    assert [m["ts"] for m in messages(sandbox, channel)] == [
        first,
        newest,
    ]  # stdout is the ts and nothing else

    assert await run_slack(["react", channel, "last", "mega"], USER, None, sandbox.url) == 0
    assert f"reacted :mega: to {newest}" in capsys.readouterr().out
    reacted = {
        m["ts"]: m.get("reactions")
        for m in sandbox.state.channel_messages(sandbox.state.channel(channel, viewer=None))
    }
    assert reacted[first] is None
    assert reacted[newest] == [{"name": "mega", "users": [USER], "count": 1}]


async def test_an_unknown_channel_name_says_so(
    sandbox: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_slack(["say", "nowhere", "hi"], USER, None, sandbox.url) == 2
    assert "no channel named #nowhere in the sandbox" in capsys.readouterr().out
    assert await run_slack(["react", "C0NOPE", "1.2", "mega"], USER, None, sandbox.url) == 2
    assert capsys.readouterr().out == "warroom: sandbox answered 404: channel_not_found\n"  # no traceback


# --- warroom list ------------------------------------------------------------------------------------------


def test_list_has_a_header_row_over_aligned_columns() -> None:
    found = [
        IncidentSummary(12, "Checkout latency", "identified", "sev2", "open", None, None, None),
        IncidentSummary(3, "DB down", "mitigated", "sev1", "resolved", None, None, None),
    ]
    assert list_table(found).splitlines() == [
        "ID      SEVERITY  STAGE       STATUS    TITLE",
        "INC-12  sev2      identified  open      Checkout latency",
        "INC-3   sev1      mitigated   resolved  DB down",
    ]
    assert list_table([]) == "no incidents match"


async def test_show_names_people(sandbox: SandboxServer, capsys: pytest.CaptureFixture[str]) -> None:
    sandbox.state.add_user("U0ALICE", name="alice")
    sandbox.state.add_user("U0BOB", name="bob")
    channel = sandbox.state.create_channel("inc-1-db", creator="U0ALICE")
    channel.purpose["value"] = "sev2 · Investigating · commander <@U0ALICE> · DB down"
    parent = sandbox.state.post(channel, user="U0ALICE", text="paging <@U0BOB> and <@U0NOBODY> in <#C0GONE>")
    reply = f"<@U0BOB|bob> is commander of <#{channel.id}>"
    sandbox.state.post(channel, user="UBOT0WARROOM", text=reply, thread_ts=parent.ts)
    assert await run_slack(["show"], USER, None, sandbox.url) == 0
    assert (
        f"{channel.id}  #inc-1-db  sev2 · Investigating · commander @alice · DB down"
        in capsys.readouterr().out
    )
    assert await run_slack(["show", "#inc-1-db"], USER, None, sandbox.url) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"[{parent.ts}] alice: paging @bob and @U0NOBODY in #C0GONE",
        f"    ↳ [{channel.messages[parent.replies[0]].ts}] warroom: @bob is commander of #inc-1-db",
    ]
