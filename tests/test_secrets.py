"""No secret in Temporal or in the logs: an incident that uses Slack, Zoom, Meet, Jira and reminders leaves
no configured secret (bot token, signing secret, Zoom client secret, Jira API token) and no token the vendors
issued along the way in any payload of any workflow's history, nor in any log line."""

from __future__ import annotations

import io

from temporalio.testing import WorkflowEnvironment

from sandbox import SandboxServer
from tests.conftest import running_stack
from tests.histories.record import integrations, readable


async def test_no_secret_in_any_workflow_history_or_log_line(
    temporal: WorkflowEnvironment, sandbox: SandboxServer, log_output: io.StringIO
) -> None:
    async with running_stack(temporal, sandbox, WARROOM_CALL_PROVIDER="zoom") as stack:
        await integrations(stack)  # declare with a Zoom call, Jira issue, Meet call, reminders, resolve
        settings = stack.settings
        configured = settings.secrets()
        for name in ("zoom_client_secret", "jira_api_token", "slack_bot_token", "slack_signing_secret"):
            value = getattr(settings, name)
            assert value is not None and value.get_secret_value() in configured, name
        issued = [*sandbox.zoom.tokens, *sandbox.meet.tokens]
        assert sandbox.zoom.tokens and sandbox.meet.tokens, "the run fetched vendor tokens"
        key_lines = [line for line in sandbox.meet.private_key_pem.splitlines() if "-----" not in line]
        secrets = [*configured, *issued, *key_lines]

        histories = 0
        async for execution in temporal.client.list_workflows():
            handle = temporal.client.get_workflow_handle(execution.id, run_id=execution.run_id)
            text = readable((await handle.fetch_history()).to_json())
            leaked = [s[:6] + "…" for s in secrets if s in text]
            assert not leaked, f"{execution.id}: secrets in history: {leaked}"
            histories += 1
        assert histories >= 4, "the incident, the directory and two reminders"

    logged = log_output.getvalue()
    assert "reminder delivered" in logged and "call created" in logged, "the run was logged"
    leaked = [s[:6] + "…" for s in secrets if s in logged]
    assert not leaked, f"secrets in the logs: {leaked}"
