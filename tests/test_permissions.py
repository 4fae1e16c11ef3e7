"""warroom.toml `[permissions]`: who may resolve, change severity and declare a sev1 from Slack.

End to end (real Temporal, the sandbox over HTTP through slack-sdk): a denied command is answered ephemerally
naming who may, and nothing reaches Temporal (the incident's and the directory's histories do not grow).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.testing import WorkflowEnvironment

from domain.config import ConfigError, parse_config
from domain.naming import directory_workflow_id, incident_workflow_id
from domain.permissions import PermissionsConfig
from domain.vocab import Severity, Status
from sandbox import SandboxServer
from sandbox.client import SandboxClient, SandboxError
from starter.incidents import IncidentNotFound
from starter.slack_deadline import ANSWER_WITHIN
from tests.conftest import RESPONDER, TOKEN, Stack, eventually, running_stack
from tests.test_incident_workflow import wait_quiet
from tests.test_ingress import bot_posts, declare_via_slack, run
from tests.test_ingress_modals import open_form, selected, typed

ALICE, BOB, LEAD, BOSS = "U0ALICE", "U0BOB", "U0LEAD", "U0BOSS"
LEADS = "S0LEADS"


@asynccontextmanager
async def configured(
    temporal: WorkflowEnvironment, sandbox: SandboxServer, tmp_path: Path, toml: str
) -> AsyncIterator[Stack]:
    path = tmp_path / "warroom.toml"
    path.write_text(toml)
    async with running_stack(temporal, sandbox, WARROOM_CONFIG=str(path)) as stack:
        sandbox.state.usergroups.create(LEADS, "oncall-leads", [LEAD])
        yield stack


async def history_length(stack: Stack, workflow_id: str) -> int:
    handle = stack.temporal.client.get_workflow_handle(workflow_id)
    return len((await handle.fetch_history()).events)


def incident_history(stack: Stack, incident_id: int) -> str:
    return incident_workflow_id(incident_id, stack.settings.task_queue)


async def lookups(stack: Stack) -> int:
    return len(stack.sandbox.state.calls_for("usergroups.users.list"))


# --- the default: today's behaviour -------------------------------------------------------------------------


async def test_by_default_anyone_resolves_and_changes_severity(stack: Stack) -> None:
    assert stack.settings.config.permissions == PermissionsConfig()
    incident_id, channel = await declare_via_slack(stack)  # declared by RESPONDER
    assert "no_entry" not in await run(stack, "severity sev3 calmer", channel, user=BOB)
    await wait_quiet(stack, incident_id)
    assert (await stack.state(incident_id)).severity is Severity.SEV3
    ack = await run(stack, "resolve --now Fixed", channel, user=BOB)
    assert ack.startswith("INC-1 resolved."), ack
    assert (await stack.state(incident_id)).status is Status.RESOLVED
    assert await lookups(stack) == 0  # no rule names a group: Slack is never asked


# --- resolve = ["commander"] --------------------------------------------------------------------------------


async def test_only_the_commander_resolves(
    temporal: WorkflowEnvironment, sandbox: SandboxServer, tmp_path: Path
) -> None:
    async with configured(temporal, sandbox, tmp_path, '[permissions]\nresolve = ["commander"]\n') as stack:
        incident_id, channel = await declare_via_slack(stack)  # RESPONDER declared it: no commander yet
        history = incident_history(stack, incident_id)
        before = await history_length(stack, history)

        denied = await run(stack, "resolve --now Looks fine", channel, user=BOB)
        assert denied.startswith(":no_entry: Only the commander may resolve INC-1."), denied
        assert await history_length(stack, history) == before  # nothing reached the workflow
        assert (await stack.state(incident_id)).status is Status.OPEN

        # Changing severity is not restricted: anyone still may.
        assert "no_entry" not in await run(stack, "severity sev3", channel, user=BOB)
        await wait_quiet(stack, incident_id)
        assert (await stack.state(incident_id)).severity is Severity.SEV3

        # Alice becomes commander; the declarer no longer counts as one.
        await run(stack, f"commander <@{ALICE}>", channel)
        await wait_quiet(stack, incident_id)
        before = await history_length(stack, history)
        for user in (BOB, RESPONDER):
            assert "Only the commander may resolve INC-1." in await run(stack, "resolve --now", channel, user)
        assert await history_length(stack, history) == before
        assert not [t for t in await bot_posts(stack, channel) if "resolved" in t.lower()]
        assert (await stack.state(incident_id)).status is Status.OPEN

        ack = await run(stack, "resolve --now Rolled back", channel, user=ALICE)
        assert ack.startswith("INC-1 resolved."), ack
        assert (await stack.state(incident_id)).status is Status.RESOLVED


async def test_the_declarer_counts_as_commander_until_one_is_named(
    temporal: WorkflowEnvironment, sandbox: SandboxServer, tmp_path: Path
) -> None:
    async with configured(temporal, sandbox, tmp_path, '[permissions]\nresolve = ["commander"]\n') as stack:
        incident_id, channel = await declare_via_slack(stack)
        assert (await stack.state(incident_id)).commander is None
        ack = await run(stack, "resolve --now Done", channel, user=RESPONDER)
        assert ack.startswith("INC-1 resolved."), ack


# --- severity = [a user group] ------------------------------------------------------------------------------


async def test_a_user_group_member_changes_severity_and_others_cannot(
    temporal: WorkflowEnvironment, sandbox: SandboxServer, tmp_path: Path
) -> None:
    toml = f'[permissions]\nseverity = ["{LEADS}"]\ndeclare_sev1 = ["{BOSS}"]\n'
    async with configured(temporal, sandbox, tmp_path, toml) as stack:
        incident_id, channel = await declare_via_slack(stack)
        history = incident_history(stack, incident_id)
        before = await history_length(stack, history)

        denied = await run(stack, "severity sev4 it is nothing", channel, user=BOB)
        assert denied == f":no_entry: Only <!subteam^{LEADS}> may change the severity of INC-1.", denied
        assert await history_length(stack, history) == before
        assert (await stack.state(incident_id)).severity is Severity.SEV2

        assert "no_entry" not in await run(stack, "severity sev3 smaller blast radius", channel, user=LEAD)
        await wait_quiet(stack, incident_id)
        assert (await stack.state(incident_id)).severity is Severity.SEV3
        assert "no_entry" not in await run(stack, "severity sev2", channel, user=LEAD)
        assert await lookups(stack) == 1  # the group's members are cached between commands

        # Raising to sev1 also takes declare_sev1: a group member is not enough.
        await wait_quiet(stack, incident_id)
        before = await history_length(stack, history)
        denied = await run(stack, "severity sev1", channel, user=LEAD)
        assert denied == f":no_entry: Only <@{BOSS}> may raise INC-1 to sev1.", denied
        assert await history_length(stack, history) == before
        assert (await stack.state(incident_id)).severity is Severity.SEV2

        # Resolving is not restricted.
        assert (await run(stack, "resolve --now", channel, user=BOB)).startswith("INC-1 resolved.")


async def test_an_unanswered_or_refused_group_lookup_denies_in_time_and_says_why(
    temporal: WorkflowEnvironment, sandbox: SandboxServer, tmp_path: Path
) -> None:
    async with configured(temporal, sandbox, tmp_path, f'[permissions]\nresolve = ["{LEADS}"]\n') as stack:
        incident_id, channel = await declare_via_slack(stack)
        history = incident_history(stack, incident_id)
        before = await history_length(stack, history)

        stack.sandbox.state.usergroups.read_scope = False  # the app was installed without usergroups:read
        refused = await run(stack, "resolve --now", channel, user=LEAD)
        assert refused.startswith(f":no_entry: Only <!subteam^{LEADS}> may resolve INC-1."), refused
        assert f"could not ask Slack who is in <!subteam^{LEADS}> (missing_scope: " in refused
        assert "needs the usergroups:read scope" in refused
        stack.sandbox.state.usergroups.read_scope = True

        stack.sandbox.state.add_fault("usergroups.users.list", delay_ms=1500)
        started = time.monotonic()
        slow = await run(stack, "resolve --now", channel, user=LEAD)
        assert time.monotonic() - started < ANSWER_WITHIN  # Slack's 3 s hold, whatever usergroups does
        assert f"could not ask Slack who is in <!subteam^{LEADS}> (no answer in time)" in slow, slow
        assert await history_length(stack, history) == before
        assert (await stack.state(incident_id)).status is Status.OPEN

        # The late answer still fills the cache: the next command needs no lookup.
        await eventually(lambda: _finished_lookups(stack, 2))
        assert (await run(stack, "resolve --now", channel, user=LEAD)).startswith("INC-1 resolved.")
        assert await lookups(stack) == 2


async def _finished_lookups(stack: Stack, count: int) -> bool:
    return await lookups(stack) == count


# --- declare_sev1 -------------------------------------------------------------------------------------------


async def test_only_allowed_people_declare_a_sev1_by_command_or_form(
    temporal: WorkflowEnvironment, sandbox: SandboxServer, tmp_path: Path
) -> None:
    toml = f'[permissions]\ndeclare_sev1 = ["@{BOSS}", "{LEADS}"]\n'
    async with configured(temporal, sandbox, tmp_path, toml) as stack:
        directory = directory_workflow_id(stack.settings.task_queue)
        denied = await run(stack, "declare sev1 Payments down", user=BOB)
        assert denied == (
            f":no_entry: Only <@{BOSS}> or <!subteam^{LEADS}> may declare a sev1. "
            "Declare it as sev2 or lower, or ask one of them."
        ), denied
        with pytest.raises(IncidentNotFound):
            await stack.state(1)
        assert not [c for c in stack.sandbox.state.channels.values() if c.name.startswith("inc-")]

        # The form: a sev1 by someone not allowed keeps it open with the reason under the severity.
        view = await open_form(stack, "declare", None, "warroom_declare")
        form = await stack.slack.submit_view(
            view["id"], {"title": typed("Payments down"), "severity": selected("sev1")}, user_id=RESPONDER
        )
        assert form["response_action"] == "errors" and not form["view_closed"], form
        assert form["errors"]["severity"].startswith(
            f"Only user {BOSS} or members of user group {LEADS} may declare a sev1."
        )
        with pytest.raises(IncidentNotFound):
            await stack.state(1)
        assert not await _exists(stack, directory)  # no incident ID was ever allocated

        # sev2 is not restricted; the form then declares.
        form = await stack.slack.submit_view(
            view["id"], {"title": typed("Payments down"), "severity": selected("sev2")}, user_id=RESPONDER
        )
        assert form["view_closed"], form
        await stack.incident_channel(1)
        assert (await stack.state(1)).severity is Severity.SEV2

        # The boss by user ID, a lead by group.
        assert "*INC-2*" in await run(stack, "declare sev1 Checkout down", user=BOSS)
        assert "*INC-3*" in await run(stack, "declare sev1 Search down", user=LEAD)
        assert (await stack.state(3)).severity is Severity.SEV1


async def _exists(stack: Stack, workflow_id: str) -> bool:
    try:
        await stack.temporal.client.get_workflow_handle(workflow_id).describe()
    except Exception:
        return False
    return True


# --- configuration ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[permissions]\nresolve = []", "permissions.resolve: list at least one principal"),
        ('[permissions]\nresolve = ["everyone"]', "permissions.resolve: 'everyone' is not \"anyone\""),
        ('[permissions]\nseverity = ["@oncall-leads"]', "permissions.severity: '@oncall-leads' is not"),
        ('[permissions]\nseverity = ["anyone", "U0AB"]', 'permissions.severity: "anyone" already includes'),
        ('[permissions]\ndeclare_sev1 = ["commander"]', 'permissions.declare_sev1: "commander" is not valid'),
        ('[permissions]\nprivacy = ["commander"]', "permissions.privacy: no command changes an incident's"),
        ('[permissions]\nclose = ["anyone"]', "permissions.close: unknown key"),
        ("[permissions]\nresolve = [1]", "permissions.resolve[0]: Input should be a valid string"),
    ],
)
def test_bad_permissions_are_named_with_the_key_and_entry(toml: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(toml, "warroom.toml")
    assert str(err.value).startswith("warroom.toml: ") and expected in str(err.value), str(err.value)


def test_principals_are_normalised() -> None:
    config = parse_config(f'[permissions]\nresolve = ["commander", "@{LEADS}", "{ALICE}", "@{ALICE}"]\n')
    assert config.permissions.resolve == ("commander", LEADS, ALICE)
    assert config.permissions.severity == ("anyone",) and not config.permissions.restricts("severity")


def test_a_bad_permission_stops_start_up_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "warroom.toml"
    bad.write_text('[permissions]\ndeclare_sev1 = ["commander"]\n')
    env = {**os.environ, "WARROOM_CONFIG": str(bad), "TEMPORAL_ADDRESS": "127.0.0.1:1"}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "warroom"), "web"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done
    assert "permissions.declare_sev1" in done.stderr and "Traceback" not in done.stderr, done.stderr


# --- the sandbox's usergroups.users.list, through slack-sdk -------------------------------------------------


async def test_the_sandbox_lists_a_groups_members_as_slack_does(sandbox: SandboxServer) -> None:
    sandbox.state.usergroups.create(LEADS, "oncall-leads", [LEAD, ALICE])
    client = AsyncWebClient(token=TOKEN, base_url=sandbox.api_url, retry_handlers=[])
    listed = await client.usergroups_users_list(usergroup=LEADS, include_disabled=True)
    assert listed["ok"] and listed["users"] == [LEAD, ALICE]

    async def error_of(c: AsyncWebClient, **kwargs: str) -> str:
        with pytest.raises(SlackApiError) as err:
            await c.usergroups_users_list(**kwargs)  # type: ignore[arg-type]
        return str(err.value.response["error"])

    async with SandboxClient(sandbox.url) as control:  # the control API makes one too, with a new ID
        made = (await control.create_usergroup("sre", [ALICE]))["usergroup"]
        assert made["id"].startswith("S") and made["handle"] == "sre"
        assert (await client.usergroups_users_list(usergroup=made["id"]))["users"] == [ALICE]
        with pytest.raises(SandboxError):
            await control.create_usergroup("sre", [LEAD])  # handles are unique
    assert await error_of(client, usergroup="S0NOPE") == "no_such_subteam"
    assert await error_of(client, usergroup="") == "invalid_arguments"
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=sandbox.api_url, retry_handlers=[])
    assert await error_of(wrong, usergroup=LEADS) == "invalid_auth"
    sandbox.state.usergroups.read_scope = False
    with pytest.raises(SlackApiError) as err:
        await client.usergroups_users_list(usergroup=LEADS)
    assert err.value.response["error"] == "missing_scope"
    assert err.value.response["needed"] == "usergroups:read"
