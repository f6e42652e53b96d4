"""Publication times as editors write them, turned into UTC instants.

Accepted: ``now``, ``+90s`` / ``+15m`` / ``+2h`` / ``+1d`` (combinations such as
``+1h30m``), a wall time ``2026-12-01 09:00`` (or with a ``T``, with seconds),
and ISO 8601 with an offset. Wall times without an offset are read in
``site.timezone`` with zoneinfo: a time that does not exist (the spring DST gap)
is refused; one that occurs twice (autumn) means the first occurrence, and the
result says so, so ``preview`` can tell the editor.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache

from crosspost.i18n import _
from crosspost.records import Record

TYPE_CHECKING = False  # importing typing costs; mypy knows the name
if TYPE_CHECKING:
    import re
    from zoneinfo import ZoneInfo

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@cache
def _pattern(name: str) -> re.Pattern[str]:
    """The patterns of relative times, compiled on first use (most times are wall times)."""
    import re

    patterns = {
        "relative": r"^\+\s*((?:\d+\s*[smhdw]\s*)+)$",  # +1h30m
        "part": r"(\d+)\s*([smhdw])",  # 1h
        "ago": r"^-?\s*((?:\d+\s*[smhdw]\s*)+)$",  # 2h, -2h
    }
    return re.compile(patterns[name], re.IGNORECASE)


class TimeError(ValueError):
    """A time an editor wrote cannot be used; the message says why and how to fix it."""


class Resolved(Record):
    """An instant in UTC, and whether its wall time was ambiguous (autumn)."""

    _fields = ("at", "ambiguous")
    __slots__ = _fields

    at: datetime
    ambiguous: bool

    def __init__(self, at: datetime, ambiguous: bool = False) -> None:
        object.__setattr__(self, "at", at)
        object.__setattr__(self, "ambiguous", ambiguous)


def resolve_wall_time(naive: datetime, zone: ZoneInfo) -> Resolved:
    """A naive wall-clock time in ``zone`` as a UTC instant (first occurrence if repeated)."""
    if naive.tzinfo is not None:
        return Resolved(_in_utc(naive))
    first = naive.replace(tzinfo=zone, fold=0)
    second = naive.replace(tzinfo=zone, fold=1)
    # A wall time that does not exist maps to an instant whose wall time differs.
    back = _in_utc(first).astimezone(zone).replace(tzinfo=None)
    if back != naive:
        raise TimeError(
            _(
                "{time} does not exist in {zone} (the clocks skip that hour when daylight "
                "saving time begins); choose a time before or after the gap"
            ).format(time=naive.isoformat(sep=" ", timespec="minutes"), zone=zone.key)
        )
    ambiguous = first.utcoffset() != second.utcoffset()
    return Resolved(_in_utc(first), ambiguous=ambiguous)


def _in_utc(moment: datetime, shift: timedelta = timedelta(0)) -> datetime:
    """``moment + shift`` in UTC; a TimeError (not OverflowError) outside years 1-9999."""
    try:
        return (moment + shift).astimezone(UTC)
    except (OverflowError, ValueError):
        raise TimeError(
            _("the time is out of range; use a date between the years 1 and 9999")
        ) from None


def _seconds(seconds: int) -> timedelta:
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise TimeError(
            _("the time is out of range; use a date between the years 1 and 9999")
        ) from None


def parse_when(text: str, zone: ZoneInfo, now: datetime) -> Resolved:
    """Parse ``--at`` / ``publish_at`` text; ``now`` is an aware instant."""
    value = text.strip()
    if not value:
        raise TimeError(_('the time is empty; use now, +2h, "2026-12-01 09:00" or ISO 8601'))
    if value.lower() == "now":
        return Resolved(now.astimezone(UTC))
    relative = _pattern("relative").match(value) if value.startswith("+") else None
    if relative:
        seconds = sum(
            int(amount) * _UNITS[unit.lower()]
            for amount, unit in _pattern("part").findall(relative.group(1))
        )
        return Resolved(_in_utc(now, _seconds(seconds)))
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise TimeError(
            _(
                '{text!r} is not a time; use now, +2h, +1d, "2026-12-01 09:00" '
                "or ISO 8601 such as 2026-12-01T09:00:00+01:00"
            ).format(text=value)
        ) from None
    return resolve_wall_time(parsed, zone)


def from_toml(value: object, zone: ZoneInfo, now: datetime) -> Resolved:
    """``publish_at`` from TOML: a datetime (naive or offset) or a string."""
    if isinstance(value, datetime):
        return resolve_wall_time(value, zone)
    if isinstance(value, str):
        return parse_when(value, zone, now)
    raise TimeError(_("must be a date and time such as 2026-12-01T09:00:00"))


def parse_since(text: str, zone: ZoneInfo, now: datetime) -> datetime:
    """``--since``: ``2h`` / ``-2h`` (ago), ``today``, or a date/time as for ``--at``."""
    value = text.strip()
    if value.lower() == "today":
        local = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
        return resolve_wall_time(local.replace(tzinfo=None), zone).at
    ago = _pattern("ago").match(value)
    if ago:
        seconds = sum(int(n) * _UNITS[u.lower()] for n, u in _pattern("part").findall(ago.group(1)))
        return _in_utc(now, -_seconds(seconds))
    return parse_when(value, zone, now).at
