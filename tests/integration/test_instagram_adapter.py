"""The Instagram adapter against the fake Graph API over real HTTP on 127.0.0.1.

The images live on the website (``media_urls``, as :mod:`crosspost.media` derives them);
Meta fetches them itself, so the fake checks that every ``image_url`` is an absolute
https URL. Every test ends with the fixture's check that no request broke the documented
contract (``fake.validation_errors == []``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from tests.adapterfixture import (
    Requests,
    build,
    refused,
    run,
)
from tests.fakes.meta import PUBLIC_MEDIA, InstagramFake, graph_fault
from tests.fakes.server import lose_response, status

from crosspost.adapters.instagram import InstagramAdapter
from crosspost.exceptions import AuthError, RateLimited, Transient, UnknownOutcome
from crosspost.models import Media, PublishRequest

TOKEN_ENV = "CROSSPOST_TEST_INSTAGRAM_TOKEN"
LINK = "https://www.zv-staedtedreieck.de/aktuelles/stadtfest"
TEXT = f"Das Stadtfest beginnt am Samstag um 14 Uhr. #stadtfest #städtedreieck\n\n{LINK}"
CREATE = "POST /{user}/media"
PUBLISH = "POST /{user}/media_publish"
STATUS = "GET /{node}"
ONE_DELIVERY = Requests("ig", TEXT, link=LINK, title="Stadtfest", key="d-7-ig", delivery_id=7)


@pytest.fixture
def connect(
    instagram_fake: InstagramFake, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., InstagramAdapter]:
    """Build an adapter for the fake from Settings, as the daemon does."""

    def make(*, token: str | None = None) -> InstagramAdapter:
        monkeypatch.setenv(TOKEN_ENV, token or instagram_fake.token)
        account = {"platform": "instagram", "base_url": instagram_fake.url, "token_env": TOKEN_ENV}
        account["ig_user_id"] = instagram_fake.user_id
        adapter = build(InstagramAdapter, "ig", account)
        adapter.container_poll_first = 0.01  # keep IN_PROGRESS polling quick
        return adapter

    return make


class Checkpoints:
    """The publisher's side of ``request.checkpoint``: what was recorded, and when."""

    def __init__(self, fake: InstagramFake) -> None:
        self.fake = fake
        self.saved: list[dict[str, str]] = []
        #: how many publish requests the fake had seen at each checkpoint
        self.publishes_before: list[int] = []

    async def __call__(self, progress: Mapping[str, str]) -> None:
        self.saved.append(dict(progress))
        self.publishes_before.append(len(self.fake.requests_to(PUBLISH)))


def images(tmp_path: Path, count: int = 1) -> tuple[tuple[Media, ...], tuple[str, ...]]:
    media, urls = [], []
    for n in range(1, count + 1):
        path = tmp_path / f"stadtfest-{n}.jpg"
        path.write_bytes(b"\xff\xd8\xff\xe0fake jpeg")
        media.append(Media(path, f"Bühne auf dem Marktplatz, Bild {n}", "image/jpeg"))
        urls.append(f"{PUBLIC_MEDIA}/7-{n}.jpg")
    return tuple(media), tuple(urls)


def publish_request(
    tmp_path: Path,
    text: str = TEXT,
    *,
    count: int = 1,
    progress: Mapping[str, str] | None = None,
    checkpoints: Checkpoints | None = None,
    urls: tuple[str, ...] | None = None,
) -> PublishRequest:
    media, derived = images(tmp_path, count)
    return ONE_DELIVERY(
        text,
        media=media,
        progress=progress,
        checkpoint=checkpoints,
        media_urls=derived if urls is None else urls,
    )


def test_one_image_post_goes_through_a_checkpointed_container(
    instagram_fake: InstagramFake, connect: Callable[..., InstagramAdapter], tmp_path: Path
) -> None:
    """Container with image_url, caption and alt_text; its id is checkpointed before
    media_publish; the result is the published media with its permalink."""
    checkpoints = Checkpoints(instagram_fake)
    adapter = connect()
    request = publish_request(tmp_path, checkpoints=checkpoints)
    result = run(adapter, lambda: adapter.publish(request))

    [container] = instagram_fake.containers.values()
    assert container.image_url == f"{PUBLIC_MEDIA}/7-1.jpg"
    assert container.text == TEXT
    assert container.alt_text == "Bühne auf dem Marktplatz, Bild 1"
    assert checkpoints.saved == [{"container": container.id}]
    assert checkpoints.publishes_before == [0]
    [media] = instagram_fake.media
    assert result.remote_id == media.id
    assert result.remote_url == media.permalink
    [sent] = instagram_fake.requests_to(PUBLISH)
    assert sent.form()["creation_id"].text == container.id


def test_several_images_make_a_carousel_with_alt_text_on_each(
    instagram_fake: InstagramFake, connect: Callable[..., InstagramAdapter], tmp_path: Path
) -> None:
    """Three images: three carousel items with their alt texts, one CAROUSEL with the caption."""
    adapter = connect()
    run(adapter, lambda: adapter.publish(publish_request(tmp_path, count=3)))

    [media] = instagram_fake.media
    assert media.text == TEXT
    assert media.alts == [f"Bühne auf dem Marktplatz, Bild {n}" for n in (1, 2, 3)]
    assert media.image_urls == [f"{PUBLIC_MEDIA}/7-{n}.jpg" for n in (1, 2, 3)]
    assert len(instagram_fake.requests_to(CREATE)) == 4


def test_a_text_only_post_is_rejected_before_anything_is_sent(
    instagram_fake: InstagramFake, connect: Callable[..., InstagramAdapter], tmp_path: Path
) -> None:
    """Instagram publishes no text-only posts: Rejected, sent=False, no request."""
    adapter = connect()
    request = publish_request(tmp_path, count=0)
    refusal = refused(adapter, request, "no text-only posts")
    assert refusal.sent is False
    assert instagram_fake.requests == []


def test_images_not_yet_on_the_website_are_waited_for(
    instagram_fake: InstagramFake, connect: Callable[..., InstagramAdapter], tmp_path: Path
) -> None:
    """Without a public URL for every image the delivery is held back (Transient), unsent."""
    adapter = connect()
    request = publish_request(tmp_path, count=2, urls=(f"{PUBLIC_MEDIA}/7-1.jpg",))
    with pytest.raises(Transient, match="waiting for the website to publish the image"):
        run(adapter, lambda: adapter.publish(request))
    assert instagram_fake.requests == []


def test_too_many_hashtags_are_rejected_before_anything_is_sent(
    instagram_fake: InstagramFake, connect: Callable[..., InstagramAdapter], tmp_path: Path
) -> None:
    """31 hashtags: Instagram would refuse the caption, so nothing is sent."""
    text = " ".join(f"#tag{n}" for n in range(31)) + f"\n\n{LINK}#abschnitt"
    adapter = connect()
    refusal = refused(adapter, publish_request(tmp_path, text), "at most 30 hashtags")
    assert refusal.sent is False
    assert instagram_fake.requests == []


def test_a_processing_container_is_polled_until_finished(
    instagram_fake: InstagramFake, connect: Callable[..., InstagramAdapter], tmp_path: Path
) -> None:
    """IN_PROGRESS twice, then FINISHED: published once the container is ready."""
    instagram_fake.processing_polls = 2
    adapter = connect()
    run(adapter, lambda: adapter.publish(publish_request(tmp_path)))

    reads = [
        r for r in instagram_fake.requests_to(STATUS) if r.arg("fields") == "status_code,status"
    ]
    assert len(reads) == 3
    assert len(instagram_fake.media) == 1


def test_a_lost_publish_answer_never_makes_a_second_post(
    instagram_fake: InstagramFake, connect: Callable[..., InstagramAdapter], tmp_path: Path
) -> None:
    """The crash case: container created and checkpointed, media_publish lands but its
    answer is lost. The next attempt, handed the checkpointed container, sees status_code
    PUBLISHED and finds the post instead of publishing again."""
    instagram_fake.inject(lose_response(), route=PUBLISH)
    checkpoints = Checkpoints(instagram_fake)
    adapter = connect()

    async def scenario() -> None:
        with pytest.raises(UnknownOutcome):
            await adapter.publish(publish_request(tmp_path, checkpoints=checkpoints))
        [progress] = checkpoints.saved
        found = await adapter.find_existing(publish_request(tmp_path, progress=progress))
        again = await adapter.publish(publish_request(tmp_path, progress=progress))
        [media] = instagram_fake.media
        assert found is not None
        assert found.remote_id == again.remote_id == media.id

    run(adapter, scenario)
    assert len(instagram_fake.requests_to(PUBLISH)) == 1
    assert len(instagram_fake.requests_to(CREATE)) == 1
    assert len(instagram_fake.media) == 1


def test_without_a_checkpoint_the_lookup_finds_the_post_by_caption(
    instagram_fake: InstagramFake, connect: Callable[..., InstagramAdapter], tmp_path: Path
) -> None:
    """Where no container was recorded, find_existing looks among the recent media."""
    instagram_fake.inject(lose_response(), route=PUBLISH)
    adapter = connect()

    async def scenario() -> None:
        with pytest.raises(UnknownOutcome):
            await adapter.publish(publish_request(tmp_path))
        found = await adapter.find_existing(publish_request(tmp_path))
        assert found is not None
        assert found.remote_id == instagram_fake.media[0].id
        other = publish_request(tmp_path, "Ein anderer Beitrag.")
        assert await adapter.find_existing(other) is None

    run(adapter, scenario)


def test_a_finished_container_from_an_earlier_attempt_is_published_not_recreated(
    instagram_fake: InstagramFake, connect: Callable[..., InstagramAdapter], tmp_path: Path
) -> None:
    """media_publish failed (503) after the checkpoint: the next attempt publishes that
    FINISHED container instead of creating another."""
    instagram_fake.inject(status(503), route=PUBLISH)
    checkpoints = Checkpoints(instagram_fake)
    adapter = connect()

    async def scenario() -> None:
        with pytest.raises(Transient):
            await adapter.publish(publish_request(tmp_path, checkpoints=checkpoints))
        [progress] = checkpoints.saved
        await adapter.publish(publish_request(tmp_path, progress=progress))

    run(adapter, scenario)
    assert len(instagram_fake.requests_to(CREATE)) == 1
    assert len(instagram_fake.media) == 1


@pytest.mark.parametrize("how", ["expired", "error"])
def test_an_expired_or_failed_container_is_replaced(
    instagram_fake: InstagramFake,
    connect: Callable[..., InstagramAdapter],
    tmp_path: Path,
    how: str,
) -> None:
    """A checkpointed container that EXPIRED (24 h) or went to ERROR is never published:
    a new one is created, checkpointed and published."""
    checkpoints = Checkpoints(instagram_fake)
    adapter = connect()

    async def scenario() -> None:
        if how == "error":
            instagram_fake.failing_containers = 1
            with pytest.raises(Transient, match="FAILED_DOWNLOADING_IMAGE"):
                await adapter.publish(publish_request(tmp_path, checkpoints=checkpoints))
            [old] = instagram_fake.containers
        else:
            instagram_fake.inject(status(503), route=PUBLISH)
            with pytest.raises(Transient):
                await adapter.publish(publish_request(tmp_path, checkpoints=checkpoints))
            [old] = instagram_fake.containers
            instagram_fake.expire(old)
        request = publish_request(tmp_path, progress={"container": old}, checkpoints=checkpoints)
        result = await adapter.publish(request)
        new = checkpoints.saved[-1]["container"]
        assert new != old
        assert instagram_fake.containers[new].media_id == result.remote_id

    run(adapter, scenario)
    assert len(instagram_fake.media) == 1


def test_publishing_limit_is_a_rate_limit(
    instagram_fake: InstagramFake, connect: Callable[..., InstagramAdapter], tmp_path: Path
) -> None:
    """The 51st post in 24 hours is refused by Instagram (9/2207042): RateLimited."""
    instagram_fake.publish_limit = 1
    adapter = connect()

    async def scenario() -> None:
        await adapter.publish(publish_request(tmp_path))
        with pytest.raises(RateLimited, match="2207042") as caught:
            await adapter.publish(publish_request(tmp_path, "Noch ein Beitrag."))
        assert caught.value.until is not None
        assert caught.value.until - datetime.now(UTC) > timedelta(minutes=50)

    run(adapter, scenario)
    assert len(instagram_fake.media) == 1


@pytest.mark.parametrize("code", [4, 17, 32, 613, 80002])
def test_throttling_on_container_creation_is_a_rate_limit(
    instagram_fake: InstagramFake,
    connect: Callable[..., InstagramAdapter],
    tmp_path: Path,
    code: int,
) -> None:
    """Throttled before anything was created: RateLimited, nothing published."""
    instagram_fake.inject(graph_fault(code, f"(#{code}) throttled"), route=CREATE)
    adapter = connect()
    with pytest.raises(RateLimited):
        run(adapter, lambda: adapter.publish(publish_request(tmp_path)))
    assert instagram_fake.media == []


def test_a_lost_container_answer_is_transient(
    instagram_fake: InstagramFake, connect: Callable[..., InstagramAdapter], tmp_path: Path
) -> None:
    """A container nobody publishes is invisible: a lost creation answer is safe to retry."""
    instagram_fake.inject(lose_response(), route=CREATE)
    adapter = connect()
    with pytest.raises(Transient):
        run(adapter, lambda: adapter.publish(publish_request(tmp_path)))
    assert instagram_fake.media == []


def test_invalid_token_is_an_auth_error_without_the_token(
    instagram_fake: InstagramFake, connect: Callable[..., InstagramAdapter], tmp_path: Path
) -> None:
    """Error 190 becomes AuthError; the token never shows."""
    token = "IGQVJrevoked-77aa"
    adapter = connect(token=token)
    with pytest.raises(AuthError, match="#190") as caught:
        run(adapter, lambda: adapter.publish(publish_request(tmp_path)))
    assert token not in str(caught.value)


def test_delete_metrics_followers_and_verify(
    instagram_fake: InstagramFake, connect: Callable[..., InstagramAdapter], tmp_path: Path
) -> None:
    """Insights give views, likes, comments and shares; delete twice is fine; verify names
    the account with its follower count."""
    instagram_fake.followers = 987
    adapter = connect()

    async def scenario() -> None:
        result = await adapter.publish(publish_request(tmp_path))
        [media] = instagram_fake.media
        media.views, media.likes, media.replies, media.shares = 100, 10, 2, 1
        media_metrics = await adapter.metrics(result.remote_id)
        assert media_metrics is not None
        assert (
            media_metrics.views,
            media_metrics.likes,
            media_metrics.replies,
            media_metrics.reposts,
        ) == (100, 10, 2, 1)
        info = await adapter.verify()
        assert (info.name, info.url, info.followers) == (
            "@staedtedreieck",
            "https://www.instagram.com/staedtedreieck/",
            987,
        )
        assert await adapter.followers() == 987
        await adapter.delete(result.remote_id)
        assert instagram_fake.media == []
        await adapter.delete(result.remote_id)

    run(adapter, scenario)


def test_an_image_address_without_https_is_refused_by_adapter_and_fake(
    instagram_fake: InstagramFake, connect: Callable[..., InstagramAdapter], tmp_path: Path
) -> None:
    """Meta fetches images over https only: the adapter refuses a plain-http media URL
    unsent, and the fake records a client that would send one anyway."""
    adapter = connect()
    plain = ("http://www.zv-staedtedreieck.de/social/media/7-1.jpg",)
    refusal = refused(adapter, publish_request(tmp_path, urls=plain), "only from https")
    assert refusal.sent is False
    assert instagram_fake.requests == []

    answer = httpx.post(
        f"{instagram_fake.url}/{instagram_fake.user_id}/media",
        data={"image_url": plain[0], "caption": TEXT, "alt_text": "Bühne"},
        headers={"Authorization": f"Bearer {instagram_fake.token}"},
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == 100
    [violation] = instagram_fake.validation_errors
    assert "not an absolute https URL" in str(violation)
    instagram_fake.validation_errors.clear()  # expected here; the fixture checks the rest
