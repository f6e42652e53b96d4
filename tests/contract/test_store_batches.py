"""The daemon's batched hot path of the Store contract: ``claim_and_start`` and
``finish_and_settle`` (issue 6), on every backend.

They must keep every promise of the one-at-a-time methods they replace: the
attempt row is durable before the request (it is written with the claim), the
outcome is durable before the lease is released (one transaction), and the
fencing token still decides who may settle.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.contract.test_store import (
    AFTER_LEASE,
    LEASE,
    NOW,
    PLENTY,
    claim,
    delivery,
    enqueue,
    make_unknown,
    only,
)

from crosspost.models import DeliveryState, Outcome
from crosspost.store.base import Claim, Settlement, Store


def claim_and_start(
    store: Store,
    worker: str = "worker-a",
    *,
    now: datetime = NOW,
    reconcilable: tuple[str, ...] = ("mastodon", "bluesky", "feed"),
) -> list[Claim]:
    return store.claim_and_start(
        worker, now=now, lease=LEASE, capacity=PLENTY, reconcilable=reconcilable
    )


def test_claim_and_start_writes_the_first_attempt_with_the_claim(store: Store) -> None:
    """Every claimed delivery comes with its post and a ``pending`` attempt number 1."""
    first = enqueue(store, "mastodon", "bluesky", title="Erster")
    second = enqueue(store, "mastodon", title="Zweiter", due_at=NOW - timedelta(minutes=1))

    claims = claim_and_start(store)

    # in claim order: the earliest due first, then by delivery id
    assert [(c.delivery.post_id, c.delivery.account) for c in claims] == [
        (second, "mastodon"),
        (first, "mastodon"),
        (first, "bluesky"),
    ]
    for c in claims:
        assert c.post.id == c.delivery.post_id
        assert c.post.title == ("Erster" if c.post.id == first else "Zweiter")
        assert c.attempt is not None
        assert c.attempt.delivery_id == c.delivery.id
        assert c.attempt.number == 1
        assert c.attempt.outcome is Outcome.PENDING
        assert c.attempt.worker == "worker-a"
        assert c.attempt.idempotency_key == c.delivery.idempotency_key
        assert c.delivery.state is DeliveryState.PUBLISHING
        assert c.delivery.attempts == 1
    stored = {a.id: a for a in store.attempts()}
    assert set(stored) == {c.attempt.id for c in claims if c.attempt}
    assert all(a.outcome is Outcome.PENDING for a in stored.values())
    assert claim(store) == []  # leased: nobody else gets them


def test_claim_and_start_leaves_an_uncertain_delivery_to_look_first(store: Store) -> None:
    """An uncertain delivery is claimed without an attempt: it must look on the platform
    (or wait) before anything is sent, and starts its attempt itself."""
    post_id = enqueue(store)
    make_unknown(store, post_id)
    before = len(store.attempts())

    c = only(claim_and_start(store, now=AFTER_LEASE, reconcilable=("mastodon",)))

    assert c.attempt is None
    assert c.delivery.uncertain
    assert c.delivery.attempts == 1  # only the attempt of the earlier, reaped lease
    assert len(store.attempts()) == before
    assert store.start_attempt(c.delivery, now=AFTER_LEASE) is not None


def test_claim_and_start_leaves_a_platform_without_safe_resends_to_start_later(
    store: Store,
) -> None:
    """Outside ``reconcilable`` (no idempotent resend, no lookup) the claim writes no
    attempt: a worker dying before the request must leave a delivery that is simply
    retried, not one only a person can settle."""
    safe_id = enqueue(store, "mastodon", title="Sicher")
    unsafe_id = enqueue(store, "bluesky", title="Ohne Nachschlagen")

    claims = {c.delivery.post_id: c for c in claim_and_start(store, reconcilable=("mastodon",))}

    assert claims[safe_id].attempt is not None
    assert claims[unsafe_id].attempt is None
    assert claims[unsafe_id].delivery.attempts == 0
    assert [a.delivery_id for a in store.attempts()] == [claims[safe_id].delivery.id]
    assert store.reap_expired(now=AFTER_LEASE) == 2
    assert delivery(store, unsafe_id).state is DeliveryState.RETRYING
    assert delivery(store, safe_id).state is DeliveryState.UNKNOWN


def test_a_crash_after_claim_and_start_reads_as_may_have_landed(store: Store) -> None:
    """The attempt exists from the claim on: a worker that dies before settling leaves a
    delivery the reaper marks unknown and uncertain (looked up, never blindly resent)."""
    post_id = enqueue(store)
    claim_and_start(store)

    assert store.reap_expired(now=AFTER_LEASE) == 1

    reaped = delivery(store, post_id)
    assert reaped.state is DeliveryState.UNKNOWN
    assert reaped.uncertain
    assert only(store.attempts()).outcome is Outcome.CRASHED


def test_finish_and_settle_records_outcomes_and_states_together(store: Store) -> None:
    """One call settles a batch of different shapes: each attempt gets its outcome and
    duration, each delivery its new state; the results say which leases were ours."""
    published_id = enqueue(store, "mastodon", title="Veröffentlicht")
    retry_id = enqueue(store, "bluesky", title="Später")
    claims = {c.delivery.post_id: c for c in claim_and_start(store)}
    one, two = claims[published_id], claims[retry_id]
    assert one.attempt is not None
    assert two.attempt is not None
    later = NOW + timedelta(seconds=2)

    done = store.finish_and_settle(
        [
            Settlement(
                one.delivery,
                DeliveryState.PUBLISHED,
                one.attempt,
                Outcome.PUBLISHED,
                later,
                message="https://social.example/@zv/1",
                remote_id="1",
                remote_url="https://social.example/@zv/1",
            ),
            Settlement(
                two.delivery,
                DeliveryState.RETRYING,
                two.attempt,
                Outcome.TRANSIENT,
                later,
                http_status=503,
                message="Service Unavailable",
                due_at=later + timedelta(minutes=1),
                error="Service Unavailable",
            ),
        ]
    )

    assert done == [True, True]
    published = delivery(store, published_id)
    assert published.state is DeliveryState.PUBLISHED
    assert (published.remote_id, published.remote_url) == ("1", "https://social.example/@zv/1")
    assert published.published_at == later
    assert (published.worker, published.lease_until) == (None, None)
    retrying = delivery(store, retry_id)
    assert retrying.state is DeliveryState.RETRYING
    assert retrying.due_at == later + timedelta(minutes=1)
    assert retrying.error == "Service Unavailable"
    attempts = {a.delivery_id: a for a in store.attempts()}
    assert attempts[one.delivery.id].outcome is Outcome.PUBLISHED
    assert attempts[one.delivery.id].duration_ms == 2000
    assert attempts[one.delivery.id].finished_at == later
    assert attempts[two.delivery.id].outcome is Outcome.TRANSIENT
    assert attempts[two.delivery.id].http_status == 503


def test_finish_and_settle_is_fenced_per_delivery(store: Store) -> None:
    """A delivery whose lease was taken over is not touched (False), while the others of
    the same batch settle; the lost one's attempt outcome is still recorded."""
    lost_id = enqueue(store, "mastodon", title="Verloren")
    kept_id = enqueue(store, "bluesky", title="Behalten")
    claims = {c.delivery.post_id: c for c in claim_and_start(store)}
    lost, kept = claims[lost_id], claims[kept_id]
    assert lost.attempt is not None
    assert kept.attempt is not None
    assert store.settle(lost.delivery, DeliveryState.RETRYING, now=NOW, due_at=NOW)
    taken = only(claim(store, "worker-b"))
    assert taken.post_id == lost_id

    done = store.finish_and_settle(
        [
            Settlement(lost.delivery, DeliveryState.PUBLISHED, lost.attempt, Outcome.PUBLISHED, NOW,
                       remote_id="a"),
            Settlement(kept.delivery, DeliveryState.PUBLISHED, kept.attempt, Outcome.PUBLISHED, NOW,
                       remote_id="b"),
        ]
    )  # fmt: skip

    assert done == [False, True]
    assert delivery(store, lost_id) == taken
    assert delivery(store, kept_id).remote_id == "b"
    outcomes = {a.delivery_id: a.outcome for a in store.attempts()}
    assert outcomes[lost.delivery.id] is Outcome.PUBLISHED
    assert store.finish_and_settle([]) == []
