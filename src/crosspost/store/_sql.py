"""Plumbing the SQL stores share: transactions that turn driver errors into
:class:`StoreError`, a post's content columns, and the dialect's ``INSERT``
(for ``ON CONFLICT``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from crosspost.exceptions import StoreError
from crosspost.i18n import _
from crosspost.models import Post


def describe(engine: Engine, exc: SQLAlchemyError) -> str:
    """The error's first line, naming the database (without its password)."""
    reason = str(getattr(exc, "orig", exc)).splitlines()[0]
    url = engine.url.render_as_string(hide_password=True)
    return _("database {url}: {reason}").format(url=url, reason=reason)


@contextmanager
def write_transaction(
    engine: Engine,
    describe: Callable[[DBAPIError], str],
    *,
    passing: tuple[type[DBAPIError], ...] = (),
) -> Iterator[Connection]:
    """A write transaction; a driver error (but those ``passing``) as a StoreError."""
    try:
        with engine.begin() as conn:
            yield conn
    except passing:
        raise
    except DBAPIError as exc:
        raise StoreError(describe(exc)) from exc


@contextmanager
def one_statement(engine: Engine, describe: Callable[[DBAPIError], str]) -> Iterator[Connection]:
    """A connection for a write that is a single statement (PostgreSQL): it runs in
    autocommit, so the statement is its own transaction -- committed (durably) when
    it returns, without the round trips of ``BEGIN`` and ``COMMIT``. A driver error
    as a StoreError; a failed statement leaves nothing behind."""
    try:
        with engine.connect() as raw:
            yield raw.execution_options(isolation_level="AUTOCOMMIT")
    except DBAPIError as exc:
        raise StoreError(describe(exc)) from exc


@contextmanager
def read_transaction(engine: Engine, describe: Callable[[DBAPIError], str]) -> Iterator[Connection]:
    """A read-only transaction; a driver error as a StoreError."""
    try:
        with engine.connect() as raw:
            conn = raw.execution_options(crosspost_readonly=True)
            with conn.begin():
                yield conn
    except DBAPIError as exc:
        raise StoreError(describe(exc)) from exc


def media_json(post: Post) -> list[dict[str, str]]:
    return [{"path": str(m.path), "alt": m.alt, "mime": m.mime} for m in post.media]


def post_columns(post: Post) -> dict[str, Any]:
    """The ``posts`` columns that hold the post's content."""
    return {
        "title": post.title,
        "body": post.body,
        "link": post.link,
        "category": post.category,
        "publish_at": post.publish_at,
        "ambiguous_time": post.ambiguous_time,
        "media": media_json(post),
        "variants": dict(post.variants),
    }


def dialect_insert(is_sqlite: bool, table: Any) -> Any:
    """The dialect's ``INSERT`` of ``table``, which has ``on_conflict_do_…``."""
    return sqlite_insert(table) if is_sqlite else pg_insert(table)


__all__ = [
    "describe",
    "dialect_insert",
    "media_json",
    "one_statement",
    "post_columns",
    "read_transaction",
    "write_transaction",
]
