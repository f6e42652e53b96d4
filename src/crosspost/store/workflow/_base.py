"""What every part of the SQL workflow shares: the store, its transactions, the
delivery states each step may touch, and writing a post with its deliveries."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from crosspost.exceptions import NotFound
from crosspost.i18n import _
from crosspost.models import DeliveryState, Post, Rendered
from crosspost.store._sql import post_columns
from crosspost.store.audit import write_audit
from crosspost.store.schema import deliveries, posts
from crosspost.store.sql import SqlStore

#: (category, account, base instant) -> when the delivery is due (quiet hours applied)
DueRule = Callable[[str | None, str, datetime], datetime]

WAITING = (DeliveryState.SCHEDULED.value, DeliveryState.RETRYING.value)
#: deliveries an edit, approval or cancel may still change
CHANGEABLE = (*WAITING, DeliveryState.DRAFT.value)
#: deliveries that count for the duplicate guard: on the platform or on their way there
LIVE = (
    DeliveryState.DRAFT.value,
    DeliveryState.SCHEDULED.value,
    DeliveryState.PUBLISHING.value,
    DeliveryState.PUBLISHED.value,
    DeliveryState.RETRYING.value,
    DeliveryState.UNKNOWN.value,
)
#: a post with a delivery in one of these cannot be edited any more
STARTED = (
    DeliveryState.PUBLISHING.value,
    DeliveryState.PUBLISHED.value,
    DeliveryState.UNKNOWN.value,
    DeliveryState.RETRACTED.value,
)


def aware(value: Any) -> datetime:
    """An aggregate's time: SQLite may hand back text, and naive means UTC here."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class WorkflowBase:
    """The store and the row-level steps the workflow's parts share."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction several calls share (``conn=``): all of them or none."""
        with self.store._write() as conn:
            yield conn

    @contextmanager
    def _joined(self, conn: Connection | None) -> Iterator[Connection]:
        if conn is not None:
            yield conn
            return
        with self.store._write() as own:
            yield own

    def _post_row(self, conn: Connection, post_id: int) -> Mapping[Any, Any]:
        row = conn.execute(select(posts).where(posts.c.id == post_id)).mappings().first()
        if row is None:
            raise NotFound(_("post {id} does not exist").format(id=post_id))
        return row

    def _insert_post(
        self,
        conn: Connection,
        post: Post,
        *,
        actor: str,
        now: datetime,
        approval_required: bool,
        series_id: int | None = None,
        occurrence_at: datetime | None = None,
        approved: tuple[str | None, datetime | None] = (None, None),
        keys: tuple[str | None, str | None] = (None, None),
    ) -> int:
        """A post row; ``keys`` are the duplicate guard's (link, text) digests."""
        post_id = conn.execute(
            insert(posts)
            .values(
                **post_columns(post),
                created_at=now,
                created_by=actor,
                source=post.source,
                series_id=series_id,
                occurrence_at=occurrence_at,
                approval_required=approval_required,
                approved_by=approved[0],
                approved_at=approved[1],
                link_digest=keys[0],
                text_digest=keys[1],
            )
            .returning(posts.c.id)
        ).scalar_one()
        return int(post_id)

    def _insert_deliveries(
        self,
        conn: Connection,
        post_id: int,
        rendered: Sequence[Rendered] | Sequence[Mapping[Any, Any]],
        dues: Mapping[str, datetime],
        *,
        draft: bool,
        now: datetime,
    ) -> None:
        rows = []
        for r in rendered:
            account, platform, text = (
                (r.account, r.platform, r.text)
                if isinstance(r, Rendered)
                else (r["account"], r["platform"], r["text"])
            )
            rows.append(
                {
                    "post_id": post_id,
                    "account": account,
                    "platform": platform,
                    "state": (DeliveryState.DRAFT if draft else DeliveryState.SCHEDULED).value,
                    "due_at": dues[account],
                    "text": text,
                    "idempotency_key": uuid.uuid4().hex,
                    "updated_at": now,
                }
            )
        if not rows:
            return
        if not draft:
            self.store._notify(conn)
        conn.execute(insert(deliveries), rows)

    @staticmethod
    def _set_state(
        conn: Connection,
        to: DeliveryState,
        *,
        now: datetime,
        states: Sequence[str],
        error: str | None = None,
        **where: Any,
    ) -> int:
        """Deliveries in ``states`` matching ``where`` (column = value) to ``to``; how many."""
        query = update(deliveries).where(deliveries.c.state.in_(states))
        for column, value in where.items():
            query = query.where(deliveries.c[column] == value)
        values: dict[str, Any] = {"state": to.value, "updated_at": now}
        if error is not None:
            values["error"] = error
        return int(conn.execute(query.values(**values)).rowcount)

    @staticmethod
    def _audit_enqueue(
        conn: Connection,
        post: Post,
        detail: dict[str, Any],
        *,
        actor: str,
        now: datetime,
        post_id: int | None = None,
        series_id: int | None = None,
    ) -> None:
        """The audit row of a new post or series (``enqueue_forced`` past the guard)."""
        if post.source:
            detail["source"] = post.source
        write_audit(
            conn,
            at=now,
            actor=actor,
            action="enqueue_forced" if "forced_duplicates" in detail else "enqueue",
            post_id=post_id,
            series_id=series_id,
            detail=detail,
        )
