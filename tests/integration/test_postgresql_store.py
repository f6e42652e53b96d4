"""What only the PostgreSQL store promises: the same migrations, claims in one
statement that skip locked rows, the database's clock for leases, NOTIFY for
wake-ups, and many daemons and editors at once.

The behaviour every backend shares is in ``tests/contract/test_store.py``.
Each test gets a database of its own (``tests/pgfixture.py``); tests that need
no PostgreSQL server are skipped when none is to be had.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from tests.pgfixture import PgServer

from crosspost.exceptions import SchemaOutdated, StoreError
from crosspost.models import Delivery, DeliveryState, Outcome, Post, PostMetrics, Rendered
from crosspost.store.base import DaemonInfo
from crosspost.store.engine import libpq_conninfo
from crosspost.store.migrate import head_revision, upgrade
from crosspost.store.schema import SCHEMA_REVISION, metadata
from crosspost.store.sql import SqlStore

LINK = "https://www.zv-staedtedreieck.de/aktuelles/stellenangebot"
ACCOUNTS = ("mastodon", "bluesky")
LEASE = timedelta(seconds=60)
#: a host whose clock is this far off must not matter
SKEW = timedelta(days=1)


def make_post(title: str) -> Post:
    return Post(
        title=title,
        body="Wir suchen eine Fachkraft für den Wertstoffhof.",
        link=LINK,
        category="stellenangebot",
        publish_at=None,
        accounts=(),
    )


def rendered(*accounts: str) -> list[Rendered]:
    return [
        Rendered(account=a, platform=a, text=f"{a}\n\n{LINK}", length=60, limit=300, unit="c")
        for a in accounts or ACCOUNTS
    ]


def enqueue(store: SqlStore, *accounts: str, due_at: datetime, title: str = "Post") -> int:
    return store.enqueue(
        make_post(title), rendered(*accounts), due_at=due_at, created_by="editor", now=due_at
    )


def db_now(store: SqlStore) -> datetime:
    """The database server's clock."""
    with store.engine.connect() as conn:
        value = conn.execute(text("SELECT now() AT TIME ZONE 'UTC'")).scalar_one()
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC)


def claim(store: SqlStore, worker: str, *, now: datetime, **capacity: int) -> list[Delivery]:
    return store.claim_due(
        worker,
        now=now,
        lease=LEASE,
        capacity=capacity or dict.fromkeys(ACCOUNTS, 10),
        reconcilable=(),
    )


def near(value: datetime | None, expected: datetime, slack: float = 10.0) -> bool:
    return value is not None and abs((value - expected).total_seconds()) <= slack


@pytest.fixture
def store(pg_url: str) -> Iterator[SqlStore]:
    """A daemon's store: the database's clock decides (the default on PostgreSQL)."""
    fresh = SqlStore(pg_url)
    assert fresh.db_clock
    yield fresh
    fresh.close()


# -- schema -------------------------------------------------------------------------------------


def test_migrations_create_exactly_the_declared_schema(pg_empty_url: str) -> None:
    """The alembic migrations SQLite runs build the declared schema on PostgreSQL too,
    partial indexes included."""
    store = SqlStore(pg_empty_url)
    try:
        upgrade(store.engine)
        store.check_schema()
        with store.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
            due_index = conn.execute(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_deliveries_due'")
            ).scalar_one()
    finally:
        store.close()
    assert "WHERE" in due_index
    assert "unknown" in due_index


def test_concurrent_upgrades_migrate_once(pg_empty_url: str) -> None:
    """Three ``db upgrade`` at the same instant: one migrates, the others wait on the
    advisory lock and find the schema current; none fails."""
    barrier = threading.Barrier(3)

    def run_upgrade() -> None:
        store = SqlStore(pg_empty_url)
        try:
            barrier.wait(timeout=30)
            upgrade(store.engine)
        finally:
            store.close()

    with ThreadPoolExecutor(3) as pool:
        for future in [pool.submit(run_upgrade) for _ in range(3)]:
            future.result(timeout=120)
    store = SqlStore(pg_empty_url)
    try:
        store.check_schema()
        with store.engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    finally:
        store.close()
    assert versions == [(head_revision(),)]


def test_check_schema_refuses_an_older_schema(store: SqlStore) -> None:
    """A database at an older revision: SchemaOutdated naming ``db upgrade`` (a daemon refuses)."""
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    with pytest.raises(SchemaOutdated, match="db upgrade") as caught:
        store.check_schema()
    assert SCHEMA_REVISION in caught.value.message


# -- the claim ----------------------------------------------------------------------------------


def test_claim_is_one_update_that_skips_locked_rows(store: SqlStore) -> None:
    """claim_due sends a single statement: UPDATE … FOR UPDATE SKIP LOCKED … RETURNING."""
    now = db_now(store)
    for i in range(3):
        enqueue(store, due_at=now - timedelta(minutes=1), title=f"Post {i}")
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        claimed = claim(store, "worker-a", now=now, mastodon=2, bluesky=1)
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    assert [d.account for d in claimed].count("mastodon") == 2
    assert [d.account for d in claimed].count("bluesky") == 1
    [statement] = [s for s in seen if "deliveries" in s]
    assert statement.lstrip().upper().startswith("UPDATE DELIVERIES")
    assert "FOR UPDATE SKIP LOCKED" in statement
    assert "RETURNING" in statement


def test_claim_passes_over_a_row_another_transaction_holds(store: SqlStore) -> None:
    """A row locked by another daemon's open transaction is skipped at once, not waited for."""
    now = db_now(store)
    first = enqueue(store, "mastodon", due_at=now - timedelta(minutes=2), title="first")
    second = enqueue(store, "mastodon", due_at=now - timedelta(minutes=1), title="second")
    [held] = store.deliveries_of(first)
    pool = ThreadPoolExecutor(1)
    with psycopg.connect(libpq_conninfo(store.engine)) as other:
        other.execute("SELECT id FROM deliveries WHERE id = %s FOR UPDATE", (held.id,))
        try:
            claimed = pool.submit(claim, store, "worker-a", now=now).result(timeout=20)
        finally:
            other.rollback()  # a claim that waited for the lock returns now; the test fails
            pool.shutdown()
    assert [d.post_id for d in claimed] == [second]


def test_every_delivery_is_claimed_once_by_concurrent_claimers(store: SqlStore) -> None:
    """Eight threads claiming from one queue at once get disjoint sets that cover it."""
    now = db_now(store)
    for i in range(150):
        enqueue(store, due_at=now - timedelta(seconds=i), title=f"Post {i}")
    stores = [SqlStore(store.url) for _ in range(8)]
    taken: list[list[int]] = [[] for _ in stores]
    barrier = threading.Barrier(len(stores))

    def claimer(index: int) -> None:
        barrier.wait(timeout=30)
        while batch := claim(stores[index], f"worker-{index}", now=now, mastodon=3, bluesky=3):
            taken[index].extend(d.id for d in batch)

    try:
        with ThreadPoolExecutor(len(stores)) as pool:
            for future in [pool.submit(claimer, i) for i in range(len(stores))]:
                future.result(timeout=120)
    finally:
        for s in stores:
            s.close()
    every = [i for ids in taken for i in ids]
    assert len(every) == len(set(every)) == 300
    assert sum(1 for ids in taken if ids) > 1, "the claimers did not run side by side"


# -- the database's clock -----------------------------------------------------------------------


def test_leases_are_measured_with_the_database_clock(store: SqlStore) -> None:
    """A lease ends ``lease`` after the database's now, whatever the host's clock says;
    a host whose clock runs a day ahead reaps nothing that is still leased."""
    now = db_now(store)
    post_id = enqueue(store, "mastodon", due_at=now - timedelta(minutes=1))

    [claimed] = claim(store, "worker-a", now=now + SKEW)
    assert near(claimed.lease_until, now + LEASE)
    assert store.reap_expired(now=now + SKEW) == 0

    store.extend_leases("worker-a", [claimed.id], now=now - SKEW, lease=2 * LEASE)
    [renewed] = store.deliveries_of(post_id)
    assert near(renewed.lease_until, now + 2 * LEASE)
    assert renewed.state is DeliveryState.PUBLISHING


def test_an_expired_lease_is_reaped_whatever_the_hosts_clock(store: SqlStore) -> None:
    """A lease that ended by the database's clock is reaped by a host whose clock lags a day."""
    now = db_now(store)
    post_id = enqueue(store, "mastodon", due_at=now - timedelta(minutes=1))
    [claimed] = store.claim_due(
        "worker-a",
        now=now,
        lease=timedelta(seconds=-1),  # a lease that ended a second ago
        capacity={"mastodon": 1},
        reconcilable=(),
    )
    assert store.start_attempt(claimed, now=now) is not None

    assert store.reap_expired(now=now - SKEW) == 1
    [after] = store.deliveries_of(post_id)
    assert after.state is DeliveryState.UNKNOWN
    assert near(after.due_at, now)


def test_due_times_and_blocks_are_compared_with_the_database_clock(store: SqlStore) -> None:
    """Hosts with clocks a day apart agree on what is due and on an account's block."""
    now = db_now(store)
    enqueue(store, "mastodon", due_at=now + timedelta(hours=1), title="later")
    assert claim(store, "fast-host", now=now + SKEW) == []

    soon = enqueue(store, "mastodon", "bluesky", due_at=now - timedelta(seconds=1), title="now")
    store.block_account("mastodon", now + timedelta(hours=1), now=now)
    claimed = claim(store, "slow-host", now=now - SKEW)
    assert [(d.post_id, d.account) for d in claimed] == [(soon, "bluesky")]
    assert claim(store, "fast-host", now=now + SKEW) == []


def test_three_daemons_respect_one_accounts_block(store: SqlStore) -> None:
    """Once one daemon blocks an account (a 429 until its reset), no daemon claims from
    it; the other accounts go on."""
    now = db_now(store)
    for i in range(6):
        enqueue(store, due_at=now - timedelta(seconds=1), title=f"Post {i}")
    daemons = [SqlStore(store.url) for _ in range(3)]
    try:
        daemons[0].block_account("mastodon", now + timedelta(minutes=10), now=now)
        claimed = [d for i, s in enumerate(daemons) for d in claim(s, f"d{i}", now=now, bluesky=2)]
        claimed += [d for i, s in enumerate(daemons) for d in claim(s, f"d{i}", now=now)]
    finally:
        for s in daemons:
            s.close()
    assert Counter(d.account for d in claimed) == {"bluesky": 6}


def test_daemons_recording_one_account_at_once_do_not_collide(store: SqlStore) -> None:
    """Daemons starting together write the same new account's state at the same moment
    (text limit, token expiry, blocks): every write lands, none fails."""
    now = db_now(store)
    barrier = threading.Barrier(6)

    def start_daemon(index: int) -> None:
        own = SqlStore(store.url)
        try:
            barrier.wait(timeout=30)
            for n in range(20):
                own.set_text_limit(f"account-{n}", 500, now=now)
                own.block_account(f"account-{n}", now + timedelta(seconds=index), now=now)
        finally:
            own.close()

    with ThreadPoolExecutor(6) as pool:
        for future in [pool.submit(start_daemon, i) for i in range(6)]:
            future.result(timeout=120)
    states = store.account_states()
    assert len(states) == 20
    assert {s.text_limit for s in states.values()} == {500}
    assert {s.blocked_until for s in states.values()} == {now + timedelta(seconds=5)}


# -- LISTEN / NOTIFY ----------------------------------------------------------------------------


def test_changes_that_make_work_claimable_notify_listeners(store: SqlStore) -> None:
    """A listener hears once at the start, then after each enqueue, reschedule, retry,
    resumed account and reaped lease committed by another connection."""
    feed = store.change_feed()
    assert feed is not None
    editor = SqlStore(store.url)
    now = db_now(store)

    async def scenario() -> list[str]:
        heard: asyncio.Queue[None] = asyncio.Queue()
        listening = asyncio.create_task(feed.listen(lambda: heard.put_nowait(None)))
        log: list[str] = []

        async def expect(what: str) -> None:
            await asyncio.wait_for(heard.get(), timeout=10)
            log.append(what)

        try:
            await expect("listening")
            post_id = await asyncio.to_thread(
                enqueue, editor, "mastodon", due_at=now + timedelta(hours=1)
            )
            await expect("enqueue")
            await asyncio.to_thread(editor.reschedule, post_id, now, now=now)
            await expect("reschedule")
            [claimed] = await asyncio.to_thread(claim, store, "worker-a", now=now)
            await asyncio.to_thread(store.settle, claimed, DeliveryState.FAILED, now=now)
            await asyncio.to_thread(editor.retry, post_id, now=now)
            await expect("retry")
            await asyncio.to_thread(editor.pause_account, "mastodon", "401", now=now)
            await asyncio.to_thread(editor.resume_account, "mastodon", now=now)
            await expect("resume")
            await asyncio.to_thread(
                store.claim_due,
                "worker-a",
                now=now,
                lease=timedelta(seconds=-1),
                capacity={"mastodon": 1},
                reconcilable=(),
            )
            await asyncio.to_thread(store.reap_expired, now=now)
            await expect("reap")
            assert heard.empty()
        finally:
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)
        return log

    try:
        log = asyncio.run(scenario())
    finally:
        editor.close()
    assert log == ["listening", "enqueue", "reschedule", "retry", "resume", "reap"]


def test_a_lost_listen_connection_raises_store_error(store: SqlStore) -> None:
    """When the server ends the LISTEN session, ``listen`` raises StoreError (the daemon
    then listens again) instead of hanging or crashing."""
    feed = store.change_feed()
    assert feed is not None

    async def scenario() -> None:
        started = asyncio.Event()
        listening = asyncio.create_task(feed.listen(started.set))
        await asyncio.wait_for(started.wait(), timeout=10)
        with store.engine.begin() as conn:
            ended = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = 'crosspost listen' AND datname = current_database()"
                )
            ).scalar_one()
        assert ended == 1
        with pytest.raises(StoreError, match="listening on database"):
            await asyncio.wait_for(listening, timeout=20)

    asyncio.run(scenario())


# -- roles and grants (docs/scaling.md) -----------------------------------------------------------

SCALING_DOC = Path(__file__).resolve().parents[2] / "docs" / "scaling.md"
ROLES = ("crosspost_owner", "crosspost_daemon", "crosspost_editor")


def _sql_blocks(markdown: str) -> list[str]:
    return re.findall(r"```sql\n(.*?)```", markdown, flags=re.DOTALL)


@pytest.fixture
def granted(pg_server: PgServer, pg_url: str) -> Iterator[dict[str, str]]:
    """The roles and grants of docs/scaling.md, exactly as written there, on this test's
    database; the URL for each role."""
    blocks = _sql_blocks(SCALING_DOC.read_text(encoding="utf-8"))
    [roles_sql] = [b for b in blocks if "CREATE ROLE" in b]
    [grants_sql] = [b for b in blocks if "GRANT SELECT" in b]
    create_roles = [line.split("--")[0].strip() for line in roles_sql.splitlines()]
    try:
        for statement in create_roles:
            if statement.startswith("CREATE ROLE"):
                pg_server.admin(statement)
    except psycopg.errors.DuplicateObject:
        pytest.skip(f"roles {ROLES} exist on this server already; not touching them")
    except psycopg.errors.InsufficientPrivilege:
        pytest.skip("the test server's user may not CREATE ROLE")
    owner = SqlStore(pg_url)
    try:
        with owner.engine.begin() as conn:
            conn.exec_driver_sql(grants_sql)
        yield {role: pg_server.url_of(make_url(pg_url).database or "", user=role) for role in ROLES}
    finally:
        for role in ROLES:  # one at a time: together they trip over the shared default ACL
            with owner.engine.begin() as conn:
                conn.exec_driver_sql(f"DROP OWNED BY {role}")
        owner.close()
        for role in ROLES:
            pg_server.admin(f"DROP ROLE IF EXISTS {role}")


def test_the_documented_grants_let_editors_and_daemons_do_their_work_and_no_more(
    granted: dict[str, str],
) -> None:
    """With the GRANTs of docs/scaling.md, the editor role enqueues, lists, reschedules,
    cancels and retries, and the daemon role claims, publishes, reaps, records state and
    heartbeats and listens; an editor cannot claim, a daemon cannot change posts."""
    editor = SqlStore(granted["crosspost_editor"])
    daemon = SqlStore(granted["crosspost_daemon"])
    try:
        now = db_now(daemon)
        for store in (editor, daemon):
            store.check_schema()
        upgrade(daemon.engine)  # ExecStartPre= as the daemon: nothing to migrate, no error

        first = enqueue(editor, due_at=now - timedelta(minutes=1), title="first")
        later = enqueue(editor, due_at=now + timedelta(days=1), title="later")
        assert editor.reschedule(later, now + timedelta(days=2), now=now) == 2
        assert editor.cancel(later, now=now) == 2
        with pytest.raises(StoreError, match="permission denied"):
            claim(editor, "editor-as-daemon", now=now)

        daemon.heartbeat(DaemonInfo("w:1", "host", 1, "0.1.0", now, now, 0))
        daemon.set_text_limit("mastodon", 500, now=now)
        daemon.set_token_expiry("mastodon", now + timedelta(days=30), now=now)
        published, failed = sorted(claim(daemon, "w:1", now=now), key=lambda d: d.account)
        attempt = daemon.start_attempt(published, now=now)
        assert attempt is not None
        assert daemon.save_progress(published, {"step": "sent"}, now=now)
        daemon.finish_attempt(attempt.id, Outcome.PUBLISHED, now=now, http_status=200)
        daemon.extend_leases("w:1", [published.id, failed.id], now=now, lease=LEASE)
        assert daemon.settle(published, DeliveryState.PUBLISHED, now=now, remote_id="1")
        assert daemon.settle(failed, DeliveryState.FAILED, now=now, error="422")
        assert daemon.reap_expired(now=now) == 0
        daemon.block_account("mastodon", now + timedelta(seconds=5), now=now)
        daemon.pause_account("bluesky", "401", now=now)
        assert daemon.resume_account("bluesky", now=now)
        daemon.record_metrics(published, PostMetrics(likes=3), now=now)
        daemon.record_followers("bluesky", 42, now=now)
        daemon.remove_daemon("w:1")
        with (  # a daemon adds a series' occurrences, but never changes an editor's post
            pytest.raises(DBAPIError, match="permission denied for table posts"),
            daemon.engine.begin() as conn,
        ):
            conn.execute(text("UPDATE posts SET title = 'a daemon editing posts'"))

        assert editor.retry(first, now=now) == 1
        assert editor.mark_retracted(published.id, now=now)
        assert {d.account: d.state for d in editor.deliveries_of(first)} == {
            "bluesky": DeliveryState.RETRACTED,
            "mastodon": DeliveryState.RETRYING,
        }
        assert [a.outcome for a in editor.attempts(post_id=first)] == [Outcome.PUBLISHED]
        assert editor.account_states()["mastodon"].text_limit == 500
        assert editor.counts()[DeliveryState.CANCELLED] == 2
        assert editor.daemons() == []
        assert editor.latest_metrics(published.id) is not None
    finally:
        editor.close()
        daemon.close()

    async def listen_once() -> None:
        feed = daemon.change_feed()
        assert feed is not None
        started = asyncio.Event()
        listening = asyncio.create_task(feed.listen(started.set))
        try:
            await asyncio.wait_for(started.wait(), timeout=10)
        finally:
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)

    asyncio.run(listen_once())


# -- editors and daemons in processes -----------------------------------------------------------

POSTS_PER_EDITOR = 150


def _enqueue_posts(url: str, editor: int, errors: Any) -> None:
    """An editor's CLI: enqueue posts due now through its own store."""
    store = SqlStore(url)
    try:
        for i in range(POSTS_PER_EDITOR):
            enqueue(store, due_at=db_now(store), title=f"editor {editor} post {i}")
    except Exception as exc:  # shown in the test's assertion, not only on stderr
        errors.put(f"editor {editor}: {exc!r}")
        raise
    finally:
        store.close()


def _publish_until_done(url: str, worker: str, done: Any, results: Any, errors: Any) -> None:
    """A daemon: claim, attempt and settle until the editors are done and nothing is due."""
    store = SqlStore(url)
    claimed: list[int] = []
    try:
        while True:
            finished = done.is_set()  # read before claiming: then an empty claim means done
            now = datetime.now(UTC)
            batch = store.claim_due(
                worker, now=now, lease=LEASE, capacity=dict.fromkeys(ACCOUNTS, 4), reconcilable=()
            )
            for delivery in batch:
                claimed.append(delivery.id)
                attempt = store.start_attempt(delivery, now=now)
                if attempt is None:
                    errors.put(f"{worker}: lease lost on delivery {delivery.id}")
                    continue
                store.finish_attempt(attempt.id, Outcome.PUBLISHED, now=now, http_status=200)
                if not store.settle(
                    delivery, DeliveryState.PUBLISHED, now=now, remote_id=f"{worker}-{delivery.id}"
                ):
                    errors.put(f"{worker}: could not settle delivery {delivery.id}")
            if not batch:
                if finished:
                    break
                time.sleep(0.005)  # an idle daemon's poll, not a synchronisation
    except Exception as exc:  # shown in the test's assertion, not only on stderr
        errors.put(f"{worker}: {exc!r}")
        raise
    finally:
        results.put((worker, claimed))
        store.close()


def test_concurrent_editors_and_daemons_lose_nothing_and_publish_nothing_twice(
    store: SqlStore,
) -> None:
    """Two editors enqueue while three daemons claim and settle, all as processes on one
    database: every delivery is published by exactly one daemon with exactly one attempt."""
    ctx = multiprocessing.get_context("spawn")
    errors, results, done = ctx.Queue(), ctx.Queue(), ctx.Event()
    workers = ("daemon-a", "daemon-b", "daemon-c")
    daemons = [
        ctx.Process(target=_publish_until_done, args=(store.url, w, done, results, errors))
        for w in workers
    ]
    editors = [ctx.Process(target=_enqueue_posts, args=(store.url, e, errors)) for e in (1, 2)]
    for process in [*daemons, *editors]:
        process.start()
    for process in editors:
        process.join(timeout=120)
    done.set()
    claimed_by = dict(results.get(timeout=120) for _ in daemons)
    for process in daemons:
        process.join(timeout=30)
    problems = []
    while not errors.empty():
        problems.append(errors.get())
    assert problems == []
    assert [p.exitcode for p in [*editors, *daemons]] == [0] * 5

    posts = store.list_posts(limit=10_000)
    assert len(posts) == 2 * POSTS_PER_EDITOR
    deliveries = [d for _, ds in posts for d in ds]
    assert len(deliveries) == 2 * POSTS_PER_EDITOR * len(ACCOUNTS)
    assert {d.state for d in deliveries} == {DeliveryState.PUBLISHED}
    all_claims = [i for w in workers for i in claimed_by[w]]
    assert sorted(all_claims) == sorted(d.id for d in deliveries)
    attempts_per_delivery = Counter(a.delivery_id for a in store.attempts(limit=10_000))
    assert set(attempts_per_delivery.values()) == {1}
    worker_of = {i: w for w, ids in claimed_by.items() for i in ids}
    assert all(d.remote_id == f"{worker_of[d.id]}-{d.id}" for d in deliveries)
