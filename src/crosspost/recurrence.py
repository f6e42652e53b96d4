"""Recurring posts: RFC 5545 RRULEs counted in the site's wall time (python-dateutil).

A series repeats one post by a rule such as
``FREQ=WEEKLY;BYDAY=FR;BYHOUR=8;BYMINUTE=0``. The rule runs over *naive wall
times* in ``site.timezone`` and each occurrence is then placed in the zone, so
08:00 stays 08:00 when daylight saving time begins or ends (counting in UTC
would move it to 07:00 or 09:00). An occurrence that falls into the spring gap
is shifted by the gap's length (RFC 5545: 02:30 becomes 03:30); one that occurs
twice in autumn means the first.

The rule counts from ``publish_at`` (its ``DTSTART``); without one, from the
minute of enqueueing. ``UNTIL`` may be a wall time or UTC (``…Z``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import DAILY, HOURLY, MONTHLY, WEEKLY, YEARLY, rrule, rrulestr

from crosspost.i18n import _

#: frequencies a public body's channel may use (FREQ=MINUTELY would be spam)
ALLOWED_FREQUENCIES = {YEARLY, MONTHLY, WEEKLY, DAILY, HOURLY}
#: keys the rule may not carry: the start is publish_at, the zone is site.timezone
_FORBIDDEN = ("DTSTART", "TZID", "EXDATE", "RDATE", "EXRULE")
_UNTIL_UTC = re.compile(r"UNTIL=(\d{8}T\d{6})Z", re.IGNORECASE)
#: how far ahead a rule's next occurrence is looked for
SEARCH_YEARS = 10


class RecurrenceError(ValueError):
    """A rule that cannot be used; the message says why and how to fix it."""


@dataclass(frozen=True, slots=True)
class Recurrence:
    """A validated rule and the wall time it counts from."""

    rule: str  # normalised, without "RRULE:"; UNTIL as wall time
    dtstart: datetime  # naive wall time in ``zone``
    zone: ZoneInfo

    def _rrule(self) -> rrule:
        parsed = rrulestr(self.rule, dtstart=self.dtstart)
        assert isinstance(parsed, rrule)
        return parsed

    def after(self, instant: datetime, *, until: datetime | None = None) -> Iterator[datetime]:
        """Occurrences (aware UTC) strictly after ``instant``, up to ``until`` inclusive."""
        # a day's margin: the wall time of an instant is not monotonic across DST
        start = instant.astimezone(self.zone).replace(tzinfo=None) - timedelta(days=1)
        stop = None
        if until is not None:
            stop = until.astimezone(self.zone).replace(tzinfo=None) + timedelta(days=1)
        for naive in self._rrule().xafter(start, inc=True):
            if stop is not None and naive > stop:
                return
            at = wall_to_utc(naive, self.zone)
            if at <= instant or (until is not None and at > until):
                continue
            yield at

    def next_after(self, instant: datetime) -> datetime | None:
        limit = instant + timedelta(days=366 * SEARCH_YEARS)
        return next(self.after(instant, until=limit), None)


def wall_to_utc(naive: datetime, zone: ZoneInfo) -> datetime:
    """A wall time as an instant: the first of a repeated time, a gap time shifted later."""
    return naive.replace(tzinfo=zone, fold=0).astimezone(UTC)


def parse_recurrence(text: str, dtstart: datetime, zone: ZoneInfo) -> Recurrence:
    """Check ``repeat`` text and build the rule counting from ``dtstart`` (aware)."""
    rule = text.strip()
    if rule.upper().startswith("RRULE:"):
        rule = rule[len("RRULE:") :].strip()
    if not rule:
        raise RecurrenceError(_("is empty; write a rule such as FREQ=WEEKLY;BYDAY=FR;BYHOUR=8"))
    if "\n" in rule or any(key in rule.upper() for key in _FORBIDDEN):
        raise RecurrenceError(
            _(
                "only one RRULE without DTSTART, TZID, EXDATE or RDATE; the start is "
                "publish_at and the time zone is site.timezone"
            )
        )

    # UNTIL in UTC against a wall-time start: dateutil wants both alike
    def local_until(match: re.Match[str]) -> str:
        moment = datetime.strptime(match.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
        return "UNTIL=" + moment.astimezone(zone).strftime("%Y%m%dT%H%M%S")

    rule = _UNTIL_UTC.sub(local_until, rule)
    start = dtstart.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)
    try:
        parsed = rrulestr(rule, dtstart=start)
    except (ValueError, TypeError, KeyError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, TypeError) and "freq" in reason:
            reason = _("FREQ is missing")
        raise RecurrenceError(
            _("not a valid RRULE ({reason}); for example FREQ=WEEKLY;BYDAY=FR;BYHOUR=8").format(
                reason=reason
            )
        ) from None
    if not isinstance(parsed, rrule):
        raise RecurrenceError(_("only one RRULE is allowed"))
    if getattr(parsed, "_freq", None) not in ALLOWED_FREQUENCIES:
        raise RecurrenceError(_("FREQ must be YEARLY, MONTHLY, WEEKLY, DAILY or HOURLY"))
    return Recurrence(rule=rule.upper(), dtstart=start, zone=zone)
