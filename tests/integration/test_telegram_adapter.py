"""The Telegram adapter against a Bot API fake over real HTTP on 127.0.0.1.

The fake checks every call against ``telegram-bot-api.json``; the ``start_fake``
fixture fails any test whose requests broke that contract
(``fake.validation_errors == []``) or broke the fake.
"""

from __future__ import annotations

import json
import logging
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
    rate_limited_until,
    refused,
    run,
    transient_then_published,
    unreadable_image_refused,
)
from tests.fakes.server import delay, lose_response, status
from tests.fakes.telegram import CHANNEL_ID, TelegramFake, flood

from crosspost.adapters.telegram import TelegramAdapter
from crosspost.compose import telegram_caption
from crosspost.counting import count_telegram
from crosspost.exceptions import AuthError, RateLimited, Rejected, Transient, UnknownOutcome
from crosspost.models import Media

TOKEN_ENV = "CROSSPOST_TEST_TELEGRAM_TOKEN"
LINK = "https://www.zv-staedtedreieck.de/aktuelles/wertstoffhof"
TEXT = f"Der Wertstoffhof hat ab Montag länger geöffnet: Mo–Fr 8–18 Uhr. 🚛\n\n{LINK}"
SEND = "POST /bot{token}/sendMessage"
PHOTO = "POST /bot{token}/sendPhoto"
ALBUM = "POST /bot{token}/sendMediaGroup"
DELETE = "POST /bot{token}/deleteMessage"


@pytest.fixture
def connect(
    telegram_fake: TelegramFake, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Callable[..., TelegramAdapter]:
    """Build an adapter for the fake from Settings, as the daemon does."""

    def make(*, token: str | None = None, timeout: float = 5.0, **account: Any) -> TelegramAdapter:
        monkeypatch.setenv(TOKEN_ENV, token or telegram_fake.token)
        table = {"platform": "telegram", "base_url": telegram_fake.url, "token_env": TOKEN_ENV}
        table["chat"] = "@staedtedreieck"
        state_dir = tmp_path / "state"
        return build(TelegramAdapter, "t", table | account, timeout=timeout, state_dir=state_dir)

    return make


publish_request = Requests("t", TEXT, link=LINK, title="Wertstoffhof", key="d-1-telegram")


def image(tmp_path: Path, name: str, content: bytes = b"\x89PNG fake image") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


# -- publishing ----------------------------------------------------------------------------------


def test_text_goes_out_once_with_the_link_as_preview(
    telegram_fake: TelegramFake, connect: Callable[..., TelegramAdapter]
) -> None:
    """sendMessage carries the exact text, the chat and the canonical link as the preview
    URL; the delivery gets the chat/message id and the channel's t.me URL."""
    adapter = connect()
    result = run(adapter, lambda: adapter.publish(publish_request()))

    [message] = telegram_fake.posts
    assert message.text == TEXT
    assert message.link_preview_url == LINK
    assert result.remote_id == f"{CHANNEL_ID}/{message.message_id}"
    assert result.remote_url == f"https://t.me/staedtedreieck/{message.message_id}"
    [call] = telegram_fake.requests_to(SEND)
    assert call.json()["chat_id"] == "@staedtedreieck"


def test_numeric_chat_id_of_a_private_channel_gets_a_members_link(
    telegram_fake: TelegramFake, connect: Callable[..., TelegramAdapter]
) -> None:
    """A chat configured by its numeric id goes out as an integer; a channel without a
    public @name gets the members-only t.me/c/ link."""
    telegram_fake.username = None
    adapter = connect(chat=str(CHANNEL_ID))
    result = run(adapter, lambda: adapter.publish(publish_request()))
    assert telegram_fake.requests_to(SEND)[0].json()["chat_id"] == CHANNEL_ID
    message_id = telegram_fake.posts[0].message_id
    assert result.remote_id == f"{CHANNEL_ID}/{message_id}"
    assert result.remote_url == f"https://t.me/c/{str(CHANNEL_ID)[4:]}/{message_id}"


def test_one_image_goes_up_with_its_alt_text_in_the_caption(
    telegram_fake: TelegramFake, connect: Callable[..., TelegramAdapter], tmp_path: Path
) -> None:
    """sendPhoto uploads the file in the same request; Telegram has no alt field, so the
    caption holds "Bild: <alt>" before the link."""
    photo = image(tmp_path, "wertstoffhof.png")
    alt = "Das Tor des Wertstoffhofs mit den neuen Öffnungszeiten"
    adapter = connect()
    media = (Media(photo, alt, "image/png"),)
    result = run(adapter, lambda: adapter.publish(publish_request(media=media)))

    [message] = telegram_fake.posts
    assert message.caption == (
        "Der Wertstoffhof hat ab Montag länger geöffnet: Mo–Fr 8–18 Uhr. 🚛\n\n"
        f"Bild: {alt}\n\n{LINK}"
    )
    [uploaded] = message.photos
    assert (uploaded.filename, uploaded.content_type) == ("wertstoffhof.png", "image/png")
    assert uploaded.size == photo.stat().st_size
    assert result.remote_id == f"{CHANNEL_ID}/{message.message_id}"
    assert telegram_fake.requests_to(SEND) == []


def test_several_images_become_one_album_and_are_deleted_together(
    telegram_fake: TelegramFake, connect: Callable[..., TelegramAdapter], tmp_path: Path
) -> None:
    """2-10 images: one sendMediaGroup, the caption (with numbered alt texts) on the
    first; the remote id names every message, and retracting deletes them all."""
    alts = ["Der Eingang", "Die Container für Grünschnitt", "Das neue Schild"]
    media = tuple(
        Media(image(tmp_path, f"bild{n}.jpg", b"\xff\xd8\xff" + bytes([n])), alt, "image/jpeg")
        for n, alt in enumerate(alts)
    )
    adapter = connect()

    async def scenario() -> str:
        result = await adapter.publish(publish_request(media=media))
        assert len(telegram_fake.posts) == 3
        await adapter.delete(result.remote_id)
        return result.remote_id

    remote_id = run(adapter, scenario)
    assert telegram_fake.posts == []
    ids = [m.message_id for m in telegram_fake.messages.values()]
    assert remote_id == f"{CHANNEL_ID}/{','.join(map(str, ids))}"
    first, *rest = telegram_fake.messages.values()
    assert first.caption is not None
    assert "Bild 1: Der Eingang\nBild 2: Die Container für Grünschnitt\nBild 3:" in first.caption
    assert first.caption.endswith(f"\n\n{LINK}")
    assert [m.caption for m in rest] == [None, None]
    assert len({m.media_group_id for m in telegram_fake.messages.values()}) == 1
    assert len(telegram_fake.requests_to(ALBUM)) == 1


def test_a_caption_over_1024_units_is_rejected_before_sending(
    telegram_fake: TelegramFake, connect: Callable[..., TelegramAdapter], tmp_path: Path
) -> None:
    """Text + alt line over the caption limit fails for good with the counted length,
    and nothing is sent (enqueue should have caught it through telegram_caption)."""
    text = "Ä" * 990 + f"\n\n{LINK}"
    media = (Media(image(tmp_path, "b.png"), "Ein Bild vom Markt", "image/png"),)
    expected = count_telegram(telegram_caption(text, ["Ein Bild vom Markt"], LINK))
    adapter = connect()
    refusal = refused(
        adapter,
        publish_request(text, media=media),
        rf"caption is {expected} UTF-16 code units.*1024",
    )
    assert refusal.sent is False
    assert telegram_fake.requests == []


def test_text_over_4096_units_is_rejected_before_sending(
    telegram_fake: TelegramFake, connect: Callable[..., TelegramAdapter]
) -> None:
    """Emoji count two UTF-16 units: 2100 of them are over the 4096 limit."""
    adapter = connect()
    refusal = refused(adapter, publish_request("😀" * 2100), "4096")
    assert refusal.sent is False
    assert telegram_fake.requests == []


def test_unreadable_image_is_rejected_before_anything_is_sent(
    telegram_fake: TelegramFake, connect: Callable[..., TelegramAdapter], tmp_path: Path
) -> None:
    """A missing image file fails the post for good without a request."""
    unreadable_image_refused(connect(), publish_request, tmp_path)
    assert telegram_fake.requests == []


# -- the caption rule (what compose must count) --------------------------------------------------


def test_caption_puts_the_alt_text_before_a_trailing_link() -> None:
    """The alt line goes between text and link, the link stays last and whole."""
    text = f"Neues vom Markt.\n\n{LINK}"
    assert telegram_caption(text, ["Stände  am\nAbend"], LINK) == (
        f"Neues vom Markt.\n\nBild: Stände am Abend\n\n{LINK}"
    )


def test_caption_appends_alt_texts_when_the_link_stands_inside_the_text() -> None:
    """A link inside a sentence is left where it is; the alt lines follow the text."""
    text = f"Mehr unter {LINK} – bis bald!"
    assert telegram_caption(text, ["A", "B"], LINK) == f"{text}\n\nBild 1: A\nBild 2: B"
    assert telegram_caption(text, [], LINK) == text
    assert telegram_caption(LINK, ["A"], LINK) == f"Bild: A\n\n{LINK}"


# -- errors ---------------------------------------------------------------------------------------


def test_flood_control_blocks_requests_until_retry_after(
    telegram_fake: TelegramFake, connect: Callable[..., TelegramAdapter]
) -> None:
    """429 with parameters.retry_after: RateLimited until now+N, and the next request
    is not even sent before then."""
    telegram_fake.inject(flood(retry_after=30), route=SEND)
    adapter = connect()

    async def scenario() -> None:
        before = datetime.now(UTC)
        until = await rate_limited_until(
            lambda: adapter.publish(publish_request()), match="retry after 30"
        )
        assert before + timedelta(seconds=30) <= until <= datetime.now(UTC) + timedelta(seconds=30)
        with pytest.raises(RateLimited) as second:
            await adapter.publish(publish_request())
        assert second.value.until == until

    run(adapter, scenario)
    assert len(telegram_fake.requests_to(SEND)) == 1
    assert telegram_fake.posts == []


def test_revoked_token_is_an_auth_error_and_the_token_never_shows(
    telegram_fake: TelegramFake,
    connect: Callable[..., TelegramAdapter],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """401 Unauthorized becomes AuthError; the token, which is part of every URL, is in
    no message and no log line of crosspost, also when the connection fails."""
    token = "7000000001:AAHrevokedTokenThatMustNotLeak-42"
    caplog.set_level(logging.DEBUG, logger="crosspost")
    adapter = connect(token=token)

    async def scenario() -> list[str]:
        messages = []
        with pytest.raises(AuthError, match="Unauthorized") as caught:
            await adapter.publish(publish_request())
        assert caught.value.http_status == 401
        messages.append(str(caught.value))
        with pytest.raises(AuthError) as verify:
            await adapter.verify()
        messages.append(str(verify.value))
        with telegram_fake.refusing(), pytest.raises(Transient) as refused:
            await adapter.publish(publish_request())
        messages.append(str(refused.value))
        return messages

    for message in run(adapter, scenario):
        assert token not in message
        assert "AAHrevoked" not in message
    assert token not in caplog.text
    assert telegram_fake.posts == []


@pytest.mark.parametrize(
    ("standing", "can_post", "expected"),
    [
        ("left", True, "Forbidden: bot is not a member of the channel chat"),
        ("administrator", False, "need administrator rights"),
    ],
)
def test_a_bot_that_may_not_post_pauses_the_account(
    telegram_fake: TelegramFake,
    connect: Callable[..., TelegramAdapter],
    standing: str,
    can_post: bool,
    expected: str,
) -> None:
    """Bot removed from the channel (403) or without the right to post (400): an
    AuthError with Telegram's words, so the account pauses instead of failing post by post."""
    telegram_fake.bot_status, telegram_fake.can_post = standing, can_post
    adapter = connect()
    with pytest.raises(AuthError, match=expected):
        run(adapter, lambda: adapter.publish(publish_request()))
    assert telegram_fake.posts == []


def test_an_unknown_chat_is_an_auth_error_naming_the_setting(
    telegram_fake: TelegramFake, connect: Callable[..., TelegramAdapter]
) -> None:
    """400 "chat not found" concerns every post: the account pauses with a hint."""
    adapter = connect(chat="@vertippt")
    with pytest.raises(AuthError, match=r"chat not found.*accounts\.t\.chat"):
        run(adapter, lambda: adapter.publish(publish_request()))


def test_a_migrated_group_names_the_new_chat_id(
    telegram_fake: TelegramFake, connect: Callable[..., TelegramAdapter]
) -> None:
    """A group turned supergroup answers migrate_to_chat_id: the message says what to set."""
    body = {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: group chat was upgraded to a supergroup chat",
        "parameters": {"migrate_to_chat_id": -1009876543210},
    }
    telegram_fake.inject(status(400, body), route=SEND)
    adapter = connect()
    with pytest.raises(AuthError, match='chat = "-1009876543210"'):
        run(adapter, lambda: adapter.publish(publish_request()))


def test_other_bad_requests_reject_the_post_with_telegrams_words(
    telegram_fake: TelegramFake, connect: Callable[..., TelegramAdapter]
) -> None:
    """Any other 400 is permanent for this post: Rejected with the description."""
    body = {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"}
    telegram_fake.inject(status(400, body), route=SEND)
    adapter = connect()
    refusal = refused(adapter, publish_request(), "message is too long")
    assert refusal.http_status == 400


def test_server_error_is_transient(
    telegram_fake: TelegramFake, connect: Callable[..., TelegramAdapter]
) -> None:
    """502 from Telegram: not processed, retry later; the next try goes through."""
    body = {"ok": False, "error_code": 502, "description": "Bad Gateway"}
    telegram_fake.inject(status(502, body), route=SEND)
    adapter = connect()

    run(adapter, lambda: transient_then_published(adapter, publish_request()))
    assert len(telegram_fake.posts) == 1


def test_a_lost_answer_is_unknown_and_cannot_be_looked_up(
    telegram_fake: TelegramFake, connect: Callable[..., TelegramAdapter]
) -> None:
    """The message landed but the answer was lost: UnknownOutcome (sent). Telegram
    offers neither idempotency nor channel history, so the adapter says it cannot
    resend safely nor reconcile, and the publisher leaves the delivery unknown."""
    telegram_fake.inject(lose_response(), route=SEND)
    adapter = connect()
    with pytest.raises(UnknownOutcome) as caught:
        run(adapter, lambda: adapter.publish(publish_request()))
    assert caught.value.sent is True
    assert len(telegram_fake.posts) == 1
    assert (adapter.idempotent_resend, adapter.can_reconcile) == (False, False)


def test_a_timeout_on_send_is_unknown(
    telegram_fake: TelegramFake, connect: Callable[..., TelegramAdapter]
) -> None:
    """No answer within the timeout after sending: the outcome is unknown, not transient."""
    telegram_fake.inject(delay(10), route=SEND)
    adapter = connect(timeout=0.3)
    with pytest.raises(UnknownOutcome):
        run(adapter, lambda: adapter.publish(publish_request()))


# -- delete, followers, verify ------------------------------------------------------------------


def test_delete_removes_the_message_and_tolerates_it_being_gone(
    telegram_fake: TelegramFake, connect: Callable[..., TelegramAdapter]
) -> None:
    """deleteMessage removes it; "message to delete not found" the second time is done."""
    adapter = connect()
    run(adapter, lambda: delete_twice(adapter, publish_request(), lambda: telegram_fake.posts))
    assert [r.status for r in telegram_fake.requests_to(DELETE)] == [200, 400]


def test_a_message_older_than_48_hours_cannot_be_deleted(
    telegram_fake: TelegramFake, connect: Callable[..., TelegramAdapter]
) -> None:
    """Telegram's "message can't be deleted" becomes Rejected naming the 48-hour rule,
    and the message stays."""
    adapter = connect()

    async def scenario() -> None:
        result = await adapter.publish(publish_request())
        telegram_fake.age(telegram_fake.posts[0].message_id, hours=49)
        with pytest.raises(Rejected, match="48 hours") as caught:
            await adapter.delete(result.remote_id)
        assert result.remote_id in caught.value.message

    run(adapter, scenario)
    assert len(telegram_fake.posts) == 1


def test_a_lost_delete_answer_is_transient(
    telegram_fake: TelegramFake, connect: Callable[..., TelegramAdapter]
) -> None:
    """Deleting again is harmless, so a lost answer means "try again", not "unknown"."""
    telegram_fake.inject(lose_response(), route=DELETE)
    adapter = connect()

    async def scenario() -> None:
        result = await adapter.publish(publish_request())
        with pytest.raises(Transient):
            await adapter.delete(result.remote_id)
        await adapter.delete(result.remote_id)

    run(adapter, scenario)
    assert telegram_fake.posts == []


def test_a_malformed_remote_id_is_rejected_without_a_request(
    telegram_fake: TelegramFake, connect: Callable[..., TelegramAdapter]
) -> None:
    """Something that is not chat/message cannot be deleted."""
    adapter = connect()
    with pytest.raises(Rejected, match="not a Telegram message id"):
        run(adapter, lambda: adapter.delete("12345"))
    assert telegram_fake.requests == []


def test_verify_names_the_channel_the_bot_and_the_subscribers(
    telegram_fake: TelegramFake, connect: Callable[..., TelegramAdapter]
) -> None:
    """accounts check: getMe + getChat + getChatMember; subscribers from getChatMemberCount.
    The Bot API has no metrics for posts."""
    adapter = connect()

    async def scenario() -> Any:
        return await adapter.verify(), await adapter.followers(), await adapter.metrics("1/2")

    info, followers, metrics = run(adapter, scenario)
    assert info.name == "@staedtedreieck"
    assert info.url == "https://t.me/staedtedreieck"
    assert info.detail is not None
    assert "@staedtedreieck_bot" in info.detail
    assert "Zweckverband Städtedreieck" in info.detail
    assert (info.followers, followers, metrics) == (1234, 1234, None)
    assert info.token_expires_at is None


def test_verify_refuses_a_bot_without_the_right_to_post(
    telegram_fake: TelegramFake, connect: Callable[..., TelegramAdapter]
) -> None:
    """A bot that is only a member of the channel cannot post: verify says so."""
    telegram_fake.bot_status = "member"
    adapter = connect()
    with pytest.raises(AuthError, match="make it an administrator"):
        run(adapter, adapter.verify)


# -- the fake itself ----------------------------------------------------------------------------


def test_the_fake_refuses_calls_the_bot_api_contract_does_not_allow(
    telegram_fake: TelegramFake,
) -> None:
    """Self-check of the fake: a misspelt field, a missing required one and a wrong type
    are answered 400 and recorded, so an adapter bug cannot pass unnoticed."""
    url = f"{telegram_fake.url}/bot{telegram_fake.token}/sendMessage"
    body = json.dumps({"chat_id": "@staedtedreieck", "txt": "Hallo", "disable_notification": 1})
    request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1
        url, data=body.encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=5)  # noqa: S310 - see above
    envelope = json.loads(answer.value.read())
    assert (answer.value.code, envelope["ok"], envelope["error_code"]) == (400, False, 400)
    [failure] = telegram_fake.validation_errors
    joined = " ".join(failure.errors)
    assert "unknown field 'txt'" in joined
    assert "required field 'text' is missing" in joined
    assert "disable_notification: expected Boolean" in joined
    assert telegram_fake.posts == []
    telegram_fake.validation_errors.clear()  # seen: the fixture's final check is for the adapter
