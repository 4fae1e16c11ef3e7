"""Broadcast-channel bookkeeping of an incident: which channels get what, and what changed.

Pure functions over IncidentState (deterministic, no Temporal calls), used by IncidentWorkflow.
"""

from __future__ import annotations

from domain.effects import Delivery, OverviewTarget, ThreadTarget
from domain.models import Announcement, BroadcastThread, IncidentState
from domain.vocab import Stage


def missing_overviews(s: IncidentState) -> list[BroadcastThread]:
    """Active channels that have no overview yet (and no error that parks them)."""
    return [b for b in s.broadcasts if b.active and b.overview_ts is None and b.error is None]


def overview_targets(s: IncidentState, stale: bool) -> list[OverviewTarget]:
    """New overviews to post, and (when stale) existing ones to edit, the channel's own included."""
    targets: list[OverviewTarget] = []
    if stale and s.channel_id and s.channel_overview_ts:
        targets.append(OverviewTarget(channel_id=s.channel_id, ts=s.channel_overview_ts))
    for b in s.broadcasts:
        if b.active and b.error is None and (b.overview_ts is None or stale):
            targets.append(OverviewTarget(channel_id=b.channel_id, ts=b.overview_ts))
    return targets


def thread_targets(s: IncidentState, a: Announcement) -> tuple[ThreadTarget, ...]:
    """Where an announcement is threaded: under each overview, unless it is for the channel only."""
    if a.channel_only:
        return ()
    return tuple(
        ThreadTarget(channel_id=b.channel_id, thread_ts=b.overview_ts)
        for b in s.broadcasts
        if b.active and b.overview_ts and b.error is None
    )


def set_thread(s: IncidentState, channel_id: str, **changes: object) -> None:
    s.broadcasts = [b.model_copy(update=changes) if b.channel_id == channel_id else b for b in s.broadcasts]


def apply(s: IncidentState, wanted: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Makes `wanted` the active broadcast channels; returns (added, removed).

    A removed channel keeps its entry, so adding it back continues its thread; naming a failing channel
    again means "try it again" (e.g. after inviting @warroom there).
    """
    current = s.broadcast_channel_ids
    failing = {b.channel_id for b in s.broadcasts if b.active and b.error}
    added = list(dict.fromkeys(c for c in wanted if (c not in current or c in failing) and c != s.channel_id))
    removed = [c for c in current if c not in wanted]
    known = {b.channel_id for b in s.broadcasts}
    s.broadcasts = [
        b.model_copy(
            update={"active": b.channel_id in wanted, "error": None if b.channel_id in added else b.error}
        )
        for b in s.broadcasts
    ] + [BroadcastThread(channel_id=c) for c in added if c not in known]
    return added, removed


def stage_channels(s: IncidentState, stage: Stage) -> tuple[str, ...]:
    """Channels warroom.toml adds when the incident reaches `stage`; none for a private incident."""
    return () if s.private else s.stage_broadcasts.get(stage.value, ())


def add_stage_channels(s: IncidentState, stage: Stage) -> str:
    """Activates the stage's channels that are not active yet (a removed one continues its thread); each
    gets its overview before the stage update is threaded under it (Outbox.drain). Channels
    already active are left alone, failing ones included. Returns what changed, "" for nothing."""
    current = s.broadcast_channel_ids
    added = [c for c in stage_channels(s, stage) if c not in current and c != s.channel_id]
    known = {b.channel_id for b in s.broadcasts}
    s.broadcasts = [
        b.model_copy(update={"active": True, "error": None}) if b.channel_id in added else b
        for b in s.broadcasts
    ] + [BroadcastThread(channel_id=c) for c in added if c not in known]
    return describe(added, [])


def describe(added: list[str], removed: list[str]) -> str:
    """`added <#C1>; removed <#C2>`, or "" when nothing changed."""
    parts = [f"added {', '.join(f'<#{c}>' for c in added)}" if added else ""]
    parts.append(f"removed {', '.join(f'<#{c}>' for c in removed)}" if removed else "")
    return "; ".join(p for p in parts if p)


def failure_note(channel_id: str, error: str, slash_command: str) -> str:
    return (
        f":warning: warroom could not post to <#{channel_id}> ({error}); it is skipped until it is added "
        f"again with `{slash_command} broadcast add <#{channel_id}>`. Invite @warroom there if the channel "
        "is private."
    )


def _channels(n: int) -> str:
    return f"{n} broadcast channel{'s' if n != 1 else ''}"


def update_reply(s: IncidentState, deliveries: list[Delivery] | None, *, posted_now: bool) -> str:
    """The answer to `/incident update`: what has happened to it, never more.

    `posted_now`: its own handler posted it (`deliveries`, or None when that attempt failed and it was
    queued); otherwise it was queued behind earlier messages.
    """
    n = 0 if s.private else sum(1 for b in s.broadcasts if b.active and b.error is None)
    if not posted_now:
        ahead = len(s.outbox) - 1
        behind = f" after the {ahead} message{'s' if ahead != 1 else ''} ahead of it" if ahead > 0 else ""
        return f"Update accepted: it goes out here and to {_channels(n)}{behind}."
    if deliveries is None:
        return (
            "Update accepted but not posted yet: Slack did not take it at once (slow or rate-limited). "
            f"warroom keeps trying and posts it here and to {_channels(n)} once, as soon as Slack takes it."
        )
    broadcast = [d for d in deliveries if d.channel_id != s.channel_id]
    here_ok = any(d.channel_id == s.channel_id and d.error is None for d in deliveries)
    done = sum(d.error is None for d in broadcast)
    where = " and to ".join(p for p in ("here" if here_ok else "", _channels(done) if done else "") if p)
    failed = [d for d in deliveries if d.error is not None]
    if not failed:
        return f"Update posted {where}."
    refused = ", ".join(f"<#{d.channel_id}> ({d.error})" for d in failed)
    note = ": see the note in this channel" if here_ok else ""
    return f"Update posted {where or 'nowhere'}; refused by {refused}{note}."
