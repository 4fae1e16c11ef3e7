"""Alert storms: past a cap of incidents declared from alerts in a time window, new alert groups join one
"alert storm" incident, whose overview is a digest of the groups (edited in place) rather than one message
per alert. The directory decides (`StormLimit` in each claim); the storm incident keeps the digest."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from domain.alerts import AlertGroup
from domain.vocab import Severity

MAX_STORM_GROUPS = 500  # groups the digest keeps; more are counted (every key still maps to the incident)
STORM_TITLE = "Alert storm"


class StormLimit(BaseModel):
    """At most `cap` incidents declared from alerts within `window_seconds`; beyond, groups join the storm."""

    cap: int = Field(ge=1)
    window_seconds: int = Field(ge=1)

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.window_seconds)


class StormGroup(BaseModel):
    """One alert group in the storm's digest."""

    key: str  # the group's hashed dedup key
    title: str
    source: str
    severity: Severity
    alerts: int  # alerts firing in its latest notification (shown and counted)
    notifications: int = 1
    first_seen: datetime
    last_seen: datetime
    status: Literal["firing", "resolved"] = "firing"
    split_to: int | None = None  # the incident it was split out into


class StormDigest(BaseModel):
    """What the storm incident's overview shows."""

    groups: list[StormGroup] = Field(default_factory=list)  # in order of arrival
    more: int = 0  # groups beyond MAX_STORM_GROUPS: in the directory, not in the digest

    @property
    def total(self) -> int:
        return len(self.groups) + self.more


def storming(arrivals: list[datetime], now: datetime, limit: StormLimit) -> tuple[bool, list[datetime]]:
    """Whether a new alert group arriving `now` belongs to a storm (the last `cap` new groups all arrived
    within the window), and the arrivals to keep (the newest `cap`, this one included)."""
    recent = [t for t in arrivals if now - t < limit.window][-limit.cap :]
    return len(recent) >= limit.cap, [*recent, now][-limit.cap :]


def note_group(digest: StormDigest, group: AlertGroup, now: datetime) -> bool:
    """Records a notification of `group` in the digest; True when the group is new to it."""
    key = group.dedup_key or ""
    firing = sum(a.status == "firing" for a in group.alerts) + group.truncated
    for known in digest.groups:
        if known.key == key:
            known.notifications += 1
            known.last_seen = now
            known.status = group.status
            known.alerts = firing
            return False
    if len(digest.groups) >= MAX_STORM_GROUPS:
        digest.more += 1
        return True
    digest.groups.append(
        StormGroup(
            key=key,
            title=group.title,
            source=group.source,
            severity=group.severity,
            alerts=firing,
            first_seen=now,
            last_seen=now,
            status=group.status,
        )
    )
    return True


def split_candidate(digest: StormDigest, number: int) -> StormGroup | None:
    """The group shown as `number` (1-based, in order of arrival) if it has not been split out yet."""
    if 1 <= number <= len(digest.groups):
        group = digest.groups[number - 1]
        return group if group.split_to is None else None
    return None


class ShownGroup(StormGroup):
    number: int  # what `/incident split <number>` takes


class StormView(BaseModel):
    """The digest as the overview shows it: totals and the most recently active groups."""

    total: int
    firing: int
    first_seen: datetime | None
    last_seen: datetime | None
    shown: list[ShownGroup] = Field(default_factory=list)


def storm_view(digest: StormDigest, shown: int = 20) -> StormView:
    groups = digest.groups
    numbered = sorted(enumerate(groups, start=1), key=lambda ng: ng[1].last_seen, reverse=True)[:shown]
    return StormView(
        total=digest.total,
        firing=sum(g.status == "firing" and g.split_to is None for g in groups),
        first_seen=min((g.first_seen for g in groups), default=None),
        last_seen=max((g.last_seen for g in groups), default=None),
        shown=[ShownGroup(**g.model_dump(), number=n) for n, g in numbered],
    )
