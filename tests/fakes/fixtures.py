"""Pytest fixtures for the fake platforms (registered in ``tests/conftest.py``).

Every fake a fixture starts is stopped after the test, and the test fails if
the client sent a request the platform's contract refuses
(``fake.validation_errors``) or the fake itself broke (``fake.server_errors``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

import pytest

from tests.fakes.mastodon import SPEC_NAME as MASTODON_SPEC
from tests.fakes.mastodon import MastodonFake
from tests.fakes.server import FakeServer, skip_without_spec

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
