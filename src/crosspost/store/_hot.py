"""The daemon's hot path as SQL text: the claim and the settlement of a batch.

:meth:`SqlStore.claim_and_start`, :meth:`SqlStore.claim_due` and
:meth:`SqlStore.finish_and_settle` run these statements with
``Connection.exec_driver_sql`` instead of SQLAlchemy Core: building and
compiling a Core statement per claim (its ``VALUES`` list and the partial
index's literal ``IN`` are rendered afresh every time) cost more than running
it -- most of the database's share of the daemon's CPU (bench/README.md). The
texts are built once per shape and the drivers keep them prepared (sqlite3's
statement cache; psycopg prepares a statement from its fifth execution).
``exec_driver_sql`` keeps SQLAlchemy's transaction, its error translation and
its cursor events (the tests and the benchmark read the statements there).

The shapes:

* **SQLite claim** -- one ``UPDATE … WHERE id IN (<per-account searches>)
  RETURNING``: a ``UNION ALL`` of one search of ix_deliveries_account_due per account
  (each with its own ``LIMIT``, so one account's backlog never fills the
  others' share), prepared once per number of accounts; then the first
  attempts (one multi-row ``INSERT … RETURNING``) and the posts.
* **PostgreSQL claim** -- one statement, one round trip: the lease (the
  per-account ``LATERAL`` searches with ``FOR UPDATE SKIP LOCKED``), the first
  attempts (``INSERT … SELECT`` from the leased rows) and the posts, in
  data-modifying CTEs.
* **Settlement** -- on PostgreSQL one statement for the whole batch (``unnest``
  of the settlements' columns: the attempts' outcomes, then the fenced
  ``UPDATE`` of the deliveries, ``RETURNING`` which were still ours); on SQLite,
  under the write lock, the attempts, which deliveries are still ours, and
  their new states, each one ``executemany``.

On PostgreSQL the claim and the settlement run in autocommit
(:func:`crosspost.store._sql.one_statement`): a single statement is its own
transaction, committed before it returns, without ``BEGIN``/``COMMIT`` round trips.

Times are stored as naive UTC: on SQLite as SQLAlchemy's DATETIME text
(``YYYY-MM-DD HH:MM:SS.ffffff``, so text order is time order), which
:func:`sqlite_time` writes and :func:`read_time` reads back.
"""

# The texts are built from this module's constants and placeholder counts only; every
# value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from crosspost.models import (
    SAME_WINDOW,
    Attempt,
    Budget,
    Delivery,
    DeliveryState,
    Media,
    Outcome,
    StoredPost,
)
from crosspost.store.base import Claim, Settlement
from crosspost.store.schema import PENDING_STATES

#: the deliveries columns a claim returns, in this order (see _delivery)
DELIVERY_COLUMNS = (
    "id",
    "post_id",
    "account",
    "platform",
    "state",
    "due_at",
    "text",
    "idempotency_key",
    "attempts",
    "remote_id",
    "remote_url",
    "error",
    "lease_until",
    "worker",
    "lease_token",
    "uncertain",
    "updated_at",
    "published_at",
    "progress",
)
#: the posts columns publishing needs, in this order (see _post)
POST_COLUMNS = (
    "id",
    "title",
    "body",
    "link",
    "category",
    "publish_at",
    "created_at",
    "created_by",
    "source",
    "media",
)
_ND, _NP = len(DELIVERY_COLUMNS), len(POST_COLUMNS)
_PENDING_SQL = ", ".join(f"'{s}'" for s in PENDING_STATES)  # ix_deliveries_due's own WHERE
_PUBLISHING = DeliveryState.PUBLISHING.value
_PUBLISHED = DeliveryState.PUBLISHED.value
_PENDING = Outcome.PENDING.value


# -- values ------------------------------------------------------------------------------------
def naive_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("the store needs aware datetimes")
    return value.astimezone(UTC).replace(tzinfo=None)


def sqlite_time(value: datetime | None) -> str | None:
    """An aware datetime as SQLAlchemy's SQLite DATETIME text (naive UTC, microseconds)."""
    if value is None:
        return None
    return naive_utc(value).isoformat(" ", "microseconds")


def read_time(value: Any) -> datetime | None:
    """A stored time (SQLite text or PostgreSQL's naive timestamp) as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC)


def read_json(value: Any) -> Any:
    """A JSON column: text on SQLite, already decoded by psycopg on PostgreSQL."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def _delivery(row: Sequence[Any]) -> Delivery:
    return Delivery(
        id=row[0],
        post_id=row[1],
        account=row[2],
        platform=row[3],
        state=DeliveryState(row[4]),
        due_at=read_time(row[5]),  # type: ignore[arg-type]  # NOT NULL
        text=row[6],
        idempotency_key=row[7],
        attempts=row[8],
        remote_id=row[9],
        remote_url=row[10],
        error=row[11],
        lease_until=read_time(row[12]),
        worker=row[13],
        lease_token=row[14],
        uncertain=bool(row[15]),
        updated_at=read_time(row[16]),
        published_at=read_time(row[17]),
        progress=dict(read_json(row[18]) or {}),
    )


def _post(row: Sequence[Any]) -> StoredPost:
    return StoredPost(
        id=row[0],
        title=row[1],
        body=row[2],
        link=row[3],
        category=row[4],
        publish_at=read_time(row[5]),
        created_at=read_time(row[6]),  # type: ignore[arg-type]  # NOT NULL
        created_by=row[7],
        source=row[8],
        media=tuple(
            Media(path=Path(m["path"]), alt=m["alt"], mime=m.get("mime", "image/jpeg"))
            for m in read_json(row[9])
        ),
    )


def _attempt(delivery: Delivery, attempt_id: int, worker: str, now: datetime) -> Attempt:
    return Attempt(
        id=attempt_id,
        delivery_id=delivery.id,
        post_id=delivery.post_id,
        account=delivery.account,
        number=delivery.attempts,
        started_at=now,
        outcome=Outcome.PENDING,
        idempotency_key=delivery.idempotency_key,
        worker=worker,
    )


def _duration_ms(s: Settlement) -> int:
    return max(0, int((s.now - s.attempt.started_at).total_seconds() * 1000))


# -- SQLite -------------------------------------------------------------------------------------
_SQLITE_CLAIMS: dict[tuple[int, int, bool], str] = {}


def _sqlite_claim_sql(accounts: int, reconcilable: int, start: bool) -> str:
    """The SQLite claim for ``accounts`` accounts, built once per shape.

    Named parameters: ``worker``, ``now``, ``lease_end``, ``clock``, ``a0…``/``n0…``
    (account and how many), ``r0…`` (the reconcilable platforms).
    """
    key = (accounts, reconcilable, start)
    sql = _SQLITE_CLAIMS.get(key)
    if sql is not None:
        return sql
    platforms = ", ".join(f":r{i}" for i in range(reconcilable))
    waiting = "state IN ('scheduled', 'retrying')"
    if reconcilable:
        waiting = f"({waiting} OR (state = 'unknown' AND platform IN ({platforms})))"
    searches = " UNION ALL ".join(
        "SELECT id FROM (SELECT id FROM deliveries INDEXED BY ix_deliveries_account_due"
        f" WHERE state IN ({_PENDING_SQL}) AND {waiting} AND due_at <= :clock"
        f" AND account = :a{i} ORDER BY due_at, id LIMIT :n{i})"
        for i in range(accounts)
    )
    counts = ""
    if start and reconcilable:  # the attempt claim_and_start writes (see _starts_with_claim)
        counts = (
            f", attempts = CASE WHEN NOT uncertain AND platform IN ({platforms})"
            " THEN attempts + 1 ELSE attempts END"
        )
    sql = (
        f"UPDATE deliveries SET state = '{_PUBLISHING}', worker = :worker,"
        f" lease_until = :lease_end, lease_token = lease_token + 1, updated_at = :now{counts}"
        f" WHERE id IN ({searches})"
        " AND account NOT IN (SELECT account FROM account_state"
        " WHERE paused_reason IS NOT NULL OR blocked_until > :clock)"
        f" RETURNING {', '.join(DELIVERY_COLUMNS)}"
    )
    _SQLITE_CLAIMS[key] = sql
    return sql


def sqlite_claim(
    conn: Connection,
    worker: str,
    wanted: Mapping[str, int],
    now: datetime,
    lease: timedelta,
    reconcilable: Collection[str],
    *,
    start: bool,
) -> list[Claim] | list[Delivery]:
    """Lease the due deliveries (and with ``start`` write the first attempts and read
    the posts), inside the caller's write transaction (``BEGIN IMMEDIATE``)."""
    platforms = sorted(reconcilable)
    stamp = sqlite_time(now)
    params: dict[str, Any] = {
        "worker": worker,
        "now": stamp,
        "clock": stamp,
        "lease_end": sqlite_time(now + lease),
    }
    for i, (account, n) in enumerate(sorted(wanted.items())):
        params[f"a{i}"] = account
        params[f"n{i}"] = n
    for i, platform in enumerate(platforms):
        params[f"r{i}"] = platform
    sql = _sqlite_claim_sql(len(wanted), len(platforms), start)
    claimed = [_delivery(row) for row in conn.exec_driver_sql(sql, params)]
    if not start or not claimed:
        return claimed
    fresh = [d for d in claimed if not d.uncertain and d.platform in reconcilable]
    started: dict[int, int] = {}
    if fresh:
        rows = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * len(fresh))
        values: list[Any] = []
        for d in fresh:
            values += [d.id, d.post_id, d.account, d.attempts, stamp, _PENDING]
            values += [d.idempotency_key, worker]
        for attempt_id, delivery_id in conn.exec_driver_sql(
            "INSERT INTO attempts (delivery_id, post_id, account, number, started_at, outcome,"
            f" idempotency_key, worker) VALUES {rows} RETURNING id, delivery_id",
            tuple(values),
        ):
            started[delivery_id] = attempt_id
    post_ids = sorted({d.post_id for d in claimed})
    marks = ", ".join(["?"] * len(post_ids))
    posts = {
        row[0]: _post(row)
        for row in conn.exec_driver_sql(
            f"SELECT {', '.join(POST_COLUMNS)} FROM posts WHERE id IN ({marks})", tuple(post_ids)
        )
    }
    return [
        Claim(
            d,
            posts[d.post_id],
            _attempt(d, started[d.id], worker, now) if d.id in started else None,
        )
        for d in claimed
    ]


_SQLITE_FINISH = (
    "UPDATE attempts SET outcome = ?, finished_at = ?, http_status = ?, message = ?,"
    " duration_ms = ? WHERE id = ?"
)
#: _settle_values in one shape: a column the settlement leaves alone keeps its value
_SQLITE_SETTLE = (
    "UPDATE deliveries SET state = :state, updated_at = :at, lease_until = NULL,"
    " worker = NULL, error = :error, due_at = coalesce(:due_at, due_at),"
    " remote_id = CASE WHEN :remote_id IS NULL THEN remote_id ELSE :remote_id END,"
    " remote_url = CASE WHEN :remote_id IS NULL THEN remote_url ELSE :remote_url END,"
    f" published_at = CASE WHEN :state = '{_PUBLISHED}' THEN :at ELSE published_at END,"
    " uncertain = coalesce(:uncertain,"
    f" CASE WHEN :state = '{_PUBLISHED}' THEN 0 ELSE uncertain END)"
    f" WHERE id = :id AND worker = :worker AND lease_token = :token AND state = '{_PUBLISHING}'"
)


def sqlite_finish_and_settle(conn: Connection, settlements: Sequence[Settlement]) -> list[bool]:
    """Inside the caller's write transaction (SQLite's write lock is held, so what is
    read here is what the updates see)."""
    conn.exec_driver_sql(
        _SQLITE_FINISH,
        [
            (
                s.outcome.value,
                sqlite_time(s.now),
                s.http_status,
                s.message,
                _duration_ms(s),
                s.attempt.id,
            )
            for s in settlements
        ],
    )
    ids = sorted({s.delivery.id for s in settlements})
    marks = ", ".join(["?"] * len(ids))
    held = {
        (row[0], row[1], row[2])
        for row in conn.exec_driver_sql(
            f"SELECT id, worker, lease_token FROM deliveries WHERE id IN ({marks})"
            f" AND state = '{_PUBLISHING}'",
            tuple(ids),
        )
    }
    done = [(s.delivery.id, s.delivery.worker, s.delivery.lease_token) in held for s in settlements]
    ours = [
        {
            "state": s.state.value,
            "at": sqlite_time(s.now),
            "error": s.error,
            "due_at": sqlite_time(s.due_at),
            "remote_id": s.remote_id,
            "remote_url": s.remote_url,
            "uncertain": None if s.uncertain is None else int(s.uncertain),
            "id": s.delivery.id,
            "worker": s.delivery.worker,
            "token": s.delivery.lease_token,
        }
        for s, mine in zip(settlements, done, strict=True)
        if mine
    ]
    if ours:
        conn.exec_driver_sql(_SQLITE_SETTLE, ours)
    return done


# -- PostgreSQL ---------------------------------------------------------------------------------
_PG_CLOCK = "timezone('UTC', now())"


def _pg_claim_sql(db_clock: bool, start: bool) -> str:
    """The PostgreSQL claim: one statement (see the module's docstring).

    Parameters: ``worker``, ``now``, ``accounts``/``ns`` (arrays: account and how
    many), ``reconcilable`` (array), ``capped`` (array: the accounts whose request
    budget the caller has applied to ``ns`` under the lock of their ``account_state``
    rows; any other account with a budget in an open window is left out), and
    ``lease`` (an interval) with ``db_clock``, else ``clock`` and ``lease_end``.
    """
    clock = _PG_CLOCK if db_clock else "%(clock)s"
    lease_end = f"{_PG_CLOCK} + %(lease)s::interval" if db_clock else "%(lease_end)s"
    counts = ""
    if start:  # the attempt written below (see _starts_with_claim)
        counts = (
            ", attempts = CASE WHEN NOT uncertain AND platform = ANY(%(reconcilable)s::text[])"
            " THEN attempts + 1 ELSE attempts END"
        )
    # ``id = ANY(ARRAY(…))``, not ``id IN (…)``: the planner cannot tell how many rows
    # the per-account LIMITs give and would join ``IN`` by a sequential scan of the
    # whole table; an array is looked up through the primary key.
    lease_sql = (
        f"UPDATE deliveries SET state = '{_PUBLISHING}', worker = %(worker)s,"
        f" lease_until = {lease_end}, lease_token = lease_token + 1,"
        f" updated_at = %(now)s{counts}"
        " WHERE id = ANY(ARRAY("
        "SELECT pick.id FROM unnest(%(accounts)s::text[], %(ns)s::int[]) AS wanted (account, n)"
        " JOIN LATERAL (SELECT c.id FROM deliveries AS c"
        f" WHERE c.state IN ({_PENDING_SQL})"
        " AND (c.state IN ('scheduled', 'retrying')"
        " OR (c.state = 'unknown' AND c.platform = ANY(%(reconcilable)s::text[])))"
        f" AND c.due_at <= {clock} AND c.account = wanted.account"
        " ORDER BY c.due_at, c.id LIMIT wanted.n FOR UPDATE SKIP LOCKED) AS pick ON true"
        " WHERE NOT EXISTS (SELECT 1 FROM account_state AS s WHERE s.account = wanted.account"
        f" AND (s.paused_reason IS NOT NULL OR s.blocked_until > {clock}"
        f" OR (s.limit_reset > {clock} AND s.limit_remaining IS NOT NULL"
        " AND NOT s.account = ANY(%(capped)s::text[]))))))"
        f" RETURNING {', '.join(DELIVERY_COLUMNS)}"
    )
    if not start:
        return lease_sql
    return (
        f"WITH leased AS ({lease_sql}),"
        " started AS (INSERT INTO attempts (delivery_id, post_id, account, number, started_at,"
        " outcome, idempotency_key, worker)"
        f" SELECT id, post_id, account, attempts, %(now)s, '{_PENDING}', idempotency_key,"
        " %(worker)s FROM leased"
        " WHERE NOT uncertain AND platform = ANY(%(reconcilable)s::text[])"
        " ORDER BY due_at, id RETURNING id, delivery_id)"
        f" SELECT {', '.join(f'leased.{c}' for c in DELIVERY_COLUMNS)}, started.id,"
        f" {', '.join(f'p.{c}' for c in POST_COLUMNS)}"
        " FROM leased LEFT JOIN started ON started.delivery_id = leased.id"
        " JOIN posts AS p ON p.id = leased.post_id"
    )


def pg_claim(
    conn: Connection,
    worker: str,
    wanted: Mapping[str, int],
    now: datetime,
    lease: timedelta,
    reconcilable: Collection[str],
    *,
    start: bool,
    db_clock: bool,
    capped: Collection[str] = (),
) -> list[Claim] | list[Delivery]:
    """Lease the due deliveries (with ``start`` also the first attempts and the posts)
    in one statement, inside the caller's transaction."""
    accounts = sorted(wanted)
    params: dict[str, Any] = {
        "worker": worker,
        "now": naive_utc(now),
        "accounts": accounts,
        "ns": [wanted[a] for a in accounts],
        "reconcilable": sorted(reconcilable),
        "capped": sorted(capped),
    }
    if db_clock:
        params["lease"] = lease
    else:
        params["clock"] = naive_utc(now)
        params["lease_end"] = naive_utc(now + lease)
    rows = conn.exec_driver_sql(_pg_claim_sql(db_clock, start), params).all()
    if not start:
        return [_delivery(row) for row in rows]
    posts: dict[int, StoredPost] = {}
    claims = []
    for row in rows:
        d = _delivery(row)
        post = posts.get(d.post_id)
        if post is None:
            post = posts[d.post_id] = _post(row[_ND + 1 :])
        attempt_id = row[_ND]
        attempt = None if attempt_id is None else _attempt(d, attempt_id, worker, now)
        claims.append(Claim(d, post, attempt))
    return claims


_PG_SETTLE = (
    "WITH input AS (SELECT * FROM unnest("
    "%(attempt)s::int[], %(outcome)s::text[], %(at)s::timestamp[], %(status)s::int[],"
    " %(message)s::text[], %(ms)s::int[], %(id)s::int[], %(worker)s::text[], %(token)s::int[],"
    " %(state)s::text[], %(due_at)s::timestamp[], %(remote_id)s::text[], %(remote_url)s::text[],"
    " %(error)s::text[], %(uncertain)s::boolean[])"
    " AS t (attempt, outcome, at, status, message, ms, id, worker, token, state, due_at,"
    " remote_id, remote_url, error, uncertain)),"
    " finished AS (UPDATE attempts AS a SET outcome = i.outcome, finished_at = i.at,"
    " http_status = i.status, message = i.message, duration_ms = i.ms"
    " FROM input AS i WHERE a.id = i.attempt RETURNING a.id)"
    " UPDATE deliveries AS d SET state = i.state, updated_at = i.at, lease_until = NULL,"
    " worker = NULL, error = i.error, due_at = coalesce(i.due_at, d.due_at),"
    " remote_id = CASE WHEN i.remote_id IS NULL THEN d.remote_id ELSE i.remote_id END,"
    " remote_url = CASE WHEN i.remote_id IS NULL THEN d.remote_url ELSE i.remote_url END,"
    f" published_at = CASE WHEN i.state = '{_PUBLISHED}' THEN i.at ELSE d.published_at END,"
    f" uncertain = coalesce(i.uncertain, CASE WHEN i.state = '{_PUBLISHED}' THEN false"
    " ELSE d.uncertain END)"
    " FROM input AS i WHERE d.id = i.id AND d.worker = i.worker AND d.lease_token = i.token"
    f" AND d.state = '{_PUBLISHING}'"
    " RETURNING d.id, d.lease_token"
)


def pg_finish_and_settle(
    conn: Connection,
    settlements: Sequence[Settlement],
    budgets: Mapping[str, Budget] | None = None,
    now: datetime | None = None,
) -> list[bool]:
    """One statement for the batch: every attempt's outcome, the new state of each
    delivery still held under the settlement's lease token, and (``budgets``, as of
    ``now``) the accounts' stated budgets."""
    params: dict[str, list[Any]] = {
        "attempt": [s.attempt.id for s in settlements],
        "outcome": [s.outcome.value for s in settlements],
        "at": [naive_utc(s.now) for s in settlements],
        "status": [s.http_status for s in settlements],
        "message": [s.message for s in settlements],
        "ms": [_duration_ms(s) for s in settlements],
        "id": [s.delivery.id for s in settlements],
        "worker": [s.delivery.worker for s in settlements],
        "token": [s.delivery.lease_token for s in settlements],
        "state": [s.state.value for s in settlements],
        "due_at": [None if s.due_at is None else naive_utc(s.due_at) for s in settlements],
        "remote_id": [s.remote_id for s in settlements],
        "remote_url": [s.remote_url for s in settlements],
        "error": [s.error for s in settlements],
        "uncertain": [s.uncertain for s in settlements],
    }
    sql = _PG_SETTLE
    if budgets:
        params.update(_pg_budget_params(budgets, now or max(s.now for s in settlements)))
        sql = _PG_SETTLE_WITH_BUDGETS
    settled = {(row[0], row[1]) for row in conn.exec_driver_sql(sql, params)}
    return [(s.delivery.id, s.delivery.lease_token) in settled for s in settlements]


# -- the accounts' request budgets (issue 5) ----------------------------------------------------
def _budget_upsert(excluded_gap: str, least: str, greatest: str) -> str:
    """``ON CONFLICT`` merge of a stated budget into the row as it stands (the rule of
    :meth:`crosspost.models.Budget.merged`; none left blocks until the reset, never
    shortening a block). ``excluded_gap``: seconds between the two resets."""
    stored_left, stored_reset = "account_state.limit_remaining", "account_state.limit_reset"
    unknown = f"{stored_left} IS NULL OR {stored_reset} IS NULL"
    same = f"{excluded_gap} <= {SAME_WINDOW.total_seconds()}"
    newer = f"excluded.limit_reset > {stored_reset}"
    return (
        " ON CONFLICT (account) DO UPDATE SET updated_at = excluded.updated_at,"
        f" limit_remaining = CASE WHEN {unknown} THEN excluded.limit_remaining"
        f" WHEN {same} THEN {least}({stored_left}, excluded.limit_remaining)"
        f" WHEN {newer} THEN excluded.limit_remaining ELSE {stored_left} END,"
        f" limit_reset = CASE WHEN {unknown} THEN excluded.limit_reset"
        f" WHEN {same} THEN {greatest}({stored_reset}, excluded.limit_reset)"
        f" WHEN {newer} THEN excluded.limit_reset ELSE {stored_reset} END,"
        " blocked_until = CASE WHEN excluded.limit_remaining <= 0 AND"
        " (account_state.blocked_until IS NULL"
        " OR account_state.blocked_until < excluded.limit_reset)"
        " THEN excluded.limit_reset ELSE account_state.blocked_until END"
    )


#: SQLite: Julian days to the millisecond (their floating point puts 5 s at 5.00001)
_SQLITE_BUDGET_MERGE = _budget_upsert(
    "round(abs(julianday(excluded.limit_reset) - julianday(account_state.limit_reset)) * 86400, 3)",
    "min",
    "max",
)
_PG_BUDGETS = (
    "INSERT INTO account_state (account, updated_at, limit_remaining, limit_reset,"
    " blocked_until) SELECT * FROM unnest(%(b_account)s::text[], %(b_at)s::timestamp[],"
    " %(b_left)s::int[], %(b_reset)s::timestamp[], %(b_blocked)s::timestamp[])"
    + _budget_upsert(
        "abs(extract(epoch FROM excluded.limit_reset - account_state.limit_reset))",
        "least",
        "greatest",
    )
)


def sqlite_record_budgets(conn: Connection, budgets: Mapping[str, Budget], now: datetime) -> None:
    """One statement for the batch's accounts (each once), in the caller's transaction."""
    rows = ", ".join(["(?, ?, ?, ?, ?)"] * len(budgets))
    values: list[Any] = []
    for account in sorted(budgets):  # one order for every daemon
        b = budgets[account]
        spent = sqlite_time(b.reset) if b.remaining <= 0 else None
        values += [account, sqlite_time(now), b.remaining, sqlite_time(b.reset), spent]
    conn.exec_driver_sql(
        "INSERT INTO account_state (account, updated_at, limit_remaining, limit_reset,"
        f" blocked_until) VALUES {rows}" + _SQLITE_BUDGET_MERGE,
        tuple(values),
    )


#: the settlement and the batch's budgets in one statement (a data-modifying CTE): a
#: delivery leaves ``publishing`` together with what its answer said is left
_PG_SETTLE_WITH_BUDGETS = _PG_SETTLE.replace(
    " UPDATE deliveries AS d", f", budgets AS ({_PG_BUDGETS}) UPDATE deliveries AS d", 1
)


def _pg_budget_params(budgets: Mapping[str, Budget], now: datetime) -> dict[str, list[Any]]:
    accounts = sorted(budgets)  # one order for every daemon: no deadlock
    return {
        "b_account": accounts,
        "b_at": [naive_utc(now)] * len(accounts),
        "b_left": [budgets[a].remaining for a in accounts],
        "b_reset": [naive_utc(budgets[a].reset) for a in accounts],
        "b_blocked": [
            naive_utc(budgets[a].reset) if budgets[a].remaining <= 0 else None for a in accounts
        ],
    }


def pg_record_budgets(conn: Connection, budgets: Mapping[str, Budget], now: datetime) -> None:
    """One statement for the accounts' budgets (each account once)."""
    conn.exec_driver_sql(_PG_BUDGETS, _pg_budget_params(budgets, now))


__all__ = [
    "DELIVERY_COLUMNS",
    "POST_COLUMNS",
    "naive_utc",
    "pg_claim",
    "pg_finish_and_settle",
    "pg_record_budgets",
    "read_json",
    "read_time",
    "sqlite_claim",
    "sqlite_finish_and_settle",
    "sqlite_record_budgets",
    "sqlite_time",
]
