"""What the Temporal UI shows about incidents, the directory and reminders (workflows/details.py), and the
open-incidents link `warroom dev` prints: pure functions, no server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

from domain.models import (
    BroadcastThread,
    CallInfo,
    CommanderChange,
    Declaration,
    DirectoryState,
    IncidentState,
    ReminderInput,
    RoleChange,
    TimelineEvent,
)
from domain.vocab import Severity, Stage, Status
from starter.dev import open_incidents_query, ui_list_url
from workflows import details, transitions

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


def state(**kw: object) -> IncidentState:
    base: dict[str, object] = {
        "incident_id": 4,
        "title": "Checkout latency above 2s",
        "severity": Severity.SEV2,
        "declared_at": T0,
        "declared_by": "U0DEVUSER",
    }
    return IncidentState.model_validate({**base, **kw})


def test_an_open_incident_reads_with_names_stage_channel_call_and_last_update() -> None:
    update_at = T0 + timedelta(minutes=38)
    s = state(
        stage=Stage.IDENTIFIED,
        commander="U0ALICE",
        roles={"comms": "U0BOB"},
        channel_id="C0000000004",
        channel_name="inc-4-checkout-latency-above-2s",
        call=CallInfo(provider="zoom", join_url="https://zoom.example/j/1", meeting_id="1"),
        broadcasts=[
            BroadcastThread(channel_id="C0STATUS"),
            BroadcastThread(channel_id="C0X", error="not_in_channel"),
        ],
        last_update_at=update_at,
        timeline=[
            TimelineEvent(
                at=update_at,
                kind="reaction",
                text=":mega: <@U0CAROL|carol> says p99 &lt; 300ms in <#C0OPS|ops>, see <https://g.example/d|graph>",
                actor="U0CAROL",
                quoted=True,
            )
        ],
        updates_posted=3,
    )
    text = details.incident_details(s, T0 + timedelta(hours=1, minutes=5))
    assert text.startswith("**INC-4 · SEV2 · Identified** Checkout latency above 2s")
    assert "- **Commander:** @U0ALICE" in text and "- **Roles:** comms @U0BOB" in text
    assert "- **Channel:** #inc-4-checkout-latency-above-2s" in text
    assert "- **Call:** [Zoom](https://zoom.example/j/1)" in text
    assert (
        "- **Last status update:** 09:38 UTC (38m after declare): :mega: @carol says p99 &lt; 300ms in #ops,"
        " see graph (https://g.example/d)" in text
    )
    assert "- **Declared:** 09:00 UTC by @U0DEVUSER; open 1h 5m as of 10:05 UTC" in text
    assert "- **Broadcast to:** #C0STATUS; cannot post to #C0X (not\\_in\\_channel)" in text
    assert "<@" not in text and "<#" not in text and "&amp;lt;" not in text


def test_a_resolved_incident_says_what_it_was_and_who_led_it() -> None:
    resolved = T0 + timedelta(hours=2, minutes=3)
    s = state(stage=Stage.MITIGATED, status=Status.RESOLVED, ever_mitigated=True, commander="U0ALICE")
    s.resolved_at, s.summary = resolved, "Rolled back"
    text = details.incident_details(s, resolved)
    assert text.startswith("**INC-4 · SEV2 · Resolved (was Mitigated)**")
    assert "- **Commander:** was @U0ALICE" in text
    assert "- **Resolved:** 11:03 UTC, after 2h 3m: Rolled back" in text and "open " not in text

    never = state(stage=Stage.IDENTIFIED, status=Status.RESOLVED, resolved_at=resolved)
    text = details.incident_details(never, resolved + timedelta(days=1))
    assert "Resolved (was Identified, never Mitigated)" in text
    assert "- **Commander:** no commander was named" in text
    assert "- **Resolved:** 2026-12-05 11:03 UTC" in text  # another day: the date too
    assert "- **Last status update:** none yet" in text


def test_an_incident_without_commander_or_channel_and_from_an_alert() -> None:
    s = state(declared_by=None, source="alertmanager", channel_error="restricted_action")
    text = details.incident_details(s, T0)
    assert "- **Commander:** none named yet (declared by nobody)" in text
    assert "- **Channel:** none: restricted\\_action" in text
    assert "- **Declared:** 09:00 UTC from an Alertmanager alert group" in text


def test_people_show_by_the_name_slack_gave_else_by_their_id() -> None:
    d = Declaration(
        incident_id=4, title="t", severity=Severity.SEV2, declared_by="U0DEVUSER", declared_by_name="dev_user"
    )
    s = transitions.new_state(d, T0)  # the declarer's name, from the declare request
    assert "declared by @dev\\_user from Slack" in details.declaration_details(d)
    assert "- **Commander:** none named yet (declared by @dev\\_user)" in details.incident_details(s, T0)
    change = CommanderChange(user_id="U0ALICE", actor="U0DEVUSER", user_name="alice", actor_name="dev_user")
    transitions.assign_commander(s, T0, change)
    transitions.assign_role(s, T0, RoleChange(role="comms", user_id="U0BOB", actor="U0DEVUSER"))
    transitions.assign_role(s, T0, RoleChange(role="scribe", user_id="U0EVE", user_name="<b>eve</b>"))
    text = details.incident_details(s, T0)
    assert "- **Commander:** @alice" in text and "- **Declared:** 09:00 UTC by @dev\\_user;" in text
    # bob's request carried no name: his ID; a name is escaped like any text
    assert "- **Roles:** comms @U0BOB, scribe @&lt;b&gt;eve&lt;/b&gt;" in text
    # never an email address, never an empty name
    transitions.learn_names(s, {"U0BOB": "bob@example.com", "U0ALICE": " "})
    assert s.people["U0ALICE"] == "alice" and "U0BOB" not in s.people
    emailed = d.model_copy(update={"declared_by_name": "dev@example.com"})
    assert "declared by @U0DEVUSER" in details.declaration_details(emailed)
    assert transitions.new_state(emailed, T0).people == {}


def test_the_names_kept_are_bounded_newest_first_and_older_states_have_none() -> None:
    s = state()
    transitions.learn_names(s, {f"U{n}": f"user{n}" for n in range(transitions.MAX_PEOPLE)})
    transitions.learn_names(s, {"U0": "renamed", "U0NEW": "new"})  # seen again: newest again
    assert len(s.people) == transitions.MAX_PEOPLE
    assert "U1" not in s.people and s.people["U0"] == "renamed" and list(s.people)[-1] == "U0NEW"
    stored = state().model_dump(mode="json")
    del stored["people"]  # saved by a warroom from before names
    assert IncidentState.model_validate(stored).people == {}
    assert CommanderChange.model_validate({"user_id": "U1", "actor": "U2"}).names == {}


def test_summaries_are_one_short_line_and_markdown_in_titles_is_shown_as_typed() -> None:
    title = "Checkout *down*  for\n" + "x" * 400
    d = Declaration(incident_id=12, title=title, severity=Severity.SEV1, private=True, declared_by="U0A")
    summary = details.declaration_summary(d)
    assert summary.startswith("INC-12 · SEV1 · Checkout *down* for x") and summary.endswith("… (private)")
    assert len(summary) <= details.SUMMARY_LIMIT and "\n" not in summary
    static = details.declaration_details(d)
    assert static.startswith("**INC-12**: Checkout \\*down\\* for x") and "**private**" in static
    assert "declared by @U0A from Slack at SEV1" in static
    labelled = Declaration(incident_id=1, title="t", severity=Severity.SEV1, severity_labels={"sev1": "P0"})
    assert details.declaration_summary(labelled) == "INC-1 · P0 · t"
    s = state(title="<script>alert(1)</script> [x](javascript:1)")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; \\[x\\](javascript:1)" in details.incident_details(s, T0)


def test_the_directory_and_reminders_say_what_they_are() -> None:
    assert "always running" in details.DIRECTORY_SUMMARY
    assert "task queue `staging`" in details.directory_details_static("staging")
    d = details.directory_details(DirectoryState(next_id=5, closed=3, channels={"C1": 4}, storm_incident=4))
    assert "Incidents declared: 4 (next: INC-5)" in d and "Incidents closed: 3" in d
    assert "Alert storm: new alert groups join INC-4" in d
    r = ReminderInput(
        reminder_id="4-1",
        user_id="U0A",
        due=T0,
        local="Sat 5 Dec 10:00 (Europe/Paris)",
        text="check <graphs>",
        incident_id=4,
    )
    assert details.reminder_summary(r) == "Reminder 4-1 · INC-4 · DM @U0A at Sat 5 Dec 10:00 (Europe/Paris)"
    static = details.reminder_details_static(r)
    assert "check &lt;graphs&gt;" in static and "`/incident remind cancel 4-1`" in static
    assert details.reminder_details(r, "pending").endswith(
        "pending: due at Sat 5 Dec 10:00 (Europe/Paris) (2026-12-05 09:00 UTC)"
    )
    assert details.reminder_details(r, "delivered").endswith("delivered to @U0A")


def test_warroom_dev_links_the_ui_list_of_open_incidents() -> None:
    url = ui_list_url("http://127.0.0.1:8233", "default", open_incidents_query("warroom"))
    parsed = urlparse(url)
    assert parsed.path == "/namespaces/default/workflows"
    assert parse_qs(parsed.query)["query"] == [
        "WorkflowType = 'IncidentWorkflow' AND TaskQueue = 'warroom' AND IncidentStatus = 'open'"
    ]
    assert " " not in url and "'" not in url
