"""The inbox's tables on real SQLite and real PostgreSQL: storing pages with their cursor,
never twice, one fetcher per account, responses, retention and the monthly response times.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select
from tests.rawsettings import settings_from

from crosspost.adapters.console import ConsoleAdapter
from crosspost.clock import FrozenClock
from crosspost.config import Settings
from crosspost.exceptions import NotFound, RateLimited
from crosspost.inbox import (
    Fetched,
    InteractionKind,
    InteractionPage,
    InteractionState,
    PostRef,
    purge,
    response_times,
    sync_account,
)
from crosspost.models import PublishResult
from crosspost.store.inbox import SqlInbox
from crosspost.store.memory_inbox import MemoryInbox
from crosspost.store.migrate import upgrade
from crosspost.store.schema import deliveries, inbox_responses, interactions, posts
from crosspost.store.sql import SqlStore

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    if request.param == "sqlite":
        sql = SqlStore(f"sqlite:///{tmp_path / 'crosspost.db'}", create=True)
        upgrade(sql.engine)
    else:
        sql = SqlStore(request.getfixturevalue("pg_url"), db_clock=False)
    try:
        yield sql
    finally:
        sql.close()


@pytest.fixture
def inbox(store: SqlStore) -> SqlInbox:
    return SqlInbox(store.engine)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def any_inbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """The inbox store of every backend in turn: the in-memory twin and both databases."""
    if request.param == "memory":
        yield MemoryInbox()
        return
    if request.param == "sqlite":
        sql = SqlStore(f"sqlite:///{tmp_path / 'crosspost.db'}", create=True)
        upgrade(sql.engine)
    else:
        sql = SqlStore(request.getfixturevalue("pg_url"), db_clock=False)
    try:
        yield SqlInbox(sql.engine)
    finally:
        sql.close()


def settings(**extra: Any) -> Settings:
    return settings_from(
        site={"url": "https://www.zv-staedtedreieck.de"},
        accounts={"mastodon": {"platform": "console"}},
        **extra,
    )


def published_delivery(store: SqlStore, remote_id: str, *, account: str = "mastodon") -> int:
    with store.engine.begin() as conn:
        post_id = conn.execute(
            insert(posts).values(
                title="Wertstoffhof", body="b", link="https://www.zv-staedtedreieck.de/x",
                created_at=T0, created_by="t", media=[], variants={},
            ).returning(posts.c.id)
        ).scalar_one()  # fmt: skip
        delivery_id = conn.execute(
            insert(deliveries).values(
                post_id=post_id, account=account, platform="mastodon", state="published",
                due_at=T0, text="t", idempotency_key=f"k-{remote_id}", updated_at=T0,
                published_at=T0, remote_id=remote_id, remote_url=f"https://m/{remote_id}",
            ).returning(deliveries.c.id)
        ).scalar_one()  # fmt: skip
    return int(delivery_id)


def item(remote_id: str, at: datetime, *, parent: str | None = None) -> Fetched:
    return Fetched(
        remote_id=remote_id,
        kind=InteractionKind.MENTION,
        handle="@buerger@example.social",
        text=f"Frage {remote_id}",
        url=f"https://example.social/@buerger/{remote_id}",
        created_at=at,
        parent_remote_id=parent,
        reply_ref={"visibility": "public"},
    )


def test_a_page_is_stored_once_with_its_cursor_and_linked_to_our_post(
    store: SqlStore, inbox: SqlInbox
) -> None:
    """add_page stores new interactions, skips known ones, keeps the cursor, and links an
    answer to the delivery whose remote id it names."""
    delivery = published_delivery(store, "111")
    assert inbox.claim_sync("mastodon", "w1", now=T0, lease=timedelta(minutes=1))
    page = InteractionPage([item("a", T0, parent="111"), item("b", T0)], "cursor-1")
    assert inbox.add_page("mastodon", "mastodon", page, worker="w1", now=T0) == 2
    assert inbox.add_page("mastodon", "mastodon", page, worker="w1", now=T0) == 0
    assert inbox.sync_state("mastodon")[0] == "cursor-1"
    listed = inbox.list_interactions()
    assert sorted(i.remote_id for i in listed) == ["a", "b"]
    linked = next(i for i in listed if i.remote_id == "a")
    assert linked.delivery_id == delivery
    assert linked.post_title == "Wertstoffhof"
    assert linked.reply_ref == {"visibility": "public"}
    assert linked.state is InteractionState.OPEN


def test_one_fetcher_per_account_and_a_rate_limit_blocks_until_the_reset(
    any_inbox: Any,
) -> None:
    """A second worker cannot take an account being fetched; after a rate limit nobody can
    until the reset; an expired lease is taken over."""
    inbox = any_inbox
    lease = timedelta(minutes=1)
    assert inbox.claim_sync("mastodon", "w1", now=T0, lease=lease)
    assert not inbox.claim_sync("mastodon", "w2", now=T0, lease=lease)
    assert inbox.claim_sync("mastodon", "w2", now=T0 + timedelta(minutes=2), lease=lease)
    until = T0 + timedelta(minutes=30)
    inbox.release_sync("mastodon", "w2", now=T0, blocked_until=until, error="429")
    assert not inbox.claim_sync("mastodon", "w1", now=T0 + timedelta(minutes=29), lease=lease)
    assert inbox.claim_sync("mastodon", "w1", now=until, lease=lease)


def test_a_fetcher_whose_lease_was_taken_over_cannot_move_the_cursor(any_inbox: Any) -> None:
    """What the late fetcher read is kept (once), but the cursor stays the new holder's."""
    inbox = any_inbox
    lease = timedelta(minutes=1)
    assert inbox.claim_sync("mastodon", "old", now=T0, lease=lease)
    later = T0 + timedelta(minutes=2)
    assert inbox.claim_sync("mastodon", "new", now=later, lease=lease)
    inbox.add_page(
        "mastodon", "mastodon", InteractionPage([item("x", T0)], "9"), worker="new", now=later,
        lease=lease,
    )  # fmt: skip
    late = InteractionPage([item("x", T0), item("y", T0)], "5")
    assert inbox.add_page("mastodon", "mastodon", late, worker="old", now=later) == 1
    assert inbox.sync_state("mastodon")[0] == "9"
    assert sorted(i.remote_id for i in inbox.list_interactions()) == ["x", "y"]


class PagedAdapter(ConsoleAdapter):
    """Pages from a script; raises RateLimited after ``fail_after`` pages."""

    fetches_interactions = True

    def __init__(self, pages: list[InteractionPage], fail_after: int | None, **kw: Any) -> None:
        super().__init__(**kw)
        self.pages = pages
        self.fail_after = fail_after
        self.cursors: list[str | None] = []

    async def interactions(
        self, cursor: str | None, posts: Sequence[PostRef], *, since: datetime
    ) -> AsyncIterator[InteractionPage]:
        self.cursors.append(cursor)
        start = 0 if cursor is None else int(cursor)
        for number, page in enumerate(self.pages[start:], start=start):
            if self.fail_after is not None and number >= self.fail_after:
                raise RateLimited("429", until=T0 + timedelta(minutes=15))
            yield page


def test_sync_resumes_after_a_rate_limit_where_it_stopped(any_inbox: Any) -> None:
    """Pages stored before the rate limit stay, with their cursor; the next fetch starts there
    and nothing is stored twice."""
    inbox = any_inbox
    config = settings()
    pages = [
        InteractionPage([item("a", T0)], "1"),
        InteractionPage([item("b", T0)], "2"),
        InteractionPage([item("c", T0)], "3"),
    ]
    adapter = PagedAdapter(
        pages, 2, name="mastodon", config=config.accounts["mastodon"], settings=config
    )
    clock = FrozenClock(T0)
    first = asyncio.run(sync_account(inbox, adapter, config, worker="w", clock=clock))
    assert (first.new, first.ok) == (2, True)
    assert first.note == "429"
    assert inbox.sync_state("mastodon")[0] == "2"
    adapter.fail_after = None
    blocked = asyncio.run(sync_account(inbox, adapter, config, worker="w", clock=clock))
    assert blocked.new == 0  # the account waits for the reset
    clock.advance(timedelta(minutes=16))
    second = asyncio.run(sync_account(inbox, adapter, config, worker="w", clock=clock))
    assert second.new == 1
    assert adapter.cursors == [None, "2"]
    assert sorted(i.remote_id for i in inbox.list_interactions()) == ["a", "b", "c"]


def test_retention_deletes_exactly_what_is_due(store: SqlStore, inbox: SqlInbox) -> None:
    """Done 90 days and one second ago: deleted; done 89 days ago and open ones: kept; the
    anonymous response times stay."""
    page = InteractionPage([item(n, T0) for n in ("old", "young", "open", "edge")], None)
    inbox.claim_sync("mastodon", "w", now=T0, lease=timedelta(minutes=1))
    inbox.add_page("mastodon", "mastodon", page, worker="w", now=T0)
    ids = {i.remote_id: i.id for i in inbox.list_interactions()}
    now = T0 + timedelta(days=200)
    inbox.mark_done(ids["old"], now=now - timedelta(days=90, seconds=1))
    inbox.mark_done(ids["edge"], now=now - timedelta(days=90))
    inbox.mark_done(ids["young"], now=now - timedelta(days=89))
    config = settings(privacy={"retention_days": 90})
    assert inbox.due_for_purge(before=now - timedelta(days=90)) == 2
    assert purge(inbox, config, clock=FrozenClock(now)) == 2
    assert sorted(i.remote_id for i in inbox.list_interactions()) == ["open", "young"]
    with pytest.raises(NotFound):
        inbox.get(ids["old"])
    with store.engine.connect() as conn:
        kept = conn.execute(select(inbox_responses.c.how)).scalars().all()
        texts = conn.execute(select(interactions.c.text)).scalars().all()
    assert sorted(kept) == ["done", "done", "done"]
    assert "Frage old" not in texts
    assert purge(inbox, config, clock=FrozenClock(now)) == 0


def test_the_first_response_counts_once(any_inbox: Any) -> None:
    """A reply sets the response time and marks done; a later done changes nothing."""
    inbox = any_inbox
    inbox.claim_sync("mastodon", "w", now=T0, lease=timedelta(minutes=1))
    inbox.add_page(
        "mastodon", "mastodon", InteractionPage([item("a", T0)], None), worker="w", now=T0
    )
    [interaction] = inbox.list_interactions()
    replied = inbox.record_reply(
        interaction.id, PublishResult("r1", "https://m/r1"), now=T0 + timedelta(minutes=30),
        done=True,
    )  # fmt: skip
    assert replied.response_seconds == 1800
    assert replied.state is InteractionState.DONE
    again = inbox.mark_done(interaction.id, now=T0 + timedelta(hours=5))
    assert again.first_response_at == T0 + timedelta(minutes=30)
    assert again.done_at == T0 + timedelta(minutes=30)


def test_response_times_per_month(store: SqlStore, inbox: SqlInbox) -> None:
    """The distribution per month of the site's zone: answered, median, 90th percentile,
    within an hour / a day, per platform, and what is still unanswered."""
    zone = ZoneInfo("Europe/Berlin")
    inbox.claim_sync("mastodon", "w", now=T0, lease=timedelta(minutes=1))
    arrivals = {
        "m1": datetime(2026, 3, 1, 8, 0, tzinfo=UTC),
        "m2": datetime(2026, 3, 2, 8, 0, tzinfo=UTC),
        "m3": datetime(2026, 3, 3, 8, 0, tzinfo=UTC),
        # 31 Mar 23:30 UTC is already April in Berlin
        "m4": datetime(2026, 3, 31, 23, 30, tzinfo=UTC),
        "open": datetime(2026, 3, 5, 8, 0, tzinfo=UTC),
        "other-year": datetime(2025, 3, 5, 8, 0, tzinfo=UTC),
    }
    page = InteractionPage([item(n, at) for n, at in arrivals.items()], None)
    inbox.add_page("mastodon", "mastodon", page, worker="w", now=T0)
    ids = {i.remote_id: i.id for i in inbox.list_interactions()}
    waits = {"m1": 600, "m2": 7200, "m3": 90000, "m4": 60, "other-year": 5}
    for name, seconds in waits.items():
        inbox.mark_done(ids[name], now=arrivals[name] + timedelta(seconds=seconds))
    months = response_times(store, 2026, zone=zone)
    assert len(months) == 12
    march, april = months[2], months[3]
    assert (march.answered, march.unanswered) == (3, 1)
    assert march.median_seconds == 7200
    assert march.p90_seconds == 90000
    assert march.max_seconds == 90000
    assert (march.within_hour, march.within_day) == (1, 2)
    assert dict(march.by_platform) == {"mastodon": 3}
    assert (april.answered, april.median_seconds) == (1, 60)
    assert sum(m.answered for m in months) == 4
    assert months[0].median_seconds is None


def test_the_yearly_report_reads_the_response_times(store: SqlStore, inbox: SqlInbox) -> None:
    """The report's hook (issue 7) gets its table from crosspost.inbox.response_times."""
    report = pytest.importorskip("crosspost.report.responses")
    inbox.claim_sync("mastodon", "w", now=T0, lease=timedelta(minutes=1))
    inbox.add_page(
        "mastodon", "mastodon", InteractionPage([item("a", T0)], None), worker="w", now=T0
    )
    [interaction] = inbox.list_interactions()
    inbox.mark_done(interaction.id, now=T0 + timedelta(minutes=30))
    table = report.response_times(store, 2026, ZoneInfo("Europe/Berlin"))
    assert table is not None
    march = [row for row in table.rows if row[0] == "2026-03"]
    assert march[0][1:4] == (1, 0, 30.0)


class BrokenAdapter(PagedAdapter):
    async def interactions(
        self, cursor: str | None, posts: Sequence[PostRef], *, since: datetime
    ) -> AsyncIterator[InteractionPage]:
        raise RuntimeError("a bug in one adapter")
        # Never reached (mypy knows), but the yield makes this an async generator.
        yield  # type: ignore[unreachable]  # pragma: no cover


def test_one_broken_or_paused_account_does_not_stop_the_others(any_inbox: Any) -> None:
    """The daemon's job goes on past an adapter that crashes, and skips paused accounts."""
    inbox = any_inbox
    from crosspost.inbox import inbox_job

    config = settings_from(
        site={"url": "https://www.zv-staedtedreieck.de"},
        accounts={n: {"platform": "console"} for n in ("broken", "paused", "good")},
    )

    def make(cls: type[PagedAdapter], name: str) -> PagedAdapter:
        pages = [InteractionPage([item(f"{name}-1", T0)], "1")]
        return cls(pages, None, name=name, config=config.accounts[name], settings=config)

    adapters = {
        "broken": make(BrokenAdapter, "broken"),
        "paused": make(PagedAdapter, "paused"),
        "good": make(PagedAdapter, "good"),
    }
    results = asyncio.run(
        inbox_job(inbox, adapters, config, worker="w", paused={"paused"}, clock=FrozenClock(T0))
    )
    assert [(r.account, r.new) for r in results] == [("good", 1)]
    assert [i.remote_id for i in inbox.list_interactions()] == ["good-1"]
    # the crashed fetch gave its lease back: the next run may take the account at once
    assert inbox.claim_sync("broken", "other", now=T0, lease=timedelta(minutes=1))


def test_retention_is_the_same_on_every_backend(any_inbox: Any) -> None:
    """Exactly the interactions done at or before the boundary go; open ones never."""
    inbox = any_inbox
    page = InteractionPage([item(n, T0) for n in ("due", "edge", "kept", "open")], None)
    inbox.claim_sync("mastodon", "w", now=T0, lease=timedelta(minutes=1))
    inbox.add_page("mastodon", "mastodon", page, worker="w", now=T0)
    ids = {i.remote_id: i.id for i in inbox.list_interactions()}
    now = T0 + timedelta(days=100)
    inbox.mark_done(ids["due"], now=now - timedelta(days=30, seconds=1))
    inbox.mark_done(ids["edge"], now=now - timedelta(days=30))
    inbox.mark_done(ids["kept"], now=now - timedelta(days=30) + timedelta(seconds=1))
    config = settings(privacy={"retention_days": 30})
    assert purge(inbox, config, clock=FrozenClock(now)) == 2
    assert sorted(i.remote_id for i in inbox.list_interactions()) == ["kept", "open"]
