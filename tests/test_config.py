"""warroom.toml (WARROOM_CONFIG): validation with messages naming the key, and its effect end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from domain.config import (
    BUILT_IN_ROLES,
    DEFAULT_NUDGE_MINUTES,
    ConfigError,
    WarroomConfig,
    load_config,
    parse_config,
)
from domain.models import Declaration, ReactionAdded, StageChange
from domain.naming import channel_name
from domain.settings import Settings
from domain.vocab import Severity, Stage
from sandbox import SandboxServer
from sandbox.client import SandboxClient
from tests.conftest import RESPONDER, Stack, eventually, running_stack
from tests.test_incident_workflow import TITLE, wait_quiet

ROOT = Path(__file__).resolve().parent.parent
GOOD = """
[broadcast]
by_severity = { sev1 = ["C0EXEC"], sev2 = ["C0EXEC"] }
by_stage = { identified = ["C0SUPPORT"], mitigated = ["C0SUPPORT"] }
[reactions]
broadcast = ["mega", "pushpin", "mailbox"]
[channels]
name_template = "inc-{id}-{slug}"
[severities]
sev1 = "SEV1 critical"
"""


def test_a_good_file_and_the_example_parse() -> None:
    config = parse_config(GOOD)
    assert config.severity_channels(Severity.SEV1) == ("C0EXEC",)
    assert config.severity_channels(Severity.SEV3) == ()
    assert config.broadcast.by_stage["identified"] == ("C0SUPPORT",)
    assert config.severities == {"sev1": "SEV1 critical"}
    example = load_config(ROOT / "warroom.example.toml")
    assert example.broadcast.by_severity and example.severities


def test_no_file_is_todays_behaviour() -> None:
    assert load_config(None) == WarroomConfig() == parse_config("")
    snapshot = WarroomConfig().declaration_fields()
    default = Declaration(incident_id=1, title="t", severity=Severity.SEV3)
    # Roles and nudges came later: a Declaration without them (an incident declared before) has no nudges and
    # falls back to the built-in roles in the workflow; a new declaration always carries the config's.
    later = {"roles", "nudge_minutes"}
    assert {k: getattr(default, k) for k in snapshot if k not in later} == {
        k: v for k, v in snapshot.items() if k not in later
    }
    assert default.roles == {} and default.nudge_minutes == {}
    assert snapshot["roles"] == BUILT_IN_ROLES and snapshot["nudge_minutes"] == DEFAULT_NUDGE_MINUTES
    assert set(default.broadcast_reactions) == {"mega", "pushpin", "mailbox"}
    assert Settings(WARROOM_CONFIG=None).config == WarroomConfig()


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[broadcast]\nby_severity = { sev5 = ["C0EXEC"] }', "broadcast.by_severity.sev5: not a severity"),
        ('[broadcast]\nby_severity = { sev1 = ["#exec"] }', "broadcast.by_severity.sev1: channel IDs look"),
        ('[broadcast]\nby_stage = { fixed = ["C0SUPPORT"] }', "broadcast.by_stage.fixed: not a stage"),
        ('[broadcast]\nby_stage = { identified = "C0SUPPORT" }', "broadcast.by_stage.identified: "),
        ('[broadcast]\nby_team = { a = ["C0A"] }', "broadcast.by_team: unknown key"),
        ('[reactions]\nbroadcast = [":mega:"]', "reactions.broadcast: emoji names without colons"),
        ("[reactions]\nbroadcast = []", "reactions.broadcast: must list at least one"),
        ('[channels]\nname_template = "inc-{slug}"', "channels.name_template: must contain {id}"),
        ('[channels]\nname_template = "inc-{id}"', "channels.name_template: must contain {slug}"),
        ('[channels]\nname_template = "INC-{id}-{slug}"', "channels.name_template: outside {id} and {slug}"),
        ('[channels]\nname_template = "{id}-{team}-{slug}"', "channels.name_template: unknown placeholder"),
        ('[channels]\nname_template = "{id:>5}-{slug}"', "channels.name_template: placeholders take no"),
        ('[channels]\nname_template = "inc-{id}-{slug"', "channels.name_template: not a valid template"),
        (f'[channels]\nname_template = "{"x" * 60}-{{id}}-{{slug}}"', "channels.name_template: too long"),
        ('[severities]\nsev9 = "Doom"', "severities.sev9: not a severity (sev1..sev4)"),
        ('[severities]\nsev1 = ""', "severities.sev1: a label is one line"),
        ("[severities]\nsev1 = 1", "severities.sev1: Input should be a valid string"),
        ('[roles]\nScribe = "takes notes"', "roles.Scribe: a role name is a lowercase letter"),
        ('[roles]\nscribe = " "', "roles.scribe: describe the role in 1 to 300 characters"),
        ("[nudges]\nsev5 = 10", "nudges.sev5: not a severity"),
        ("[nudges]\nsev1 = -1", "nudges.sev1: minutes from 0 (never) to 1440"),
        ('[reactions]\nfollowup = ["mega"]', "reactions: mega cannot both broadcast and record a follow-up"),
        ("[pager]\nx = 1", "pager: unknown key"),
        ("[broadcast\n", "not valid TOML"),
    ],
)
def test_each_bad_key_is_named_with_its_problem(toml: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(toml, "warroom.toml")
    assert str(err.value).startswith("warroom.toml: ")
    assert expected in str(err.value)


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "warroom.toml"
    with pytest.raises(ConfigError, match=f"{missing}: cannot read WARROOM_CONFIG"):
        _ = Settings(WARROOM_CONFIG=str(missing)).config


@pytest.mark.parametrize("command", ["worker", "list"])
def test_the_cli_stops_with_exit_2_and_no_traceback(tmp_path: Path, command: str) -> None:
    bad = tmp_path / "warroom.toml"
    bad.write_text('[channels]\nname_template = "inc-{slug}"\n')
    env = {**os.environ, "WARROOM_CONFIG": str(bad), "TEMPORAL_ADDRESS": "127.0.0.1:1"}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "warroom"), command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"{bad}: channels.name_template: must contain {{id}}" in done.stderr
    assert "Traceback" not in done.stderr


def test_channel_names_follow_the_template_and_stay_valid() -> None:
    assert channel_name(42, "Checkout down", template="{slug}-inc{id}") == "checkout-down-inc42"
    assert channel_name(42, "Checkout down", 3, "{slug}-inc{id}") == "checkout-down-inc42-3"
    assert channel_name(42, "!!!", template="{slug}-inc-{id}") == "inc-42"
    assert channel_name(42, "!!!", template="inc-{id}--{slug}-x") == "inc-42-x"
    long = channel_name(123456789, "word " * 40, 12, "incident_{id}_{slug}")
    assert len(long) <= 80 and long.startswith("incident_123456789_") and long.endswith("-12")


async def test_configured_broadcasts_reactions_names_and_labels_end_to_end(
    temporal: WorkflowEnvironment, sandbox: SandboxServer, tmp_path: Path
) -> None:
    async with SandboxClient(sandbox.url) as control:
        execs = (await control.create_channel("execs"))["id"]
        support = (await control.create_channel("support"))["id"]
    config = tmp_path / "warroom.toml"
    config.write_text(
        f'[broadcast]\nby_severity = {{ sev1 = ["{execs}"] }}\nby_stage = {{ identified = ["{support}"] }}\n'
        '[reactions]\nbroadcast = ["loudspeaker"]\n'
        '[channels]\nname_template = "incident-{id}-{slug}"\n'
        '[severities]\nsev1 = "SEV1 critical"\n'
    )
    async with running_stack(temporal, sandbox, WARROOM_CONFIG=str(config)) as stack:
        incident_id = await stack.incidents.declare(TITLE, Severity.SEV1, declared_by=RESPONDER)
        channel = await stack.incident_channel(incident_id)
        await wait_quiet(stack, incident_id)
        named = await stack.slack.channel_by_name(f"incident-{incident_id}-checkout-latency-above-2s")
        assert named is not None and named["id"] == channel
        assert "SEV1 critical" in named["purpose"]["value"]
        for target in [*stack.broadcast, execs]:  # the sev1 channel on top of WARROOM_BROADCAST_CHANNELS
            [overview] = await stack.slack.messages(target)
            assert "SEV1 critical" in overview["text"] and TITLE in overview["text"]
        assert await stack.slack.messages(support) == []

        await stack.incidents.change_stage(
            incident_id, StageChange(stage=Stage.IDENTIFIED, context="Bad deploy", actor=RESPONDER)
        )
        await wait_quiet(stack, incident_id)
        [overview] = await stack.slack.messages(support)  # its overview first, the stage update under it
        assert "Identified" in overview["text"]
        assert ["Bad deploy" in r["text"] for r in overview["replies"]] == [True]
        state = await stack.state(incident_id)
        assert state.broadcast_channel_ids == [*stack.broadcast, execs, support]

        await react_and_wait(stack, incident_id, channel)


async def react_and_wait(stack: Stack, incident_id: int, channel: str) -> None:
    """:mega: is not configured (neither the ingress nor the workflow takes it); :loudspeaker: is."""
    ignored = (await stack.slack.message("U0HUMAN", channel, "Not for stakeholders"))["ts"]
    assert (await stack.slack.react("U0HUMAN", channel, ignored, "mega"))["status"] == 200
    direct = ReactionAdded(channel_id=channel, message_ts=ignored, user_id="U0HUMAN", reaction="mega")
    await stack.incidents.react(incident_id, direct)  # past the ingress: the workflow ignores it too
    wanted = (await stack.slack.message("U0HUMAN", channel, "Replica promoted"))["ts"]
    assert (await stack.slack.react("U0HUMAN", channel, wanted, "loudspeaker"))["status"] == 200

    async def broadcast() -> bool:
        [overview] = await stack.slack.messages(stack.broadcast[0])
        return any("Replica promoted" in r["text"] for r in overview["replies"])

    await eventually(broadcast)
    await wait_quiet(stack, incident_id)
    state = await stack.state(incident_id)
    assert [e.text for e in state.timeline if e.kind == "reaction"] == [":loudspeaker: Replica promoted"]
    for target in state.broadcast_channel_ids:
        [overview] = await stack.slack.messages(target)
        assert not any("Not for stakeholders" in r["text"] for r in overview["replies"])


def test_roles_nudges_and_followup_reactions_reach_the_declaration() -> None:
    config = parse_config(
        '[roles]\nscribe = "Scribe:   keeps the timeline."\n[nudges]\nsev2 = 10\n'
        '[reactions]\nbroadcast = ["mega"]\nfollowup = ["mailbox"]\n'
    )
    fields = config.declaration_fields()
    assert fields["roles"] == {**BUILT_IN_ROLES, "scribe": "Scribe: keeps the timeline."}
    assert fields["nudge_minutes"] == {**DEFAULT_NUDGE_MINUTES, "sev2": 10}
    assert fields["followup_reactions"] == ("mailbox",)
