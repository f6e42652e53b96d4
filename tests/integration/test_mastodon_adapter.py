"""The Mastodon adapter against a spec-validating fake instance over real HTTP on 127.0.0.1.

Every test ends with the fixture's check that no request broke the Mastodon
API contract (``fake.validation_errors == []``).
"""

from __future__ import annotations

import asyncio
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
    refused,
    run,
    unreadable_image_refused,
)
from tests.fakes.mastodon import MastodonFake
from tests.fakes.server import delay, lose_response, rate_limit, reset, status

from crosspost.adapters.mastodon import MastodonAdapter, idempotency_header
from crosspost.exceptions import RateLimited, Transient, UnknownOutcome
from crosspost.models import Media, PublishRequest

TOKEN_ENV = "CROSSPOST_TEST_MASTODON_TOKEN"
LINK = "https://www.zv-staedtedreieck.de/aktuelles/weihnachtsmarkt"
TEXT = f"Der Weihnachtsmarkt im Städtedreieck öffnet am 1. Dezember um 16 Uhr.\n\n{LINK}"
STATUSES = "POST /api/v1/statuses"


@pytest.fixture
def connect(
    mastodon_fake: MastodonFake, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., MastodonAdapter]:
    """Build an adapter for the fake from Settings, as the daemon does."""

    def make(*, token: str | None = None, timeout: float = 5.0, **account: Any) -> MastodonAdapter:
        monkeypatch.setenv(TOKEN_ENV, token or mastodon_fake.token)
        table = {"platform": "mastodon", "base_url": mastodon_fake.url, "token_env": TOKEN_ENV}
        adapter = build(MastodonAdapter, "m", table | account, timeout=timeout)
        adapter.media_poll_first = 0.01  # keep the 206 polling quick
        return adapter

    return make


def publish_request(
    text: str = TEXT,
    *,
    key: str = "d-1-7f3a",
    media: tuple[Media, ...] = (),
    created_at: datetime | None = None,
) -> PublishRequest:
    requests = Requests("m", text, link=LINK, title="Weihnachtsmarkt", key=key)
    return requests(media=media, created_at=created_at)


def test_publish_creates_one_status_with_the_exact_text(
    mastodon_fake: MastodonFake, connect: Callable[..., MastodonAdapter]
) -> None:
    """Publishing posts the text unchanged, once, with visibility and language from the config."""
    adapter = connect(visibility="unlisted", language="de")
    result = run(adapter, lambda: adapter.publish(publish_request()))

    [created] = mastodon_fake.statuses
    assert created.text == TEXT
    assert (created.visibility, created.language) == ("unlisted", "de")
    assert result.remote_id == created.id
    assert result.remote_url == f"{mastodon_fake.url}/@staedtedreieck/{created.id}"
    [post] = mastodon_fake.requests_to(STATUSES)
    assert post.header("idempotency-key") == "d-1-7f3a"
    assert post.header("authorization") == f"Bearer {mastodon_fake.token}"


@pytest.mark.parametrize("polls", [0, 3])
def test_image_goes_up_with_its_alt_text_and_processing_is_awaited(
    mastodon_fake: MastodonFake,
    connect: Callable[..., MastodonAdapter],
    tmp_path: Path,
    polls: int,
) -> None:
    """The alt text becomes the media description; 206 answers are polled until 200."""
    mastodon_fake.media_polls = polls
    image = tmp_path / "weihnachtsmarkt.jpg"
    image.write_bytes(b"\xff\xd8\xff\xe0fake jpeg")
    alt = "Beleuchtete Marktstände auf dem Platz der Freiheit"
    adapter = connect()
    media = (Media(path=image, alt=alt, mime="image/jpeg"),)
    run(adapter, lambda: adapter.publish(publish_request(media=media)))

    [attachment] = mastodon_fake.media.values()
    assert attachment.description == alt
    assert (attachment.filename, attachment.content_type) == ("weihnachtsmarkt.jpg", "image/jpeg")
    assert attachment.size == len(image.read_bytes())
    [created] = mastodon_fake.statuses
    assert created.media_ids == [attachment.id]
    polled = [r.status for r in mastodon_fake.requests_to("GET /api/v1/media/{id}")]
    assert polled == ([206] * polls + [200] if polls else [])


def test_unreadable_image_is_rejected_before_anything_is_sent(
    mastodon_fake: MastodonFake, connect: Callable[..., MastodonAdapter], tmp_path: Path
) -> None:
    """A missing image file fails the post for good without a request."""
    unreadable_image_refused(connect(), publish_request, tmp_path)
    assert mastodon_fake.requests_to("POST /api/v2/media") == []


def test_same_idempotency_key_twice_gives_one_status(
    mastodon_fake: MastodonFake, connect: Callable[..., MastodonAdapter]
) -> None:
    """A resend with the delivery's key returns the first status instead of a second one."""
    adapter = connect()
    first, second = run(adapter, lambda: publish_twice(adapter, publish_request()))
    assert first == second
    assert len(mastodon_fake.requests_to(STATUSES)) == 2
    assert len(mastodon_fake.statuses_containing(LINK)) == 1


def test_different_deliveries_get_different_keys(
    mastodon_fake: MastodonFake, connect: Callable[..., MastodonAdapter]
) -> None:
    """Two deliveries of the same text are two statuses (keys differ per delivery)."""
    adapter = connect()

    async def both() -> None:
        await adapter.publish(publish_request(key="d-1"))
        await adapter.publish(publish_request(key="d-2"))

    run(adapter, both)
    assert len(mastodon_fake.statuses_containing(LINK)) == 2


def test_server_error_is_transient(
    mastodon_fake: MastodonFake, connect: Callable[..., MastodonAdapter]
) -> None:
    """503 means not processed: Transient, nothing posted, and the next try succeeds."""
    mastodon_fake.inject(status(503), route=STATUSES)
    adapter = connect()

    async def scenario() -> None:
        with pytest.raises(Transient) as caught:
            await adapter.publish(publish_request())
        assert caught.value.http_status == 503
        assert caught.value.sent is False
        assert mastodon_fake.statuses == []
        await adapter.publish(publish_request())

    run(adapter, scenario)
    assert len(mastodon_fake.statuses) == 1


def test_429_with_retry_after_blocks_requests_until_then(
    mastodon_fake: MastodonFake, connect: Callable[..., MastodonAdapter]
) -> None:
    """429 + Retry-After: RateLimited until now+N, and no request goes out before that instant."""
    mastodon_fake.inject(rate_limit(retry_after=1), route=STATUSES)
    adapter = connect()

    async def scenario() -> datetime:
        before = datetime.now(UTC)
        until = await rate_limited_until(lambda: adapter.publish(publish_request()))
        assert before + timedelta(seconds=1) <= until <= datetime.now(UTC) + timedelta(seconds=1)
        with pytest.raises(RateLimited) as second:
            await adapter.publish(publish_request())
        assert second.value.until == until
        assert len(mastodon_fake.requests_to(STATUSES)) == 1  # the second was never sent
        # Waiting out the limit is the behaviour under test (plus a margin for timer rounding).
        await asyncio.sleep((until - datetime.now(UTC)).total_seconds() + 0.05)
        await adapter.publish(publish_request())
        return until

    until = run(adapter, scenario)
    posts = mastodon_fake.requests_to(STATUSES)
    assert [p.status for p in posts] == [429, 200]
    assert posts[1].received_at >= until
    assert len(mastodon_fake.statuses) == 1


def test_exhausted_rate_limit_headers_block_until_the_reset(
    mastodon_fake: MastodonFake, connect: Callable[..., MastodonAdapter]
) -> None:
    """X-RateLimit-Remaining 0 stops the next request until X-RateLimit-Reset (ISO 8601)."""
    mastodon_fake.rate_limit = 2
    adapter = connect()  # open() spends the first request on /api/v2/instance

    async def scenario() -> None:
        await adapter.verify()  # the second: the budget is used up
        until = await rate_limited_until(lambda: adapter.find_existing(publish_request()))
        assert timedelta(minutes=4) < until - datetime.now(UTC) <= timedelta(minutes=5)

    run(adapter, scenario)
    assert len(mastodon_fake.requests) == 2


def test_lost_answer_is_unknown_then_found_and_resend_adds_nothing(
    mastodon_fake: MastodonFake, connect: Callable[..., MastodonAdapter]
) -> None:
    """Status created but answer lost: UnknownOutcome; reconcile finds it; a resend is a no-op."""
    mastodon_fake.inject(lose_response(), route=STATUSES)
    adapter = connect()

    async def scenario() -> None:
        landed, found = await lost_then_found(
            adapter, publish_request(), lambda: mastodon_fake.statuses
        )
        assert found.remote_url is not None
        resent = await adapter.publish(publish_request())
        assert resent.remote_id == landed.id

    run(adapter, scenario)
    assert len(mastodon_fake.statuses_containing(LINK)) == 1


def test_timeout_before_landing_is_unknown_and_reconcile_finds_nothing(
    mastodon_fake: MastodonFake, connect: Callable[..., MastodonAdapter]
) -> None:
    """A timeout after sending is UnknownOutcome; when nothing landed, find_existing says None."""
    mastodon_fake.inject(delay(30), route=STATUSES)
    adapter = connect(timeout=0.5)

    async def scenario() -> None:
        with pytest.raises(UnknownOutcome):
            await adapter.publish(publish_request())
        assert await adapter.find_existing(publish_request()) is None
        await adapter.publish(publish_request())

    run(adapter, scenario)
    assert len(mastodon_fake.statuses_containing(LINK)) == 1


def test_connection_reset_is_unknown_for_a_post_and_transient_for_a_read(
    mastodon_fake: MastodonFake, connect: Callable[..., MastodonAdapter]
) -> None:
    """RST after the request went out: a POST may have landed (unknown), a GET is retried."""
    mastodon_fake.inject(reset(), route=STATUSES)
    mastodon_fake.inject(reset(), route="GET /api/v1/accounts/verify_credentials")
    adapter = connect()

    async def scenario() -> None:
        with pytest.raises(UnknownOutcome):
            await adapter.publish(publish_request())
        with pytest.raises(Transient) as read:
            await adapter.verify()
        assert read.value.sent is False
        assert await adapter.find_existing(publish_request()) is None

    run(adapter, scenario)
    assert mastodon_fake.statuses == []
    assert [r.fault for r in mastodon_fake.requests_to(STATUSES)] == ["reset"]


def test_refused_connection_is_transient(
    mastodon_fake: MastodonFake, connect: Callable[..., MastodonAdapter]
) -> None:
    """Nobody listening: Transient with sent=False; once the instance is back, publishing works."""
    adapter = connect(max_characters=500)  # no request in open()

    async def scenario() -> None:
        with mastodon_fake.refusing(), pytest.raises(Transient) as caught:
            await adapter.publish(publish_request())
        assert caught.value.sent is False
        await adapter.publish(publish_request())

    run(adapter, scenario)
    assert len(mastodon_fake.statuses) == 1


def test_revoked_token_is_an_auth_error_without_the_token_in_it(
    mastodon_fake: MastodonFake, connect: Callable[..., MastodonAdapter]
) -> None:
    """401 "The access token is invalid" becomes AuthError; the token never shows."""
    token = "revoked-token-4f9e2c"
    adapter = connect(token=token)
    invalid = "The access token is invalid"
    for error in run(adapter, lambda: auth_failures(adapter, publish_request(), invalid)):
        assert error.http_status == 401
        assert token not in str(error)
    assert mastodon_fake.statuses == []


def test_platform_validation_error_is_rejected_with_its_message(
    mastodon_fake: MastodonFake, connect: Callable[..., MastodonAdapter]
) -> None:
    """422 from the instance (text over its limit) is Rejected with Mastodon's own words."""
    adapter = connect(max_characters=1000)  # the config allows more than the instance does
    text = "Ä" * 600 + f"\n\n{LINK}"
    refusal = refused(adapter, publish_request(text), "Text character limit of 500 exceeded")
    assert refusal.http_status == 422
    assert mastodon_fake.statuses == []


def test_open_learns_the_instance_limit_unless_configured(
    mastodon_fake: MastodonFake, connect: Callable[..., MastodonAdapter]
) -> None:
    """The limit comes from /api/v2/instance; a configured max_characters wins (no request)."""
    mastodon_fake.max_characters = 321
    learnt = connect()
    run(learnt, lambda: asyncio.sleep(0))
    assert learnt.text_limit() == 321
    assert len(mastodon_fake.requests_to("GET /api/v2/instance")) == 1

    configured = connect(max_characters=1000)
    run(configured, lambda: asyncio.sleep(0))
    assert configured.text_limit() == 1000
    assert len(mastodon_fake.requests_to("GET /api/v2/instance")) == 1


def test_delete_removes_the_status_and_tolerates_it_being_gone(
    mastodon_fake: MastodonFake, connect: Callable[..., MastodonAdapter]
) -> None:
    """Retracting deletes the status; deleting it again (404) is not an error."""
    adapter = connect()
    run(adapter, lambda: delete_twice(adapter, publish_request(), lambda: mastodon_fake.statuses))
    assert [r.status for r in mastodon_fake.requests_to("DELETE /api/v1/statuses/{id}")] == [
        200,
        404,
    ]


def test_verify_names_the_account(
    mastodon_fake: MastodonFake, connect: Callable[..., MastodonAdapter]
) -> None:
    """accounts check shows the full handle and the profile URL."""
    adapter = connect()
    info = run(adapter, adapter.verify)
    assert info.name == "@staedtedreieck@127.0.0.1"
    assert info.url == f"{mastodon_fake.url}/@staedtedreieck"
    assert info.detail == "Zweckverband Städtedreieck"


def test_find_existing_matches_only_this_text_and_nothing_older_than_the_post(
    mastodon_fake: MastodonFake, connect: Callable[..., MastodonAdapter]
) -> None:
    """Reconciling reads the rendered HTML (shortened links, hashtags, escapes) and is strict."""
    text = f"Öffnungszeiten des #Wertstoffhof: Mo & Di <10–18 Uhr>.\nMehr:\n\n{LINK}"
    other = f"Der Wertstoffhof hat neue Öffnungszeiten.\n\n{LINK}"
    adapter = connect()

    async def scenario() -> None:
        await adapter.publish(publish_request(other, key="d-other"))
        mine = await adapter.publish(publish_request(text, key="d-mine"))
        found = await adapter.find_existing(publish_request(text))
        assert found == mine
        assert await adapter.find_existing(publish_request(f"Noch nicht da.\n\n{LINK}")) is None
        later = datetime.now(UTC) + timedelta(hours=1)  # a post created after the status
        assert await adapter.find_existing(publish_request(text, created_at=later)) is None

    run(adapter, scenario)


def test_lost_media_upload_is_transient(
    mastodon_fake: MastodonFake, connect: Callable[..., MastodonAdapter], tmp_path: Path
) -> None:
    """A lost upload answer leaves at most an unused attachment: Transient, safe to retry."""
    image = tmp_path / "bild.png"
    image.write_bytes(b"\x89PNG fake")
    mastodon_fake.inject(lose_response(), route="POST /api/v2/media")
    adapter = connect()
    media = (Media(path=image, alt="Ein Bild", mime="image/png"),)
    with pytest.raises(Transient):
        run(adapter, lambda: adapter.publish(publish_request(media=media)))
    assert mastodon_fake.statuses == []
    assert mastodon_fake.requests_to(STATUSES) == []


def test_idempotency_header_is_the_key_or_a_stable_hash() -> None:
    """Header-safe keys go out as they are; others are hashed, the same way every time."""
    assert (
        idempotency_header("3f2a9c0d4e5b6a7f8091a2b3c4d5e6f7") == "3f2a9c0d4e5b6a7f8091a2b3c4d5e6f7"
    )
    odd = idempotency_header("Zustellung 7 / Städtedreieck")
    assert odd == idempotency_header("Zustellung 7 / Städtedreieck")
    assert odd.startswith("sha256-")
    assert odd.isascii()


def test_find_existing_pages_back_past_the_statuses_posted_since(
    mastodon_fake: MastodonFake, connect: Callable[..., MastodonAdapter]
) -> None:
    """A status that landed before 100 others is still found: find_existing pages back
    (max_id) until the statuses are older than the delivery, not only the newest 40."""
    mastodon_fake.rate_limit = 10_000
    adapter = connect()

    async def scenario() -> None:
        mine = await adapter.publish(publish_request())
        for n in range(100):
            await adapter.publish(publish_request(f"Danach Nummer {n}.\n\n{LINK}/{n}", key=f"k{n}"))
        found = await adapter.find_existing(publish_request())
        assert found is not None
        assert found.remote_id == mine.remote_id
        assert await adapter.find_existing(publish_request(f"Nie gesendet.\n\n{LINK}")) is None

    run(adapter, scenario)
    pages = mastodon_fake.requests_to("GET /api/v1/accounts/{id}/statuses")
    assert [p.arg("max_id") is not None for p in pages[:3]] == [False, True, True]
