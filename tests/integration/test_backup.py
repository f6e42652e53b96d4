"""``db backup`` / ``db restore`` (crosspost.store.backup) and retention (``db prune``) on real
databases: SQLite through the online backup API while writers go on, PostgreSQL
through pg_dump/pg_restore; restore refuses newer schemas, foreign files and running
daemons, and migrates older ones."""

from __future__ import annotations

import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from tests.contract.test_store import NOW, claim, enqueue, make_post, only, rendered

from crosspost.exceptions import InputError
from crosspost.models import DeliveryState
from crosspost.store.backup import BackupError, backup, restore, sqlite_revision
from crosspost.store.base import DaemonInfo
from crosspost.store.migrate import alembic_config
from crosspost.store.operations import OperationsStore
from crosspost.store.schema import SCHEMA_REVISION
from crosspost.store.sql import SqlStore

STALE = timedelta(minutes=2)


def post_titles(store: SqlStore) -> list[str]:
    return sorted(p.title for p, _ds in store.list_posts(limit=100_000))


def test_sqlite_backup_is_consistent_while_writers_go_on(tmp_path: Path) -> None:
    """A backup taken while another connection enqueues posts (each post with its
    two deliveries in one transaction) holds only whole posts, passes SQLite's check,
    and is one self-contained file (not in WAL mode)."""
    url = f"sqlite:///{tmp_path / 'crosspost.db'}"
    store = SqlStore(url, create=True)
    from crosspost.store.migrate import upgrade

    upgrade(store.engine)
    for i in range(50):
        enqueue(store, "mastodon", "bluesky", title=f"vorher {i}")
    writer_store = SqlStore(url)
    stop = threading.Event()
    written = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            writer_store.enqueue(
                make_post(f"während {i}"),
                rendered("mastodon", "bluesky"),
                due_at=NOW,
                created_by="editor",
                now=NOW,
            )
            i += 1
            written.set()

    thread = threading.Thread(target=write)
    thread.start()
    try:
        assert written.wait(30)
        result = backup(store, tmp_path / "backup.db")
    finally:
        stop.set()
        thread.join()
        writer_store.close()
    assert result.revision == SCHEMA_REVISION
    assert result.size == (tmp_path / "backup.db").stat().st_size
    conn = sqlite3.connect(tmp_path / "backup.db")
    try:
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        per_post = conn.execute(
            "SELECT p.id, count(d.id) FROM posts p LEFT JOIN deliveries d ON d.post_id = p.id "
            "GROUP BY p.id"
        ).fetchall()
    finally:
        conn.close()
    assert len(per_post) >= 50
    assert {n for _id, n in per_post} == {2}
    assert oct((tmp_path / "backup.db").stat().st_mode & 0o777) == "0o600"
    assert not list(tmp_path.glob(".backup.db.partial"))
    store.close()


def test_backup_refuses_to_overwrite(sql_store: SqlStore, tmp_path: Path) -> None:
    target = tmp_path / "exists.db"
    target.write_text("keep me")
    with pytest.raises(InputError, match="the file exists; choose another name or add --force"):
        backup(sql_store, target)
    assert target.read_text() == "keep me"


def test_backup_and_restore_round_trip(sql_store: SqlStore, tmp_path: Path) -> None:
    """What was in the backup comes back; what was added after it is gone from the
    database (on SQLite it stays in the saved copy of the previous database)."""
    enqueue(sql_store, "mastodon", title="im Backup")
    target = tmp_path / "crosspost.backup"
    backup(sql_store, target)
    enqueue(sql_store, "mastodon", title="danach")
    result = restore(sql_store, target, now=NOW, stale_after=STALE)
    assert result.revision == SCHEMA_REVISION
    assert not result.migrated
    assert post_titles(sql_store) == ["im Backup"]
    # the queue works after the restore
    enqueue(sql_store, "mastodon", title="neu")
    assert post_titles(sql_store) == ["im Backup", "neu"]
    if sql_store.is_sqlite:
        assert result.saved is not None
        saved = SqlStore(f"sqlite:///{result.saved}")
        try:
            assert post_titles(saved) == ["danach", "im Backup"]
        finally:
            saved.close()


def test_restore_refuses_while_a_daemon_runs(sql_store: SqlStore, tmp_path: Path) -> None:
    """A recent heartbeat or a live lease: nothing is restored, the message says to
    stop the daemons."""
    enqueue(sql_store, "mastodon", title="bleibt")
    target = tmp_path / "b"
    backup(sql_store, target)
    enqueue(sql_store, "mastodon", title="auch")
    sql_store.heartbeat(
        DaemonInfo("h:7:a", "h", 7, "1", NOW, NOW - timedelta(seconds=30), in_hand=0)
    )
    with pytest.raises(BackupError, match=r"a daemon is running \(h pid 7; 0 deliveries"):
        restore(sql_store, target, now=NOW, stale_after=STALE)
    sql_store.remove_daemon("h:7:a")
    assert len(claim(sql_store)) == 2  # leases until NOW + 60 s, no heartbeat
    with pytest.raises(BackupError, match="2 deliveries leased"):
        restore(sql_store, target, now=NOW, stale_after=STALE)
    assert post_titles(sql_store) == ["auch", "bleibt"]


def test_sqlite_restore_refuses_newer_schemas_and_foreign_files(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    store = SqlStore(url, create=True)
    from crosspost.store.migrate import upgrade

    upgrade(store.engine)
    enqueue(store, "mastodon", title="live")
    newer = tmp_path / "newer.db"
    backup(store, newer)
    conn = sqlite3.connect(newer)
    conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.commit()
    conn.close()
    with pytest.raises(InputError, match="schema 9999, newer than this crosspost"):
        restore(store, newer, now=NOW, stale_after=STALE)
    foreign = tmp_path / "notes.txt"
    foreign.write_text("not a database at all\n" * 100)
    with pytest.raises(InputError, match="not a crosspost backup"):
        restore(store, foreign, now=NOW, stale_after=STALE)
    with pytest.raises(InputError, match="no such file"):
        restore(store, tmp_path / "missing.db", now=NOW, stale_after=STALE)
    assert post_titles(store) == ["live"]
    assert sorted(p.name for p in tmp_path.iterdir() if "before-restore" in p.name) == []
    store.close()


def test_sqlite_restore_of_an_older_schema_migrates_it(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    old_store = SqlStore(f"sqlite:///{old}", create=True)
    config = alembic_config()
    with old_store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
    old_store.close()
    assert sqlite_revision(old) == "0002"
    live = SqlStore(f"sqlite:///{tmp_path / 'live.db'}", create=True)
    try:
        result = restore(live, old, now=NOW, stale_after=STALE)
        assert result.migrated
        live.check_schema()  # at SCHEMA_REVISION now
        enqueue(live, "mastodon", title="geht")
        assert post_titles(live) == ["geht"]
    finally:
        live.close()


def test_pg_restore_refuses_a_newer_schema(pg_url: str, tmp_path: Path) -> None:
    store = SqlStore(pg_url, db_clock=False)
    try:
        enqueue(store, "mastodon", title="live")
        with store.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
        target = tmp_path / "newer.dump"
        from crosspost.store.backup import _pg_dump

        _pg_dump(store, target)
        with store.engine.begin() as conn:
            conn.exec_driver_sql(
                "UPDATE alembic_version SET version_num = %(v)s", {"v": SCHEMA_REVISION}
            )
        with pytest.raises(InputError, match="schema 9999, newer than this crosspost"):
            restore(store, target, now=NOW, stale_after=STALE)
        assert post_titles(store) == ["live"]
    finally:
        store.close()


def test_prune_deletes_old_attempts_of_settled_deliveries_only(sql_store: SqlStore) -> None:
    """Retention keeps every attempt of a delivery still waiting (an uncertain one's
    attempts decide how it is reconciled) and everything younger than the cutoff."""
    settled_post = enqueue(sql_store, "mastodon", title="alt")
    d = only(claim(sql_store))
    assert sql_store.start_attempt(d, now=NOW) is not None
    assert sql_store.settle(d, DeliveryState.PUBLISHED, now=NOW, remote_id="1")
    waiting_post = enqueue(sql_store, "website", title="wartet")
    w = only(claim(sql_store))
    assert sql_store.start_attempt(w, now=NOW) is not None
    assert sql_store.settle(w, DeliveryState.RETRYING, now=NOW, due_at=NOW)
    ops = OperationsStore(sql_store)
    later = NOW + timedelta(days=400)
    counted = ops.prune(later - timedelta(days=365), dry_run=True)
    assert counted.attempts == 1
    assert len(sql_store.attempts(post_id=settled_post)) == 1  # dry run deletes nothing
    pruned = ops.prune(later - timedelta(days=365))
    assert pruned.attempts == 1
    assert sql_store.attempts(post_id=settled_post) == []
    assert len(sql_store.attempts(post_id=waiting_post)) == 1
    assert ops.prune(NOW - timedelta(days=1)).attempts == 0
