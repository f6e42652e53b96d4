"""An in-memory Store with the same contract as the SQL one (for unit tests)."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from crosspost.exceptions import NotFound
from crosspost.i18n import _
from crosspost.models import (
    Attempt,
    Budget,
    Delivery,
    DeliveryState,
    Outcome,
    Post,
    PostMetrics,
    Rendered,
    StoredPost,
)
from crosspost.store.base import AccountState, ChangeFeed, Claim, DaemonInfo, Settlement

_WAITING = (DeliveryState.SCHEDULED, DeliveryState.RETRYING)
#: finished attempts that may have put the post on the platform (see reap_expired)
_MAY_HAVE_LANDED = (Outcome.PUBLISHED, Outcome.FOUND, Outcome.UNKNOWN)


def now_min() -> datetime:
    return datetime.min.replace(tzinfo=UTC)


class MemoryStore:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._posts: dict[int, StoredPost] = {}
        self._deliveries: dict[int, Delivery] = {}
        self._attempts: dict[int, Attempt] = {}
        self._accounts: dict[str, AccountState] = {}
        self._daemons: dict[str, DaemonInfo] = {}
        self._metrics: list[tuple[int, datetime, PostMetrics]] = []
        self._followers: list[tuple[str, datetime, int]] = []
        self._ids = {k: itertools.count(1) for k in ("post", "delivery", "attempt")}
        self._changes = 0

    def _touch(self) -> None:
        self._changes += 1

    def check_schema(self) -> None:
        return None

    def close(self) -> None:
        return None

    def change_marker(self) -> int:
        return self._changes

    def change_feed(self) -> ChangeFeed | None:
        return None  # one process: nobody else changes the queue

    # -- editors -----------------------------------------------------------------------
    def enqueue(
        self,
        post: Post,
        rendered: Sequence[Rendered],
        *,
        due_at: datetime,
        created_by: str,
        now: datetime,
    ) -> int:
        with self._lock:
            post_id = next(self._ids["post"])
            self._posts[post_id] = StoredPost(
                id=post_id,
                title=post.title,
                body=post.body,
                link=post.link,
                category=post.category,
                publish_at=post.publish_at,
                created_at=now,
                created_by=created_by,
                source=post.source,
                media=post.media,
            )
            for r in rendered:
                delivery_id = next(self._ids["delivery"])
                self._deliveries[delivery_id] = Delivery(
                    id=delivery_id,
                    post_id=post_id,
                    account=r.account,
                    platform=r.platform,
                    state=DeliveryState.SCHEDULED,
                    due_at=due_at,
                    text=r.text,
                    idempotency_key=uuid.uuid4().hex,
                    updated_at=now,
                )
            self._touch()
            return post_id

    def enqueue_many(
        self,
        items: Sequence[tuple[Post, Sequence[Rendered], datetime]],
        *,
        created_by: str,
        now: datetime,
    ) -> list[int]:
        # In memory nothing fails part-way: one enqueue after the other is all or none.
        return [
            self.enqueue(post, rendered, due_at=due_at, created_by=created_by, now=now)
            for post, rendered, due_at in items
        ]

    def get_post(self, post_id: int) -> StoredPost:
        with self._lock:
            try:
                return self._posts[post_id]
            except KeyError:
                raise NotFound(_("post {id} does not exist").format(id=post_id)) from None

    def deliveries_of(self, post_id: int) -> list[Delivery]:
        with self._lock:
            return sorted(
                (d for d in self._deliveries.values() if d.post_id == post_id), key=lambda d: d.id
            )

    def list_posts(
        self, *, states: Collection[DeliveryState] | None = None, limit: int = 200
    ) -> list[tuple[StoredPost, list[Delivery]]]:
        with self._lock:
            result = []
            for post_id in sorted(self._posts, reverse=True):
                ds = self.deliveries_of(post_id)
                if states and not any(d.state in states for d in ds):
                    continue
                result.append((self._posts[post_id], ds))
                if len(result) >= limit:
                    break
            return result

    def attempts(
        self,
        *,
        post_id: int | None = None,
        since: datetime | None = None,
        after_id: int = 0,
        limit: int = 1000,
    ) -> list[Attempt]:
        with self._lock:
            chosen = [
                a
                for a in sorted(self._attempts.values(), key=lambda a: a.id)
                if a.id > after_id
                and (post_id is None or a.post_id == post_id)
                and (since is None or a.started_at >= since)
            ]
            return chosen[:limit]

    def _update_where(
        self, post_id: int | None, states: Collection[DeliveryState], **values: Any
    ) -> int:
        if post_id is not None and post_id not in self._posts:
            raise NotFound(_("post {id} does not exist").format(id=post_id))
        n = 0
        for d in list(self._deliveries.values()):
            if (post_id is None or d.post_id == post_id) and d.state in states:
                self._deliveries[d.id] = replace(d, **values)
                n += 1
        self._touch()
        return n

    def cancel(self, post_id: int, *, now: datetime) -> int:
        with self._lock:
            return self._update_where(
                post_id,
                (*_WAITING, DeliveryState.UNKNOWN),
                state=DeliveryState.CANCELLED,
                updated_at=now,
            )

    def reschedule(self, post_id: int, due_at: datetime, *, now: datetime) -> int:
        with self._lock:
            n = self._update_where(post_id, _WAITING, due_at=due_at, updated_at=now)
            self._posts[post_id] = replace(self._posts[post_id], publish_at=due_at)
            return n

    def retry(self, post_id: int | None, *, now: datetime) -> int:
        with self._lock:
            return self._update_where(
                post_id,
                (DeliveryState.FAILED, DeliveryState.UNKNOWN),
                state=DeliveryState.RETRYING,
                due_at=now,
                attempts=0,
                error=None,
                updated_at=now,
            )

    def counts(self) -> dict[DeliveryState, int]:
        with self._lock:
            result: dict[DeliveryState, int] = {}
            for d in self._deliveries.values():
                result[d.state] = result.get(d.state, 0) + 1
            return result

    # -- the daemon --------------------------------------------------------------------
    def _is_due_state(self, d: Delivery, reconcilable: Collection[str]) -> bool:
        return d.state in _WAITING or (
            d.state is DeliveryState.UNKNOWN and d.platform in reconcilable
        )

    def claim_due(
        self,
        worker: str,
        *,
        now: datetime,
        lease: timedelta,
        capacity: Mapping[str, int],
        reconcilable: Collection[str],
    ) -> list[Delivery]:
        with self._lock:
            left = {a: n for a, n in capacity.items() if n > 0}
            blocked = {
                a.account
                for a in self._accounts.values()
                if a.paused_reason is not None or (a.blocked_until and a.blocked_until > now)
            }
            candidates = sorted(
                (
                    d
                    for d in self._deliveries.values()
                    if self._is_due_state(d, reconcilable)
                    and d.due_at <= now
                    and d.account in left
                    and d.account not in blocked
                ),
                key=lambda d: (d.due_at, d.id),
            )
            # as SqlStore: what is left of a budget, less the deliveries in flight
            for account in left:
                budget = self._account(account).budget
                if budget is not None and budget.reset > now:
                    flying = sum(
                        1
                        for d in self._deliveries.values()
                        if d.account == account and d.state is DeliveryState.PUBLISHING
                    )
                    left[account] = min(left[account], budget.remaining - flying)
            claimed = []
            for d in candidates:
                if left[d.account] <= 0:
                    continue
                left[d.account] -= 1
                new = replace(
                    d,
                    state=DeliveryState.PUBLISHING,
                    worker=worker,
                    lease_until=now + lease,
                    lease_token=d.lease_token + 1,
                    updated_at=now,
                )
                self._deliveries[d.id] = new
                claimed.append(new)
            if claimed:
                self._touch()
            return claimed

    def next_due(
        self, *, accounts: Collection[str], reconcilable: Collection[str]
    ) -> datetime | None:
        with self._lock:
            due = [
                d.due_at
                for d in self._deliveries.values()
                if d.account in accounts and self._is_due_state(d, reconcilable)
            ]
            return min(due, default=None)

    def _owns(self, delivery: Delivery) -> bool:
        current = self._deliveries.get(delivery.id)
        return (
            current is not None
            and current.state is DeliveryState.PUBLISHING
            and current.worker == delivery.worker
            and current.lease_token == delivery.lease_token
        )

    def claim_and_start(
        self,
        worker: str,
        *,
        now: datetime,
        lease: timedelta,
        capacity: Mapping[str, int],
        reconcilable: Collection[str],
    ) -> list[Claim]:
        with self._lock:
            claims = []
            for d in self.claim_due(
                worker, now=now, lease=lease, capacity=capacity, reconcilable=reconcilable
            ):
                # as SqlStore: not where a resend is unsafe, nor before an uncertain one looks
                fresh = not d.uncertain and d.platform in reconcilable
                attempt = self.start_attempt(d, now=now) if fresh else None
                claims.append(Claim(self._deliveries[d.id], self._posts[d.post_id], attempt))
            return claims

    def finish_and_settle(self, settlements: Sequence[Settlement]) -> list[bool]:
        with self._lock:
            done = []
            for s in settlements:
                self.finish_attempt(
                    s.attempt.id, s.outcome, now=s.now, http_status=s.http_status, message=s.message
                )
                done.append(
                    self.settle(
                        s.delivery,
                        s.state,
                        now=s.now,
                        due_at=s.due_at,
                        remote_id=s.remote_id,
                        remote_url=s.remote_url,
                        error=s.error,
                        uncertain=s.uncertain,
                        budget=s.budget,
                    )
                )
            return done

    def start_attempt(self, delivery: Delivery, *, now: datetime) -> Attempt | None:
        with self._lock:
            if not self._owns(delivery):
                return None
            current = self._deliveries[delivery.id]
            number = current.attempts + 1
            self._deliveries[delivery.id] = replace(current, attempts=number, updated_at=now)
            attempt = Attempt(
                id=next(self._ids["attempt"]),
                delivery_id=delivery.id,
                post_id=delivery.post_id,
                account=delivery.account,
                number=number,
                started_at=now,
                outcome=Outcome.PENDING,
                idempotency_key=delivery.idempotency_key,
                worker=delivery.worker or "",
            )
            self._attempts[attempt.id] = attempt
            self._touch()
            return attempt

    def finish_attempt(
        self,
        attempt_id: int,
        outcome: Outcome,
        *,
        now: datetime,
        http_status: int | None = None,
        message: str | None = None,
    ) -> None:
        with self._lock:
            a = self._attempts[attempt_id]
            self._attempts[attempt_id] = replace(
                a,
                outcome=outcome,
                finished_at=now,
                http_status=http_status,
                message=message,
                duration_ms=max(0, int((now - a.started_at).total_seconds() * 1000)),
            )
            self._touch()

    def settle(
        self,
        delivery: Delivery,
        state: DeliveryState,
        *,
        now: datetime,
        due_at: datetime | None = None,
        remote_id: str | None = None,
        remote_url: str | None = None,
        error: str | None = None,
        uncertain: bool | None = None,
        budget: Budget | None = None,
    ) -> bool:
        with self._lock:
            if not self._owns(delivery):
                if budget is not None:  # the answer was real, whoever holds the lease
                    self._record_budget(delivery.account, budget)
                return False
            if budget is not None:
                self._record_budget(delivery.account, budget)
            current = self._deliveries[delivery.id]
            values: dict[str, Any] = {
                "state": state,
                "updated_at": now,
                "lease_until": None,
                "worker": None,
                "error": error,
            }
            if due_at is not None:
                values["due_at"] = due_at
            if remote_id is not None:
                values["remote_id"] = remote_id
                values["remote_url"] = remote_url
            if state is DeliveryState.PUBLISHED:
                values["published_at"] = now
                values["uncertain"] = False
            if uncertain is not None:
                values["uncertain"] = uncertain
            self._deliveries[delivery.id] = replace(current, **values)
            self._touch()
            return True

    def save_progress(
        self, delivery: Delivery, progress: Mapping[str, str], *, now: datetime
    ) -> bool:
        with self._lock:
            if not self._owns(delivery):
                return False
            current = self._deliveries[delivery.id]
            self._deliveries[delivery.id] = replace(
                current, progress=dict(progress), updated_at=now
            )
            self._touch()
            return True

    def mark_retracted(self, delivery_id: int, *, now: datetime) -> bool:
        with self._lock:
            current = self._deliveries.get(delivery_id)
            if current is None or current.state is not DeliveryState.PUBLISHED:
                return False
            self._deliveries[delivery_id] = replace(
                current, state=DeliveryState.RETRACTED, updated_at=now, error=None
            )
            self._touch()
            return True

    def published(
        self, *, post_id: int | None = None, since: datetime | None = None
    ) -> list[Delivery]:
        with self._lock:
            found = [
                d
                for d in self._deliveries.values()
                if d.state is DeliveryState.PUBLISHED
                and (post_id is None or d.post_id == post_id)
                and (since is None or (d.published_at is not None and d.published_at >= since))
            ]
            return sorted(found, key=lambda d: (d.published_at or d.updated_at or now_min(), d.id))

    def record_metrics(self, delivery: Delivery, metrics: PostMetrics, *, now: datetime) -> None:
        with self._lock:
            self._metrics.append((delivery.id, now, metrics))

    def record_followers(self, account: str, followers: int, *, now: datetime) -> None:
        with self._lock:
            self._followers.append((account, now, followers))

    def latest_metrics(self, delivery_id: int) -> tuple[datetime, PostMetrics] | None:
        with self._lock:
            mine = [(when, m) for d, when, m in self._metrics if d == delivery_id]
            return mine[-1] if mine else None

    def follower_history(self, account: str) -> list[tuple[datetime, int]]:
        with self._lock:
            return [(when, n) for a, when, n in self._followers if a == account]

    def set_token_expiry(self, account: str, expires_at: datetime | None, *, now: datetime) -> None:
        with self._lock:
            self._accounts[account] = replace(self._account(account), token_expires_at=expires_at)

    def extend_leases(
        self, worker: str, delivery_ids: Collection[int], *, now: datetime, lease: timedelta
    ) -> None:
        until = now + lease
        with self._lock:
            for i in delivery_ids:
                d = self._deliveries.get(i)
                if d and d.worker == worker and d.state is DeliveryState.PUBLISHING:
                    self._deliveries[i] = replace(d, lease_until=until)

    def reap_expired(self, *, now: datetime, worker: str | None = None) -> int:
        with self._lock:
            n = 0
            for d in list(self._deliveries.values()):
                if d.state is not DeliveryState.PUBLISHING:
                    continue
                if worker is not None and d.worker != worker:
                    continue
                if worker is None and not (d.lease_until and d.lease_until < now):
                    continue
                in_flight = False
                for a in list(self._attempts.values()):
                    if a.delivery_id != d.id:
                        continue
                    if a.outcome in _MAY_HAVE_LANDED:
                        in_flight = True
                    elif a.outcome is Outcome.PENDING:
                        in_flight = True
                        self._attempts[a.id] = replace(
                            a,
                            outcome=Outcome.CRASHED,
                            finished_at=now,
                            message=_("the worker stopped while the request was in flight"),
                        )
                self._deliveries[d.id] = replace(
                    d,
                    state=DeliveryState.UNKNOWN if in_flight else DeliveryState.RETRYING,
                    uncertain=d.uncertain or in_flight,
                    due_at=now,
                    worker=None,
                    lease_until=None,
                    updated_at=now,
                    error=(
                        _("the daemon stopped while publishing; checking the platform")
                        if in_flight
                        else None
                    ),
                )
                n += 1
            if n:
                self._touch()
            return n

    # -- accounts and daemons -----------------------------------------------------------
    def account_states(self) -> dict[str, AccountState]:
        with self._lock:
            return dict(self._accounts)

    def _account(self, account: str) -> AccountState:
        return self._accounts.get(account) or AccountState(account=account)

    def pause_account(self, account: str, reason: str, *, now: datetime) -> None:
        with self._lock:
            self._accounts[account] = replace(
                self._account(account), paused_reason=reason, paused_at=now
            )
            self._touch()

    def resume_account(self, account: str, *, now: datetime) -> bool:
        with self._lock:
            state = self._accounts.get(account)
            if state is None or state.paused_reason is None:
                return False
            self._accounts[account] = replace(state, paused_reason=None, paused_at=None)
            self._touch()
            return True

    def block_account(self, account: str, until: datetime, *, now: datetime) -> None:
        with self._lock:
            state = self._account(account)
            if state.blocked_until is None or state.blocked_until < until:
                self._accounts[account] = replace(state, blocked_until=until)
                self._touch()

    def _record_budget(self, account: str, budget: Budget) -> None:
        """As SqlStore._record_budgets (the caller holds the lock)."""
        state = self._account(account)
        merged = budget if state.budget is None else state.budget.merged(budget)
        blocked = state.blocked_until
        if budget.remaining <= 0 and (blocked is None or blocked < budget.reset):
            blocked = budget.reset
        self._accounts[account] = replace(state, budget=merged, blocked_until=blocked)

    def set_text_limit(self, account: str, limit: int, *, now: datetime) -> None:
        with self._lock:
            self._accounts[account] = replace(self._account(account), text_limit=limit)

    def heartbeat(self, info: DaemonInfo) -> None:
        with self._lock:
            self._daemons[info.worker] = info

    def remove_daemon(self, worker: str) -> None:
        with self._lock:
            self._daemons.pop(worker, None)

    def daemons(self) -> list[DaemonInfo]:
        with self._lock:
            return sorted(self._daemons.values(), key=lambda d: d.started_at)
