"""Unit-test fixtures: hermetic environment, English messages, and a Settings factory."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.rawsettings import settings_from

from crosspost import i18n
from crosspost.config import Settings

SITE_URL = "https://www.zv-staedtedreieck.de"

#: the accounts most unit tests publish to; each platform's default limit applies
DEFAULT_ACCOUNTS: dict[str, dict[str, Any]] = {
    "mastodon": {"platform": "mastodon", "base_url": "https://social.example"},
    "bluesky": {"platform": "bluesky", "handle": "zv-staedtedreieck.bsky.social"},
    "telegram": {"platform": "telegram", "chat": "@zv_staedtedreieck"},
    "website": {"platform": "feed", "path": "queue/site"},
}

SettingsFactory = Callable[..., Settings]


@pytest.fixture(autouse=True)
def _hermetic_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Unit tests see no CROSSPOST_* or systemd variables and read English messages.

    Settings reads the environment, so a variable left in the developer's shell
    would otherwise change what a test sees; the message language is pinned so
    assertions on message text hold whatever catalogue is installed.
    """
    for name in list(os.environ):
        if name.startswith("CROSSPOST_") or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)
    monkeypatch.setenv("LANGUAGE", "C")
    i18n.reset()
    yield
    i18n.reset()


@pytest.fixture
def settings() -> SettingsFactory:
    """Build Settings directly: ``settings(accounts=…, routing=…, link_hosts=[…])``.

    Keyword arguments other than ``accounts`` and ``routing`` go into ``[site]``.
    """

    def make(
        *,
        accounts: dict[str, dict[str, Any]] | None = None,
        routing: dict[str, list[str]] | None = None,
        **site: Any,
    ) -> Settings:
        site_table: dict[str, Any] = {"url": SITE_URL, "name": "Zweckverband Städtedreieck"}
        site_table.update(site)
        return settings_from(
            site=site_table,
            accounts=DEFAULT_ACCOUNTS if accounts is None else accounts,
            routing=routing or {},
        )

    return make
