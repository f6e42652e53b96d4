"""Quiet hours hold for the due times the daemon sets itself, on SQLite and PostgreSQL.

A retry after backoff, a rate limit's reset and a resumed account: whatever
would go out inside the account's (or the category's) quiet hours is due at the
window's end instead, the rule enqueue applies. Driven through a real
:class:`~crosspost.daemon.Daemon` (its publisher and its paused-account check)
with a scripted adapter and a frozen clock.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from tests.contract.test_workflow_store import Desk, make_settings, sql_store  # noqa: F401
from tests.unit.scripted import ScriptedAdapter

from crosspost.daemon import Daemon
from crosspost.exceptions import AuthError, RateLimited, Transient
from crosspost.models import Delivery, DeliveryState
from crosspost.store.sql import SqlStore

#: 21:55 in Berlin (CET): five minutes before the quiet hours 22:00-06:00
EVENING = datetime(2026, 3, 20, 20, 55, tzinfo=UTC)
#: 06:00 the next morning in Berlin: the end of the quiet window
WINDOW_END = datetime(2026, 3, 21, 5, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


@pytest.fixture
def desk(sql_store: SqlStore) -> Desk:  # noqa: F811
    settings = make_settings(
        daemon={"backoff_base": 600.0, "max_inline_wait": 0.0},
        accounts={
            "mastodon": {
                "platform": "mastodon",
                "base_url": "https://social.example",
                "max_characters": 500,
                "token_env": "UNUSED",
                "quiet_hours": "22:00-06:00",
            },
            "website": {"platform": "feed", "path": "/nonexistent/site"},
        },
    )
    desk = Desk(sql_store, settings)
    desk.clock.advance(EVENING - desk.clock.now())
    return desk


def daemon_for(desk: Desk, adapter: ScriptedAdapter) -> Daemon:
    return Daemon(
        desk.settings,
        desk.store,
        clock=desk.clock,
        adapters={"mastodon": adapter},
        handle_signals=False,
    )


def enqueue(desk: Desk, text: str) -> int:
    [stored] = desk.as_("anna").enqueue([desk.plan(text)])
    return stored.post_ids[0]


def claim_one(desk: Desk) -> Delivery:
    [delivery] = desk.store.claim_due(
        "w1", now=desk.clock.now(), lease=LEASE, capacity={"mastodon": 1}, reconcilable=[]
    )
    return delivery


def due_of(desk: Desk, post_id: int, account: str = "mastodon") -> tuple[DeliveryState, datetime]:
    [d] = [d for d in desk.store.deliveries_of(post_id) if d.account == account]
    return d.state, d.due_at


def publish(daemon: Daemon, delivery: Delivery) -> DeliveryState | None:
    async def run() -> DeliveryState | None:
        try:
            return await daemon.publisher.publish(delivery)
        finally:
            daemon._executor.shutdown(wait=True)

    return asyncio.run(run())


def test_a_backoff_retry_landing_in_quiet_hours_is_due_at_the_window_end(desk: Desk) -> None:
    post_id = enqueue(desk, "Die Kläranlage ist am Samstag geöffnet.")
    delivery = claim_one(desk)
    # the backoff (300-600 s) from 21:55 lands at 22:00 or later
    daemon = daemon_for(desk, ScriptedAdapter("mastodon", [Transient("503")]))
    assert publish(daemon, delivery) is DeliveryState.RETRYING
    assert due_of(desk, post_id) == (DeliveryState.RETRYING, WINDOW_END)
    # the website has no quiet hours: its delivery was due at enqueue and stays so
    assert due_of(desk, post_id, "website") == (DeliveryState.SCHEDULED, EVENING)


def test_a_backoff_retry_outside_quiet_hours_keeps_its_time(desk: Desk) -> None:
    desk.clock.advance(timedelta(hours=-8))  # 13:55 in Berlin
    post_id = enqueue(desk, "Die Kläranlage ist am Samstag geöffnet.")
    delivery = claim_one(desk)
    daemon = daemon_for(desk, ScriptedAdapter("mastodon", [Transient("503")]))
    assert publish(daemon, delivery) is DeliveryState.RETRYING
    state, due = due_of(desk, post_id)
    assert state is DeliveryState.RETRYING
    assert (
        desk.clock.now() + timedelta(seconds=300)
        <= due
        <= desk.clock.now() + timedelta(seconds=600)
    )


def test_a_rate_limit_reset_at_night_holds_every_waiting_delivery_of_the_account(
    desk: Desk,
) -> None:
    first = enqueue(desk, "Die Kläranlage ist am Samstag geöffnet.")
    second = enqueue(desk, "Der Wertstoffhof schließt um 18 Uhr.")
    delivery = claim_one(desk)
    assert delivery.post_id == first
    reset = datetime(2026, 3, 20, 23, 0, tzinfo=UTC)  # midnight in Berlin
    daemon = daemon_for(desk, ScriptedAdapter("mastodon", [RateLimited("429", until=reset)]))
    assert publish(daemon, delivery) is DeliveryState.RETRYING
    assert due_of(desk, first) == (DeliveryState.RETRYING, WINDOW_END)
    # the other post would be claimed at the reset, inside the quiet hours: it waits too
    assert due_of(desk, second) == (DeliveryState.SCHEDULED, WINDOW_END)
    assert desk.store.account_states()["mastodon"].blocked_until == reset
    assert due_of(desk, second, "website") == (DeliveryState.SCHEDULED, EVENING)


def test_a_rate_limit_reset_before_quiet_hours_changes_nothing_else(desk: Desk) -> None:
    first = enqueue(desk, "Die Kläranlage ist am Samstag geöffnet.")
    second = enqueue(desk, "Der Wertstoffhof schließt um 18 Uhr.")
    delivery = claim_one(desk)
    reset = EVENING + timedelta(minutes=2)  # 21:57 in Berlin
    daemon = daemon_for(desk, ScriptedAdapter("mastodon", [RateLimited("429", until=reset)]))
    assert publish(daemon, delivery) is DeliveryState.RETRYING
    state, due = due_of(desk, first)
    assert state is DeliveryState.RETRYING
    assert reset <= due < reset + timedelta(seconds=2)  # the reset and a little jitter
    assert due_of(desk, second) == (DeliveryState.SCHEDULED, EVENING)


@pytest.mark.parametrize(
    ("resumed_at", "quiet"),
    [(datetime(2026, 3, 20, 22, 30, tzinfo=UTC), True), (EVENING, False)],
    ids=["at-night", "in-the-evening"],
)
def test_an_account_resumed_in_quiet_hours_publishes_its_backlog_after_them(
    desk: Desk, resumed_at: datetime, quiet: bool
) -> None:
    post_id = enqueue(desk, "Die Kläranlage ist am Samstag geöffnet.")
    delivery = claim_one(desk)
    adapter = ScriptedAdapter("mastodon", [AuthError("token revoked")])
    assert publish(daemon_for(desk, adapter), delivery) is DeliveryState.RETRYING
    assert desk.store.account_states()["mastodon"].paused_reason
    assert due_of(desk, post_id) == (DeliveryState.RETRYING, EVENING)
    desk.clock.advance(resumed_at - desk.clock.now())
    daemon = daemon_for(desk, adapter)  # the token works again

    async def check() -> None:
        try:
            await daemon._check_paused_accounts()
        finally:
            daemon._executor.shutdown(wait=True)

    asyncio.run(check())
    assert desk.store.account_states()["mastodon"].paused_reason is None
    assert due_of(desk, post_id) == (DeliveryState.RETRYING, WINDOW_END if quiet else EVENING)
