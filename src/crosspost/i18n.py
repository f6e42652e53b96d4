"""The one translation function every human-readable message goes through.

Source strings are English; the German catalogue lives in
``locale/de/LC_MESSAGES/crosspost.po`` (compiled to ``.mo`` beside it). The
language follows the usual gettext variables (``LANGUAGE``, ``LC_ALL``,
``LC_MESSAGES``, ``LANG``). ``--json`` output never goes through here.
"""

from __future__ import annotations

import gettext
from pathlib import Path

DOMAIN = "crosspost"
LOCALE_DIR = Path(__file__).parent / "locale"

_translation: gettext.NullTranslations | None = None


def _catalogue() -> gettext.NullTranslations:
    global _translation
    if _translation is None:
        _translation = gettext.translation(DOMAIN, localedir=LOCALE_DIR, fallback=True)
    return _translation


def _(message: str) -> str:
    """Translate ``message`` into the user's language."""
    return _catalogue().gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """Translate a message whose form depends on the count ``n``."""
    return _catalogue().ngettext(singular, plural, n)


def reset() -> None:
    """Forget the loaded catalogue, so the next message reads the environment again."""
    global _translation
    _translation = None
