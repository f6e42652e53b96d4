"""Publication times as editors write them: relative, wall clock in Europe/Berlin, ISO 8601."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crosspost.clock import FrozenClock
from crosspost.timeparse import (
    Resolved,
    TimeError,
    from_toml,
    parse_since,
    parse_when,
    resolve_wall_time,
)

BERLIN = ZoneInfo("Europe/Berlin")
#: a fixed "now" in summer time (CEST, UTC+2): 12:00 in Berlin
NOW = FrozenClock(datetime(2026, 6, 1, 10, 0, tzinfo=UTC)).now()


def when(text: str, now: datetime = NOW) -> Resolved:
    return parse_when(text, BERLIN, now)


@pytest.mark.parametrize("text", ["now", "NOW", "  now  ", "Now"])
def test_now_is_the_given_instant(text: str) -> None:
    """The word now means the clock's instant, in UTC, and is never ambiguous."""
    assert when(text) == Resolved(NOW, ambiguous=False)


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("+2h", timedelta(hours=2)),
        ("+1h30m", timedelta(hours=1, minutes=30)),
        ("+90s", timedelta(seconds=90)),
        ("+15m", timedelta(minutes=15)),
        ("+1d", timedelta(days=1)),
        ("+1w", timedelta(weeks=1)),
        ("+1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("+ 2h", timedelta(hours=2)),
        ("+2H", timedelta(hours=2)),
        ("+0m", timedelta(0)),
    ],
)
def test_relative_time_counts_from_now(text: str, delta: timedelta) -> None:
    """+<n><unit> (s, m, h, d, w, combinable) is that long after now."""
    resolved = when(text)
    assert resolved.at == NOW + delta
    assert resolved.at.tzinfo == UTC


def test_relative_time_across_the_dst_change_counts_real_hours() -> None:
    """+2h on the night clocks go forward is two elapsed hours, not two wall-clock hours."""
    now = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # 01:30 CET, half an hour before the gap
    assert when("+2h", now).at == datetime(2026, 3, 29, 2, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01 09:00", datetime(2026, 12, 1, 8, 0, tzinfo=UTC)),  # CET, UTC+1
        ("2026-12-01T09:00", datetime(2026, 12, 1, 8, 0, tzinfo=UTC)),
        ("2026-12-01T09:00:30", datetime(2026, 12, 1, 8, 0, 30, tzinfo=UTC)),
        ("2026-07-01 09:00", datetime(2026, 7, 1, 7, 0, tzinfo=UTC)),  # CEST, UTC+2
    ],
)
def test_wall_time_is_read_in_the_site_zone(text: str, expected: datetime) -> None:
    """A time without offset is Berlin wall-clock time, winter or summer."""
    assert when(text) == Resolved(expected, ambiguous=False)


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-01T09:00:00+01:00",
        "2026-12-01T08:00:00Z",
        "2026-12-01T08:00:00+00:00",
        "2026-12-01T03:00:00-05:00",
    ],
)
def test_iso_time_with_offset_is_that_instant(text: str) -> None:
    """An explicit offset (or Z) fixes the instant; the site zone plays no part."""
    assert when(text) == Resolved(datetime(2026, 12, 1, 8, 0, tzinfo=UTC), ambiguous=False)
    assert parse_when(text, ZoneInfo("America/New_York"), NOW).at == when(text).at


@pytest.mark.parametrize("wall", ["2026-03-29 02:00", "2026-03-29 02:30", "2026-03-29 02:59"])
def test_wall_time_in_the_spring_gap_is_refused(wall: str) -> None:
    """2026-03-29 02:00–02:59 does not exist in Berlin; the message names time and zone."""
    with pytest.raises(TimeError) as caught:
        when(wall)
    message = str(caught.value)
    assert wall in message
    assert "Europe/Berlin" in message


@pytest.mark.parametrize(
    ("wall", "expected"),
    [
        ("2026-03-29 01:59", datetime(2026, 3, 29, 0, 59, tzinfo=UTC)),
        ("2026-03-29 03:00", datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
    ],
)
def test_wall_times_beside_the_spring_gap_are_accepted(wall: str, expected: datetime) -> None:
    """The minutes either side of the gap exist and convert with their own offset."""
    assert when(wall) == Resolved(expected, ambiguous=False)


@pytest.mark.parametrize(
    ("wall", "expected"),
    [
        ("2026-10-25 02:00", datetime(2026, 10, 25, 0, 0, tzinfo=UTC)),
        ("2026-10-25 02:30", datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
        ("2026-10-25 02:59", datetime(2026, 10, 25, 0, 59, tzinfo=UTC)),
    ],
)
def test_repeated_autumn_wall_time_means_the_first_occurrence(
    wall: str, expected: datetime
) -> None:
    """02:00–02:59 on 2026-10-25 happens twice; the first (still CEST) is meant, and flagged."""
    assert when(wall) == Resolved(expected, ambiguous=True)


@pytest.mark.parametrize(
    ("wall", "expected"),
    [
        ("2026-10-25 01:59", datetime(2026, 10, 24, 23, 59, tzinfo=UTC)),
        ("2026-10-25 03:00", datetime(2026, 10, 25, 2, 0, tzinfo=UTC)),
    ],
)
def test_wall_times_beside_the_autumn_hour_are_not_ambiguous(wall: str, expected: datetime) -> None:
    """Outside the repeated hour a wall time has one meaning and no flag."""
    assert when(wall) == Resolved(expected, ambiguous=False)


def test_offset_inside_the_spring_gap_is_a_real_instant() -> None:
    """With an explicit offset the wall time is not looked up in the zone, so no gap applies."""
    resolved = when("2026-03-29T02:30:00+01:00")
    assert resolved == Resolved(datetime(2026, 3, 29, 1, 30, tzinfo=UTC), ambiguous=False)


@pytest.mark.parametrize(
    "text",
    ["", "   ", "tomorrow", "morgen 9 Uhr", "-2h", "+2", "+2x", "+h", "2026-13-01 09:00", "9:00"],
)
def test_unreadable_time_is_refused(text: str) -> None:
    """Anything but now, +<n><unit>, a wall time or ISO 8601 is a TimeError with a hint."""
    with pytest.raises(TimeError, match="now"):
        when(text)


@pytest.mark.parametrize(
    "text",
    ["+100000000d", "+99999999999999999999w", "0001-01-01 00:00", "0001-01-01T00:00:00+01:00"],
)
def test_time_beyond_the_calendar_is_refused_not_crashed(text: str) -> None:
    """A time whose UTC instant falls outside years 1–9999 is a TimeError, not OverflowError."""
    with pytest.raises(TimeError, match="out of range"):
        when(text)


def test_since_beyond_the_calendar_is_refused_not_crashed() -> None:
    """--since with a duration reaching before year 1 is a TimeError, not OverflowError."""
    with pytest.raises(TimeError, match="out of range"):
        parse_since("99999999999d", BERLIN, NOW)


def test_last_minute_of_the_calendar_is_still_accepted() -> None:
    """9999-12-31 23:59 in Berlin is 22:59 UTC: inside the range, so it is accepted."""
    assert when("9999-12-31 23:59").at == datetime(9999, 12, 31, 22, 59, tzinfo=UTC)


# --- publish_at from TOML --------------------------------------------------------------------


def test_toml_naive_datetime_is_a_wall_time() -> None:
    """A TOML local date-time is read in the site zone, with the DST rules of wall times."""
    assert from_toml(datetime(2026, 12, 1, 9, 0), BERLIN, NOW).at == datetime(
        2026, 12, 1, 8, 0, tzinfo=UTC
    )
    assert from_toml(datetime(2026, 10, 25, 2, 30), BERLIN, NOW).ambiguous is True
    with pytest.raises(TimeError):
        from_toml(datetime(2026, 3, 29, 2, 30), BERLIN, NOW)


def test_toml_offset_datetime_is_converted_to_utc() -> None:
    """A TOML offset date-time keeps its instant and comes back in UTC."""
    plus_one = datetime(2026, 12, 1, 9, 0, tzinfo=ZoneInfo("Etc/GMT-1"))
    resolved = from_toml(plus_one, BERLIN, NOW)
    assert resolved.at == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert resolved.at.tzinfo == UTC


def test_toml_string_is_parsed_like_the_command_line() -> None:
    """publish_at = "+2h" counts from now, as --at +2h does."""
    assert from_toml("+2h", BERLIN, NOW).at == NOW + timedelta(hours=2)


@pytest.mark.parametrize("value", [date(2026, 12, 1), time(9, 0), 1764576000, None, [2026]])
def test_toml_value_that_is_no_date_time_is_refused(value: object) -> None:
    """A date alone, a time alone or a number is not a publication time."""
    with pytest.raises(TimeError, match="date and time"):
        from_toml(value, BERLIN, NOW)


# --- --since ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["2h", "-2h", " 2h ", "120m", "-1h60m"])
def test_since_duration_means_that_long_ago(text: str) -> None:
    """--since 2h and --since -2h both mean two hours before now."""
    assert parse_since(text, BERLIN, NOW) == NOW - timedelta(hours=2)


@pytest.mark.parametrize(
    ("now", "midnight"),
    [
        # 12:00 CEST: local midnight was 22:00 UTC the day before
        (datetime(2026, 6, 1, 10, 0, tzinfo=UTC), datetime(2026, 5, 31, 22, 0, tzinfo=UTC)),
        # 01:30 CEST on 2 June, still 1 June in UTC: "today" is already 2 June in Berlin
        (datetime(2026, 6, 1, 23, 30, tzinfo=UTC), datetime(2026, 6, 1, 22, 0, tzinfo=UTC)),
        # winter, CET
        (datetime(2026, 12, 1, 10, 0, tzinfo=UTC), datetime(2026, 11, 30, 23, 0, tzinfo=UTC)),
    ],
)
def test_since_today_is_local_midnight(now: datetime, midnight: datetime) -> None:
    """--since today starts at midnight in the site zone, not in UTC."""
    assert parse_since("today", BERLIN, now) == midnight
    assert parse_since("TODAY", BERLIN, now) == midnight


def test_since_accepts_what_at_accepts() -> None:
    """--since also takes wall times and ISO 8601, converted to UTC."""
    assert parse_since("2026-05-01 00:00", BERLIN, NOW) == datetime(2026, 4, 30, 22, 0, tzinfo=UTC)
    assert parse_since("2026-05-01T00:00:00Z", BERLIN, NOW) == datetime(2026, 5, 1, tzinfo=UTC)


def test_since_refuses_what_is_no_time() -> None:
    """An unreadable --since is a TimeError, as for --at."""
    with pytest.raises(TimeError):
        parse_since("gestern", BERLIN, NOW)


# --- every wall time either converts back to itself or lies in the gap -----------------------


@given(
    st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.none()
    )
)
def test_wall_time_round_trips_or_is_refused(naive: datetime) -> None:
    """Any Berlin wall time converts to a UTC instant showing that wall time again, or it does
    not exist and is refused; ambiguity is flagged exactly when the wall time occurs twice."""
    try:
        resolved = resolve_wall_time(naive, BERLIN)
    except TimeError:
        later = naive.replace(tzinfo=BERLIN, fold=0).astimezone(UTC).astimezone(BERLIN)
        assert later.replace(tzinfo=None) != naive  # really in the gap
        return
    assert resolved.at.tzinfo == UTC
    local = resolved.at.astimezone(BERLIN)
    assert local.replace(tzinfo=None) == naive
    twice = (
        naive.replace(tzinfo=BERLIN, fold=0).utcoffset()
        != naive.replace(tzinfo=BERLIN, fold=1).utcoffset()
    )
    assert resolved.ambiguous is twice
    if twice:  # the first occurrence is the earlier instant, still in summer time
        assert local.utcoffset() == timedelta(hours=2)
