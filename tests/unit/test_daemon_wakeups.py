"""How the daemon learns that the queue changed where the store can push it (LISTEN).

The real thing against PostgreSQL is in ``tests/integration/test_postgresql_store.py``
and the acceptance tests; here a scripted feed stands in for the connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from crosspost import daemon as daemon_module
from crosspost.daemon import Daemon
from crosspost.exceptions import StoreError
from crosspost.store.base import ChangeFeed
from crosspost.store.memory import MemoryStore


class ScriptedFeed:
    """Fails like a refused connection ``failures`` times, then reports one change and waits."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def listen(self, on_change: Callable[[], None]) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise StoreError("listening on database postgresql://db/crosspost: connection refused")
        on_change()
        await asyncio.Event().wait()  # listening until cancelled


class FeedStore(MemoryStore):
    def __init__(self, feed: ChangeFeed) -> None:
        super().__init__()
        self.feed = feed

    def change_feed(self) -> ChangeFeed | None:
        return self.feed


def test_a_lost_listen_connection_is_retried_and_a_change_wakes_the_claim_loop(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LISTEN failing twice (database restarting) is tried again after growing pauses;
    once it listens, a change sets the claim loop's wake-up; stopping ends the listener."""
    monkeypatch.setattr(daemon_module, "LISTEN_RETRY_S", (0.01, 0.02))
    feed = ScriptedFeed(failures=2)
    daemon = Daemon(settings(), FeedStore(feed), adapters={}, handle_signals=False)

    async def scenario() -> None:
        listener = asyncio.create_task(daemon._listen(feed))
        await asyncio.wait_for(daemon._kick.wait(), timeout=10)
        assert feed.calls == 3
        daemon.stop()
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)

    asyncio.run(scenario())


@pytest.mark.parametrize(("pushes", "interval"), [(True, 7.0), (False, 0.2)], ids=["feed", "poll"])
def test_the_queue_is_polled_often_only_where_nothing_pushes_changes(
    settings: Any, pushes: bool, interval: float
) -> None:
    """With a feed the daemon listens and polls only every ``listen_fallback_interval``;
    without one (SQLite) it polls every ``poll_interval``."""
    base = settings()
    tuned = base.model_copy(
        update={
            "daemon": base.daemon.model_copy(
                update={"poll_interval": 0.2, "listen_fallback_interval": 7.0}
            )
        }
    )
    feed = ScriptedFeed(failures=0)
    store = FeedStore(feed) if pushes else MemoryStore()
    daemon = Daemon(tuned, store, adapters={}, handle_signals=False)

    async def scenario() -> tuple[float, bool]:
        running = asyncio.create_task(daemon.run())
        for _ in range(500):  # bounded: until the scheduler has its jobs
            if daemon._scheduler is not None and daemon._scheduler.get_job("watch"):
                break
            await asyncio.sleep(0.01)
        assert daemon._scheduler is not None
        watch = daemon._scheduler.get_job("watch")
        listening = daemon._listener is not None
        daemon.stop()
        assert await asyncio.wait_for(running, timeout=10) == 0
        return watch.trigger.interval.total_seconds(), listening

    seconds, listening = asyncio.run(scenario())
    assert seconds == interval
    assert listening is pushes
    assert feed.calls == (1 if pushes else 0)
