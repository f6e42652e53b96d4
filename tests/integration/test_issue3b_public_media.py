"""Issue 3: Instagram and Threads fetch images from a public URL, published on the
website first by the ``feed`` account — or, without such a feed, from ``[media] path``
served at ``public_base_url``: the daemon copies the images there itself, passes that
URL, and ``retract`` removes the copies once nothing of the post is published.

The real daemon in-process on a SQLite queue against the Instagram and Threads fakes.
"""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.fakes.meta import InstagramFake, ThreadsFake
from tests.rawsettings import settings_from

from crosspost.config import load_settings
from crosspost.daemon import Daemon
from crosspost.exceptions import ConfigError, PostRejected
from crosspost.models import DeliveryState, Media, Post
from crosspost.service import Crosspost, retract
from crosspost.store.migrate import upgrade
from crosspost.store.sql import SqlStore

SITE = "https://www.zv-staedtedreieck.de"
BASE = "https://cdn.zv-staedtedreieck.de/bilder"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
    "0000000c4944415478da63f8cfc000000301010018dd8db00000000049454e44ae426082"
)
TOKEN_ENV = "CROSSPOST_TEST_META_TOKEN"


@pytest.fixture(params=["instagram", "threads"])
def fake(request: pytest.FixtureRequest) -> Iterator[Any]:
    server = InstagramFake() if request.param == "instagram" else ThreadsFake()
    with server:
        yield server
    assert [str(v) for v in server.validation_errors] == []
    assert server.server_errors == []


def _account(fake: Any) -> dict[str, Any]:
    table: dict[str, Any] = {"platform": fake.name, "base_url": fake.url, "token_env": TOKEN_ENV}
    key = "ig_user_id" if fake.name == "instagram" else "user_id"
    return table | {key: fake.user_id}


def _world(
    fake: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, media: dict[str, Any] | None
) -> Crosspost:
    monkeypatch.setenv(TOKEN_ENV, fake.token)
    extra = {"media": media} if media is not None else {}
    settings = settings_from(
        site={"url": SITE, "name": "Zweckverband Städtedreieck"},
        daemon={"backoff_base": 0.05, "poll_interval": 0.05, "state_dir": str(tmp_path / "s")},
        accounts={"meta": _account(fake)},
        **extra,
    )
    store = SqlStore(f"sqlite:///{tmp_path / 'q.db'}", create=True)
    upgrade(store.engine)
    return Crosspost(settings, store)


def _post(tmp_path: Path) -> Post:
    image = tmp_path / "Schwimmbad.PNG"
    image.write_bytes(PNG)
    return Post(
        title="Freibad",
        body="Das Freibad öffnet.",
        link=f"{SITE}/aktuelles/freibad",
        category=None,
        publish_at=None,
        accounts=("meta",),
        media=(Media(image, "Leere Bahnen im Morgenlicht", "image/png"),),
    )


def test_images_go_to_the_media_folder_and_meta_fetches_them_there(
    fake: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "www" / "bilder"
    service = _world(
        fake, tmp_path, monkeypatch, {"path": str(folder), "public_base_url": BASE + "/"}
    )
    try:
        [post_id] = service.enqueue([service.plan(_post(tmp_path))])
        daemon = Daemon(service.settings, service.store, once=True, handle_signals=False)
        assert asyncio.run(daemon.run()) == 0
        [delivery] = service.store.deliveries_of(post_id)
        assert delivery.state is DeliveryState.PUBLISHED
        [published] = fake.media
        assert published.image_urls == [f"{BASE}/{post_id}-1.png"]
        copy = folder / f"{post_id}-1.png"
        assert copy.read_bytes() == PNG
        assert stat.S_IMODE(copy.stat().st_mode) == 0o644
        assert [p.name for p in folder.iterdir()] == [copy.name]  # no temporary file left

        outcome = asyncio.run(retract(service, post_id))
        assert [(o.account, o.ok) for o in outcome] == [("meta", True)]
        assert fake.media == []
        assert not copy.exists()
    finally:
        service.store.close()


def test_without_feed_or_media_folder_a_post_with_images_is_refused_at_enqueue(
    fake: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = _world(fake, tmp_path, monkeypatch, None)
    try:
        with pytest.raises(PostRejected, match=r"\[media\] path and public_base_url"):
            service.plan(_post(tmp_path))
    finally:
        service.store.close()


@pytest.mark.parametrize(
    ("media", "needle"),
    [
        ('path = "/srv/bilder"', "public_base_url"),
        (f'public_base_url = "{BASE}"', "public_base_url"),
        ('path = "/srv/bilder"\npublic_base_url = "http://cdn.example/b"', "https"),
    ],
)
def test_media_settings_are_both_or_neither_and_https(
    tmp_path: Path, media: str, needle: str
) -> None:
    config = tmp_path / "crosspost.toml"
    config.write_text(f'[site]\nurl = "{SITE}"\n\n[media]\n{media}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=needle) as caught:
        load_settings(config)
    assert "media" in caught.value.message
