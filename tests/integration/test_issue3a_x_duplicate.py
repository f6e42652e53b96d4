"""Issue 3 (X): a 403 "duplicate content" means "probably published" and is confirmed on
the timeline — found: that post; the same text posted before this delivery existed:
rejected, naming it; not visible at all (the timeline lags): unknown, never "failed".

Against the X fake, which validates every request against ``x-openapi.json``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.adapterfixture import Requests, build, run
from tests.fakes.server import status
from tests.fakes.x import DUPLICATE, XFake
from tests.rawsettings import settings_from

from crosspost.adapters.x import XAdapter
from crosspost.daemon import Daemon
from crosspost.exceptions import Rejected, UnknownOutcome
from crosspost.models import DeliveryState, Post
from crosspost.service import Crosspost
from crosspost.store.memory import MemoryStore

TOKEN_ENV = "CROSSPOST_TEST_X_TOKEN"
LINK = "https://www.zv-staedtedreieck.de/aktuelles/stadtfest"
TEXT = f"Stadtfest am Samstag 🎉\n\n{LINK}"
TWEETS = "POST /2/tweets"
TIMELINE = "GET /2/users/{id}/tweets"
publish_request = Requests("x", TEXT, link=LINK, title="Stadtfest", key="d-1-x")
FORBIDDEN_DUPLICATE = status(
    403, {"title": "Forbidden", "detail": DUPLICATE, "type": "about:blank", "status": 403}
)


@pytest.fixture
def connect(
    x_fake: XFake, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Callable[[], XAdapter]:
    def make() -> XAdapter:
        monkeypatch.setenv(TOKEN_ENV, x_fake.token)
        table = {"platform": "x", "base_url": x_fake.url, "token_env": TOKEN_ENV}
        return build(XAdapter, "x", table, timeout=5.0, state_dir=tmp_path / "state")

    return make


def test_a_duplicate_not_yet_on_the_timeline_is_unknown_not_failed(
    x_fake: XFake, connect: Callable[[], XAdapter]
) -> None:
    """X refuses the text as a duplicate, but neither the delivery's window nor the whole
    recent timeline shows it: UnknownOutcome (sent), so the delivery is looked up again
    and never marked failed; nothing was created."""
    x_fake.inject(FORBIDDEN_DUPLICATE, route=TWEETS)
    adapter = connect()
    with pytest.raises(UnknownOutcome, match="probably published") as caught:
        run(adapter, lambda: adapter.publish(publish_request()))
    assert caught.value.sent is True
    assert caught.value.http_status == 403
    lookups = x_fake.requests_to(TIMELINE)
    assert [r.arg("start_time") is not None for r in lookups] == [True, False]
    assert x_fake.tweets == []


def test_a_duplicate_confirmed_on_the_timeline_is_that_post(
    x_fake: XFake, connect: Callable[[], XAdapter]
) -> None:
    """The post is on the timeline (its answer was lost before): the resend's 403 is
    settled as published, with that post's id."""
    adapter = connect()

    async def scenario() -> None:
        first = await adapter.publish(publish_request())
        again = await adapter.publish(publish_request())
        assert again == first

    run(adapter, scenario)
    assert [r.status for r in x_fake.requests_to(TWEETS)] == [201, 403]
    assert len(x_fake.tweets) == 1


def test_a_duplicate_of_a_post_older_than_the_delivery_is_rejected_naming_it(
    x_fake: XFake, connect: Callable[[], XAdapter]
) -> None:
    adapter = connect()

    async def scenario() -> str:
        older = await adapter.publish(publish_request())
        later = publish_request(created_at=datetime.now(UTC) + timedelta(hours=1))
        with pytest.raises(Rejected, match="duplicate") as caught:
            await adapter.publish(later)
        assert older.remote_url is not None
        assert older.remote_url in caught.value.message
        return caught.value.message

    message = run(adapter, scenario)
    assert DUPLICATE in message
    assert len(x_fake.tweets) == 1


def test_through_the_daemon_a_lagging_duplicate_ends_published_once(
    x_fake: XFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon meets the 403 (nothing on the timeline): the delivery is not failed;
    the next attempt looks first, finds nothing, sends again and is published — once."""
    monkeypatch.setenv(TOKEN_ENV, x_fake.token)
    settings = settings_from(
        site={"url": "https://www.zv-staedtedreieck.de", "name": "Zweckverband Städtedreieck"},
        daemon={"backoff_base": 0.05, "max_inline_wait": 5, "state_dir": str(tmp_path / "s")},
        accounts={"x": {"platform": "x", "base_url": x_fake.url, "token_env": TOKEN_ENV}},
    )
    store = MemoryStore()
    service = Crosspost(settings, store)
    post = Post(title="Stadtfest", body="Stadtfest am Samstag 🎉", link=LINK, category=None,
                publish_at=None, accounts=("x",), media=())  # fmt: skip
    [post_id] = service.enqueue([service.plan(post)])
    x_fake.inject(FORBIDDEN_DUPLICATE, route=TWEETS)
    daemon = Daemon(settings, store, once=True, handle_signals=False)
    assert asyncio.run(daemon.run()) == 0
    [delivery] = store.deliveries_of(post_id)
    assert delivery.state is DeliveryState.PUBLISHED
    assert [r.status for r in x_fake.requests_to(TWEETS)] == [403, 201]
    assert [t.id for t in x_fake.tweets] == [delivery.remote_id]
