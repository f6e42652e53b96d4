"""The SQL store: SQLAlchemy 2 Core on SQLite (default) and PostgreSQL.

Connection settings live in :mod:`crosspost.store.engine`. Where the two
databases differ:

* **claim** -- SQLite serialises writers (``BEGIN IMMEDIATE``) and picks due
  rows account by account; PostgreSQL picks and leases them in one ``UPDATE``
  whose per-account subqueries lock with ``FOR UPDATE SKIP LOCKED``, so
  daemons on several hosts never wait for, nor take, each other's rows;
* **clock** -- on PostgreSQL lease expiry, due times and account blocks are
  compared with the database's ``now()`` (``db_clock``), not the host's;
* **wake-ups** -- on PostgreSQL every change that makes a delivery claimable
  sends ``NOTIFY`` (:mod:`crosspost.store.listen`); SQLite is polled through
  ``PRAGMA data_version``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Interval,
    RowMapping,
    and_,
    bindparam,
    case,
    column,
    delete,
    func,
    insert,
    inspect,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import TableClause

from crosspost.exceptions import NotFound, SchemaOutdated, StoreError
from crosspost.i18n import _
from crosspost.models import (
    Attempt,
    Budget,
    Delivery,
    DeliveryState,
    Media,
    Outcome,
    Post,
    PostMetrics,
    Rendered,
    StoredPost,
)
from crosspost.observability import register_secret
from crosspost.store import _hot
from crosspost.store._sql import (
    describe,
    dialect_insert,
    one_statement,
    post_columns,
    read_transaction,
    write_transaction,
)
from crosspost.store.base import AccountState, ChangeFeed, Claim, DaemonInfo, Settlement
from crosspost.store.engine import (
    APPLICATION_NAME,
    CHANNEL,
    libpq_conninfo,
    make_engine,
    sqlite_path,
)
from crosspost.store.schema import (
    PENDING_STATES,
    SCHEMA_REVISION,
    UTCDateTime,
    account_metrics,
    account_state,
    attempts,
    daemons,
    deliveries,
    post_metrics,
    posts,
)

_WAITING = (DeliveryState.SCHEDULED.value, DeliveryState.RETRYING.value)
#: finished attempts that may have put the post on the platform (see reap_expired)
_MAY_HAVE_LANDED = (Outcome.PUBLISHED.value, Outcome.FOUND.value, Outcome.UNKNOWN.value)


class _DueDeliveries(TableClause):
    """``deliveries`` as the claim reads it: on SQLite, through ix_deliveries_due.

    Without statistics SQLite's planner prefers ix_deliveries_state and sorts
    every pending row, future ones included. ``INDEXED BY`` makes it walk the
    partial due-time index in claim order, and fail loudly should a schema
    change ever make that impossible.
    """

    inherit_cache = True


@compiles(_DueDeliveries, "sqlite")
def _indexed_by_due(element: _DueDeliveries, compiler: SQLCompiler, **kw: Any) -> str:
    rendered: str = compiler.visit_table(element, **kw)  # type: ignore[no-untyped-call]
    return f"{rendered} INDEXED BY ix_deliveries_due" if kw.get("asfrom") else rendered


_due = _DueDeliveries("deliveries", *(column(c.name, c.type) for c in deliveries.c))


def _post(row: RowMapping) -> StoredPost:
    return StoredPost(
        id=row["id"],
        title=row["title"],
        body=row["body"],
        link=row["link"],
        category=row["category"],
        publish_at=row["publish_at"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        source=row["source"],
        media=tuple(
            Media(path=Path(m["path"]), alt=m["alt"], mime=m.get("mime", "image/jpeg"))
            for m in row["media"]
        ),
    )


def _delivery(row: RowMapping) -> Delivery:
    return Delivery(
        id=row["id"],
        post_id=row["post_id"],
        account=row["account"],
        platform=row["platform"],
        state=DeliveryState(row["state"]),
        due_at=row["due_at"],
        text=row["text"],
        idempotency_key=row["idempotency_key"],
        attempts=row["attempts"],
        remote_id=row["remote_id"],
        remote_url=row["remote_url"],
        error=row["error"],
        lease_until=row["lease_until"],
        worker=row["worker"],
        lease_token=row["lease_token"],
        uncertain=bool(row["uncertain"]),
        updated_at=row["updated_at"],
        published_at=row["published_at"],
        progress=dict(row["progress"] or {}),
    )


def _starts_with_claim(delivery: Delivery, reconcilable: Collection[str]) -> bool:
    """Whether ``claim_and_start`` writes this delivery's first attempt with the claim.

    Not for an uncertain delivery (it looks on the platform, or waits, first), nor on
    a platform where a resend is unsafe (outside ``reconcilable``): a worker dying
    between claim and request would leave that attempt ``pending``, the reaper would
    make the delivery ``unknown``, and there only a person can settle it. Those
    start their attempt just before the request instead.
    """
    return not delivery.uncertain and delivery.platform in reconcilable


def _settle_values(
    state: DeliveryState,
    now: datetime,
    due_at: datetime | None,
    remote_id: str | None,
    remote_url: str | None,
    error: str | None,
    uncertain: bool | None,
) -> dict[str, Any]:
    """The columns ``settle`` writes: the new state, the lease released."""
    values: dict[str, Any] = {
        "state": state.value,
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
    return values


def _attempt(row: RowMapping) -> Attempt:
    return Attempt(
        id=row["id"],
        delivery_id=row["delivery_id"],
        post_id=row["post_id"],
        account=row["account"],
        number=row["number"],
        started_at=row["started_at"],
        outcome=Outcome(row["outcome"]),
        idempotency_key=row["idempotency_key"],
        worker=row["worker"],
        finished_at=row["finished_at"],
        http_status=row["http_status"],
        message=row["message"],
        duration_ms=row["duration_ms"],
    )


def merged_budgets(budgets: Iterable[tuple[str, Budget]]) -> dict[str, Budget]:
    """Each account's budgets of one batch as one (:meth:`Budget.merged`, in order)."""
    merged: dict[str, Budget] = {}
    for account, budget in budgets:
        known = merged.get(account)
        merged[account] = budget if known is None else known.merged(budget)
    return merged


class SqlStore:
    """The durable queue on a SQL database.

    ``db_clock`` (default: on PostgreSQL) compares lease expiry, due times and
    account blocks with the database's clock instead of the ``now`` the caller
    passes; tests of the contract turn it off to drive time by hand.
    """

    def __init__(
        self,
        url: str,
        *,
        engine: Engine | None = None,
        create: bool = False,
        db_clock: bool | None = None,
    ) -> None:
        self.url = url
        self.engine = engine or make_engine(url, create=create)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        if self.engine.url.password:
            register_secret(str(self.engine.url.password))  # never in a log line
        self.db_clock = (not self.is_sqlite) if db_clock is None else db_clock
        self._marker_conn: Any = None
        #: accounts whose platform stated a request budget, as far as this store has
        #: seen (None: not looked yet); decides how a PostgreSQL claim runs (see _claim)
        self._budgeted: frozenset[str] | None = None

    # -- plumbing --------------------------------------------------------------------
    def _clock(self, now: datetime) -> ColumnElement[datetime]:
        """The instant that decides leases, due times and blocks in this statement."""
        if self.db_clock:
            return func.timezone("UTC", func.now(), type_=UTCDateTime())
        return literal(now, UTCDateTime())

    def _lease_end(self, now: datetime, lease: timedelta) -> ColumnElement[datetime]:
        if self.db_clock:
            return self._clock(now) + literal(lease, Interval())
        return literal(now + lease, UTCDateTime())

    def _notify(self, conn: Connection) -> None:
        """Wake every listening daemon when this transaction commits (PostgreSQL)."""
        if not self.is_sqlite:
            conn.execute(select(func.pg_notify(CHANNEL, "")))

    def _write(self) -> AbstractContextManager[Connection]:
        return write_transaction(self.engine, self._describe)

    def _hot_write(self) -> AbstractContextManager[Connection]:
        """The daemon's claim and settlement: on PostgreSQL each is one statement, run as
        its own transaction (no BEGIN/COMMIT round trips); on SQLite several statements
        under ``BEGIN IMMEDIATE``."""
        if self.is_sqlite:
            return self._write()
        return one_statement(self.engine, self._describe)

    def _read(self) -> AbstractContextManager[Connection]:
        return read_transaction(self.engine, self._describe)

    def _describe(self, exc: SQLAlchemyError) -> str:
        return describe(self.engine, exc)

    @property
    def safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        if self._marker_conn is not None:
            self._marker_conn.close()
            self._marker_conn = None
        self.engine.dispose()

    def check_schema(self) -> None:
        path = sqlite_path(self.url)
        if path is not None and not path.exists():
            raise SchemaOutdated(
                _("no database at {path}; create it with: crosspost db upgrade").format(path=path)
            )
        try:
            with self.engine.connect() as conn:
                if not inspect(conn).has_table("alembic_version"):
                    raise SchemaOutdated(
                        _(
                            "database {url} has no crosspost schema; run: crosspost db upgrade"
                        ).format(url=self.safe_url)
                    )
                version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        except DBAPIError as exc:
            raise StoreError(self._describe(exc)) from exc
        if version != SCHEMA_REVISION:
            newer = version is not None and str(version) > SCHEMA_REVISION
            if newer:
                message = _(
                    "database {url} has schema {found}, newer than this crosspost "
                    "({expected}); upgrade crosspost"
                )
            else:
                message = _(
                    "database {url} has schema {found}, this crosspost needs {expected}; "
                    "run: crosspost db upgrade"
                )
            raise SchemaOutdated(
                message.format(url=self.safe_url, found=version, expected=SCHEMA_REVISION)
            )

    def change_marker(self) -> int:
        if not self.is_sqlite:
            # The slow fallback beside LISTEN: what the claimable rows look like,
            # read through the partial due index (never a scan of published rows).
            with self._read() as conn:
                row = conn.execute(
                    select(func.count(), func.max(_due.c.id), func.max(_due.c.updated_at)).where(
                        self._due_condition(())
                    )
                ).one()
            return hash(tuple(row))
        if self._marker_conn is None:
            self._marker_conn = self.engine.raw_connection()
        cursor = self._marker_conn.cursor()
        try:
            cursor.execute("PRAGMA data_version")
            return int(cursor.fetchone()[0])
        finally:
            cursor.close()

    def change_feed(self) -> ChangeFeed | None:
        if self.is_sqlite:
            return None
        from crosspost.store.listen import PgChangeFeed  # the driver only where it is used

        return PgChangeFeed(
            libpq_conninfo(self.engine), safe_url=self.safe_url, application_name=APPLICATION_NAME
        )

    # -- editors -------------------------------------------------------------------------
    def enqueue(
        self,
        post: Post,
        rendered: Sequence[Rendered],
        *,
        due_at: datetime,
        created_by: str,
        now: datetime,
    ) -> int:
        [post_id] = self.enqueue_many([(post, rendered, due_at)], created_by=created_by, now=now)
        return post_id

    def enqueue_many(
        self,
        items: Sequence[tuple[Post, Sequence[Rendered], datetime]],
        *,
        created_by: str,
        now: datetime,
    ) -> list[int]:
        with self._write() as conn:
            return [
                self._insert_post(conn, post, rendered, due_at, created_by, now)
                for post, rendered, due_at in items
            ]

    def _insert_post(
        self,
        conn: Connection,
        post: Post,
        rendered: Sequence[Rendered],
        due_at: datetime,
        created_by: str,
        now: datetime,
    ) -> int:
        post_id = conn.execute(
            insert(posts)
            .values(**post_columns(post), created_at=now, created_by=created_by, source=post.source)
            .returning(posts.c.id)
        ).scalar_one()
        if not rendered:
            return int(post_id)  # executemany with no rows would insert one empty row
        self._notify(conn)
        conn.execute(
            insert(deliveries),
            [
                {
                    "post_id": post_id,
                    "account": r.account,
                    "platform": r.platform,
                    "state": DeliveryState.SCHEDULED.value,
                    "due_at": due_at,
                    "text": r.text,
                    "idempotency_key": uuid.uuid4().hex,
                    "updated_at": now,
                }
                for r in rendered
            ],
        )
        return int(post_id)

    def get_post(self, post_id: int) -> StoredPost:
        with self._read() as conn:
            row = conn.execute(select(posts).where(posts.c.id == post_id)).mappings().first()
        if row is None:
            raise NotFound(_("post {id} does not exist").format(id=post_id))
        return _post(row)

    def deliveries_of(self, post_id: int) -> list[Delivery]:
        with self._read() as conn:
            rows = conn.execute(
                select(deliveries).where(deliveries.c.post_id == post_id).order_by(deliveries.c.id)
            ).mappings()
            return [_delivery(r) for r in rows]

    def list_posts(
        self, *, states: Collection[DeliveryState] | None = None, limit: int = 200
    ) -> list[tuple[StoredPost, list[Delivery]]]:
        query = select(posts).order_by(posts.c.id.desc()).limit(limit)
        if states:
            query = query.where(
                posts.c.id.in_(
                    select(deliveries.c.post_id).where(
                        deliveries.c.state.in_([s.value for s in states])
                    )
                )
            )
        with self._read() as conn:
            post_rows = [_post(r) for r in conn.execute(query).mappings()]
            ids = [p.id for p in post_rows]
            by_post: dict[int, list[Delivery]] = {i: [] for i in ids}
            if ids:
                for row in conn.execute(
                    select(deliveries)
                    .where(deliveries.c.post_id.in_(ids))
                    .order_by(deliveries.c.id)
                ).mappings():
                    by_post[row["post_id"]].append(_delivery(row))
        return [(p, by_post[p.id]) for p in post_rows]

    def attempts(
        self,
        *,
        post_id: int | None = None,
        since: datetime | None = None,
        after_id: int = 0,
        limit: int = 1000,
    ) -> list[Attempt]:
        query = (
            select(attempts).where(attempts.c.id > after_id).order_by(attempts.c.id).limit(limit)
        )
        if post_id is not None:
            query = query.where(attempts.c.post_id == post_id)
        if since is not None:
            query = query.where(attempts.c.started_at >= since)
        with self._read() as conn:
            return [_attempt(r) for r in conn.execute(query).mappings()]

    def _require_post(self, conn: Connection, post_id: int) -> None:
        if conn.execute(select(posts.c.id).where(posts.c.id == post_id)).first() is None:
            raise NotFound(_("post {id} does not exist").format(id=post_id))

    def cancel(self, post_id: int, *, now: datetime) -> int:
        with self._write() as conn:
            self._require_post(conn, post_id)
            result = conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.post_id == post_id,
                    deliveries.c.state.in_([*_WAITING, DeliveryState.UNKNOWN.value]),
                )
                .values(state=DeliveryState.CANCELLED.value, updated_at=now)
            )
            return result.rowcount

    def reschedule(self, post_id: int, due_at: datetime, *, now: datetime) -> int:
        with self._write() as conn:
            self._require_post(conn, post_id)
            result = conn.execute(
                update(deliveries)
                .where(deliveries.c.post_id == post_id, deliveries.c.state.in_(_WAITING))
                .values(due_at=due_at, updated_at=now)
            )
            conn.execute(update(posts).where(posts.c.id == post_id).values(publish_at=due_at))
            if result.rowcount:
                self._notify(conn)
            return result.rowcount

    def retry(self, post_id: int | None, *, now: datetime) -> int:
        query = update(deliveries).where(
            deliveries.c.state.in_([DeliveryState.FAILED.value, DeliveryState.UNKNOWN.value])
        )
        with self._write() as conn:
            if post_id is not None:
                self._require_post(conn, post_id)
                query = query.where(deliveries.c.post_id == post_id)
            result = conn.execute(
                query.values(
                    state=DeliveryState.RETRYING.value,
                    due_at=self._clock(now),
                    attempts=0,
                    error=None,
                    updated_at=now,
                )
            )
            if result.rowcount:
                self._notify(conn)
            return result.rowcount

    def counts(self) -> dict[DeliveryState, int]:
        with self._read() as conn:
            rows = conn.execute(
                select(deliveries.c.state, func.count()).group_by(deliveries.c.state)
            ).all()
        return {DeliveryState(state): int(n) for state, n in rows}

    # -- the daemon -------------------------------------------------------------------
    def _due_condition(self, reconcilable: Collection[str], table: Any = _due) -> Any:
        # ix_deliveries_due's own WHERE, with literal values: a partial index serves
        # only queries that repeat its condition (bound parameters do not count).
        indexed = table.c.state.in_(
            bindparam("pending_states", PENDING_STATES, expanding=True, literal_execute=True)
        )
        waiting: ColumnElement[bool] = table.c.state.in_(_WAITING)
        if reconcilable:
            waiting = or_(
                waiting,
                (table.c.state == DeliveryState.UNKNOWN.value)
                & table.c.platform.in_(list(reconcilable)),
            )
        return and_(indexed, waiting)

    def claim_due(
        self,
        worker: str,
        *,
        now: datetime,
        lease: timedelta,
        capacity: Mapping[str, int],
        reconcilable: Collection[str],
    ) -> list[Delivery]:
        claimed: list[Delivery] = self._claim(
            worker, capacity, now, lease, reconcilable, start=False
        )
        claimed.sort(key=lambda d: (d.due_at, d.id))
        return claimed

    def claim_and_start(
        self,
        worker: str,
        *,
        now: datetime,
        lease: timedelta,
        capacity: Mapping[str, int],
        reconcilable: Collection[str],
    ) -> list[Claim]:
        """One transaction for the claim, the first attempts and the posts (the daemon's
        hot path: see bench/README.md and crosspost.store._hot)."""
        claims: list[Claim] = self._claim(worker, capacity, now, lease, reconcilable, start=True)
        claims.sort(key=lambda c: (c.delivery.due_at, c.delivery.id))
        return claims

    def _claim(
        self,
        worker: str,
        capacity: Mapping[str, int],
        now: datetime,
        lease: timedelta,
        reconcilable: Collection[str],
        *,
        start: bool,
    ) -> Any:
        """Lease the due deliveries, at most ``capacity[account]`` each and no more than
        is left of an account's request budget; ``start`` also writes the first attempts
        (see _starts_with_claim) and reads the posts.

        SQLite: the budgets are read under the claim's write lock. PostgreSQL: a claim
        that may touch an account with a budget locks its ``account_state`` row first
        and counts the deliveries in flight in the next statement (a fresh snapshot,
        after the lock: one claim of that account at a time). A claim of accounts that
        never had one (as far as this store has seen: its first claim looks) stays one
        statement, which leaves out any account whose budget it did not expect, until
        the store sees it (its next :meth:`account_states`, which the daemon reads
        after every round of claims).
        """
        wanted = {a: n for a, n in capacity.items() if n > 0}
        if not wanted:
            return []
        if self.is_sqlite:
            with self._write() as conn:
                wanted = self._within_budgets(conn, wanted, now, lock=False)[0]
                if not wanted:
                    return []
                return _hot.sqlite_claim(
                    conn, worker, wanted, now, lease, reconcilable, start=start
                )
        if self._budgeted is not None and self._budgeted.isdisjoint(wanted):
            with self._hot_write() as conn:
                return _hot.pg_claim(
                    conn, worker, wanted, now, lease, reconcilable,
                    start=start, db_clock=self.db_clock,
                )  # fmt: skip
        with self._write() as conn:
            wanted, capped = self._within_budgets(conn, wanted, now, lock=True)
            if not wanted:
                return []
            return _hot.pg_claim(
                conn, worker, wanted, now, lease, reconcilable,
                start=start, db_clock=self.db_clock, capped=capped,
            )  # fmt: skip

    def _within_budgets(
        self, conn: Connection, wanted: Mapping[str, int], now: datetime, *, lock: bool
    ) -> tuple[dict[str, int], list[str]]:
        """``wanted`` cut down to what is left of each account's budget (its stated
        ``remaining`` minus its deliveries in flight, of all daemons), and the accounts
        with a budget. ``lock``: their ``account_state`` rows stay locked to the end of
        the caller's transaction (PostgreSQL)."""
        a = account_state.c
        # every account that has had a budget, its window open or not: a new window
        # another daemon records meanwhile must find the row locked by the next claim
        query = (
            select(a.account, a.limit_remaining, (a.limit_reset > self._clock(now)).label("open"))
            .where(a.account.in_(sorted(wanted)), a.limit_remaining.is_not(None))
            .order_by(a.account)
        )
        if lock:
            query = query.with_for_update()
        rows = conn.execute(query).all()
        self._budgeted = (self._budgeted or frozenset()) | {r.account for r in rows}
        budgets: dict[str, int] = {r.account: r.limit_remaining for r in rows if r.open}
        if not budgets:
            return dict(wanted), []
        d = deliveries.c
        in_flight: dict[str, int] = {
            r.account: r.n
            for r in conn.execute(
                select(d.account, func.count().label("n"))
                .where(d.state == DeliveryState.PUBLISHING.value, d.account.in_(sorted(budgets)))
                .group_by(d.account)
            )
        }
        left = {
            account: min(n, budgets[account] - in_flight.get(account, 0))
            if account in budgets
            else n
            for account, n in wanted.items()
        }
        return {account: n for account, n in left.items() if n > 0}, sorted(budgets)

    def next_due(
        self, *, accounts: Collection[str], reconcilable: Collection[str]
    ) -> datetime | None:
        with self._read() as conn:
            return conn.execute(
                select(_due.c.due_at)
                .where(self._due_condition(reconcilable), _due.c.account.in_(list(accounts)))
                .order_by(_due.c.due_at)
                .limit(1)
            ).scalar()

    def _owned(self, delivery: Delivery) -> Any:
        return (
            (deliveries.c.id == delivery.id)
            & (deliveries.c.worker == delivery.worker)
            & (deliveries.c.lease_token == delivery.lease_token)
            & (deliveries.c.state == DeliveryState.PUBLISHING.value)
        )

    def start_attempt(self, delivery: Delivery, *, now: datetime) -> Attempt | None:
        with self._write() as conn:
            number = conn.execute(
                update(deliveries)
                .where(self._owned(delivery))
                .values(attempts=deliveries.c.attempts + 1, updated_at=now)
                .returning(deliveries.c.attempts)
            ).scalar()
            if number is None:
                return None
            values = {
                "delivery_id": delivery.id,
                "post_id": delivery.post_id,
                "account": delivery.account,
                "number": number,
                "started_at": now,
                "outcome": Outcome.PENDING.value,
                "idempotency_key": delivery.idempotency_key,
                "worker": delivery.worker or "",
            }
            row = conn.execute(insert(attempts).values(**values).returning(*attempts.c)).mappings()
            return _attempt(row.one())

    def finish_attempt(
        self,
        attempt_id: int,
        outcome: Outcome,
        *,
        now: datetime,
        http_status: int | None = None,
        message: str | None = None,
    ) -> None:
        with self._write() as conn:
            started = conn.execute(
                select(attempts.c.started_at).where(attempts.c.id == attempt_id)
            ).scalar_one()
            conn.execute(
                update(attempts)
                .where(attempts.c.id == attempt_id)
                .values(
                    outcome=outcome.value,
                    finished_at=now,
                    http_status=http_status,
                    message=message,
                    duration_ms=max(0, int((now - started).total_seconds() * 1000)),
                )
            )

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
        values = _settle_values(state, now, due_at, remote_id, remote_url, error, uncertain)
        with self._write() as conn:
            result = conn.execute(update(deliveries).where(self._owned(delivery)).values(**values))
            if budget is not None:
                self._record_budgets(conn, [(delivery.account, budget)], now)
            return result.rowcount == 1

    def finish_and_settle(self, settlements: Sequence[Settlement]) -> list[bool]:
        """The attempts' outcomes and the deliveries' new states for a whole batch, in one
        transaction (one statement on PostgreSQL: see crosspost.store._hot)."""
        if not settlements:
            return []
        budgets = merged_budgets(
            (s.delivery.account, s.budget) for s in settlements if s.budget is not None
        )
        if budgets:
            self._budgeted = (self._budgeted or frozenset()) | frozenset(budgets)
        now = max(s.now for s in settlements)
        with self._hot_write() as conn:
            if not self.is_sqlite:
                # one statement with the budgets: a delivery leaves ``publishing``
                # together with what its answer said is left (see claim_due)
                return _hot.pg_finish_and_settle(conn, settlements, budgets, now)
            done = _hot.sqlite_finish_and_settle(conn, settlements)
            if budgets:
                _hot.sqlite_record_budgets(conn, budgets, now)
            return done

    def _record_budgets(
        self, conn: Connection, budgets: Sequence[tuple[str, Budget]], now: datetime
    ) -> None:
        """Merge what the answers said of the accounts' budgets into ``account_state``,
        in the caller's transaction: in SQL, against the row as it stands when its lock
        is taken (``ON CONFLICT`` sees the latest version, whatever another daemon wrote
        meanwhile), by the rule of :meth:`Budget.merged`; a budget with nothing left
        blocks the account until the reset (never shortening a block)."""
        merged = merged_budgets(budgets)
        if self.is_sqlite:
            _hot.sqlite_record_budgets(conn, merged, now)
        else:
            _hot.pg_record_budgets(conn, merged, now)
        self._budgeted = (self._budgeted or frozenset()) | frozenset(merged)

    def save_progress(
        self, delivery: Delivery, progress: Mapping[str, str], *, now: datetime
    ) -> bool:
        with self._write() as conn:
            result = conn.execute(
                update(deliveries)
                .where(self._owned(delivery))
                .values(progress=dict(progress), updated_at=now)
            )
            return result.rowcount == 1

    def mark_retracted(self, delivery_id: int, *, now: datetime) -> bool:
        with self._write() as conn:
            result = conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.id == delivery_id,
                    deliveries.c.state == DeliveryState.PUBLISHED.value,
                )
                .values(state=DeliveryState.RETRACTED.value, updated_at=now, error=None)
            )
            return result.rowcount == 1

    def published(
        self, *, post_id: int | None = None, since: datetime | None = None
    ) -> list[Delivery]:
        query = (
            select(deliveries)
            .where(deliveries.c.state == DeliveryState.PUBLISHED.value)
            .order_by(deliveries.c.published_at, deliveries.c.id)
        )
        if post_id is not None:
            query = query.where(deliveries.c.post_id == post_id)
        if since is not None:
            query = query.where(deliveries.c.published_at >= since)
        with self._read() as conn:
            return [_delivery(r) for r in conn.execute(query).mappings()]

    def record_metrics(self, delivery: Delivery, metrics: PostMetrics, *, now: datetime) -> None:
        with self._write() as conn:
            conn.execute(
                insert(post_metrics).values(
                    delivery_id=delivery.id,
                    account=delivery.account,
                    collected_at=now,
                    likes=metrics.likes,
                    reposts=metrics.reposts,
                    replies=metrics.replies,
                    views=metrics.views,
                )
            )

    def record_followers(self, account: str, followers: int, *, now: datetime) -> None:
        with self._write() as conn:
            conn.execute(
                insert(account_metrics).values(
                    account=account, collected_at=now, followers=followers
                )
            )

    def latest_metrics(self, delivery_id: int) -> tuple[datetime, PostMetrics] | None:
        with self._read() as conn:
            row = (
                conn.execute(
                    select(post_metrics)
                    .where(post_metrics.c.delivery_id == delivery_id)
                    .order_by(post_metrics.c.collected_at.desc(), post_metrics.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        return row["collected_at"], PostMetrics(
            likes=row["likes"], reposts=row["reposts"], replies=row["replies"], views=row["views"]
        )

    def follower_history(self, account: str) -> list[tuple[datetime, int]]:
        with self._read() as conn:
            rows = conn.execute(
                select(account_metrics.c.collected_at, account_metrics.c.followers)
                .where(account_metrics.c.account == account)
                .order_by(account_metrics.c.collected_at, account_metrics.c.id)
            ).all()
        return [(when, int(n)) for when, n in rows]

    def set_token_expiry(self, account: str, expires_at: datetime | None, *, now: datetime) -> None:
        with self._write() as conn:
            self._upsert_account(conn, account, now, {"token_expires_at": expires_at})

    def extend_leases(
        self, worker: str, delivery_ids: Collection[int], *, now: datetime, lease: timedelta
    ) -> None:
        if not delivery_ids:
            return
        with self._write() as conn:
            conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.id.in_(sorted(delivery_ids)),
                    deliveries.c.worker == worker,
                    deliveries.c.state == DeliveryState.PUBLISHING.value,
                )
                .values(lease_until=self._lease_end(now, lease))
            )

    def reap_expired(self, *, now: datetime, worker: str | None = None) -> int:
        condition = deliveries.c.state == DeliveryState.PUBLISHING.value
        if worker is not None:
            condition = condition & (deliveries.c.worker == worker)
        else:
            condition = condition & (deliveries.c.lease_until < self._clock(now))
        with self._write() as conn:
            # Several daemons reap at once on PostgreSQL: each takes the rows no
            # other reaper (or owner settling right now) holds; the lock re-checks
            # the condition against the row as committed meanwhile.
            rows = conn.execute(
                select(deliveries.c.id, deliveries.c.lease_token)
                .where(condition)
                .order_by(deliveries.c.id)
                .with_for_update(skip_locked=True)
            ).all()
            for delivery_id, token in rows:
                pending = conn.execute(
                    update(attempts)
                    .where(
                        attempts.c.delivery_id == delivery_id,
                        attempts.c.outcome == Outcome.PENDING.value,
                    )
                    .values(
                        outcome=Outcome.CRASHED.value,
                        finished_at=now,
                        message=_("the worker stopped while the request was in flight"),
                    )
                ).rowcount
                landed = conn.execute(
                    select(attempts.c.id)
                    .where(
                        attempts.c.delivery_id == delivery_id,
                        attempts.c.outcome.in_(_MAY_HAVE_LANDED),
                    )
                    .limit(1)
                ).first()
                in_flight = pending > 0 or landed is not None
                conn.execute(
                    update(deliveries)
                    .where(
                        deliveries.c.id == delivery_id,
                        deliveries.c.lease_token == token,
                        deliveries.c.state == DeliveryState.PUBLISHING.value,
                    )
                    .values(
                        state=(
                            DeliveryState.UNKNOWN.value
                            if in_flight
                            else DeliveryState.RETRYING.value
                        ),
                        uncertain=True if in_flight else deliveries.c.uncertain,
                        due_at=self._clock(now),
                        worker=None,
                        lease_until=None,
                        updated_at=now,
                        error=(
                            _("the daemon stopped while publishing; checking the platform")
                            if in_flight
                            else None
                        ),
                    )
                )
            if rows:
                self._notify(conn)
            return len(rows)

    # -- accounts and daemons ---------------------------------------------------------
    def account_states(self) -> dict[str, AccountState]:
        with self._read() as conn:
            rows = conn.execute(select(account_state)).mappings()
            states = {
                r["account"]: AccountState(
                    account=r["account"],
                    paused_reason=r["paused_reason"],
                    paused_at=r["paused_at"],
                    blocked_until=r["blocked_until"],
                    text_limit=r["text_limit"],
                    token_expires_at=r["token_expires_at"],
                    budget=(
                        None
                        if r["limit_remaining"] is None or r["limit_reset"] is None
                        else Budget(r["limit_remaining"], r["limit_reset"])
                    ),
                )
                for r in rows
            }
        # what the next claims expect (an expired budget is dropped by the next claim)
        self._budgeted = frozenset(a for a, state in states.items() if state.budget is not None)
        return states

    def _upsert_account(
        self,
        conn: Connection,
        account: str,
        now: datetime,
        values: Mapping[str, Any],
        merge: Callable[[Any], Mapping[str, Any]] | None = None,
    ) -> None:
        """Insert the account's state or change the given fields, in one statement.

        ``ON CONFLICT`` rather than "update, else insert": daemons starting
        together record the same account at the same moment. ``merge`` gets the
        proposed row (``excluded``) and returns fields that combine it with the
        stored one.
        """
        stmt = dialect_insert(self.is_sqlite, account_state).values(
            account=account, updated_at=now, **values
        )
        changes = {"updated_at": now, **values}
        if merge is not None:
            changes.update(merge(stmt.excluded))
        conn.execute(
            stmt.on_conflict_do_update(index_elements=[account_state.c.account], set_=changes)
        )

    def pause_account(self, account: str, reason: str, *, now: datetime) -> None:
        with self._write() as conn:
            self._upsert_account(conn, account, now, {"paused_reason": reason, "paused_at": now})

    def resume_account(self, account: str, *, now: datetime) -> bool:
        with self._write() as conn:
            resumed = bool(
                conn.execute(
                    update(account_state)
                    .where(
                        account_state.c.account == account,
                        account_state.c.paused_reason.is_not(None),
                    )
                    .values(paused_reason=None, paused_at=None, updated_at=now)
                ).rowcount
            )
            if resumed:
                self._notify(conn)
            return resumed

    def block_account(self, account: str, until: datetime, *, now: datetime) -> None:
        # Several daemons may hit the same limit with different answers: the
        # latest reset wins, and a stale answer never shortens a block.
        def later_of(proposed: Any) -> dict[str, Any]:
            stored, new = account_state.c.blocked_until, proposed.blocked_until
            return {"blocked_until": case((stored.is_(None) | (stored < new), new), else_=stored)}

        with self._write() as conn:
            self._upsert_account(conn, account, now, {"blocked_until": until}, later_of)

    def set_text_limit(self, account: str, limit: int, *, now: datetime) -> None:
        with self._write() as conn:
            self._upsert_account(conn, account, now, {"text_limit": limit})

    def heartbeat(self, info: DaemonInfo) -> None:
        values = {
            "host": info.host,
            "pid": info.pid,
            "version": info.version,
            "started_at": info.started_at,
            "heartbeat_at": info.heartbeat_at,
            "in_hand": info.in_hand,
        }
        with self._write() as conn:
            done = conn.execute(
                update(daemons).where(daemons.c.worker == info.worker).values(**values)
            ).rowcount
            if not done:
                conn.execute(insert(daemons).values(worker=info.worker, **values))

    def remove_daemon(self, worker: str) -> None:
        with self._write() as conn:
            conn.execute(delete(daemons).where(daemons.c.worker == worker))

    def daemons(self) -> list[DaemonInfo]:
        with self._read() as conn:
            rows = conn.execute(select(daemons).order_by(daemons.c.started_at)).mappings()
            return [
                DaemonInfo(
                    worker=r["worker"],
                    host=r["host"],
                    pid=r["pid"],
                    version=r["version"],
                    started_at=r["started_at"],
                    heartbeat_at=r["heartbeat_at"],
                    in_hand=r["in_hand"],
                )
                for r in rows
            ]


__all__ = ["SqlStore", "make_engine", "sqlite_path"]
