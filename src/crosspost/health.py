"""``crosspost status --check``: one line and a monitoring-plugin exit code.

The convention of Nagios, Icinga, Naemon, Checkmk, Zabbix and Sensu plugins:
exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the check itself could not run),
and one line ``SERVICE STATE - text | perfdata``. Checked, with the thresholds
of ``[check]``:

``heartbeat``  age of the newest daemon heartbeat (no daemon at all: CRITICAL)
``late``       how long the most overdue waiting delivery of an enabled account
               is past its time (paused accounts are left to ``paused``)
``failed``     deliveries that failed within ``failed_window_hours``
``unknown``    deliveries whose outcome is unknown (older than two minutes: a
               daemon settles a fresh one itself after a restart)
``paused``     enabled accounts paused because their credentials failed
``tokens``     days until the first token of an enabled account expires

A count threshold of 0 turns that level off. The words OK, WARNING, CRITICAL
and UNKNOWN are the protocol and stay English; the text is translated.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from crosspost.alerts import UNKNOWN_GRACE
from crosspost.config import Settings
from crosspost.i18n import _, ngettext
from crosspost.store.operations import OperationsStore
from crosspost.store.sql import SqlStore


class Level(enum.IntEnum):
    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    level: Level
    message: str
    value: float | None = None
    unit: str = ""
    warning: float | None = None
    critical: float | None = None
    #: lower is worse (days left): the thresholds are written as ranges "N:"
    falling: bool = False

    def perfdata(self) -> str:
        def number(x: float | None) -> str:
            # plain decimals: the perfdata format knows no exponents
            return "" if x is None else f"{x:.3f}".rstrip("0").rstrip(".")

        def threshold(x: float | None) -> str:
            return f"{number(x)}:" if self.falling and x is not None else number(x)

        return (
            f"{self.name}={number(self.value)}{self.unit};"
            f"{threshold(self.warning)};{threshold(self.critical)}"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.level.name.lower(),
            "value": self.value,
            "warning": self.warning,
            "critical": self.critical,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class Health:
    checks: list[Check] = field(default_factory=list)

    @property
    def level(self) -> Level:
        return max((c.level for c in self.checks), default=Level.OK)

    def line(self) -> str:
        """``CROSSPOST CRITICAL - problems first; then the rest | perfdata``."""
        worst_first = sorted(self.checks, key=lambda c: -c.level)
        text = "; ".join(c.message for c in worst_first)
        perf = " ".join(c.perfdata() for c in self.checks if c.value is not None)
        return f"CROSSPOST {self.level.name} - {text}" + (f" | {perf}" if perf else "")

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.level.name.lower(),
            "code": int(self.level),
            "summary": self.line(),
            "checks": [c.as_json() for c in self.checks],
        }


def unknown(message: str) -> Health:
    """The check itself could not run (configuration, database)."""
    return Health([Check("check", Level.UNKNOWN, message)])


def _level(value: float, warning: float | None, critical: float | None) -> Level:
    if critical is not None and value >= critical:
        return Level.CRITICAL
    if warning is not None and value >= warning:
        return Level.WARNING
    return Level.OK


def _count_level(value: int, warning: int, critical: int) -> Level:
    """Count thresholds: 0 means that level is off."""
    return _level(value, warning or None, critical or None)


def _accounts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {n}" if n > 1 else name for name, n in sorted(counts.items()))


def _duration(seconds: float) -> str:
    if seconds < 120:
        return _("{n} s").format(n=int(seconds))
    if seconds < 2 * 3600:
        return _("{n} min").format(n=int(seconds // 60))
    if seconds < 2 * 86400:
        return _("{n} h").format(n=int(seconds // 3600))
    return _("{n} days").format(n=int(seconds // 86400))


def evaluate(settings: Settings, store: SqlStore, now: datetime) -> Health:
    limits = settings.check
    ops = OperationsStore(store)
    checks: list[Check] = []
    enabled = settings.enabled_accounts()
    states = store.account_states()

    # heartbeat
    beats = [d.heartbeat_at for d in store.daemons()]
    if not beats:
        checks.append(Check("heartbeat", Level.CRITICAL, _("no daemon is running (no heartbeat)")))
    else:
        age = max(0.0, (now - max(beats)).total_seconds())
        level = _level(age, limits.heartbeat_warning_seconds, limits.heartbeat_critical_seconds)
        checks.append(
            Check(
                "heartbeat",
                level,
                _("daemon heartbeat {age} ago").format(age=_duration(age)),
                value=round(age, 1),
                unit="s",
                warning=limits.heartbeat_warning_seconds,
                critical=limits.heartbeat_critical_seconds,
            )
        )

    # late deliveries (paused accounts are the paused check's business)
    paused = {
        name: st.paused_reason
        for name, st in states.items()
        if st.paused_reason is not None and name in enabled
    }
    active = [name for name in enabled if name not in paused]  # disabled ones never publish
    oldest = ops.oldest_waiting(due_before=now, accounts=active)
    late_s = max(((now - when).total_seconds() for when in oldest.values()), default=0.0)
    warn_s, crit_s = limits.late_warning_minutes * 60, limits.late_critical_minutes * 60
    level = _level(late_s, warn_s or None, crit_s or None)
    if level is Level.OK:
        message = _("nothing late")
    else:
        late_accounts = {
            name: 1 for name, when in oldest.items() if (now - when).total_seconds() >= warn_s
        }
        message = _("deliveries {late} late ({accounts})").format(
            late=_duration(late_s), accounts=", ".join(sorted(late_accounts))
        )
    checks.append(
        Check("late", level, message, round(late_s, 1), "s", warn_s or None, crit_s or None)
    )

    # failed within the window
    window = timedelta(hours=limits.failed_window_hours)
    failed = ops.count_failed_since(now - window)
    n_failed = sum(failed.values())
    level = _count_level(n_failed, limits.failed_warning, limits.failed_critical)
    message = (
        ngettext(
            "{n} delivery failed within {window} ({accounts})",
            "{n} deliveries failed within {window} ({accounts})",
            n_failed,
        ).format(n=n_failed, window=_duration(window.total_seconds()), accounts=_accounts(failed))
        if n_failed
        else _("no failed deliveries")
    )
    checks.append(
        Check(
            "failed",
            level,
            message,
            n_failed,
            "",
            limits.failed_warning or None,
            limits.failed_critical or None,
        )
    )

    # unknown outcome
    unknown_counts = ops.count_unknown(changed_before=now - UNKNOWN_GRACE)
    n_unknown = sum(unknown_counts.values())
    level = _count_level(n_unknown, limits.unknown_warning, limits.unknown_critical)
    message = (
        ngettext(
            "{n} delivery with unknown outcome ({accounts}): check the platform",
            "{n} deliveries with unknown outcome ({accounts}): check the platform",
            n_unknown,
        ).format(n=n_unknown, accounts=_accounts(unknown_counts))
        if n_unknown
        else _("no unknown deliveries")
    )
    checks.append(
        Check(
            "unknown",
            level,
            message,
            n_unknown,
            "",
            limits.unknown_warning or None,
            limits.unknown_critical or None,
        )
    )

    # paused accounts
    level = _count_level(len(paused), limits.paused_warning, limits.paused_critical)
    message = (
        ngettext(
            "{n} account paused ({accounts})", "{n} accounts paused ({accounts})", len(paused)
        ).format(n=len(paused), accounts=", ".join(sorted(paused)))
        if paused
        else _("no paused accounts")
    )
    checks.append(
        Check(
            "paused",
            level,
            message,
            len(paused),
            "",
            limits.paused_warning or None,
            limits.paused_critical or None,
        )
    )

    # tokens
    expiries: dict[str, datetime] = {}
    for name, account in enabled.items():
        learnt = states.get(name)
        when = (learnt.token_expires_at if learnt else None) or account.token_expires_at
        if when is not None:
            expiries[name] = when
    if expiries:
        first_name, first = min(expiries.items(), key=lambda item: item[1])
        days = (first - now).total_seconds() / 86400
        if days <= limits.token_critical_days:
            level = Level.CRITICAL
        elif days <= limits.token_warning_days:
            level = Level.WARNING
        else:
            level = Level.OK
        if days <= 0:
            message = _("the token of {account} has expired").format(account=first_name)
        else:
            message = _("the token of {account} expires in {time}").format(
                account=first_name, time=_duration(days * 86400)
            )
        checks.append(
            Check(
                "tokens",
                level,
                message,
                round(days, 2),
                "",
                limits.token_warning_days,
                limits.token_critical_days,
                falling=True,
            )
        )
    return Health(checks)
