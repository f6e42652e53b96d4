"""Public media URLs for the platforms that fetch images, and their post rules."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.rawsettings import settings_from

from crosspost.adapters.base import build_adapter
from crosspost.adapters.feed import FeedAdapter
from crosspost.config import Settings
from crosspost.media import (
    check_instagram_caption,
    check_threads_links,
    fetches_public_media,
    hashtags,
    media_file_name,
    media_published,
    public_media_urls,
    requires_media,
)
from crosspost.models import Media, PublishRequest

SITE = {"url": "https://www.zv-staedtedreieck.de", "name": "Zweckverband Städtedreieck"}
PUBLIC = "https://www.zv-staedtedreieck.de/social"


def settings_with(tmp_path: Path, **feed: Any) -> Settings:
    accounts: dict[str, Any] = {
        "ig": {"platform": "instagram", "ig_user_id": "1784"},
        "site": {"platform": "feed", "path": str(tmp_path / "site"), **feed},
    }
    return settings_from(site=SITE, accounts=accounts)


def post_media(tmp_path: Path) -> tuple[Media, ...]:
    files = {"Rathaus.JPG": "image/jpeg", "plan": "image/png", "Straße 1.webp": "image/webp"}
    media = []
    for name, mime in files.items():
        path = tmp_path / name
        path.write_bytes(b"image " + name.encode())
        media.append(Media(path, f"Bild {name}", mime))
    return tuple(media)


def publish_to_feed(settings: Settings, post_id: int, media: tuple[Media, ...]) -> None:
    adapter = build_adapter("site", settings)
    assert isinstance(adapter, FeedAdapter)
    request = PublishRequest(
        delivery_id=1,
        post_id=post_id,
        account="site",
        text="Das Rathaus.\n\nhttps://www.zv-staedtedreieck.de/rathaus",
        link="https://www.zv-staedtedreieck.de/rathaus",
        title="Rathaus",
        media=media,
        idempotency_key="d-1",
        created_at=datetime.now(UTC),
    )
    asyncio.run(adapter.publish(request))


def test_urls_name_exactly_the_files_the_feed_writes(tmp_path: Path) -> None:
    """public_media_urls points at the files the feed adapter copies (1-based, own suffix,
    else the MIME type's), under the feed's public_url, and media_published sees them."""
    settings = settings_with(tmp_path, public_url=PUBLIC + "/")
    media = post_media(tmp_path)
    assert media_published(settings, 42, media) is False
    publish_to_feed(settings, 42, media)

    written = sorted(p.name for p in (tmp_path / "site" / "media").iterdir())
    urls = public_media_urls(settings, 42, media)
    assert sorted(url.rsplit("/", 1)[1] for url in urls) == sorted(
        name.replace(" ", "%20") for name in written
    )
    assert urls[0] == f"{PUBLIC}/media/42-1.jpg"
    assert urls[1] == f"{PUBLIC}/media/42-2.png"
    assert [media_file_name(42, n, m) for n, m in enumerate(media, 1)] == [
        "42-1.jpg",
        "42-2.png",
        "42-3.webp",
    ]
    assert media_published(settings, 42, media) is True
    assert media_published(settings, 43, media) is False


def test_without_a_public_feed_there_are_no_urls(tmp_path: Path) -> None:
    """A feed without public_url, or a disabled one, publishes no image for Meta to fetch."""
    media = post_media(tmp_path)
    for settings in (
        settings_with(tmp_path),
        settings_with(tmp_path, public_url=PUBLIC, enabled=False),
    ):
        assert public_media_urls(settings, 1, media) == ()
        assert media_published(settings, 1, media) is False
    assert media_published(settings_with(tmp_path), 1, ()) is True  # nothing to wait for


def test_which_platforms_need_images_and_public_urls() -> None:
    """Instagram needs an image; Instagram and Threads fetch images from a public URL."""
    assert requires_media("instagram")
    assert not any(requires_media(p) for p in ("threads", "facebook", "mastodon"))
    assert fetches_public_media("instagram")
    assert fetches_public_media("threads")
    assert not fetches_public_media("facebook")


def test_hashtags_are_counted_as_instagram_links_them() -> None:
    """URL fragments and "#" inside a word are no hashtags; umlauts belong to the tag."""
    text = "Sommerfest #städtedreieck #sommer2026! C#-Kurs https://example.de/a#anker"
    assert hashtags(text) == ["städtedreieck", "sommer2026"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Kurz und gut #a #b", None),
        (" ".join(f"#t{n}" for n in range(30)), None),
        (
            " ".join(f"#t{n}" for n in range(31)),
            "at most 30 hashtags in a caption; this one has 31",
        ),
        ("x" * 2200, None),
        ("x" * 2199 + "😀", "at most 2200 characters; this one has 2201"),
    ],
)
def test_instagram_caption_rules(text: str, problem: str | None) -> None:
    """At most 2 200 characters (UTF-16 units) and 30 hashtags."""
    found = check_instagram_caption(text)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


def test_threads_counts_distinct_links_and_the_attachment() -> None:
    """Five distinct URLs fit; the link attachment counts unless it is one of them."""
    five = " ".join(f"https://www.zv-staedtedreieck.de/{n}" for n in range(5))
    assert check_threads_links(five) is None
    assert check_threads_links(five + " https://www.zv-staedtedreieck.de/0.") is None
    assert check_threads_links(five, "https://www.zv-staedtedreieck.de/1") is None
    problem = check_threads_links(five, "https://www.zv-staedtedreieck.de/neu")
    assert problem is not None
    assert "at most 5 links" in problem
