"""Issue 2: the SQLite settings that keep the CLI and the daemon from failing with
"database is locked": a busy timeout on every connection, and every write transaction
started with ``BEGIN IMMEDIATE`` (it takes the write lock at its start, so two writers
queue up instead of one failing at its first write)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from crosspost.store.engine import SQLITE_BUSY_TIMEOUT_S
from crosspost.store.migrate import upgrade
from crosspost.store.sql import SqlStore


@pytest.fixture
def store(tmp_path: Path) -> SqlStore:
    sql = SqlStore(f"sqlite:///{tmp_path / 'crosspost.db'}", create=True)
    upgrade(sql.engine)
    return sql


def test_every_connection_waits_for_a_busy_database(store: SqlStore) -> None:
    try:
        with store.engine.connect() as conn:
            timeout = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
    finally:
        store.close()
    assert SQLITE_BUSY_TIMEOUT_S >= 5
    assert timeout == int(SQLITE_BUSY_TIMEOUT_S * 1000)


def test_a_write_transaction_takes_the_write_lock_at_begin(store: SqlStore, tmp_path: Path) -> None:
    """While the store's transaction has only *read*, another writer is already locked
    out (a deferred BEGIN would let it in); a read-only transaction locks nobody out."""
    other = sqlite3.connect(tmp_path / "crosspost.db", timeout=0, isolation_level=None)
    try:
        with store.engine.begin() as conn:
            conn.execute(text("SELECT count(*) FROM posts")).scalar()
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again after the commit
        other.execute("ROLLBACK")
        readonly = store.engine.connect().execution_options(crosspost_readonly=True)
        with readonly, readonly.begin():
            readonly.execute(text("SELECT count(*) FROM posts")).scalar()
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
    finally:
        other.close()
        store.close()
