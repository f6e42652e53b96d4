"""Prometheus ``/metrics`` (crosspost.exporter): served on 127.0.0.1, scraped over
HTTP and parsed as the exposition format; counters from the daemon's events, gauges
from the database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from tests.contract.test_store import NOW, claim, enqueue

from crosspost.exporter import Exporter, families
from crosspost.models import Budget, DeliveryState
from crosspost.observability import EventLogger
from crosspost.store.sql import SqlStore


@pytest.fixture
def exporter(sql_store: SqlStore) -> Iterator[Exporter]:
    exporter = Exporter(sql_store, now=lambda: NOW + timedelta(minutes=1))
    try:
        yield exporter
    finally:
        exporter.close()


def scrape(exporter: Exporter) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    host, port = exporter.serve("127.0.0.1", 0)
    response = httpx.get(f"http://{host}:{port}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in families(response.text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[labels] = sample.value
    return samples


def test_metrics_from_events_and_the_database(sql_store: SqlStore, exporter: Exporter) -> None:
    """The publisher's events become attempts by outcome, publish duration and
    lateness histograms, rate-limit waits and settled deliveries; the database gives
    deliveries by state and account, the queue depth and paused accounts."""
    log = EventLogger("crosspost.publisher")
    log.debug("claimed", delivery=1, account="mastodon", late_ms=250)
    log.debug("attempt_done", delivery=1, account="mastodon", attempt=1, ms=420)
    log.info("published", delivery=1, post=1, account="mastodon", attempt=1, outcome="published")
    log.info(
        "attempt_failed",
        delivery=2,
        account="bluesky",
        attempt=1,
        outcome="rate_limited",
        http_status=429,
        ms=80,
    )
    log.info("retry_later", delivery=2, account="bluesky", attempt=1, http_status=429)
    log.info("attempt_failed", delivery=3, account="mastodon", outcome="rejected", ms=60)
    log.error("failed", delivery=3, post=3, account="mastodon", attempt=1, http_status=422)

    enqueue(sql_store, "mastodon", "bluesky", due_at=NOW)
    failed_post = enqueue(sql_store, "website", due_at=NOW)
    [website] = [d for d in claim(sql_store) if d.post_id == failed_post]
    assert sql_store.settle(website, DeliveryState.FAILED, now=NOW, error="x")
    sql_store.pause_account("bluesky", "401", now=NOW)

    samples = scrape(exporter)
    attempts = samples["crosspost_attempts_total"]
    assert attempts[(("account", "mastodon"), ("outcome", "published"))] == 1
    assert attempts[(("account", "bluesky"), ("outcome", "rate_limited"))] == 1
    assert attempts[(("account", "mastodon"), ("outcome", "rejected"))] == 1
    assert samples["crosspost_rate_limit_waits_total"][(("account", "bluesky"),)] == 1
    duration = samples["crosspost_publish_duration_seconds_bucket"]
    assert duration[(("account", "mastodon"), ("le", "0.5"))] == 2  # 0.42 s and 0.06 s
    assert duration[(("account", "mastodon"), ("le", "0.25"))] == 1
    lateness = samples["crosspost_publish_lateness_seconds_bucket"]
    assert lateness[(("account", "mastodon"), ("le", "0.25"))] == 1
    assert lateness[(("account", "mastodon"), ("le", "0.1"))] == 0
    settled = samples["crosspost_deliveries_settled_total"]
    assert settled[(("account", "mastodon"), ("state", "published"))] == 1
    assert settled[(("account", "mastodon"), ("state", "failed"))] == 1
    assert settled[(("account", "bluesky"), ("state", "retrying"))] == 1

    deliveries = samples["crosspost_deliveries"]
    # claim() took both due deliveries; mastodon's and bluesky's were claimed to publishing
    states = {dict(k)["account"]: (dict(k)["state"], v) for k, v in deliveries.items()}
    assert states["website"] == ("failed", 1.0)  # sample values are floats
    assert samples["crosspost_account_paused"][(("account", "bluesky"),)] == 1
    assert samples["crosspost_database_up"][()] == 1
    assert samples["crosspost_build_info"]


def test_queue_depth_counts_due_waiting_deliveries(sql_store: SqlStore, exporter: Exporter) -> None:
    enqueue(sql_store, "mastodon", due_at=NOW)
    enqueue(sql_store, "mastodon", due_at=NOW)
    enqueue(sql_store, "mastodon", due_at=NOW + timedelta(hours=1))  # not due yet
    samples = scrape(exporter)
    assert samples["crosspost_queue_due"][(("account", "mastodon"),)] == 2
    assert samples["crosspost_deliveries"][(("account", "mastodon"), ("state", "scheduled"))] == 3


def test_metrics_listen_refuses_a_public_address() -> None:
    """Only loopback: anything else is a configuration error naming the key."""
    from pydantic import ValidationError

    from crosspost.config import MetricsConfig

    with pytest.raises(ValidationError, match="loopback"):
        MetricsConfig(listen="0.0.0.0:9464")
    assert MetricsConfig(listen="[::1]:9464").address == ("::1", 9464)


def test_a_busy_port_is_a_config_error(exporter: Exporter) -> None:
    from crosspost.exceptions import ConfigError

    host, port = exporter.serve("127.0.0.1", 0)
    other = Exporter(None, now=lambda: NOW)
    try:
        with pytest.raises(ConfigError, match=rf"metrics\.listen: cannot listen on {host}:{port}"):
            other.serve(host, port)
    finally:
        other.close()


def test_an_observer_error_never_reaches_the_publisher(exporter: Exporter) -> None:
    """A malformed event (a non-numeric duration) is swallowed, not raised."""
    log = EventLogger("crosspost.publisher")
    log.debug("attempt_done", account="x", ms="not a number")
    log.debug("attempt_done", account="x", ms=100)
    samples = scrape(exporter)
    assert samples["crosspost_publish_duration_seconds_count"][(("account", "x"),)] == 1


def test_the_shared_rate_limit_budget_is_a_gauge_while_its_window_is_open(
    sql_store: SqlStore, exporter: Exporter
) -> None:
    """What the platform last said is left (``account_state``, written with a settlement)
    is ``crosspost_account_rate_limit_remaining``; a budget whose window has closed
    (the exporter's clock is NOW + 1 min) is not shown, a used-up one is 0 and blocks."""
    post = enqueue(sql_store, "mastodon", "bluesky", "website", due_at=NOW)
    claimed = {d.account: d for d in claim(sql_store) if d.post_id == post}
    window = NOW + timedelta(minutes=5)
    assert sql_store.settle(
        claimed["mastodon"], DeliveryState.PUBLISHED, now=NOW, budget=Budget(7, window)
    )
    assert sql_store.settle(
        claimed["bluesky"], DeliveryState.PUBLISHED, now=NOW, budget=Budget(0, window)
    )
    assert sql_store.settle(
        claimed["website"],
        DeliveryState.PUBLISHED,
        now=NOW,
        budget=Budget(3, NOW + timedelta(seconds=30)),
    )
    samples = scrape(exporter)
    assert samples["crosspost_account_rate_limit_remaining"] == {
        (("account", "mastodon"),): 7,
        (("account", "bluesky"),): 0,
    }
    blocked = samples["crosspost_account_blocked_until_seconds"]
    assert blocked == {(("account", "bluesky"),): window.timestamp()}
