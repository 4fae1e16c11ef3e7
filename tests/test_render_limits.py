"""Everything warroom renders for Slack fits Slack's limits (checked with slack-sdk's own validators and the
limits it does not check), and text is escaped exactly once: raw text by `safe()`, Slack's own text quoted as
Slack stored it, with broadcast mentions defused."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from activities import slack_limits as limits
from activities import slack_mrkdwn
from activities import slack_render as render
from activities.jira import plain_summary
from activities.timeline_render import timeline_json, timeline_markdown
from domain.alerts import AlertGroup, AlertItem
from domain.commands import TEXT_MAX, TITLE_MAX, PostUpdate, parse_command
from domain.models import (
    Announcement,
    CallInfo,
    Followup,
    IncidentState,
    IncidentView,
    ReminderInput,
    ReminderRecord,
    TicketInfo,
    TimelineEvent,
)
from domain.vocab import Severity, Stage, Status
from starter import dispatch, modals

FEW = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
PERMALINK = "https://warroom.slack.com/archives/C0INC/p1767606300000100"
# Exactly as Slack stores and delivers a message: entities escaped, the link in Slack's own syntax.
STORED = "Rolled back 1234 &amp; restarted &lt;pods&gt;, see <https://grafana.example/d/abc|dashboard>"
KINDS = ("update", "stage", "severity", "commander", "reaction", "resolved", "alert", "call", "ticket")


# --- what Slack accepts ----------------------------------------------------------------------------------


def check_text(text: str, limit: int = limits.MESSAGE_TEXT) -> None:
    """Message text Slack posts: within its limit, every entity whole, every `<` closed, no broadcast ping."""
    assert len(text) <= limit, len(text)
    assert not re.search(r"&(?!amp;|lt;|gt;)", text), _around(text, r"&(?!amp;|lt;|gt;)")
    assert not re.search(r"<[^>]*(<|$)", text), _around(text, r"<[^>]*(<|$)")
    assert "<!" not in text, _around(text, "<!")


def _around(text: str, pattern: str) -> str:
    m = re.search(pattern, text)
    return text[max(m.start() - 60, 0) : m.end() + 60] if m else ""


def check_blocks(blocks: list[dict[str, Any]], limit: int = limits.MESSAGE_BLOCKS) -> None:
    """Blocks as slack-sdk validates them, plus the limits it leaves to Slack."""
    assert 0 < len(blocks) <= limit
    for b in blocks:
        Block.parse(b).validate_json()  # type: ignore[union-attr]
        if b["type"] == "section":
            if "text" in b:
                check_text(b["text"]["text"], limits.SECTION_TEXT)
            fields = b.get("fields") or []
            assert len(fields) <= limits.SECTION_FIELDS
            for f in fields:
                check_text(f["text"], limits.SECTION_FIELD)
        elif b["type"] == "header":
            assert len(b["text"]["text"]) <= limits.HEADER_TEXT
        elif b["type"] == "context":
            assert len(b["elements"]) <= limits.CONTEXT_ELEMENTS
            for e in b["elements"]:
                check_text(e["text"], limits.CONTEXT_TEXT)
        elif b["type"] == "actions":
            for e in b["elements"]:
                assert len(e["text"]["text"]) <= limits.BUTTON_TEXT


def check_view(view: dict[str, Any]) -> None:
    View(**view).validate_json()
    assert len(view["title"]["text"]) <= limits.MODAL_TITLE
    assert len(view["blocks"]) <= limits.MODAL_BLOCKS
    for b in view["blocks"]:
        element = b.get("element") or {}
        for option in element.get("options") or []:
            assert len(option["text"]["text"]) <= limits.OPTION_TEXT
        if element.get("type") == "plain_text_input":
            assert element["max_length"] <= limits.INPUT_MAX_LENGTH


# --- what people and Slack send --------------------------------------------------------------------------

RAW_PIECES = ["&", "<", ">", "a & b <c>", "<!channel>", "<!here>", "<@U1ABC>", "<#C1ABC|ops>", "*x*", "\n"]
SLACK_PIECES = [
    STORED, "&amp;", "&lt;", "&gt;", "<@U1ABC>", "<@U2|bob>", "<#C1ABC|ops>", "<!here>", "<!channel>",
    "<!everyone>", "<!subteam^S1ABC|@oncall>", "<https://x.example/a?b=1&amp;c=2|a &amp; b>",
    "<mailto:a@b.example|mail>", "\n", "> quoted", "`code`", "word ",
]  # fmt: skip


def repeated(pieces: list[str], max_size: int) -> st.SearchStrategy[str]:
    """Text up to `max_size` characters built from a few pieces repeated: long text, cheaply."""
    return st.tuples(
        st.lists(st.one_of(st.sampled_from(pieces), st.text(max_size=8)), min_size=1, max_size=6),
        st.integers(0, max_size),
    ).map(lambda t: ("".join(t[0]) * (t[1] // max(len("".join(t[0])), 1) + 1))[: t[1]])


def slack_stored(max_size: int) -> st.SearchStrategy[str]:
    """Text as Slack stores it: typed text escaped, then Slack's links and mentions."""
    typed = st.text(max_size=8).map(
        lambda t: t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    )
    pieces = st.lists(st.one_of(st.sampled_from(SLACK_PIECES), typed), min_size=1, max_size=6)
    return st.tuples(pieces, st.integers(0, max_size)).map(lambda t: _whole_pieces(t[0], t[1]))


def _whole_pieces(pieces: list[str], size: int) -> str:
    """The pieces repeated, whole (a link is never cut), to about `size` characters."""
    once = "".join(pieces)
    return once * (size // len(once) + 1) if once and size else ""


titles = repeated(RAW_PIECES, TITLE_MAX).map(lambda t: t or "x")
raw_texts = repeated(RAW_PIECES, TEXT_MAX)
user_ids = st.sampled_from(["U0ALICE", "U0BOB", "U1ABC"])
labels = st.dictionaries(repeated(RAW_PIECES, 30), repeated(RAW_PIECES, 200), max_size=20)
role_names = repeated(["scribe", "&", "<comms>", "ops lead"], 40).map(lambda t: t or "role")


@st.composite
def incidents(draw: st.DrawFn) -> IncidentState:
    """Any reachable incident state, at its largest where it matters."""
    quoted = slack_stored(40_000)
    followups = [
        Followup(
            followup_id=i + 1,
            text=draw(quoted) if is_quoted else draw(raw_texts) or "x",
            author=draw(user_ids),
            at=T0,
            link=PERMALINK if is_quoted else None,
            quoted=is_quoted,
            ticket=TicketInfo(key=f"OPS-{i}", url="https://jira.example/browse/OPS-1", summary="s")
            if draw(st.booleans())
            else None,
        )
        for i, is_quoted in enumerate(draw(st.lists(st.booleans(), max_size=4)))
    ]
    followups *= draw(st.integers(0, 200)) // max(len(followups), 1)  # up to 200, few distinct
    events = [
        TimelineEvent(at=T0, kind="update", text=draw(raw_texts), actor=draw(user_ids)),
        TimelineEvent(at=T0, kind="reaction", text=draw(quoted), actor="U0BOB", link=PERMALINK, quoted=True),
        TimelineEvent(at=T0, kind="debrief", text=draw(quoted), actor="U0BOB", quoted=True),
    ]
    many = draw(st.integers(0, 5_000))
    return IncidentState(
        incident_id=draw(st.integers(1, 10**9)),
        title=draw(titles),
        severity=draw(st.sampled_from(list(Severity))),
        stage=draw(st.sampled_from(list(Stage))),
        status=draw(st.sampled_from(list(Status))),
        private=draw(st.booleans()),
        declared_by="U0ALICE",
        declared_at=T0,
        commander=draw(st.one_of(st.none(), user_ids)),
        channel_id="C0INC",
        channel_name="inc-1-x",
        summary=draw(repeated(RAW_PIECES, 3_000)),
        resolved_at=T0 + timedelta(hours=1),
        roles=draw(st.dictionaries(role_names, user_ids, max_size=20)),
        call=CallInfo(provider="zoom", join_url="https://zoom.example/j/1", meeting_id="1")
        if draw(st.booleans())
        else None,
        broadcasts=[{"channel_id": f"C{i:08d}"} for i in range(draw(st.integers(0, 50)))],
        timeline=[events[i % len(events)] for i in range(many)],
        followups=followups,
        tickets=[f.ticket for f in followups if f.ticket is not None],
        alert=AlertGroup(
            source=draw(repeated(RAW_PIECES, 60)) or "generic",
            dedup_key=None,
            status="firing",
            title=draw(titles),
            severity=Severity.SEV2,
            description=draw(raw_texts),
            alerts=[_alert(draw(titles), draw(raw_texts), draw(labels))] * 7,
            external_url="https://alerts.example/",
            truncated=draw(st.integers(0, 1_000)),
        )
        if draw(st.booleans())
        else None,
        ever_mitigated=draw(st.booleans()),
    )


def _alert(name: str, summary: str, tags: dict[str, str]) -> AlertItem:
    return AlertItem(fingerprint="f", status="firing", name=name, summary=summary, labels=tags, url=PERMALINK)


# --- properties -------------------------------------------------------------------------------------------


@FEW
@given(incidents(), slack_stored(40_000), raw_texts)
def test_every_payload_of_any_incident_fits_slack(state: IncidentState, quoted: str, raw: str) -> None:
    check_every_payload(state, quoted, raw)


def test_the_largest_incident_fits_slack() -> None:
    piece = "<!here> &amp; <https://x.example/a|a &lt;b&gt;> <@U1ABC>\n"
    quoted = piece * (40_000 // len(piece))  # as Slack stores it: whole entities and links
    raw = ("a & b <c> <!channel> " * 200)[:TEXT_MAX]
    followup = Followup(followup_id=1, text=quoted, author="U0BOB", at=T0, link=PERMALINK, quoted=True)
    state = IncidentState(
        incident_id=10**9,
        title=("&<>" * 50)[:TITLE_MAX],
        severity=Severity.SEV1,
        declared_at=T0,
        channel_id="C0INC",
        status=Status.RESOLVED,
        summary="&" * 3_000,
        roles={f"role &{i}": f"U0ROLE{i}" for i in range(20)},
        call=CallInfo(provider="meet", join_url="https://meet.example/abc", meeting_id="abc"),
        broadcasts=[{"channel_id": f"C{i:08d}"} for i in range(50)],
        timeline=[TimelineEvent(at=T0, kind="reaction", text=quoted, link=PERMALINK, quoted=True)] * 5_000,
        followups=[followup] * 200,
    )
    check_every_payload(state, quoted, raw)


def check_every_payload(state: IncidentState, quoted: str, raw: str) -> None:
    """Every message, block and form rendered from this incident is one Slack accepts."""
    view = state.view()
    for in_broadcast in (False, True):
        check_blocks(render.overview_blocks(view, in_broadcast=in_broadcast))
        check_text(render.overview_text(view, in_broadcast=in_broadcast))
        for kind in KINDS:
            for text, is_quoted in ((raw, False), (quoted, True)):
                a = Announcement(
                    key="k",
                    kind=kind,
                    text=text,
                    actor="U0BOB",
                    link=PERMALINK,
                    quoted=is_quoted,
                    stage=state.stage,
                )
                check_text(render.announcement_text(view, a, in_broadcast=in_broadcast))
    check_text(render.timeline_text(state.timeline, state.incident_id))
    check_text(render.timeline_text(state.timeline[-dispatch.TIMELINE_LIMIT :], state.incident_id))
    check_text(dispatch.status_text(state, now=T0))
    check_text(dispatch.followups_text(state))
    check_text(dispatch.wrap_up_offer(state))
    check_text(dispatch.broadcast_text(state, "/incident"))
    check_text(render.resolve_reply(state.incident_id, state.ever_mitigated, state.followups))
    reminders = [
        ReminderRecord(reminder_id=f"1-{i}", user_id="U0BOB", due=T0, local="Mon 09:00", text=raw or "x")
        for i in range(len(state.followups))
    ]
    check_text(dispatch.reminders_text(reminders, "/incident"))
    check_text(
        render.reminder_text(ReminderInput(**reminders[0].model_dump(), incident_id=1)) if reminders else ""
    )
    text, blocks = render.nudge_message(view)
    check_text(text)
    check_blocks(blocks)
    check_text(render.role_text(view, state.title, raw))
    check_view(modals.stage_modal(state))


@FEW
@given(
    st.one_of(repeated(RAW_PIECES, 5_000).map(render.safe), slack_stored(5_000).map(slack_mrkdwn.defuse)),
    st.integers(1, 4_000),
)
def test_shortened_text_fits_and_never_cuts_an_entity_or_a_link(text: str, limit: int) -> None:
    short = limits.shorten(text, limit, "<#C0INC>")
    assert len(short) <= limit
    if short != text:
        assert short.endswith(("… (shortened: full text in <#C0INC>)", "…"))
        kept = short.removesuffix(limits.marker("<#C0INC>")).removesuffix("…")
        assert text.startswith(kept)
    check_text(short, limit)


@FEW
@given(st.lists(st.text(max_size=100), max_size=30), st.integers(1, 10))
def test_views_fit_whatever_their_labels(labels: list[str], width: int) -> None:
    options = [(f"v{i}", label * width or "x") for i, label in enumerate(labels)]
    view = modals.update_modal(10**9, "INC-1000000000")
    view["blocks"].append(modals._select("pick", "Pick", options or [("v", "x")], "v0" if options else "v"))
    check_view(limits.fit_view(view))


# --- escaping exactly once ------------------------------------------------------------------------------


def view_of(**changes: Any) -> IncidentView:
    state = IncidentState(incident_id=7, title="Checkout down", severity=Severity.SEV2, declared_at=T0)
    return state.view().model_copy(update={"channel_id": "C0INC", **changes})


def test_a_mega_on_escaped_text_is_quoted_as_slack_stored_it() -> None:
    a = Announcement(key="k", kind="reaction", text=STORED, actor="U0BOB", link=PERMALINK, quoted=True)
    for in_broadcast in (False, True):
        text = render.announcement_text(view_of(), a, in_broadcast=in_broadcast)
        assert f"> {STORED}" in text
        assert "&amp;amp;" not in text and "&amp;lt;" not in text and "&lt;https" not in text


def test_a_debrief_reply_is_shown_in_the_timeline_as_slack_stored_it() -> None:
    event = TimelineEvent(at=T0, kind="debrief", text=STORED, actor="U0BOB", quoted=True)
    text = render.timeline_text([event], 7)
    assert STORED in text and "&amp;amp;" not in text


def test_raw_slash_command_text_is_escaped_once() -> None:
    command = parse_command("update a &amp; b &lt;c&gt;")  # as Slack delivers what was typed
    assert command == PostUpdate(text="a & b <c>")
    a = Announcement(key="k", kind="update", text=command.text, actor="U0BOB")
    text = render.announcement_text(view_of(), a, in_broadcast=True)
    assert "a &amp; b &lt;c&gt;" in text and "&amp;amp;" not in text


def test_a_quoted_broadcast_mention_pings_nobody_but_users_and_links_stay() -> None:
    stored = (
        "<!here> <!channel> <!subteam^S1ABC|@oncall> ask <@U0BOB> in <#C1ABC|ops>, <https://x.example|doc>"
    )
    a = Announcement(key="k", kind="reaction", text=stored, actor="U0BOB", quoted=True)
    text = render.announcement_text(view_of(), a, in_broadcast=True)
    assert "<!" not in text
    assert "@here @channel @oncall" in text
    assert "<@U0BOB>" in text and "<#C1ABC|ops>" in text and "<https://x.example|doc>" in text


def test_a_followup_by_reaction_is_listed_unchanged_and_a_typed_one_escaped() -> None:
    state = IncidentState(incident_id=7, title="t", severity=Severity.SEV2, declared_at=T0)
    state.followups = [
        Followup(followup_id=1, text=STORED, author="U0BOB", at=T0, link=PERMALINK, quoted=True),
        Followup(followup_id=2, text="a & b", author="U0BOB", at=T0),
    ]
    for text in (
        dispatch.followups_text(state),
        dispatch.wrap_up_offer(state),
        render.resolve_reply(7, True, state.followups),
    ):
        assert f"#1 {STORED}" in text and "#2 a &amp; b" in text and "&amp;amp;" not in text


# --- Slack's limits ---------------------------------------------------------------------------------------


def test_a_summary_of_2990_ampersands_renders_within_a_section() -> None:
    view = view_of(status=Status.RESOLVED, summary="&" * 2_990)
    for in_broadcast in (False, True):
        blocks = render.overview_blocks(view, in_broadcast=in_broadcast)
        check_blocks(blocks)
        [summary] = [b["text"]["text"] for b in blocks if "*Summary*" in b.get("text", {}).get("text", "")]
        assert (
            summary.startswith("*Summary*\n&amp;&amp;")
            and "shortened: full text in the *Resolved*" in summary
        )


def test_seven_roles_and_a_call_fit_in_field_sections() -> None:
    roles = {f"role{i}": f"U0ROLE{i}" for i in range(7)}
    call = CallInfo(provider="zoom", join_url="https://zoom.example/j/1", meeting_id="1")
    blocks = render.overview_blocks(view_of(roles=roles, call=call), in_broadcast=False)
    check_blocks(blocks)
    fields = [f["text"] for b in blocks for f in b.get("fields") or []]
    assert len(fields) == 4 + 1 + 7
    assert all(f"<@U0ROLE{i}>" in "".join(fields) for i in range(7)) and "Join Zoom call" in "".join(fields)


def test_a_mega_on_a_40000_character_message_fits_and_points_to_the_source() -> None:
    a = Announcement(
        key="k", kind="reaction", text="&amp; x\n" * 5_000, actor="U0BOB", link=PERMALINK, quoted=True
    )
    text = render.announcement_text(view_of(), a, in_broadcast=True)
    check_text(text)
    assert text.endswith("… (shortened: full text in the source message)")


def test_a_long_timeline_keeps_the_newest_events_and_counts_the_rest() -> None:
    events = [TimelineEvent(at=T0, kind="update", text=f"step {i} " + "&" * 2_000) for i in range(100)]
    text = render.timeline_text(events, 7)
    check_text(text)
    assert "step 99 " in text and "step 0 " not in text
    assert re.search(r"… \d+ earlier events not shown", text)


def test_events_archived_or_not_passed_in_are_counted_whether_or_not_the_rest_fits() -> None:
    few = [TimelineEvent(at=T0, kind="update", text=f"step {i}") for i in range(3)]
    text = render.timeline_text(few, 7, earlier=4_950)
    assert "… 4950 earlier events not shown" in text and "step 0" in text and "step 2" in text
    many = [TimelineEvent(at=T0, kind="update", text=f"step {i} " + "&" * 2_000) for i in range(40)]
    text = render.timeline_text(many, 7, earlier=4_960)
    check_text(text)
    shown = len(re.findall(r"step \d+ ", text))
    assert f"… {40 - shown + 4_960} earlier events not shown" in text and text.count("not shown") == 1


def test_fields_past_ten_and_long_texts_are_fitted_by_the_guard() -> None:
    section = {"type": "section", "fields": [{"type": "mrkdwn", "text": "&amp;" * 500} for _ in range(25)]}
    context = {"type": "context", "elements": [{"type": "mrkdwn", "text": "x"} for _ in range(12)]}
    text, blocks = limits.fit_message("y" * 50_000, [section, context] + [{"type": "divider"}] * 60)
    assert blocks is not None
    check_blocks(blocks)
    check_text(text)
    assert blocks[-1]["type"] == "context" and "more blocks not shown" in blocks[-1]["elements"][0]["text"]


# --- where quoted text leaves Slack ---------------------------------------------------------------------


def test_quoted_text_becomes_plain_text_and_markdown_outside_slack() -> None:
    assert slack_mrkdwn.to_plain(STORED + " <@U0BOB>") == (
        "Rolled back 1234 & restarted <pods>, see dashboard (https://grafana.example/d/abc) @U0BOB"
    )
    assert plain_summary(slack_mrkdwn.to_plain(STORED), "fallback").startswith("Rolled back 1234 & restarted")
    state = IncidentState(
        incident_id=7, title="t", severity=Severity.SEV2, declared_at=T0, channel_id="C0INC"
    )
    state.timeline = [TimelineEvent(at=T0, kind="debrief", text=STORED, actor="U0BOB", quoted=True)]
    state.followups = [Followup(followup_id=1, text=STORED, author="U0BOB", at=T0, quoted=True)]
    markdown = timeline_markdown(state.result(), state.view())
    assert (
        r"Rolled back 1234 & restarted \<pods\>, see [dashboard](https://grafana.example/d/abc)" in markdown
    )
    assert "&amp;" not in markdown
    document = json.loads(timeline_json(state.result(), state.view()))
    plain = "Rolled back 1234 & restarted <pods>, see dashboard (https://grafana.example/d/abc)"
    assert document["events"][0]["text"] == plain and document["followups"][0]["text"] == plain


def test_a_long_title_never_pushes_stage_severity_commander_or_call_out_of_the_description() -> None:
    call = CallInfo(
        provider="zoom", join_url="https://zoom.example/j/81000000001?pwd=abcdefghijklmnop", meeting_id="1"
    )
    title = "Checkout latency above 2s for every customer in eu-west " * 3
    long = view_of(title=title[:TITLE_MAX], commander="U0ALICE", roles={"comms": "U0BOB"}, call=call)
    purpose = render.channel_purpose(long)
    assert len(purpose) <= 250
    assert purpose.startswith(
        f"INC-7 | SEV2 | Investigating | IC: <@U0ALICE> | comms: <@U0BOB> | Zoom: {call.join_url} | Checkout"
    )
    assert purpose.endswith("…") and title[:TITLE_MAX] not in purpose
    short = render.channel_purpose(view_of(commander="U0ALICE"))
    assert short == "INC-7 | SEV2 | Investigating | IC: <@U0ALICE> | Checkout down"
    crowded = render.channel_purpose(view_of(roles={f"role{i}": f"U0ROLE{i}" for i in range(12)}))
    assert len(crowded) <= 250 and crowded.startswith("INC-7 | SEV2 | Investigating | IC: unassigned |")


def test_a_command_typed_with_mentions_reads_as_typed_and_pings_nobody() -> None:
    escaped = "<!here> <@U0ALICE|alice> is on it in <#C0OPS|ops> <!channel|@channel>"  # as Slack sends it
    a = Announcement(key="k", kind="update", text=escaped, actor="U0BOB")
    text = render.announcement_text(view_of(), a, in_broadcast=False)
    assert "@here <@U0ALICE> is on it in <#C0OPS> @channel" in text and "<!" not in text
