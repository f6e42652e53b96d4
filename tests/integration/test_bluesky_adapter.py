"""The Bluesky adapter against a REAL Bluesky PDS (``@atproto/dev-env``) on 127.0.0.1.

Every request goes through :class:`~tests.fakes.bluesky.BlueskyProxy`, which logs
it, injects faults and checks what the PDS does not (link facets spell their URI,
images carry alt text); every test ends with the check that no request broke
those rules. What the PDS stores is read back directly from it.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import os
import struct
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from tests.adapterfixture import Requests, build, run
from tests.fakes.bluesky import (
    CREATE_RECORD,
    CREATE_SESSION,
    GET_RECORD,
    REFRESH_SESSION,
    UPLOAD_BLOB,
    BlueskyProxy,
    Pds,
)
from tests.fakes.server import lose_response, reset, status

from crosspost.adapters._atproto import (
    TidClock,
    card_description,
    facets,
    image_size,
    is_tid,
    jwt_expiry,
    tid,
)
from crosspost.adapters.bluesky import BlueskyAdapter
from crosspost.counting import graphemes
from crosspost.exceptions import AuthError, RateLimited, Rejected, Transient, UnknownOutcome
from crosspost.models import Media, PublishRequest, PublishResult

TOKEN_ENV = "CROSSPOST_TEST_BLUESKY_APP_PASSWORD"
LINK = "https://www.zv-staedtedreieck.de/aktuelles/weihnachtsmarkt"
_names = itertools.count(1)
_links = itertools.count(1)


@pytest.fixture
def app_password(pds: Pds) -> Iterator[tuple[str, str]]:
    """A new app password (name, secret) for this test, revoked afterwards."""
    name = f"integration-{os.getpid()}-{next(_names)}"
    secret = pds.create_app_password(name)
    yield name, secret
    pds.call(
        "POST",
        "com.atproto.server.revokeAppPassword",
        body={"name": name},
        token=pds.admin_token(),
    )


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def connect(
    pds: Pds,
    proxy: BlueskyProxy,
    app_password: tuple[str, str],
    state_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., BlueskyAdapter]:
    """Build an adapter for the proxied PDS from Settings, as the daemon does."""

    def make(*, secret: str | None = None, timeout: float = 10.0) -> BlueskyAdapter:
        monkeypatch.setenv(TOKEN_ENV, secret or app_password[1])
        account = {"platform": "bluesky", "base_url": proxy.url, "token_env": TOKEN_ENV}
        account["handle"] = pds.handle
        return build(BlueskyAdapter, "bsky", account, timeout=timeout, state_dir=state_dir)

    return make


def unique_link() -> str:
    return f"{LINK}-{os.getpid()}-{next(_links)}"


def publish_request(
    text: str,
    *,
    link: str = LINK,
    media: tuple[Media, ...] = (),
    progress: Mapping[str, str] | None = None,
    saved: dict[str, str] | None = None,
    key: str = "d-1",
) -> PublishRequest:
    """A request whose checkpoints are written into ``saved`` (the delivery row's stand-in)."""

    async def checkpoint(values: Mapping[str, str]) -> None:
        if saved is not None:
            saved.update(values)

    requests = Requests("bsky", text, link=link, title="Weihnachtsmarkt im Städtedreieck", key=key)
    return requests(media=media, progress=progress, checkpoint=checkpoint)


def posts_with(pds: Pds, link: str) -> list[dict[str, Any]]:
    return [r for r in pds.records() if link in r["value"].get("text", "")]


def rkey_of(result: PublishResult) -> str:
    return result.remote_id.rsplit("/", 1)[-1]


def png(width: int, height: int) -> bytes:
    """A real (grey) PNG of the given size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def jpeg_header(width: int, height: int) -> bytes:
    """The start of a baseline JPEG (SOI, APP0, SOF0) announcing ``width`` x ``height``."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


# --- text, links, facets ------------------------------------------------------------------------


def test_umlauts_and_emoji_before_the_link_give_a_facet_on_exactly_its_bytes(
    pds: Pds, proxy: BlueskyProxy, connect: Callable[..., BlueskyAdapter]
) -> None:
    """The PDS accepts the post as lexicon-valid, and the stored link facet's
    byteStart/byteEnd cover exactly the link's UTF-8 bytes (not its characters)."""
    link = unique_link()
    text = f"Grüße aus dem Städtedreieck 🎄👩‍👩‍👧 – der Weihnachtsmarkt öffnet!\n\n{link}"
    adapter = connect()
    result = run(adapter, lambda: adapter.publish(publish_request(text, link=link)))

    [(code, answer)] = proxy.answers_to(CREATE_RECORD)
    assert code == 200
    assert answer["validationStatus"] == "valid"
    stored = pds.record(rkey_of(result))
    assert stored is not None
    record = stored["value"]
    assert record["text"] == text
    [facet] = record["facets"]
    raw = text.encode("utf-8")
    start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
    assert (start, end) == (raw.index(link.encode()), len(raw))
    assert start != text.index(link)  # bytes, not characters
    assert raw[start:end] == link.encode()
    assert facet["features"] == [{"$type": "app.bsky.richtext.facet#link", "uri": link}]
    card = record["embed"]["external"]
    assert card["uri"] == link
    assert card["title"] == "Weihnachtsmarkt im Städtedreieck"
    assert card["description"].startswith("Grüße aus dem Städtedreieck")
    assert link not in card["description"]
    assert result.remote_id == f"at://{pds.did}/app.bsky.feed.post/{rkey_of(result)}"
    assert result.remote_url == f"https://bsky.app/profile/{pds.handle}/post/{rkey_of(result)}"


def test_every_url_and_hashtag_gets_its_facet() -> None:
    """A second URL in the text is a link too, trailing punctuation stays outside it,
    and hashtags become tag facets (a "#" inside a URL does not)."""
    text = f"Mehr unter https://example.org/a#b. #Städtedreieck #2026 {LINK}"
    found = facets(text, LINK)
    raw = text.encode()
    spans = [raw[f["index"]["byteStart"] : f["index"]["byteEnd"]].decode() for f in found]
    assert spans == ["https://example.org/a#b", "#Städtedreieck", LINK]
    assert found[1]["features"] == [
        {"$type": "app.bsky.richtext.facet#tag", "tag": "Städtedreieck"}
    ]


def test_300_graphemes_are_accepted_and_301_refused_before_sending(
    pds: Pds, proxy: BlueskyProxy, connect: Callable[..., BlueskyAdapter]
) -> None:
    """Exactly 300 graphemes (emoji and the link included) pass the PDS's lexicon check;
    one more is refused by the adapter without a request, as is a text over 3000 bytes."""
    link = unique_link()
    filler = 300 - len(link) - 2
    text = "🎄" * 10 + "ä" * (filler - 10) + "\n\n" + link
    adapter = connect()
    run(adapter, lambda: adapter.publish(publish_request(text, link=link)))
    [(code, answer)] = proxy.answers_to(CREATE_RECORD)
    assert (code, answer["validationStatus"]) == (200, "valid")

    too_long = "ö" + text
    family = "👩‍👩‍👧‍👦" * 120 + "\n\n" + link  # 122+ graphemes, over 3000 bytes
    for bad in (too_long, family):
        adapter = connect()
        with pytest.raises(Rejected, match="graphemes") as caught:
            run(adapter, partial(adapter.publish, publish_request(bad, link=link)))
        assert caught.value.sent is False
    assert proxy.count(CREATE_RECORD) == 1


def test_tids_are_valid_increasing_record_keys() -> None:
    """TIDs encode microseconds and clock id base32-sortably (checked against the atcute
    reference value), and one clock never repeats or goes back."""
    assert tid(0, 0) == "2222222222222"
    assert tid(1724171495793000, 512) == "3l25zusnsfck2"
    clock = TidClock(clock_id=5)
    keys = [clock.next() for _ in range(1000)]
    assert all(is_tid(key) for key in keys)
    assert keys == sorted(set(keys))
    assert not is_tid("abc")
    assert not is_tid("zzzzzzzzzzzzz")  # the top bit must be 0


def test_the_card_description_is_the_text_without_links_in_200_graphemes() -> None:
    """Links are left out, whitespace collapsed, and a long text ends in "…" at 200."""
    assert card_description(f"Markt  am\n\nSamstag {LINK}", LINK) == "Markt am Samstag"
    long = card_description("👩‍👩‍👧 " * 150 + LINK, LINK)
    assert long.endswith("…")
    assert 190 <= graphemes(long) <= 200


def test_jwt_expiry_is_read_without_verifying() -> None:
    """The exp claim of a JWT, or None for anything that is not one."""
    payload = base64.urlsafe_b64encode(b'{"exp": 1700000000}').rstrip(b"=").decode()
    assert jwt_expiry(f"e30.{payload}.sig") == 1700000000
    assert jwt_expiry("not a token") is None


# --- images -------------------------------------------------------------------------------------


def test_images_go_up_as_blobs_with_alt_text_and_aspect_ratio(
    pds: Pds, proxy: BlueskyProxy, connect: Callable[..., BlueskyAdapter], tmp_path: Path
) -> None:
    """Each image is uploaded raw and embedded with its alt text and the width/height
    read from its header; with images there is no link card, but the link facet stays."""
    first, second = tmp_path / "rathaus.png", tmp_path / "markt.jpg"
    first.write_bytes(png(4, 3))
    second.write_bytes(jpeg_header(640, 480))
    media = (
        Media(first, "Das Rathaus im Abendlicht", "image/png"),
        Media(second, "Beleuchtete Marktstände auf dem Platz der Freiheit", "image/jpeg"),
    )
    link = unique_link()
    adapter = connect()
    result = run(
        adapter,
        lambda: adapter.publish(
            publish_request(f"Bilder vom Markt.\n\n{link}", link=link, media=media)
        ),
    )

    uploads = proxy.requests_to(UPLOAD_BLOB)
    assert [u.content_type for u in uploads] == ["image/png", "image/jpeg"]
    assert [u.body for u in uploads] == [first.read_bytes(), second.read_bytes()]
    stored = pds.record(rkey_of(result))
    assert stored is not None
    embed = stored["value"]["embed"]
    assert embed["$type"] == "app.bsky.embed.images"
    assert [i["alt"] for i in embed["images"]] == [m.alt for m in media]
    assert [i["aspectRatio"] for i in embed["images"]] == [
        {"width": 4, "height": 3},
        {"width": 640, "height": 480},
    ]
    assert [i["image"]["mimeType"] for i in embed["images"]] == ["image/png", "image/jpeg"]
    assert stored["value"]["facets"][0]["features"][0]["uri"] == link


def test_an_image_over_one_megabyte_is_refused_before_anything_is_sent(
    proxy: BlueskyProxy, connect: Callable[..., BlueskyAdapter], tmp_path: Path
) -> None:
    """1 000 001 bytes: Rejected without an upload or a record (nor a login)."""
    big = tmp_path / "gross.png"
    big.write_bytes(png(1, 1) + b"\x00" * (1_000_001 - len(png(1, 1))))
    adapter = connect()
    with pytest.raises(Rejected, match="1000000") as caught:
        run(
            adapter,
            lambda: adapter.publish(
                publish_request(f"Zu groß.\n\n{LINK}", media=(Media(big, "Alt", "image/png"),))
            ),
        )
    assert caught.value.sent is False
    assert proxy.requests == []


@pytest.mark.parametrize(
    ("data", "size"),
    [
        (png(7, 5), (7, 5)),
        (jpeg_header(1200, 800), (1200, 800)),
        (b"GIF89a" + struct.pack("<HH", 10, 20) + b"\x00" * 8, (10, 20)),
        (b"not an image", None),
    ],
)
def test_image_dimensions_come_from_the_file_header(data: bytes, size: Any) -> None:
    """PNG, JPEG and GIF headers give (width, height); anything else gives None."""
    assert image_size(data) == size


# --- delete, metrics, account -------------------------------------------------------------------


def test_delete_removes_the_record_and_deleting_again_is_fine(
    pds: Pds, connect: Callable[..., BlueskyAdapter]
) -> None:
    """deleteRecord removes the post; a second delete of the same URI is no error."""
    link = unique_link()
    adapter = connect()

    async def scenario() -> PublishResult:
        result = await adapter.publish(publish_request(f"Wird zurückgezogen.\n\n{link}", link=link))
        await adapter.delete(result.remote_id)
        await adapter.delete(result.remote_id)
        return result

    result = run(adapter, scenario)
    assert pds.record(rkey_of(result)) is None
    assert posts_with(pds, link) == []


def test_deleting_another_accounts_record_is_refused(
    connect: Callable[..., BlueskyAdapter],
) -> None:
    """A URI of another repository is refused with a clear message, not sent."""
    adapter = connect()
    with pytest.raises(Rejected, match="another account"):
        run(adapter, lambda: adapter.delete("at://did:plc:someoneelse/app.bsky.feed.post/3k2a"))


def test_metrics_and_followers_are_none_on_a_pds_without_appview(
    pds: Pds, connect: Callable[..., BlueskyAdapter]
) -> None:
    """A bare PDS does not serve app.bsky.feed.getPosts / actor.getProfile: no figures,
    no failure; verify names the handle and DID."""
    link = unique_link()
    adapter = connect()

    async def scenario() -> tuple[Any, Any, Any]:
        result = await adapter.publish(publish_request(f"Zahlen?\n\n{link}", link=link))
        return (
            await adapter.metrics(result.remote_id),
            await adapter.followers(),
            await adapter.verify(),
        )

    metrics, followers, info = run(adapter, scenario)
    assert metrics is None
    assert followers is None
    assert info.name == f"@{pds.handle}"
    assert info.detail == pds.did
    assert info.url == f"https://bsky.app/profile/{pds.handle}"


# --- never twice --------------------------------------------------------------------------------


def test_a_crash_between_create_record_and_recording_the_result_makes_no_second_record(
    pds: Pds, proxy: BlueskyProxy, connect: Callable[..., BlueskyAdapter]
) -> None:
    """The PDS creates the record but the answer is lost, then the process dies. A new
    adapter with the checkpointed progress finds the record (getRecord) and returns it:
    one record, one createRecord."""
    link = unique_link()
    saved: dict[str, str] = {}
    proxy.inject(lose_response(), route=CREATE_RECORD)
    first = connect()
    with pytest.raises(UnknownOutcome):
        run(
            first,
            lambda: first.publish(
                publish_request(f"Nur einmal.\n\n{link}", link=link, saved=saved)
            ),
        )
    assert is_tid(saved["rkey"])
    assert pds.record(saved["rkey"]) is not None  # it did land

    second = connect()  # a new process: nothing in memory, only the delivery's progress
    result = run(
        second,
        lambda: second.publish(
            publish_request(f"Nur einmal.\n\n{link}", link=link, progress=saved)
        ),
    )

    assert rkey_of(result) == saved["rkey"]
    assert result.remote_id == f"at://{pds.did}/app.bsky.feed.post/{saved['rkey']}"
    assert len(posts_with(pds, link)) == 1
    assert proxy.count(CREATE_RECORD) == 1
    assert proxy.count(CREATE_SESSION) == 1  # the session survived the "crash" too


def test_find_existing_answers_from_the_checkpointed_key(
    pds: Pds, proxy: BlueskyProxy, connect: Callable[..., BlueskyAdapter]
) -> None:
    """find_existing: None before any key was chosen; the record once it landed under
    the checkpointed key; None for a key that never landed."""
    link = unique_link()
    saved: dict[str, str] = {}
    proxy.inject(lose_response(), route=CREATE_RECORD)
    adapter = connect()

    async def scenario() -> list[PublishResult | None]:
        request = publish_request(f"Gefunden?\n\n{link}", link=link, saved=saved)
        before = await adapter.find_existing(request)
        with pytest.raises(UnknownOutcome):
            await adapter.publish(request)
        fresh = connect()
        found = await fresh.find_existing(dataclasses.replace(request, progress=dict(saved)))
        never = await fresh.find_existing(
            dataclasses.replace(request, progress={"rkey": tid(int(time.time() * 1e6), 7)})
        )
        await fresh.aclose()
        return [before, found, never]

    before, found, never = run(adapter, scenario)
    assert before is None
    assert found is not None
    assert rkey_of(found) == saved["rkey"]
    assert never is None


def test_a_request_reset_before_it_landed_is_sent_again_under_the_same_key(
    pds: Pds, proxy: BlueskyProxy, connect: Callable[..., BlueskyAdapter]
) -> None:
    """The connection is reset before the PDS saw the record: the next attempt (new
    process, same progress) looks, finds nothing, and creates it under the key that
    was checkpointed first."""
    link = unique_link()
    saved: dict[str, str] = {}
    proxy.inject(reset(), route=CREATE_RECORD)
    first = connect()
    with pytest.raises((UnknownOutcome, Transient)):
        run(
            first, lambda: first.publish(publish_request(f"Neu.\n\n{link}", link=link, saved=saved))
        )
    assert pds.record(saved["rkey"]) is None

    second = connect()
    result = run(
        second,
        lambda: second.publish(publish_request(f"Neu.\n\n{link}", link=link, progress=saved)),
    )
    assert rkey_of(result) == saved["rkey"]
    assert len(posts_with(pds, link)) == 1


def test_an_existing_key_answered_with_a_server_error_is_looked_up(
    pds: Pds, proxy: BlueskyProxy, connect: Callable[..., BlueskyAdapter]
) -> None:
    """When the lookup misses a record that exists (here: a faked RecordNotFound), the
    PDS refuses to create the key again (500) and the adapter looks it up: still one."""
    link = unique_link()
    saved: dict[str, str] = {}
    adapter = connect()
    first = run(
        adapter,
        lambda: adapter.publish(publish_request(f"Schon da.\n\n{link}", link=link, saved=saved)),
    )
    proxy.inject(
        status(400, {"error": "RecordNotFound", "message": "Could not locate record"}),
        route=GET_RECORD,
    )
    again = connect()
    result = run(
        again,
        lambda: again.publish(publish_request(f"Schon da.\n\n{link}", link=link, progress=saved)),
    )
    assert [code for code, _ in proxy.answers_to(CREATE_RECORD)] == [200, 500]
    assert result.remote_id == first.remote_id
    assert len(posts_with(pds, link)) == 1


def test_a_server_error_is_retried_with_the_same_record_key(
    pds: Pds, proxy: BlueskyProxy, connect: Callable[..., BlueskyAdapter]
) -> None:
    """503 on createRecord: Transient; the retry in the same process reuses the key."""
    link = unique_link()
    proxy.inject(status(503), route=CREATE_RECORD)
    adapter = connect()
    request = publish_request(f"Zweiter Versuch.\n\n{link}", link=link)

    async def scenario() -> PublishResult:
        with pytest.raises(Transient):
            await adapter.publish(request)
        return await adapter.publish(request)

    result = run(adapter, scenario)
    keys = [r.json()["rkey"] for r in proxy.requests_to(CREATE_RECORD)]
    assert keys == [rkey_of(result), rkey_of(result)]
    assert len(posts_with(pds, link)) == 1


# --- sessions -----------------------------------------------------------------------------------


def test_five_posts_log_in_once(
    pds: Pds,
    proxy: BlueskyProxy,
    connect: Callable[..., BlueskyAdapter],
    state_dir: Path,
    app_password: tuple[str, str],
) -> None:
    """Five posts, each by a new adapter (as after restarts), call createSession once:
    the session lives in a 0600 file that holds no app password."""
    for n in range(5):
        link = unique_link()
        adapter = connect()
        run(
            adapter,
            partial(
                adapter.publish,
                publish_request(f"Beitrag {n}.\n\n{link}", link=link, key=f"d-{n}"),
            ),
        )
    assert proxy.count(CREATE_RECORD) == 5
    assert proxy.count(CREATE_SESSION) == 1
    assert proxy.count(REFRESH_SESSION) == 0
    session_file = state_dir / "sessions" / "bsky.json"
    assert session_file.stat().st_mode & 0o777 == 0o600
    assert app_password[1] not in session_file.read_text()
    assert set(json.loads(session_file.read_text())) >= {"did", "accessJwt", "refreshJwt"}


def _tamper(state_dir: Path, **tokens: str) -> None:
    path = state_dir / "sessions" / "bsky.json"
    data = json.loads(path.read_text())
    data.update(tokens)
    path.write_text(json.dumps(data))


def _login(connect: Callable[..., BlueskyAdapter]) -> dict[str, Any]:
    adapter = connect()
    run(adapter, adapter.verify)
    return dict(json.loads((adapter.state_dir / "bsky.json").read_text()))


def test_an_expired_access_token_is_refreshed_not_logged_in_again(
    pds: Pds, proxy: BlueskyProxy, connect: Callable[..., BlueskyAdapter], state_dir: Path
) -> None:
    """A stored access token that has expired (signed by the PDS, exp in the past) is
    renewed with refreshSession; no second createSession; the new pair is stored."""
    session = _login(connect)
    _tamper(state_dir, accessJwt=pds.expired_copy(session["accessJwt"]))
    link = unique_link()
    adapter = connect()
    run(adapter, lambda: adapter.publish(publish_request(f"Frisch.\n\n{link}", link=link)))

    assert proxy.count(CREATE_SESSION) == 1
    assert proxy.count(REFRESH_SESSION) == 1
    assert len(posts_with(pds, link)) == 1
    stored = json.loads((state_dir / "sessions" / "bsky.json").read_text())
    assert stored["refreshJwt"] != session["refreshJwt"]


def test_an_access_token_the_server_refuses_is_refreshed(
    pds: Pds, proxy: BlueskyProxy, connect: Callable[..., BlueskyAdapter], state_dir: Path
) -> None:
    """The PDS answers 400 InvalidToken (a bad signature), and another time 400
    ExpiredToken: each time the adapter refreshes and repeats the call, never logs in."""
    session = _login(connect)
    head, payload, signature = session["accessJwt"].split(".")
    _tamper(state_dir, accessJwt=f"{head}.{payload}.{signature[::-1]}")
    link = unique_link()
    adapter = connect()
    run(adapter, lambda: adapter.publish(publish_request(f"Ungültig.\n\n{link}", link=link)))
    assert proxy.answers_to(CREATE_RECORD)[0][1]["error"] == "InvalidToken"

    proxy.inject(
        status(400, {"error": "ExpiredToken", "message": "Token has expired"}), route=CREATE_RECORD
    )
    link2 = unique_link()
    adapter = connect()
    run(adapter, lambda: adapter.publish(publish_request(f"Abgelaufen.\n\n{link2}", link=link2)))

    assert proxy.count(CREATE_SESSION) == 1
    assert proxy.count(REFRESH_SESSION) == 2
    assert len(posts_with(pds, link)) == len(posts_with(pds, link2)) == 1


def test_a_refused_refresh_token_leads_to_one_new_login(
    pds: Pds, proxy: BlueskyProxy, connect: Callable[..., BlueskyAdapter], state_dir: Path
) -> None:
    """Both stored tokens refused: one refreshSession (refused), then one createSession."""
    session = _login(connect)
    _tamper(
        state_dir,
        accessJwt=pds.expired_copy(session["accessJwt"]),
        refreshJwt=session["refreshJwt"][:-4] + "AAAA",
    )
    link = unique_link()
    adapter = connect()
    run(adapter, lambda: adapter.publish(publish_request(f"Neu anmelden.\n\n{link}", link=link)))
    assert proxy.count(REFRESH_SESSION) == 1
    assert proxy.count(CREATE_SESSION) == 2
    assert len(posts_with(pds, link)) == 1


def test_a_revoked_app_password_is_an_auth_error_and_nothing_is_posted(
    pds: Pds,
    proxy: BlueskyProxy,
    connect: Callable[..., BlueskyAdapter],
    app_password: tuple[str, str],
) -> None:
    """createSession answers 401 for a revoked app password: AuthError naming the
    handle, without the secret; nothing is created."""
    pds.revoke_app_password(app_password[0])
    link = unique_link()
    adapter = connect()
    with pytest.raises(AuthError) as caught:
        run(adapter, lambda: adapter.publish(publish_request(f"Gesperrt.\n\n{link}", link=link)))
    assert pds.handle in caught.value.message
    assert "Invalid identifier or password" in caught.value.message
    assert app_password[1] not in caught.value.message
    assert proxy.count(CREATE_RECORD) == 0
    # revoke it only once: the fixture's revoke answers 200 for an unknown name too


# --- rate limits --------------------------------------------------------------------------------


def test_rate_limit_reset_header_is_honoured(
    proxy: BlueskyProxy, connect: Callable[..., BlueskyAdapter]
) -> None:
    """429 RateLimitExceeded with RateLimit-Reset (epoch seconds): RateLimited until that
    instant, and no further request goes out before it."""
    reset_at = int(time.time()) + 120
    proxy.inject(
        status(
            429,
            {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
            {
                "RateLimit-Limit": "5000",
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(reset_at),
            },
        ),
        route=CREATE_RECORD,
    )
    adapter = connect()
    request = publish_request(f"Langsam.\n\n{unique_link()}")

    async def scenario() -> list[RateLimited]:
        caught = []
        for _ in range(2):
            try:
                await adapter.publish(request)
            except RateLimited as exc:
                caught.append(exc)
        return caught

    first, second = run(adapter, scenario)
    assert first.until == datetime.fromtimestamp(reset_at, UTC)
    assert second.until == first.until
    assert proxy.count(CREATE_RECORD) == 1
