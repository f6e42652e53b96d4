"""The evaluation's tables: metric samples, daily follower counts, the collector's
rate-limit memory, and the rows the yearly report is computed from.

Kept apart from :mod:`crosspost.store.sql` (the queue): nothing here is on the
publishing path. Every write is idempotent: a sample is stored once per delivery
and age, a follower count once per account and day (unique indexes, ``ON CONFLICT
DO NOTHING``), so an interrupted or doubled collection cannot count anything twice.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select

from crosspost.models import DeliveryState, Outcome, PostMetrics
from crosspost.store._sql import dialect_insert
from crosspost.store.schema import (
    account_metrics,
    attempts,
    deliveries,
    metrics_state,
    post_metrics,
    posts,
)
from crosspost.store.sql import SqlStore


@dataclass(frozen=True, slots=True)
class Published:
    """A published delivery as the collector sees it, with the ages sampled so far."""

    delivery_id: int
    account: str
    remote_id: str
    published_at: datetime
    sampled: frozenset[int]


# -- the report's raw rows ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PostRow:
    id: int
    title: str
    link: str
    category: str | None
    publish_at: datetime | None
    created_at: datetime
    #: alt text of each image ("" where missing)
    alts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: int
    post_id: int
    account: str
    platform: str
    state: str
    due_at: datetime
    published_at: datetime | None
    updated_at: datetime
    text: str
    remote_url: str | None


@dataclass(frozen=True, slots=True)
class AttemptRow:
    delivery_id: int
    account: str
    outcome: str
    http_status: int | None
    started_at: datetime


@dataclass(frozen=True, slots=True)
class SampleRow:
    delivery_id: int
    account: str
    age_days: int | None
    collected_at: datetime
    metrics: PostMetrics


@dataclass(frozen=True, slots=True)
class FollowerRow:
    account: str
    day: str
    collected_at: datetime
    followers: int


@dataclass(frozen=True, slots=True)
class EvaluationRows:
    """Everything the report of one period is computed from (no personal data)."""

    posts: list[PostRow]
    deliveries: list[DeliveryRow]
    attempts: list[AttemptRow]
    samples: list[SampleRow]
    followers: list[FollowerRow]


#: attempt outcomes that are failures of a try (the report's "causes")
FAILED_OUTCOMES = (
    Outcome.TRANSIENT.value,
    Outcome.RATE_LIMITED.value,
    Outcome.AUTH.value,
    Outcome.REJECTED.value,
    Outcome.UNKNOWN.value,
    Outcome.CRASHED.value,
)


class EvaluationStore:
    """The evaluation's reads and writes on the queue's database."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def _insert(self, table: Any) -> Any:
        return dialect_insert(self.store.is_sqlite, table)

    # -- collection ------------------------------------------------------------------------
    def published_between(
        self, accounts: Collection[str], *, earliest: datetime, latest: datetime
    ) -> list[Published]:
        """Published deliveries of ``accounts`` published in [earliest, latest], oldest first."""
        if not accounts:
            return []
        query = (
            select(
                deliveries.c.id,
                deliveries.c.account,
                deliveries.c.remote_id,
                deliveries.c.published_at,
            )
            .where(
                deliveries.c.state == DeliveryState.PUBLISHED.value,
                deliveries.c.account.in_(list(accounts)),
                deliveries.c.remote_id.is_not(None),
                deliveries.c.published_at >= earliest,
                deliveries.c.published_at <= latest,
            )
            .order_by(deliveries.c.published_at, deliveries.c.id)
        )
        with self.store._read() as conn:
            rows = conn.execute(query).all()
            ids = [r.id for r in rows]
            sampled: dict[int, set[int]] = {}
            for chunk in _chunks(ids, 500):
                for delivery_id, age in conn.execute(
                    select(post_metrics.c.delivery_id, post_metrics.c.age_days).where(
                        post_metrics.c.delivery_id.in_(chunk),
                        post_metrics.c.age_days.is_not(None),
                    )
                ):
                    sampled.setdefault(delivery_id, set()).add(int(age))
        return [
            Published(
                delivery_id=r.id,
                account=r.account,
                remote_id=r.remote_id,
                published_at=r.published_at,
                sampled=frozenset(sampled.get(r.id, ())),
            )
            for r in rows
        ]

    def record_sample(
        self,
        delivery_id: int,
        account: str,
        age_days: int,
        metrics: PostMetrics,
        *,
        now: datetime,
    ) -> bool:
        """Store the sample of ``delivery_id`` at ``age_days``; False if one was there."""
        with self.store._write() as conn:
            result = conn.execute(
                self._insert(post_metrics)
                .values(
                    delivery_id=delivery_id,
                    account=account,
                    collected_at=now,
                    age_days=age_days,
                    likes=metrics.likes,
                    reposts=metrics.reposts,
                    replies=metrics.replies,
                    views=metrics.views,
                )
                .on_conflict_do_nothing(index_elements=["delivery_id", "age_days"])
                .returning(post_metrics.c.id)
            )
            return result.first() is not None

    def has_followers(self, account: str, day: str) -> bool:
        with self.store._read() as conn:
            found = conn.execute(
                select(account_metrics.c.id).where(
                    account_metrics.c.account == account, account_metrics.c.day == day
                )
            ).first()
        return found is not None

    def record_followers(self, account: str, day: str, followers: int, *, now: datetime) -> bool:
        """Store ``account``'s follower count of the local ``day``; False if one was there."""
        with self.store._write() as conn:
            result = conn.execute(
                self._insert(account_metrics)
                .values(account=account, day=day, collected_at=now, followers=followers)
                .on_conflict_do_nothing(index_elements=["account", "day"])
                .returning(account_metrics.c.id)
            )
            return result.first() is not None

    def blocked_until(self) -> dict[str, datetime]:
        """Accounts whose platform asked the collection to wait, and until when."""
        with self.store._read() as conn:
            rows = conn.execute(
                select(metrics_state.c.account, metrics_state.c.blocked_until).where(
                    metrics_state.c.blocked_until.is_not(None)
                )
            ).all()
        return {r.account: r.blocked_until for r in rows}

    def finish_run(
        self,
        account: str,
        *,
        now: datetime,
        blocked_until: datetime | None = None,
        error: str | None = None,
    ) -> None:
        """Remember an account's run: a rate limit's end (or none) and the error (or none)."""
        values = {
            "blocked_until": blocked_until,
            "last_run_at": now,
            "last_error": error,
            "updated_at": now,
        }
        with self.store._write() as conn:
            conn.execute(
                self._insert(metrics_state)
                .values(account=account, **values)
                .on_conflict_do_update(index_elements=["account"], set_=values)
            )

    # -- the report ----------------------------------------------------------------------
    def evaluation_rows(self, start: datetime, end: datetime) -> EvaluationRows:
        """The rows of the period [start, end): deliveries published in it (or, never
        published, due in it), their posts, attempts, samples, and follower counts."""
        in_period = or_(
            and_(deliveries.c.published_at >= start, deliveries.c.published_at < end),
            and_(
                deliveries.c.published_at.is_(None),
                deliveries.c.due_at >= start,
                deliveries.c.due_at < end,
            ),
        )
        with self.store._read() as conn:
            drows = [
                DeliveryRow(
                    id=r.id,
                    post_id=r.post_id,
                    account=r.account,
                    platform=r.platform,
                    state=r.state,
                    due_at=r.due_at,
                    published_at=r.published_at,
                    updated_at=r.updated_at,
                    text=r.text,
                    remote_url=r.remote_url,
                )
                for r in conn.execute(
                    select(deliveries).where(in_period).order_by(deliveries.c.id)
                ).mappings()
            ]
            post_ids = sorted({d.post_id for d in drows})
            delivery_ids = [d.id for d in drows]
            prows: list[PostRow] = []
            arows: list[AttemptRow] = []
            srows: list[SampleRow] = []
            for chunk in _chunks(post_ids, 500):
                for r in conn.execute(select(posts).where(posts.c.id.in_(chunk))).mappings():
                    prows.append(
                        PostRow(
                            id=r["id"],
                            title=r["title"],
                            link=r["link"],
                            category=r["category"],
                            publish_at=r["publish_at"],
                            created_at=r["created_at"],
                            alts=tuple(str(m.get("alt") or "") for m in r["media"] or []),
                        )
                    )
            for chunk in _chunks(delivery_ids, 500):
                for a in conn.execute(
                    select(
                        attempts.c.delivery_id,
                        attempts.c.account,
                        attempts.c.outcome,
                        attempts.c.http_status,
                        attempts.c.started_at,
                    ).where(
                        attempts.c.delivery_id.in_(chunk),
                        attempts.c.outcome.in_(FAILED_OUTCOMES),
                    )
                ):
                    arows.append(
                        AttemptRow(
                            delivery_id=a.delivery_id,
                            account=a.account,
                            outcome=a.outcome,
                            http_status=a.http_status,
                            started_at=a.started_at,
                        )
                    )
                for r in conn.execute(
                    select(post_metrics).where(post_metrics.c.delivery_id.in_(chunk))
                ).mappings():
                    srows.append(
                        SampleRow(
                            delivery_id=r["delivery_id"],
                            account=r["account"],
                            age_days=r["age_days"],
                            collected_at=r["collected_at"],
                            metrics=PostMetrics(
                                likes=r["likes"],
                                reposts=r["reposts"],
                                replies=r["replies"],
                                views=r["views"],
                            ),
                        )
                    )
            frows = [
                FollowerRow(
                    account=f.account,
                    day=f.day or "",
                    collected_at=f.collected_at,
                    followers=int(f.followers),
                )
                for f in conn.execute(
                    select(account_metrics)
                    .where(account_metrics.c.collected_at >= start)
                    .where(account_metrics.c.collected_at < end)
                    .order_by(account_metrics.c.collected_at, account_metrics.c.id)
                )
            ]
        prows.sort(key=lambda p: p.id)
        srows.sort(key=lambda s: (s.delivery_id, s.collected_at))
        arows.sort(key=lambda a: (a.started_at, a.delivery_id))
        return EvaluationRows(
            posts=prows, deliveries=drows, attempts=arows, samples=srows, followers=frows
        )


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
