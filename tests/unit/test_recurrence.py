"""Recurring posts: RRULEs counted in the site's wall time (crosspost.recurrence)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from crosspost.exceptions import PostFileError
from crosspost.postfile import read_post_file
from crosspost.recurrence import RecurrenceError, parse_recurrence

BERLIN = ZoneInfo("Europe/Berlin")
FRIDAYS_8 = "FREQ=WEEKLY;BYDAY=FR;BYHOUR=8;BYMINUTE=0"
SUNDAYS_8 = "FREQ=WEEKLY;BYDAY=SU;BYHOUR=8;BYMINUTE=0"


def local(instants: list[datetime]) -> list[str]:
    return [t.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M %Z") for t in instants]


def test_weekly_series_keeps_8_oclock_across_the_march_change() -> None:
    """Last Sunday of March 2026 (29th): 08:00 CET before, 08:00 CEST after — not 09:00."""
    rule = parse_recurrence(SUNDAYS_8, datetime(2026, 3, 1, tzinfo=UTC), BERLIN)
    found = list(
        rule.after(datetime(2026, 3, 20, tzinfo=UTC), until=datetime(2026, 4, 6, tzinfo=UTC))
    )
    assert local(found) == [
        "2026-03-22 08:00 CET",
        "2026-03-29 08:00 CEST",
        "2026-04-05 08:00 CEST",
    ]
    # in UTC the series moves by the hour the clocks moved
    assert [t.hour for t in found] == [7, 6, 6]


def test_weekly_series_keeps_8_oclock_across_the_october_change() -> None:
    """Last Sunday of October 2026 (25th): 08:00 CEST before, 08:00 CET after."""
    rule = parse_recurrence(SUNDAYS_8, datetime(2026, 9, 1, tzinfo=UTC), BERLIN)
    found = list(
        rule.after(datetime(2026, 10, 17, tzinfo=UTC), until=datetime(2026, 11, 2, tzinfo=UTC))
    )
    assert local(found) == [
        "2026-10-18 08:00 CEST",
        "2026-10-25 08:00 CET",
        "2026-11-01 08:00 CET",
    ]
    assert [t.hour for t in found] == [6, 7, 7]


def test_fridays_around_both_changes_are_all_at_8() -> None:
    """A whole year of Friday posts: every one at 08:00 wall time."""
    rule = parse_recurrence(FRIDAYS_8, datetime(2026, 1, 1, tzinfo=UTC), BERLIN)
    found = list(
        rule.after(datetime(2026, 1, 1, tzinfo=UTC), until=datetime(2026, 12, 31, tzinfo=UTC))
    )
    assert len(found) == 52
    assert {t.astimezone(BERLIN).strftime("%a %H:%M") for t in found} == {"Fri 08:00"}


def test_an_occurrence_in_the_spring_gap_is_shifted_by_the_gap() -> None:
    """02:30 does not exist on 29 March 2026: RFC 5545 reads it as 03:30 CEST."""
    rule = parse_recurrence(
        "FREQ=DAILY;BYHOUR=2;BYMINUTE=30", datetime(2026, 3, 27, tzinfo=UTC), BERLIN
    )
    found = list(
        rule.after(datetime(2026, 3, 27, tzinfo=UTC), until=datetime(2026, 3, 30, 12, tzinfo=UTC))
    )
    assert local(found) == [
        "2026-03-27 02:30 CET",
        "2026-03-28 02:30 CET",
        "2026-03-29 03:30 CEST",
        "2026-03-30 02:30 CEST",
    ]


def test_a_repeated_autumn_time_means_the_first() -> None:
    rule = parse_recurrence(
        "FREQ=DAILY;BYHOUR=2;BYMINUTE=30", datetime(2026, 10, 24, tzinfo=UTC), BERLIN
    )
    found = list(
        rule.after(datetime(2026, 10, 25, tzinfo=UTC), until=datetime(2026, 10, 25, 6, tzinfo=UTC))
    )
    assert local(found) == ["2026-10-25 02:30 CEST"]


def test_until_in_utc_and_count_end_the_series() -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    until = parse_recurrence(SUNDAYS_8 + ";UNTIL=20260315T070000Z", start, BERLIN)
    assert local(list(until.after(start))) == ["2026-03-01 08:00 CET", "2026-03-08 08:00 CET",
                                               "2026-03-15 08:00 CET"]  # fmt: skip
    count = parse_recurrence(SUNDAYS_8 + ";COUNT=2", start, BERLIN)
    assert len(list(count.after(start))) == 2
    assert count.next_after(start + timedelta(days=30)) is None


def test_the_start_is_the_minute_of_publish_at() -> None:
    """Without BYSECOND the seconds of the start would repeat; they are dropped."""
    rule = parse_recurrence("FREQ=DAILY", datetime(2026, 5, 1, 6, 15, 42, tzinfo=UTC), BERLIN)
    first = rule.next_after(datetime(2026, 5, 1, 7, tzinfo=UTC))
    assert first is not None
    assert first.astimezone(BERLIN).strftime("%H:%M:%S") == "08:15:00"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("BYDAY=FR", "FREQ is missing"),
        ("FREQ=MINUTELY", "FREQ must be"),
        ("FREQ=WEEKLY;BYDAY=XX", "BYDAY"),
        ("FREQ=WEEKLY;DTSTART=20260101T000000", "DTSTART"),
        ("FREQ=WEEKLY\nRRULE:FREQ=DAILY", "only one RRULE"),
    ],
)
def test_bad_rules_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(RecurrenceError, match=message):
        parse_recurrence(text, datetime(2026, 3, 1, tzinfo=UTC), BERLIN)


def test_a_post_file_with_a_bad_repeat_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "serie.md"
    path.write_text('+++\nrepeat = "FREQ=SOMETIMES"\n+++\nText\n', encoding="utf-8")
    with pytest.raises(PostFileError, match=r"serie\.md: repeat: not a valid RRULE"):
        read_post_file(path, zone=BERLIN, now=datetime(2026, 3, 1, tzinfo=UTC))
    path.write_text('+++\nrepeat = "rrule:freq=weekly;byday=fr"\n+++\nText\n', encoding="utf-8")
    post = read_post_file(path, zone=BERLIN, now=datetime(2026, 3, 1, tzinfo=UTC))
    assert post.repeat == "FREQ=WEEKLY;BYDAY=FR"
