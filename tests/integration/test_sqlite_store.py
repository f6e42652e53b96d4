"""What only the SQLite store promises: schema checks, file mode, WAL, concurrency, plans.

The behaviour every backend shares is in ``tests/contract/test_store.py``.
"""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import stat
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event, text

from crosspost.exceptions import SchemaOutdated
from crosspost.models import DeliveryState, Outcome, Post, Rendered
from crosspost.store.migrate import head_revision, upgrade
from crosspost.store.schema import SCHEMA_REVISION, metadata
from crosspost.store.sql import SqlStore

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
LINK = "https://www.zv-staedtedreieck.de/aktuelles/stellenangebot"
ACCOUNTS = ("mastodon", "bluesky")
POSTS_PER_EDITOR = 200


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"


def make_post(title: str) -> Post:
    return Post(
        title=title,
        body="Wir suchen eine Fachkraft für den Wertstoffhof.",
        link=LINK,
        category="stellenangebot",
        publish_at=None,
        accounts=(),
    )


def rendered() -> list[Rendered]:
    return [
        Rendered(account=a, platform=a, text=f"{a}\n\n{LINK}", length=60, limit=300, unit="c")
        for a in ACCOUNTS
    ]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "queue" / "crosspost.db"


@pytest.fixture
def migrated(db_path: Path) -> Any:
    store = SqlStore(url_of(db_path), create=True)
    upgrade(store.engine)
    yield store
    store.close()


# -- schema ----------------------------------------------------------------------------------


def test_schema_revision_is_the_migrations_head() -> None:
    """The revision the code expects is the newest migration."""
    assert head_revision() == SCHEMA_REVISION


def test_migrations_create_exactly_the_declared_tables(migrated: SqlStore) -> None:
    """``db upgrade`` yields the schema of ``crosspost.store.schema``, nothing more or less."""
    with migrated.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_check_schema_on_a_missing_file_does_not_create_it(db_path: Path) -> None:
    """No database file: SchemaOutdated (exit 2) naming ``db upgrade``; the disk stays as it was."""
    store = SqlStore(url_of(db_path))
    try:
        with pytest.raises(SchemaOutdated, match="db upgrade") as caught:
            store.check_schema()
    finally:
        store.close()
    assert caught.value.exit_code == 2
    assert not db_path.exists()
    assert not db_path.parent.exists()


def test_check_schema_on_an_empty_database(db_path: Path) -> None:
    """A database without crosspost's tables: SchemaOutdated."""
    db_path.parent.mkdir()
    sqlite3.connect(db_path).close()
    store = SqlStore(url_of(db_path))
    try:
        with pytest.raises(SchemaOutdated, match="db upgrade") as caught:
            store.check_schema()
    finally:
        store.close()
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("revision", "run_db_upgrade"), [("0000", True), ("9999", False)], ids=["older", "newer"]
)
def test_check_schema_on_another_revision(
    migrated: SqlStore, revision: str, run_db_upgrade: bool
) -> None:
    """Another schema revision: SchemaOutdated naming both; ``db upgrade`` only for an older one."""
    with migrated.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": revision})
    with pytest.raises(SchemaOutdated) as caught:
        migrated.check_schema()
    assert caught.value.exit_code == 2
    assert revision in caught.value.message
    assert SCHEMA_REVISION in caught.value.message
    assert ("db upgrade" in caught.value.message) is run_db_upgrade


def test_check_schema_passes_after_upgrade(migrated: SqlStore) -> None:
    """A freshly upgraded database is accepted."""
    migrated.check_schema()


def test_upgrade_is_idempotent(migrated: SqlStore) -> None:
    """Running ``db upgrade`` again on a current database changes nothing."""
    upgrade(migrated.engine)
    migrated.check_schema()


# -- the file ---------------------------------------------------------------------------------


def test_database_file_is_created_group_writable(migrated: SqlStore, db_path: Path) -> None:
    """``create=True`` makes the file 0660 whatever the umask, so editors can enqueue."""
    assert stat.S_IMODE(os.stat(db_path).st_mode) == 0o660


def test_database_runs_in_wal_mode(migrated: SqlStore, db_path: Path) -> None:
    """The store's connections, and the file itself, use the WAL journal."""
    with migrated.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    raw = sqlite3.connect(db_path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()


# -- query plans ----------------------------------------------------------------------------------


def _claim_statements(store: SqlStore, reconcilable: tuple[str, ...]) -> list[tuple[str, Any]]:
    """The statements reading ``deliveries`` that one claim_due runs, with their parameters
    (the claim is one UPDATE whose per-account searches are SELECTs inside it)."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "UPDATE")) and (
            "FROM deliveries" in statement
        ):
            seen.append((statement, params))

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        store.claim_due(
            "worker-a",
            now=NOW,
            lease=timedelta(seconds=60),
            capacity={"mastodon": 2, "bluesky": 1},
            reconcilable=reconcilable,
        )
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    return seen


@pytest.mark.parametrize("reconcilable", [(), ("mastodon",)], ids=["plain", "reconcilable"])
def test_claim_reads_the_due_index(migrated: SqlStore, reconcilable: tuple[str, ...]) -> None:
    """The claim walks ix_deliveries_account_due in claim order: no table scan, no sort."""
    for i in range(20):
        migrated.enqueue(
            make_post(f"Post {i}"),
            rendered(),
            due_at=NOW + timedelta(minutes=i - 10),
            created_by="editor",
            now=NOW,
        )
    statements = _claim_statements(migrated, reconcilable)
    assert statements, "claim_due read nothing from deliveries"
    with migrated.engine.connect().execution_options(crosspost_readonly=True) as conn:
        for statement, params in statements:
            plan = [
                row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params)
            ]
            details = " | ".join(plan)
            assert "ix_deliveries_account_due" in details, details
            assert not any(step.startswith("SCAN deliveries") for step in plan), details
            assert "TEMP B-TREE" not in details, details


# -- concurrency ----------------------------------------------------------------------------------


def _enqueue_posts(url: str, editor: int, count: int, errors: Any) -> None:
    """An editor's CLI: enqueue ``count`` posts through its own store."""
    store = SqlStore(url)
    try:
        for i in range(count):
            store.enqueue(
                make_post(f"editor {editor} post {i}"),
                rendered(),
                due_at=NOW,
                created_by=f"editor{editor}",
                now=NOW,
            )
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
            # Read before claiming, so an empty claim after it really means "all done".
            finished = done.is_set()
            batch = store.claim_due(
                worker,
                now=NOW,
                lease=timedelta(hours=1),
                capacity=dict.fromkeys(ACCOUNTS, 4),
                reconcilable=(),
            )
            for delivery in batch:
                claimed.append(delivery.id)
                attempt = store.start_attempt(delivery, now=NOW)
                if attempt is None:
                    errors.put(f"{worker}: lease lost on delivery {delivery.id}")
                    continue
                store.finish_attempt(attempt.id, Outcome.PUBLISHED, now=NOW, http_status=200)
                if not store.settle(
                    delivery, DeliveryState.PUBLISHED, now=NOW, remote_id=f"{worker}-{delivery.id}"
                ):
                    errors.put(f"{worker}: could not settle delivery {delivery.id}")
            if not batch:
                if finished:
                    break
                time.sleep(0.002)
    except Exception as exc:  # shown in the test's assertion, not only on stderr
        errors.put(f"{worker}: {exc!r}")
        raise
    finally:
        results.put((worker, claimed))
        store.close()


def test_concurrent_editors_and_daemons_lose_nothing_and_publish_nothing_twice(
    migrated: SqlStore, db_path: Path
) -> None:
    """Two editors enqueue 200 posts each while two daemons claim and settle, all as processes.

    No "database is locked", every post arrives, every delivery is published by
    exactly one worker with exactly one attempt.
    """
    url = url_of(db_path)
    ctx = multiprocessing.get_context("spawn")
    errors = ctx.Queue()
    results = ctx.Queue()
    done = ctx.Event()
    daemons = [
        ctx.Process(target=_publish_until_done, args=(url, w, done, results, errors))
        for w in ("daemon-a", "daemon-b")
    ]
    editors = [
        ctx.Process(target=_enqueue_posts, args=(url, e, POSTS_PER_EDITOR, errors)) for e in (1, 2)
    ]
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
    assert [p.exitcode for p in [*editors, *daemons]] == [0, 0, 0, 0]

    posts = migrated.list_posts(limit=10_000)
    expected_titles = {f"editor {e} post {i}" for e in (1, 2) for i in range(POSTS_PER_EDITOR)}
    assert {p.title for p, _ in posts} == expected_titles
    assert len(posts) == 2 * POSTS_PER_EDITOR
    deliveries = [d for _, ds in posts for d in ds]
    assert len(deliveries) == 2 * POSTS_PER_EDITOR * len(ACCOUNTS)
    assert {d.state for d in deliveries} == {DeliveryState.PUBLISHED}
    all_claims = claimed_by["daemon-a"] + claimed_by["daemon-b"]
    assert sorted(all_claims) == sorted(d.id for d in deliveries)
    attempts_per_delivery = Counter(a.delivery_id for a in migrated.attempts(limit=10_000))
    assert set(attempts_per_delivery.values()) == {1}
    assert set(attempts_per_delivery) == {d.id for d in deliveries}
    worker_of = {i: w for w, ids in claimed_by.items() for i in ids}
    assert all(d.remote_id == f"{worker_of[d.id]}-{d.id}" for d in deliveries)
