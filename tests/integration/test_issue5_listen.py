"""Issue 5: the daemon's wake-ups listen on a connection of their own, in autocommit.

``LISTEN`` inside an open transaction would hear nothing until that transaction ends
and would hold a transaction open for the daemon's whole life (no vacuum past it);
on a pooled connection it would be lost when the connection goes back to the pool.
So the listener is a separate backend (``application_name`` ``crosspost listen``),
idle outside any transaction, besides the store's pool, and a notification committed
by another connection reaches it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from crosspost.models import Post, Rendered
from crosspost.store.sql import SqlStore

LINK = "https://www.zv-staedtedreieck.de/aktuelles/sofort"


@pytest.fixture
def store(pg_url: str) -> Iterator[SqlStore]:
    fresh = SqlStore(pg_url)
    yield fresh
    fresh.close()


def _backends(store: SqlStore) -> list[tuple[str, str, str, str | None]]:
    """This database's crosspost backends: application name, state, query, transaction start."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT application_name, state, query, xact_start::text FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name LIKE 'crosspost%' "
                "AND pid <> pg_backend_pid()"
            )
        ).all()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def test_the_listener_is_a_dedicated_autocommit_connection_that_hears_an_enqueue(
    store: SqlStore,
) -> None:
    feed = store.change_feed()
    assert feed is not None
    editor = SqlStore(store.url)

    async def scenario() -> tuple[list[tuple[str, str, str, str | None]], int]:
        heard = asyncio.Event()
        calls = 0

        def on_change() -> None:
            nonlocal calls
            calls += 1
            heard.set()

        listening = asyncio.create_task(feed.listen(on_change))
        try:
            await asyncio.wait_for(heard.wait(), timeout=10)  # once at the start
            heard.clear()
            backends = await asyncio.to_thread(_backends, store)
            now = datetime.now(UTC)
            post = Post(title="Sofort", body="Sofort.", link=LINK, category=None,
                        publish_at=None, accounts=())  # fmt: skip
            rendered = [Rendered(account="mastodon", platform="mastodon", text=f"Sofort.\n\n{LINK}",
                                 length=30, limit=500, unit="c")]  # fmt: skip
            await asyncio.to_thread(
                editor.enqueue, post, rendered, due_at=now, created_by="editor", now=now
            )
            await asyncio.wait_for(heard.wait(), timeout=10)  # NOTIFY at the enqueue's commit
            return backends, calls
        finally:
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)
            editor.close()

    backends, calls = asyncio.run(scenario())
    listeners = [b for b in backends if b[0] == "crosspost listen"]
    assert len(listeners) == 1, backends
    [(_name, state, query, xact_start)] = listeners
    assert query.strip().upper().startswith("LISTEN")
    assert state == "idle", f"the listener is {state!r}, not idle outside a transaction"
    assert xact_start is None
    assert calls == 2
