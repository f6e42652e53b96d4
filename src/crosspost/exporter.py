"""Prometheus ``/metrics`` on a loopback address (``[metrics] listen``).

Two sources:

* **events** -- the publisher's and the daemon's log events, seen through an
  observer (:func:`crosspost.observability.add_observer`) whatever the log
  level: attempts by outcome, publish duration, lateness (how long after its
  due time a delivery was claimed), rate-limit waits, settled deliveries, alert
  mails. Counters of this process, as Prometheus expects; sum them over
  daemons in PromQL.
* **the database**, read when scraped (at most every few seconds): deliveries
  by state and account, the queue depth (waiting deliveries already due),
  paused accounts, token expiry times. These are the same whichever daemon is
  scraped.

Metric names and labels are a stable interface (docs/operations.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from crosspost import __version__
from crosspost.exceptions import ConfigError, CrosspostError
from crosspost.i18n import _
from crosspost.observability import EventLogger, add_observer
from crosspost.store.sql import SqlStore

log = EventLogger("crosspost.exporter")

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
LATENESS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
#: database gauges are read at most this often (seconds), however often Prometheus scrapes
DB_CACHE_S = 5.0
#: events whose delivery reached a state (the state label)
_SETTLED = {
    "published": "published",
    "failed": "failed",
    "unknown": "unknown",
    "retry_later": "retrying",
    "account_paused": "paused",
}


class _DatabaseCollector(Collector):
    def __init__(self, store: SqlStore, now: Callable[[], datetime]) -> None:
        self.store = store
        self.now = now
        self._lock = threading.Lock()
        self._cached: list[Metric] = []
        self._read_at = 0.0

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            if time.monotonic() - self._read_at >= DB_CACHE_S:
                self._cached = self._read()
                self._read_at = time.monotonic()
            return list(self._cached)

    def _read(self) -> list[Metric]:
        from crosspost.store.operations import OperationsStore

        ops = OperationsStore(self.store)
        error = GaugeMetricFamily(
            "crosspost_database_up", "1 if the last read of the database for /metrics worked"
        )
        try:
            by_state = ops.deliveries_by_state()
            due = ops.due_now(self.now())
            states = self.store.account_states()
        except CrosspostError as exc:
            log.warning("metrics_read_failed", error=exc.message)
            error.add_metric([], 0)
            return [error]
        error.add_metric([], 1)
        deliveries = GaugeMetricFamily(
            "crosspost_deliveries", "Deliveries by state and account", labels=["state", "account"]
        )
        for (state, account), n in sorted(by_state.items()):
            deliveries.add_metric([state, account], n)
        queue = GaugeMetricFamily(
            "crosspost_queue_due",
            "Waiting deliveries already due (scheduled or retrying), by account",
            labels=["account"],
        )
        for account, n in sorted(due.items()):
            queue.add_metric([account], n)
        paused = GaugeMetricFamily(
            "crosspost_account_paused",
            "1 if the account is paused because its credentials failed",
            labels=["account"],
        )
        blocked = GaugeMetricFamily(
            "crosspost_account_blocked_until_seconds",
            "Until when (Unix time) a platform asked to wait (rate limit), by account",
            labels=["account"],
        )
        budget = GaugeMetricFamily(
            "crosspost_account_rate_limit_remaining",
            "Requests left in the account's rate-limit window, as the platform last said "
            "(shared by all daemons), while that window is open",
            labels=["account"],
        )
        expiry = GaugeMetricFamily(
            "crosspost_token_expiry_timestamp_seconds",
            "When the account's token expires (Unix time), where known",
            labels=["account"],
        )
        for name, st in sorted(states.items()):
            paused.add_metric([name], 1 if st.paused_reason else 0)
            if st.blocked_until is not None:
                blocked.add_metric([name], st.blocked_until.timestamp())
            if st.token_expires_at is not None:
                expiry.add_metric([name], st.token_expires_at.timestamp())
            if st.budget is not None and st.budget.reset > self.now():
                budget.add_metric([name], st.budget.remaining)
        return [error, deliveries, queue, paused, blocked, budget, expiry]


class Exporter:
    """The registry, the event observer and (once :meth:`serve` is called) the HTTP server."""

    def __init__(self, store: SqlStore | None, *, now: Callable[[], datetime]) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.attempts = Counter(
            "crosspost_attempts",
            "Publish attempts by account and outcome",
            ["account", "outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "crosspost_publish_duration_seconds",
            "How long one publish request to the platform took",
            ["account"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.lateness = Histogram(
            "crosspost_publish_lateness_seconds",
            "How long after its due time a delivery was claimed for publishing",
            ["account"],
            buckets=LATENESS_BUCKETS,
            registry=registry,
        )
        self.rate_limited = Counter(
            "crosspost_rate_limit_waits",
            "Times a platform answered 'too many requests' and the account had to wait",
            ["account"],
            registry=registry,
        )
        self.settled = Counter(
            "crosspost_deliveries_settled",
            "Deliveries this daemon brought to a state, by account and state",
            ["account", "state"],
            registry=registry,
        )
        self.mails = Counter(
            "crosspost_alert_mails",
            "Alert mails by kind and result (sent, failed)",
            ["kind", "result"],
            registry=registry,
        )
        info = Gauge("crosspost_build_info", "The running version", ["version"], registry=registry)
        info.labels(__version__).set(1)
        if store is not None:
            registry.register(_DatabaseCollector(store, now))
        self._remove_observer = add_observer(self.observe)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def observe(self, event: str, fields: dict[str, Any]) -> None:
        """Count one log event; never raises (it runs on the publishing path)."""
        try:
            self._observe(event, fields)
        except Exception as exc:  # noqa: BLE001 - a metric must never break publishing
            log.debug("metrics_observe_failed", observed=event, error=repr(exc))

    def _observe(self, event: str, fields: dict[str, Any]) -> None:
        account = fields.get("account")
        if event == "claimed" and account is not None:
            self.lateness.labels(account).observe(max(0.0, fields.get("late_ms", 0) / 1000))
        elif event == "attempt_done" and account is not None:
            self.attempts.labels(account, "published").inc()
            self.duration.labels(account).observe(fields.get("ms", 0) / 1000)
        elif event == "attempt_failed" and account is not None:
            outcome = str(fields.get("outcome", "unknown"))
            self.attempts.labels(account, outcome).inc()
            if fields.get("ms") is not None:
                self.duration.labels(account).observe(fields["ms"] / 1000)
            if outcome == "rate_limited":
                self.rate_limited.labels(account).inc()
        elif event in ("alert_mailed", "alert_mail_failed"):
            result = "sent" if event == "alert_mailed" else "failed"
            self.mails.labels(str(fields.get("kind")), result).inc()
        if event in _SETTLED and account is not None:
            if event == "published" and fields.get("outcome") == "found":
                self.attempts.labels(account, "found").inc()
            if event != "account_paused" or fields.get("delivery") is not None:
                self.settled.labels(account, _SETTLED[event]).inc()

    def serve(self, host: str, port: int) -> tuple[str, int]:
        """Listen on ``host:port`` (port 0: any free one); return the address bound."""
        from prometheus_client import start_http_server

        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise ConfigError(
                _("metrics.listen: cannot listen on {host}:{port}: {reason}").format(
                    host=host, port=port, reason=exc.strerror or str(exc)
                )
            ) from None
        bound = self._server.server_address
        return str(bound[0]), int(bound[1])

    def close(self) -> None:
        self._remove_observer()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def families(text: str) -> Iterator[Any]:
    """Parse an exposition (for tests and ``crosspost`` tooling)."""
    from prometheus_client.parser import text_string_to_metric_families

    yield from text_string_to_metric_families(text)
