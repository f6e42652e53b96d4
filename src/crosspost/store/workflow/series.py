"""Recurring posts: a series row keeps the rule and the rendered text; the daemon
materialises its coming occurrences as posts.

Materialising holds a lock (PostgreSQL: a transaction-scoped advisory lock;
SQLite: the write lock every transaction takes), and each occurrence is unique
per series (``uq_posts_occurrence``): two daemons doing it at once make each
occurrence once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, insert, select, update

from crosspost.models import Media, Post, Rendered
from crosspost.recurrence import Recurrence
from crosspost.store._sql import media_json
from crosspost.store.audit import write_audit
from crosspost.store.schema import deliveries, posts, series
from crosspost.store.workflow._base import CHANGEABLE, DueRule, aware
from crosspost.store.workflow.dedup import DedupGuard, DedupQuery, digests

UTC_ZONE = ZoneInfo("UTC")
#: the advisory lock materialisation holds on PostgreSQL
MATERIALISE_LOCK = int.from_bytes(b"xp-serie", "big")


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    id: int
    rule: str
    dtstart: datetime
    timezone: str
    title: str
    category: str | None
    accounts: tuple[str, ...]
    created_by: str
    created_at: datetime
    approval_required: bool
    approved_by: str | None
    cancelled_at: datetime | None
    materialised_until: datetime | None
    #: the next waiting occurrence: (post id, due)
    next_post: tuple[int, datetime] | None = None

    def recurrence(self) -> Recurrence:
        return Recurrence(rule=self.rule, dtstart=self.dtstart, zone=ZoneInfo(self.timezone))


def _series(row: Mapping[Any, Any]) -> SeriesInfo:
    return SeriesInfo(
        id=row["id"],
        rule=row["rule"],
        dtstart=datetime.fromisoformat(row["dtstart"]),
        timezone=row["timezone"],
        title=row["title"],
        category=row["category"],
        accounts=tuple(r["account"] for r in row["rendered"]),
        created_by=row["created_by"],
        created_at=row["created_at"],
        approval_required=bool(row["approval_required"]),
        approved_by=row["approved_by"],
        cancelled_at=row["cancelled_at"],
        materialised_until=row["materialised_until"],
    )


class SeriesWorkflow(DedupGuard):
    def create_series(
        self,
        post: Post,
        recurrence: Recurrence,
        rendered: Sequence[Rendered],
        *,
        draft: bool,
        actor: str,
        now: datetime,
        due_rule: DueRule,
        horizon: timedelta,
        spread: timedelta,
        dedup: DedupQuery | None = None,
        force: bool = False,
        conn: Connection | None = None,
    ) -> tuple[int, list[int]]:
        """Store a series and materialise its first occurrences; (series id, post ids)."""
        with self._joined(conn) as conn:
            detail: dict[str, Any] = {
                "accounts": [r.account for r in rendered],
                "rule": recurrence.rule,
                "state": "draft" if draft else "scheduled",
            }
            first = recurrence.next_after(now) or now
            # the guard's account locks before the series lock (the order enqueue takes them)
            forced = self._guard(
                conn, post, rendered, {r.account: first for r in rendered}, dedup, force=force
            )
            if forced:
                detail["forced_duplicates"] = forced
            self._lock_series(conn)
            series_id = int(
                conn.execute(
                    insert(series)
                    .values(
                        rule=recurrence.rule,
                        dtstart=recurrence.dtstart.isoformat(),
                        timezone=recurrence.zone.key,
                        title=post.title,
                        body=post.body,
                        link=post.link,
                        dedup_link=dedup.link if dedup else post.link,
                        category=post.category,
                        media=media_json(post),
                        variants=dict(post.variants),
                        rendered=[
                            {"account": r.account, "platform": r.platform, "text": r.text}
                            for r in rendered
                        ],
                        source=post.source,
                        created_at=now,
                        created_by=actor,
                        approval_required=draft,
                    )
                    .returning(series.c.id)
                ).scalar_one()
            )
            self._audit_enqueue(conn, post, detail, actor=actor, now=now, series_id=series_id)
            created = self._materialise(
                conn,
                now=now,
                horizon=horizon,
                spread=spread,
                due_rule=due_rule,
                actor=actor,
                only=series_id,
            )
        return series_id, created

    def materialise(
        self,
        *,
        now: datetime,
        horizon: timedelta,
        spread: timedelta,
        due_rule: DueRule,
        actor: str,
    ) -> list[int]:
        """Turn every active series' coming occurrences into posts; the new post ids."""
        with self.store._write() as conn:
            self._lock_series(conn)
            return self._materialise(
                conn, now=now, horizon=horizon, spread=spread, due_rule=due_rule, actor=actor
            )

    def _lock_series(self, conn: Connection) -> None:
        if not self.store.is_sqlite:
            conn.execute(select(func.pg_advisory_xact_lock(MATERIALISE_LOCK)))

    def _materialise(
        self,
        conn: Connection,
        *,
        now: datetime,
        horizon: timedelta,
        spread: timedelta,
        due_rule: DueRule,
        actor: str,
        only: int | None = None,
    ) -> list[int]:
        query = select(series).where(series.c.cancelled_at.is_(None)).order_by(series.c.id)
        if only is not None:
            query = query.where(series.c.id == only)
        created: list[int] = []
        for row in conn.execute(query).mappings().all():
            info = _series(row)
            recurrence = info.recurrence()
            after = max(info.materialised_until or row["created_at"], now - timedelta(seconds=1))
            wanted = list(recurrence.after(after, until=now + horizon))
            if not wanted and (info.materialised_until is None or info.materialised_until <= now):
                following = recurrence.next_after(after)
                wanted = [following] if following is not None else []
            for at in wanted:
                post_id = self._occurrence(
                    conn, row, at, now=now, spread=spread, due_rule=due_rule, actor=actor
                )
                if post_id is not None:
                    created.append(post_id)
            if wanted:
                conn.execute(
                    update(series)
                    .where(series.c.id == info.id)
                    .values(materialised_until=max(wanted))
                )
        return created

    def _occurrence(
        self,
        conn: Connection,
        row: Mapping[Any, Any],
        at: datetime,
        *,
        now: datetime,
        spread: timedelta,
        due_rule: DueRule,
        actor: str,
    ) -> int | None:
        exists = conn.execute(
            select(posts.c.id).where(posts.c.series_id == row["id"], posts.c.occurrence_at == at)
        ).first()
        if exists is not None:
            return None
        # series due at the same instant go out one after another, not in a burst
        others = conn.execute(
            select(func.count())
            .select_from(posts)
            .where(posts.c.occurrence_at == at, posts.c.series_id != row["id"])
        ).scalar_one()
        base = at + spread * int(others)
        post = Post(
            title=row["title"],
            body=row["body"],
            link=row["link"],
            category=row["category"],
            publish_at=at,
            accounts=tuple(r["account"] for r in row["rendered"]),
            media=tuple(
                Media(path=Path(m["path"]), alt=m["alt"], mime=m["mime"]) for m in row["media"]
            ),
            variants=dict(row["variants"]),
            source=row["source"],
        )
        draft = bool(row["approval_required"]) and row["approved_by"] is None
        post_id = self._insert_post(
            conn,
            post,
            actor=row["created_by"],
            now=now,
            approval_required=bool(row["approval_required"]),
            series_id=row["id"],
            occurrence_at=at,
            approved=(row["approved_by"], row["approved_at"]),
            keys=digests(row["dedup_link"], row["body"]),
        )
        dues = {
            r["account"]: due_rule(row["category"], r["account"], base) for r in row["rendered"]
        }
        self._insert_deliveries(conn, post_id, row["rendered"], dues, draft=draft, now=now)
        write_audit(
            conn,
            at=now,
            actor=actor,
            action="materialise",
            post_id=post_id,
            series_id=row["id"],
            detail={"occurrence_at": at.isoformat(), "state": "draft" if draft else "scheduled"},
        )
        return post_id

    def series_list(self) -> list[SeriesInfo]:
        with self.store._read() as conn:
            rows = conn.execute(select(series).order_by(series.c.id)).mappings().all()
            result = []
            for row in rows:
                info = _series(row)
                nxt = conn.execute(
                    select(posts.c.id, func.min(deliveries.c.due_at))
                    .join(deliveries, deliveries.c.post_id == posts.c.id)
                    .where(posts.c.series_id == info.id, deliveries.c.state.in_(CHANGEABLE))
                    .group_by(posts.c.id)
                    .order_by(func.min(deliveries.c.due_at))
                    .limit(1)
                ).first()
                if nxt is not None:
                    info = replace(info, next_post=(int(nxt[0]), aware(nxt[1])))
                result.append(info)
        return result
