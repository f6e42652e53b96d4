"""The X adapter against an OpenAPI-validating X fake over real HTTP on 127.0.0.1.

The fake checks every request against ``x-openapi.json`` (and the token endpoint
against X's documented form); the ``start_fake`` fixture fails any test whose
requests broke that contract (``fake.validation_errors == []``).
"""

from __future__ import annotations

import asyncio
import json
import stat
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.adapterfixture import (
    Requests,
    build,
    delete_twice,
    lost_then_found,
    rate_limited_until,
    refused,
    run,
    transient_then_published,
)
from tests.fakes.server import lose_response, status
from tests.fakes.x import DEFAULT_REFRESH, DUPLICATE, USER_ID, XFake, t_co

from crosspost.adapters.x import XAdapter, expand, rate_limit_reset
from crosspost.counting import count_x
from crosspost.exceptions import AuthError, RateLimited, Rejected, Transient
from crosspost.models import Media, PostMetrics

TOKEN_ENV = "CROSSPOST_TEST_X_TOKEN"
LINK = "https://www.zv-staedtedreieck.de/aktuelles/stadtfest"
TEXT = f"Stadtfest am Samstag: Musik & Markt <ab 14 Uhr> 🎉\n\n{LINK}"
TWEETS = "POST /2/tweets"
TOKEN = "POST /2/oauth2/token"


@pytest.fixture
def refresh_file(tmp_path: Path) -> Path:
    """The refresh token as the admin configured it (0600)."""
    path = tmp_path / "x-refresh-token"
    path.write_text(DEFAULT_REFRESH + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.fixture
def sessions(tmp_path: Path) -> Path:
    """Where the adapter keeps rotated tokens (``<state_dir>/sessions``)."""
    return tmp_path / "state" / "sessions"


@pytest.fixture
def connect(
    x_fake: XFake, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, refresh_file: Path
) -> Callable[..., XAdapter]:
    """Build an adapter for the fake from Settings, as the daemon does (refresh configured)."""

    def make(
        *, token: str | None = None, timeout: float = 5.0, refresh: bool = True, **account: Any
    ) -> XAdapter:
        monkeypatch.setenv(TOKEN_ENV, token or x_fake.token)
        table: dict[str, Any] = {"platform": "x", "base_url": x_fake.url, "token_env": TOKEN_ENV}
        if refresh:
            table |= {"refresh_token_file": str(refresh_file), "client_id": x_fake.client_id}
        return build(XAdapter, "x", table | account, timeout=timeout, state_dir=tmp_path / "state")

    return make


publish_request = Requests("x", TEXT, link=LINK, title="Stadtfest", key="d-1-x")


def image(tmp_path: Path, name: str = "stadtfest.png") -> Path:
    path = tmp_path / name
    path.write_bytes(b"\x89PNG\r\n\x1a\n fake image")
    return path


# -- publishing ----------------------------------------------------------------------------------


def test_publish_creates_one_post_with_the_exact_text(
    x_fake: XFake, connect: Callable[..., XAdapter]
) -> None:
    """POST /2/tweets with the text unchanged and the user token as Bearer; 201 gives
    the id and the x.com URL."""
    adapter = connect()
    result = run(adapter, lambda: adapter.publish(publish_request()))

    [post] = x_fake.tweets
    assert post.text == TEXT
    assert result.remote_id == post.id
    assert result.remote_url == f"https://x.com/i/web/status/{post.id}"
    [call] = x_fake.requests_to(TWEETS)
    assert call.status == 201
    assert call.header("authorization") == f"Bearer {x_fake.token}"
    assert call.json() == {"text": TEXT}


def test_an_image_goes_up_with_its_alt_text(
    x_fake: XFake, connect: Callable[..., XAdapter], tmp_path: Path
) -> None:
    """media/upload (multipart, tweet_image) then media/metadata with the alt text, then
    the post with the media id."""
    path = image(tmp_path)
    alt = "Bühne auf dem Marktplatz, davor viele Menschen"
    adapter = connect()
    run(adapter, lambda: adapter.publish(publish_request(media=(Media(path, alt, "image/png"),))))

    [media] = x_fake.media.values()
    assert (media.alt, media.filename, media.content_type) == (alt, "stadtfest.png", "image/png")
    assert media.size == path.stat().st_size
    [post] = x_fake.tweets
    assert post.media_ids == [media.id]
    [upload] = x_fake.requests_to("POST /2/media/upload")
    assert upload.form()["media_category"].text == "tweet_image"


def test_unreadable_or_oversized_images_are_rejected_before_sending(
    x_fake: XFake, connect: Callable[..., XAdapter], tmp_path: Path
) -> None:
    """A missing file, a file over 5 MB, an alt text over 1000 characters and a fifth
    image fail for good without a request."""
    big = tmp_path / "gross.jpg"
    big.write_bytes(b"\xff" * (5 * 1024 * 1024 + 1))
    small = image(tmp_path)
    cases = [
        ((Media(tmp_path / "fehlt.jpg", "Alt"),), r"fehlt\.jpg"),
        ((Media(big, "Alt"),), "5 MB"),
        ((Media(small, "A" * 1001),), "1000"),
        (tuple(Media(small, f"Bild {n}") for n in range(5)), "at most 4"),
    ]
    adapter = connect()

    async def scenario() -> None:
        for media, expected in cases:
            with pytest.raises(Rejected, match=expected) as caught:
                await adapter.publish(publish_request(media=media))
            assert caught.value.sent is False

    run(adapter, scenario)
    assert x_fake.requests == []


def test_too_long_text_is_rejected_with_xs_words(
    x_fake: XFake, connect: Callable[..., XAdapter]
) -> None:
    """X weighs CJK and emoji double: 150 "日" weigh 300 > 280 and X answers 400; the
    error says so in X's words, not the generic "invalid parameters"."""
    text = "日" * 150
    assert count_x(text) == 300
    adapter = connect()
    refusal = refused(adapter, publish_request(text), "Your Tweet text is too long")
    assert refusal.http_status == 400
    assert x_fake.tweets == []


# -- never twice ---------------------------------------------------------------------------------


def test_lost_answer_is_unknown_then_found_and_a_resend_finds_the_duplicate(
    x_fake: XFake, connect: Callable[..., XAdapter]
) -> None:
    """The post lands but the answer is lost: UnknownOutcome. find_existing recognises it
    although X shows t.co links and escaped "&<>"; sending again meets X's duplicate
    refusal, which the adapter settles by the same lookup: one post, same id."""
    x_fake.inject(lose_response(), route=TWEETS)
    adapter = connect()

    async def scenario() -> None:
        _landed, found = await lost_then_found(adapter, publish_request(), lambda: x_fake.tweets)
        resent = await adapter.publish(publish_request())
        assert resent == found

    run(adapter, scenario)
    assert len(x_fake.tweets) == 1
    assert [r.status for r in x_fake.requests_to(TWEETS)] == [None, 403]


def test_a_duplicate_of_an_older_post_is_rejected(
    x_fake: XFake, connect: Callable[..., XAdapter]
) -> None:
    """X refuses the text because an older post has it, but none since this delivery was
    created: that is not ours, so the post is rejected, naming the duplicate."""
    adapter = connect()

    async def scenario() -> None:
        await adapter.publish(publish_request())
        later = publish_request(created_at=datetime.now(UTC) + timedelta(hours=1))
        with pytest.raises(Rejected, match="duplicate") as caught:
            await adapter.publish(later)
        assert DUPLICATE in caught.value.message

    run(adapter, scenario)
    assert len(x_fake.tweets) == 1


def test_find_existing_matches_only_this_text_and_ignores_the_media_link(
    x_fake: XFake, connect: Callable[..., XAdapter], tmp_path: Path
) -> None:
    """Reconciling compares the expanded text: another post with the same link does not
    count, the t.co link X appends for an image is left out, nothing matches a text
    that was never posted."""
    other = f"Das Stadtfest braucht noch Helferinnen und Helfer.\n\n{LINK}"
    media = (Media(image(tmp_path), "Bühne", "image/png"),)
    adapter = connect()

    async def scenario() -> None:
        await adapter.publish(publish_request(other))
        mine = await adapter.publish(publish_request(media=media))
        assert await adapter.find_existing(publish_request(media=media)) == mine
        assert await adapter.find_existing(publish_request(f"Noch nicht da.\n\n{LINK}")) is None

    run(adapter, scenario)
    [call, *_] = x_fake.requests_to("GET /2/users/{id}/tweets")
    assert call.params["id"] == USER_ID
    assert call.arg("tweet.fields") == "created_at,entities"


def test_expand_restores_links_and_escapes() -> None:
    """X's stored form back to the text that was sent."""
    short, media = t_co(LINK), t_co("media")
    post = {
        "text": f"Musik &amp; Markt &lt;14 Uhr&gt; {short} {media}",
        "entities": {
            "urls": [
                {"start": 0, "end": 1, "url": short, "expanded_url": LINK},
                {"start": 0, "end": 1, "url": media, "expanded_url": "x", "media_key": "3_1"},
            ]
        },
    }
    text, links = expand(post)
    assert text.strip() == f"Musik & Markt <14 Uhr> {LINK}"
    assert links == [LINK]


# -- rate limits ----------------------------------------------------------------------------------


def test_an_exhausted_window_blocks_the_next_request_until_the_reset(
    x_fake: XFake, connect: Callable[..., XAdapter]
) -> None:
    """x-rate-limit-remaining 0: the next request is not sent before x-rate-limit-reset."""
    x_fake.rate_limit = 1
    adapter = connect()

    async def scenario() -> None:
        await adapter.verify()
        until = await rate_limited_until(lambda: adapter.followers())
        assert timedelta(minutes=14) < until - datetime.now(UTC) <= timedelta(minutes=15)

    run(adapter, scenario)
    assert len(x_fake.requests) == 1


def test_the_daily_posting_cap_waits_for_its_own_reset(
    x_fake: XFake, connect: Callable[..., XAdapter]
) -> None:
    """x-user-limit-24hour-remaining 0 after a post: nothing goes out until that reset,
    a day away, although the 15-minute window has room."""
    x_fake.posts_per_day = 1
    adapter = connect()

    async def scenario() -> None:
        await adapter.publish(publish_request())
        until = await rate_limited_until(
            lambda: adapter.publish(publish_request(f"Zweiter Beitrag.\n\n{LINK}"))
        )
        assert timedelta(hours=23) < until - datetime.now(UTC) <= timedelta(hours=24)

    run(adapter, scenario)
    assert len(x_fake.requests_to(TWEETS)) == 1


def test_a_429_waits_for_the_latest_exhausted_reset() -> None:
    """On 429 the reset of every budget at 0 counts, the latest wins; without any, the
    window's reset."""
    import httpx

    now = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
    in_15_min, in_20_h = int(now.timestamp()) + 900, int(now.timestamp()) + 72000
    both = httpx.Response(
        429,
        headers={
            "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": str(in_15_min),
            "x-user-limit-24hour-remaining": "0",
            "x-user-limit-24hour-reset": str(in_20_h),
        },
    )
    assert rate_limit_reset(both, now) == datetime.fromtimestamp(in_20_h, UTC)
    bare = httpx.Response(429, headers={"x-rate-limit-reset": str(in_15_min)})
    assert rate_limit_reset(bare, now) == datetime.fromtimestamp(in_15_min, UTC)
    fine = httpx.Response(200, headers={"x-rate-limit-remaining": "7"})
    assert rate_limit_reset(fine, now) is None


def test_retry_after_on_429_is_honoured(x_fake: XFake, connect: Callable[..., XAdapter]) -> None:
    """A 429 from X's own limiter: RateLimited until the window resets, nothing posted."""
    x_fake.rate_limit = 0
    adapter = connect()
    with pytest.raises(RateLimited) as caught:
        run(adapter, lambda: adapter.publish(publish_request()))
    assert caught.value.until is not None
    assert caught.value.until > datetime.now(UTC) + timedelta(minutes=14)
    assert x_fake.tweets == []


# -- the token -----------------------------------------------------------------------------------


def test_an_expired_token_is_refreshed_and_the_rotated_refresh_token_kept(
    x_fake: XFake, connect: Callable[..., XAdapter], refresh_file: Path, sessions: Path
) -> None:
    """401 on an expired access token: one refresh (form, client id, no Bearer), the
    request goes again; the new refresh token is stored 0600 in the state folder, the
    configured file is left alone, and the expiry is known (stored beside it; no reason
    to warn the admin, the adapter renews it itself)."""
    x_fake.expire_access_tokens()
    adapter = connect()
    run(adapter, lambda: adapter.publish(publish_request()))

    assert len(x_fake.tweets) == 1
    [refresh] = x_fake.requests_to(TOKEN)
    assert refresh.header("authorization") is None
    assert refresh.form()["client_id"].text == x_fake.client_id
    stored = sessions / "x-refresh-token"
    assert stored.read_text().strip() == x_fake.refresh_token != DEFAULT_REFRESH
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE((sessions / "x-access-token").stat().st_mode) == 0o600
    assert refresh_file.read_text().strip() == DEFAULT_REFRESH
    state = json.loads((sessions / "x-access-token").read_text())
    expires = datetime.fromisoformat(state["expires_at"])
    assert timedelta(hours=1, minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=2)
    assert adapter.token_expires_at() is None
    assert [r.status for r in x_fake.requests_to(TWEETS)] == [401, 201]


def test_the_next_refresh_uses_the_rotated_token_and_a_restart_the_stored_access_token(
    x_fake: XFake, connect: Callable[..., XAdapter]
) -> None:
    """X rotates refresh tokens: the second refresh must spend the stored one (the
    configured one is void by then). A new adapter (a restart, or the CLI) takes the
    stored access token and refreshes nothing."""
    x_fake.expire_access_tokens()
    first = connect()
    run(first, first.verify)
    x_fake.expire_access_tokens()
    second = connect()
    run(second, second.verify)
    assert [r.status for r in x_fake.requests_to(TOKEN)] == [200, 200]

    third = connect()
    info = run(third, third.verify)
    assert info.name == "@staedtedreieck"
    assert len(x_fake.requests_to(TOKEN)) == 2


def test_concurrent_requests_refresh_only_once(
    x_fake: XFake, connect: Callable[..., XAdapter]
) -> None:
    """Several requests meeting 401 at once share one refresh: a second one would
    spend the already rotated token and fail."""
    x_fake.expire_access_tokens()
    adapter = connect()

    async def scenario() -> list[Any]:
        return list(await asyncio.gather(adapter.verify(), adapter.followers(), adapter.verify()))

    infos = run(adapter, scenario)
    assert infos[1] == 4321
    assert len(x_fake.requests_to(TOKEN)) == 1


def test_a_token_known_to_be_expired_is_refreshed_before_the_request(
    x_fake: XFake, connect: Callable[..., XAdapter], sessions: Path
) -> None:
    """The stored expiry has passed: refresh first, so no request meets a 401."""
    x_fake.expire_access_tokens()
    run(adapter := connect(), adapter.verify)
    state = json.loads((sessions / "x-access-token").read_text())
    state["expires_at"] = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    (sessions / "x-access-token").write_text(json.dumps(state))
    x_fake.clear_log()

    run(adapter := connect(), adapter.verify)
    assert [r.route for r in x_fake.requests] == [TOKEN, "GET /2/users/me"]
    assert [r.status for r in x_fake.requests] == [200, 200]


def test_a_revoked_app_is_an_auth_error_without_any_token_in_it(
    x_fake: XFake, connect: Callable[..., XAdapter]
) -> None:
    """The user revoked the app: 401, then the refresh is refused too: AuthError telling
    the admin to authorise again; no token appears in the message."""
    x_fake.revoke()
    adapter = connect()
    with pytest.raises(AuthError, match="authorise the app again") as caught:
        run(adapter, lambda: adapter.publish(publish_request()))
    for secret in (x_fake.token, DEFAULT_REFRESH, "fake-x-"):
        assert secret not in caught.value.message
    assert x_fake.tweets == []


def test_without_refresh_a_401_says_how_to_renew(
    x_fake: XFake, connect: Callable[..., XAdapter]
) -> None:
    """No refresh configured: the 401 is an AuthError explaining the two-hour lifetime."""
    x_fake.expire_access_tokens()
    adapter = connect(refresh=False)
    with pytest.raises(AuthError, match="two hours") as caught:
        run(adapter, lambda: adapter.publish(publish_request()))
    assert caught.value.http_status == 401
    assert x_fake.requests_to(TOKEN) == []


# -- transient failures --------------------------------------------------------------------------


def test_server_error_is_transient(x_fake: XFake, connect: Callable[..., XAdapter]) -> None:
    """503: not processed, Transient, and the next try posts."""
    x_fake.inject(status(503), route=TWEETS)
    adapter = connect()

    run(adapter, lambda: transient_then_published(adapter, publish_request()))
    assert len(x_fake.tweets) == 1


def test_a_lost_upload_answer_is_transient(
    x_fake: XFake, connect: Callable[..., XAdapter], tmp_path: Path
) -> None:
    """Media nobody uses expires unseen: a lost upload answer is safe to retry."""
    x_fake.inject(lose_response(), route="POST /2/media/upload")
    adapter = connect()
    media = (Media(image(tmp_path), "Bühne", "image/png"),)
    with pytest.raises(Transient):
        run(adapter, lambda: adapter.publish(publish_request(media=media)))
    assert x_fake.requests_to(TWEETS) == []


# -- delete, metrics, followers, verify -----------------------------------------------------------


@pytest.mark.parametrize("missing", ["not_found", "false"])
def test_delete_removes_the_post_and_tolerates_it_being_gone(
    x_fake: XFake, connect: Callable[..., XAdapter], missing: str
) -> None:
    """DELETE removes it; deleting again is done whether X answers 404 or deleted:false."""
    x_fake.missing_delete = missing
    adapter = connect()

    run(adapter, lambda: delete_twice(adapter, publish_request(), lambda: x_fake.tweets))
    assert len(x_fake.requests_to("DELETE /2/tweets/{id}")) == 2


def test_metrics_come_from_public_metrics(x_fake: XFake, connect: Callable[..., XAdapter]) -> None:
    """likes, reposts, replies and views map from like/retweet/reply/impression counts;
    a deleted post has none."""
    adapter = connect()

    async def scenario() -> tuple[PostMetrics | None, PostMetrics | None]:
        result = await adapter.publish(publish_request())
        x_fake.tweets[0].metrics.update(
            like_count=7, retweet_count=2, reply_count=3, impression_count=512
        )
        counted = await adapter.metrics(result.remote_id)
        await adapter.delete(result.remote_id)
        return counted, await adapter.metrics(result.remote_id)

    counted, gone = run(adapter, scenario)
    assert counted == PostMetrics(likes=7, reposts=2, replies=3, views=512)
    assert gone is None


def test_verify_names_the_account_with_followers_and_token_expiry(
    x_fake: XFake, connect: Callable[..., XAdapter]
) -> None:
    """accounts check: handle, profile URL, display name, followers; the token expiry is
    the configured one, not the two-hour access token's that a refresh renewed (routine)."""
    x_fake.expire_access_tokens()
    adapter = connect()
    info = run(adapter, adapter.verify)
    assert (info.name, info.url) == ("@staedtedreieck", "https://x.com/staedtedreieck")
    assert info.detail == "Zweckverband Städtedreieck"
    assert info.followers == 4321
    assert len(x_fake.requests_to(TOKEN)) == 1
    assert info.token_expires_at is None
    configured = datetime(2027, 3, 1, tzinfo=UTC)
    adapter = connect(token_expires_at=configured)
    assert run(adapter, adapter.verify).token_expires_at == configured


# -- the fake itself ----------------------------------------------------------------------------


def test_the_fake_refuses_requests_the_x_contract_does_not_allow(x_fake: XFake) -> None:
    """Self-check of the fake: an unknown body field is answered 400 and recorded, so an
    adapter bug cannot pass unnoticed."""
    request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1
        f"{x_fake.url}/2/tweets",
        data=json.dumps({"text": "Hallo", "visibility": "public"}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {x_fake.token}"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=5)  # noqa: S310 - see above
    assert answer.value.code == 400
    [failure] = x_fake.validation_errors
    assert "visibility" in " ".join(failure.errors)
    assert x_fake.tweets == []
    x_fake.validation_errors.clear()  # seen: the fixture's final check is for the adapter
