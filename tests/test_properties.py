"""Property-based tests: whatever people and monitoring send, warroom answers with a typed error.

Each property runs 10,000 generated inputs (seeded, so CI is reproducible).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from activities.slack_render import safe
from domain.alerts import (
    DEFAULT_SEVERITY_MAP,
    AlertmanagerPayload,
    GenericAlert,
    GrafanaPayload,
    from_alertmanager,
    from_generic,
)
from domain.commands import UsageError, parse_command
from domain.naming import channel_name
from domain.timeexpr import resolve_when, split_when

MANY = settings(
    max_examples=10_000,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
SLACK_NAME = re.compile(r"^[a-z0-9_-]{1,80}$")

WORDS = [
    "declare", "new", "open", "stage", "update", "severity", "sev", "commander", "ic", "lead", "broadcast",
    "add", "remove", "status", "timeline", "resolve", "close", "remind", "cancel", "reminders", "role",
    "followup", "followups", "debrief", "call", "zoom", "meet", "jira", "ticket", "help", "sev1", "sev4",
    "sev9", "--private", "investigating", "identified", "mitigated", "in", "at", "tomorrow", "2h", "30m",
    "16:00", "9am", "2026-11-28T09:00", "<@U123ABC|alice>", "<@U1>", "<#C123ABC|ops>", "<#C1>", "<@>",
    "<#|x>", "<!channel>", "<!here>", "@alice", "#general", "&lt;", "&gt;", "&amp;", "<http://evil|ok>",
]  # fmt: skip
tokens = st.one_of(st.sampled_from(WORDS), st.text(max_size=12))
command_texts = st.one_of(
    st.text(max_size=300),
    st.lists(tokens, max_size=12).map(" ".join),
)

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)
labels = st.dictionaries(st.text(min_size=1, max_size=15), st.text(max_size=30), max_size=5)
alert = st.fixed_dictionaries(
    {"status": st.sampled_from(["firing", "resolved"]), "labels": labels, "annotations": labels},
    optional={"fingerprint": st.text(max_size=16), "generatorURL": st.text(max_size=40)},
)
alertmanager_like = st.fixed_dictionaries(
    {
        "version": st.sampled_from(["4", "3", ""]),
        "groupKey": st.text(max_size=40),
        "status": st.sampled_from(["firing", "resolved", "pending"]),
        "alerts": st.lists(alert, max_size=30),
    },
    optional={"commonLabels": labels, "commonAnnotations": labels, "externalURL": st.text(max_size=40)},
)


@MANY
@given(command_texts)
def test_any_command_text_is_a_command_or_a_usage_error(text: str) -> None:
    try:
        parse_command(text)
    except UsageError as err:
        assert err.message and err.usage is not None


@MANY
@given(command_texts)
def test_any_time_expression_resolves_or_is_a_usage_error(text: str) -> None:
    try:
        when, rest = split_when(text)
        resolved = resolve_when(when, NOW, "Europe/Paris")
    except UsageError:
        return
    assert resolved > NOW and resolved.tzinfo is not None
    assert isinstance(rest, str)


def _parse_alert(route: str, data: Any) -> None:
    if route == "alertmanager":
        from_alertmanager(AlertmanagerPayload.model_validate(data), "alertmanager", DEFAULT_SEVERITY_MAP)
    elif route == "grafana":
        from_alertmanager(GrafanaPayload.model_validate(data), "grafana", DEFAULT_SEVERITY_MAP)
    else:
        from_generic(GenericAlert.model_validate(data), DEFAULT_SEVERITY_MAP)


@MANY
@given(st.sampled_from(["alertmanager", "grafana", "generic"]), st.one_of(json_values, alertmanager_like))
def test_any_alert_payload_parses_or_is_a_422(route: str, data: Any) -> None:
    """What starter/alerts.py turns into 4xx JSON: pydantic's ValidationError (and ValueError) only."""
    try:
        _parse_alert(route, json.loads(json.dumps(data)))
    except (ValidationError, ValueError):
        pass


@MANY
@given(st.integers(min_value=1, max_value=999_999_999), st.text(max_size=300), st.integers(1, 20))
def test_any_title_gives_a_valid_slack_channel_name(incident_id: int, title: str, suffix: int) -> None:
    name = channel_name(incident_id, title, suffix)
    assert SLACK_NAME.match(name), name
    assert name.startswith(f"inc-{incident_id}")


@MANY
@given(command_texts)
def test_user_text_cannot_ping_everyone_or_disguise_a_link(text: str) -> None:
    rendered = safe(text)
    for control in re.findall(r"<[^>]*>", rendered):
        assert re.fullmatch(r"<[@#][UWCG][A-Z0-9]+>", control), (text, rendered)
