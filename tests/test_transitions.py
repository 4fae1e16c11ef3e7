"""The pure functions of workflows.transitions and workflows.nudges: what commands do to IncidentState."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.alerts import AlertGroup, AlertItem
from domain.effects import Delivery, MessageInfo
from domain.models import (
    CommanderChange,
    Declaration,
    FollowupAdd,
    FollowupReaction,
    ReactionAdded,
    RoleChange,
)
from domain.vocab import Severity, Stage, Status
from workflows import alerting, broadcasts, nudges, transitions

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def state(**overrides: object):  # type: ignore[no-untyped-def]
    d = Declaration(incident_id=7, title="db down", severity=Severity.SEV2, declared_by="U1", **overrides)
    s = transitions.new_state(d, NOW)
    s.channel_id = "C1"
    return s


def test_keys_count_up_per_incident() -> None:
    s = state()
    assert [transitions.key(s, "dm"), transitions.key(s, "")] == ["inc7:1:dm", "inc7:2"]
    assert s.next_seq == 3


def test_move_stage_records_queues_and_changes_the_overview() -> None:
    s = state(stage_broadcasts={"mitigated": ("C9",)})
    transitions.move_stage(s, NOW, Stage.MITIGATED, "rolled back", "U2", add_stage_channels=True)
    assert s.stage is Stage.MITIGATED and s.ever_mitigated and s.last_update_at == NOW
    assert s.stage_reached == {"mitigated": NOW}
    assert [e.kind for e in s.timeline] == ["stage", "broadcast"]
    assert s.broadcast_channel_ids == ["C9"]
    assert [(a.kind, a.text, a.stage) for a in s.outbox] == [("stage", "rolled back", Stage.MITIGATED)]
    assert s.overview_version == 1


def test_move_stage_without_stage_channels_leaves_broadcasts_alone() -> None:
    s = state(stage_broadcasts={"mitigated": ("C9",)})
    transitions.move_stage(s, NOW, Stage.MITIGATED, "", None, add_stage_channels=False)
    assert s.broadcast_channel_ids == [] and [e.kind for e in s.timeline] == ["stage"]


def test_severity_commander_role_and_resolve() -> None:
    s = state()
    transitions.change_severity(s, NOW, Severity.SEV1, "spreading", "U2")
    transitions.assign_commander(s, NOW, CommanderChange(user_id="U3", actor="U2"))
    transitions.assign_role(s, NOW, RoleChange(role="scribe", user_id="U4", actor="U2"))
    assert (s.severity, s.commander, s.roles) == (Severity.SEV1, "U3", {"scribe": "U4"})
    assert [dm.kind for dm in s.pending_dms] == ["role"]  # the commander's DM is the workflow's (role-dms)
    transitions.resolve(s, NOW, "fixed", "U3")
    assert s.status is Status.RESOLVED and s.resolved_at == NOW and s.summary == "fixed"
    assert [a.kind for a in s.outbox] == ["severity", "commander", "commander", "resolved"]
    assert s.overview_version == 4


def test_alerts_fired_posts_new_alerts_once_and_asks_to_mitigate_on_resolve() -> None:
    s = state(resolve_mitigates=True)
    alert = AlertItem(fingerprint="f1", status="firing", name="HighLatency")
    firing = AlertGroup(
        source="alertmanager",
        dedup_key=None,
        status="firing",
        title="t",
        severity=Severity.SEV2,
        alerts=(alert,),
    )
    assert alerting.alerts_fired(s, NOW, firing) is False
    assert alerting.alerts_fired(s, NOW, firing) is False  # a repeat changes nothing
    assert len(s.outbox) == 1 and s.seen_alerts == ["f1"]
    resolved = firing.model_copy(update={"status": "resolved"})
    assert alerting.alerts_fired(s, NOW, resolved) is True
    assert alerting.alerts_fired(s, NOW, resolved) is False  # noted once
    assert [a.kind for a in s.outbox] == ["alert", "alert"]


def test_reactions_broadcast_once_and_followup_reactions_queue_a_followup() -> None:
    s = state(followup_reactions=("memo",))
    mega = ReactionAdded(channel_id="C1", message_ts="1.1", user_id="U2", reaction="mega")
    key = transitions.take_reaction(s, mega)
    assert key == "inc7:1:reaction"
    assert transitions.take_reaction(s, mega) is None  # once per message
    transitions.queue_reaction(s, key, mega, in_order=True)
    assert s.outbox[0].reaction == mega and not s.outbox[0].read_first
    memo = mega.model_copy(update={"reaction": "memo"})
    assert transitions.take_reaction(s, memo) is None
    assert len(s.pending_followup_reactions) == 1
    info = MessageInfo(text="retro this", author="U5", permalink="https://x")
    announcement = transitions.reaction_announcement(s, NOW, "k", mega, info)
    assert announcement is not None and announcement.text == "retro this\n(message by <@U5>)"
    assert (
        transitions.reaction_announcement(s, NOW, "k", mega, info.model_copy(update={"found": False})) is None
    )


def test_followups_and_their_tickets() -> None:
    s = state()
    transitions.followup_from_message(
        s, NOW, FollowupReaction(channel_id="C1", message_ts="1", user_id="U2"), None
    )
    assert s.followups == []
    f = transitions.add_followup(s, NOW, FollowupAdd(text="add an alert", actor="U2"))
    assert f.followup_id == 1
    transitions.order_followup_ticket(s, 1, "U2")
    assert [(p.summary, p.followup_id) for p in s.pending_tickets] == [("add an alert", 1)]


def test_nudges_fall_due_after_the_interval_and_stop_at_mitigated() -> None:
    s = state(nudge_minutes={"sev2": 30})
    assert nudges.until_nudge(s, NOW) == timedelta(minutes=30)
    later = NOW + timedelta(minutes=31)
    nudges.nudge(s, later)
    assert s.last_nudge_at == later and [dm.kind for dm in s.pending_dms] == ["nudge"]
    assert nudges.until_nudge(s, later) == timedelta(minutes=30)
    s.stage = Stage.MITIGATED
    assert nudges.until_nudge(s, later) is None


def test_the_answer_to_an_update_says_what_happened_to_it() -> None:
    s = state(broadcast_channels=("C2", "C3"))
    s.channel_id = "C1"
    broadcasts.apply(s, ("C2", "C3"))
    ok = [Delivery(channel_id=c, ts="1.0") for c in ("C1", "C2", "C3")]
    posted = broadcasts.update_reply(s, ok, posted_now=True)
    assert posted == "Update posted here and to 2 broadcast channels."
    refused = [*ok[:2], Delivery(channel_id="C3", error="not_in_channel")]
    assert broadcasts.update_reply(s, refused, posted_now=True) == (
        "Update posted here and to 1 broadcast channel; refused by <#C3> (not_in_channel): see the note in "
        "this channel."
    )
    assert broadcasts.update_reply(s, None, posted_now=True).startswith(
        "Update accepted but not posted yet: Slack did not take it at once"
    )
    transitions.post_update(s, NOW, "first", "U1")
    transitions.post_update(s, NOW, "second", "U1")
    assert broadcasts.update_reply(s, None, posted_now=False) == (
        "Update accepted: it goes out here and to 2 broadcast channels after the 1 message ahead of it."
    )
    s.private = True  # a private incident's broadcast channels never get its updates
    assert broadcasts.update_reply(s, ok[:1], posted_now=True) == "Update posted here."
