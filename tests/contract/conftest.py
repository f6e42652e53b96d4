"""The ``store`` fixture: every contract test runs once against every Store backend.

A backend is a name in :data:`BACKENDS` and a factory: a context manager that
gets the test's ``request``, yields a fresh, empty, migrated store and cleans up
after it. Factories reach other fixtures (``tmp_path``, a session-wide server)
through ``request.getfixturevalue``.

PostgreSQL: a database of the test's own, copied from a migrated template
(``pg_url`` in :mod:`tests.pgfixture`, which skips when no server is to be had).
The contract drives time by hand, so this store compares times with the
``now`` it is given (``db_clock=False``); that the daemon's PostgreSQL store
uses the database's clock instead is tested in
``tests/integration/test_postgresql_store.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from crosspost.store.base import Store
from crosspost.store.memory import MemoryStore
from crosspost.store.migrate import upgrade
from crosspost.store.sql import SqlStore

StoreFactory = Callable[[pytest.FixtureRequest], AbstractContextManager[Store]]


@contextmanager
def memory_store(request: pytest.FixtureRequest) -> Iterator[Store]:
    yield MemoryStore()


@contextmanager
def sqlite_store(request: pytest.FixtureRequest) -> Iterator[Store]:
    tmp_path: Path = request.getfixturevalue("tmp_path")
    store = SqlStore(f"sqlite:///{tmp_path / 'crosspost.db'}", create=True)
    try:
        upgrade(store.engine)
        store.check_schema()
        yield store
    finally:
        store.close()


@contextmanager
def postgresql_store(request: pytest.FixtureRequest) -> Iterator[Store]:
    url: str = request.getfixturevalue("pg_url")
    store = SqlStore(url, db_clock=False)
    try:
        store.check_schema()
        yield store
    finally:
        store.close()


#: every backend the contract suite runs against, by test id
BACKENDS: dict[str, StoreFactory] = {
    "memory": memory_store,
    "sqlite": sqlite_store,
    "postgresql": postgresql_store,
}


@pytest.fixture(params=list(BACKENDS))
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """A fresh, empty store of each backend in turn."""
    with BACKENDS[request.param](request) as fresh:
        yield fresh
