"""Reminder time expressions: splitting them off the text, resolving them in the caller's zone, formatting."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.commands import UsageError
from domain.timeexpr import format_when, resolve_when, split_when

# Saturday 28 November 2026, 10:00 UTC (11:00 in Paris, 05:00 in New York, 19:00 in Tokyo).
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# --- split_when ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "when", "rest"),
    [
        ("in 30s check", "in 30s", "check"),
        ("in 10m check the graphs", "in 10m", "check the graphs"),
        ("in 2h x", "in 2h", "x"),
        ("in 1d x", "in 1d", "x"),
        ("in 2w x", "in 2w", "x"),
        ("in 90 minutes x", "in 90 minutes", "x"),
        ("in 2 hours x", "in 2 hours", "x"),
        ("in 1 day x", "in 1 day", "x"),
        ("in 1 week x", "in 1 week", "x"),
        ("in 5 secs x", "in 5 secs", "x"),
        ("in 1 hr x", "in 1 hr", "x"),
        ("in 1h30m x", "in 1h30m", "x"),
        ("in 1h 30m x", "in 1h 30m", "x"),
        ("in 1 hour 30 minutes x", "in 1 hour 30 minutes", "x"),
        ("in an hour x", "in an hour", "x"),
        ("IN 10M x", "IN 10M", "x"),
        ("30m check", "30m", "check"),
        ("2h check", "2h", "check"),
        ("5 min check", "5 min", "check"),
        ("at 16:00 standup", "at 16:00", "standup"),
        ("at 4pm standup", "at 4pm", "standup"),
        ("at 4:30pm standup", "at 4:30pm", "standup"),
        ("at 4 pm standup", "at 4 pm", "standup"),
        ("at 4PM standup", "at 4PM", "standup"),
        ("at noon lunch", "at noon", "lunch"),
        ("16:00 standup", "16:00", "standup"),
        ("tomorrow 09:00 standup", "tomorrow 09:00", "standup"),
        ("tomorrow at 9am standup", "tomorrow at 9am", "standup"),
        ("tomorrow standup", "tomorrow", "standup"),
        ("tomorrow at the standup say hi", "tomorrow", "at the standup say hi"),
        ("today at 17:00 go home", "today at 17:00", "go home"),
        ("2026-11-28T09:00 x", "2026-11-28T09:00", "x"),
        ("2026-11-28T09:00:30 x", "2026-11-28T09:00:30", "x"),
        ("2026-11-28T09:00Z x", "2026-11-28T09:00Z", "x"),
        ("2026-11-28T09:00:00+01:00 x", "2026-11-28T09:00:00+01:00", "x"),
        ("2026-11-28T09:00-0500 x", "2026-11-28T09:00-0500", "x"),
        ("2026-11-28 09:00 x", "2026-11-28 09:00", "x"),
        ("2026-11-28 x", "2026-11-28", "x"),
        ("in 10m", "in 10m", ""),
        ("  in   10m   two  spaces\nand a line ", "in 10m", "two  spaces\nand a line"),
        ("in 10m 5 things", "in 10m", "5 things"),
    ],
)
def test_split_when(args: str, when: str, rest: str) -> None:
    assert split_when(args) == (when, rest)


@pytest.mark.parametrize(
    "args",
    [
        "",
        "   ",
        "check the graphs",
        "in",
        "in soon",
        "in 10 things",
        "in 0m x",
        "in 0 minutes x",
        "0s x",
        "at",
        "at lunch",
        "at 25:00 x",
        "at 16:60 x",
        "at 13pm x",
        "at 0am x",
        "2026-02-30T09:00 x",
        "2026-13-01 x",
        "2026-11-28T24:00 x",
        "2026-11-28T09:00+24:00 x",
        "tomorrow 25:00 x",
        "in 10\u017f x",  # long s: case-folds to `s` under Unicode rules
        "in \u0663m x",  # Arabic-Indic digit three
        "in 1.5h x",
        "in -5m x",
        "in 99999999999d x",
        "in 366d x",
        "in 53w x",
        "<@U123> in 10m",
        "in 1" + "0" * 100_000 + "d x",
    ],
)
def test_split_when_rejects(args: str) -> None:
    with pytest.raises(UsageError) as raised:
        split_when(args)
    assert raised.value.message
    assert "in 10m" in raised.value.usage


def test_split_when_error_names_the_offending_word() -> None:
    with pytest.raises(UsageError, match="`soonish` is not a time"):
        split_when("soonish check it")


# --- resolve_when --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "tz", "expected"),
    [
        ("in 30s", None, NOW + timedelta(seconds=30)),
        ("in 10m", "Europe/Paris", NOW + timedelta(minutes=10)),
        ("in 2h", "Asia/Tokyo", NOW + timedelta(hours=2)),
        ("in 1d", None, NOW + timedelta(days=1)),
        ("in 1w", None, NOW + timedelta(weeks=1)),
        ("in 90 minutes", None, NOW + timedelta(minutes=90)),
        ("in 1h30m", None, NOW + timedelta(minutes=90)),
        ("in 1 hour 30 minutes", None, NOW + timedelta(minutes=90)),
        ("in an hour", None, NOW + timedelta(hours=1)),
        ("30m", None, NOW + timedelta(minutes=30)),
        ("2h", "America/New_York", NOW + timedelta(hours=2)),
        ("in 365d", None, NOW + timedelta(days=365)),
        # `at`: today if still ahead in the caller's zone, else tomorrow
        ("at 16:00", None, utc(2026, 11, 28, 16, 0)),
        ("at 16:00", "Europe/Paris", utc(2026, 11, 28, 15, 0)),
        ("at 16:00", "America/New_York", utc(2026, 11, 28, 21, 0)),
        ("at 16:00", "Asia/Tokyo", utc(2026, 11, 29, 7, 0)),  # 19:00 there already: tomorrow
        ("at 09:00", None, utc(2026, 11, 29, 9, 0)),
        ("at 10:00", None, utc(2026, 11, 29, 10, 0)),  # exactly now is not the future
        ("at 4pm", "Europe/Paris", utc(2026, 11, 28, 15, 0)),
        ("at 4:30pm", None, utc(2026, 11, 28, 16, 30)),
        ("at 4 pm", None, utc(2026, 11, 28, 16, 0)),
        ("at 12am", None, utc(2026, 11, 29, 0, 0)),
        ("at 12pm", None, utc(2026, 11, 28, 12, 0)),
        ("at noon", None, utc(2026, 11, 28, 12, 0)),
        ("at midnight", "Europe/Paris", utc(2026, 11, 28, 23, 0)),
        ("16:00", None, utc(2026, 11, 28, 16, 0)),
        # tomorrow, in the caller's zone
        ("tomorrow 09:00", None, utc(2026, 11, 29, 9, 0)),
        ("tomorrow 09:00", "Europe/Paris", utc(2026, 11, 29, 8, 0)),
        ("tomorrow at 9am", "America/Los_Angeles", utc(2026, 11, 29, 17, 0)),
        ("tomorrow", "Asia/Kolkata", utc(2026, 11, 29, 3, 30)),
        ("today 17:00", None, utc(2026, 11, 28, 17, 0)),
        # ISO 8601: the caller's zone unless the text carries an offset
        ("2026-12-01T09:00", None, utc(2026, 12, 1, 9, 0)),
        ("2026-12-01T09:00", "Europe/Paris", utc(2026, 12, 1, 8, 0)),
        ("2026-12-01T09:00:30", None, utc(2026, 12, 1, 9, 0, 30)),
        ("2026-12-01T09:00Z", "Europe/Paris", utc(2026, 12, 1, 9, 0)),
        ("2026-12-01t09:00z", None, utc(2026, 12, 1, 9, 0)),
        ("2026-12-01T09:00+05:30", "Europe/Paris", utc(2026, 12, 1, 3, 30)),
        ("2026-12-01T09:00-0500", None, utc(2026, 12, 1, 14, 0)),
        ("2026-12-01T09:00:00.250+01:00", None, utc(2026, 12, 1, 8, 0)),
        ("2026-12-01 09:00", "America/New_York", utc(2026, 12, 1, 14, 0)),
        ("2026-12-01 09:00+02:00", None, utc(2026, 12, 1, 7, 0)),
        ("2026-12-01", None, utc(2026, 12, 1, 9, 0)),
        ("2027-11-28T09:00", None, utc(2027, 11, 28, 9, 0)),  # 364 days ahead
        # unknown zones mean UTC
        ("at 16:00", "Not/AZone", utc(2026, 11, 28, 16, 0)),
        ("at 16:00", "", utc(2026, 11, 28, 16, 0)),
        ("at 16:00", "../../etc/passwd", utc(2026, 11, 28, 16, 0)),
        ("at 16:00", "Europe/Paris\x00", utc(2026, 11, 28, 16, 0)),
    ],
)
def test_resolve_when(expr: str, tz: str | None, expected: datetime) -> None:
    resolved = resolve_when(expr, NOW, tz)
    assert resolved == expected
    assert resolved.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("expr", "now", "tz", "expected"),
    [
        # Paris springs forward on 29 March 2026 at 02:00 (UTC+1 -> UTC+2).
        ("at 09:00", utc(2026, 3, 28, 20, 0), "Europe/Paris", utc(2026, 3, 29, 7, 0)),
        ("tomorrow 09:00", utc(2026, 3, 28, 12, 0), "Europe/Paris", utc(2026, 3, 29, 7, 0)),
        ("at 01:30", utc(2026, 3, 28, 20, 0), "Europe/Paris", utc(2026, 3, 29, 0, 30)),
        # 02:30 does not exist that night: read with the offset before the change, i.e. 03:30 CEST.
        ("at 02:30", utc(2026, 3, 28, 20, 0), "Europe/Paris", utc(2026, 3, 29, 1, 30)),
        ("2026-03-29T02:30", utc(2026, 3, 28, 20, 0), "Europe/Paris", utc(2026, 3, 29, 1, 30)),
        # Paris falls back on 25 October 2026 at 03:00; 02:30 happens twice: the first one wins.
        ("at 02:30", utc(2026, 10, 24, 20, 0), "Europe/Paris", utc(2026, 10, 25, 0, 30)),
        # New York springs forward on 8 March 2026.
        ("tomorrow 09:00", utc(2026, 3, 7, 15, 0), "America/New_York", utc(2026, 3, 8, 13, 0)),
        ("at 09:00", utc(2026, 3, 7, 15, 0), "America/New_York", utc(2026, 3, 8, 13, 0)),
        # "tomorrow" is the caller's tomorrow: in Tokyo it is already Sunday.
        ("tomorrow 09:00", utc(2026, 11, 28, 16, 0), "Asia/Tokyo", utc(2026, 11, 30, 0, 0)),
        # durations are elapsed time, whatever the clocks do
        ("in 1d", utc(2026, 3, 28, 20, 0), "Europe/Paris", utc(2026, 3, 29, 20, 0)),
    ],
)
def test_resolve_when_across_dst(expr: str, now: datetime, tz: str, expected: datetime) -> None:
    assert resolve_when(expr, now, tz) == expected


@pytest.mark.parametrize(
    ("expr", "tz", "message"),
    [
        ("2026-11-28T09:00", None, "in the past"),
        ("2026-11-28T10:00", None, "in the past"),
        ("2026-11-28T10:30", "Europe/Paris", "in the past"),  # 09:30 UTC
        ("2020-01-01", None, "in the past"),
        ("today 09:00", None, "in the past"),
        ("today at 11:00", "Europe/Paris", "in the past"),
        ("2027-11-28T10:00:01", None, "a year"),
        ("2030-01-01", None, "a year"),
        ("in 366d", None, "a year"),
        ("in 53w", None, "a year"),
        ("in 8761h", None, "a year"),
        ("in 99999999999d", None, "a year"),
        ("in 999999999w", None, "a year"),
        ("in 0m", None, "longer than zero"),
        ("0s", None, "longer than zero"),
        ("in 0h 0m", None, "longer than zero"),
        ("9999-12-31T23:59-23:59", None, "not within the next year"),
        ("0001-01-01T00:00+23:59", None, "not within the next year"),
        ("0000-01-01", None, "no such date"),
        ("in 10m check", None, "not part of a time"),
        ("tomorrow at", None, "not part of a time"),
        ("", None, "Say when"),
        ("whenever", None, "not a time"),
    ],
)
def test_resolve_when_rejects(expr: str, tz: str | None, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        resolve_when(expr, NOW, tz)


def test_resolve_when_accepts_naive_and_non_utc_now() -> None:
    naive = NOW.replace(tzinfo=None)
    paris_now = NOW.astimezone(timezone(timedelta(hours=1)))
    assert resolve_when("at 16:00", naive, None) == utc(2026, 11, 28, 16, 0)
    assert resolve_when("in 10m", paris_now, None) == NOW + timedelta(minutes=10)
    assert resolve_when("in 10m", paris_now, None).tzinfo == UTC


def test_resolve_when_near_the_end_of_time_is_a_usage_error() -> None:
    end = datetime(9999, 12, 31, 23, 0, tzinfo=UTC)
    for expr in ("in 2h", "tomorrow", "at 23:30", "9999-12-31T23:59-05:00"):
        with pytest.raises(UsageError):
            resolve_when(expr, end, "America/New_York")


def test_split_then_resolve_round_trip() -> None:
    when, text = split_when("tomorrow at 9am ping the vendor")
    assert text == "ping the vendor"
    assert resolve_when(when, NOW, "Europe/Paris") == utc(2026, 11, 29, 8, 0)


# --- format_when ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dt", "tz", "text"),
    [
        (utc(2026, 11, 28, 8, 0), "Europe/Paris", "Sat 28 Nov 09:00 (Europe/Paris)"),
        (utc(2026, 11, 28, 8, 0), None, "Sat 28 Nov 08:00 (UTC)"),
        (utc(2026, 11, 28, 8, 0), "Nowhere/Special", "Sat 28 Nov 08:00 (UTC)"),
        (utc(2026, 11, 28, 8, 0), "America/Los_Angeles", "Sat 28 Nov 00:00 (America/Los_Angeles)"),
        (utc(2026, 11, 28, 20, 5), "Asia/Tokyo", "Sun 29 Nov 05:05 (Asia/Tokyo)"),
        (utc(2026, 7, 1, 8, 0), "Europe/Paris", "Wed 1 Jul 10:00 (Europe/Paris)"),
        (datetime(2026, 11, 28, 8, 0), None, "Sat 28 Nov 08:00 (UTC)"),  # naive means UTC
        (datetime(9999, 12, 31, 20, 0, tzinfo=UTC), "Asia/Tokyo", "Fri 31 Dec 20:00 (UTC)"),  # no year 10000
    ],
)
def test_format_when(dt: datetime, tz: str | None, text: str) -> None:
    assert format_when(dt, tz) == text


# --- hostile input -------------------------------------------------------------------------------------

_ALPHABET = [
    "in", "at", "tomorrow", "today", "noon", "an", "a", "m", "h", "d", "w", "s", "min", "hours", "pm", "am",
    "0", "1", "2", "9", "12", "16:00", "4pm", "25:00", "2026-11-28", "T", "Z", "+", "-", ":", ".", "9999",
    "99999999999", "2026-11-28T09:00", "0001-01-01", "\u017f", "\u0663", "\u202e", "\x00", "\ud800", "é",
    "🔥", " ", "  ", "\n", "\t", "<@U1>", "<#C1>", "|", "<", ">",
]  # fmt: skip
_ZONES = [None, "UTC", "Europe/Paris", "America/New_York", "Asia/Kathmandu", "Pacific/Kiritimati", "x/y", ""]


def test_fuzz_time_expressions_only_raise_usage_error() -> None:
    rng = random.Random(20261128)
    resolved = 0
    for _ in range(4000):
        text = "".join(rng.choice(_ALPHABET) + rng.choice(["", " "]) for _ in range(rng.randint(0, 8)))
        now = rng.choice([NOW, utc(2026, 3, 28, 23, 30), datetime(9999, 12, 31, 12, tzinfo=UTC)])
        tz = rng.choice(_ZONES)
        try:
            when, _rest = split_when(text)
            at = resolve_when(when, now, tz)
        except UsageError:
            continue
        resolved += 1
        assert timedelta(0) < at - now <= timedelta(days=365)
        assert at.utcoffset() == timedelta(0)
        assert format_when(at, tz)
    assert resolved > 100  # the generator does reach valid expressions
