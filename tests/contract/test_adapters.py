"""One contract for every platform adapter, run against each platform's test server.

Each test drives the real daemon (in-process) with two accounts: the platform
under test and a console account that must never be held up by the other's
trouble. Like the rest of the contract suite, every test runs on a SQLite file and
on a PostgreSQL database of its own (the ``store`` backends of ``conftest.py``): the
pause, the rate-limit block and the uncertain delivery are written to the database.
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import tests.fakes
from tests.contract.conftest import BACKENDS
from tests.fakes.harness import HARNESSES, Harness
from tests.fakes.server import lose_response, rate_limit, status
from tests.rawsettings import settings_from

from crosspost.adapters.base import build_adapter
from crosspost.daemon import Daemon
from crosspost.models import DeliveryState, Media, Post
from crosspost.service import Crosspost
from crosspost.store.base import Store

for _module in pkgutil.iter_modules(tests.fakes.__path__):
    importlib.import_module(f"tests.fakes.{_module.name}")

SITE = "https://www.zv-staedtedreieck.de"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
    "0000000c4944415478da63f8cfc000000301010018dd8db00000000049454e44ae426082"
)


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    with HARNESSES[request.param]() as h:
        monkeypatch.setenv(h.token_env, h.token)
        yield h
        from tests.fakes.fixtures import assert_clean

        assert_clean(h.server)


class World:
    """Settings, a store and the service for one test."""

    def __init__(self, harness: Harness, tmp_path: Path, store: Store) -> None:
        self.harness = harness
        self.tmp_path = tmp_path
        self.settings = settings_from(
            site={"url": SITE, "name": "Zweckverband Städtedreieck"},
            daemon={
                "backoff_base": 0.05,
                "max_inline_wait": 5,
                "poll_interval": 0.05,
                "state_dir": str(tmp_path / "state"),
            },
            accounts={
                "p": harness.account(),
                "c": {"platform": "console"},
                # The website's copy: Instagram and Threads fetch images from it.
                "web": {
                    "platform": "feed",
                    "path": str(tmp_path / "site"),
                    "public_url": f"{SITE}/social",
                },
            },
        )
        self.store = store
        self.service = Crosspost(self.settings, self.store)

    def enqueue(self, text: str, link: str, *, media: tuple[Media, ...] = ()) -> int:
        post = Post(
            title=text[:40],
            body=text,
            link=link,
            category=None,
            publish_at=None,
            accounts=("p", "c", "web"),
            media=media or self._default_media(),
        )
        [post_id] = self.service.enqueue([self.service.plan(post)])
        return post_id

    def _default_media(self) -> tuple[Media, ...]:
        """A platform that publishes no text-only posts (Instagram) gets an image."""
        if not getattr(self.harness, "requires_media", False):
            return ()
        image = self.tmp_path / "wappen.png"
        image.write_bytes(PNG)
        return (Media(image, "Wappen des Zweckverbands", "image/png"),)

    def run_once(self) -> int:
        daemon = Daemon(self.settings, self.store, once=True, handle_signals=False)
        return asyncio.run(daemon.run())

    def states(self, post_id: int) -> dict[str, DeliveryState]:
        """The platform's and the console's deliveries (the website copy is scaffolding)."""
        return {d.account: d.state for d in self.store.deliveries_of(post_id) if d.account != "web"}

    def delivery(self, post_id: int, account: str = "p") -> Any:
        return next(d for d in self.store.deliveries_of(post_id) if d.account == account)


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, harness: Harness, tmp_path: Path) -> Iterator[World]:
    with BACKENDS[request.param](request) as store:
        yield World(harness, tmp_path, store)


def _with_link(harness: Harness, link: str) -> list[Any]:
    return [p for p in harness.posts() if link in p.text]


def test_publishes_the_text_with_the_link_once(world: World, harness: Harness) -> None:
    """The post appears once on the platform, with the canonical link, and the
    delivery records the platform's id."""
    link = f"{SITE}/aktuelles/vertrag"
    post = world.enqueue("Neuer Vertrag für die Müllabfuhr im Städtedreieck 🚛", link)
    assert world.run_once() == 0
    assert world.states(post) == {"p": DeliveryState.PUBLISHED, "c": DeliveryState.PUBLISHED}
    [on_platform] = _with_link(harness, link)
    assert "Müllabfuhr" in on_platform.text
    assert world.delivery(post).remote_id == on_platform.remote_id


def test_an_image_keeps_its_alt_text(world: World, harness: Harness) -> None:
    """An image is published with its alt text (or, without an alt field, described in the text)."""
    if not harness.supports_images:
        pytest.skip(f"{harness.platform} publishes no images")
    image = world.tmp_path / "bild.png"
    image.write_bytes(PNG)
    alt = "Das Rathaus im Abendlicht"
    link = f"{SITE}/aktuelles/rathaus"
    post = world.enqueue(
        "Das Rathaus ist renoviert.", link, media=(Media(image, alt, "image/png"),)
    )
    assert world.run_once() == 0
    assert world.states(post)["p"] is DeliveryState.PUBLISHED
    [on_platform] = _with_link(harness, link)
    assert alt in on_platform.alts or alt in on_platform.text


def test_a_revoked_credential_pauses_only_that_account(world: World, harness: Harness) -> None:
    """401: the account is paused with the platform's reason and its delivery
    waits; the console account publishes regardless; `--once` reports it."""
    harness.revoke()
    link = f"{SITE}/aktuelles/pause"
    post = world.enqueue("Ein Beitrag während einer Störung.", link)
    assert world.run_once() == 1
    assert world.states(post) == {"p": DeliveryState.RETRYING, "c": DeliveryState.PUBLISHED}
    assert world.store.account_states()["p"].paused_reason
    assert _with_link(harness, link) == []


def test_rate_limit_is_honoured(world: World, harness: Harness) -> None:
    """429 with Retry-After: 1 — the next create request comes no earlier than that."""
    harness.server.inject(rate_limit(retry_after=1), route=harness.create_route)
    link = f"{SITE}/aktuelles/langsam"
    post = world.enqueue("Bitte etwas Geduld.", link)
    assert world.run_once() == 0
    assert world.states(post)["p"] is DeliveryState.PUBLISHED
    creates = harness.server.requests_to(harness.create_route)
    assert len(creates) >= 2
    assert creates[1].received_at - creates[0].received_at >= timedelta(seconds=1)
    assert len(_with_link(harness, link)) == 1


def test_a_server_error_is_retried(world: World, harness: Harness) -> None:
    """503 on the first try: retried, published exactly once."""
    harness.server.inject(status(503), route=harness.create_route)
    link = f"{SITE}/aktuelles/wieder"
    post = world.enqueue("Zweiter Versuch.", link)
    assert world.run_once() == 0
    assert world.states(post)["p"] is DeliveryState.PUBLISHED
    assert len(_with_link(harness, link)) == 1


def test_an_answer_lost_after_landing_never_makes_a_second_copy(
    world: World, harness: Harness
) -> None:
    """The post lands but the answer is lost: the delivery ends published (found
    or safely resent) — or, where the platform gives no way to know, unknown —
    and there is exactly one copy."""
    harness.server.inject(lose_response(), route=harness.create_route)
    link = f"{SITE}/aktuelles/verloren"
    post = world.enqueue("Nur einmal, bitte.", link)
    code = world.run_once()
    expected = DeliveryState.PUBLISHED if harness.recovers_unknown else DeliveryState.UNKNOWN
    assert world.states(post)["p"] is expected
    assert code == (0 if harness.recovers_unknown else 1)
    assert len(_with_link(harness, link)) == 1


def test_delete_removes_the_post(world: World, harness: Harness) -> None:
    """A published post can be deleted (retract); deleting it again is not an error."""
    if not harness.supports_delete:
        pytest.skip(f"{harness.platform} cannot delete")
    link = f"{SITE}/aktuelles/zurueck"
    post = world.enqueue("Dieser Beitrag wird zurückgezogen.", link)
    assert world.run_once() == 0
    remote_id = world.delivery(post).remote_id

    async def delete_twice() -> None:
        adapter = build_adapter("p", world.settings)
        try:
            await adapter.delete(remote_id)
            await adapter.delete(remote_id)
        finally:
            await adapter.aclose()

    asyncio.run(delete_twice())
    assert _with_link(harness, link) == []
