"""One delivery, from claim to a settled state: compose the request, call the
adapter, record every attempt, and follow the retry policy.

No SQL and no httpx here: the store and the adapters are ports. Store calls
are synchronous and run through ``db`` (an executor in the daemon) so the event
loop never waits on the database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar

from tenacity import AsyncRetrying, RetryCallState, stop_never

from crosspost.adapters.base import ANSWERS, Adapter, Answers
from crosspost.clock import Clock
from crosspost.exceptions import (
    AuthError,
    PlatformError,
    RateLimited,
    Transient,
    UnknownOutcome,
)
from crosspost.i18n import _
from crosspost.models import (
    Attempt,
    Budget,
    Delivery,
    DeliveryState,
    Media,
    Outcome,
    PublishRequest,
    PublishResult,
    StoredPost,
)
from crosspost.observability import EventLogger
from crosspost.retry import Action, RetryDecision, RetryPolicy
from crosspost.store.base import Settlement, Store

P = ParamSpec("P")
T = TypeVar("T")
DbCall = Callable[..., Awaitable[Any]]

log = EventLogger("crosspost.publisher")


def outcome_of(error: PlatformError) -> Outcome:
    if isinstance(error, AuthError):
        return Outcome.AUTH
    if isinstance(error, RateLimited):
        return Outcome.RATE_LIMITED
    if isinstance(error, Transient):
        return Outcome.TRANSIENT
    if isinstance(error, UnknownOutcome):
        return Outcome.UNKNOWN
    return Outcome.REJECTED


class LeaseLost(Exception):
    """Another worker owns the delivery now; drop it without touching the row."""


class _Stopping(Exception):
    """The daemon is shutting down during a wait between attempts."""


async def run_sync(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a store method directly (tests, ``daemon --once`` on the memory store)."""
    return fn(*args, **kwargs)


class Publisher:
    def __init__(
        self,
        store: Store,
        adapters: Mapping[str, Adapter],
        *,
        clock: Clock,
        policy: RetryPolicy,
        max_inline_wait: float,
        db: DbCall = run_sync,
        stopping: asyncio.Event | None = None,
        landing_window: float = 0.0,
    ) -> None:
        self.store = store
        self.adapters = adapters
        self.clock = clock
        self.policy = policy
        self.max_inline_wait = max_inline_wait
        #: how long after an attempt whose request may still be under way a lookup can
        #: trust "not there" (platforms that are only looked up, without idempotency)
        self.landing_window = landing_window
        self.db = db
        #: writes a finished attempt with the delivery's new state (the daemon batches these)
        self.finish: Callable[[Settlement], Awaitable[bool]] = self._finish_one
        #: called once no request of this publish call can follow (the daemon frees the
        #: account's slot then, while the settlement is still being written)
        self.requests_done: Callable[[Delivery], None] = lambda delivery: None
        self.stopping = stopping or asyncio.Event()
        #: (platform, post id, media) -> the public URLs of the images, () while the
        #: website has not published them (Instagram and Threads fetch images there)
        self.media_urls: Callable[[str, int, tuple[Media, ...]], tuple[str, ...]] = (
            lambda platform, post_id, media: ()
        )
        #: (category, account, base) -> when a delivery the daemon sends back to the
        #: queue is due: the daemon's rule moves it out of quiet hours (crosspost.policy)
        self.due_rule: Callable[[str | None, str, datetime], datetime] = (
            lambda category, account, base: base
        )
        #: (account, at, now): an account rate-limited until ``at`` holds its other
        #: waiting deliveries out of quiet hours too (the daemon's store call)
        self.hold_quiet: Callable[[str, datetime, datetime], object] = lambda *args: None

    async def _finish_one(self, settlement: Settlement) -> bool:
        done: list[bool] = await self.db(self.store.finish_and_settle, [settlement])
        return done[0]

    async def publish(
        self,
        delivery: Delivery,
        *,
        post: StoredPost | None = None,
        attempt: Attempt | None = None,
    ) -> DeliveryState | None:
        """Publish one claimed delivery; return its new state (None if the lease was lost).

        ``post`` and ``attempt`` come from :meth:`Store.claim_and_start` (the post, and
        the first attempt written in the claim's transaction); without them they are
        read and written here.
        """
        adapter = self.adapters[delivery.account]
        if post is None:
            post = await self.db(self.store.get_post, delivery.post_id)
        state = _Progress(uncertain=delivery.uncertain, progress=delivery.progress)
        state.category = post.category
        state.prestarted = attempt

        async def checkpoint(progress: Mapping[str, str]) -> None:
            """Persist the adapter's progress before the request that depends on it."""
            saved = await self.db(
                self.store.save_progress, delivery, progress, now=self.clock.now()
            )
            if not saved:
                raise LeaseLost
            state.progress = dict(progress)

        request = PublishRequest(
            delivery_id=delivery.id,
            post_id=delivery.post_id,
            account=delivery.account,
            text=delivery.text,
            link=post.link,
            title=post.title,
            media=post.media,
            idempotency_key=delivery.idempotency_key,
            created_at=post.created_at,
            checkpoint=checkpoint,
        )
        safe = adapter.idempotent_resend or adapter.can_reconcile
        lookup_only = adapter.can_reconcile and not adapter.idempotent_resend
        if delivery.uncertain:
            wait, confirmed_at = await self._earlier_attempts(delivery)
            # A confirmed post is only resent where the platform still knows the
            # idempotency key (it answers with the same post); elsewhere it is a second copy.
            state.confirmed = confirmed_at is not None and not (
                adapter.idempotent_resend
                and (
                    adapter.idempotency_ttl is None
                    or self.clock.now() - confirmed_at < adapter.idempotency_ttl
                )
            )
            if not lookup_only:
                wait = 0.0
            if wait > self.max_inline_wait:
                return await self._defer_lookup(delivery, wait, state)
            if wait > 0:
                try:
                    await self._sleep(wait)
                except _Stopping:
                    return await self._settle_stopping(delivery, state)
        try:
            try:
                # The usual case, one try, runs without the retry machinery: tenacity's
                # loop cost ~5 % of the publish path's CPU even when nothing failed.
                found, result = await self._attempt(delivery, adapter, request, state)
            except PlatformError as error:
                found, result = await self._retry(
                    error, delivery, adapter, request, state, safe, lookup_only
                )
            return await self._settle_published(delivery, result, found, state)
        except LeaseLost:
            log.warning("lease_lost", delivery=delivery.id, account=delivery.account)
            return None
        except _Stopping:
            return await self._settle_stopping(delivery, state)
        except PlatformError as error:
            return await self._settle_failure(delivery, error, state)

    async def _attempt(
        self,
        delivery: Delivery,
        adapter: Adapter,
        request: PublishRequest,
        state: _Progress,
    ) -> tuple[bool, PublishResult]:
        attempt = state.prestarted
        state.prestarted = None
        if attempt is None:
            attempt = await self.db(self.store.start_attempt, delivery, now=self.clock.now())
        if attempt is None:
            raise LeaseLost
        state.attempt = attempt.number
        request = replace(
            request,
            progress=dict(state.progress),
            # Looked up on every attempt: the website's copy of the images may have
            # appeared since the last one (Instagram and Threads fetch them there).
            media_urls=self.media_urls(adapter.platform, request.post_id, request.media),
        )
        started = time.monotonic()
        answers = Answers()
        recording = ANSWERS.set(answers)
        try:
            if state.uncertain and adapter.can_reconcile:
                existing = await adapter.find_existing(request)
                if existing is not None:
                    # recorded with the delivery's settlement, in one transaction
                    state.finished = (attempt, Outcome.FOUND, None, _last(answers))
                    return True, existing
                if state.confirmed:
                    # The platform said it has the post: sending again can only double it.
                    raise UnknownOutcome(
                        _(
                            "the platform confirmed this post before the daemon stopped, but "
                            "it is not among the account's recent posts; check the account "
                            "(crosspost retry ID sends it again)"
                        )
                    )
            result = await adapter.publish(request)
        except PlatformError as error:
            if isinstance(error, UnknownOutcome):
                state.uncertain = True
            await self.db(
                self.store.finish_attempt,
                attempt.id,
                outcome_of(error),
                now=self.clock.now(),
                http_status=error.http_status,
                message=error.message,
            )
            log.info(
                "attempt_failed",
                delivery=delivery.id,
                post=delivery.post_id,
                account=delivery.account,
                attempt=attempt.number,
                outcome=outcome_of(error).value,
                http_status=error.http_status,
                error=error.message,
                ms=int((time.monotonic() - started) * 1000),
            )
            raise
        except asyncio.CancelledError:
            # Cancelled with the request possibly on the wire: only a lookup can tell.
            await asyncio.shield(
                self.db(
                    self.store.finish_attempt,
                    attempt.id,
                    Outcome.UNKNOWN,
                    now=self.clock.now(),
                    message=_("cancelled at shutdown while the request was in flight"),
                )
            )
            await asyncio.shield(
                self.db(
                    self.store.settle,
                    delivery,
                    DeliveryState.UNKNOWN,
                    now=self.clock.now(),
                    due_at=self._due(delivery, state, self.clock.now()),
                    error=_("the daemon stopped while publishing; checking the platform"),
                    uncertain=True,
                )
            )
            raise
        finally:
            ANSWERS.reset(recording)
            if answers.budget is not None:
                state.budget = answers.budget
        # The outcome is written with the delivery's settlement, in one transaction
        # (group-committed in the daemon); until then the attempt stays pending,
        # which after a crash reads as "may have landed" (the safe side).
        state.finished = (attempt, Outcome.PUBLISHED, result.remote_url, _last(answers))
        log.debug(
            "attempt_done",
            delivery=delivery.id,
            account=delivery.account,
            attempt=attempt.number,
            ms=int((time.monotonic() - started) * 1000),
        )
        return False, result

    async def _retry(
        self,
        first: PlatformError,
        delivery: Delivery,
        adapter: Adapter,
        request: PublishRequest,
        state: _Progress,
        safe: bool,
        lookup_only: bool,
    ) -> tuple[bool, PublishResult]:
        """Try again after ``first`` failed, for as long as the policy says so.

        What a failure means is the policy's (:mod:`crosspost.retry`); tenacity does the
        waiting, up to ``max_inline_wait`` (longer waits go back to the queue) and
        interrupted by SIGTERM (``self._sleep``). Raises the last error when the policy
        gives up; ``state.decision`` then says what to do with the delivery.
        """
        pending: PlatformError | None = first

        async def attempt() -> tuple[bool, PublishResult]:
            nonlocal pending
            if pending is not None:  # the first try's failure, decided by the loop like any other
                error, pending = pending, None
                raise error
            return await self._attempt(delivery, adapter, request, state)

        def again(retry_state: RetryCallState) -> bool:
            outcome = retry_state.outcome
            if outcome is None or not outcome.failed:
                return False
            error = outcome.exception()
            if not isinstance(error, PlatformError):
                return False
            return self._should_retry(error, state, safe, lookup_only)

        retrying = AsyncRetrying(
            retry=again,
            wait=lambda _: state.decision.delay if state.decision else 0.0,
            stop=stop_never,
            sleep=self._sleep,
            reraise=True,
        )
        return await retrying(attempt)

    def _should_retry(
        self, error: PlatformError, state: _Progress, safe: bool, lookup_only: bool
    ) -> bool:
        """Decide what the failed attempt means (``state.decision``); True: try again now."""
        state.decision = self.policy.decide(
            error, state.attempt, now=self.clock.now(), safe_to_resend=safe
        )
        if state.confirmed and isinstance(error, UnknownOutcome):
            state.decision = RetryDecision(Action.UNKNOWN)  # only a person can settle it
        elif (
            lookup_only
            and isinstance(error, UnknownOutcome)
            and error.still_in_flight
            and state.decision.action is Action.RETRY
        ):
            # The next try looks first; "not found" only counts once the request can have landed.
            delay = max(state.decision.delay, self.landing_window)
            state.decision = RetryDecision(Action.RETRY, delay)
        state.error = error
        return (
            state.decision.action is Action.RETRY
            and state.decision.delay <= self.max_inline_wait
            and not self.stopping.is_set()
        )

    async def _earlier_attempts(self, delivery: Delivery) -> tuple[float, datetime | None]:
        """What the earlier attempts of an uncertain delivery tell.

        The seconds until its last request that may still be under way can no longer
        land: a daemon killed mid-request (``crashed``) or a request whose answer
        timed out (``unknown``) may still reach the platform, and a lookup before
        then could miss it — the resend after it would be a second copy. And whether
        the platform already confirmed the post (an attempt ``published`` or
        ``found`` whose daemon died before it recorded the delivery as published):
        when it first did, or None.
        """
        attempts: list[Attempt] = await self.db(
            self.store.attempts, post_id=delivery.post_id, limit=100_000
        )
        mine = [a for a in attempts if a.delivery_id == delivery.id]
        confirmed = min(
            (a.started_at for a in mine if a.outcome in (Outcome.PUBLISHED, Outcome.FOUND)),
            default=None,
        )
        started = [
            a.started_at
            for a in mine
            if a.outcome in (Outcome.CRASHED, Outcome.UNKNOWN, Outcome.PENDING)
        ]
        if not started or self.landing_window <= 0:
            return 0.0, confirmed
        landed = max(started) + timedelta(seconds=self.landing_window)
        return max(0.0, (landed - self.clock.now()).total_seconds()), confirmed

    def _due(self, delivery: Delivery, state: _Progress, base: datetime) -> datetime:
        """When a delivery sent back to the queue is due: ``base``, out of quiet hours."""
        return self.due_rule(state.category, delivery.account, base)

    async def _defer_lookup(
        self, delivery: Delivery, seconds: float, state: _Progress
    ) -> DeliveryState | None:
        """Back to the queue, still unknown, until the lookup can be trusted."""
        now = self.clock.now()
        ok = await self.db(
            self.store.settle,
            delivery,
            DeliveryState.UNKNOWN,
            now=now,
            due_at=self._due(delivery, state, now + timedelta(seconds=seconds)),
            error=delivery.error,
            uncertain=True,
        )
        if not ok:
            log.warning("lease_lost", delivery=delivery.id, account=delivery.account)
            return None
        log.info(
            "lookup_deferred", delivery=delivery.id, account=delivery.account, seconds=int(seconds)
        )
        return DeliveryState.UNKNOWN

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)
        except TimeoutError:
            return
        raise _Stopping

    async def _settle_published(
        self, delivery: Delivery, result: PublishResult, found: bool, state: _Progress
    ) -> DeliveryState | None:
        assert state.finished is not None  # set by the attempt that succeeded
        attempt, outcome, message, http_status = state.finished
        self.requests_done(delivery)
        ok = await self.finish(
            Settlement(
                delivery,
                DeliveryState.PUBLISHED,
                attempt,
                outcome,
                self.clock.now(),
                message=message,
                http_status=http_status,
                remote_id=result.remote_id,
                remote_url=result.remote_url,
                budget=state.budget,
            )
        )
        await self._hold_if_spent(delivery, state)
        if not ok:
            log.warning("lease_lost", delivery=delivery.id, account=delivery.account)
            return None
        log.info(
            "published",
            delivery=delivery.id,
            post=delivery.post_id,
            account=delivery.account,
            attempt=state.attempt,
            outcome="found" if found else "published",
            remote_url=result.remote_url,
        )
        return DeliveryState.PUBLISHED

    async def _hold_if_spent(self, delivery: Delivery, state: _Progress) -> None:
        """A budget with nothing left blocks the account until its reset (written with
        the settlement): its waiting deliveries keep the quiet hours then, as after a 429."""
        budget = state.budget
        if budget is not None and budget.remaining <= 0:
            await self.db(self.hold_quiet, delivery.account, budget.reset, self.clock.now())

    async def _settle_stopping(self, delivery: Delivery, state: _Progress) -> DeliveryState | None:
        delay = state.decision.delay if state.decision else 0.0
        await self.db(
            self.store.settle,
            delivery,
            DeliveryState.RETRYING,
            now=self.clock.now(),
            due_at=self._due(delivery, state, self.clock.now() + timedelta(seconds=delay)),
            error=state.error.message if state.error else None,
            uncertain=state.uncertain,
            budget=state.budget,
        )
        log.info("released", delivery=delivery.id, account=delivery.account)
        return DeliveryState.RETRYING

    async def _settle_failure(
        self, delivery: Delivery, error: PlatformError, state: _Progress
    ) -> DeliveryState | None:
        decision = state.decision or RetryDecision(Action.FAIL)
        now = self.clock.now()
        self.requests_done(delivery)
        fields: dict[str, Any] = {
            "delivery": delivery.id,
            "post": delivery.post_id,
            "account": delivery.account,
            "attempt": state.attempt,
            "outcome": outcome_of(error).value,
            "http_status": error.http_status,
            "error": error.message,
        }
        if decision.action is Action.RETRY:
            due = self._due(delivery, state, now + timedelta(seconds=decision.delay))
            if isinstance(error, RateLimited) and error.until is not None:
                await self.db(self.store.block_account, delivery.account, error.until, now=now)
                await self.db(self.hold_quiet, delivery.account, error.until, now)
            new_state = DeliveryState.RETRYING
            ok = await self.db(
                self.store.settle,
                delivery,
                new_state,
                now=now,
                due_at=due,
                error=error.message,
                uncertain=state.uncertain,
                budget=state.budget,
            )
            log.info("retry_later", due_at=due.isoformat(timespec="seconds"), **fields)
            if not isinstance(error, RateLimited):
                await self._hold_if_spent(delivery, state)
        elif decision.action is Action.PAUSE:
            reason = error.message
            await self.db(self.store.pause_account, delivery.account, reason, now=now)
            new_state = DeliveryState.RETRYING
            ok = await self.db(
                self.store.settle,
                delivery,
                new_state,
                now=now,
                due_at=self._due(delivery, state, now),
                error=_("account paused: {reason}").format(reason=reason),
                uncertain=state.uncertain,
                budget=state.budget,
            )
            log.error("account_paused", **fields)
        elif decision.action is Action.UNKNOWN:
            new_state = DeliveryState.UNKNOWN
            ok = await self.db(
                self.store.settle,
                delivery,
                new_state,
                now=now,
                due_at=self._due(delivery, state, now + timedelta(seconds=self.policy.maximum)),
                error=error.message,
                uncertain=True,
                budget=state.budget,
            )
            log.error("unknown", **fields)
        else:
            new_state = DeliveryState.FAILED
            ok = await self.db(
                self.store.settle,
                delivery,
                new_state,
                now=now,
                error=error.message,
                budget=state.budget,
            )
            log.error("failed", **fields)
        if not ok:
            log.warning("lease_lost", delivery=delivery.id, account=delivery.account)
            return None
        return new_state


def _last(answers: Answers) -> int | None:
    """The status of the platform's last answer in an attempt (None: no HTTP, e.g. the feed)."""
    return answers.statuses[-1] if answers.statuses else None


class _Progress:
    """What one publish call has learnt so far."""

    def __init__(self, *, uncertain: bool, progress: Mapping[str, str]) -> None:
        self.uncertain = uncertain
        #: the platform confirmed the post in an attempt the daemon could not record
        self.confirmed = False
        self.progress = dict(progress)
        self.attempt = 0
        #: the first attempt, written in the claim's transaction (not yet used)
        self.prestarted: Attempt | None = None
        #: the successful attempt, its outcome and message, written with the settlement
        self.finished: tuple[Attempt, Outcome, str | None, int | None] | None = None
        self.decision: RetryDecision | None = None
        self.error: PlatformError | None = None
        #: the account's budget as the platform's last answer stated it, written with
        #: the settlement (the claims of every daemon are capped by it)
        self.budget: Budget | None = None
        #: the post's category (its quiet hours apply to the due times set here)
        self.category: str | None = None


__all__ = ["LeaseLost", "Publisher", "outcome_of"]
