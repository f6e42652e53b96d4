"""The editorial policy: approval, the duplicate guard, quiet hours, recurring posts.

The configuration sections (``[approval]``, ``[dedup]``, ``[quiet_hours]``,
``[recurrence]`` and an account's ``quiet_hours``) and the pure rule of quiet
hours: a delivery due inside a quiet window moves to the window's end.

Quiet hours are wall-clock times in ``site.timezone``: ``"22:00-06:00"`` is
quiet from 22:00 (inclusive) to 06:00 the next morning (exclusive) on every
day, whatever the offset to UTC that day. An end that falls into the spring
DST gap means the instant the wall clock shows it after the change (RFC 5545's
rule for times in the gap: shifted by the gap's length).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

from crosspost.i18n import _

if TYPE_CHECKING:
    from crosspost.config import Settings

_WINDOW = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-4]):([0-5]\d)\s*$")
#: more moves than this means the windows leave no time to publish
_MAX_MOVES = 64

Window = tuple[int, int]  # (start, end) in minutes after midnight, wall time


def parse_window(text: str) -> Window:
    """``"22:00-06:00"`` → (1320, 360); a ValueError saying how to write it."""
    match = _WINDOW.match(text)
    if not match:
        raise ValueError(
            f"{text!r} is not a time range; write it as HH:MM-HH:MM, such as 22:00-06:00"
        )
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if end > 24 * 60:
        raise ValueError(f"{text!r}: the end is after 24:00")
    if start == end % (24 * 60):
        raise ValueError(f"{text!r}: start and end are the same; that would be quiet all day")
    return start, end


def _windows_value(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError('must be a time range such as "22:00-06:00" or a list of them')
    for item in value:
        parse_window(item)
    return [item.strip().replace(" ", "") for item in value]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApprovalConfig(_Section):
    """``[approval]``: which posts need a second person's ``crosspost approve``."""

    #: every post needs approval
    required: bool = False
    #: or only posts of these categories
    categories: list[str] = Field(default_factory=list)

    def required_for(self, category: str | None) -> bool:
        return self.required or (category is not None and category in self.categories)


class DedupConfig(_Section):
    """``[dedup]``: the duplicate guard at enqueue."""

    #: refuse a post whose link or text went (or goes) to the same account within this
    #: many days; 0 turns the guard off
    days: int = Field(default=30, ge=0, le=3650)


class RecurrenceConfig(_Section):
    """``[recurrence]``: how the daemon turns series into posts."""

    #: occurrences up to this many days ahead exist as posts (at least the next one)
    horizon_days: int = Field(default=14, ge=1, le=366)
    #: series due at the same instant are staggered by this much, one after another
    spread_seconds: int = Field(default=120, ge=0, le=3600)
    #: how often the daemon materialises (seconds)
    interval_seconds: float = Field(default=300.0, gt=0, le=86400)


def quiet_hours_field(value: Any) -> list[str] | None:
    """The validator an account's ``quiet_hours`` key uses (None: not set)."""
    if value is None:
        return None
    return _windows_value(value)


class QuietHoursConfig(BaseModel):
    """``[quiet_hours]``: per category, ``stellenangebot = "22:00-06:00"``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _each(cls, value: Any) -> list[str]:
        return _windows_value(value)

    def by_category(self) -> dict[str, list[str]]:
        extra = self.model_extra or {}
        return {str(k): [str(w) for w in _windows_value(v)] for k, v in extra.items()}


def check_policy(path: Path, settings: Settings) -> None:
    """Category names in ``[approval]`` and ``[quiet_hours]`` must be categories."""
    from crosspost.exceptions import ConfigError

    known = set(settings.site.categories)
    named = [("approval.categories", c) for c in settings.approval.categories]
    named += [("quiet_hours", c) for c in settings.quiet_hours.by_category()]
    for key, category in named:
        if category not in known:
            raise ConfigError(
                _("{path}: {key}: {category!r} is not a category; known: {known}").format(
                    path=path, key=key, category=category, known=", ".join(sorted(known))
                )
            )
    # a window list that leaves no minute free would hold a post forever
    for name, account in settings.accounts.items():
        quiet = getattr(account, "quiet_hours", None) or []
        for category, windows in [*settings.quiet_hours.by_category().items(), ("", [])]:
            combined = [*quiet, *windows]
            if combined and _covers_day([parse_window(w) for w in combined]):
                raise ConfigError(
                    _(
                        "{path}: quiet hours of account {account}{category} leave no time "
                        "to publish; shorten them"
                    ).format(
                        path=path,
                        account=name,
                        category=f" / {category}" if category else "",
                    )
                )


def _covers_day(windows: Sequence[Window]) -> bool:
    minutes: set[int] = set()
    for start, end in windows:
        span = range(start, end) if start < end else [*range(start, 1440), *range(0, end)]
        minutes.update(m % 1440 for m in span)
    return len(minutes) >= 1440


def windows_for(settings: Settings, account: str, category: str | None) -> list[Window]:
    """The quiet windows of one delivery: its account's and its category's."""
    found: list[str] = []
    configured = settings.accounts.get(account)
    if configured is not None:
        found += getattr(configured, "quiet_hours", None) or []
    if category:
        found += settings.quiet_hours.by_category().get(category, [])
    return [parse_window(w) for w in found]


def quiet_due(settings: Settings, category: str | None, account: str, base: datetime) -> datetime:
    """When a delivery due at ``base`` may go out: the one rule for every due time.

    ``base``, moved to the end of the account's and the category's quiet window
    it lies in (and on, should that end lie in another). Enqueue, approval,
    reschedule, ``retry``, series and the daemon's own retries, rate-limit waits
    and resumed accounts all ask this. A ValueError if the windows leave no time.
    """
    windows = windows_for(settings, account, category)
    if not windows:
        return base
    return next_allowed(base, windows, settings.site.zone)


def daemon_due_rule(settings: Settings) -> Callable[[str | None, str, datetime], datetime]:
    """:func:`quiet_due` for the daemon's own due times: ``(category, account, base)``.

    Windows that leave no time are refused at start-up (:func:`check_policy`);
    should they slip through, the daemon keeps ``base`` rather than stop.
    """

    def rule(category: str | None, account: str, base: datetime) -> datetime:
        try:
            return quiet_due(settings, category, account, base)
        except ValueError:
            return base

    return rule


def may_be_quiet(settings: Settings, account: str) -> bool:
    """Whether any delivery of ``account`` can have quiet hours (its own or a category's)."""
    configured = settings.accounts.get(account)
    return bool(
        (configured is not None and getattr(configured, "quiet_hours", None))
        or settings.quiet_hours.by_category()
    )


def _wall_instant(day: datetime, minute: int, zone: ZoneInfo) -> datetime:
    """The instant the wall clock in ``zone`` shows ``minute`` after ``day``'s midnight."""
    naive = datetime.combine(day.date(), time(0)) + timedelta(minutes=minute)
    # fold=0: a repeated time means its first occurrence; a time in the gap is read
    # with the offset before the change (later by the gap's length)
    return naive.replace(tzinfo=zone, fold=0).astimezone(UTC)


def quiet_end(instant: datetime, windows: Iterable[Window], zone: ZoneInfo) -> datetime | None:
    """The end of the quiet window ``instant`` lies in, or None if it lies in none."""
    local = instant.astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    now_s = (local.replace(tzinfo=None) - midnight).total_seconds()
    for start, end in windows:
        s, e = start * 60, end * 60
        if start < end:
            if s <= now_s < e:
                return _wall_instant(midnight, end, zone)
        elif now_s >= s:
            return _wall_instant(midnight, end + 1440, zone)
        elif now_s < e:
            return _wall_instant(midnight, end, zone)
    return None


def next_allowed(instant: datetime, windows: Sequence[Window], zone: ZoneInfo) -> datetime:
    """``instant``, or the first instant after it outside every quiet window."""
    for _move in range(_MAX_MOVES):
        end = quiet_end(instant, windows, zone)
        if end is None or end <= instant:
            return instant
        instant = end
    raise ValueError("quiet hours leave no time to publish")
