"""Issue 5, an account's request budget shared through the store, on every backend.

What a platform's answer says is left of an account's rate limit (``remaining``
requests until ``reset``) is recorded with the settlement (``Store.settle(budget=)``,
``Settlement.budget``) in ``account_state``; every claim -- of any daemon -- then takes
at most ``remaining`` minus the account's deliveries in flight, so three daemons send
an account no more requests than one would. The PostgreSQL tests at the end run
several stores on one database at the same moment, and check the migration (0008).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, text
from tests.contract.test_store import (
    AFTER_LEASE,
    LEASE,
    NOW,
    claim,
    delivery,
    enqueue,
    only,
)

from crosspost.models import SAME_WINDOW, Budget, Delivery, DeliveryState, Outcome
from crosspost.store.base import Claim, Settlement, Store
from crosspost.store.migrate import alembic_config, upgrade
from crosspost.store.sql import SqlStore

#: the end of the platform's current rate-limit window
RESET = NOW + timedelta(minutes=15)
PUBLISHING = DeliveryState.PUBLISHING
PUBLISHED = DeliveryState.PUBLISHED

Claimer = Callable[..., list[Delivery]]


def claim_started(
    store: Store,
    worker: str = "worker-a",
    *,
    now: datetime = NOW,
    capacity: dict[str, int] | None = None,
) -> list[Delivery]:
    """As :func:`claim`, through the daemon's ``claim_and_start``."""
    claims = store.claim_and_start(
        worker,
        now=now,
        lease=LEASE,
        capacity={"mastodon": 100} if capacity is None else capacity,
        reconcilable=("mastodon", "bluesky", "feed"),
    )
    return [c.delivery for c in claims]


#: both ways a daemon claims: each must keep to the budget
CLAIMERS: dict[str, Claimer] = {"claim_due": claim, "claim_and_start": claim_started}


def enqueue_many(store: Store, n: int, *accounts: str) -> list[int]:
    return [enqueue(store, *accounts, title=f"Beitrag {i}") for i in range(n)]


def in_flight(store: Store) -> int:
    return store.counts().get(PUBLISHING, 0)


def budget_of(store: Store, account: str = "mastodon") -> Budget | None:
    state = store.account_states().get(account)
    return None if state is None else state.budget


def lease_started(store: Store, n: int, *, worker: str = "worker-a") -> list[Claim]:
    """``n`` leased mastodon deliveries with their first attempts (for finish_and_settle)."""
    enqueue_many(store, n, "mastodon")
    claims = store.claim_and_start(
        worker, now=NOW, lease=LEASE, capacity={"mastodon": n}, reconcilable=("mastodon",)
    )
    assert len(claims) == n
    return claims


def settled_with(
    store: Store, claims: Sequence[Claim], budgets: Sequence[Budget], *, via: str
) -> list[bool]:
    """Settle ``claims`` (published), each with its budget: one ``settle`` each, or all
    in one ``finish_and_settle`` (the daemon's batch)."""
    if via == "settle":
        return [
            store.settle(c.delivery, PUBLISHED, now=NOW, remote_id=str(c.delivery.id), budget=b)
            for c, b in zip(claims, budgets, strict=True)
        ]
    settlements = []
    for c, b in zip(claims, budgets, strict=True):
        assert c.attempt is not None
        settlements.append(
            Settlement(c.delivery, PUBLISHED, c.attempt, Outcome.PUBLISHED, NOW,
                       remote_id=str(c.delivery.id), budget=b)
        )  # fmt: skip
    return store.finish_and_settle(settlements)


# -- the cap -----------------------------------------------------------------------------


@pytest.mark.parametrize("how", list(CLAIMERS))
def test_a_recorded_budget_caps_every_workers_claims_less_those_in_flight(
    store: Store, how: str
) -> None:
    """Remaining 3 with one delivery still in flight: another worker asking for 10 gets
    exactly 2, and a third nothing, until a settlement states a new budget."""
    take = CLAIMERS[how]
    enqueue_many(store, 10, "mastodon")
    first, second = take(store, "worker-a", capacity={"mastodon": 2})
    assert store.settle(first, PUBLISHED, now=NOW, remote_id="1", budget=Budget(3, RESET))

    got_b = take(store, "worker-b", capacity={"mastodon": 10})
    assert len(got_b) == 2  # 3 left, less worker-a's delivery in flight
    assert in_flight(store) == 3
    assert take(store, "worker-c", capacity={"mastodon": 10}) == []
    assert take(store, "worker-a", capacity={"mastodon": 10}) == []

    # the platform says 2 are left, with three in flight: still nothing ...
    assert store.settle(got_b[0], PUBLISHED, now=NOW, remote_id="2", budget=Budget(2, RESET))
    assert take(store, "worker-c", capacity={"mastodon": 10}) == []
    # ... 2 left, one in flight: one more
    assert store.settle(got_b[1], PUBLISHED, now=NOW, remote_id="3", budget=Budget(2, RESET))
    assert len(take(store, "worker-c", capacity={"mastodon": 10})) == 1
    assert take(store, "worker-b", capacity={"mastodon": 10}) == []

    # a new window of 5: five less the two in flight
    fresh = Budget(5, RESET + timedelta(minutes=15))
    assert store.settle(second, PUBLISHED, now=NOW, remote_id="4", budget=fresh)
    assert in_flight(store) == 1
    assert len(take(store, "worker-b", capacity={"mastodon": 10})) == 4
    assert in_flight(store) == 5
    assert take(store, "worker-a", capacity={"mastodon": 10}) == []


def test_the_capacity_still_caps_below_the_budget(store: Store) -> None:
    """A budget is a ceiling, not a quota: a claim asking for less gets what it asked."""
    probe = lease_started(store, 1)[0]
    enqueue_many(store, 5, "mastodon")
    assert settled_with(store, [probe], [Budget(4, RESET)], via="settle") == [True]
    assert len(claim(store, capacity={"mastodon": 1})) == 1
    assert len(claim(store, "worker-b", capacity={"mastodon": 10})) == 3


def test_accounts_without_a_budget_get_their_full_capacity(store: Store) -> None:
    """One claim of two accounts: the one with a budget is capped, the other is not."""
    probe = lease_started(store, 1)[0]
    enqueue_many(store, 4, "mastodon", "bluesky")
    assert settled_with(store, [probe], [Budget(1, RESET)], via="settle") == [True]

    got = claim(store, capacity={"mastodon": 10, "bluesky": 10})

    assert sorted(d.account for d in got) == ["bluesky"] * 4 + ["mastodon"]
    assert budget_of(store, "bluesky") is None


def test_a_window_that_has_ended_caps_nothing(store: Store) -> None:
    """A budget whose reset is not after ``now`` is spent history: at the reset itself
    the window is over and the budget caps no claim."""
    a, _ = lease_started(store, 2)
    enqueue_many(store, 6, "mastodon")
    soon = NOW + timedelta(seconds=30)
    assert settled_with(store, [a], [Budget(1, soon)], via="settle") == [True]
    assert claim(store, "worker-b", capacity={"mastodon": 10}) == []  # 1 less 1 in flight
    assert claim(store, "worker-b", now=soon - timedelta(seconds=1)) == []

    assert len(claim(store, "worker-b", now=soon, capacity={"mastodon": 3})) == 3
    assert len(claim(store, "worker-c", now=soon, capacity={"mastodon": 10})) == 3


def test_none_left_of_a_window_already_over_blocks_nothing(store: Store) -> None:
    """An answer "nothing left until a moment ago" (a slow response) neither blocks the
    account nor caps its claims."""
    a = lease_started(store, 1)[0]
    enqueue_many(store, 2, "mastodon")
    past = Budget(0, NOW - timedelta(seconds=1))
    assert store.settle(a.delivery, PUBLISHED, now=NOW, remote_id="a", budget=past)
    assert budget_of(store) == past
    assert len(claim(store, "worker-b", capacity={"mastodon": 10})) == 2


# -- merging -----------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["settle", "finish_and_settle"])
def test_budgets_merge_within_a_window_and_a_new_window_replaces(store: Store, via: str) -> None:
    """Within one window (resets at most SAME_WINDOW apart) the smaller remaining wins,
    in whatever order the answers arrive; a later reset is a new window and replaces
    it; an answer of an earlier window changes nothing."""
    later = RESET + timedelta(minutes=15)
    steps = [
        (Budget(5, RESET), Budget(5, RESET)),
        # a later answer with more left does not raise it (the latest reset is kept)
        (Budget(9, RESET + timedelta(seconds=2)), Budget(5, RESET + timedelta(seconds=2))),
        (Budget(3, RESET - timedelta(seconds=1)), Budget(3, RESET + timedelta(seconds=2))),
        (Budget(4, RESET), Budget(3, RESET + timedelta(seconds=2))),
        # a new window, even with more left
        (Budget(10, later), Budget(10, later)),
        # an answer from the old window arriving late
        (Budget(1, RESET), Budget(10, later)),
        (Budget(8, later), Budget(8, later)),
    ]
    claims = lease_started(store, len(steps))
    for c, (answer, expected) in zip(claims, steps, strict=True):
        assert settled_with(store, [c], [answer], via=via) == [True]
        assert budget_of(store) == expected, answer
    state = store.account_states()["mastodon"]
    assert (state.paused_reason, state.blocked_until) == (None, None)


@pytest.mark.parametrize("order", ["smaller-first", "smaller-last"])
def test_one_batch_of_answers_merges_as_one_after_the_other(store: Store, order: str) -> None:
    """``finish_and_settle`` of several answers of one account: the smallest remaining of
    the window wins whatever their order in the batch, and is merged with what is stored."""
    answers = [Budget(2, RESET), Budget(6, RESET + timedelta(seconds=1))]
    if order == "smaller-last":
        answers.reverse()
    first, *batch = lease_started(store, 3)
    assert settled_with(store, [first], [Budget(4, RESET)], via="settle") == [True]

    assert settled_with(store, batch, answers, via="finish_and_settle") == [True, True]

    assert budget_of(store) == Budget(2, RESET + timedelta(seconds=1))


@pytest.mark.parametrize(
    ("apart", "merged"),
    [
        (SAME_WINDOW, Budget(2, RESET + SAME_WINDOW)),
        (SAME_WINDOW + timedelta(seconds=1), Budget(7, RESET + SAME_WINDOW + timedelta(seconds=1))),
    ],
    ids=["same-window", "next-window"],
)
def test_the_window_boundary_is_the_one_of_budget_merged(
    store: Store, apart: timedelta, merged: Budget
) -> None:
    """Every backend draws the line between "the same window" and "a new one" where
    :meth:`Budget.merged` does: resets up to SAME_WINDOW apart are one window."""
    first, second = lease_started(store, 2)
    stored, answer = Budget(2, RESET), Budget(7, RESET + apart)
    assert stored.merged(answer) == merged  # the rule itself
    assert settled_with(store, [first], [stored], via="settle") == [True]
    assert settled_with(store, [second], [answer], via="settle") == [True]
    assert budget_of(store) == merged


# -- none left -----------------------------------------------------------------------------


def test_none_left_blocks_the_account_until_the_reset(store: Store) -> None:
    """Remaining 0 blocks the account until the reset (as ``block_account``): no claim
    before it, however much capacity, and neither a shorter block nor an answer of an
    earlier window shortens it; at the reset claims resume."""
    a, b = lease_started(store, 2)
    enqueue_many(store, 3, "mastodon")
    assert store.settle(a.delivery, PUBLISHED, now=NOW, remote_id="a", budget=Budget(0, RESET))
    state = store.account_states()["mastodon"]
    assert state.blocked_until == RESET
    assert state.budget == Budget(0, RESET)

    store.block_account("mastodon", NOW + timedelta(minutes=1), now=NOW)
    earlier = Budget(0, RESET - timedelta(minutes=5))
    assert store.settle(b.delivery, PUBLISHED, now=NOW, remote_id="b", budget=earlier)
    state = store.account_states()["mastodon"]
    assert state.blocked_until == RESET
    assert state.budget == Budget(0, RESET)

    assert claim(store, capacity={"mastodon": 10}) == []
    assert claim(store, "worker-b", now=RESET - timedelta(seconds=1)) == []
    assert len(claim(store, "worker-b", now=RESET, capacity={"mastodon": 10})) == 3


def test_none_left_never_shortens_a_longer_block(store: Store) -> None:
    """An account blocked for longer (a 429's Retry-After) stays blocked: a budget with
    nothing left until an earlier reset does not end the block early."""
    a = lease_started(store, 1)[0]
    enqueue(store, "mastodon")
    longer = RESET + timedelta(hours=1)
    store.block_account("mastodon", longer, now=NOW)
    assert store.settle(a.delivery, PUBLISHED, now=NOW, remote_id="a", budget=Budget(0, RESET))
    assert store.account_states()["mastodon"].blocked_until == longer
    assert claim(store, now=RESET, capacity={"mastodon": 10}) == []
    assert len(claim(store, now=longer, capacity={"mastodon": 10})) == 1


# -- a lost lease ---------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["settle", "finish_and_settle"])
def test_the_budget_of_a_settlement_whose_lease_was_lost_is_still_recorded(
    store: Store, via: str
) -> None:
    """What holds: a settlement that finds its lease taken over (False) changes nothing of
    the delivery, but the budget it carries IS recorded -- the platform's answer was real,
    whoever holds the lease now -- and caps the next claims."""
    post_id = enqueue(store, "mastodon", title="Übernommen")
    stale = only(
        store.claim_and_start(
            "worker-a", now=NOW, lease=LEASE, capacity={"mastodon": 1}, reconcilable=("mastodon",)
        )
    )
    assert store.reap_expired(now=AFTER_LEASE) == 1
    taken = only(claim(store, "worker-b", now=AFTER_LEASE, reconcilable=("mastodon",)))
    assert taken.post_id == post_id
    enqueue_many(store, 5, "mastodon")

    assert settled_with(store, [stale], [Budget(2, RESET)], via=via) == [False]

    assert delivery(store, post_id) == taken
    assert budget_of(store) == Budget(2, RESET)
    got = claim(store, "worker-c", now=AFTER_LEASE, capacity={"mastodon": 10})
    assert len(got) == 1  # 2 left, worker-b's delivery in flight


# -- PostgreSQL: three daemons on one database ----------------------------------------------


@pytest.fixture
def pg_stores(pg_url: str) -> Iterator[list[SqlStore]]:
    """Three stores on one database, as three daemons have (``db_clock=False``, as the
    contract's PostgreSQL store: the tests give ``now``)."""
    stores = [SqlStore(pg_url, db_clock=False) for _ in range(3)]
    try:
        yield stores
    finally:
        for s in stores:
            s.close()


def record_budget(store: Store, budget: Budget) -> None:
    """Record ``budget`` for mastodon with the settlement of a delivery of its own."""
    enqueue(store, "mastodon", title="Probe")
    probe = only(claim(store, "prober", capacity={"mastodon": 1}))
    assert store.settle(probe, PUBLISHED, now=NOW, remote_id="probe", budget=budget)


def test_postgresql_daemons_claiming_together_never_exceed_the_budget(
    pg_stores: list[SqlStore],
) -> None:
    """Three stores claim one account at the same moment, again and again: together they
    lease exactly what is left of its budget, never more; and with settlements racing
    the claims the deliveries in flight never exceed it."""
    limit = 3
    rounds = 8
    writer = pg_stores[0]
    record_budget(writer, Budget(limit, RESET))
    enqueue_many(writer, rounds * limit + 3 * 6 * 2, "mastodon")
    for s in pg_stores:
        assert s.account_states()["mastodon"].budget == Budget(limit, RESET)
    barrier = threading.Barrier(len(pg_stores))

    def claim_together(i: int) -> list[Delivery]:
        take = claim_started if i % 2 else claim
        barrier.wait(timeout=60)
        return take(pg_stores[i], f"worker-{i}", capacity={"mastodon": 10})

    with ThreadPoolExecutor(len(pg_stores)) as pool:
        for _ in range(rounds):
            futures = [pool.submit(claim_together, i) for i in range(len(pg_stores))]
            leased = [d for f in futures for d in f.result(timeout=120)]
            assert len(leased) == limit
            assert in_flight(writer) == limit
            for d in leased:
                assert writer.settle(d, PUBLISHED, now=NOW, remote_id=str(d.id),
                                     budget=Budget(limit, RESET))  # fmt: skip

    # settlements and claims at the same time, each store on its own
    peaks: list[int] = []

    def claim_and_settle(i: int) -> int:
        store, settled = pg_stores[i], 0
        barrier.wait(timeout=60)
        for _ in range(6):
            for d in claim(store, f"worker-{i}", capacity={"mastodon": 2}):
                peaks.append(in_flight(store))
                assert store.settle(d, PUBLISHED, now=NOW, remote_id=str(d.id),
                                    budget=Budget(limit, RESET))  # fmt: skip
                settled += 1
        return settled

    with ThreadPoolExecutor(len(pg_stores)) as pool:
        runs = [pool.submit(claim_and_settle, i) for i in range(len(pg_stores))]
        settled = sum(r.result(timeout=120) for r in runs)
    assert settled > 0
    assert peaks
    assert max(peaks) <= limit
    assert in_flight(writer) == 0


def test_postgresql_a_fresh_store_looks_for_budgets_at_its_first_claim(
    pg_stores: list[SqlStore], pg_url: str
) -> None:
    """A store that has never claimed (a daemon just started) caps its first claim by
    the budget another store wrote: it does not take the one-statement claim blind."""
    informed = pg_stores[0]
    enqueue_many(informed, 5, "mastodon", "bluesky")
    record_budget(informed, Budget(2, RESET))
    fresh = SqlStore(pg_url, db_clock=False)
    try:
        got = claim(fresh, "worker-f", capacity={"mastodon": 10, "bluesky": 1})
        assert sorted(d.account for d in got) == ["bluesky", "mastodon", "mastodon"]
        assert claim_started(fresh, "worker-f", capacity={"mastodon": 10}) == []
    finally:
        fresh.close()


def test_postgresql_a_store_unaware_of_a_budget_leaves_that_account_alone(
    pg_stores: list[SqlStore], pg_url: str
) -> None:
    """A store that looked before the account had any budget, and has not read
    ``account_states()`` since another wrote one, claims none of its deliveries (its
    one-statement claim cannot cap them) -- the other accounts it claims as before --
    and once it has read them, it claims within the budget."""
    informed = pg_stores[0]
    enqueue_many(informed, 5, "mastodon", "bluesky")
    unaware = SqlStore(pg_url, db_clock=False)
    try:
        # its first claim looks: no account has a budget yet
        assert [d.account for d in claim(unaware, "worker-u", capacity={"bluesky": 1})] == [
            "bluesky"
        ]
        record_budget(informed, Budget(2, RESET))
        for take in (claim, claim_started):
            got = take(unaware, "worker-u", capacity={"mastodon": 10, "bluesky": 1})
            assert [d.account for d in got] == ["bluesky"]
        assert in_flight(informed) == 3

        assert unaware.account_states()["mastodon"].budget == Budget(2, RESET)
        assert len(claim(unaware, "worker-u", capacity={"mastodon": 10})) == 2
        assert claim(informed, "worker-i", capacity={"mastodon": 10}) == []
        assert claim_started(unaware, "worker-u", capacity={"mastodon": 10}) == []
    finally:
        unaware.close()


def test_postgresql_with_the_database_clock_a_budget_caps_until_its_reset(pg_url: str) -> None:
    """The daemons' PostgreSQL stores compare with the database's clock: a budget whose
    reset has passed by that clock caps nothing, one still open caps every store --
    also one that saw only the expired budget before."""
    informed, unaware = SqlStore(pg_url), SqlStore(pg_url)
    try:
        assert informed.db_clock
        wall = datetime.now(UTC)  # the database's clock, give or take
        due = wall - timedelta(minutes=1)
        for i in range(8):
            enqueue(informed, "mastodon", due_at=due, now=due, title=f"Beitrag {i}")

        def take(store: SqlStore, n: int) -> list[Delivery]:
            # a ``now`` a day ahead, after every reset here: the database's clock decides
            return store.claim_due(
                "worker",
                now=wall + timedelta(days=1),
                lease=LEASE,
                capacity={"mastodon": n},
                reconcilable=(),
            )

        probe = only(take(informed, 1))
        over = Budget(1, wall - timedelta(hours=1))
        assert informed.settle(probe, PUBLISHED, now=wall, remote_id="p", budget=over)
        assert len(take(unaware, 2)) == 2
        first, _ = take(informed, 2)

        assert informed.settle(first, PUBLISHED, now=wall, remote_id="1",
                               budget=Budget(4, wall + timedelta(hours=1)))  # fmt: skip
        # the unaware store saw the account's (expired) budget at its claim above, so it
        # locks the row and sees the new window another store wrote since
        assert len(take(unaware, 10)) == 1  # 4 left, 3 in flight
        assert take(informed, 10) == []
        assert in_flight(informed) == 4
        unaware.account_states()
        assert take(unaware, 10) == []
    finally:
        informed.close()
        unaware.close()


# -- the migration -------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'crosspost.db'}"
    url: str = request.getfixturevalue("pg_empty_url")
    return url


def account_state_columns(store: SqlStore) -> set[str]:
    with store.engine.connect() as conn:
        return {c["name"] for c in inspect(conn).get_columns("account_state")}


def test_migration_0008_adds_the_budget_columns_and_its_downgrade_drops_them(
    empty_url: str,
) -> None:
    """``db upgrade`` gives ``account_state`` ``limit_remaining``/``limit_reset``; a
    downgrade to 0007 removes them and keeps the accounts' other state; upgrading again
    restores them."""
    store = SqlStore(empty_url, create=True)
    try:
        upgrade(store.engine)
        store.check_schema()
        assert {"limit_remaining", "limit_reset"} <= account_state_columns(store)
        store.pause_account("mastodon", "token revoked", now=NOW)
        store.block_account("bluesky", RESET, now=NOW)

        config = alembic_config()
        with store.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0007")
        with store.engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
            rows = conn.execute(
                text("SELECT account, paused_reason FROM account_state ORDER BY account")
            ).all()
        assert version == "0007"
        columns = account_state_columns(store)
        assert not columns & {"limit_remaining", "limit_reset"}
        assert {"blocked_until", "paused_reason"} <= columns
        assert [tuple(r) for r in rows] == [("bluesky", None), ("mastodon", "token revoked")]

        upgrade(store.engine)
        store.check_schema()
        assert {"limit_remaining", "limit_reset"} <= account_state_columns(store)
        states = store.account_states()
        assert states["mastodon"].paused_reason == "token revoked"
        assert states["bluesky"].blocked_until == RESET
        assert states["bluesky"].budget is None
    finally:
        store.close()
