"""The scheduler: wake at the next due time, claim, publish, and keep leases alive.

APScheduler 3 (in memory) only decides *when to look*; the database is the only
state. Jobs:

``wake``       a date job armed at the earliest due time, re-armed after every
               claim and whenever the database changed
``watch``      polls a cheap change marker (SQLite's ``PRAGMA data_version``) so
               a post the CLI enqueues for "now" is seen within ``poll_interval``;
               on PostgreSQL a ``LISTEN`` task is woken by the enqueue's
               ``NOTIFY`` instead, and ``watch`` is only its slow fallback
               (every ``listen_fallback_interval``, 5 s)
``leases``     extends the leases of in-flight deliveries, reaps expired ones,
               and writes this daemon's heartbeat
``watchdog``   ``WATCHDOG=1`` to systemd at half of ``WatchdogSec=``
``resume``     checks paused accounts' credentials again
``inbox``      fetches replies, mentions and comments (issue 9; :mod:`crosspost.inbox`)
``privacy``    deletes interactions past ``privacy.retention_days``

SIGTERM/SIGINT: stop claiming, let in-flight requests finish (up to a grace
period), release what waits between attempts, tell systemd ``STOPPING=1``,
and exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import secrets
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from crosspost import __version__, sdnotify
from crosspost.adapters.base import Adapter, build_adapter
from crosspost.clock import Clock, system_clock
from crosspost.config import Settings
from crosspost.exceptions import AuthError, PlatformError, StoreError
from crosspost.groupcommit import GroupCommit
from crosspost.i18n import _
from crosspost.media import (
    copy_public_media,
    fetches_public_media,
    media_published,
    public_media_urls,
)
from crosspost.models import Delivery, DeliveryState, Media
from crosspost.observability import EventLogger, register_secret
from crosspost.operations import Operations
from crosspost.policy import daemon_due_rule
from crosspost.publisher import Publisher
from crosspost.retry import RetryPolicy
from crosspost.store.base import ChangeFeed, Claim, DaemonInfo, Settlement, Store

T = TypeVar("T")
log = EventLogger("crosspost.daemon")
#: how long in-flight requests may take to finish after SIGTERM
STOP_GRACE_S = 20.0
#: how long a thread may hold the GIL while another waits for it (Python's default: 5 ms).
#: The database thread gives the GIL up on every SQLite/libpq call and must get it back
#: from the event loop; at 5 ms per hand-over a busy loop starved it (bench/README.md).
SWITCH_INTERVAL_S = 0.0005
#: pauses before listening again after the LISTEN connection failed (doubling up to the max)
LISTEN_RETRY_S = (1.0, 30.0)


def _file_identity(url: str | None) -> tuple[Path, int, int] | None:
    """The SQLite file behind ``url`` with its device and inode (None: not SQLite on disk)."""
    if url is None or not url.startswith("sqlite"):
        return None
    from crosspost.store.sql import sqlite_path

    path = sqlite_path(url)
    if path is None:
        return None
    try:
        found = path.stat()
    except OSError:
        return None
    return path.absolute(), found.st_dev, found.st_ino


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_crosspost(pid: int) -> bool:
    """Whether a live pid is a crosspost process (and not a reused pid)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return b"crosspost" in handle.read()
    except OSError:
        return _pid_alive(pid)


@contextlib.contextmanager
def signal_handlers(loop: asyncio.AbstractEventLoop, stop: Callable[[], None]) -> Iterator[None]:
    """SIGTERM and SIGINT call ``stop``; tests can run without this."""
    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


class Daemon:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        clock: Clock = system_clock,
        once: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
        adapters: dict[str, Adapter] | None = None,
        handle_signals: bool = True,
        db_threads: int = 1,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.once = once
        self.handle_signals = handle_signals
        self.host = socket.gethostname()
        self.worker = f"{self.host}:{os.getpid()}:{secrets.token_hex(3)}"
        self.started_at = clock.now()
        self.adapters = adapters if adapters is not None else self._build_adapters(transport)
        self.capacity = {
            name: (settings.accounts[name].concurrency or settings.daemon.concurrency)
            for name in self.adapters
        }
        self.reconcilable = {
            a.config.platform
            for a in self.adapters.values()
            if a.idempotent_resend or a.can_reconcile
        }
        self.in_flight: dict[int, Delivery] = {}
        self.per_account: dict[str, int] = dict.fromkeys(self.adapters, 0)
        self.tasks: set[asyncio.Task[None]] = set()
        self.outcomes: dict[DeliveryState, int] = {}
        #: claim transactions that leased something (with settler.batches: bench/README.md)
        self.claims = 0
        #: the instant the last claim looked for due deliveries (see _arm)
        self._claimed_up_to: datetime | None = None
        #: a database failure that stops the daemon; ``run`` raises it after the shutdown
        self.fatal: StoreError | None = None
        #: the SQLite file's identity when the daemon started (see _check_database)
        self._database_file: tuple[Path, int, int] | None = None
        self.stopping = asyncio.Event()
        self._kick = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=db_threads, thread_name_prefix="db")
        self._marker: int | None = None
        self._scheduler: AsyncIOScheduler | None = None
        self._listener: asyncio.Task[None] | None = None
        self.publisher = Publisher(
            store,
            self.adapters,
            clock=clock,
            policy=RetryPolicy(
                base=settings.daemon.backoff_base,
                maximum=settings.daemon.backoff_max,
                max_attempts=settings.daemon.max_attempts,
            ),
            max_inline_wait=settings.daemon.max_inline_wait,
            db=self.db,
            stopping=self.stopping,
            # a request the platform still holds when the client gives up lands within
            # about one more timeout; a lookup before that could miss it
            landing_window=2 * settings.daemon.http_timeout,
        )
        self.publisher.media_urls = self._media_urls
        # retries, rate-limit waits and resumed accounts keep the quiet hours
        self.publisher.due_rule = daemon_due_rule(settings)
        self.publisher.hold_quiet = self._hold_quiet
        #: alerts, retention and /metrics, beside publishing (crosspost.operations)
        self.operations = Operations(settings, store, clock=clock, once=once)
        #: finished deliveries are settled by group commit (see crosspost.groupcommit)
        self.settler: GroupCommit[Settlement, bool] = GroupCommit(
            self.store.finish_and_settle, self.db
        )
        self.publisher.finish = self.settler.submit
        self.publisher.requests_done = self._free_slot
        #: deliveries whose account slot was freed before their settlement was written
        self._freed: set[int] = set()

    def _build_adapters(self, transport: httpx.AsyncBaseTransport | None) -> dict[str, Adapter]:
        if transport is None:
            from crosspost.adapters._http import warm_up

            warm_up()  # at start, not at the first delivery's request
        adapters = {}
        for name in self.settings.enabled_accounts():
            adapter = build_adapter(name, self.settings, transport=transport)
            if adapter._secret is not None:
                register_secret(adapter._secret.get_secret_value())
            adapters[name] = adapter
        return adapters

    def _hold_quiet(self, account: str, at: datetime, now: datetime) -> None:
        """The account can publish again from ``at``: its deliveries keep the quiet hours."""
        from crosspost.workflow import hold_for_quiet_hours

        moved = hold_for_quiet_hours(self.settings, self.store, account, at, now=now)
        if moved:
            log.info(
                "quiet_hours_hold",
                account=account,
                deliveries=len(moved),
                due_at=min(moved.values()).isoformat(timespec="seconds"),
            )

    def _media_urls(self, platform: str, post_id: int, media: tuple[Media, ...]) -> tuple[str, ...]:
        if not media or not fetches_public_media(platform):
            return ()
        try:
            # [media] path without a website feed: the daemon puts the files there itself
            copy_public_media(self.settings, post_id, media)
        except OSError as exc:
            log.warning("media_copy_failed", post=post_id, error=exc.strerror or str(exc))
            return ()  # the adapter waits for the website, and the delivery is retried
        if not media_published(self.settings, post_id, media):
            return ()
        return public_media_urls(self.settings, post_id, media)

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    # -- lifecycle ---------------------------------------------------------------------
    async def run(self) -> int:
        """Run until stopped (or, with ``once``, until nothing due is left); the exit code."""
        loop = asyncio.get_running_loop()
        guard = (
            signal_handlers(loop, self.stop) if self.handle_signals else contextlib.nullcontext()
        )
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(switch_interval, SWITCH_INTERVAL_S))
        try:
            with guard:
                await self._start()
                if self.once:
                    await self._run_once()
                else:
                    await self._run_forever()
        finally:
            await self._shutdown()
            sys.setswitchinterval(switch_interval)
        if self.fatal is not None:
            raise self.fatal
        return self._exit_code()

    def _fail(self, error: StoreError) -> None:
        """The database failed under a background job: stop, and let ``run`` raise it."""
        log.error("database_failed", worker=self.worker, error=error.message)
        if self.fatal is None:
            self.fatal = error
        self.stop()

    def _guarded(self, job: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """A scheduler job whose database failure stops the daemon, and whose cancellation at
        shutdown is quiet (APScheduler would log either with a traceback)."""

        async def run_job() -> None:
            try:
                await job()
            except StoreError as error:
                self._fail(error)
            except asyncio.CancelledError:
                # The scheduler's shutdown cancels a job under way: expected, not an error.
                if not self.stopping.is_set():
                    raise

        return run_job

    def stop(self) -> None:
        if not self.stopping.is_set():
            log.info("stopping", worker=self.worker, in_flight=len(self.in_flight))
            sdnotify.notify("STOPPING=1")
            self.stopping.set()
            self._kick.set()

    async def _start(self) -> None:
        await self.db(self.store.check_schema)
        self._database_file = _file_identity(getattr(self.store, "url", None))
        await self._take_over_dead_predecessors()
        await self.db(self.store.reap_expired, now=self.clock.now())
        await self._heartbeat()
        for name, adapter in self.adapters.items():
            try:
                await adapter.open()
            except AuthError as error:
                await self.db(self.store.pause_account, name, error.message, now=self.clock.now())
                log.error("account_paused", account=name, error=error.message)
            except PlatformError as error:
                log.warning("account_open_failed", account=name, error=error.message)
            else:
                limit = adapter.text_limit()
                if limit is not None:
                    await self.db(self.store.set_text_limit, name, limit, now=self.clock.now())
                expires = adapter.token_expires_at()
                if expires is not None:
                    await self.db(self.store.set_token_expiry, name, expires, now=self.clock.now())
                    if expires - self.clock.now() <= timedelta(
                        days=self.settings.daemon.token_expiry_warning_days
                    ):
                        log.warning("token_expiring", account=name, expires_at=expires.isoformat())
        await self._check_paused_accounts()
        await self._materialise()
        self.operations.start()
        log.info(
            "started",
            worker=self.worker,
            version=__version__,
            accounts=",".join(self.adapters) or "-",
            once=self.once or None,
        )

    async def _take_over_dead_predecessors(self) -> None:
        """A daemon restarted on this host takes over its dead predecessor's work at once."""
        for other in await self.db(self.store.daemons):
            if other.host != self.host or other.worker == self.worker:
                continue
            if _pid_alive(other.pid) and _is_crosspost(other.pid):
                continue
            taken = await self.db(
                self.store.reap_expired, now=self.clock.now(), worker=other.worker
            )
            await self.db(self.store.remove_daemon, other.worker)
            log.info("took_over", dead_worker=other.worker, deliveries=taken)

    async def _shutdown(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self.tasks:
            _done, pending = await asyncio.wait(self.tasks, timeout=STOP_GRACE_S)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        await self.settler.drain()
        for adapter in self.adapters.values():
            with contextlib.suppress(Exception):
                await adapter.aclose()
        with contextlib.suppress(Exception):
            await self.db(self.store.remove_daemon, self.worker)
        await asyncio.to_thread(self.operations.stop)
        self._executor.shutdown(wait=True)
        log.info(
            "stopped",
            worker=self.worker,
            claims=self.claims or None,
            settle_batches=self.settler.batches or None,
            settled=self.settler.items or None,
        )

    def _exit_code(self) -> int:
        """``--once``: 1 if anything failed, is unknown, or an account had to be paused."""
        if not self.once:
            return 0
        bad = self.outcomes.get(DeliveryState.FAILED, 0) + self.outcomes.get(
            DeliveryState.UNKNOWN, 0
        )
        unknown_left = self.store.counts().get(DeliveryState.UNKNOWN, 0)
        paused = any(
            state.paused_reason and name in self.adapters
            for name, state in self.store.account_states().items()
        )
        return 1 if bad or unknown_left or paused else 0

    # -- the loops ---------------------------------------------------------------------
    async def _run_once(self) -> None:
        looked_again = False
        while not self.stopping.is_set():
            self._kick.clear()
            claimed = await self._claim()
            if not claimed and not self.tasks:
                if looked_again:
                    break
                # Before stopping, the accounts' states as they are now: a claim leaves
                # out an account whose rate-limit budget another daemon recorded since
                # this one last looked (crosspost.store.sql, SqlStore._claim).
                await self.db(self.store.account_states)
                looked_again = True
                continue
            looked_again = looked_again and not claimed
            if not claimed:
                # a freed slot or a finished task kicks (a slot frees before its
                # delivery's settlement is written: see _free_slot)
                await self._kick.wait()

    async def _run_forever(self) -> None:
        self._scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
        daemon = self.settings.daemon
        feed = self.store.change_feed()
        poll = daemon.poll_interval
        if feed is not None:
            poll = daemon.listen_fallback_interval
            self._listener = asyncio.create_task(self._listen(feed), name="listen")
            await asyncio.sleep(0)  # LISTEN before READY=1, whatever the threads do meanwhile
        self._scheduler.add_job(
            self._guarded(self._watch), "interval", seconds=poll, id="watch", max_instances=1
        )
        self._scheduler.add_job(
            self._guarded(self._leases),
            "interval",
            seconds=max(0.5, daemon.lease_seconds / 3),
            id="leases",
            max_instances=1,
        )
        self._scheduler.add_job(
            self._guarded(self._check_paused_accounts),
            "interval",
            seconds=daemon.resume_check_interval,
            id="resume",
            max_instances=1,
        )
        self._scheduler.add_job(
            self._guarded(self._materialise),
            "interval",
            seconds=self.settings.recurrence.interval_seconds,
            id="recurrence",
            max_instances=1,
        )
        if self.settings.evaluation.collect:
            # the yearly evaluation's figures (issue 7): a job of its own, never in the way
            # of publishing; the first run soon after start, so frequent restarts don't starve it
            self._scheduler.add_job(
                self._guarded(self._collect_metrics),
                "interval",
                seconds=self.settings.evaluation.interval,
                id="evaluation",
                max_instances=1,
                coalesce=True,
                next_run_time=datetime.now().astimezone() + timedelta(seconds=30),
            )
        self._add_inbox_jobs(self._scheduler)
        interval = sdnotify.watchdog_interval()
        if interval:
            self._scheduler.add_job(self._watchdog, "interval", seconds=interval, id="watchdog")
        self._scheduler.start()
        sdnotify.notify("READY=1\nSTATUS=publishing")
        self._kick.set()
        while not self.stopping.is_set():
            await self._kick.wait()
            self._kick.clear()
            if self.stopping.is_set():
                break
            while await self._claim():
                pass
            await self._arm()

    async def _claim(self) -> int:
        free = {a: self.capacity[a] - self.per_account[a] for a in self.adapters}
        if self.stopping.is_set() or not any(n > 0 for n in free.values()):
            return 0
        # The claim writes each delivery's first attempt and reads its post in the
        # same transaction (one round trip instead of three per delivery).
        self._claimed_up_to = self.clock.now()
        claimed: list[Claim] = await self.db(
            self.store.claim_and_start,
            self.worker,
            now=self._claimed_up_to,
            lease=timedelta(seconds=self.settings.daemon.lease_seconds),
            capacity=free,
            reconcilable=self.reconcilable,
        )
        claimed_at = self.clock.now()
        self.claims += bool(claimed)
        for claim in claimed:
            delivery = claim.delivery
            self.in_flight[delivery.id] = delivery
            self.per_account[delivery.account] += 1
            late = (claimed_at - delivery.due_at).total_seconds()
            log.debug(
                "claimed", delivery=delivery.id, account=delivery.account, late_ms=int(late * 1000)
            )
            task = asyncio.create_task(self._publish(claim), name=f"delivery-{delivery.id}")
            self.tasks.add(task)
        return len(claimed)

    async def _publish(self, claim: Claim) -> None:
        delivery = claim.delivery
        try:
            state = await self.publisher.publish(delivery, post=claim.post, attempt=claim.attempt)
            if state is not None:
                self.outcomes[state] = self.outcomes.get(state, 0) + 1
        except StoreError as error:  # the database, not the delivery, is broken
            self._fail(error)
        except Exception as exc:  # one broken delivery must not stop the daemon
            log.error("publish_crashed", delivery=delivery.id, error=repr(exc), exc_info=exc)
        finally:
            self.in_flight.pop(delivery.id, None)
            self._free_slot(delivery)
            self._freed.discard(delivery.id)
            task = asyncio.current_task()
            if task is not None:
                self.tasks.discard(task)
            self._kick.set()

    def _free_slot(self, delivery: Delivery) -> None:
        """The account's slot is free once no more requests of this delivery can follow.

        The publisher calls this before it writes the final settlement, so the next
        claim overlaps that write; the lease stays extended (``in_flight``) until the
        settlement is committed, and the capacity still bounds the requests in flight.
        """
        if delivery.id not in self._freed:
            self._freed.add(delivery.id)
            self.per_account[delivery.account] -= 1
            self._kick.set()

    async def _arm(self) -> None:
        """Arm the wake-up at the earliest due time among accounts with free capacity."""
        if self._scheduler is None or self.stopping.is_set():
            return
        open_accounts = [a for a in self.adapters if self.per_account[a] < self.capacity[a]]
        if not open_accounts:
            return  # a finishing task kicks us
        # A paused account's due deliveries must not set the wake-up (its resumption
        # kicks the loop), nor a blocked one's before the block ends: either would
        # re-arm "due now" and hold back the other accounts' later posts.
        now = self.clock.now()
        states = await self.db(self.store.account_states)
        block_ends: list[datetime] = []
        for name in list(open_accounts):
            state = states.get(name)
            if state is None:
                continue
            if state.paused_reason is not None:
                open_accounts.remove(name)
            elif state.blocked_until is not None and state.blocked_until > now:
                open_accounts.remove(name)
                block_ends.append(state.blocked_until)
        due: datetime | None = None
        if open_accounts:
            due = await self.db(
                self.store.next_due, accounts=open_accounts, reconcilable=self.reconcilable
            )
        due = min([d for d in (due, *block_ends) if d is not None], default=None)
        if due is None:
            self._remove_wake()
            return
        if due <= now:
            if self._claimed_up_to is not None and due > self._claimed_up_to:
                # It fell due after the last claim looked (posts due in quick
                # succession): claim it now, not a back-off later.
                self._kick.set()
                return
            # Due but not claimable (account paused or rate-limited): look again shortly.
            due = now + timedelta(seconds=self.settings.daemon.poll_interval * 5)
        self._scheduler.add_job(
            self._wake,
            DateTrigger(run_date=due),
            id="wake",
            replace_existing=True,
            misfire_grace_time=None,
        )

    def _remove_wake(self) -> None:
        if self._scheduler is not None:
            with contextlib.suppress(Exception):
                self._scheduler.remove_job("wake")

    async def _wake(self) -> None:
        self._kick.set()

    async def _watch(self) -> None:
        marker = await self.db(self.store.change_marker)
        if marker != self._marker:
            self._marker = marker
            self._kick.set()

    async def _listen(self, feed: ChangeFeed) -> None:
        """Kick the claim loop on every notification; listen again when the connection drops.

        Meanwhile the ``watch`` job's slow polling keeps the daemon going.
        """
        pause, longest = LISTEN_RETRY_S
        while not self.stopping.is_set():
            try:
                await feed.listen(self._on_change)
            except StoreError as error:
                log.warning("listen_failed", error=error.message, retry_in=pause)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=pause)
            pause = min(pause * 2, longest)

    def _on_change(self) -> None:
        self._kick.set()

    def _check_database(self) -> None:
        """Raise StoreError if the SQLite file was deleted or replaced since the start.

        The daemon's open connections would go on writing into the old file, which
        nobody else reads any more: whatever it published would be lost to the queue.
        """
        if self._database_file is None:
            return
        path, device, inode = self._database_file
        try:
            now = path.stat()
        except FileNotFoundError:
            now = None
        if now is None or (now.st_dev, now.st_ino) != (device, inode):
            raise StoreError(
                _(
                    "the database {path} was deleted or replaced while the daemon ran; "
                    "it stops rather than write into a file nobody reads"
                ).format(path=path)
            )

    async def _leases(self) -> None:
        self._check_database()
        now = self.clock.now()
        lease = timedelta(seconds=self.settings.daemon.lease_seconds)
        await self.db(
            self.store.extend_leases, self.worker, list(self.in_flight), now=now, lease=lease
        )
        reaped = await self.db(self.store.reap_expired, now=now)
        if reaped:
            log.warning("reaped", deliveries=reaped)
            self._kick.set()
        await self._heartbeat()

    async def _heartbeat(self) -> None:
        await self.db(
            self.store.heartbeat,
            DaemonInfo(
                worker=self.worker,
                host=self.host,
                pid=os.getpid(),
                version=__version__,
                started_at=self.started_at,
                heartbeat_at=self.clock.now(),
                in_hand=len(self.in_flight),
            ),
        )

    def _add_inbox_jobs(self, scheduler: AsyncIOScheduler) -> None:
        """Issue 9: fetch interactions, and delete those past privacy.retention_days."""
        from crosspost.store.inbox import SqlInbox

        engine = getattr(self.store, "engine", None)
        if engine is None:  # the in-memory store of unit tests keeps no inbox
            return
        inbox = SqlInbox(engine)
        # not at once: the first minute after a start belongs to publishing what is due
        first = min(self.settings.inbox.sync_interval, 60.0)
        soon = datetime.now().astimezone() + timedelta(seconds=first)
        if self.settings.inbox.enabled and any(
            a.inbox_enabled(a.config) for a in self.adapters.values()
        ):

            async def fetch() -> None:
                from crosspost.inbox import inbox_job

                states = await self.db(self.store.account_states)
                paused = {n for n, st in states.items() if st.paused_reason}
                await inbox_job(
                    inbox, self.adapters, self.settings, worker=self.worker, paused=paused,
                    clock=self.clock, db=self.db,
                )  # fmt: skip

            scheduler.add_job(
                self._guarded(fetch),
                "interval",
                seconds=self.settings.inbox.sync_interval,
                id="inbox",
                max_instances=1,
                coalesce=True,
                next_run_time=soon,
            )

        async def purge() -> None:
            from crosspost.inbox import purge as run_purge

            deleted = await self.db(run_purge, inbox, self.settings, clock=self.clock)
            if deleted:
                log.info("interactions_purged", deleted=deleted)

        scheduler.add_job(
            self._guarded(purge),
            "interval",
            seconds=self.settings.privacy.purge_interval,
            id="privacy",
            max_instances=1,
            coalesce=True,
            next_run_time=soon,
        )

    async def _watchdog(self) -> None:
        sdnotify.notify("WATCHDOG=1")

    async def _collect_metrics(self) -> None:
        from crosspost.sampling import collect
        from crosspost.store.metrics import EvaluationStore
        from crosspost.store.sql import SqlStore

        if isinstance(self.store, SqlStore):
            await collect(self.settings, EvaluationStore(self.store), clock=self.clock, db=self.db)

    async def _materialise(self) -> None:
        """Recurring posts: make the coming occurrences posts (idempotent across daemons)."""
        from crosspost.service import Crosspost
        from crosspost.workflow import Workflow

        flow = Workflow(Crosspost(self.settings, self.store, clock=self.clock), actor=self.worker)
        created = await self.db(flow.materialise, self.worker)
        if created:
            log.info("occurrences_created", posts=",".join(str(i) for i in created))
            self._kick.set()

    async def _check_paused_accounts(self) -> None:
        states = await self.db(self.store.account_states)
        for name, state in states.items():
            adapter = self.adapters.get(name)
            if adapter is None or state.paused_reason is None:
                continue
            try:
                await adapter.verify()
            except PlatformError as error:
                log.info("account_still_paused", account=name, error=error.message)
                continue
            now = self.clock.now()
            await self.db(self.store.resume_account, name, now=now)
            log.info("account_resumed", account=name)
            await self.db(self._hold_quiet, name, now, now)
            self._kick.set()
