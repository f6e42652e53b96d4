"""Issue 3 (Telegram): the canonical link is a link entity on exactly its UTF-16 span —
in a text (``sendMessage.entities``), under one photo and under an album
(``caption_entities``) — next to the link preview of the canonical link.

Against the Bot API fake, which validates every call against ``telegram-bot-api.json``
and refuses an entity that lies outside the text or whose ``url`` span is not a URL.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.adapterfixture import Requests, build, run
from tests.fakes.telegram import TelegramFake, entities_refused, utf16_slice

from crosspost.adapters.telegram import TelegramAdapter, link_entities
from crosspost.compose import telegram_caption
from crosspost.models import Media

TOKEN_ENV = "CROSSPOST_TEST_TELEGRAM_TOKEN"
LINK = "https://www.zv-staedtedreieck.de/aktuelles/wertstoffhof"
OTHER = "https://example.org/fahrplan"
TEXT = f"Grüße 👋🏽 vom Wertstoffhof 🚛! Busse: {OTHER} – ab Montag länger geöffnet.\n\n{LINK}"
SEND = "POST /bot{token}/sendMessage"
PHOTO = "POST /bot{token}/sendPhoto"
ALBUM = "POST /bot{token}/sendMediaGroup"

publish_request = Requests("t", TEXT, link=LINK, title="Wertstoffhof", key="d-1-telegram")


@pytest.fixture
def connect(
    telegram_fake: TelegramFake, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Callable[[], TelegramAdapter]:
    def make() -> TelegramAdapter:
        monkeypatch.setenv(TOKEN_ENV, telegram_fake.token)
        table = {"platform": "telegram", "base_url": telegram_fake.url, "token_env": TOKEN_ENV}
        table["chat"] = "@staedtedreieck"
        return build(TelegramAdapter, "t", table, timeout=5.0, state_dir=tmp_path / "state")

    return make


def covers_the_link(text: str, entities: list[dict[str, Any]]) -> None:
    [entity] = entities
    assert entity["type"] == "url"
    assert utf16_slice(text, entity["offset"], entity["length"]) == LINK
    assert entity["offset"] != text.rindex(LINK)  # UTF-16 units, not characters


def test_the_text_carries_a_url_entity_on_exactly_the_canonical_link(
    telegram_fake: TelegramFake, connect: Callable[[], TelegramAdapter]
) -> None:
    """Emoji (two UTF-16 units, one with a skin tone) before the link: the entity's offset
    counts UTF-16 units; the preview is the canonical link's, not the other URL's."""
    adapter = connect()
    run(adapter, lambda: adapter.publish(publish_request()))
    [call] = telegram_fake.requests_to(SEND)
    covers_the_link(TEXT, call.json()["entities"])
    [message] = telegram_fake.posts
    assert message.link_preview_url == LINK
    assert message.entities == call.json()["entities"]


def test_a_photo_caption_carries_the_link_entity_after_the_alt_text(
    telegram_fake: TelegramFake, connect: Callable[[], TelegramAdapter], tmp_path: Path
) -> None:
    photo = tmp_path / "hof.png"
    photo.write_bytes(b"\x89PNG fake image")
    alt = "Das Tor des Wertstoffhofs – geöffnet 🕗"
    adapter = connect()
    run(adapter, lambda: adapter.publish(publish_request(media=(Media(photo, alt, "image/png"),))))
    [call] = telegram_fake.requests_to(PHOTO)
    caption = call.form()["caption"].text
    assert caption == telegram_caption(TEXT, [alt], LINK)
    covers_the_link(caption, json.loads(call.form()["caption_entities"].text))
    [message] = telegram_fake.posts
    assert message.caption == caption


def test_an_albums_first_caption_carries_the_link_entity(
    telegram_fake: TelegramFake, connect: Callable[[], TelegramAdapter], tmp_path: Path
) -> None:
    media = []
    for n in range(2):
        path = tmp_path / f"bild{n}.jpg"
        path.write_bytes(b"\xff\xd8\xff" + bytes([n]))
        media.append(Media(path, f"Bild Nummer {n} 🌳", "image/jpeg"))
    adapter = connect()
    run(adapter, lambda: adapter.publish(publish_request(media=tuple(media))))
    [call] = telegram_fake.requests_to(ALBUM)
    first, second = json.loads(call.form()["media"].text)
    covers_the_link(first["caption"], first["caption_entities"])
    assert "caption_entities" not in second


def test_without_the_link_in_the_text_no_entity_is_sent(
    telegram_fake: TelegramFake, connect: Callable[[], TelegramAdapter]
) -> None:
    adapter = connect()
    run(adapter, lambda: adapter.publish(publish_request("Nur Text, kein Link 🚛")))
    [call] = telegram_fake.requests_to(SEND)
    assert "entities" not in call.json()
    assert link_entities("Text", None) == []


def test_the_fake_refuses_an_entity_counted_in_characters() -> None:
    """The fake's own check can fail: offsets in characters miss the link by the emoji."""
    by_characters = [{"type": "url", "offset": TEXT.rindex(LINK), "length": len(LINK)}]
    assert entities_refused(TEXT, by_characters)[1] is not None
    assert entities_refused(TEXT, link_entities(TEXT, LINK)) == (link_entities(TEXT, LINK), None)
