"""``status --check``'s verdict (crosspost.health) on a real database, SQLite and
PostgreSQL: each check, its thresholds, the line and the perfdata."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.contract.test_store import NOW, claim, enqueue, only
from tests.rawsettings import settings_from

from crosspost.config import Settings
from crosspost.health import Level, evaluate
from crosspost.models import DeliveryState
from crosspost.store.base import DaemonInfo
from crosspost.store.sql import SqlStore

SITE = "https://www.zv-staedtedreieck.de"


def settings(**check: Any) -> Settings:
    return settings_from(
        site={"url": SITE},
        accounts={
            "mastodon": {"platform": "mastodon", "base_url": "https://social.example"},
            "website": {"platform": "feed", "path": "site"},
        },
        check=check,
    )


def beat(store: SqlStore, at: Any) -> None:
    store.heartbeat(
        DaemonInfo(
            worker="host:1:abc",
            host="host",
            pid=1,
            version="1",
            started_at=NOW,
            heartbeat_at=at,
            in_hand=0,
        )
    )


def levels(store: SqlStore, now: Any = NOW, **check: Any) -> dict[str, Level]:
    health = evaluate(settings(**check), store, now)
    return {c.name: c.level for c in health.checks}


def test_all_well_is_ok_with_perfdata(sql_store: SqlStore) -> None:
    """A fresh heartbeat, nothing late, failed, unknown or paused: OK, exit code 0,
    one line with perfdata."""
    beat(sql_store, NOW - timedelta(seconds=5))
    health = evaluate(settings(), sql_store, NOW)
    assert health.level is Level.OK
    line = health.line()
    assert line.startswith("CROSSPOST OK - ")
    assert "\n" not in line
    assert " | heartbeat=5s;120;600 late=0s;300;1800 failed=0;;1 unknown=0;;1 paused=0;;1" in line


def test_no_daemon_is_critical(sql_store: SqlStore) -> None:
    health = evaluate(settings(), sql_store, NOW)
    assert health.level is Level.CRITICAL
    assert "no daemon is running" in health.line()


def test_heartbeat_age_thresholds(sql_store: SqlStore) -> None:
    beat(sql_store, NOW - timedelta(seconds=200))
    assert levels(sql_store)["heartbeat"] is Level.WARNING
    assert levels(sql_store, heartbeat_warning_seconds=300)["heartbeat"] is Level.OK
    assert levels(sql_store, heartbeat_critical_seconds=150)["heartbeat"] is Level.CRITICAL


def test_a_failed_delivery_is_critical_within_the_window(sql_store: SqlStore) -> None:
    """One failed delivery: CRITICAL (the default), naming the account; after
    failed_window_hours it no longer counts; thresholds are configurable."""
    beat(sql_store, NOW)
    post_id = enqueue(sql_store, "mastodon")
    claimed = only(claim(sql_store))
    assert sql_store.settle(claimed, DeliveryState.FAILED, now=NOW, error="422")
    health = evaluate(settings(), sql_store, NOW)
    assert health.level is Level.CRITICAL
    assert health.line().startswith("CROSSPOST CRITICAL - 1 delivery failed within 24 h (mastodon)")
    assert post_id
    assert levels(sql_store, failed_warning=1, failed_critical=3)["failed"] is Level.WARNING
    assert levels(sql_store, failed_critical=0)["failed"] is Level.OK
    assert levels(sql_store, NOW + timedelta(hours=25))["failed"] is Level.OK


def test_unknown_late_and_paused(sql_store: SqlStore) -> None:
    """An unknown delivery older than two minutes, a paused account and a delivery due
    long ago each raise their check; a paused account's waiting posts are not 'late'."""
    beat(sql_store, NOW + timedelta(minutes=40))
    enqueue(sql_store, "website")
    claimed = only(claim(sql_store))
    assert sql_store.start_attempt(claimed, now=NOW) is not None
    assert sql_store.reap_expired(now=NOW + timedelta(minutes=2)) == 1
    enqueue(sql_store, "mastodon", due_at=NOW)
    at = NOW + timedelta(minutes=3)
    assert levels(sql_store, at)["unknown"] is Level.OK  # the daemon may still settle it
    later = NOW + timedelta(minutes=10)
    got = levels(sql_store, later)
    assert got["unknown"] is Level.CRITICAL
    assert got["late"] is Level.WARNING  # 10 minutes late: over 5, under 30
    assert levels(sql_store, NOW + timedelta(minutes=40))["late"] is Level.CRITICAL
    sql_store.pause_account("mastodon", "401", now=NOW)
    got = levels(sql_store, NOW + timedelta(minutes=40))
    assert got["paused"] is Level.CRITICAL
    assert got["late"] is Level.OK


def test_token_expiry(sql_store: SqlStore) -> None:
    beat(sql_store, NOW)
    sql_store.set_token_expiry("mastodon", NOW + timedelta(days=10), now=NOW)
    health = evaluate(settings(), sql_store, NOW)
    tokens = {c.name: c for c in health.checks}["tokens"]
    assert tokens.level is Level.WARNING
    assert "tokens=10;14:;3:" in health.line()
    sql_store.set_token_expiry("mastodon", NOW + timedelta(days=2), now=NOW)
    assert levels(sql_store)["tokens"] is Level.CRITICAL
    sql_store.set_token_expiry("mastodon", NOW - timedelta(days=1), now=NOW)
    health = evaluate(settings(), sql_store, NOW)
    assert "the token of mastodon has expired" in health.line()


def test_a_disabled_accounts_waiting_posts_are_not_late(sql_store: SqlStore) -> None:
    """The daemon does not publish for a disabled account: its queue is not 'late'."""
    beat(sql_store, NOW + timedelta(hours=1))
    enqueue(sql_store, "mastodon", due_at=NOW)
    disabled = settings_from(
        site={"url": SITE},
        accounts={
            "mastodon": {
                "platform": "mastodon",
                "base_url": "https://social.example",
                "enabled": False,
            },
            "website": {"platform": "feed", "path": "site"},
        },
    )
    late = {c.name: c for c in evaluate(disabled, sql_store, NOW + timedelta(hours=1)).checks}
    assert late["late"].level is Level.OK
    assert levels(sql_store, NOW + timedelta(hours=1))["late"] is Level.CRITICAL
