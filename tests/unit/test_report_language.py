"""The report's language is chosen by --lang, whatever the process's locale."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from crosspost import i18n


@pytest.fixture(autouse=True)
def _fresh_catalogue() -> Iterator[None]:
    yield
    i18n.reset()  # the process's own catalogue follows the restored environment again


@pytest.mark.parametrize("environment", ["de_DE.UTF-8", "en_US.UTF-8", "C"])
def test_an_explicit_language_ignores_the_locale(
    environment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """German is German and English is English under any LANGUAGE/LANG."""
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.setenv(name, environment)
    i18n.reset()
    german = i18n.translation("de").gettext("Posts")
    assert german == "Beiträge"
    assert i18n.translation("en").gettext("Posts") == "Posts"
    assert i18n.translation("en_GB").gettext("Posts") == "Posts"
