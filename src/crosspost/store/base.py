"""The Store port: the durable queue every other part talks to.

Two implementations keep the same contract (``tests/contract``):
:class:`~crosspost.store.sql.SqlStore` (SQLite, PostgreSQL) and
:class:`~crosspost.store.memory.MemoryStore` (unit tests).

Leases: :meth:`Store.claim_due` hands deliveries to one worker until
``lease_until`` and bumps their ``lease_token``. Every later change by that
worker names the token, so a worker whose lease expired and was taken over
cannot overwrite the new owner's row (the methods then return ``False``/``None``).

Clocks: methods take the caller's ``now``. Where several hosts share one
database (PostgreSQL), :class:`~crosspost.store.sql.SqlStore` measures what
decides ownership -- lease expiry, due times, account blocks -- with the
database's own clock instead, so hosts whose clocks disagree still agree on
who owns a delivery; ``now`` then only stamps informational columns.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

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


@dataclass(frozen=True, slots=True)
class AccountState:
    account: str
    paused_reason: str | None = None
    paused_at: datetime | None = None
    blocked_until: datetime | None = None
    text_limit: int | None = None
    token_expires_at: datetime | None = None
    #: the request budget the platform's last answer stated, shared by all daemons:
    #: requests left in the window, and when it refills
    budget: Budget | None = None


@dataclass(frozen=True, slots=True)
class DaemonInfo:
    worker: str
    host: str
    pid: int
    version: str
    started_at: datetime
    heartbeat_at: datetime
    in_hand: int


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery leased by :meth:`Store.claim_and_start`, with what publishing it needs.

    ``attempt`` is its first attempt, written (``pending``) in the claim's own
    transaction. None for an uncertain delivery, which must look on the platform
    (or wait) before anything is sent, and on a platform outside ``reconcilable``
    (where a resend is unsafe, so a crash before the request must not leave a
    ``pending`` attempt that makes the delivery ``unknown``): those start their
    attempt themselves, just before the request.
    """

    delivery: Delivery
    post: StoredPost
    attempt: Attempt | None


@dataclass(frozen=True, slots=True)
class Settlement:
    """One finished attempt and the delivery's new state, for :meth:`Store.finish_and_settle`."""

    delivery: Delivery
    state: DeliveryState
    attempt: Attempt
    outcome: Outcome
    now: datetime
    message: str | None = None
    http_status: int | None = None
    due_at: datetime | None = None
    remote_id: str | None = None
    remote_url: str | None = None
    error: str | None = None
    uncertain: bool | None = None
    #: the account's request budget as the platform last stated it, recorded in the
    #: same transaction (see :meth:`Store.claim_due`)
    budget: Budget | None = None


class ChangeFeed(Protocol):
    """Pushes "the queue changed" from other processes (PostgreSQL ``LISTEN``)."""

    async def listen(self, on_change: Callable[[], None]) -> None:
        """Call ``on_change`` for every change (and once at the start) until cancelled.

        Raises :class:`~crosspost.exceptions.StoreError` when the connection is
        lost; the caller listens again after a pause.
        """
        ...


class Store(Protocol):
    # -- lifecycle -------------------------------------------------------------
    def check_schema(self) -> None:
        """Raise SchemaOutdated unless the schema is the one this code needs."""
        ...

    def close(self) -> None: ...

    def change_marker(self) -> int:
        """A number that changes whenever another connection commits (cheap to poll)."""
        ...

    def change_feed(self) -> ChangeFeed | None:
        """Notifications of changes where the database can push them, else None (poll)."""
        ...

    # -- editors -----------------------------------------------------------------
    def enqueue(
        self,
        post: Post,
        rendered: Sequence[Rendered],
        *,
        due_at: datetime,
        created_by: str,
        now: datetime,
    ) -> int:
        """Store a post and one scheduled delivery per rendered account; return its id."""
        ...

    def enqueue_many(
        self,
        items: Sequence[tuple[Post, Sequence[Rendered], datetime]],
        *,
        created_by: str,
        now: datetime,
    ) -> list[int]:
        """Store several ``(post, rendered, due_at)`` in one transaction: all or none."""
        ...

    def get_post(self, post_id: int) -> StoredPost: ...

    def deliveries_of(self, post_id: int) -> list[Delivery]: ...

    def list_posts(
        self, *, states: Collection[DeliveryState] | None = None, limit: int = 200
    ) -> list[tuple[StoredPost, list[Delivery]]]:
        """Newest first; with ``states``, posts having a delivery in one of them."""
        ...

    def attempts(
        self,
        *,
        post_id: int | None = None,
        since: datetime | None = None,
        after_id: int = 0,
        limit: int = 1000,
    ) -> list[Attempt]:
        """Attempts in the order they started (oldest first)."""
        ...

    def cancel(self, post_id: int, *, now: datetime) -> int:
        """Cancel the post's waiting deliveries; return how many."""
        ...

    def reschedule(self, post_id: int, due_at: datetime, *, now: datetime) -> int: ...

    def retry(self, post_id: int | None, *, now: datetime) -> int:
        """Put failed/unknown deliveries (of one post, or all) back in the queue."""
        ...

    def counts(self) -> dict[DeliveryState, int]: ...

    # -- the daemon --------------------------------------------------------------
    def claim_due(
        self,
        worker: str,
        *,
        now: datetime,
        lease: timedelta,
        capacity: Mapping[str, int],
        reconcilable: Collection[str],
    ) -> list[Delivery]:
        """Lease due deliveries, at most ``capacity[account]`` per account.

        Due means ``scheduled``/``retrying`` with ``due_at <= now``, or ``unknown``
        on a platform in ``reconcilable``; accounts paused or blocked are skipped.

        An account whose platform stated a request budget for a window still open
        (:attr:`AccountState.budget`, recorded with the settlements) gets at most what
        is left of it once the deliveries in flight -- of every daemon -- are counted:
        ``remaining - publishing``. The budget and a settled delivery leave
        ``publishing`` in one transaction, and claims of one account are serialised,
        so all daemons together send what one would (docs/scaling.md).
        """
        ...

    def next_due(
        self, *, accounts: Collection[str], reconcilable: Collection[str]
    ) -> datetime | None:
        """The earliest ``due_at`` among the given accounts' claimable deliveries."""
        ...

    def claim_and_start(
        self,
        worker: str,
        *,
        now: datetime,
        lease: timedelta,
        capacity: Mapping[str, int],
        reconcilable: Collection[str],
    ) -> list[Claim]:
        """:meth:`claim_due`, and in the same transaction each delivery's post and, where
        :class:`Claim` says, its first attempt (as :meth:`start_attempt`)."""
        ...

    def start_attempt(self, delivery: Delivery, *, now: datetime) -> Attempt | None:
        """Write the attempt row before the request; None if the lease was lost."""
        ...

    def finish_and_settle(self, settlements: Sequence[Settlement]) -> list[bool]:
        """:meth:`finish_attempt` and :meth:`settle` for each, all in one transaction.

        The attempt's outcome is recorded even where the lease was lost; the
        result says per settlement whether the delivery was still ours.
        """
        ...

    def finish_attempt(
        self,
        attempt_id: int,
        outcome: Outcome,
        *,
        now: datetime,
        http_status: int | None = None,
        message: str | None = None,
    ) -> None: ...

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
        """Move a leased delivery out of ``publishing``; False if the lease was lost.

        ``budget``: the account's request budget as the platform's last answer stated
        it, recorded in the same transaction (merged as :meth:`Budget.merged`; none
        left blocks the account until the reset, as :meth:`block_account`)."""
        ...

    def save_progress(
        self, delivery: Delivery, progress: Mapping[str, str], *, now: datetime
    ) -> bool:
        """Record what the adapter must know on a later attempt; False if the lease was lost."""
        ...

    def mark_retracted(self, delivery_id: int, *, now: datetime) -> bool:
        """A published delivery was deleted on its platform."""
        ...

    def published(
        self, *, post_id: int | None = None, since: datetime | None = None
    ) -> list[Delivery]:
        """Published deliveries, of one post or published since an instant, oldest first."""
        ...

    def record_metrics(
        self, delivery: Delivery, metrics: PostMetrics, *, now: datetime
    ) -> None: ...

    def record_followers(self, account: str, followers: int, *, now: datetime) -> None: ...

    def latest_metrics(self, delivery_id: int) -> tuple[datetime, PostMetrics] | None: ...

    def follower_history(self, account: str) -> list[tuple[datetime, int]]: ...

    def set_token_expiry(
        self, account: str, expires_at: datetime | None, *, now: datetime
    ) -> None: ...

    def extend_leases(
        self, worker: str, delivery_ids: Collection[int], *, now: datetime, lease: timedelta
    ) -> None:
        """Renew ``worker``'s leases on the given deliveries to ``now + lease``."""
        ...

    def reap_expired(self, *, now: datetime, worker: str | None = None) -> int:
        """Take back ``publishing`` rows whose lease expired (or all of ``worker``'s).

        A row with an attempt still ``pending`` may have reached the platform: it
        becomes ``unknown`` (uncertain) and its attempt ``crashed``. So does a row
        whose attempt ended ``published``, ``found`` or ``unknown`` but which the
        worker did not settle before it died. A row with no request that may have
        landed simply goes back to ``retrying``.
        """
        ...

    # -- accounts and daemons ---------------------------------------------------------
    def account_states(self) -> dict[str, AccountState]: ...

    def pause_account(self, account: str, reason: str, *, now: datetime) -> None: ...

    def resume_account(self, account: str, *, now: datetime) -> bool: ...

    def block_account(self, account: str, until: datetime, *, now: datetime) -> None:
        """Claim nothing of ``account`` before ``until``; a block is never shortened."""
        ...

    def set_text_limit(self, account: str, limit: int, *, now: datetime) -> None: ...

    def heartbeat(self, info: DaemonInfo) -> None: ...

    def remove_daemon(self, worker: str) -> None: ...

    def daemons(self) -> list[DaemonInfo]: ...
