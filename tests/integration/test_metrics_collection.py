"""Metrics collection (issue 7) against the Mastodon fake, on SQLite and PostgreSQL:
samples at fixed ages with exactly the fake's figures, follower counts once a day,
resuming after an interruption, and a 429 honoured without touching publishing."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select
from tests.fakes.mastodon import MastodonFake
from tests.fakes.server import FakeRequest, FakeResponse, rate_limit, status
from tests.rawsettings import settings_from

from crosspost.config import Settings
from crosspost.report import make_report
from crosspost.sampling import AccountRun, collect
from crosspost.store.metrics import EvaluationStore
from crosspost.store.migrate import upgrade
from crosspost.store.schema import account_metrics, deliveries, metrics_state, post_metrics, posts
from crosspost.store.sql import SqlStore

TOKEN_ENV = "CROSSPOST_TEST_METRICS_TOKEN"
STATUS_ROUTE = "GET /api/v1/statuses/{id}"
FOLLOWERS_ROUTE = "GET /api/v1/accounts/verify_credentials"


class MovableClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    if request.param == "sqlite":
        store = SqlStore(f"sqlite:///{tmp_path / 'crosspost.db'}", create=True)
        upgrade(store.engine)
    else:
        store = SqlStore(request.getfixturevalue("pg_url"), db_clock=False)
    try:
        yield store
    finally:
        store.close()


def settings_for(fake: MastodonFake, url: str, **evaluation: Any) -> Settings:
    return settings_from(
        site={"url": "https://www.zv-staedtedreieck.de", "timezone": "Europe/Berlin"},
        database={"url": url},
        accounts={
            "mastodon": {"platform": "mastodon", "base_url": fake.url, "token_env": TOKEN_ENV}
        },
        evaluation=evaluation,
    )


def publish_on_fake(fake: MastodonFake, text: str, **counts: int) -> str:
    """A status on the fake (through its API), with the engagement counts it reports."""
    answer = httpx.post(
        f"{fake.url}/api/v1/statuses",
        json={"status": text},
        headers={"Authorization": f"Bearer {fake.token}"},
    )
    assert answer.status_code == 200, answer.text
    status_id = str(answer.json()["id"])
    for found in fake.statuses:
        if found.id == status_id:
            found.extra.update(counts)
    return status_id


def add_published(
    store: SqlStore, remote_id: str, published_at: datetime, *, account: str = "mastodon"
) -> int:
    link = f"https://www.zv-staedtedreieck.de/aktuelles/{remote_id}"
    with store.engine.begin() as conn:
        post_id = conn.execute(
            insert(posts)
            .values(
                title=f"Post {remote_id}",
                body="Text",
                link=link,
                category="nachrichten",
                publish_at=published_at,
                created_at=published_at,
                created_by="test",
                media=[],
                variants={},
            )
            .returning(posts.c.id)
        ).scalar_one()
        return int(
            conn.execute(
                insert(deliveries)
                .values(
                    post_id=post_id,
                    account=account,
                    platform=account,
                    state="published",
                    due_at=published_at,
                    text=f"Text\n\n{link}",
                    idempotency_key=secrets.token_hex(16),
                    remote_id=remote_id,
                    remote_url=f"https://social.example/@zv/{remote_id}",
                    updated_at=published_at,
                    published_at=published_at,
                )
                .returning(deliveries.c.id)
            ).scalar_one()
        )


def samples(store: SqlStore) -> list[tuple[int, int | None, int | None, int | None, int | None]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(
                post_metrics.c.delivery_id,
                post_metrics.c.age_days,
                post_metrics.c.likes,
                post_metrics.c.reposts,
                post_metrics.c.replies,
            ).order_by(post_metrics.c.delivery_id, post_metrics.c.age_days)
        ).all()
    return [tuple(r) for r in rows]


def follower_rows(store: SqlStore) -> list[tuple[str, str, int]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(
                account_metrics.c.account, account_metrics.c.day, account_metrics.c.followers
            ).order_by(account_metrics.c.id)
        ).all()
    return [(r[0], r[1], r[2]) for r in rows]


def run(settings: Settings, store: SqlStore, clock: MovableClock) -> list[AccountRun]:
    return asyncio.run(collect(settings, EvaluationStore(store), clock=clock))


@pytest.fixture
def fake(mastodon_fake: MastodonFake, monkeypatch: pytest.MonkeyPatch) -> MastodonFake:
    monkeypatch.setenv(TOKEN_ENV, mastodon_fake.token)
    mastodon_fake.followers_count = 321
    return mastodon_fake


def test_samples_are_taken_at_their_ages_with_the_platforms_figures(
    fake: MastodonFake, sql_store: SqlStore, tmp_path: Path
) -> None:
    """A post a day old gets its 1-day sample, one a week old its 7-day sample, a new one
    none; the stored figures and the report's CSV are exactly what the platform said."""
    now = datetime.now(UTC).replace(microsecond=0)
    day_old = publish_on_fake(fake, "eins", favourites_count=12, reblogs_count=3, replies_count=2)
    week_old = publish_on_fake(fake, "zwei", favourites_count=40, reblogs_count=9, replies_count=5)
    fresh = publish_on_fake(fake, "drei", favourites_count=1)
    d1 = add_published(sql_store, day_old, now - timedelta(days=1, hours=2))
    d7 = add_published(sql_store, week_old, now - timedelta(days=7, hours=3))
    add_published(sql_store, fresh, now - timedelta(hours=3))
    settings = settings_for(fake, sql_store.url)

    [result] = run(settings, sql_store, MovableClock(now))

    assert (result.ok, result.samples, result.followers) == (True, 2, 321)
    assert samples(sql_store) == [(d1, 1, 12, 3, 2), (d7, 7, 40, 9, 5)]
    assert sorted(r.params["id"] for r in fake.requests_to(STATUS_ROUTE)) == sorted(
        [day_old, week_old]
    )
    today = now.astimezone(settings.site.zone).date().isoformat()
    assert follower_rows(sql_store) == [("mastodon", today, 321)]

    out = tmp_path / "report"
    make_report(settings, sql_store, year=now.astimezone(settings.site.zone).year, out=out)
    by_age = (out / "engagement_by_age.csv").read_text(encoding="utf-8").splitlines()
    assert by_age == [
        "age_days,account,samples,likes,reposts,replies,views",
        "1,mastodon,1,12,3,2,",
        "7,mastodon,1,40,9,5,",
    ]


def test_a_sample_is_taken_once_and_a_missed_age_stays_empty(
    fake: MastodonFake, sql_store: SqlStore
) -> None:
    """A second run asks nothing again; a post first seen at 8 days gets its 7-day sample,
    and at 31 days its 30-day one — never a late figure filed under an earlier age."""
    start = datetime.now(UTC).replace(microsecond=0)
    remote = publish_on_fake(fake, "eins", favourites_count=5)
    delivery = add_published(sql_store, remote, start - timedelta(days=8))
    settings = settings_for(fake, sql_store.url)
    clock = MovableClock(start)

    run(settings, sql_store, clock)
    run(settings, sql_store, clock)
    assert samples(sql_store) == [(delivery, 7, 5, 0, 0)]
    assert len(fake.requests_to(STATUS_ROUTE)) == 1

    clock.at = start + timedelta(days=23)  # 31 days after publication
    run(settings, sql_store, clock)
    assert samples(sql_store) == [(delivery, 7, 5, 0, 0), (delivery, 30, 5, 0, 0)]


def test_the_follower_count_is_read_once_a_day(fake: MastodonFake, sql_store: SqlStore) -> None:
    """Several runs on one local day read the follower count once; the next day again."""
    settings = settings_for(fake, sql_store.url, interval=600)
    clock = MovableClock(datetime(2026, 6, 1, 8, tzinfo=UTC))
    for _ in range(3):
        run(settings, sql_store, clock)
    assert len(fake.requests_to(FOLLOWERS_ROUTE)) == 1
    fake.followers_count = 330
    clock.at += timedelta(days=1)
    run(settings, sql_store, clock)
    assert follower_rows(sql_store) == [
        ("mastodon", "2026-06-01", 321),
        ("mastodon", "2026-06-02", 330),
    ]


def test_an_interrupted_collection_resumes_without_asking_twice(
    fake: MastodonFake, sql_store: SqlStore
) -> None:
    """A run that stops half-way (a platform error, or its request budget used up) leaves
    the rest for the next run; nothing is stored or asked twice."""
    now = datetime.now(UTC).replace(microsecond=0)
    ids = [publish_on_fake(fake, f"Post {i}", favourites_count=i) for i in range(6)]
    delivery_ids = [
        add_published(sql_store, remote, now - timedelta(days=1, minutes=10 * (6 - i)))
        for i, remote in enumerate(ids)
    ]
    clock = MovableClock(now)
    budget = settings_for(fake, sql_store.url, requests_per_run=3)  # followers + 2 posts

    [first] = run(budget, sql_store, clock)
    assert (first.ok, first.samples, first.left) == (True, 2, 4)

    fake.inject(status(503), route=STATUS_ROUTE)
    [second] = run(settings_for(fake, sql_store.url), sql_store, clock)
    assert (second.ok, second.samples) == (False, 0)

    [third] = run(settings_for(fake, sql_store.url), sql_store, clock)
    assert (third.ok, third.samples, third.left) == (True, 4, 0)
    assert samples(sql_store) == [(d, 1, i, 0, 0) for i, d in enumerate(delivery_ids)]
    asked = [r.params["id"] for r in fake.requests_to(STATUS_ROUTE)]
    # every status once, plus the one try the 503 refused
    assert sorted(asked) == sorted([*ids, asked[2]])


def test_a_429_is_honoured_and_does_not_hold_up_publishing(
    fake: MastodonFake, sql_store: SqlStore
) -> None:
    """A 429 stops the account's run; until its Retry-After no request goes out (the
    rest is collected after it), and the account stays free for publishing."""
    now = datetime.now(UTC).replace(microsecond=0)
    ids = [publish_on_fake(fake, f"Post {i}", favourites_count=i) for i in range(3)]
    for i, remote in enumerate(ids):
        add_published(sql_store, remote, now - timedelta(days=1, minutes=10 * (3 - i)))
    settings = settings_for(fake, sql_store.url)
    clock = MovableClock(now)
    fake.inject(rate_limit(retry_after=600), route=STATUS_ROUTE)

    [limited] = run(settings, sql_store, clock)
    assert (limited.ok, limited.samples, limited.left) == (True, 0, 3)
    with sql_store.engine.connect() as conn:
        blocked = conn.execute(select(metrics_state.c.blocked_until)).scalar_one()
    assert blocked >= now + timedelta(seconds=590)
    asked = len(fake.requests)

    [waiting] = run(settings, sql_store, clock)
    assert (waiting.ok, waiting.samples) == (True, 0)
    assert len(fake.requests) == asked  # not a single request while limited
    states = sql_store.account_states()
    assert "mastodon" not in states or (
        states["mastodon"].blocked_until is None and states["mastodon"].paused_reason is None
    )

    clock.at = now + timedelta(minutes=11)
    [after] = run(settings, sql_store, clock)
    assert (after.ok, after.samples) == (True, 3)


def test_the_daemons_evaluation_job_collects(fake: MastodonFake, sql_store: SqlStore) -> None:
    """The daemon's periodic job runs the same collection, its database calls on the
    daemon's database thread, with adapters of its own (the publisher's are untouched)."""
    from crosspost.daemon import Daemon

    now = datetime.now(UTC).replace(microsecond=0)
    remote = publish_on_fake(fake, "eins", favourites_count=7, reblogs_count=1)
    delivery = add_published(sql_store, remote, now - timedelta(days=1, hours=1))
    settings = settings_for(fake, sql_store.url)
    daemon = Daemon(settings, sql_store, clock=MovableClock(now), adapters={}, handle_signals=False)
    try:
        asyncio.run(daemon._collect_metrics())
    finally:
        daemon._executor.shutdown(wait=True)
    assert samples(sql_store) == [(delivery, 1, 7, 1, 0)]
    assert follower_rows(sql_store)[0][2] == 321


def test_two_collectors_at_once_store_each_sample_once(
    fake: MastodonFake, sql_store: SqlStore
) -> None:
    """Two daemons collecting at the same moment (one database) both ask, but each
    sample and each day's follower count is stored once."""
    now = datetime.now(UTC).replace(microsecond=0)
    ids = [publish_on_fake(fake, f"Post {i}", favourites_count=i) for i in range(4)]
    delivery_ids = [
        add_published(sql_store, remote, now - timedelta(days=1, minutes=i + 1))
        for i, remote in enumerate(ids)
    ]
    settings = settings_for(fake, sql_store.url)
    clock = MovableClock(now)

    async def both() -> None:
        await asyncio.gather(
            collect(settings, EvaluationStore(sql_store), clock=clock),
            collect(settings, EvaluationStore(sql_store), clock=clock),
        )

    asyncio.run(both())
    stored = samples(sql_store)
    assert sorted(stored) == sorted(
        (d, 1, i, 0, 0) for i, d in zip(range(4), delivery_ids, strict=True)
    )
    assert len(follower_rows(sql_store)) == 1


class GatedMastodon(MastodonFake):
    """Holds every status lookup (the metrics request) until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.gate = threading.Event()

    def _get_status(self, request: FakeRequest) -> FakeResponse:
        self.entered.set()
        self.gate.wait(timeout=60)
        return super()._get_status(request)


def test_a_hanging_collection_does_not_hold_up_publishing(
    start_fake: Any, sql_store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the daemon's collection waits on a platform that does not answer, a post
    due now is published on the same account; the collection finishes afterwards."""
    from crosspost.daemon import Daemon
    from crosspost.service import Crosspost

    gated: GatedMastodon = start_fake(GatedMastodon())
    monkeypatch.setenv(TOKEN_ENV, gated.token)
    now = datetime.now(UTC)
    old = publish_on_fake(gated, "alt", favourites_count=3)
    add_published(sql_store, old, now - timedelta(days=1, hours=1))
    settings = settings_for(gated, sql_store.url)
    service = Crosspost(settings, sql_store)
    post = service.post_from_text(
        "Neu", link=None, category=None, accounts=["mastodon"], title=None
    )
    [post_id] = service.enqueue([service.plan(post)])
    daemon = Daemon(settings, sql_store, handle_signals=False)

    async def scenario() -> bool:
        loop = asyncio.get_running_loop()
        await daemon._start()
        collecting = asyncio.create_task(daemon._collect_metrics())
        assert await loop.run_in_executor(None, gated.entered.wait, 30)
        await daemon._claim()
        await asyncio.wait(daemon.tasks)
        still_collecting = not collecting.done()
        gated.gate.set()
        await collecting
        await daemon._shutdown()
        return still_collecting

    try:
        assert asyncio.run(scenario())
    finally:
        gated.gate.set()
    [delivery] = sql_store.deliveries_of(post_id)
    assert delivery.state.value == "published"
    assert [s[2] for s in samples(sql_store)] == [3]
