"""The hook for the inbox (issue 9): response times to interactions, per month.

Kept apart on purpose: the report's section "Response times" exists only where
the inbox does. This module asks :func:`crosspost.inbox.response_times` (if that
module and function exist) for the year's months; no inbox module, no inbox
tables, or no interaction in the year: ``None``, and the report leaves the
section out (it says so in its methods section).

Expected shape of each month (``crosspost.inbox.MonthResponses``): ``month``
(1–12), ``answered``, ``unanswered``, ``median_seconds``, ``p90_seconds``,
``within_hour``, ``within_day`` (counts; seconds may be None).
"""

from __future__ import annotations

import importlib
from typing import Any
from zoneinfo import ZoneInfo

from crosspost.observability import EventLogger
from crosspost.report.figures import Cell, Table, share

log = EventLogger("crosspost.report")


def response_times(store: Any, year: int, zone: ZoneInfo) -> Table | None:
    """The table ``response_times`` for ``year``, or None where there is no inbox data."""
    try:
        inbox = importlib.import_module("crosspost.inbox")
    except ImportError:
        return None
    source = getattr(inbox, "response_times", None)
    if source is None:
        return None
    try:
        months = list(source(store, year, zone=zone))
    except Exception as exc:  # noqa: BLE001 - another module's data: the report never fails for it
        log.warning("report_inbox_unavailable", error=str(exc).splitlines()[0] if str(exc) else "")
        return None
    if not any(getattr(m, "answered", 0) or getattr(m, "unanswered", 0) for m in months):
        return None
    rows: list[tuple[Cell, ...]] = []
    for m in sorted(months, key=lambda m: int(m.month)):
        answered = int(m.answered)

        def minutes(seconds: float | None) -> float | None:
            return None if seconds is None else round(seconds / 60, 1)

        rows.append(
            (
                f"{year}-{int(m.month):02d}",
                answered,
                int(m.unanswered),
                minutes(m.median_seconds),
                minutes(m.p90_seconds),
                share(int(m.within_hour), answered),
                share(int(m.within_day), answered),
            )
        )
    return Table(
        "response_times",
        (
            "month",
            "answered",
            "unanswered",
            "median_minutes",
            "p90_minutes",
            "within_hour_share",
            "within_day_share",
        ),
        rows,
    )
