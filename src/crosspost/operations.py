"""The daemon's operations: alerts, retention and the metrics endpoint.

All of it runs beside publishing, never in its way: the alert rounds and the
pruning run in a thread of their own (with their own database connections),
the ``/metrics`` server in another, and the publisher only emits the log events
the exporter counts. A failure here is logged and tried again at the next round;
it never stops the daemon.

``daemon --once`` runs one round of alerts at its end instead, so a cron-driven
installation is told of failures too.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from crosspost.clock import Clock, system_clock
from crosspost.config import Settings
from crosspost.exceptions import CrosspostError
from crosspost.observability import EventLogger, register_secret

if TYPE_CHECKING:
    from crosspost.alerts import Alerts
    from crosspost.exporter import Exporter
    from crosspost.store.sql import SqlStore

log = EventLogger("crosspost.operations")
#: how often old attempts are pruned (seconds)
PRUNE_INTERVAL_S = 24 * 3600.0


class Operations:
    def __init__(
        self, settings: Settings, store: Any, *, clock: Clock = system_clock, once: bool = False
    ) -> None:
        from crosspost.store.sql import SqlStore

        self.settings = settings
        self.clock = clock
        self.once = once
        #: alerts and retention need the SQL store (a memory store in unit tests has neither)
        self.store: SqlStore | None = store if isinstance(store, SqlStore) else None
        self.alerts: Alerts | None = None
        self.exporter: Exporter | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pruned_at: float | None = None
        #: the daemon's own store (operations open a second one on the same database)
        self._shared: SqlStore | None = self.store

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Check the settings, open the metrics endpoint and start the thread.

        A missing SMTP password or a busy metrics port is a ConfigError now, at
        the start, rather than a surprise at the first alert.
        """
        from crosspost.alerts import Alerts, alerts_enabled

        smtp = self.settings.smtp
        if smtp is not None:
            password = smtp.password()
            if password is not None:
                register_secret(password.get_secret_value())
        if self.store is not None:
            self.store = self._own_store(self.store)
        if self.store is not None and alerts_enabled(self.settings):
            self.alerts = Alerts(self.settings, self.store)
        listen = self.settings.metrics
        if listen.listen is not None and not self.once:
            from crosspost.exporter import Exporter

            self.exporter = Exporter(self.store, now=self.clock.now)
            host, port = self.exporter.serve(*listen.address)
            log.info("metrics_listening", address=f"{host}:{port}", path="/metrics")
        if self.once or self.store is None:
            return
        if self.alerts is None and not self.settings.retention.attempts_days:
            return
        self._thread = threading.Thread(target=self._loop, name="operations", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and the endpoint; with ``once``, run the final alert round."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self.once:
            self.round()
        if self.exporter is not None:
            self.exporter.close()
        if self.store is not None and self.store is not self._shared:
            self.store.close()

    def _own_store(self, store: SqlStore) -> SqlStore:
        """Connections of our own: a scrape or an alert round never waits for (or takes)
        one of the pool the publishing threads use. An in-memory database is shared."""
        from crosspost.store.sql import SqlStore, sqlite_path

        self._shared = store
        if store.is_sqlite and sqlite_path(store.url) is None:
            return store
        return SqlStore(store.url)

    # -- the rounds ------------------------------------------------------------------------
    def _loop(self) -> None:
        interval = self.settings.alerts.interval if self.alerts is not None else 3600.0
        # The first round waits a little, so the daemon has reconciled what a restart left.
        while not self._stop.wait(min(interval, 5.0) if self._pruned_at is None else interval):
            self.round()

    def round(self) -> None:
        now = self.clock.now()
        if self.alerts is not None:
            try:
                self.alerts.run(now)
            except CrosspostError as exc:
                log.error("alerts_failed", error=exc.message)
            except Exception as exc:  # operations never stop the daemon
                log.error("alerts_failed", error=repr(exc), exc_info=exc)
        if not self.once:
            self.prune_if_due(now)

    def prune_if_due(self, now: datetime) -> None:
        import time

        days = self.settings.retention.attempts_days
        if self.store is None or not days:
            self._pruned_at = self._pruned_at or time.monotonic()
            return
        if self._pruned_at is not None and time.monotonic() - self._pruned_at < PRUNE_INTERVAL_S:
            return
        self._pruned_at = time.monotonic()
        from crosspost.store.operations import OperationsStore

        try:
            pruned = OperationsStore(self.store).prune(now - timedelta(days=days))
        except CrosspostError as exc:
            log.error("prune_failed", error=exc.message)
            return
        if pruned.attempts or pruned.events:
            log.info("pruned", attempts=pruned.attempts, alert_events=pruned.events, days=days)
