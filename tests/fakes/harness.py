"""What the adapter contract suite (``tests/contract/test_adapters.py``) needs from a
platform's test server: how to configure an account against it, what is on it,
how to revoke the credential, and where to inject faults.

Each platform registers a factory in :data:`HARNESSES`; the suite runs every
test against every registered platform.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from tests.fakes.server import FakeServer


@dataclass(frozen=True)
class OnPlatform:
    """One post as the platform shows it."""

    remote_id: str
    text: str
    alts: list[str] = field(default_factory=list)


class Harness(Protocol):
    #: the platform name of crosspost's config
    platform: str
    #: the server every request goes through (a fake, or a proxy in front of a real server)
    server: FakeServer
    #: the route key (``"POST /api/v1/statuses"``) where publish faults are injected
    create_route: str
    #: the environment variable holding the account's secret, and its value
    token_env: str
    token: str
    #: images with alt text can be published
    supports_images: bool
    #: after "the answer was lost once the post landed", the adapter can settle the
    #: delivery as published (lookup or idempotency); False: it stays unknown (Telegram)
    recovers_unknown: bool
    #: a post can be deleted (retract)
    supports_delete: bool

    def account(self) -> dict[str, Any]:
        """The ``[accounts.<name>]`` table for crosspost's settings."""
        ...

    def posts(self) -> list[OnPlatform]:
        """What is on the account now (deleted posts left out)."""
        ...

    def revoke(self) -> None:
        """Make the configured credential invalid: the next call answers 401."""
        ...


class ServedAccount:
    """The account a harness configures: the platform's table pointing at the harness's
    server, with the secret in ``token_env``, plus the platform's own keys."""

    platform: str
    token_env: str
    server: FakeServer

    def account(self) -> dict[str, Any]:
        table: dict[str, Any] = {
            "platform": self.platform,
            "base_url": self.server.url,
            "token_env": self.token_env,
        }
        return table | self.account_keys()

    def account_keys(self) -> dict[str, Any]:
        """The keys the platform's account needs besides those three."""
        return {}


HarnessFactory = Callable[[], AbstractContextManager[Harness]]
HARNESSES: dict[str, HarnessFactory] = {}


def register(name: str) -> Callable[[HarnessFactory], HarnessFactory]:
    def decorate(factory: HarnessFactory) -> HarnessFactory:
        HARNESSES[name] = factory
        return factory

    return decorate


def register_server(name: str, make: Callable[[], Harness]) -> None:
    """Register the harness ``make`` builds, its server running while the test uses it."""

    @contextmanager
    def started() -> Iterator[Harness]:
        harness = make()
        with harness.server:
            yield harness

    HARNESSES[name] = started


# -- Mastodon ------------------------------------------------------------------------------
class MastodonHarness(ServedAccount):
    platform = "mastodon"
    create_route = "POST /api/v1/statuses"
    token_env = "CROSSPOST_TEST_MASTODON_TOKEN"
    supports_images = True
    recovers_unknown = True
    supports_delete = True

    def __init__(self) -> None:
        from tests.fakes.mastodon import SPEC_NAME, MastodonFake
        from tests.fakes.server import skip_without_spec

        skip_without_spec(SPEC_NAME)
        self.server = MastodonFake(media_polls=1)
        self.fake = self.server
        self.token = self.server.token

    def posts(self) -> list[OnPlatform]:
        return [
            OnPlatform(
                remote_id=s.id,
                text=s.text,
                alts=[self.fake.media[m].description or "" for m in s.media_ids],
            )
            for s in self.fake.statuses
        ]

    def revoke(self) -> None:
        self.fake.token = "revoked"


register_server("mastodon", MastodonHarness)
