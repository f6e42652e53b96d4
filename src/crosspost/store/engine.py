"""Engines for the two databases crosspost runs on, with its connection settings.

SQLite runs in WAL mode with a busy timeout, and every write transaction starts
with ``BEGIN IMMEDIATE``, so the CLI and the daemon wait for each other instead
of failing with "database is locked" half-way through a transaction.

PostgreSQL goes through psycopg 3. A daemon uses at most :data:`PG_POOL_SIZE`
pooled connections (one per database thread, see ``docs/scaling.md``) plus
the one it LISTENs on (:mod:`crosspost.store.listen`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from crosspost.store.peek import sqlite_file

SQLITE_BUSY_TIMEOUT_S = 30.0
#: pooled connections per process on PostgreSQL (the daemon runs 4 database threads)
PG_POOL_SIZE = 5
#: how PostgreSQL shows crosspost's connections (``pg_stat_activity.application_name``)
APPLICATION_NAME = "crosspost"
#: the LISTEN/NOTIFY channel (per database, so instances in other databases stay apart)
CHANNEL = "crosspost_queue"


def database_url(url: str) -> URL:
    """The SQLAlchemy URL; a plain ``postgresql://`` URL means psycopg 3, the driver we ship."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str, *, create: bool = False) -> Engine:
    """An engine with crosspost's connection settings for the given URL.

    Only ``create=True`` (``db upgrade``) may create a missing SQLite file, so a
    command refused for bad input leaves the disk as it was.
    """
    if url.startswith("sqlite"):
        if create:
            _ensure_sqlite_folder(url)
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(
        database_url(url),
        pool_pre_ping=True,
        pool_size=PG_POOL_SIZE,
        max_overflow=0,
        connect_args={"application_name": APPLICATION_NAME},
    )


def libpq_conninfo(engine: Engine) -> str:
    """The engine's PostgreSQL URL as libpq reads it (for a connection outside the pool)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def sqlite_path(url: str) -> Path | None:
    """The file behind a ``sqlite:///`` URL, if any."""
    return sqlite_file(url)


def _ensure_sqlite_folder(url: str) -> None:
    """Create the database file 0660 so the editors' group can write the queue.

    SQLite would create it 0644 minus the umask; its -wal and -shm files copy
    the database file's mode, so getting this one right is enough.
    """
    path = sqlite_path(url)
    if path is None:
        return
    if not path.parent.exists():
        path.parent.mkdir(mode=0o770, parents=True, exist_ok=True)
        os.chmod(path.parent, 0o770)  # noqa: S103 - the editors group writes -wal/-shm; umask masks mkdir
    if not path.exists():
        try:
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o660)
        except OSError:
            return  # SQLite will report the problem with the database's own words
        try:
            os.fchmod(fd, 0o660)
        finally:
            os.close(fd)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN, not the driver.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("crosspost_readonly"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
