"""The retry policy: a pure function from (error, attempt) to a decision.

The publisher asks :meth:`RetryPolicy.decide` after every failed attempt and
does what it says: tenacity waits the short delays (its loop is entered only after
a failure), longer ones go back to the database as ``retrying`` with a due time.
Nothing here sleeps or does I/O.

=====================  =====================================================
error                  decision
=====================  =====================================================
AuthError              PAUSE the account; the delivery waits
Rejected               FAIL with the platform's message
RateLimited(until)     RETRY no earlier than ``until`` (not counted as a try)
Transient              RETRY with exponential backoff and jitter, then FAIL
UnknownOutcome         RETRY if a resend is safe (idempotency key honoured or
                       the post can be looked up first), else UNKNOWN
=====================  =====================================================
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from crosspost.exceptions import (
    AuthError,
    PlatformError,
    RateLimited,
    Rejected,
    Transient,
    UnknownOutcome,
)


class Action(enum.StrEnum):
    RETRY = "retry"
    FAIL = "fail"
    PAUSE = "pause"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class RetryDecision:
    action: Action
    #: seconds to wait before the next attempt (RETRY only)
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base: float = 2.0
    maximum: float = 3600.0
    max_attempts: int = 8
    #: returns a number in [0, 1); injectable so tests are deterministic
    jitter: Callable[[], float] = random.random

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random."""
        # The exponent is bounded: 2.0 ** 1024 overflows, and any step this large is capped anyway.
        ceiling = min(self.maximum, self.base * (2.0 ** min(max(0, attempt - 1), 64)))
        return ceiling / 2 + self.jitter() * ceiling / 2

    def decide(
        self,
        error: PlatformError,
        attempt: int,
        *,
        now: datetime,
        safe_to_resend: bool,
    ) -> RetryDecision:
        """What to do after attempt number ``attempt`` (1-based) failed with ``error``."""
        if isinstance(error, AuthError):
            return RetryDecision(Action.PAUSE)
        if isinstance(error, Rejected):
            return RetryDecision(Action.FAIL)
        if isinstance(error, RateLimited):
            if error.until is None:
                return RetryDecision(Action.RETRY, self.backoff(attempt))
            # A little jitter after the reset keeps several workers from stampeding.
            wait = max(0.0, (error.until - now).total_seconds())
            return RetryDecision(Action.RETRY, wait + self.jitter() * min(1.0, self.base))
        if isinstance(error, UnknownOutcome):
            if not safe_to_resend:
                return RetryDecision(Action.UNKNOWN)
            if attempt >= self.max_attempts:
                return RetryDecision(Action.UNKNOWN)
            return RetryDecision(Action.RETRY, self.backoff(attempt))
        if isinstance(error, Transient):
            if attempt >= self.max_attempts:
                return RetryDecision(Action.FAIL)
            return RetryDecision(Action.RETRY, self.backoff(attempt))
        return RetryDecision(Action.FAIL)
