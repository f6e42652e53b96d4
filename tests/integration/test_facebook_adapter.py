"""The Facebook Page adapter against the fake Graph API over real HTTP on 127.0.0.1.

Every test ends with the fixture's check that no request broke the documented Graph
API contract (``fake.validation_errors == []``) and the fake did not break.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.adapterfixture import (
    Requests,
    auth_failures,
    build,
    delete_twice,
    lost_then_found,
    publish_twice,
    rate_limited_until,
    run,
    transient_then_published,
    unreadable_image_refused,
)
from tests.fakes.meta import FacebookFake, graph_fault
from tests.fakes.server import lose_response, status

from crosspost.adapters._meta import DEFAULT_THROTTLE_WAIT
from crosspost.adapters.facebook import FacebookAdapter
from crosspost.exceptions import AuthError, RateLimited, Rejected, Transient
from crosspost.models import Media

TOKEN_ENV = "CROSSPOST_TEST_FACEBOOK_TOKEN"
LINK = "https://www.zv-staedtedreieck.de/aktuelles/wertstoffhof"
TEXT = f"Der Wertstoffhof hat ab Montag länger geöffnet.\n\n{LINK}"
FEED = "POST /{page}/feed"
PHOTOS = "POST /{page}/photos"
THROTTLING = [4, 17, 32, 341, 613, 80001]


@pytest.fixture
def connect(
    facebook_fake: FacebookFake, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., FacebookAdapter]:
    """Build an adapter for the fake from Settings, as the daemon does."""

    def make(*, token: str | None = None, timeout: float = 5.0) -> FacebookAdapter:
        monkeypatch.setenv(TOKEN_ENV, token or facebook_fake.token)
        account = {"platform": "facebook", "base_url": facebook_fake.url, "token_env": TOKEN_ENV}
        account["page_id"] = facebook_fake.page_id
        return build(FacebookAdapter, "fb", account, timeout=timeout)

    return make


publish_request = Requests("fb", TEXT, link=LINK, title="Wertstoffhof", key="d-1-fb")


def image(tmp_path: Path, name: str = "wertstoffhof.jpg") -> Path:
    path = tmp_path / name
    path.write_bytes(b"\xff\xd8\xff\xe0fake jpeg " + name.encode())
    return path


def test_text_post_carries_the_message_and_the_canonical_link(
    facebook_fake: FacebookFake, connect: Callable[..., FacebookAdapter]
) -> None:
    """A text post is one feed post: the text as message, the canonical link as link card."""
    adapter = connect()
    result = run(adapter, lambda: adapter.publish(publish_request()))

    [post] = facebook_fake.posts
    assert (post.message, post.link, post.photo_ids) == (TEXT, LINK, [])
    assert result.remote_id == post.id
    page, _sep, number = post.id.partition("_")
    assert result.remote_url == f"https://www.facebook.com/{page}/posts/{number}"
    [sent] = facebook_fake.requests_to(FEED)
    assert sent.header("authorization") == f"Bearer {facebook_fake.token}"
    assert "access_token" not in sent.query  # the token never travels in a URL


def test_images_go_up_unpublished_with_alt_text_and_are_attached(
    facebook_fake: FacebookFake, connect: Callable[..., FacebookAdapter], tmp_path: Path
) -> None:
    """Each image is uploaded unpublished with alt_text_custom, then attached to one post."""
    first, second = image(tmp_path, "a.jpg"), image(tmp_path, "b.png")
    media = (
        Media(first, "Der Eingang des Wertstoffhofs", "image/jpeg"),
        Media(second, "Container für Grünschnitt", "image/png"),
    )
    adapter = connect()
    run(adapter, lambda: adapter.publish(publish_request(media=media)))

    [post] = facebook_fake.posts
    photos = [facebook_fake.photos[i] for i in post.photo_ids]
    assert [p.alt for p in photos] == ["Der Eingang des Wertstoffhofs", "Container für Grünschnitt"]
    assert [(p.filename, p.content_type, p.published) for p in photos] == [
        ("a.jpg", "image/jpeg", False),
        ("b.png", "image/png", False),
    ]
    assert [p.size for p in photos] == [len(first.read_bytes()), len(second.read_bytes())]
    assert post.message == TEXT
    assert post.link is None  # the link stays in the message
    [sent] = facebook_fake.requests_to(FEED)
    form = {k: v.text for k, v in sent.form().items()}
    assert json.loads(form["attached_media[0]"]) == {"media_fbid": post.photo_ids[0]}


def test_unreadable_image_is_rejected_before_anything_is_sent(
    facebook_fake: FacebookFake, connect: Callable[..., FacebookAdapter], tmp_path: Path
) -> None:
    """A missing image file fails the post for good without a request."""
    unreadable_image_refused(connect(), publish_request, tmp_path)
    assert facebook_fake.requests == []


def test_lost_photo_upload_answer_is_transient(
    facebook_fake: FacebookFake, connect: Callable[..., FacebookAdapter], tmp_path: Path
) -> None:
    """An unpublished photo is invisible, so a lost upload answer is safe to retry."""
    facebook_fake.inject(lose_response(), route=PHOTOS)
    adapter = connect()
    media = (Media(image(tmp_path), "Alt"),)
    with pytest.raises(Transient):
        run(adapter, lambda: adapter.publish(publish_request(media=media)))
    assert facebook_fake.posts == []


def test_lost_answer_is_unknown_and_the_lookup_finds_the_post(
    facebook_fake: FacebookFake, connect: Callable[..., FacebookAdapter]
) -> None:
    """The post lands but its answer is lost: UnknownOutcome; find_existing finds it by
    message and link among the Page's published posts, so nothing is sent twice."""
    facebook_fake.inject(lose_response(), route=FEED)
    adapter = connect()

    _landed, found = run(
        adapter, lambda: lost_then_found(adapter, publish_request(), lambda: facebook_fake.posts)
    )
    assert found.remote_url is not None
    assert len(facebook_fake.posts) == 1
    [lookup] = facebook_fake.requests_to("GET /{page}/published_posts")
    assert lookup.arg("fields") == "id,message,created_time,permalink_url"


def test_lookup_ignores_older_posts_and_posts_without_the_link(
    facebook_fake: FacebookFake, connect: Callable[..., FacebookAdapter]
) -> None:
    """Only a post at least as new as the delivery, with the same message and link, counts."""
    adapter = connect()
    bare = "Der Wertstoffhof hat länger geöffnet."

    async def scenario() -> None:
        await adapter.publish(publish_request(bare))
        await adapter.publish(publish_request())
        assert await adapter.find_existing(publish_request(bare)) is None  # no link in it
        later = publish_request(created_at=datetime.now(UTC) + timedelta(minutes=10))
        assert await adapter.find_existing(later) is None  # the post is older than that
        assert await adapter.find_existing(publish_request()) is not None

    run(adapter, scenario)


def test_duplicate_506_of_this_delivery_returns_the_first_post(
    facebook_fake: FacebookFake, connect: Callable[..., FacebookAdapter]
) -> None:
    """Facebook's duplicate guard (506) on a resend answers with the copy already there."""
    adapter = connect()
    first, second = run(adapter, lambda: publish_twice(adapter, publish_request()))
    assert first == second
    assert [r.status for r in facebook_fake.requests_to(FEED)] == [200, 400]
    assert len(facebook_fake.posts) == 1


def test_duplicate_506_of_an_older_post_is_rejected(
    facebook_fake: FacebookFake, connect: Callable[..., FacebookAdapter]
) -> None:
    """A duplicate of an earlier, different delivery is refused with Facebook's words."""
    adapter = connect()

    async def scenario() -> None:
        await adapter.publish(publish_request())
        newer = publish_request(created_at=datetime.now(UTC) + timedelta(minutes=10))
        with pytest.raises(Rejected, match="Duplicate status message") as caught:
            await adapter.publish(newer)
        assert caught.value.http_status == 400

    run(adapter, scenario)
    assert len(facebook_fake.posts) == 1


@pytest.mark.parametrize("code", THROTTLING)
def test_throttling_codes_are_rate_limits_that_block_the_next_request(
    facebook_fake: FacebookFake, connect: Callable[..., FacebookAdapter], code: int
) -> None:
    """Graph's throttling codes (4, 17, 32, 341, 613, 80001) are RateLimited; without a hint
    the wait is DEFAULT_THROTTLE_WAIT and no request goes out before it."""
    facebook_fake.inject(graph_fault(code, f"(#{code}) limit reached"), route=FEED)
    adapter = connect()

    async def scenario() -> None:
        before = datetime.now(UTC)
        until = await rate_limited_until(
            lambda: adapter.publish(publish_request()), match=f"#{code}"
        )
        assert before + DEFAULT_THROTTLE_WAIT <= until <= datetime.now(UTC) + DEFAULT_THROTTLE_WAIT
        with pytest.raises(RateLimited):
            await adapter.verify()

    run(adapter, scenario)
    assert len(facebook_fake.requests) == 1
    assert facebook_fake.posts == []


def test_business_use_case_header_sets_the_wait(
    facebook_fake: FacebookFake, connect: Callable[..., FacebookAdapter]
) -> None:
    """estimated_time_to_regain_access (minutes) in X-Business-Use-Case-Usage is the wait."""
    facebook_fake.inject(
        graph_fault(80001, "(#80001) too many calls", regain_minutes=7), route=FEED
    )
    adapter = connect()

    async def scenario() -> None:
        until = await rate_limited_until(lambda: adapter.publish(publish_request()))
        assert timedelta(minutes=6) < until - datetime.now(UTC) <= timedelta(minutes=7)

    run(adapter, scenario)


def test_usage_headers_of_a_success_hold_back_the_next_request(
    facebook_fake: FacebookFake, connect: Callable[..., FacebookAdapter]
) -> None:
    """A success whose usage headers say access returns in N minutes blocks until then."""
    adapter = connect()

    async def scenario() -> None:
        await adapter.verify()
        facebook_fake.regain_minutes = 3
        await adapter.verify()
        until = await rate_limited_until(lambda: adapter.publish(publish_request()))
        assert timedelta(minutes=2) < until - datetime.now(UTC) <= timedelta(minutes=3)

    run(adapter, scenario)
    assert facebook_fake.requests_to(FEED) == []


def test_invalid_token_190_is_an_auth_error_without_the_token(
    facebook_fake: FacebookFake, connect: Callable[..., FacebookAdapter]
) -> None:
    """Error 190 (token invalid or expired) becomes AuthError; the token never shows."""
    token = "EAAGrevoked-4f9e2c"
    adapter = connect(token=token)
    for error in run(adapter, lambda: auth_failures(adapter, publish_request(), "#190")):
        assert token not in str(error)
    assert facebook_fake.posts == []


def test_missing_permission_is_an_auth_error(
    facebook_fake: FacebookFake, connect: Callable[..., FacebookAdapter]
) -> None:
    """Error 200 (pages_manage_posts not granted) pauses the account like a bad token."""
    facebook_fake.inject(graph_fault(200, "(#200) Permissions error"), route=FEED)
    adapter = connect()
    with pytest.raises(AuthError, match="Permissions error"):
        run(adapter, lambda: adapter.publish(publish_request()))


@pytest.mark.parametrize("fault", [graph_fault(2, "Service temporarily unavailable"), status(503)])
def test_temporary_errors_are_transient(
    facebook_fake: FacebookFake, connect: Callable[..., FacebookAdapter], fault: Any
) -> None:
    """Error code 2 and HTTP 5xx are Transient: not processed, safe to try again."""
    facebook_fake.inject(fault, route=FEED)
    adapter = connect()

    error = run(adapter, lambda: transient_then_published(adapter, publish_request()))
    assert error.sent is False
    assert len(facebook_fake.posts) == 1


def test_delete_removes_the_post_and_tolerates_it_being_gone(
    facebook_fake: FacebookFake, connect: Callable[..., FacebookAdapter]
) -> None:
    """Retracting deletes the post; deleting it again (error 100/33) is not an error."""
    adapter = connect()
    run(adapter, lambda: delete_twice(adapter, publish_request(), lambda: facebook_fake.posts))
    assert [r.status for r in facebook_fake.requests_to("DELETE /{node}")] == [200, 400]


def test_metrics_read_shares_reactions_and_comments(
    facebook_fake: FacebookFake, connect: Callable[..., FacebookAdapter]
) -> None:
    """Reactions are likes, shares reposts, comments replies; an unshared post has 0 shares."""
    adapter = connect()

    async def scenario() -> None:
        result = await adapter.publish(publish_request())
        metrics = await adapter.metrics(result.remote_id)
        assert metrics is not None
        assert (metrics.likes, metrics.reposts, metrics.replies, metrics.views) == (0, 0, 0, None)
        [post] = facebook_fake.posts
        post.reactions, post.shares, post.comments = 12, 3, 4
        metrics = await adapter.metrics(result.remote_id)
        assert metrics is not None
        assert (metrics.likes, metrics.reposts, metrics.replies) == (12, 3, 4)

    run(adapter, scenario)


def test_verify_and_followers_name_the_page(
    facebook_fake: FacebookFake, connect: Callable[..., FacebookAdapter]
) -> None:
    """accounts check shows the Page's name, link and follower count."""
    facebook_fake.followers = 4321
    adapter = connect()

    async def scenario() -> tuple[Any, int | None]:
        return await adapter.verify(), await adapter.followers()

    info, followers = run(adapter, scenario)
    assert info.name == "Zweckverband Städtedreieck"
    assert info.url == f"https://www.facebook.com/{facebook_fake.page_id}"
    assert info.followers == followers == 4321
    assert info.token_expires_at is None  # Page tokens do not expire
