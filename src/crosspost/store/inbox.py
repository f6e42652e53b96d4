"""The inbox's tables on SQLite and PostgreSQL (see :mod:`crosspost.inbox`).

``interactions`` holds what editors answer; ``inbox_cursors`` where each
account's fetch stands (and a short lease, so that several daemons sharing a
PostgreSQL database do not fetch the same account at once); ``inbox_responses``
the response times without any personal data, for the yearly report.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Connection,
    Engine,
    RowMapping,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError

from crosspost.exceptions import NotFound
from crosspost.i18n import _
from crosspost.inbox import (
    Interaction,
    InteractionPage,
    InteractionState,
    MonthResponses,
    PostRef,
    percentile,
)
from crosspost.models import DeliveryState, PublishResult
from crosspost.store._sql import describe, read_transaction, write_transaction
from crosspost.store.schema import deliveries, inbox_cursors, inbox_responses, interactions, posts

#: an interaction's remote id is stored up to this length (platform ids are far shorter)
MAX_REMOTE_ID = 512


def _interaction(row: RowMapping) -> Interaction:
    ref = row["reply_ref"]
    if isinstance(ref, str):  # a JSON text from a raw SQLite row
        ref = json.loads(ref)
    return Interaction(
        id=row["id"],
        account=row["account"],
        platform=row["platform"],
        remote_id=row["remote_id"],
        kind=row["kind"],
        delivery_id=row["delivery_id"],
        handle=row["handle"],
        text=row["text"],
        url=row["url"],
        created_at=row["created_at"],
        fetched_at=row["fetched_at"],
        reply_ref=dict(ref or {}),
        state=InteractionState(row["state"]),
        first_response_at=row["first_response_at"],
        replied_at=row["replied_at"],
        reply_remote_id=row["reply_remote_id"],
        reply_url=row["reply_url"],
        forwarded_to=row["forwarded_to"],
        forwarded_at=row["forwarded_at"],
        done_at=row["done_at"],
        post_id=row.get("post_id"),
        post_title=row.get("post_title"),
    )


class SqlInbox:
    """The inbox store on the same engine as the queue."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def of(cls, store_or_engine: Any) -> SqlInbox:
        """From a SqlStore, a SqlInbox or an Engine."""
        if isinstance(store_or_engine, SqlInbox):
            return store_or_engine
        if isinstance(store_or_engine, Engine):
            return cls(store_or_engine)
        engine = getattr(store_or_engine, "engine", None)
        if not isinstance(engine, Engine):
            raise TypeError("SqlInbox needs a SqlStore or an Engine")
        return cls(engine)

    # -- plumbing -------------------------------------------------------------------------
    def _describe(self, exc: DBAPIError) -> str:
        return describe(self.engine, exc)

    def _write(self) -> AbstractContextManager[Connection]:
        return write_transaction(self.engine, self._describe, passing=(IntegrityError,))

    def _read(self) -> AbstractContextManager[Connection]:
        return read_transaction(self.engine, self._describe)

    def _select(self) -> Any:
        return select(
            interactions,
            deliveries.c.post_id.label("post_id"),
            posts.c.title.label("post_title"),
        ).select_from(
            interactions.outerjoin(
                deliveries, deliveries.c.id == interactions.c.delivery_id
            ).outerjoin(posts, posts.c.id == deliveries.c.post_id)
        )

    # -- sync -----------------------------------------------------------------------------
    def sync_state(self, account: str) -> tuple[str | None, datetime | None]:
        with self._read() as conn:
            row = conn.execute(
                select(inbox_cursors.c.cursor, inbox_cursors.c.synced_at).where(
                    inbox_cursors.c.account == account
                )
            ).first()
        return (row.cursor, row.synced_at) if row else (None, None)

    def sync_states(self) -> dict[str, Mapping[str, Any]]:
        with self._read() as conn:
            return {
                row["account"]: dict(row) for row in conn.execute(select(inbox_cursors)).mappings()
            }

    def claim_sync(self, account: str, worker: str, *, now: datetime, lease: timedelta) -> bool:
        """Take the account's fetch for ``lease`` unless another worker holds it or it waits."""
        with self._write() as conn:
            exists = conn.execute(
                select(inbox_cursors.c.account).where(inbox_cursors.c.account == account)
            ).first()
            if exists is None:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(inbox_cursors).values(account=account))
                except IntegrityError:
                    pass  # another daemon created it this instant; the update decides
            result = conn.execute(
                update(inbox_cursors)
                .where(
                    inbox_cursors.c.account == account,
                    or_(
                        inbox_cursors.c.lease_until.is_(None),
                        inbox_cursors.c.lease_until <= now,
                        inbox_cursors.c.worker == worker,
                    ),
                    or_(
                        inbox_cursors.c.blocked_until.is_(None),
                        inbox_cursors.c.blocked_until <= now,
                    ),
                )
                .values(lease_until=now + lease, worker=worker)
            )
            return result.rowcount == 1

    def release_sync(
        self,
        account: str,
        worker: str,
        *,
        now: datetime,
        blocked_until: datetime | None = None,
        error: str | None = None,
    ) -> None:
        with self._write() as conn:
            conn.execute(
                update(inbox_cursors)
                .where(inbox_cursors.c.account == account, inbox_cursors.c.worker == worker)
                .values(
                    lease_until=None,
                    worker=None,
                    blocked_until=blocked_until,
                    error=error,
                    synced_at=now if error is None else inbox_cursors.c.synced_at,
                )
            )

    def add_page(
        self,
        account: str,
        platform: str,
        page: InteractionPage,
        *,
        worker: str,
        now: datetime,
        lease: timedelta | None = None,
    ) -> int:
        """Store one page and its cursor in one transaction; the number of new interactions.

        The cursor moves (and the lease is renewed by ``lease``) only while ``worker``
        holds the account: a fetcher whose lease was taken over adds what it read (the
        store keeps each interaction once) but cannot move the new holder's cursor.
        """
        new = 0
        with self._write() as conn:
            parents = {i.parent_remote_id for i in page.items if i.parent_remote_id}
            delivery_of: dict[str, int] = {}
            if parents:
                delivery_of = {
                    row.remote_id: row.id
                    for row in conn.execute(
                        select(deliveries.c.id, deliveries.c.remote_id).where(
                            deliveries.c.account == account,
                            deliveries.c.remote_id.in_(sorted(parents)),
                        )
                    )
                }
            for item in page.items:
                remote_id = item.remote_id[:MAX_REMOTE_ID]
                known = conn.execute(
                    select(interactions.c.id).where(
                        interactions.c.account == account, interactions.c.remote_id == remote_id
                    )
                ).first()
                if known is not None:
                    continue
                try:
                    with conn.begin_nested():
                        conn.execute(
                            insert(interactions).values(
                                account=account,
                                platform=platform,
                                remote_id=remote_id,
                                kind=item.kind.value,
                                delivery_id=delivery_of.get(item.parent_remote_id or ""),
                                handle=item.handle,
                                text=item.text,
                                url=item.url,
                                created_at=item.created_at.astimezone(UTC),
                                fetched_at=now,
                                reply_ref=dict(item.reply_ref),
                                state=InteractionState.OPEN.value,
                            )
                        )
                    new += 1
                except IntegrityError:
                    continue  # another daemon stored it this instant
            values: dict[str, Any] = {}
            if page.cursor is not None:
                values["cursor"] = page.cursor
            if lease is not None:
                values["lease_until"] = now + lease
            if values:
                conn.execute(
                    update(inbox_cursors)
                    .where(inbox_cursors.c.account == account, inbox_cursors.c.worker == worker)
                    .values(**values)
                )
        return new

    def published_refs(self, account: str, *, since: datetime) -> list[PostRef]:
        with self._read() as conn:
            rows = conn.execute(
                select(
                    deliveries.c.id,
                    deliveries.c.remote_id,
                    deliveries.c.remote_url,
                    deliveries.c.published_at,
                )
                .where(
                    deliveries.c.account == account,
                    deliveries.c.state == DeliveryState.PUBLISHED.value,
                    deliveries.c.remote_id.is_not(None),
                    deliveries.c.published_at >= since,
                )
                .order_by(deliveries.c.published_at)
            ).all()
        return [PostRef(r.id, r.remote_id, r.remote_url, r.published_at) for r in rows]

    # -- reading ----------------------------------------------------------------------------
    def get(self, interaction_id: int) -> Interaction:
        with self._read() as conn:
            row = (
                conn.execute(self._select().where(interactions.c.id == interaction_id))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(
                _(
                    "interaction {id} does not exist (or was deleted after its retention time)"
                ).format(id=interaction_id)
            )
        return _interaction(row)

    def list_interactions(
        self,
        *,
        open_only: bool = False,
        account: str | None = None,
        limit: int = 200,
    ) -> list[Interaction]:
        query = self._select().order_by(interactions.c.created_at.desc(), interactions.c.id.desc())
        if open_only:
            query = query.where(interactions.c.state == InteractionState.OPEN.value)
        if account is not None:
            query = query.where(interactions.c.account == account)
        with self._read() as conn:
            return [_interaction(r) for r in conn.execute(query.limit(limit)).mappings()]

    def counts(self) -> dict[str, int]:
        with self._read() as conn:
            return {
                row.state: row.n
                for row in conn.execute(
                    select(interactions.c.state, func.count().label("n")).group_by(
                        interactions.c.state
                    )
                )
            }

    def unanswered(self) -> dict[str, tuple[int, datetime]]:
        """Per account: the interactions open and not replied to, and the oldest one's time
        (``crosspost status``)."""
        query = (
            select(
                interactions.c.account,
                func.count().label("n"),
                func.min(interactions.c.created_at).label("oldest"),
            )
            .where(
                interactions.c.state == InteractionState.OPEN.value,
                interactions.c.replied_at.is_(None),
            )
            .group_by(interactions.c.account)
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        found = {}
        for account, n, oldest in rows:
            if isinstance(oldest, str):  # an aggregate SQLite may hand back as text
                oldest = datetime.fromisoformat(oldest)
            if oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=UTC)
            found[str(account)] = (int(n), oldest)
        return found

    # -- answering --------------------------------------------------------------------------
    def _respond(
        self, conn: Connection, item: RowMapping, how: str, now: datetime
    ) -> dict[str, Any]:
        """The first response: set it and keep its time without personal data."""
        if item["first_response_at"] is not None:
            return {}
        conn.execute(
            insert(inbox_responses).values(
                account=item["account"],
                platform=item["platform"],
                received_at=item["created_at"],
                responded_at=now,
                how=how,
            )
        )
        return {"first_response_at": now}

    def _locked(self, conn: Connection, interaction_id: int) -> RowMapping:
        query = select(interactions).where(interactions.c.id == interaction_id)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFound(
                _(
                    "interaction {id} does not exist (or was deleted after its retention time)"
                ).format(id=interaction_id)
            )
        return row

    def record_reply(
        self, interaction_id: int, result: PublishResult, *, now: datetime, done: bool
    ) -> Interaction:
        with self._write() as conn:
            row = self._locked(conn, interaction_id)
            values: dict[str, Any] = {
                "replied_at": now,
                "reply_remote_id": result.remote_id,
                "reply_url": result.remote_url,
                **self._respond(conn, row, "reply", now),
            }
            if done and row["state"] != InteractionState.DONE.value:
                values.update(state=InteractionState.DONE.value, done_at=now)
            conn.execute(
                update(interactions).where(interactions.c.id == interaction_id).values(**values)
            )
        return self.get(interaction_id)

    def note_reply_unknown(self, interaction_id: int, *, now: datetime) -> None:
        """A reply whose answer was lost: it may exist, so the next one needs --again."""
        with self._write() as conn:
            self._locked(conn, interaction_id)
            conn.execute(
                update(interactions)
                .where(interactions.c.id == interaction_id, interactions.c.replied_at.is_(None))
                .values(replied_at=now)
            )

    def mark_done(self, interaction_id: int, *, now: datetime) -> Interaction:
        with self._write() as conn:
            row = self._locked(conn, interaction_id)
            if row["state"] != InteractionState.DONE.value:
                conn.execute(
                    update(interactions)
                    .where(interactions.c.id == interaction_id)
                    .values(
                        state=InteractionState.DONE.value,
                        done_at=now,
                        **self._respond(conn, row, "done", now),
                    )
                )
        return self.get(interaction_id)

    def reopen(self, interaction_id: int) -> Interaction:
        with self._write() as conn:
            self._locked(conn, interaction_id)
            conn.execute(
                update(interactions)
                .where(interactions.c.id == interaction_id)
                .values(state=InteractionState.OPEN.value, done_at=None)
            )
        return self.get(interaction_id)

    def mark_forwarded(self, interaction_id: int, office: str, *, now: datetime) -> Interaction:
        with self._write() as conn:
            self._locked(conn, interaction_id)
            conn.execute(
                update(interactions)
                .where(interactions.c.id == interaction_id)
                .values(forwarded_to=office, forwarded_at=now)
            )
        return self.get(interaction_id)

    # -- privacy ----------------------------------------------------------------------------
    def purge(self, *, before: datetime) -> int:
        """Delete the interactions done before ``before``."""
        with self._write() as conn:
            result = conn.execute(
                delete(interactions).where(
                    interactions.c.state == InteractionState.DONE.value,
                    interactions.c.done_at <= before,
                )
            )
            return int(result.rowcount or 0)

    def due_for_purge(self, *, before: datetime) -> int:
        with self._read() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(
                        interactions.c.state == InteractionState.DONE.value,
                        interactions.c.done_at <= before,
                    )
                ).scalar_one()
            )

    # -- the yearly report ------------------------------------------------------------------
    def response_times(self, year: int, *, zone: ZoneInfo | None = None) -> list[MonthResponses]:
        zone = zone or ZoneInfo("UTC")
        start = datetime(year, 1, 1, tzinfo=zone).astimezone(UTC)
        end = datetime(year + 1, 1, 1, tzinfo=zone).astimezone(UTC)
        with self._read() as conn:
            answered = conn.execute(
                select(
                    inbox_responses.c.platform,
                    inbox_responses.c.received_at,
                    inbox_responses.c.responded_at,
                ).where(inbox_responses.c.received_at >= start, inbox_responses.c.received_at < end)
            ).all()
            waiting = conn.execute(
                select(interactions.c.created_at).where(
                    and_(
                        interactions.c.first_response_at.is_(None),
                        interactions.c.created_at >= start,
                        interactions.c.created_at < end,
                    )
                )
            ).all()
        seconds: dict[int, list[float]] = {m: [] for m in range(1, 13)}
        platforms: dict[int, dict[str, int]] = {m: {} for m in range(1, 13)}
        for platform, received, responded in answered:
            month = received.astimezone(zone).month
            seconds[month].append(max(0.0, (responded - received).total_seconds()))
            platforms[month][platform] = platforms[month].get(platform, 0) + 1
        open_per_month = dict.fromkeys(range(1, 13), 0)
        for (created,) in waiting:
            open_per_month[created.astimezone(zone).month] += 1
        months = []
        for month in range(1, 13):
            values = sorted(seconds[month])
            months.append(
                MonthResponses(
                    month=month,
                    answered=len(values),
                    unanswered=open_per_month[month],
                    median_seconds=percentile(values, 0.5),
                    p90_seconds=percentile(values, 0.9),
                    max_seconds=values[-1] if values else None,
                    within_hour=sum(1 for v in values if v <= 3600),
                    within_day=sum(1 for v in values if v <= 86400),
                    by_platform=dict(sorted(platforms[month].items())),
                )
            )
        return months
