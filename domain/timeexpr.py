"""Reminder times: `in 10m`, `30m`, `at 16:00`, `tomorrow 09:00`, ISO 8601.

`split_when` finds where the time stops and the reminder text starts; `resolve_when` turns the time into an
instant, reading wall-clock times in the caller's Slack time zone (UTC when unknown).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from domain.usage import WHEN_EXAMPLES, UsageError, quote

MAX_AHEAD = timedelta(days=365)
DEFAULT_CLOCK = time(9, 0)

_UNIT_SECONDS: dict[str, int] = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), 7 * 86400),
}
# ASCII: with Unicode case folding, the long s (U+017F) would match `s`.
_FLAGS = re.IGNORECASE | re.ASCII
_UNIT = "|".join(sorted(_UNIT_SECONDS, key=len, reverse=True))
_COMPACT = re.compile(rf"(?:[0-9]+(?:{_UNIT}))+", _FLAGS)
_COMPACT_PART = re.compile(rf"([0-9]+)({_UNIT})", _FLAGS)
_NUMBER = re.compile(r"[0-9]+|an?", _FLAGS)
_CLOCK_24 = re.compile(r"([0-9]{1,2}):([0-9]{2})")
_CLOCK_12 = re.compile(r"([0-9]{1,2})(?::([0-9]{2}))?\s?([ap])\.?m\.?", _FLAGS)
_NAMED_CLOCK = {"noon": time(12, 0), "midday": time(12, 0), "midnight": time(0, 0)}
_DATE = r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
_TIME = r"([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.,][0-9]{1,9})?)?"
_OFFSET = r"(z|[+-][0-9]{2}(?::?[0-9]{2})?)?"
_ISO = re.compile(rf"{_DATE}(?:t{_TIME}{_OFFSET})?", _FLAGS)
_ISO_TIME = re.compile(rf"{_TIME}{_OFFSET}", _FLAGS)
_MAX_DIGITS = 9  # more than this is never a sensible reminder, and int() of a huge string is slow

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class _After:
    """`in 10m`, `30m`: a duration from now."""

    seconds: int


@dataclass(frozen=True)
class _Clock:
    """`at 16:00`, `tomorrow 9am`: a wall-clock time; `days` None means the next time the clock shows it."""

    at: time
    days: int | None


@dataclass(frozen=True)
class _Instant:
    """ISO 8601; without an offset the wall-clock time is in the caller's time zone."""

    at: datetime


_Spec = _After | _Clock | _Instant


def _error(message: str) -> UsageError:
    return UsageError(message, f"`<when>` is {WHEN_EXAMPLES}")


def _number(token: str) -> int:
    if token.lower() in ("a", "an"):
        return 1
    if len(token) > _MAX_DIGITS:
        raise _error("That is too far ahead; reminders can be at most a year away.")
    return int(token)


def _duration(seconds: int) -> _After:
    if seconds <= 0:
        raise _error("A reminder needs a duration longer than zero.")
    if seconds > MAX_AHEAD.total_seconds():
        raise _error("That is too far ahead; reminders can be at most a year away.")
    return _After(seconds)


def _compact_seconds(token: str) -> int | None:
    if not _COMPACT.fullmatch(token):
        return None
    return sum(_number(n) * _UNIT_SECONDS[u.lower()] for n, u in _COMPACT_PART.findall(token))


def _parse_duration(tokens: list[str], start: int) -> tuple[_After, int] | None:
    """One or more parts (`1h30m`, `1h 30m`, `90 minutes`, `an hour`) from tokens[start]; None if no part."""
    total, i = 0, start
    while i < len(tokens):
        compact = _compact_seconds(tokens[i])
        if compact is not None:
            total, i = total + compact, i + 1
        elif i + 1 < len(tokens) and _NUMBER.fullmatch(tokens[i]) and tokens[i + 1].lower() in _UNIT_SECONDS:
            total, i = total + _number(tokens[i]) * _UNIT_SECONDS[tokens[i + 1].lower()], i + 2
        else:
            break
    return (_duration(total), i) if i > start else None


def _check_clock(hour: int, minute: int, second: int = 0) -> time:
    if hour > 23 or minute > 59 or second > 59:
        raise _error(f"There is no such time as {hour:02d}:{minute:02d}.")
    return time(hour, minute, second)


def _parse_clock(tokens: list[str], start: int) -> tuple[time, int] | None:
    """`16:00`, `4pm`, `4:30pm`, `4 pm`, `noon` at tokens[start]; None if it is not a clock time."""
    if start >= len(tokens):
        return None
    token = tokens[start].lower()
    if token in _NAMED_CLOCK:
        return _NAMED_CLOCK[token], start + 1
    if m := _CLOCK_24.fullmatch(token):
        return _check_clock(int(m[1]), int(m[2])), start + 1
    used = 1
    if start + 1 < len(tokens) and token.isascii() and token.isdigit():
        token, used = f"{token}{tokens[start + 1].lower()}", 2
    if m := _CLOCK_12.fullmatch(token):
        hour, minute = int(m[1]), int(m[2] or 0)
        if not 1 <= hour <= 12:
            raise _error(f"There is no such time as {tokens[start]}; use 1 to 12 with am/pm.")
        return _check_clock(hour % 12 + (12 if m[3].lower() == "p" else 0), minute), start + used
    return None


def _offset(text: str | None) -> tzinfo | None:
    if not text:
        return None
    if text.lower() == "z":
        return UTC
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise _error(f"`{text}` is not a valid UTC offset.")
    sign = -1 if text[0] == "-" else 1
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _iso(day: tuple[str, str, str], clock: tuple[str | None, ...], offset: str | None) -> _Instant:
    hour, minute, second = (int(part or 0) for part in clock)
    if clock[0] is None:
        hour, minute = DEFAULT_CLOCK.hour, DEFAULT_CLOCK.minute
    try:
        on = date(int(day[0]), int(day[1]), int(day[2]))
    except ValueError:
        raise _error(f"There is no such date as {'-'.join(day)}.") from None
    return _Instant(datetime.combine(on, _check_clock(hour, minute, second), tzinfo=_offset(offset)))


def _parse_iso(tokens: list[str], start: int) -> tuple[_Instant, int] | None:
    """`2026-11-28T09:00[:SS][Z|+01:00]`, `2026-11-28 09:00`, `2026-11-28` (09:00)."""
    m = _ISO.fullmatch(tokens[start])
    if not m:
        return None
    if m[4] is None and start + 1 < len(tokens) and (t := _ISO_TIME.fullmatch(tokens[start + 1])):
        return _iso((m[1], m[2], m[3]), (t[1], t[2], t[3]), t[4]), start + 2
    return _iso((m[1], m[2], m[3]), (m[4], m[5], m[6]), m[7]), start + 1


def _parse_day(tokens: list[str], start: int, days: int) -> tuple[_Clock, int]:
    """After `tomorrow`/`today`: an optional `at` and an optional clock time (default 09:00)."""
    at = start + 1 if start < len(tokens) and tokens[start].lower() == "at" else start
    clock = _parse_clock(tokens, at)
    if clock is None:
        # `tomorrow at the standup ...`: the `at` belongs to the reminder text.
        return _Clock(DEFAULT_CLOCK, days), start
    return _Clock(clock[0], days), clock[1]


def _parse(tokens: list[str]) -> tuple[_Spec, int]:
    """The time expression at the front of tokens and how many tokens it used."""
    if not tokens:
        raise _error("Say when, for example `in 10m`.")
    first = tokens[0].lower()
    if first == "in":
        duration = _parse_duration(tokens, 1)
        if duration is None:
            raise _error("After `in`, give a duration such as `10m`, `2h` or `90 minutes`.")
        return duration
    if first == "at":
        clock = _parse_clock(tokens, 1)
        if clock is None:
            raise _error("After `at`, give a time such as `16:00` or `4pm`.")
        return _Clock(clock[0], None), clock[1]
    if first in ("tomorrow", "today"):
        return _parse_day(tokens, 1, 1 if first == "tomorrow" else 0)
    parsed: tuple[_Spec, int] | None = _parse_iso(tokens, 0) or _parse_duration(tokens, 0)
    if parsed is None and (clock := _parse_clock(tokens, 0)) is not None:
        parsed = _Clock(clock[0], None), clock[1]
    if parsed is None:
        raise _error(f"{quote(tokens[0])} is not a time I understand.")
    return parsed


def split_when(args: str) -> tuple[str, str]:
    """Splits `in 10m check the dashboards` into (`in 10m`, `check the dashboards`).

    The time keeps the user's spelling (whitespace collapsed); the rest keeps its own line breaks.
    """
    parts = args.strip().split(None, 6)  # no time expression spans more than five words
    spec_len = _parse(parts[:6])[1]
    when = " ".join(parts[:spec_len])
    rest = args.strip().split(None, spec_len)[spec_len:]
    return when, rest[0] if rest else ""


def _zone(tz: str | None) -> tzinfo:
    if not tz:
        return UTC
    try:
        return ZoneInfo(tz)
    except Exception:  # unknown names, path-looking names, NUL bytes: all mean "we don't know their zone"
        return UTC


def _zone_name(tz: str | None) -> str:
    zone = _zone(tz)
    return tz if tz and zone is not UTC else "UTC"


def _on_day(day: date, at: time, zone: tzinfo) -> datetime:
    # fold=0 resolves a wall time skipped or repeated by a DST change to the offset before the change.
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def _resolve(spec: _Spec, now: datetime, zone: tzinfo) -> datetime:
    if isinstance(spec, _After):
        return now + timedelta(seconds=spec.seconds)
    if isinstance(spec, _Instant):
        at = spec.at if spec.at.tzinfo else spec.at.replace(tzinfo=zone)
        return at.astimezone(UTC)
    today = now.astimezone(zone).date()
    if spec.days is not None:
        return _on_day(today + timedelta(days=spec.days), spec.at, zone)
    candidate = _on_day(today, spec.at, zone)
    return candidate if candidate > now else _on_day(today + timedelta(days=1), spec.at, zone)


def resolve_when(expr: str, now: datetime, tz: str | None) -> datetime:
    """The UTC instant `expr` means for a caller in `tz` at `now`; UsageError unless within the next year."""
    tokens = expr.split()
    spec, used = _parse(tokens)
    if used != len(tokens):
        raise _error(f"{quote(' '.join(tokens[used:]))} is not part of a time I understand.")
    try:
        now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
        at = _resolve(spec, now, _zone(tz))
    except (OverflowError, ValueError):  # e.g. year 9999 with a negative offset
        raise _error("That time is not within the next year.") from None
    if at <= now:
        raise _error("That time is in the past.")
    if at - now > MAX_AHEAD:
        raise _error("That is too far ahead; reminders can be at most a year away.")
    return at


def format_when(dt: datetime, tz: str | None) -> str:
    """`Sat 28 Nov 09:00 (Europe/Paris)`: an instant as the caller's wall clock shows it."""
    aware = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt
    try:
        local, name = aware.astimezone(_zone(tz)), _zone_name(tz)
    except OverflowError:  # the local date would fall outside year 1..9999
        local, name = aware.astimezone(UTC), "UTC"
    weekday, month = _WEEKDAYS[local.weekday()], _MONTHS[local.month - 1]
    return f"{weekday} {local.day} {month} {local:%H:%M} ({name})"
