"""The ``store`` fixture: every contract test runs once against every Store backend.

A backend is a name in :data:`BACKENDS` and a factory: a context manager that
gets the test's ``request``, yields a fresh, empty, migrated store and cleans up
after it. Factories reach other fixtures (``tmp_path``, a session-wide server)
through ``request.getfixturevalue``.

Adding PostgreSQL: a factory that reads ``CROSSPOST_TEST_PG_URL`` (calling
``pytest.skip`` when it is unset), migrates a template database once per
session (``crosspost.store.migrate.upgrade``), then per test runs
``CREATE DATABASE test_<n> TEMPLATE crosspost_template``, yields
``SqlStore(url_of_that_database)`` and drops the database afterwards.
Register it in :data:`BACKENDS`; no test changes.
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


#: every backend the contract suite runs against, by test id
BACKENDS: dict[str, StoreFactory] = {
    "memory": memory_store,
    "sqlite": sqlite_store,
}


@pytest.fixture(params=list(BACKENDS))
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """A fresh, empty store of each backend in turn."""
    with BACKENDS[request.param](request) as fresh:
        yield fresh
