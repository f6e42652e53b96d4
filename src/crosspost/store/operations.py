"""The SQL behind operations: alert bookkeeping, health figures, gauges, retention.

Kept apart from :mod:`crosspost.store.sql` (the publishing hot path): everything
here runs in the daemon's operations thread, in ``status --check`` or in a
Prometheus scrape, never between a claim and a publish. It uses the
:class:`~crosspost.store.sql.SqlStore`'s engine, so the same connection
settings (SQLite busy timeout, ``BEGIN IMMEDIATE``) apply.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from crosspost.exceptions import StoreError
from crosspost.models import DeliveryState
from crosspost.store._sql import dialect_insert
from crosspost.store.schema import (
    account_state,
    alert_events,
    alert_sends,
    attempts,
    deliveries,
    posts,
)
from crosspost.store.sql import SqlStore

#: deliveries whose attempts retention may delete: nothing will ever look at them again
#: (an uncertain delivery's earlier attempts decide how it is reconciled)
SETTLED_STATES = (
    DeliveryState.PUBLISHED.value,
    DeliveryState.FAILED.value,
    DeliveryState.CANCELLED.value,
    DeliveryState.RETRACTED.value,
    "rejected",
)
WAITING_STATES = (DeliveryState.SCHEDULED.value, DeliveryState.RETRYING.value)


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """What an alert or a check says about one delivery."""

    id: int
    post_id: int
    account: str
    state: str
    attempts: int
    due_at: datetime
    updated_at: datetime
    error: str | None
    title: str


@dataclass(frozen=True, slots=True)
class NewEvent:
    kind: str
    account: str
    ref: str
    detail: str
    delivery_id: int | None = None
    post_id: int | None = None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: int
    kind: str
    account: str
    ref: str
    detail: str
    delivery_id: int | None
    post_id: int | None
    detected_at: datetime


@dataclass(frozen=True, slots=True)
class Pruned:
    attempts: int
    events: int


class OperationsStore:
    """Operations' queries on one :class:`SqlStore`."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.engine = store.engine
        self.is_sqlite = store.is_sqlite

    def _write(self) -> AbstractContextManager[Connection]:
        return self.store._write()

    def _read(self) -> AbstractContextManager[Connection]:
        return self.store._read()

    # -- deliveries the alerts and checks look at ---------------------------------------
    def _deliveries(
        self, conn: Connection, *where: Any, order: Any, limit: int
    ) -> list[DeliveryRow]:
        d = deliveries.c
        rows = conn.execute(
            select(
                d.id,
                d.post_id,
                d.account,
                d.state,
                d.attempts,
                d.due_at,
                d.updated_at,
                d.error,
                posts.c.title,
            )
            .join(posts, posts.c.id == d.post_id)
            .where(*where)
            .order_by(order)
            .limit(limit)
        ).all()
        return [
            DeliveryRow(
                id=r.id,
                post_id=r.post_id,
                account=r.account,
                state=r.state,
                attempts=r.attempts,
                due_at=r.due_at,
                updated_at=r.updated_at,
                error=r.error,
                title=r.title,
            )
            for r in rows
        ]

    def failed_since(self, since: datetime, *, limit: int = 500) -> list[DeliveryRow]:
        """Deliveries that failed for good at or after ``since``, oldest first."""
        d = deliveries.c
        with self._read() as conn:
            return self._deliveries(
                conn,
                d.state == DeliveryState.FAILED.value,
                d.updated_at >= since,
                order=d.updated_at,
                limit=limit,
            )

    def unknown(self, *, limit: int = 500) -> list[DeliveryRow]:
        """Deliveries whose outcome is unknown, oldest change first."""
        d = deliveries.c
        with self._read() as conn:
            return self._deliveries(
                conn, d.state == DeliveryState.UNKNOWN.value, order=d.updated_at, limit=limit
            )

    def late(
        self, due_before: datetime, *, accounts: Collection[str], limit: int = 500
    ) -> list[DeliveryRow]:
        """Waiting deliveries of ``accounts`` due before ``due_before``, most late first."""
        d = deliveries.c
        where = [d.state.in_(WAITING_STATES), d.due_at < due_before, d.account.in_(list(accounts))]
        with self._read() as conn:
            return self._deliveries(conn, *where, order=d.due_at, limit=limit)

    def states_of(self, delivery_ids: Collection[int]) -> dict[int, str]:
        if not delivery_ids:
            return {}
        with self._read() as conn:
            rows = conn.execute(
                select(deliveries.c.id, deliveries.c.state).where(
                    deliveries.c.id.in_(list(delivery_ids))
                )
            ).all()
        return {int(i): str(s) for i, s in rows}

    def count_failed_since(self, since: datetime) -> dict[str, int]:
        d = deliveries.c
        with self._read() as conn:
            rows = conn.execute(
                select(d.account, func.count())
                .where(d.state == DeliveryState.FAILED.value, d.updated_at >= since)
                .group_by(d.account)
            ).all()
        return {str(a): int(n) for a, n in rows}

    def count_unknown(self, *, changed_before: datetime | None = None) -> dict[str, int]:
        """Per account: deliveries in state unknown (that last changed before the instant)."""
        d = deliveries.c
        where = [d.state == DeliveryState.UNKNOWN.value]
        if changed_before is not None:
            where.append(d.updated_at <= changed_before)
        with self._read() as conn:
            rows = conn.execute(
                select(d.account, func.count()).where(*where).group_by(d.account)
            ).all()
        return {str(a): int(n) for a, n in rows}

    def oldest_waiting(
        self, *, due_before: datetime, accounts: Collection[str]
    ) -> dict[str, datetime]:
        """Per account of ``accounts``, the earliest due time of a waiting delivery due
        before ``due_before``."""
        d = deliveries.c
        where = [d.state.in_(WAITING_STATES), d.due_at < due_before, d.account.in_(list(accounts))]
        with self._read() as conn:
            rows = conn.execute(
                select(d.account, func.min(d.due_at)).where(*where).group_by(d.account)
            ).all()
        return {str(a): when for a, when in rows if when is not None}

    # -- gauges ------------------------------------------------------------------------
    def deliveries_by_state(self) -> dict[tuple[str, str], int]:
        """(state, account) -> how many deliveries."""
        d = deliveries.c
        with self._read() as conn:
            rows = conn.execute(
                select(d.state, d.account, func.count()).group_by(d.state, d.account)
            ).all()
        return {(str(s), str(a)): int(n) for s, a, n in rows}

    def due_now(self, now: datetime) -> dict[str, int]:
        """Per account: waiting deliveries that are due (the queue depth)."""
        d = deliveries.c
        with self._read() as conn:
            rows = conn.execute(
                select(d.account, func.count())
                .where(d.state.in_(WAITING_STATES), d.due_at <= now)
                .group_by(d.account)
            ).all()
        return {str(a): int(n) for a, n in rows}

    def leases_held(self, now: datetime) -> int:
        """Deliveries some daemon holds under a lease that has not expired."""
        d = deliveries.c
        with self._read() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(
                        d.state == DeliveryState.PUBLISHING.value, d.lease_until > now
                    )
                ).scalar_one()
            )

    def blocked_accounts(self, now: datetime) -> dict[str, datetime]:
        a = account_state.c
        with self._read() as conn:
            rows = conn.execute(
                select(a.account, a.blocked_until).where(a.blocked_until > now)
            ).all()
        return {str(name): until for name, until in rows}

    # -- alert bookkeeping ----------------------------------------------------------------
    def record_events(self, events: Sequence[NewEvent], *, now: datetime) -> int:
        """Store events not stored yet (by kind, account, ref); return how many were new."""
        if not events:
            return 0
        rows = [
            {
                "kind": e.kind,
                "account": e.account,
                "ref": e.ref[:128],
                "detail": e.detail,
                "delivery_id": e.delivery_id,
                "post_id": e.post_id,
                "detected_at": now,
            }
            for e in events
        ]
        # RETURNING counts what was new on both databases (rowcount does not on psycopg).
        statement = (
            dialect_insert(self.is_sqlite, alert_events)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["kind", "account", "ref"])
            .returning(alert_events.c.id)
        )
        with self._write() as conn:
            return len(conn.execute(statement).all())

    def unsent_events(
        self, *, column: str, kinds: Collection[str], limit: int = 10_000
    ) -> list[StoredEvent]:
        """Events not yet told of in ``column`` (``mailed_at`` or ``digested_at``)."""
        e = alert_events.c
        with self._read() as conn:
            rows = (
                conn.execute(
                    select(alert_events)
                    .where(e[column].is_(None), e.kind.in_(list(kinds)))
                    .order_by(e.id)
                    .limit(limit)
                )
                .mappings()
                .all()
            )
        return [
            StoredEvent(
                id=r["id"],
                kind=r["kind"],
                account=r["account"],
                ref=r["ref"],
                detail=r["detail"],
                delivery_id=r["delivery_id"],
                post_id=r["post_id"],
                detected_at=r["detected_at"],
            )
            for r in rows
        ]

    def mark_events(self, ids: Collection[int], *, column: str, now: datetime) -> None:
        if not ids:
            return
        e = alert_events.c
        with self._write() as conn:
            conn.execute(
                update(alert_events)
                .where(e.id.in_(list(ids)), e[column].is_(None))
                .values({column: now})
            )

    def claim_send(
        self, kind: str, account: str, *, now: datetime, last_before: datetime
    ) -> datetime | None:
        """Take the right to send the next mail of (kind, account).

        Granted when none was sent yet or the last one went out at or before
        ``last_before``. Returns the previous send time (``now`` when there was
        none) for :meth:`release_send`, or None when another daemon or an
        earlier mail holds it. One conditional statement decides, so two daemons
        never both win.
        """
        s = alert_sends.c
        try:
            with self._write() as conn:
                previous = conn.execute(
                    select(s.sent_at).where(s.kind == kind, s.account == account)
                ).scalar_one_or_none()
                if previous is None:
                    conn.execute(
                        insert(alert_sends).values(kind=kind, account=account, sent_at=now)
                    )
                    return now
                if previous > last_before:
                    return None
                claimed = conn.execute(
                    update(alert_sends)
                    .where(s.kind == kind, s.account == account, s.sent_at == previous)
                    .values(sent_at=now)
                )
                return previous if claimed.rowcount == 1 else None
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                return None  # another daemon inserted the first row at the same moment
            raise

    def release_send(
        self, kind: str, account: str, *, claimed_at: datetime, previous: datetime
    ) -> None:
        """The mail could not be sent: give the claim back so the next round tries again."""
        s = alert_sends.c
        with self._write() as conn:
            if previous == claimed_at:
                conn.execute(
                    delete(alert_sends).where(
                        s.kind == kind, s.account == account, s.sent_at == claimed_at
                    )
                )
            else:
                conn.execute(
                    update(alert_sends)
                    .where(s.kind == kind, s.account == account, s.sent_at == claimed_at)
                    .values(sent_at=previous)
                )

    def last_sent(self) -> dict[tuple[str, str], datetime]:
        with self._read() as conn:
            rows = conn.execute(select(alert_sends)).all()
        return {(str(k), str(a)): when for k, a, when in rows}

    # -- retention -----------------------------------------------------------------------
    def prune(self, before: datetime, *, batch: int = 2000, dry_run: bool = False) -> Pruned:
        """Delete attempts of settled deliveries that started before ``before``, and alert
        events found before it; in batches, so the daemon never waits long for the database."""
        a, d, e = attempts.c, deliveries.c, alert_events.c
        settled = select(d.id).where(d.state.in_(SETTLED_STATES))
        old_attempts = and_(a.started_at < before, a.delivery_id.in_(settled))
        if dry_run:
            with self._read() as conn:
                n_attempts = conn.execute(select(func.count()).where(old_attempts)).scalar_one()
                n_events = conn.execute(
                    select(func.count()).where(e.detected_at < before)
                ).scalar_one()
            return Pruned(int(n_attempts), int(n_events))
        removed_attempts = removed_events = 0
        while True:
            with self._write() as conn:
                ids = conn.execute(select(a.id).where(old_attempts).limit(batch)).scalars().all()
                if ids:
                    conn.execute(delete(attempts).where(a.id.in_(ids)))
            removed_attempts += len(ids)
            if len(ids) < batch:
                break
        while True:
            with self._write() as conn:
                ids = (
                    conn.execute(select(e.id).where(e.detected_at < before).limit(batch))
                    .scalars()
                    .all()
                )
                if ids:
                    conn.execute(delete(alert_events).where(e.id.in_(ids)))
            removed_events += len(ids)
            if len(ids) < batch:
                break
        return Pruned(removed_attempts, removed_events)
