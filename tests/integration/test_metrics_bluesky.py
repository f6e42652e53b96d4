"""Metrics collection against the real Bluesky PDS (through the fault proxy).

A bare PDS serves no AppView (``app.bsky.feed.getPosts``, ``actor.getProfile``), so
it gives no figures: the collection must store an empty sample for the age (not
zeros, not a failure), ask once only, and the report must show "no figure".
"""

from __future__ import annotations

import asyncio
import csv
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.fakes.bluesky import GET_POSTS, GET_PROFILE, BlueskyProxy, Pds
from tests.integration.test_metrics_collection import MovableClock, add_published
from tests.rawsettings import settings_from

from crosspost.adapters.base import build_adapter
from crosspost.models import PublishRequest
from crosspost.report import make_report
from crosspost.sampling import collect
from crosspost.store.metrics import EvaluationStore
from crosspost.store.migrate import upgrade
from crosspost.store.schema import account_metrics, post_metrics
from crosspost.store.sql import SqlStore

TOKEN_ENV = "CROSSPOST_TEST_BLUESKY_METRICS_PASSWORD"
SITE = "https://www.zv-staedtedreieck.de"


def test_a_pds_without_appview_gives_an_empty_sample_once(
    pds: Pds, proxy: BlueskyProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"metrics-{os.getpid()}"
    monkeypatch.setenv(TOKEN_ENV, pds.create_app_password(name))
    settings = settings_from(
        site={"url": SITE},
        daemon={"state_dir": str(tmp_path / "state")},
        accounts={
            "bluesky": {
                "platform": "bluesky",
                "base_url": proxy.url,
                "token_env": TOKEN_ENV,
                "handle": pds.handle,
            }
        },
    )
    link = f"{SITE}/aktuelles/zahlen-{os.getpid()}"
    adapter = build_adapter("bluesky", settings)

    async def publish() -> str:
        async def checkpoint(values: object) -> None:
            return None

        try:
            result = await adapter.publish(
                PublishRequest(
                    delivery_id=1,
                    post_id=1,
                    account="bluesky",
                    text=f"Zahlen?\n\n{link}",
                    link=link,
                    title="Zahlen",
                    media=(),
                    idempotency_key="metrics-1",
                    created_at=datetime.now(UTC),
                    checkpoint=checkpoint,
                )
            )
        finally:
            await adapter.aclose()
        return result.remote_id

    remote = asyncio.run(publish())
    store = SqlStore(f"sqlite:///{tmp_path / 'q.db'}", create=True)
    try:
        upgrade(store.engine)
        now = datetime.now(UTC).replace(microsecond=0)
        delivery = add_published(store, remote, now - timedelta(days=1, hours=1), account="bluesky")
        clock = MovableClock(now)
        for _ in range(2):
            [result] = asyncio.run(collect(settings, EvaluationStore(store), clock=clock))
            assert result.ok, result.message
        with store.engine.connect() as conn:
            rows = conn.execute(
                select(post_metrics.c.delivery_id, post_metrics.c.age_days, post_metrics.c.likes)
            ).all()
            followers = conn.execute(select(account_metrics)).all()
        assert [tuple(r) for r in rows] == [(delivery, 1, None)]
        assert followers == []  # no count is not a count of 0
        assert len(proxy.requests_to(GET_POSTS)) == 1
        assert len(proxy.requests_to(GET_PROFILE)) == 2  # asked each run: no count was stored
        out = tmp_path / "report"
        make_report(settings, store, year=now.year, out=out, language="en", clock=clock)
    finally:
        store.close()
    with (out / "engagement_by_account.csv").open(encoding="utf-8") as f:
        [row] = [r for r in csv.DictReader(f) if r["account"] == "bluesky"]
    assert row["posts_measured"] == "1"
    assert (row["likes"], row["reposts"], row["replies"], row["views"]) == ("", "", "", "")
