"""``sql_store``: a fresh, migrated SQL store of each backend (SQLite, PostgreSQL) in turn,
driven by the test's own clock (``db_clock=False``), for the operations tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crosspost.store.migrate import upgrade
from crosspost.store.sql import SqlStore


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    if request.param == "sqlite":
        store = SqlStore(f"sqlite:///{tmp_path / 'crosspost.db'}", create=True)
        upgrade(store.engine)
    else:
        store = SqlStore(request.getfixturevalue("pg_url"), db_clock=False)
    try:
        store.check_schema()
        yield store
    finally:
        store.close()
