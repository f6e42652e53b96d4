"""The Store contract (``crosspost.store.base``), run against every backend.

Every test gets a fresh store from the ``store`` fixture (``conftest.py``) and
drives it only through the :class:`~crosspost.store.base.Store` protocol, with
fixed timestamps: no test reads the wall clock.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from crosspost.exceptions import NotFound
from crosspost.models import Attempt, Delivery, DeliveryState, Media, Outcome, Post, Rendered
from crosspost.store.base import AccountState, DaemonInfo, Store

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)
AFTER_LEASE = NOW + LEASE + timedelta(seconds=1)
LINK = "https://www.zv-staedtedreieck.de/aktuelles/weihnachtsmarkt"
PLATFORMS = {"mastodon": "mastodon", "bluesky": "bluesky", "website": "feed"}
ALL = tuple(PLATFORMS)
PLENTY = dict.fromkeys(ALL, 100)
T = TypeVar("T")


def make_post(title: str = "Weihnachtsmarkt", **changes: Any) -> Post:
    values: dict[str, Any] = {
        "title": title,
        "body": "Der Weihnachtsmarkt öffnet am 1. Dezember um 16 Uhr.",
        "link": LINK,
        "category": "veranstaltung",
        "publish_at": None,
        "accounts": (),
    }
    values.update(changes)
    return Post(**values)


def rendered(*accounts: str) -> list[Rendered]:
    return [
        Rendered(
            account=a,
            platform=PLATFORMS[a],
            text=f"Text für {a}\n\n{LINK}",
            length=80,
            limit=500,
            unit="characters",
        )
        for a in accounts
    ]


def enqueue(
    store: Store,
    *accounts: str,
    due_at: datetime = NOW,
    now: datetime = NOW,
    title: str = "Weihnachtsmarkt",
) -> int:
    return store.enqueue(
        make_post(title),
        rendered(*(accounts or ("mastodon",))),
        due_at=due_at,
        created_by="editor",
        now=now,
    )


def claim(
    store: Store,
    worker: str = "worker-a",
    *,
    now: datetime = NOW,
    capacity: dict[str, int] | None = None,
    reconcilable: tuple[str, ...] = (),
) -> list[Delivery]:
    return store.claim_due(
        worker,
        now=now,
        lease=LEASE,
        capacity=PLENTY if capacity is None else capacity,
        reconcilable=reconcilable,
    )


def only(items: list[T]) -> T:
    """The one item of ``items`` (a delivery, claim or attempt); fails unless there is one."""
    assert len(items) == 1, items
    return items[0]


def delivery(store: Store, post_id: int) -> Delivery:
    return only(store.deliveries_of(post_id))


def make_unknown(store: Store, post_id: int) -> Delivery:
    """A delivery whose worker died with the request in flight (reaped to ``unknown``)."""
    claimed = only(claim(store))
    assert claimed.post_id == post_id
    assert store.start_attempt(claimed, now=NOW) is not None
    assert store.reap_expired(now=AFTER_LEASE) == 1
    return delivery(store, post_id)


def make_settled(store: Store, post_id: int, state: DeliveryState, **kw: Any) -> Delivery:
    claimed = only(claim(store))
    assert claimed.post_id == post_id
    assert store.settle(claimed, state, now=NOW, **kw)
    return delivery(store, post_id)


# -- enqueue and reading back ---------------------------------------------------------------


def test_enqueue_stores_the_post_and_one_scheduled_delivery_per_account(store: Store) -> None:
    """A post comes back as written, with one ``scheduled`` delivery per rendered account."""
    due = NOW + timedelta(hours=3)
    media = (Media(path=Path("/srv/posts/markt.jpg"), alt="Marktstände", mime="image/png"),)
    post = make_post(publish_at=due, media=media, source="/srv/posts/markt.md")

    post_id = store.enqueue(
        post, rendered("mastodon", "bluesky"), due_at=due, created_by="editor", now=NOW
    )

    stored = store.get_post(post_id)
    assert stored.id == post_id
    assert (stored.title, stored.body, stored.link, stored.category) == (
        post.title,
        post.body,
        post.link,
        post.category,
    )
    assert stored.publish_at == due
    assert stored.created_at == NOW
    assert stored.created_by == "editor"
    assert stored.source == "/srv/posts/markt.md"
    assert stored.media == media
    deliveries = store.deliveries_of(post_id)
    assert [(d.account, d.platform) for d in deliveries] == [
        ("mastodon", "mastodon"),
        ("bluesky", "bluesky"),
    ]
    for d, r in zip(deliveries, rendered("mastodon", "bluesky"), strict=True):
        assert d.post_id == post_id
        assert d.state is DeliveryState.SCHEDULED
        assert d.due_at == due
        assert d.text == r.text
        assert d.attempts == 0
        assert (d.worker, d.lease_until, d.lease_token) == (None, None, 0)
        assert not d.uncertain
        assert (d.remote_id, d.remote_url, d.error, d.published_at) == (None, None, None, None)
        assert d.updated_at == NOW


def test_enqueue_without_publish_at_keeps_it_empty(store: Store) -> None:
    """``publish_at`` None ("as soon as possible") is stored as None; ``due_at`` is what counts."""
    post_id = enqueue(store, "mastodon")
    assert store.get_post(post_id).publish_at is None
    assert delivery(store, post_id).due_at == NOW


def test_enqueue_with_no_rendered_account_stores_an_empty_post(store: Store) -> None:
    """No rendered account: the post is stored without deliveries (its state is "empty")."""
    post_id = store.enqueue(make_post(), [], due_at=NOW, created_by="editor", now=NOW)
    assert store.get_post(post_id).title == "Weihnachtsmarkt"
    assert store.deliveries_of(post_id) == []
    assert [(p.id, ds) for p, ds in store.list_posts()] == [(post_id, [])]


def test_every_delivery_gets_its_own_idempotency_key(store: Store) -> None:
    """Idempotency keys are non-empty and unique across deliveries and posts."""
    ids = [enqueue(store, *ALL, title=f"Post {i}") for i in range(3)]
    keys = [d.idempotency_key for i in ids for d in store.deliveries_of(i)]
    assert len(keys) == 9
    assert all(keys)
    assert len(set(keys)) == len(keys)


def test_get_post_of_a_missing_post_raises_not_found(store: Store) -> None:
    """Reading a post that does not exist raises NotFound (exit code 2), naming the id."""
    enqueue(store)
    with pytest.raises(NotFound, match="4711") as caught:
        store.get_post(4711)
    assert caught.value.exit_code == 2


def test_deliveries_of_a_missing_post_is_empty(store: Store) -> None:
    """``deliveries_of`` an unknown post id is an empty list, not an error."""
    assert store.deliveries_of(4711) == []


def test_deliveries_of_come_in_enqueue_order(store: Store) -> None:
    """A post's deliveries are listed in the order the accounts were rendered."""
    post_id = enqueue(store, "website", "mastodon", "bluesky")
    assert [d.account for d in store.deliveries_of(post_id)] == ["website", "mastodon", "bluesky"]
    assert [d.id for d in store.deliveries_of(post_id)] == sorted(
        d.id for d in store.deliveries_of(post_id)
    )


def test_list_posts_newest_first_with_their_deliveries(store: Store) -> None:
    """``list_posts`` returns every post newest first, each with all its deliveries."""
    first = enqueue(store, "mastodon", title="Erster")
    second = enqueue(store, "mastodon", "bluesky", title="Zweiter")
    third = enqueue(store, "website", title="Dritter")

    listed = store.list_posts()

    assert [p.id for p, _ in listed] == [third, second, first]
    assert [p.title for p, _ in listed] == ["Dritter", "Zweiter", "Erster"]
    assert [[d.account for d in ds] for _, ds in listed] == [
        ["website"],
        ["mastodon", "bluesky"],
        ["mastodon"],
    ]
    assert listed[1][1] == store.deliveries_of(second)


def test_list_posts_limit_keeps_the_newest(store: Store) -> None:
    """``limit`` cuts the list after the newest posts."""
    ids = [enqueue(store, title=f"Post {i}") for i in range(5)]
    assert [p.id for p, _ in store.list_posts(limit=2)] == [ids[4], ids[3]]


def test_list_posts_filters_by_delivery_state(store: Store) -> None:
    """With ``states``, only posts having a delivery in one of them; with all their deliveries."""
    waiting = enqueue(store, "mastodon", title="wartet", due_at=NOW + timedelta(days=1))
    busy = enqueue(store, "mastodon", "bluesky", title="läuft")
    claimed = claim(store, capacity={"mastodon": 1})
    assert [d.post_id for d in claimed] == [busy]

    publishing = store.list_posts(states={DeliveryState.PUBLISHING})
    assert [p.id for p, _ in publishing] == [busy]
    assert [d.state for d in publishing[0][1]] == [
        DeliveryState.PUBLISHING,
        DeliveryState.SCHEDULED,
    ]
    scheduled = store.list_posts(states={DeliveryState.SCHEDULED})
    assert [p.id for p, _ in scheduled] == [busy, waiting]
    assert store.list_posts(states={DeliveryState.CANCELLED, DeliveryState.FAILED}) == []


# -- claiming -------------------------------------------------------------------------------


def test_claim_takes_only_deliveries_that_are_due(store: Store) -> None:
    """Due means ``due_at <= now``: earlier and exactly-now rows are claimed, later ones wait."""
    early = enqueue(store, due_at=NOW - timedelta(minutes=5))
    exact = enqueue(store, due_at=NOW)
    later = enqueue(store, due_at=NOW + timedelta(seconds=1))

    assert {d.post_id for d in claim(store)} == {early, exact}
    assert delivery(store, later).state is DeliveryState.SCHEDULED
    assert [d.post_id for d in claim(store, now=NOW + timedelta(seconds=1))] == [later]


def test_claim_leases_the_delivery_to_the_worker(store: Store) -> None:
    """A claimed delivery is ``publishing``, held by the worker until now + lease, token bumped."""
    post_id = enqueue(store)
    before = delivery(store, post_id)

    claimed = only(claim(store, "worker-a"))

    assert claimed.id == before.id
    assert claimed.state is DeliveryState.PUBLISHING
    assert claimed.worker == "worker-a"
    assert claimed.lease_until == NOW + LEASE
    assert claimed.lease_token > before.lease_token
    assert claimed.updated_at == NOW
    assert claimed.attempts == 0
    assert claimed.idempotency_key == before.idempotency_key
    assert delivery(store, post_id) == claimed


def test_claim_bumps_the_lease_token_on_every_claim(store: Store) -> None:
    """Each new claim of the same delivery hands out a larger fencing token."""
    enqueue(store)
    first = only(claim(store))
    assert store.settle(first, DeliveryState.RETRYING, now=NOW, due_at=NOW)
    second = only(claim(store))
    assert second.id == first.id
    assert second.lease_token > first.lease_token


def test_claim_comes_in_due_order(store: Store) -> None:
    """Deliveries are claimed and returned oldest ``due_at`` first, ties by enqueue order."""
    late = enqueue(store, due_at=NOW - timedelta(minutes=1))
    earliest = enqueue(store, due_at=NOW - timedelta(minutes=30))
    tie_a = enqueue(store, due_at=NOW - timedelta(minutes=10))
    tie_b = enqueue(store, due_at=NOW - timedelta(minutes=10))

    first_two = claim(store, capacity={"mastodon": 2})
    assert [d.post_id for d in first_two] == [earliest, tie_a]
    assert [d.post_id for d in claim(store)] == [tie_b, late]


def test_claim_respects_capacity_per_account(store: Store) -> None:
    """At most ``capacity[account]`` per account; accounts absent or at 0 get nothing."""
    for i in range(4):
        enqueue(store, *ALL, title=f"Post {i}")

    claimed = claim(store, capacity={"mastodon": 2, "bluesky": 1, "website": 0})

    assert Counter(d.account for d in claimed) == {"mastodon": 2, "bluesky": 1}
    assert claim(store, capacity={}) == []


def test_claim_fills_every_accounts_capacity_despite_another_accounts_backlog(
    store: Store,
) -> None:
    """A long backlog on one account does not use up the claim of the others."""
    for i in range(12):
        enqueue(store, "mastodon", due_at=NOW - timedelta(minutes=30 - i), title=f"Backlog {i}")
    bluesky = enqueue(store, "bluesky", due_at=NOW - timedelta(seconds=1))

    claimed = claim(store, capacity={"mastodon": 1, "bluesky": 1})

    assert Counter(d.account for d in claimed) == {"mastodon": 1, "bluesky": 1}
    assert bluesky in {d.post_id for d in claimed}


def test_a_claimed_delivery_is_never_claimed_by_another_worker(store: Store) -> None:
    """Worker B gets nothing of what worker A holds, only what became due since."""
    first = enqueue(store, "mastodon", "bluesky")
    held = claim(store, "worker-a")
    assert {d.post_id for d in held} == {first}

    assert claim(store, "worker-b") == []
    assert claim(store, "worker-a") == []

    second = enqueue(store, "mastodon")
    taken = only(claim(store, "worker-b"))
    assert taken.post_id == second
    assert taken.worker == "worker-b"
    assert {d.worker for d in store.deliveries_of(first)} == {"worker-a"}


def test_claim_skips_paused_accounts_until_resumed(store: Store) -> None:
    """A paused account's deliveries wait; the other accounts go on; resume frees them."""
    post_id = enqueue(store, "mastodon", "bluesky")
    store.pause_account("mastodon", "401 Unauthorized", now=NOW)

    assert [d.account for d in claim(store)] == ["bluesky"]
    assert claim(store, now=NOW + timedelta(days=1)) == []

    assert store.resume_account("mastodon", now=NOW)
    assert [d.account for d in claim(store)] == ["mastodon"]
    assert {d.state for d in store.deliveries_of(post_id)} == {DeliveryState.PUBLISHING}


def test_claim_skips_a_blocked_account_until_the_block_ends(store: Store) -> None:
    """``block_account(until)`` holds the account while ``until > now``, not at or after it."""
    enqueue(store, "mastodon", "bluesky")
    until = NOW + timedelta(minutes=5)
    store.block_account("mastodon", until, now=NOW)

    assert [d.account for d in claim(store)] == ["bluesky"]
    assert claim(store, now=until - timedelta(seconds=1)) == []
    assert [d.account for d in claim(store, now=until)] == ["mastodon"]


def test_a_block_is_never_shortened(store: Store) -> None:
    """Of two blocks of one account the later end holds (daemons may see different resets)."""
    enqueue(store, "mastodon")
    store.block_account("mastodon", NOW + timedelta(minutes=30), now=NOW)
    store.block_account("mastodon", NOW + timedelta(minutes=5), now=NOW + timedelta(seconds=1))

    assert store.account_states()["mastodon"].blocked_until == NOW + timedelta(minutes=30)
    assert claim(store, now=NOW + timedelta(minutes=10)) == []
    store.block_account("mastodon", NOW + timedelta(hours=1), now=NOW)
    assert store.account_states()["mastodon"].blocked_until == NOW + timedelta(hours=1)


def test_unknown_is_claimable_only_on_a_reconcilable_platform(store: Store) -> None:
    """An ``unknown`` delivery is never claimed for a blind resend, only for reconciliation."""
    post_id = enqueue(store, "mastodon")
    unknown = make_unknown(store, post_id)
    assert unknown.state is DeliveryState.UNKNOWN

    assert unknown.due_at == AFTER_LEASE
    assert claim(store, now=AFTER_LEASE) == []
    assert claim(store, now=AFTER_LEASE, reconcilable=("bluesky",)) == []
    again = only(claim(store, "worker-b", now=AFTER_LEASE, reconcilable=("mastodon",)))
    assert again.id == unknown.id
    assert again.state is DeliveryState.PUBLISHING
    assert again.uncertain


# -- attempts and fencing ---------------------------------------------------------------------


def test_start_attempt_writes_a_pending_attempt_with_the_idempotency_key(store: Store) -> None:
    """Before the request: attempts + 1 on the delivery, a ``pending`` attempt row."""
    post_id = enqueue(store, "bluesky")
    claimed = only(claim(store, "worker-a"))

    attempt = store.start_attempt(claimed, now=NOW + timedelta(seconds=1))

    assert attempt is not None
    assert attempt.delivery_id == claimed.id
    assert attempt.post_id == post_id
    assert attempt.account == "bluesky"
    assert attempt.number == 1
    assert attempt.started_at == NOW + timedelta(seconds=1)
    assert attempt.outcome is Outcome.PENDING
    assert attempt.idempotency_key == claimed.idempotency_key
    assert attempt.worker == "worker-a"
    assert (attempt.finished_at, attempt.http_status, attempt.duration_ms) == (None, None, None)
    assert store.attempts() == [attempt]
    after = delivery(store, post_id)
    assert after.attempts == 1
    assert after.state is DeliveryState.PUBLISHING
    assert after.lease_token == claimed.lease_token


def test_attempts_are_numbered_per_delivery(store: Store) -> None:
    """Every attempt on a delivery, in the same or a later lease, gets the next number."""
    enqueue(store)
    claimed = only(claim(store))
    one = store.start_attempt(claimed, now=NOW)
    two = store.start_attempt(claimed, now=NOW + timedelta(seconds=2))
    assert one is not None
    assert two is not None
    store.finish_attempt(one.id, Outcome.TRANSIENT, now=NOW + timedelta(seconds=1))
    store.finish_attempt(two.id, Outcome.TRANSIENT, now=NOW + timedelta(seconds=3))
    assert store.settle(claimed, DeliveryState.RETRYING, now=NOW, due_at=NOW)
    three = store.start_attempt(only(claim(store)), now=NOW + timedelta(seconds=4))
    assert three is not None

    assert [a.number for a in store.attempts()] == [1, 2, 3]
    assert delivery(store, claimed.post_id).attempts == 3


def test_finish_attempt_records_the_outcome(store: Store) -> None:
    """``finish_attempt`` stores outcome, finish time, HTTP status, message and duration."""
    enqueue(store)
    attempt = store.start_attempt(only(claim(store)), now=NOW)
    assert attempt is not None

    store.finish_attempt(
        attempt.id,
        Outcome.RATE_LIMITED,
        now=NOW + timedelta(seconds=1, milliseconds=500),
        http_status=429,
        message="Too Many Requests",
    )

    finished = only_attempt(store.attempts())
    assert finished.id == attempt.id
    assert finished.outcome is Outcome.RATE_LIMITED
    assert finished.finished_at == NOW + timedelta(seconds=1, milliseconds=500)
    assert finished.http_status == 429
    assert finished.message == "Too Many Requests"
    assert finished.duration_ms == 1500
    assert finished.started_at == NOW
    assert finished.idempotency_key == attempt.idempotency_key


def only_attempt(attempts: list[Attempt]) -> Attempt:
    assert len(attempts) == 1, attempts
    return attempts[0]


def test_settle_published_records_the_remote_post_and_ends_the_lease(store: Store) -> None:
    """``published``: remote id/url and publish time stored, uncertainty and lease cleared."""
    post_id = enqueue(store)
    make_unknown(store, post_id)
    claimed = only(claim(store, "worker-b", now=AFTER_LEASE, reconcilable=("mastodon",)))
    assert claimed.uncertain
    later = NOW + timedelta(minutes=2)

    ok = store.settle(
        claimed,
        DeliveryState.PUBLISHED,
        now=later,
        remote_id="109876",
        remote_url="https://social.example/@zv/109876",
    )

    assert ok
    done = delivery(store, post_id)
    assert done.state is DeliveryState.PUBLISHED
    assert done.remote_id == "109876"
    assert done.remote_url == "https://social.example/@zv/109876"
    assert done.published_at == later
    assert done.updated_at == later
    assert not done.uncertain
    assert (done.worker, done.lease_until, done.error) == (None, None, None)


def test_settle_retrying_sets_the_next_due_time_and_error(store: Store) -> None:
    """``retrying``: new ``due_at`` and error stored, lease released, ``uncertain`` as given."""
    post_id = enqueue(store)
    claimed = only(claim(store))
    retry_at = NOW + timedelta(minutes=5)

    assert store.settle(
        claimed,
        DeliveryState.RETRYING,
        now=NOW,
        due_at=retry_at,
        error="503 Service Unavailable",
        uncertain=True,
    )

    after = delivery(store, post_id)
    assert after.state is DeliveryState.RETRYING
    assert after.due_at == retry_at
    assert after.error == "503 Service Unavailable"
    assert after.uncertain
    assert (after.worker, after.lease_until, after.remote_id) == (None, None, None)
    assert after.published_at is None


def test_settle_failed_keeps_due_at_when_none_is_given(store: Store) -> None:
    """Without ``due_at`` the delivery keeps its due time; ``failed`` stores the error."""
    post_id = enqueue(store, due_at=NOW - timedelta(minutes=1))
    failed = make_settled(store, post_id, DeliveryState.FAILED, error="422 text too long")
    assert failed.state is DeliveryState.FAILED
    assert failed.due_at == NOW - timedelta(minutes=1)
    assert failed.error == "422 text too long"


def test_a_settled_lease_cannot_be_used_again(store: Store) -> None:
    """After settling, the same Delivery record no longer starts attempts or settles."""
    post_id = enqueue(store)
    claimed = only(claim(store))
    assert store.settle(claimed, DeliveryState.PUBLISHED, now=NOW, remote_id="1")
    published = delivery(store, post_id)

    assert store.start_attempt(claimed, now=NOW) is None
    assert not store.settle(claimed, DeliveryState.FAILED, now=NOW, error="late")
    assert delivery(store, post_id) == published
    assert store.attempts() == []


def test_a_stale_lease_token_is_fenced_off(store: Store) -> None:
    """A Delivery from an older claim can neither start an attempt nor settle the row."""
    post_id = enqueue(store)
    old = only(claim(store, "worker-a"))
    assert store.settle(old, DeliveryState.RETRYING, now=NOW, due_at=NOW)
    current = only(claim(store, "worker-a"))
    assert current.lease_token != old.lease_token

    assert store.start_attempt(old, now=NOW) is None
    assert not store.settle(old, DeliveryState.PUBLISHED, now=NOW, remote_id="x")
    assert delivery(store, post_id) == current
    assert store.attempts() == []


def test_a_lease_taken_over_after_reaping_is_fenced_off(store: Store) -> None:
    """Once A's expired lease is reaped and B claims the row, A cannot touch it any more."""
    post_id = enqueue(store)
    held_by_a = only(claim(store, "worker-a"))
    assert store.reap_expired(now=AFTER_LEASE) == 1
    held_by_b = only(claim(store, "worker-b", now=AFTER_LEASE))

    assert store.start_attempt(held_by_a, now=AFTER_LEASE) is None
    assert not store.settle(held_by_a, DeliveryState.PUBLISHED, now=AFTER_LEASE, remote_id="a")
    assert not store.settle(held_by_a, DeliveryState.FAILED, now=AFTER_LEASE, error="a")
    assert delivery(store, post_id) == held_by_b
    assert store.attempts() == []

    attempt = store.start_attempt(held_by_b, now=AFTER_LEASE)
    assert attempt is not None
    assert attempt.worker == "worker-b"
    assert store.settle(held_by_b, DeliveryState.PUBLISHED, now=AFTER_LEASE, remote_id="b")
    assert delivery(store, post_id).remote_id == "b"


# -- reaping and leases -------------------------------------------------------------------------


def test_reap_with_a_request_in_flight_makes_the_delivery_unknown(store: Store) -> None:
    """Expired lease + pending attempt: ``unknown``, uncertain, attempt ``crashed``."""
    post_id = enqueue(store)
    claimed = only(claim(store))
    attempt = store.start_attempt(claimed, now=NOW)
    assert attempt is not None

    assert store.reap_expired(now=AFTER_LEASE) == 1

    after = delivery(store, post_id)
    assert after.state is DeliveryState.UNKNOWN
    assert after.uncertain
    assert after.error
    assert after.due_at == AFTER_LEASE
    assert (after.worker, after.lease_until) == (None, None)
    crashed = only_attempt(store.attempts())
    assert crashed.id == attempt.id
    assert crashed.outcome is Outcome.CRASHED
    assert crashed.finished_at == AFTER_LEASE


def test_reap_without_a_request_in_flight_puts_the_delivery_back(store: Store) -> None:
    """Expired lease, no attempt: back to ``retrying``, due now, not uncertain."""
    post_id = enqueue(store, due_at=NOW - timedelta(minutes=1))
    claim(store)

    assert store.reap_expired(now=AFTER_LEASE) == 1

    after = delivery(store, post_id)
    assert after.state is DeliveryState.RETRYING
    assert not after.uncertain
    assert after.error is None
    assert after.due_at == AFTER_LEASE
    assert (after.worker, after.lease_until, after.attempts) == (None, None, 0)


def test_reap_after_a_failed_attempt_puts_the_delivery_back(store: Store) -> None:
    """A finished attempt that cannot have landed (transient) does not make the row uncertain."""
    post_id = enqueue(store)
    attempt = store.start_attempt(only(claim(store)), now=NOW)
    assert attempt is not None
    store.finish_attempt(attempt.id, Outcome.TRANSIENT, now=NOW, http_status=503)

    assert store.reap_expired(now=AFTER_LEASE) == 1

    after = delivery(store, post_id)
    assert after.state is DeliveryState.RETRYING
    assert not after.uncertain
    assert only_attempt(store.attempts()).outcome is Outcome.TRANSIENT


@pytest.mark.parametrize("outcome", [Outcome.PUBLISHED, Outcome.FOUND, Outcome.UNKNOWN])
def test_reap_after_an_attempt_that_may_have_landed_makes_the_delivery_unknown(
    store: Store, outcome: Outcome
) -> None:
    """Worker died between finishing a landed/unclear attempt and settling: never resend blindly."""
    post_id = enqueue(store)
    attempt = store.start_attempt(only(claim(store)), now=NOW)
    assert attempt is not None
    store.finish_attempt(attempt.id, outcome, now=NOW + timedelta(seconds=1))

    assert store.reap_expired(now=AFTER_LEASE) == 1

    after = delivery(store, post_id)
    assert after.state is DeliveryState.UNKNOWN
    assert after.uncertain
    assert only_attempt(store.attempts()).outcome is outcome


def test_reap_leaves_unexpired_leases_alone(store: Store) -> None:
    """A lease is reaped only after ``lease_until``; at that very instant it still holds."""
    post_id = enqueue(store)
    claimed = only(claim(store))

    assert store.reap_expired(now=NOW + timedelta(seconds=30)) == 0
    assert store.reap_expired(now=NOW + LEASE) == 0
    assert delivery(store, post_id) == claimed


def test_reap_of_a_worker_takes_back_its_rows_at_once(store: Store) -> None:
    """``worker=``: that worker's rows regardless of expiry; other workers' rows stay."""
    mine = enqueue(store, "mastodon")
    theirs = enqueue(store, "bluesky")
    claim(store, "dead-worker", capacity={"mastodon": 1})
    other = only(claim(store, "live-worker", capacity={"bluesky": 1}))

    assert store.reap_expired(now=NOW, worker="dead-worker") == 1

    assert delivery(store, mine).state is DeliveryState.RETRYING
    assert delivery(store, theirs) == other


def test_reap_ignores_rows_that_are_not_publishing(store: Store) -> None:
    """Scheduled, published and failed rows are never reaped, however old."""
    make_settled(store, enqueue(store), DeliveryState.PUBLISHED, remote_id="1")
    make_settled(store, enqueue(store), DeliveryState.FAILED, error="no")
    enqueue(store, due_at=NOW - timedelta(days=3))
    before = store.counts()

    assert store.reap_expired(now=NOW + timedelta(days=30)) == 0
    assert store.counts() == before


def test_extend_leases_keeps_the_row_from_being_reaped(store: Store) -> None:
    """Extended leases survive a reap past the original expiry; other workers cannot extend."""
    first = enqueue(store, "mastodon")
    second = enqueue(store, "bluesky")
    kept = only(claim(store, "worker-a", capacity={"mastodon": 1}))
    claim(store, "worker-b", capacity={"bluesky": 1})
    renewed_at = NOW + timedelta(minutes=4)
    extended_until = renewed_at + LEASE

    store.extend_leases("worker-a", [kept.id], now=renewed_at, lease=LEASE)
    store.extend_leases("worker-a", [delivery(store, second).id], now=renewed_at, lease=LEASE)

    assert store.reap_expired(now=AFTER_LEASE) == 1
    after = delivery(store, first)
    assert after.state is DeliveryState.PUBLISHING
    assert after.lease_until == extended_until
    assert store.start_attempt(kept, now=AFTER_LEASE) is not None
    assert delivery(store, second).state is DeliveryState.RETRYING


# -- editors changing the queue ---------------------------------------------------------------


def test_cancel_stops_waiting_deliveries_only(store: Store) -> None:
    """Scheduled and retrying deliveries are cancelled; published, publishing, failed stay."""
    post_id = enqueue(store, *ALL)
    by_account = {d.account: d for d in claim(store)}
    assert store.settle(by_account["mastodon"], DeliveryState.PUBLISHED, now=NOW, remote_id="1")
    assert store.settle(by_account["bluesky"], DeliveryState.RETRYING, now=NOW, due_at=NOW)
    assert store.settle(by_account["website"], DeliveryState.FAILED, now=NOW, error="no")
    other = enqueue(store, "mastodon", "bluesky", due_at=NOW + timedelta(days=1))
    busy = only(claim(store, capacity={"mastodon": 1}, now=NOW + timedelta(days=1)))
    assert busy.post_id == other

    assert store.cancel(post_id, now=NOW) == 1
    assert store.cancel(other, now=NOW) == 1

    assert {d.account: d.state for d in store.deliveries_of(post_id)} == {
        "mastodon": DeliveryState.PUBLISHED,
        "bluesky": DeliveryState.CANCELLED,
        "website": DeliveryState.FAILED,
    }
    assert {d.account: d.state for d in store.deliveries_of(other)} == {
        "mastodon": DeliveryState.PUBLISHING,
        "bluesky": DeliveryState.CANCELLED,
    }
    assert delivery_of(store, post_id, "mastodon").remote_id == "1"
    assert claim(store, now=NOW + timedelta(days=2)) == []


def delivery_of(store: Store, post_id: int, account: str) -> Delivery:
    return only([d for d in store.deliveries_of(post_id) if d.account == account])


def test_cancel_twice_cancels_nothing_more(store: Store) -> None:
    """Cancelling an already cancelled post changes nothing and returns 0."""
    post_id = enqueue(store, "mastodon", "bluesky")
    assert store.cancel(post_id, now=NOW) == 2
    assert store.cancel(post_id, now=NOW) == 0


def test_cancel_of_a_missing_post_raises_not_found(store: Store) -> None:
    """``cancel`` of an unknown post id raises NotFound."""
    with pytest.raises(NotFound):
        store.cancel(4711, now=NOW)


def test_reschedule_moves_waiting_deliveries_and_publish_at(store: Store) -> None:
    """Waiting deliveries get the new due time, the post its new ``publish_at``; others stay."""
    post_id = enqueue(store, "mastodon", "bluesky")
    published = only(claim(store, capacity={"mastodon": 1}))
    assert store.settle(published, DeliveryState.PUBLISHED, now=NOW, remote_id="1")
    later = NOW + timedelta(days=2)

    assert store.reschedule(post_id, later, now=NOW) == 1

    assert store.get_post(post_id).publish_at == later
    assert delivery_of(store, post_id, "bluesky").due_at == later
    assert delivery_of(store, post_id, "mastodon").due_at == NOW
    assert claim(store, now=later - timedelta(seconds=1)) == []
    assert [d.account for d in claim(store, now=later)] == ["bluesky"]


def test_reschedule_of_a_missing_post_raises_not_found(store: Store) -> None:
    """``reschedule`` of an unknown post id raises NotFound."""
    with pytest.raises(NotFound):
        store.reschedule(4711, NOW, now=NOW)


def test_retry_puts_failed_and_unknown_back_in_the_queue(store: Store) -> None:
    """Failed and unknown deliveries become ``retrying``, due now, attempts reset, no error."""
    failed_post = enqueue(store, "mastodon", due_at=NOW - timedelta(hours=1))
    attempt = store.start_attempt(only(claim(store)), now=NOW)
    assert attempt is not None
    store.finish_attempt(attempt.id, Outcome.REJECTED, now=NOW, http_status=422)
    assert store.settle(
        delivery(store, failed_post), DeliveryState.FAILED, now=NOW, error="422 too long"
    )
    unknown_post = enqueue(store, "mastodon")
    make_unknown(store, unknown_post)
    later = NOW + timedelta(hours=1)

    assert store.retry(failed_post, now=later) == 1

    retried = delivery(store, failed_post)
    assert retried.state is DeliveryState.RETRYING
    assert retried.due_at == later
    assert retried.attempts == 0
    assert retried.error is None
    assert delivery(store, unknown_post).state is DeliveryState.UNKNOWN
    assert [d.post_id for d in claim(store, now=later)] == [failed_post]


def test_retry_of_an_unknown_delivery_keeps_it_uncertain(store: Store) -> None:
    """A retried ``unknown`` delivery stays uncertain, so the daemon looks before resending."""
    post_id = enqueue(store)
    make_unknown(store, post_id)

    assert store.retry(post_id, now=AFTER_LEASE) == 1

    retried = delivery(store, post_id)
    assert retried.state is DeliveryState.RETRYING
    assert retried.uncertain


def test_retry_of_all_posts(store: Store) -> None:
    """``retry(None)`` retries failed and unknown deliveries of every post, nothing else."""
    first = enqueue(store, "mastodon")
    make_settled(store, first, DeliveryState.FAILED, error="401")
    second = enqueue(store, "mastodon")
    make_unknown(store, second)
    waiting = enqueue(store, "mastodon", due_at=NOW + timedelta(days=1))
    published = enqueue(store, "mastodon")
    make_settled(store, published, DeliveryState.PUBLISHED, remote_id="1")

    assert store.retry(None, now=NOW) == 2

    assert delivery(store, first).state is DeliveryState.RETRYING
    assert delivery(store, second).state is DeliveryState.RETRYING
    assert delivery(store, waiting).state is DeliveryState.SCHEDULED
    assert delivery(store, published).state is DeliveryState.PUBLISHED
    assert store.retry(None, now=NOW) == 0


def test_retry_of_a_missing_post_raises_not_found(store: Store) -> None:
    """``retry`` of an unknown post id raises NotFound."""
    with pytest.raises(NotFound):
        store.retry(4711, now=NOW)


def test_counts_by_delivery_state(store: Store) -> None:
    """``counts`` gives the number of deliveries per state present in the queue."""
    assert store.counts() == {}
    enqueue(store, *ALL)
    enqueue(store, "mastodon", due_at=NOW + timedelta(days=1))
    claimed = claim(store, capacity={"mastodon": 1, "bluesky": 1})
    for d in claimed:
        if d.account == "bluesky":
            assert store.settle(d, DeliveryState.PUBLISHED, now=NOW, remote_id="1")

    assert store.counts() == {
        DeliveryState.SCHEDULED: 2,
        DeliveryState.PUBLISHING: 1,
        DeliveryState.PUBLISHED: 1,
    }


# -- the daemon's view of the queue ---------------------------------------------------------


def test_next_due_is_the_earliest_waiting_due_time(store: Store) -> None:
    """``next_due`` is the earliest ``due_at`` of waiting deliveries, past or future."""
    assert store.next_due(accounts=ALL, reconcilable=()) is None
    enqueue(store, "mastodon", due_at=NOW + timedelta(hours=2))
    enqueue(store, "mastodon", due_at=NOW + timedelta(hours=1))
    assert store.next_due(accounts=ALL, reconcilable=()) == NOW + timedelta(hours=1)
    enqueue(store, "mastodon", due_at=NOW - timedelta(hours=1))
    assert store.next_due(accounts=ALL, reconcilable=()) == NOW - timedelta(hours=1)


def test_next_due_only_looks_at_the_given_accounts(store: Store) -> None:
    """Deliveries of accounts not asked about do not count."""
    enqueue(store, "bluesky", due_at=NOW)
    enqueue(store, "mastodon", due_at=NOW + timedelta(hours=1))
    assert store.next_due(accounts=["mastodon"], reconcilable=()) == NOW + timedelta(hours=1)
    assert store.next_due(accounts=["website"], reconcilable=()) is None
    assert store.next_due(accounts=[], reconcilable=()) is None


def test_next_due_ignores_deliveries_that_cannot_be_claimed(store: Store) -> None:
    """Publishing, published and cancelled rows never make the daemon wake up."""
    make_settled(store, enqueue(store), DeliveryState.PUBLISHED, remote_id="1")
    claimed = enqueue(store, due_at=NOW - timedelta(minutes=1))
    claim(store)
    store.cancel(enqueue(store, due_at=NOW - timedelta(minutes=2)), now=NOW)
    assert delivery(store, claimed).state is DeliveryState.PUBLISHING

    assert store.next_due(accounts=ALL, reconcilable=("mastodon",)) is None


def test_next_due_counts_unknown_only_on_reconcilable_platforms(store: Store) -> None:
    """An ``unknown`` delivery is due for the daemon only where it can reconcile."""
    post_id = enqueue(store, "mastodon")
    unknown = make_unknown(store, post_id)
    assert store.next_due(accounts=ALL, reconcilable=()) is None
    assert store.next_due(accounts=ALL, reconcilable=("bluesky",)) is None
    assert store.next_due(accounts=ALL, reconcilable=("mastodon",)) == unknown.due_at


def test_change_marker_moves_when_the_queue_changes(store: Store) -> None:
    """A commit (here an enqueue) changes the marker the daemon polls."""
    before = store.change_marker()
    enqueue(store, now=NOW + timedelta(seconds=1))
    assert store.change_marker() != before


# -- accounts and daemons -----------------------------------------------------------------------


def test_account_states_start_empty(store: Store) -> None:
    """No account has a state until something is recorded for it."""
    assert store.account_states() == {}


def test_pause_and_resume_an_account(store: Store) -> None:
    """Pausing records reason and time; resuming clears them once and reports whether it did."""
    store.pause_account("mastodon", "401 Unauthorized", now=NOW)
    assert store.account_states() == {
        "mastodon": AccountState(
            account="mastodon", paused_reason="401 Unauthorized", paused_at=NOW
        )
    }

    assert store.resume_account("mastodon", now=NOW + timedelta(minutes=1))
    assert store.account_states()["mastodon"].paused_reason is None
    assert store.account_states()["mastodon"].paused_at is None
    assert not store.resume_account("mastodon", now=NOW)
    assert not store.resume_account("bluesky", now=NOW)


def test_block_and_text_limit_add_to_the_same_account_state(store: Store) -> None:
    """Pause, block and text limit are independent fields of one account's state."""
    store.pause_account("mastodon", "401", now=NOW)
    store.block_account("mastodon", NOW + timedelta(minutes=15), now=NOW)
    store.set_text_limit("mastodon", 11, now=NOW)
    store.set_text_limit("bluesky", 300, now=NOW)

    assert store.account_states() == {
        "mastodon": AccountState(
            account="mastodon",
            paused_reason="401",
            paused_at=NOW,
            blocked_until=NOW + timedelta(minutes=15),
            text_limit=11,
        ),
        "bluesky": AccountState(account="bluesky", text_limit=300),
    }
    store.set_text_limit("mastodon", 500, now=NOW)
    store.block_account("mastodon", NOW + timedelta(minutes=30), now=NOW)
    state = store.account_states()["mastodon"]
    assert (state.text_limit, state.blocked_until) == (500, NOW + timedelta(minutes=30))


def daemon_info(worker: str, *, started: datetime, beat: datetime, in_hand: int = 0) -> DaemonInfo:
    return DaemonInfo(
        worker=worker,
        host="queue-host",
        pid=4242,
        version="0.1.0",
        started_at=started,
        heartbeat_at=beat,
        in_hand=in_hand,
    )


def test_heartbeat_upserts_and_remove_daemon_forgets(store: Store) -> None:
    """A heartbeat adds or updates its daemon; ``daemons`` lists oldest start first."""
    assert store.daemons() == []
    late = daemon_info("host:2:b", started=NOW + timedelta(minutes=1), beat=NOW)
    early = daemon_info("host:1:a", started=NOW, beat=NOW)
    store.heartbeat(late)
    store.heartbeat(early)
    assert store.daemons() == [early, late]

    beat = daemon_info(
        "host:2:b", started=late.started_at, beat=NOW + timedelta(seconds=5), in_hand=3
    )
    store.heartbeat(beat)
    assert store.daemons() == [early, beat]

    store.remove_daemon("host:1:a")
    store.remove_daemon("never-seen")
    assert store.daemons() == [beat]


# -- the attempt log ---------------------------------------------------------------------------


def _log_three_attempts(store: Store) -> tuple[int, int, list[Attempt]]:
    """Attempts at NOW, NOW+1min (post A) and NOW+2min (post B)."""
    post_a = enqueue(store, "mastodon", "bluesky")
    post_b = enqueue(store, "website")
    by_account = {d.account: d for d in claim(store)}
    made = []
    for minutes, account in enumerate(["mastodon", "bluesky", "website"]):
        attempt = store.start_attempt(by_account[account], now=NOW + timedelta(minutes=minutes))
        assert attempt is not None
        made.append(attempt)
    return post_a, post_b, made


def test_attempts_come_oldest_first(store: Store) -> None:
    """Without filters, every attempt, in the order they started."""
    _, _, made = _log_three_attempts(store)
    assert store.attempts() == made
    assert [a.id for a in made] == sorted(a.id for a in made)


def test_attempts_filtered_by_post(store: Store) -> None:
    """``post_id`` keeps that post's attempts."""
    post_a, post_b, made = _log_three_attempts(store)
    assert store.attempts(post_id=post_a) == made[:2]
    assert store.attempts(post_id=post_b) == made[2:]
    assert store.attempts(post_id=4711) == []


def test_attempts_filtered_by_start_time(store: Store) -> None:
    """``since`` keeps attempts started at or after it."""
    _, _, made = _log_three_attempts(store)
    assert store.attempts(since=NOW + timedelta(minutes=1)) == made[1:]
    assert store.attempts(since=NOW + timedelta(minutes=3)) == []


def test_attempts_after_an_id_and_limited(store: Store) -> None:
    """``after_id`` pages on (``log --follow``); ``limit`` caps the page."""
    post_a, _, made = _log_three_attempts(store)
    assert store.attempts(after_id=made[0].id) == made[1:]
    assert store.attempts(after_id=made[-1].id) == []
    assert store.attempts(limit=2) == made[:2]
    assert store.attempts(after_id=made[0].id, post_id=post_a) == [made[1]]
