"""Metrics collection for the yearly evaluation: engagement at fixed ages, followers daily.

A published post's figures are sampled at fixed ages after publication
(``evaluation.sample_ages``, default 1, 7 and 30 days). A sample for age *a* is
taken by the first run in its window ``[a, a + max(1, a/2))`` days after
publication; a window that passed unsampled (the collector did not run) is
missed, never filled in later with a figure of another age. Each account's
follower count is taken once per local day (``site.timezone``).

Resumable: what is stored is never asked again (one row per delivery and age,
per account and day), so an interrupted run simply goes on at the next one.
Rate-limit aware: a 429 (or a budget used up) stops that account's run and is
remembered in ``metrics_state`` until the platform's reset; the other accounts
go on. It never blocks publishing: its adapters are its own (their rate-limit
memory does not touch the publisher's), it runs as a separate job, and a run
asks each account at most ``evaluation.requests_per_run`` times.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from crosspost.adapters.base import Adapter, build_adapter
from crosspost.clock import Clock, system_clock
from crosspost.config import Settings
from crosspost.exceptions import CrosspostError, PlatformError, RateLimited, Rejected
from crosspost.i18n import _, ngettext
from crosspost.models import PostMetrics
from crosspost.observability import EventLogger

if TYPE_CHECKING:
    import httpx

    from crosspost.store.metrics import EvaluationStore, Published

T = TypeVar("T")
log = EventLogger("crosspost.sampling")

#: how long the collection waits after a 429 that names no reset
DEFAULT_RATE_LIMIT_WAIT = timedelta(minutes=15)

Progress = Callable[[int, int], None]
DbRunner = Callable[..., Awaitable[Any]]


async def _direct(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return fn(*args, **kwargs)


def window(age: int) -> timedelta:
    """How long after reaching ``age`` days a sample still stands for that age."""
    return timedelta(days=max(1.0, age / 2))


def due_age(
    published_at: datetime, sampled: frozenset[int], ages: list[int], now: datetime
) -> int | None:
    """The age to sample now, if any: the largest one whose window is open, not sampled
    yet, and not overtaken by a sample of a greater age."""
    highest = max(sampled, default=0)
    open_ages = [
        a
        for a in ages
        if a not in sampled
        and a > highest
        and published_at + timedelta(days=a) <= now < published_at + timedelta(days=a) + window(a)
    ]
    return max(open_ages, default=None)


@dataclass(frozen=True, slots=True)
class AccountRun:
    """What one run did on one account."""

    account: str
    ok: bool
    message: str
    samples: int = 0
    followers: int | None = None
    #: the samples due now that this run left for a later one (budget, rate limit, error)
    left: int = 0


def _measures(adapter: Adapter, method: str) -> bool:
    """Whether the adapter's platform gives this figure at all (it overrides the method)."""
    return getattr(type(adapter), method) is not getattr(Adapter, method)


async def collect(
    settings: Settings,
    store: EvaluationStore,
    *,
    clock: Clock = system_clock,
    db: DbRunner = _direct,
    progress: Progress | None = None,
    since: datetime | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[AccountRun]:
    """One collection run over every enabled account; accounts run side by side."""
    config = settings.evaluation
    ages = config.sample_ages
    now = clock.now()
    accounts = list(settings.enabled_accounts())
    earliest = now - timedelta(days=max(ages)) - window(max(ages))
    if since is not None:
        earliest = max(earliest, since)
    latest = now - timedelta(days=min(ages))
    published: list[Published] = await db(
        store.published_between, accounts, earliest=earliest, latest=latest
    )
    blocked: dict[str, datetime] = await db(store.blocked_until)
    plan: dict[str, list[tuple[Published, int]]] = {name: [] for name in accounts}
    for d in published:
        age = due_age(d.published_at, d.sampled, ages, now)
        if age is not None:
            plan[d.account].append((d, age))
    total = sum(min(len(p), config.requests_per_run) for p in plan.values()) + len(accounts)
    done = 0

    def advance(n: int = 1) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(min(done, total), total)

    if progress is not None:
        progress(0, total)
    runs = await asyncio.gather(
        *(
            _collect_account(
                name,
                plan[name],
                settings=settings,
                store=store,
                clock=clock,
                db=db,
                blocked_until=blocked.get(name),
                transport=transport,
                advance=advance,
            )
            for name in accounts
        )
    )
    return list(runs)


async def _collect_account(
    name: str,
    due: list[tuple[Published, int]],
    *,
    settings: Settings,
    store: EvaluationStore,
    clock: Clock,
    db: DbRunner,
    blocked_until: datetime | None,
    transport: httpx.AsyncBaseTransport | None,
    advance: Callable[[int], None],
) -> AccountRun:
    budget = settings.evaluation.requests_per_run
    planned = min(len(due), budget)
    now = clock.now()
    if blocked_until is not None and blocked_until > now:
        advance(planned + 1)
        shown_until = blocked_until.astimezone(settings.site.zone).strftime("%Y-%m-%d %H:%M %Z")
        return AccountRun(
            name,
            True,
            _("rate limited by the platform until {until}; collected later").format(
                until=shown_until
            ),
            left=len(due),
        )
    try:
        adapter = build_adapter(name, settings, transport=transport)
    except CrosspostError as exc:
        advance(planned + 1)
        return AccountRun(name, False, exc.message, left=len(due))
    samples = 0
    #: due samples this run settled (stored, or found stored by another collector)
    settled = 0
    followers: int | None = None
    requests = 0
    counted = 0

    def step(n: int = 1) -> None:
        nonlocal counted
        counted += n
        advance(n)

    try:
        if _measures(adapter, "followers"):
            day = clock.now().astimezone(settings.site.zone).date().isoformat()
            if not await db(store.has_followers, name, day):
                requests += 1
                followers = await adapter.followers()
                if followers is not None:
                    await db(store.record_followers, name, day, followers, now=clock.now())
        step(1)
        if not _measures(adapter, "metrics"):
            due = []
        for delivery, age in due:
            if requests >= budget:
                break
            requests += 1
            try:
                metrics = await adapter.metrics(delivery.remote_id)
            except Rejected as exc:
                # Gone from the platform (deleted there) or refused for good: an empty
                # sample records that this age has no figures, so it is not asked again.
                log.info(
                    "metrics_rejected",
                    account=name,
                    delivery=delivery.delivery_id,
                    error=exc.message,
                )
                metrics = None
            stored = await db(
                store.record_sample,
                delivery.delivery_id,
                name,
                age,
                metrics or PostMetrics(),
                now=clock.now(),
            )
            samples += int(stored)
            settled += 1
            step(1)
    except RateLimited as exc:
        until = exc.until or clock.now() + DEFAULT_RATE_LIMIT_WAIT
        await db(store.finish_run, name, now=clock.now(), blocked_until=until, error=exc.message)
        log.warning("metrics_rate_limited", account=name, until=until.isoformat(), samples=samples)
        shown = until.astimezone(settings.site.zone).strftime("%Y-%m-%d %H:%M %Z")
        return AccountRun(
            name,
            True,
            ngettext(
                "{n} sample stored; rate limited until {until}, the rest follows then",
                "{n} samples stored; rate limited until {until}, the rest follows then",
                samples,
            ).format(n=samples, until=shown),
            samples=samples,
            followers=followers,
            left=len(due) - settled,
        )
    except PlatformError as exc:
        await db(store.finish_run, name, now=clock.now(), error=exc.message)
        log.warning("metrics_failed", account=name, error=exc.message, samples=samples)
        return AccountRun(
            name, False, exc.message, samples=samples, followers=followers, left=len(due) - settled
        )
    finally:
        await adapter.aclose()
        # what this run did not get to still counts as handled for the progress bar
        if counted < planned + 1:
            advance(planned + 1 - counted)
    await db(store.finish_run, name, now=clock.now())
    left = len(due) - settled
    if samples or followers is not None:
        log.info("metrics_collected", account=name, samples=samples, followers=followers, left=left)
    message = ngettext("{n} sample stored", "{n} samples stored", samples).format(n=samples)
    if followers is not None:
        message += "; " + _("followers: {n}").format(n=followers)
    if left:
        message += "; " + ngettext(
            "{n} more sample next run (request budget)",
            "{n} more samples next run (request budget)",
            left,
        ).format(n=left)
    if not _measures(adapter, "metrics") and not _measures(adapter, "followers"):
        message = _("the platform gives no figures")
    return AccountRun(name, True, message, samples=samples, followers=followers, left=left)


class ProgressBar:
    """``metrics collect``'s progress bar on standard error (a terminal only).

    The total is known only once the run has planned its samples, so click's bar
    is made at the first report.
    """

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None
        self._shown = 0

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)

    def update(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        import sys

        import click

        if self._bar is None:
            self._bar = click.progressbar(
                length=total, label=_("Collecting metrics"), file=sys.stderr, show_pos=True
            )
            self._bar.__enter__()
        self._bar.update(done - self._shown)
        self._shown = done
