"""Pytest fixtures for the fake platforms (registered in ``tests/conftest.py``).

Every fake a fixture starts is stopped after the test, and the test fails if
the client sent a request the platform's contract refuses
(``fake.validation_errors``) or the fake itself broke (``fake.server_errors``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, TypeVar

import pytest

from tests.fakes.mastodon import SPEC_NAME as MASTODON_SPEC
from tests.fakes.mastodon import MastodonFake
from tests.fakes.server import FakeServer, skip_without_spec

if TYPE_CHECKING:
    from tests.fakes.bluesky import BlueskyProxy, Pds
    from tests.fakes.linkedin import LinkedInFake
    from tests.fakes.meta import FacebookFake, InstagramFake, ThreadsFake
    from tests.fakes.telegram import TelegramFake
    from tests.fakes.x import XFake

F = TypeVar("F", bound=FakeServer)


def assert_clean(fake: FakeServer) -> None:
    """No contract violations by the client, no crash of the fake."""
    invalid = [str(v) for v in fake.validation_errors]
    assert invalid == [], f"requests the {fake.name} contract refuses:\n" + "\n".join(invalid)
    assert fake.server_errors == [], f"the {fake.name} fake broke: {fake.server_errors}"


class FakeStarter:
    """Starts fakes for one test; stops and checks them all at its end."""

    def __init__(self) -> None:
        self.started: list[FakeServer] = []

    def __call__(self, fake: F) -> F:
        self.started.append(fake.start())
        return fake

    def finish(self) -> None:
        for fake in self.started:
            fake.stop()
        for fake in self.started:
            assert_clean(fake)


@pytest.fixture
def start_fake() -> Iterator[FakeStarter]:
    """``start_fake(MastodonFake(max_characters=11))``: a started fake, checked after the test."""
    starter = FakeStarter()
    yield starter
    starter.finish()


@pytest.fixture
def mastodon_fake(start_fake: FakeStarter) -> MastodonFake:
    """A fresh Mastodon instance on 127.0.0.1 that validates every request."""
    skip_without_spec(MASTODON_SPEC)
    return start_fake(MastodonFake())


@pytest.fixture
def telegram_fake(start_fake: FakeStarter) -> TelegramFake:
    """A fresh Bot API with one bot, administrator of @staedtedreieck."""
    from tests.fakes.telegram import SPEC_NAME, TelegramFake

    skip_without_spec(SPEC_NAME)
    return start_fake(TelegramFake())


@pytest.fixture
def x_fake(start_fake: FakeStarter) -> XFake:
    """A fresh X with one user and one OAuth 2 app."""
    from tests.fakes.x import SPEC_NAME, XFake

    skip_without_spec(SPEC_NAME)
    return start_fake(XFake())


@pytest.fixture
def linkedin_fake(start_fake: FakeStarter) -> LinkedInFake:
    """A fresh LinkedIn organization page."""
    from tests.fakes.linkedin import LinkedInFake

    return start_fake(LinkedInFake())


@pytest.fixture
def facebook_fake(start_fake: FakeStarter) -> FacebookFake:
    """A fresh Facebook Page."""
    from tests.fakes.meta import FacebookFake

    return start_fake(FacebookFake())


@pytest.fixture
def instagram_fake(start_fake: FakeStarter) -> InstagramFake:
    """A fresh Instagram professional account."""
    from tests.fakes.meta import InstagramFake

    return start_fake(InstagramFake())


@pytest.fixture
def threads_fake(start_fake: FakeStarter) -> ThreadsFake:
    """A fresh Threads profile."""
    from tests.fakes.meta import ThreadsFake

    return start_fake(ThreadsFake())


@pytest.fixture(scope="module")
def pds() -> Pds:
    """The session's Bluesky PDS (installed by tests/pds/setup.sh on first use)."""
    from tests.fakes.bluesky import pds_or_skip

    return pds_or_skip()


@pytest.fixture
def proxy(pds: Pds) -> Iterator[BlueskyProxy]:
    """A fresh proxy (empty request log, no faults) in front of the PDS, checked afterwards."""
    from tests.fakes.bluesky import BlueskyProxy

    with BlueskyProxy(pds) as server:
        yield server
    assert_clean(server)
