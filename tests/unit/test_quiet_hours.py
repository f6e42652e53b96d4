"""Quiet hours: a delivery due inside a window moves to its end (crosspost.policy)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from crosspost.config import load_settings
from crosspost.exceptions import ConfigError
from crosspost.policy import next_allowed, parse_window

BERLIN = ZoneInfo("Europe/Berlin")
NIGHT = [parse_window("22:00-06:00")]


def at(text: str) -> datetime:
    """A Berlin wall time as an instant."""
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN).astimezone(UTC)


def shown(instant: datetime) -> str:
    return instant.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M:%S")


@pytest.mark.parametrize(
    ("due", "expected"),
    [
        ("2026-06-10 21:59:59", "2026-06-10 21:59:59"),  # just before: unchanged
        ("2026-06-10 22:00:00", "2026-06-11 06:00:00"),  # the start is quiet
        ("2026-06-10 23:30:00", "2026-06-11 06:00:00"),
        ("2026-06-11 03:00:00", "2026-06-11 06:00:00"),  # after midnight: the same morning
        ("2026-06-11 05:59:59", "2026-06-11 06:00:00"),
        ("2026-06-11 06:00:00", "2026-06-11 06:00:00"),  # the end is allowed
        ("2026-06-11 12:00:00", "2026-06-11 12:00:00"),
    ],
)
def test_night_window_boundaries(due: str, expected: str) -> None:
    assert shown(next_allowed(at(due), NIGHT, BERLIN)) == expected


def test_window_within_one_day() -> None:
    lunch = [parse_window("12:00-13:30")]
    assert shown(next_allowed(at("2026-06-10 12:00:00"), lunch, BERLIN)) == "2026-06-10 13:30:00"
    assert shown(next_allowed(at("2026-06-10 11:59:00"), lunch, BERLIN)) == "2026-06-10 11:59:00"


def test_end_is_wall_time_across_the_dst_changes() -> None:
    """The night of a clock change still ends at 06:00 on the wall clock."""
    assert shown(next_allowed(at("2026-03-28 23:00:00"), NIGHT, BERLIN)) == "2026-03-29 06:00:00"
    assert shown(next_allowed(at("2026-10-24 23:00:00"), NIGHT, BERLIN)) == "2026-10-25 06:00:00"


def test_overlapping_windows_are_left_together() -> None:
    """An account's and a category's windows: the first instant outside both."""
    windows = [parse_window("22:00-06:00"), parse_window("05:00-08:00")]
    assert shown(next_allowed(at("2026-06-10 23:00:00"), windows, BERLIN)) == "2026-06-11 08:00:00"


@pytest.mark.parametrize("text", ["22-6", "25:00-06:00", "06:00-06:00", "abc"])
def test_bad_windows_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"time range|same|after 24"):
        parse_window(text)


def test_config_refuses_unknown_categories_and_windows_without_a_free_minute(
    tmp_path: Path,
) -> None:
    """`[quiet_hours]` and `[approval]` name categories; windows must leave time to publish."""
    base = '[site]\nurl = "https://www.zv-staedtedreieck.de"\n'
    cases = {
        "[quiet_hours]\nveranstaltungen = \"22:00-06:00\"\n": "quiet_hours: 'veranstaltungen'",
        '[approval]\ncategories = ["jobs"]\n': "approval.categories: 'jobs'",
        '[accounts.web]\nplatform = "console"\nquiet_hours = ["00:00-12:00", "12:00-24:00"]\n':
            "leave no time",
        '[accounts.web]\nplatform = "console"\nquiet_hours = "22-6"\n': "HH:MM-HH:MM",
    }  # fmt: skip
    for extra, message in cases.items():
        path = tmp_path / "crosspost.toml"
        path.write_text(base + extra, encoding="utf-8")
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_settings(path)
    path.write_text(base + '[quiet_hours]\nstellenangebot = "22:00-06:00"\n', encoding="utf-8")
    assert load_settings(path).quiet_hours.by_category() == {"stellenangebot": ["22:00-06:00"]}


def test_one_rule_for_every_due_time_combines_account_and_category() -> None:
    """``quiet_due`` (enqueue and the daemon alike): the account's and the category's
    windows add up; an account without quiet hours keeps its time."""
    from tests.rawsettings import settings_from

    from crosspost.policy import daemon_due_rule, may_be_quiet, quiet_due

    settings = settings_from(
        site={"url": "https://www.zv-staedtedreieck.de", "timezone": "Europe/Berlin",
              "categories": ["nachrichten"]},
        accounts={"a": {"platform": "console", "quiet_hours": "22:00-06:00"},
                  "b": {"platform": "console"}},
        quiet_hours={"nachrichten": "06:00-07:00"},
    )  # fmt: skip
    late = at("2026-06-10 23:00:00")
    assert shown(quiet_due(settings, None, "a", late)) == "2026-06-11 06:00:00"
    # the category's window starts where the account's ends: the later end counts
    assert shown(quiet_due(settings, "nachrichten", "a", late)) == "2026-06-11 07:00:00"
    assert quiet_due(settings, None, "b", late) == late
    assert daemon_due_rule(settings)("nachrichten", "b", late) == late
    assert shown(daemon_due_rule(settings)(None, "a", late)) == "2026-06-11 06:00:00"
    assert may_be_quiet(settings, "a")
    assert may_be_quiet(settings, "b")  # its posts' categories may have quiet hours
