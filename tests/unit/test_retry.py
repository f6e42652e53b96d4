"""The retry policy: one decision per error class and attempt, with bounded, jittered backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TypedDict, Unpack

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crosspost.clock import FrozenClock
from crosspost.exceptions import (
    AuthError,
    PlatformError,
    RateLimited,
    Rejected,
    Transient,
    UnknownOutcome,
)
from crosspost.retry import Action, RetryDecision, RetryPolicy

NOW = FrozenClock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC)).now()
ALMOST_ONE = 1.0 - 1e-9


class PolicyFields(TypedDict, total=False):
    """The fields of :class:`RetryPolicy` a test may set (besides the jitter)."""

    base: float
    maximum: float
    max_attempts: int


def policy(jitter: float = 0.0, **kwargs: Unpack[PolicyFields]) -> RetryPolicy:
    return RetryPolicy(jitter=lambda: jitter, **kwargs)


def decide(
    error: PlatformError,
    attempt: int = 1,
    *,
    safe: bool = False,
    retry_policy: RetryPolicy | None = None,
) -> RetryDecision:
    return (retry_policy or policy()).decide(error, attempt, now=NOW, safe_to_resend=safe)


# --- one decision per error class ------------------------------------------------------------


@pytest.mark.parametrize("attempt", [1, 3, 8, 50])
def test_auth_error_pauses_the_account(attempt: int) -> None:
    """Refused credentials pause the account at any attempt; retrying would not help."""
    decision = decide(AuthError("401 invalid token", http_status=401), attempt)
    assert decision == RetryDecision(Action.PAUSE)


@pytest.mark.parametrize("attempt", [1, 3, 8])
def test_rejected_fails_at_once(attempt: int) -> None:
    """A post the platform refused for good fails without a retry, even on the first try."""
    assert decide(Rejected("422 text too long", http_status=422), attempt) == RetryDecision(
        Action.FAIL
    )


def test_plain_platform_error_fails() -> None:
    """An error of no more specific class is not retried."""
    assert decide(PlatformError("odd"), 1).action is Action.FAIL


def test_transient_is_retried_with_backoff_until_max_attempts() -> None:
    """Transient errors retry after backoff(attempt) until attempt max_attempts, then fail."""
    retry_policy = policy(base=2.0, maximum=3600.0, max_attempts=4)
    delays = [decide(Transient("503"), n, retry_policy=retry_policy) for n in (1, 2, 3)]
    assert delays == [RetryDecision(Action.RETRY, d) for d in (1.0, 2.0, 4.0)]
    assert decide(Transient("503"), 4, retry_policy=retry_policy) == RetryDecision(Action.FAIL)
    assert decide(Transient("503"), 5, retry_policy=retry_policy) == RetryDecision(Action.FAIL)


def test_unknown_outcome_unsafe_to_resend_is_unknown_at_once() -> None:
    """If a resend could post twice, the delivery goes to unknown on the first such error."""
    decision = decide(UnknownOutcome("read timeout after POST"), 1, safe=False)
    assert decision == RetryDecision(Action.UNKNOWN)


def test_unknown_outcome_safe_to_resend_is_retried() -> None:
    """With an idempotency key or a look-up first, a lost answer is retried with backoff."""
    retry_policy = policy(base=2.0, max_attempts=3)
    decision = decide(UnknownOutcome("lost"), 2, safe=True, retry_policy=retry_policy)
    assert decision == RetryDecision(Action.RETRY, 2.0)


def test_unknown_outcome_at_max_attempts_stays_unknown_never_failed() -> None:
    """After the last attempt a possibly-landed post is unknown, not failed: it may be live."""
    retry_policy = policy(max_attempts=3)
    for attempt in (3, 4):
        decision = decide(UnknownOutcome("lost"), attempt, safe=True, retry_policy=retry_policy)
        assert decision == RetryDecision(Action.UNKNOWN)


# --- rate limits -----------------------------------------------------------------------------


@pytest.mark.parametrize("jitter", [0.0, 0.5, ALMOST_ONE])
def test_rate_limit_waits_until_the_platform_allows_and_never_less(jitter: float) -> None:
    """RateLimited(until) retries no earlier than until, plus at most one second of jitter."""
    until = NOW + timedelta(seconds=90)
    decision = decide(RateLimited("429", until=until), 1, retry_policy=policy(jitter))
    assert decision.action is Action.RETRY
    assert 90.0 <= decision.delay < 91.0
    assert NOW + timedelta(seconds=decision.delay) >= until


def test_rate_limit_without_jitter_waits_exactly_until() -> None:
    """With jitter 0 the delay is exactly the time left until the reset."""
    until = NOW + timedelta(minutes=15)
    decision = decide(RateLimited("429", until=until), 1)
    assert decision == RetryDecision(Action.RETRY, 900.0)


def test_rate_limit_in_the_past_retries_now() -> None:
    """A reset that has already passed means retry at once (plus jitter), never a negative wait."""
    decision = decide(RateLimited("429", until=NOW - timedelta(hours=1)), 1)
    assert decision == RetryDecision(Action.RETRY, 0.0)


def test_rate_limit_does_not_count_as_an_attempt() -> None:
    """Waiting for a rate limit is retried even past max_attempts: the post was never sent."""
    retry_policy = policy(max_attempts=3)
    until = NOW + timedelta(seconds=30)
    decision = decide(RateLimited("429", until=until), 10, retry_policy=retry_policy)
    assert decision == RetryDecision(Action.RETRY, 30.0)


def test_rate_limit_without_until_uses_backoff() -> None:
    """A 429 without any hint waits as long as the backoff for that attempt."""
    retry_policy = policy(base=2.0)
    decision = decide(RateLimited("429", until=None), 3, retry_policy=retry_policy)
    assert decision == RetryDecision(Action.RETRY, retry_policy.backoff(3))
    assert decision.delay == 4.0


@given(
    seconds=st.floats(min_value=-86400, max_value=86400, allow_nan=False),
    jitter=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    attempt=st.integers(min_value=1, max_value=1000),
)
def test_rate_limit_delay_never_ends_before_until(
    seconds: float, jitter: float, attempt: int
) -> None:
    """For any reset time, jitter and attempt, now + delay is never before until."""
    until = NOW + timedelta(seconds=seconds)
    decision = decide(RateLimited("429", until=until), attempt, retry_policy=policy(jitter))
    assert decision.action is Action.RETRY
    assert decision.delay >= 0
    assert NOW + timedelta(seconds=decision.delay) >= until


# --- backoff ---------------------------------------------------------------------------------


def test_backoff_without_jitter_is_half_the_exponential_step() -> None:
    """With jitter 0 the wait is the fixed half: base/2, base, 2·base, … ("equal jitter")."""
    retry_policy = policy(0.0, base=2.0, maximum=3600.0)
    assert [retry_policy.backoff(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]


def test_backoff_with_jitter_near_one_is_just_under_the_full_step() -> None:
    """With jitter close to 1 the wait approaches base·2^(attempt-1) and never exceeds it."""
    retry_policy = policy(ALMOST_ONE, base=2.0, maximum=3600.0)
    for attempt in range(1, 7):
        step = 2.0 * 2 ** (attempt - 1)
        assert step * 0.999 < retry_policy.backoff(attempt) <= step


def test_backoff_is_capped_at_maximum() -> None:
    """Late attempts wait between maximum/2 and maximum, never longer."""
    low, high = policy(0.0, maximum=600.0), policy(ALMOST_ONE, maximum=600.0)
    for attempt in (12, 30, 100):
        assert low.backoff(attempt) == 300.0
        assert 599.0 < high.backoff(attempt) <= 600.0


def test_attempt_zero_or_below_waits_like_the_first() -> None:
    """A non-positive attempt number does not shrink the wait below the first step."""
    retry_policy = policy(0.0, base=2.0)
    assert retry_policy.backoff(0) == retry_policy.backoff(-3) == retry_policy.backoff(1)


@given(
    attempt=st.integers(min_value=1, max_value=10**6),
    jitter=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    base=st.floats(min_value=0.01, max_value=60.0),
    maximum=st.floats(min_value=60.0, max_value=86400.0),
)
def test_backoff_stays_within_its_bounds_for_any_attempt(
    attempt: int, jitter: float, base: float, maximum: float
) -> None:
    """For any attempt number the wait is positive, at most maximum, and at least half the
    uncapped-or-capped step: no overflow, however long a delivery has been retrying."""
    retry_policy = policy(jitter, base=base, maximum=maximum)
    delay = retry_policy.backoff(attempt)
    step = min(maximum, base * 2.0 ** min(attempt - 1, 64))
    assert 0 < delay <= maximum
    assert step / 2 <= delay <= step


def test_backoff_grows_with_the_attempt_for_a_fixed_jitter() -> None:
    """More failures never mean a shorter wait."""
    retry_policy = policy(0.3, base=1.5, maximum=1000.0)
    delays = [retry_policy.backoff(n) for n in range(1, 40)]
    assert delays == sorted(delays)


def test_default_jitter_stays_within_bounds() -> None:
    """The real random jitter keeps each wait within [step/2, step]."""
    retry_policy = RetryPolicy(base=2.0, maximum=3600.0)
    for _ in range(200):
        assert 4.0 <= retry_policy.backoff(3) <= 8.0
