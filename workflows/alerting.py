"""What alert notifications do to an incident: new alerts noted once, "all resolved" once, and in the alert
storm incident a digest of the groups that joined it (domain.storm). Pure functions over IncidentState, like
workflows.transitions, whose bookkeeping they use."""

from __future__ import annotations

from datetime import datetime

from domain.alerts import AlertGroup, describe_alerts
from domain.models import IncidentState, StormSplit
from domain.paging import acknowledged, source_seen
from domain.storm import note_group
from domain.vocab import Stage, Status, incident_label
from workflows.transitions import overview_changed, queue, record, remember


def alerts_fired(s: IncidentState, now: datetime, group: AlertGroup) -> bool:
    """The alert group again: new alerts are queued once, for the channel only; repeats change nothing; "all
    resolved" is noted once. Returns True when that should move the incident to Mitigated (the caller
    moves it, `move_stage`)."""
    if s.status is Status.RESOLVED:
        return False
    s.paging = acknowledged(s.paging, group)  # `/incident page`: whoever acknowledged is invited
    if s.storm is not None:  # the alert storm: the digest in the overview, never a message per alert
        if note_group(s.storm, group, now):
            record(s, now, "alert", f"{group.title} ({group.source}) joined the alert storm", None)
        overview_changed(s)
        return False
    s.paging = source_seen(s.paging, group)  # a PagerDuty incident / Opsgenie alert: resolved with it
    if group.status == "resolved":
        if s.alerts_resolved:
            return False
        s.alerts_resolved = True
        record(s, now, "alert", f"alerts resolved ({group.source})", None)
        queue(s, "alert", f"All alerts resolved ({group.source}).", None, channel_only=True)
        return s.resolve_mitigates and s.stage is not Stage.MITIGATED
    firing = [a for a in group.alerts if a.status == "firing"]
    fresh = firing if s.alerts_resolved else [a for a in firing if a.fingerprint not in s.seen_alerts]
    s.alerts_resolved = False
    if not fresh:
        return False
    for fingerprint in dict.fromkeys(a.fingerprint for a in fresh):
        if fingerprint not in s.seen_alerts:
            remember(s.seen_alerts, fingerprint)
    text = describe_alerts(fresh)
    record(s, now, "alert", text, None)
    queue(s, "alert", text, None, channel_only=True)
    return False


def split_out(s: IncidentState, now: datetime, split: StormSplit) -> str:
    """`/incident split`: the group now has its own incident; the digest says where it went."""
    assert s.storm is not None
    for group in s.storm.groups:
        if group.key == split.key:
            group.split_to = split.incident_id
            text = f"{group.title} split out into {incident_label(split.incident_id)}"
            record(s, now, "alert", text, split.actor)
            overview_changed(s)
            return text
    return f"That alert group is not in this storm any more; {incident_label(split.incident_id)} has it."
