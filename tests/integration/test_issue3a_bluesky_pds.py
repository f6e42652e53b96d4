"""Issue 3 (Bluesky, real PDS): every URL of the text gets its ``#link`` facet on exactly
its UTF-8 bytes (not only the canonical link), and the figures an AppView gives (likes,
reposts, replies; followers) are read — a bare PDS has no AppView, so the proxy answers
those two calls as the AppView does, everything else is the real PDS.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.adapterfixture import Requests, build, run
from tests.fakes.bluesky import CREATE_RECORD, GET_POSTS, GET_PROFILE, BlueskyProxy, Pds
from tests.fakes.server import status

from crosspost.adapters.bluesky import BlueskyAdapter
from crosspost.models import PostMetrics

TOKEN_ENV = "CROSSPOST_TEST_BLUESKY_APP_PASSWORD"
SITE = "https://www.zv-staedtedreieck.de"


@pytest.fixture
def connect(
    pds: Pds, proxy: BlueskyProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[], BlueskyAdapter]]:
    name = f"issue3a-{os.getpid()}-{tmp_path.name}"
    monkeypatch.setenv(TOKEN_ENV, pds.create_app_password(name))
    account = {"platform": "bluesky", "base_url": proxy.url, "token_env": TOKEN_ENV}
    account["handle"] = pds.handle

    def make() -> BlueskyAdapter:
        return build(BlueskyAdapter, "bsky", account, timeout=10.0, state_dir=tmp_path / "s")

    yield make
    pds.revoke_app_password(name)


def test_every_url_in_the_text_is_a_link_facet_on_its_exact_bytes(
    pds: Pds, proxy: BlueskyProxy, connect: Callable[[], BlueskyAdapter], tmp_path: Path
) -> None:
    """Umlauts and emoji before two other URLs (one with trailing punctuation) and the
    canonical link: the PDS accepts the record as valid, and getRecord returns one link
    facet per URL, each on exactly that URL's UTF-8 bytes."""
    link = f"{SITE}/aktuelles/fahrplan-{os.getpid()}-{tmp_path.name}"
    other = "https://www.vbb.de/fahrplan?linie=Ü5&tag=sa"
    third = "https://example.org/straßenfest"
    text = f"Busse 🚌 zum Straßenfest: {other}, Lageplan 🗺️ unter {third}.\n\n{link}"
    requests = Requests("bsky", text, link=link, title="Fahrplan", key=f"d-{tmp_path.name}")
    adapter = connect()
    result = run(adapter, lambda: adapter.publish(requests()))

    [(code, answer)] = proxy.answers_to(CREATE_RECORD)
    assert (code, answer["validationStatus"]) == (200, "valid")
    stored = pds.record(result.remote_id.rsplit("/", 1)[-1])
    assert stored is not None
    raw = stored["value"]["text"].encode("utf-8")
    links = [
        (raw[f["index"]["byteStart"] : f["index"]["byteEnd"]].decode(), f["features"][0]["uri"])
        for f in stored["value"]["facets"]
        if f["features"][0]["$type"] == "app.bsky.richtext.facet#link"
    ]
    assert links == [(other, other), (third, third), (link, link)]
    assert stored["value"]["embed"]["external"]["uri"] == link  # the card: canonical only


def test_likes_reposts_replies_and_followers_come_from_the_appview(
    pds: Pds, proxy: BlueskyProxy, connect: Callable[[], BlueskyAdapter], tmp_path: Path
) -> None:
    """getPosts' likeCount/repostCount/replyCount for the post's URI and getProfile's
    followersCount for the account's DID (Bluesky shows no views)."""
    link = f"{SITE}/aktuelles/zahlen-{os.getpid()}-{tmp_path.name}"
    requests = Requests("bsky", f"Zahlen bitte.\n\n{link}", link=link, title="Zahlen", key="d-m")
    adapter = connect()

    async def scenario() -> tuple[PostMetrics | None, int | None, str]:
        result = await adapter.publish(requests())
        view = {"uri": result.remote_id, "likeCount": 12, "repostCount": 3, "replyCount": 4}
        proxy.inject(status(200, {"posts": [view]}), route=GET_POSTS)
        proxy.inject(status(200, {"did": pds.did, "followersCount": 321}), route=GET_PROFILE)
        return await adapter.metrics(result.remote_id), await adapter.followers(), result.remote_id

    metrics, followers, uri = run(adapter, scenario)
    assert metrics == PostMetrics(likes=12, reposts=3, replies=4, views=None)
    assert followers == 321
    [posts_call] = proxy.requests_to(GET_POSTS)
    assert posts_call.arg("uris") == uri
    [profile_call] = proxy.requests_to(GET_PROFILE)
    assert profile_call.arg("actor") == pds.did
