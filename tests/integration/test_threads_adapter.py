"""The Threads adapter against the fake Threads Graph API over real HTTP on 127.0.0.1.

Covers text, image and carousel posts, the container flow that never posts twice, the
length and link rules, and the 60-day token: learnt expiry, refresh near the end, the
refreshed token kept in the state folder (0600). Every test ends with the fixture's
check that no request broke the documented contract (``fake.validation_errors == []``).
"""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.adapterfixture import (
    Requests,
    build,
    refused,
    run,
)
from tests.fakes.meta import PUBLIC_MEDIA, THREADS_TOKEN, ThreadsFake, graph_fault
from tests.fakes.server import lose_response

from crosspost.adapters.threads import ThreadsAdapter
from crosspost.clock import FrozenClock
from crosspost.exceptions import AuthError, RateLimited, UnknownOutcome
from crosspost.models import Media, PublishRequest

TOKEN_ENV = "CROSSPOST_TEST_THREADS_TOKEN"
LINK = "https://www.zv-staedtedreieck.de/aktuelles/kleiderladen"
TEXT = f"Der Kleiderladen sucht Winterjacken 🧥\n\n{LINK}"
CREATE = "POST /{user}/threads"
PUBLISH = "POST /{user}/threads_publish"
REFRESH = "GET /refresh_access_token"
DEBUG = "GET /debug_token"
ONE_DELIVERY = Requests("th", TEXT, link=LINK, title="Kleiderladen", key="d-3-th", delivery_id=3)


@pytest.fixture
def connect(
    threads_fake: ThreadsFake, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Callable[..., ThreadsAdapter]:
    """Build an adapter for the fake from Settings, as the daemon does (one state folder)."""

    def make(*, token: str | None = None, user_id: str | None = None) -> ThreadsAdapter:
        monkeypatch.setenv(TOKEN_ENV, token or THREADS_TOKEN)  # what the admin configured
        account = {"platform": "threads", "base_url": threads_fake.url, "token_env": TOKEN_ENV}
        account["user_id"] = user_id or threads_fake.user_id
        adapter = build(ThreadsAdapter, "th", account, state_dir=tmp_path / "state")
        adapter.container_poll_first = 0.01
        return adapter

    return make


def publish_request(
    text: str = TEXT,
    *,
    media: tuple[Media, ...] = (),
    progress: Mapping[str, str] | None = None,
    checkpoint: Callable[[Mapping[str, str]], Awaitable[None]] | None = None,
) -> PublishRequest:
    urls = tuple(f"{PUBLIC_MEDIA}/3-{n}.jpg" for n in range(1, len(media) + 1))
    return ONE_DELIVERY(
        text, media=media, progress=progress, checkpoint=checkpoint, media_urls=urls
    )


def images(tmp_path: Path, count: int) -> tuple[Media, ...]:
    found = []
    for n in range(1, count + 1):
        path = tmp_path / f"jacke-{n}.jpg"
        path.write_bytes(b"\xff\xd8\xff\xe0fake jpeg")
        found.append(Media(path, f"Eine blaue Winterjacke, Bild {n}", "image/jpeg"))
    return tuple(found)


def test_text_post_has_the_link_as_attachment(
    threads_fake: ThreadsFake, connect: Callable[..., ThreadsAdapter]
) -> None:
    """A TEXT container with the text and the canonical link as link_attachment."""
    adapter = connect()
    result = run(adapter, lambda: adapter.publish(publish_request()))

    [post] = threads_fake.media
    assert (post.text, post.link_attachment, post.image_urls) == (TEXT, LINK, [])
    assert result.remote_id == post.id
    assert result.remote_url == post.permalink
    [create] = threads_fake.requests_to(CREATE)
    assert create.form()["media_type"].text == "TEXT"


def test_image_post_has_image_url_and_alt_text(
    threads_fake: ThreadsFake, connect: Callable[..., ThreadsAdapter], tmp_path: Path
) -> None:
    """One image: an IMAGE container with the website's image URL and the alt text."""
    adapter = connect()
    run(adapter, lambda: adapter.publish(publish_request(media=images(tmp_path, 1))))

    [post] = threads_fake.media
    assert post.image_urls == [f"{PUBLIC_MEDIA}/3-1.jpg"]
    assert post.alts == ["Eine blaue Winterjacke, Bild 1"]
    assert post.link_attachment is None  # Threads takes link_attachment on text posts only


def test_several_images_make_a_carousel(
    threads_fake: ThreadsFake, connect: Callable[..., ThreadsAdapter], tmp_path: Path
) -> None:
    """Two images: two IMAGE items with alt text, one CAROUSEL with the text."""
    adapter = connect()
    run(adapter, lambda: adapter.publish(publish_request(media=images(tmp_path, 2))))

    [post] = threads_fake.media
    assert post.text == TEXT
    assert post.alts == ["Eine blaue Winterjacke, Bild 1", "Eine blaue Winterjacke, Bild 2"]


def test_emoji_count_their_bytes_and_too_long_is_rejected_unsent(
    threads_fake: ThreadsFake, connect: Callable[..., ThreadsAdapter]
) -> None:
    """130 emoji are 130 characters but 520 by Threads' rule: refused before sending."""
    adapter = connect()
    refusal = refused(adapter, publish_request("🧥" * 130), "520 of 500")
    assert refusal.sent is False
    assert threads_fake.requests_to(CREATE) == []


def test_more_than_five_links_is_rejected_unsent(
    threads_fake: ThreadsFake, connect: Callable[..., ThreadsAdapter]
) -> None:
    """Five links in the text plus the link attachment make six: refused before sending."""
    text = " ".join(f"https://www.zv-staedtedreieck.de/s/{n}" for n in range(5))
    adapter = connect()
    refusal = refused(adapter, publish_request(text), "at most 5 links")
    assert refusal.sent is False
    assert threads_fake.requests_to(CREATE) == []


def test_a_lost_publish_answer_never_makes_a_second_post(
    threads_fake: ThreadsFake, connect: Callable[..., ThreadsAdapter]
) -> None:
    """The crash case: the checkpointed container was published but the answer lost; the
    next attempt reads its status (PUBLISHED) and returns the post instead of publishing."""
    threads_fake.inject(lose_response(), route=PUBLISH)
    saved: list[dict[str, str]] = []

    async def checkpoint(progress: Mapping[str, str]) -> None:
        saved.append(dict(progress))

    adapter = connect()

    async def scenario() -> None:
        with pytest.raises(UnknownOutcome):
            await adapter.publish(publish_request(checkpoint=checkpoint))
        [progress] = saved
        again = await adapter.publish(publish_request(progress=progress))
        assert again.remote_id == threads_fake.media[0].id
        assert await adapter.find_existing(publish_request(progress=progress)) == again

    run(adapter, scenario)
    assert len(threads_fake.requests_to(PUBLISH)) == 1
    assert len(threads_fake.media) == 1
    status_reads = [r.arg("fields") for r in threads_fake.requests_to("GET /{node}")]
    assert "status,error_message" in status_reads


def test_open_learns_the_expiry_and_keeps_it_private(
    threads_fake: ThreadsFake, connect: Callable[..., ThreadsAdapter]
) -> None:
    """Without a kept token the expiry is asked once (debug_token) and kept in a 0600 file;
    a token far from expiry is not refreshed."""
    adapter = connect()
    run(adapter, lambda: asyncio.sleep(0))
    expires = threads_fake.tokens[threads_fake.token].expires_at
    assert adapter.token_expires_at() == expires
    assert threads_fake.requests_to(REFRESH) == []
    assert stat.S_IMODE(adapter.token_path.stat().st_mode) == 0o600

    second = connect()
    run(second, lambda: asyncio.sleep(0))
    assert second.token_expires_at() == expires
    assert len(threads_fake.requests_to(DEBUG)) == 1  # the kept expiry is read, not asked


def test_a_token_near_its_end_is_refreshed_and_the_new_one_is_used(
    threads_fake: ThreadsFake, connect: Callable[..., ThreadsAdapter]
) -> None:
    """Five days left: open() refreshes (th_refresh_token), keeps the new token with its
    60-day expiry, and every later request, also of a new adapter, carries it."""
    original = threads_fake.token
    threads_fake.set_token_age(original, timedelta(days=55))
    adapter = connect()
    run(adapter, lambda: adapter.publish(publish_request()))

    fresh = threads_fake.token
    assert fresh != original
    [refresh] = threads_fake.requests_to(REFRESH)
    assert refresh.arg("grant_type") == "th_refresh_token"
    assert refresh.header("authorization") is None
    [create] = threads_fake.requests_to(CREATE)
    assert create.header("authorization") == f"Bearer {fresh}"
    expires = adapter.token_expires_at()
    assert expires is not None
    assert timedelta(days=59) < expires - datetime.now(UTC) <= timedelta(days=60)
    kept = json.loads(adapter.token_path.read_text())
    assert kept["access_token"] == fresh
    assert stat.S_IMODE(adapter.token_path.stat().st_mode) == 0o600

    threads_fake.clear_log()
    later = connect()
    run(later, later.verify)
    assert threads_fake.requests_to(REFRESH) == []
    assert all(r.header("authorization") == f"Bearer {fresh}" for r in threads_fake.requests)


def test_a_new_configured_token_wins_over_the_kept_one(
    threads_fake: ThreadsFake, connect: Callable[..., ThreadsAdapter]
) -> None:
    """When the admin configures another token, the kept (older) one is no longer used."""
    threads_fake.set_token_age(threads_fake.token, timedelta(days=55))
    run(connect(), lambda: asyncio.sleep(0))  # refreshes and keeps a token
    threads_fake.set_token_age("brand-new-token", timedelta(hours=1))
    adapter = connect(token="brand-new-token")
    run(adapter, lambda: adapter.publish(publish_request()))
    [create] = threads_fake.requests_to(CREATE)
    assert create.header("authorization") == "Bearer brand-new-token"
    assert len(threads_fake.requests_to(REFRESH)) == 1  # the new token is far from its end


def test_a_token_too_young_to_refresh_is_left_alone(
    threads_fake: ThreadsFake, connect: Callable[..., ThreadsAdapter]
) -> None:
    """Meta refreshes only tokens a day old: a 2-hour-old token expiring soon is used as is."""
    threads_fake.set_token_age(threads_fake.token, timedelta(hours=2), lifetime=timedelta(days=3))
    adapter = connect()
    run(adapter, lambda: adapter.publish(publish_request()))
    assert threads_fake.requests_to(REFRESH) == []
    assert len(threads_fake.media) == 1


def test_an_expired_token_pauses_the_account_at_open(
    threads_fake: ThreadsFake, connect: Callable[..., ThreadsAdapter]
) -> None:
    """A kept expiry in the past: open() raises AuthError naming the date, no request."""
    adapter = connect()
    run(adapter, lambda: asyncio.sleep(0))
    kept = json.loads(adapter.token_path.read_text())
    kept["expires_at"] = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    adapter.token_path.write_text(json.dumps(kept))
    threads_fake.clear_log()
    expired = connect()
    with pytest.raises(AuthError, match="expired on"):
        run(expired, lambda: asyncio.sleep(0))
    assert threads_fake.requests == []


def test_revoked_token_is_an_auth_error_on_publish(
    threads_fake: ThreadsFake, connect: Callable[..., ThreadsAdapter]
) -> None:
    """190 on publishing is AuthError (open() does not stop on an unknown expiry)."""
    threads_fake.revoke_all()
    adapter = connect()
    with pytest.raises(AuthError, match="#190") as caught:
        run(adapter, lambda: adapter.publish(publish_request()))
    assert THREADS_TOKEN not in str(caught.value)


def test_throttling_is_a_rate_limit(
    threads_fake: ThreadsFake, connect: Callable[..., ThreadsAdapter]
) -> None:
    """Error 4 on the container: RateLimited, nothing published."""
    threads_fake.inject(graph_fault(4, "(#4) Application request limit reached"), route=CREATE)
    adapter = connect()
    with pytest.raises(RateLimited):
        run(adapter, lambda: adapter.publish(publish_request()))
    assert threads_fake.media == []


def test_delete_metrics_followers_and_verify(
    threads_fake: ThreadsFake, connect: Callable[..., ThreadsAdapter]
) -> None:
    """Insights give views, likes, replies, reposts+quotes; followers come from the user
    insights; verify names the profile and the token's expiry; delete twice is fine."""
    threads_fake.followers = 55
    adapter = connect()

    async def scenario() -> None:
        result = await adapter.publish(publish_request())
        [post] = threads_fake.media
        post.views, post.likes, post.replies, post.reposts, post.quotes = 40, 7, 3, 2, 1
        metrics = await adapter.metrics(result.remote_id)
        assert metrics is not None
        assert (metrics.views, metrics.likes, metrics.replies, metrics.reposts) == (40, 7, 3, 3)
        info = await adapter.verify()
        assert (info.name, info.url, info.followers) == (
            "@staedtedreieck",
            "https://www.threads.net/@staedtedreieck",
            55,
        )
        assert info.token_expires_at == threads_fake.tokens[threads_fake.token].expires_at
        await adapter.delete(result.remote_id)
        assert threads_fake.media == []
        await adapter.delete(result.remote_id)

    run(adapter, scenario)


def test_verify_refuses_a_token_of_another_user(
    threads_fake: ThreadsFake, connect: Callable[..., ThreadsAdapter]
) -> None:
    """A token for another profile than user_id is an AuthError naming both ids."""
    adapter = connect(user_id="25000000000000999")
    with pytest.raises(AuthError, match="25000000000000999"):
        run(adapter, adapter.verify)


def test_a_daemon_running_for_weeks_refreshes_before_publishing(
    threads_fake: ThreadsFake, connect: Callable[..., ThreadsAdapter]
) -> None:
    """Opened with 50 days left, the adapter looks again before a request once 12 hours
    have passed: 44 days on (6 left) it refreshes, then publishes with the new token."""
    threads_fake.set_token_age(threads_fake.token, timedelta(days=10))
    adapter = connect()
    clock = FrozenClock(datetime.now(UTC))
    adapter.clock = clock

    async def scenario() -> None:
        await adapter.publish(publish_request("Erster Beitrag."))
        assert threads_fake.requests_to(REFRESH) == []
        clock.advance(timedelta(days=44))
        await adapter.publish(publish_request())

    run(adapter, scenario)
    [refresh] = threads_fake.requests_to(REFRESH)
    creates = threads_fake.requests_to(CREATE)
    assert creates[-1].received_at > refresh.received_at
    assert creates[-1].header("authorization") == f"Bearer {threads_fake.token}"
    assert threads_fake.token != THREADS_TOKEN
