"""Property-based tests: whatever people and monitoring send, warroom answers with a typed error.

Each property runs 10,000 generated inputs (seeded, so CI is reproducible).
"""

from __future__ import annotations

import copy
import json
import random
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
from domain.commands import TITLE_MAX, UsageError, parse_command
from domain.naming import channel_name
from domain.slack_payloads import (
    SlackPayloadError,
    declare_form,
    reaction_event,
    slash_command,
    stage_form,
)
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
        "alerts": st.lists(alert, max_size=8),
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


# --- Slack payloads: whatever a signed request carries, the listeners get a model or a SlackPayloadError ---

SLASH = {
    "token": "verification-token",
    "team_id": "T0WARROOM",
    "channel_id": "C0GENERAL",
    "channel_name": "general",
    "user_id": "U0RESPONDER",
    "user_name": "responder",
    "command": "/incident",
    "text": "declare sev2 Search is down",
    "response_url": "https://hooks.slack.com/commands/1",
    "trigger_id": "1.2.abc",
}
REACTION = {
    "type": "reaction_added",
    "user": "U0RESPONDER",
    "reaction": "mega",
    "item_user": "U0OTHER",
    "item": {"type": "message", "channel": "C0INCIDENT", "ts": "1764237600.000100"},
    "event_ts": "1764237601.000200",
}


def _submission(private_metadata: str, values: dict[str, Any]) -> dict[str, Any]:
    """A `view_submission` body as Slack sends it, with `values` as the view's `state.values`."""
    return {
        "type": "view_submission",
        "user": {"id": "U0RESPONDER", "username": "responder", "team_id": "T0WARROOM"},
        "trigger_id": "1.2.def",
        "view": {
            "id": "V0001",
            "callback_id": "warroom_form",
            "private_metadata": private_metadata,
            "blocks": [{"type": "input", "block_id": block_id} for block_id in values],
            "state": {"values": values},
        },
    }


def _selected(value: str) -> dict[str, Any]:
    return {"value": {"type": "static_select", "selected_option": {"value": value}}}


def _typed(text: str) -> dict[str, Any]:
    return {"value": {"type": "plain_text_input", "value": text}}


def _conversations(*ids: str) -> dict[str, Any]:
    return {"value": {"type": "multi_conversations_select", "selected_conversations": list(ids)}}


DECLARE_FORM = _submission(
    "/incident",
    {
        "title": _typed("Search is down"),
        "severity": _selected("sev2"),
        "broadcast": _conversations("C0STATUS", "G0EXEC"),
        "call": _selected("zoom"),
        "private": {"value": {"type": "checkboxes", "selected_options": [{"value": "private"}]}},
    },
)
STAGE_FORM = _submission(
    "42",
    {
        "stage": _selected("mitigated"),
        "context": _typed("Traffic moved to the standby region"),
        "broadcast": _conversations("C0STATUS"),
    },
)

# Values close to what each field holds, so changes often land on almost-valid payloads; and too long ones.
SLACK_WORDS = [
    "", " ", "abc", "0", "-1", "7", "1e3", "sev1", "sev9", "SEV2", "mitigated", "bogus", "none", "zoom",
    "private", "U0RESPONDER", "U1", "u0lower", "C0STATUS", "G0EXEC", "D0DM", "general", "/incident", "/",
    "incident", "1764237600.000100", "1.2", "mega", "message", "file", "reaction_added", "\u202e", "<!here>",
    "x" * 200, "y\n" * 1600, "/" + "z" * 200,
]  # fmt: skip
# Shapes Slack uses for values, filled wrongly: a list where a string belongs, an option without a value...
SLACK_SHAPES: list[Any] = [
    [], {}, [[]], [{}], ["C0STATUS", "general"], ["private", "public"], [{"value": "private"}],
    [{"value": 7}], [{"nope": 1}], {"value": None}, {"value": "sev9"}, {"value": ["C0STATUS"]},
    {"selected_option": None}, {"selected_option": "sev1"}, {"selected_options": None},
    {"selected_conversations": "C0STATUS"}, {"id": 7}, {"id": None}, {"type": "message"},
    {"type": "file", "file": "F1"},
]  # fmt: skip
EDGE_SCALARS: list[Any] = [None, True, False, 0, -1, 2**63, -(2**63) - 1, 0.5, -0.0, 1e308, float("inf")]
_CHARS = "aZ09 _-/.:<>@#|&;`'\"\\\n\t\r\x00\x7f\u00e9\u200b\u202e\u2028\ufeff\U0001f600"
_KEYS = ["value", "type", "id", "user", "channel", "ts", "selected_option", "state", "values", ""]


def _odd_value(rng: random.Random, depth: int = 0) -> Any:
    """A near miss or a wrong shape from the lists above, an edge scalar, random text or a small container."""
    roll = rng.random()
    if roll < 0.45:
        return copy.deepcopy(rng.choice(SLACK_WORDS + SLACK_SHAPES))  # a shape is shared: never change it
    if roll < 0.6:
        return rng.choice(EDGE_SCALARS)
    if roll < 0.8:
        return "".join(rng.choice(_CHARS) for _ in range(rng.randrange(24)))
    if roll < 0.9 or depth >= 2:
        return rng.randint(-(2**40), 2**40) if rng.random() < 0.5 else rng.uniform(-1e9, 1e9)
    if rng.random() < 0.5:
        return [_odd_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(_KEYS): _odd_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into `node` (dict keys and list indexes), parents before children."""
    children: list[tuple[Any, Any]] = []
    if isinstance(node, dict):
        children = list(node.items())
    elif isinstance(node, list):
        children = list(enumerate(node))
    paths: list[tuple[Any, ...]] = []
    for key, child in children:
        paths += [(*prefix, key), *_paths(child, (*prefix, key))]
    return paths


def _near(skeleton: dict[str, Any], paths: list[tuple[Any, ...]], rng: random.Random) -> dict[str, Any]:
    """A copy of `skeleton` with one to three fields, anywhere in it, replaced by an odd value or removed."""
    payload: dict[str, Any] = json.loads(json.dumps(skeleton))
    for _ in range(rng.randint(1, 3)):
        *parents, last = rng.choice(paths)
        parent: Any = payload
        try:
            for key in parents:
                parent = parent[key]
            if rng.random() < 0.15:
                del parent[last]
            else:
                parent[last] = _odd_value(rng)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed or replaced this field's parent
    return payload


def slack_payloads(skeleton: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Anything JSON-like (`json_values`) one time in twenty; otherwise a near-valid payload (where a
    parser is most likely to slip) or, one time in ten, an object with some of the skeleton's keys holding
    odd values.

    Those two are built from one seeded `Random` rather than drawn piece by piece from Hypothesis, which
    made each example about half again as slow (10,000 of them per parser add up). They do not shrink, but
    a failure report shows the whole payload: one skeleton with a few fields changed, small and readable."""
    paths = _paths(skeleton)
    keys = sorted(skeleton)

    def built(rng: random.Random) -> dict[str, Any]:
        if rng.random() < 0.1:
            return {key: _odd_value(rng) for key in rng.sample(keys, rng.randrange(len(keys) + 1))}
        return _near(skeleton, paths, rng)

    seeded = st.randoms(use_true_random=True).map(built)

    @st.composite
    def payloads(draw: st.DrawFn) -> Any:
        return draw(json_values) if draw(st.integers(0, 19)) == 0 else draw(seeded)

    return payloads()


def _rejected(err: SlackPayloadError) -> None:
    """A rejection can be shown as it is: it names a field, says what to do, and is short."""
    assert err.field and err.message and len(err.message) < 300, err


CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{1,30}$")


@MANY
@given(slack_payloads(SLASH))
def test_any_slash_command_payload_parses_or_is_a_payload_error(payload: Any) -> None:
    try:
        parsed = slash_command(payload)
    except SlackPayloadError as err:
        _rejected(err)
        return
    assert parsed.command.startswith("/") and re.fullmatch(r"[UW][A-Z0-9]+", parsed.user_id)


@MANY
@given(slack_payloads(REACTION))
def test_any_reaction_event_parses_is_not_ours_or_is_a_payload_error(payload: Any) -> None:
    try:
        parsed = reaction_event(payload)
    except SlackPayloadError as err:
        _rejected(err)
        return
    if parsed is not None:
        assert payload["item"]["type"] == "message" and parsed.reaction == payload["reaction"]


@MANY
@given(slack_payloads(DECLARE_FORM))
def test_any_declare_form_submission_parses_or_is_a_payload_error(payload: Any) -> None:
    try:
        form = declare_form(payload)
    except SlackPayloadError as err:
        _rejected(err)
        return
    assert 1 <= len(form.title) <= TITLE_MAX and "\n" not in form.title
    assert all(CHANNEL_ID.match(c) for c in form.broadcast_channels)


@MANY
@given(slack_payloads(STAGE_FORM))
def test_any_stage_form_submission_parses_or_is_a_payload_error(payload: Any) -> None:
    try:
        form = stage_form(payload)
    except SlackPayloadError as err:
        _rejected(err)
        return
    assert form.incident_id == int(payload["view"]["private_metadata"]) > 0
    assert all(CHANNEL_ID.match(c) for c in form.broadcast_channels)
