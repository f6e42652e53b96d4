"""The publisher: one claimed delivery through attempts, the retry policy and the store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from tests.unit.scripted import ScriptedAdapter

from crosspost.clock import FrozenClock
from crosspost.exceptions import AuthError, RateLimited, Rejected, Transient, UnknownOutcome
from crosspost.models import Delivery, DeliveryState, Outcome, Post, Rendered
from crosspost.publisher import Publisher
from crosspost.retry import RetryPolicy
from crosspost.store.memory import MemoryStore

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


def _policy(max_attempts: int = 3) -> RetryPolicy:
    return RetryPolicy(base=1.0, maximum=60.0, max_attempts=max_attempts, jitter=lambda: 0.0)


def _enqueue(store: MemoryStore, accounts: tuple[str, ...] = ("a",)) -> int:
    post = Post(
        title="T",
        body="Text",
        link="https://www.zv-staedtedreieck.de/x",
        category=None,
        publish_at=None,
        accounts=accounts,
    )
    rendered = [
        Rendered(a, "console", "Text\n\nhttps://www.zv-staedtedreieck.de/x", 10, 500, "characters")
        for a in accounts
    ]
    return store.enqueue(post, rendered, due_at=NOW, created_by="editor", now=NOW)


def _claim(store: MemoryStore, worker: str = "w1", now: datetime = NOW) -> list[Delivery]:
    return store.claim_due(
        worker, now=now, lease=LEASE, capacity={"a": 4, "b": 4}, reconcilable={"console"}
    )


def _publisher(
    store: MemoryStore,
    adapters: dict[str, ScriptedAdapter],
    *,
    clock: FrozenClock | None = None,
    inline: float = 0.0,
    max_attempts: int = 3,
) -> Publisher:
    return Publisher(
        store,
        adapters,
        clock=clock or FrozenClock(NOW),
        policy=_policy(max_attempts),
        max_inline_wait=inline,
    )


def _run(publisher: Publisher, delivery: Delivery) -> DeliveryState | None:
    return asyncio.run(publisher.publish(delivery))


def test_success_publishes_and_records_the_attempt() -> None:
    """A successful call settles the delivery as published with the remote id,
    after exactly one attempt row carrying the delivery's idempotency key."""
    store = MemoryStore()
    post = _enqueue(store)
    [delivery] = _claim(store)
    adapter = ScriptedAdapter("a")
    assert _run(_publisher(store, {"a": adapter}), delivery) is DeliveryState.PUBLISHED
    [stored] = store.deliveries_of(post)
    assert stored.state is DeliveryState.PUBLISHED
    assert stored.remote_id == f"r{delivery.id}"
    assert stored.worker is None
    assert stored.lease_until is None
    [attempt] = store.attempts(post_id=post)
    assert attempt.outcome is Outcome.PUBLISHED
    assert attempt.idempotency_key == delivery.idempotency_key
    assert adapter.copies() == 1


def test_a_transient_error_is_retried_inline_when_the_wait_is_short() -> None:
    """5xx then success: two attempts in one claim, the first recorded as transient."""
    store = MemoryStore()
    post = _enqueue(store)
    [delivery] = _claim(store)
    adapter = ScriptedAdapter("a", [Transient("503", http_status=503)])
    policy_wait = 1.0  # base * 2**0 with zero jitter is 0.5 s; allow it inline
    publisher = _publisher(store, {"a": adapter}, inline=policy_wait)
    publisher.policy = RetryPolicy(base=0.01, maximum=1, max_attempts=3, jitter=lambda: 0.0)
    assert _run(publisher, delivery) is DeliveryState.PUBLISHED
    outcomes = [a.outcome for a in store.attempts(post_id=post)]
    assert outcomes == [Outcome.TRANSIENT, Outcome.PUBLISHED]
    assert store.attempts(post_id=post)[0].http_status == 503


def test_a_long_wait_goes_back_to_the_queue_as_retrying() -> None:
    """When the backoff is longer than the inline limit the delivery is released
    as retrying, due after the backoff, and nothing else is sent now."""
    store = MemoryStore()
    post = _enqueue(store)
    [delivery] = _claim(store)
    adapter = ScriptedAdapter("a", [Transient("503", http_status=503)])
    assert _run(_publisher(store, {"a": adapter}), delivery) is DeliveryState.RETRYING
    [stored] = store.deliveries_of(post)
    assert stored.state is DeliveryState.RETRYING
    assert stored.due_at == NOW + timedelta(seconds=0.5)  # base 1 s, equal jitter at 0
    assert stored.error
    assert "503" in stored.error
    assert len(adapter.calls) == 1


def test_transient_errors_fail_the_delivery_after_max_attempts() -> None:
    """The third transient failure (max_attempts=3) fails the delivery for good."""
    store = MemoryStore()
    post = _enqueue(store)
    clock = FrozenClock(NOW)
    adapter = ScriptedAdapter("a", [Transient("down")] * 3)
    publisher = _publisher(store, {"a": adapter}, clock=clock)
    states = []
    for _ in range(3):
        clock.advance(timedelta(hours=1))
        [delivery] = _claim(store, now=clock.now())
        states.append(_run(publisher, delivery))
    assert states == [DeliveryState.RETRYING, DeliveryState.RETRYING, DeliveryState.FAILED]
    assert store.deliveries_of(post)[0].state is DeliveryState.FAILED


def test_rejected_fails_at_once_with_the_platforms_message() -> None:
    """A validation error is permanent: failed after one attempt, message kept."""
    store = MemoryStore()
    post = _enqueue(store)
    [delivery] = _claim(store)
    adapter = ScriptedAdapter("a", [Rejected("422 Text too long", http_status=422)])
    assert _run(_publisher(store, {"a": adapter}), delivery) is DeliveryState.FAILED
    [stored] = store.deliveries_of(post)
    assert stored.error == "422 Text too long"
    assert len(adapter.calls) == 1


def test_auth_error_pauses_only_that_account() -> None:
    """401 pauses account a with the reason; its delivery waits (retrying) and is
    not claimed, while account b's delivery is still claimed."""
    store = MemoryStore()
    post = _enqueue(store, ("a", "b"))
    claimed = _claim(store)
    da = next(d for d in claimed if d.account == "a")
    db = next(d for d in claimed if d.account == "b")
    adapters = {
        "a": ScriptedAdapter("a", [AuthError("401 invalid token")]),
        "b": ScriptedAdapter("b"),
    }
    publisher = _publisher(store, adapters)
    assert _run(publisher, da) is DeliveryState.RETRYING
    assert store.account_states()["a"].paused_reason == "401 invalid token"
    # b is unaffected
    assert _run(publisher, db) is DeliveryState.PUBLISHED
    assert _claim(store, now=NOW + timedelta(hours=1)) == []
    states = {d.account: d.state for d in store.deliveries_of(post)}
    assert states == {"a": DeliveryState.RETRYING, "b": DeliveryState.PUBLISHED}
    store.resume_account("a", now=NOW)
    assert [d.account for d in _claim(store, now=NOW + timedelta(hours=1))] == ["a"]


def test_rate_limit_waits_until_the_platform_allows_and_blocks_the_account() -> None:
    """429 with a reset 120 s ahead: the delivery is due no earlier than that, and
    the whole account is blocked until then."""
    store = MemoryStore()
    post = _enqueue(store)
    [delivery] = _claim(store)
    until = NOW + timedelta(seconds=120)
    adapter = ScriptedAdapter("a", [RateLimited("429", until=until)])
    assert _run(_publisher(store, {"a": adapter}), delivery) is DeliveryState.RETRYING
    [stored] = store.deliveries_of(post)
    assert stored.due_at >= until
    assert store.account_states()["a"].blocked_until == until
    assert _claim(store, now=until - timedelta(seconds=1)) == []


def test_unknown_outcome_without_a_safe_resend_stays_unknown_and_is_not_resent() -> None:
    """A platform with neither idempotency nor lookup (Telegram): the delivery
    becomes unknown after one call and the daemon never claims it again."""
    store = MemoryStore()
    post = _enqueue(store)
    [delivery] = _claim(store)
    adapter = ScriptedAdapter("a", [UnknownOutcome("read timeout")])
    assert _run(_publisher(store, {"a": adapter}), delivery) is DeliveryState.UNKNOWN
    [stored] = store.deliveries_of(post)
    assert stored.state is DeliveryState.UNKNOWN
    assert stored.uncertain
    later = store.claim_due(
        "w1", now=NOW + timedelta(days=1), lease=LEASE, capacity={"a": 4}, reconcilable=set()
    )
    assert later == []
    assert len(adapter.calls) == 1


def test_unknown_outcome_is_reconciled_by_lookup_before_any_resend() -> None:
    """The first call landed but its answer was lost; the next attempt looks the
    post up, finds it, and settles as published without sending again."""
    store = MemoryStore()
    post = _enqueue(store)
    [delivery] = _claim(store)
    adapter = ScriptedAdapter("a", [UnknownOutcome("reset after sending")], reconcile=True)
    publisher = _publisher(store, {"a": adapter})
    publisher.policy = RetryPolicy(base=0.01, maximum=1, max_attempts=3, jitter=lambda: 0.0)
    publisher.max_inline_wait = 1.0
    assert _run(publisher, delivery) is DeliveryState.PUBLISHED
    assert len(adapter.calls) == 1
    assert adapter.lookups == 1
    assert adapter.copies() == 1
    outcomes = [a.outcome for a in store.attempts(post_id=post)]
    assert outcomes == [Outcome.UNKNOWN, Outcome.FOUND]


def test_a_lost_lease_never_overwrites_the_new_owner() -> None:
    """If the lease expired and another worker re-claimed the delivery, the old
    worker's result is dropped and the row stays the new owner's."""
    store = MemoryStore()
    post = _enqueue(store)
    [old] = _claim(store, "w1")
    later = NOW + timedelta(minutes=5)
    store.reap_expired(now=later)
    [new] = _claim(store, "w2", now=later)
    adapter = ScriptedAdapter("a")
    assert _run(_publisher(store, {"a": adapter}), old) is None
    [stored] = store.deliveries_of(post)
    assert stored.state is DeliveryState.PUBLISHING
    assert stored.worker == "w2"
    assert stored.lease_token == new.lease_token
    assert adapter.calls == []


def test_stopping_during_a_wait_releases_the_delivery() -> None:
    """SIGTERM while waiting between attempts: the delivery goes back to the queue
    as retrying instead of being held or dropped."""
    store = MemoryStore()
    post = _enqueue(store)
    [delivery] = _claim(store)
    adapter = ScriptedAdapter("a", [Transient("503")])
    publisher = _publisher(store, {"a": adapter}, inline=30)

    async def scenario() -> DeliveryState | None:
        task = asyncio.create_task(publisher.publish(delivery))
        while (
            not store.attempts(post_id=post)
            or store.attempts(post_id=post)[0].outcome is Outcome.PENDING
        ):
            await asyncio.sleep(0)
        publisher.stopping.set()
        return await task

    assert asyncio.run(scenario()) is DeliveryState.RETRYING
    assert store.deliveries_of(post)[0].state is DeliveryState.RETRYING
    assert len(adapter.calls) == 1


@pytest.mark.parametrize("reconcile", [True, False])
def test_an_idempotent_or_reconcilable_platform_is_retried_after_an_unknown_outcome(
    reconcile: bool,
) -> None:
    """Unknown outcome on a platform with idempotency keys (no lookup) is resent
    with the same key; with lookup it is found. Either way one copy exists."""
    store = MemoryStore()
    _enqueue(store)
    [delivery] = _claim(store)
    adapter = ScriptedAdapter(
        "a", [UnknownOutcome("lost")], idempotent=not reconcile, reconcile=reconcile
    )
    publisher = _publisher(store, {"a": adapter}, inline=1.0)
    publisher.policy = RetryPolicy(base=0.01, maximum=1, max_attempts=3, jitter=lambda: 0.0)
    assert _run(publisher, delivery) is DeliveryState.PUBLISHED
    keys = {c.idempotency_key for c in adapter.calls}
    assert keys == {delivery.idempotency_key}
    assert adapter.copies() == 1


def _confirmed_then_lost(store: MemoryStore, later: datetime) -> tuple[int, Delivery]:
    """Worker w1 got the platform's confirmation (attempt ``published``) and died
    before it settled the delivery; w2 claims it again after the lease ran out."""
    post = _enqueue(store)
    [first] = _claim(store, "w1")
    attempt = store.start_attempt(first, now=NOW)
    assert attempt is not None
    store.finish_attempt(attempt.id, Outcome.PUBLISHED, now=NOW, message="https://social/1")
    store.reap_expired(now=later)
    [again] = _claim(store, "w2", now=later)
    assert again.uncertain
    return post, again


@pytest.mark.parametrize(
    ("idempotent", "minutes", "expected"),
    [
        (True, 5, DeliveryState.PUBLISHED),  # the platform still knows the key
        (True, 55, DeliveryState.UNKNOWN),  # the key has expired: a resend is a second post
        (False, 5, DeliveryState.UNKNOWN),  # no key at all
    ],
)
def test_a_confirmed_post_missing_from_the_lookup_is_resent_only_under_a_live_key(
    idempotent: bool, minutes: int, expected: DeliveryState
) -> None:
    """The lookup misses a post the platform confirmed (it scrolled out of the recent
    posts). With an idempotency key the platform still honours, resending is safe —
    the platform answers with the same post; otherwise only a person can settle it."""
    store = MemoryStore()
    later = NOW + timedelta(minutes=minutes)
    post, delivery = _confirmed_then_lost(store, later)
    adapter = ScriptedAdapter("a", idempotent=idempotent, reconcile=True)
    # A class constant of a real adapter, set on this one double.
    adapter.idempotency_ttl = timedelta(minutes=50)  # type: ignore[misc]
    publisher = _publisher(store, {"a": adapter}, clock=FrozenClock(later), inline=1.0)
    assert _run(publisher, delivery) is expected
    assert adapter.lookups == 1
    sent = [c.idempotency_key for c in adapter.calls]
    assert sent == ([delivery.idempotency_key] if expected is DeliveryState.PUBLISHED else [])
    assert store.deliveries_of(post)[0].state is expected
