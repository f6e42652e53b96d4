"""LinkedIn's pure helpers: little text escaping, the daily quota reset, organization URNs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.fakes.linkedin import read_little_text

from crosspost.adapters.linkedin import (
    LITTLE_RESERVED,
    daily_quota_reset,
    escape_little_text,
    next_utc_midnight,
    organization_urn,
    unescape_little_text,
)

LINK = "https://www.zv-staedtedreieck.de/aktuelles/weihnachtsmarkt"


@pytest.mark.parametrize("char", list("\\|{}@[]()<>#*_~"))
def test_every_reserved_character_gets_one_backslash(char: str) -> None:
    """Each of the 15 reserved characters is preceded by exactly one backslash."""
    assert escape_little_text(f"a{char}b") == f"a\\{char}b"


def test_the_reserved_set_is_linkedins() -> None:
    """The set matches LinkedIn's documentation: \\ | { } @ [ ] ( ) < > # * _ ~."""
    assert sorted(LITTLE_RESERVED) == sorted("\\|{}@[]()<>#*_~")


def test_plain_text_umlauts_emoji_and_links_pass_unchanged() -> None:
    """Text without reserved characters, including German letters, emoji, punctuation
    and the canonical link, is sent as it is."""
    text = f"Müllabfuhr: neue Touren ab 1. Dezember! 🚛 „Fragen?“ – 50 % & mehr.\n\n{LINK}"
    assert escape_little_text(text) == text


def test_a_realistic_post_is_escaped_character_by_character() -> None:
    """Parentheses, hashtags, mentions and a Windows path in one text."""
    text = "Wertstoffhof (Ost) #Sperrmüll @Rathaus C:\\Daten\\plan_2026.pdf"
    assert escape_little_text(text) == (
        "Wertstoffhof \\(Ost\\) \\#Sperrmüll \\@Rathaus C:\\\\Daten\\\\plan\\_2026.pdf"
    )


def test_escaping_twice_escapes_the_backslashes_too() -> None:
    """Escaping is not idempotent: the adapter escapes the editor's text exactly once."""
    once = escape_little_text("(a)")
    assert escape_little_text(once) == "\\\\\\(a\\\\\\)"


@given(st.text())
def test_unescape_inverts_escape(text: str) -> None:
    """Reconciliation reads LinkedIn's stored commentary back to the editor's text."""
    assert unescape_little_text(escape_little_text(text)) == text


@given(st.text(alphabet=st.sampled_from([*LITTLE_RESERVED, "a", " ", "ä", "\n"])))
def test_linkedin_shows_escaped_text_exactly(text: str) -> None:
    """The fake's reading of little text (written separately from the adapter) shows an
    escaped text unchanged and finds no markup in it."""
    assert read_little_text(escape_little_text(text)) == (text, [])


def test_unescaped_markup_is_what_linkedin_cuts_at() -> None:
    """Without escaping, the text LinkedIn shows ends at the first reserved character."""
    shown, problems = read_little_text("Öffnungszeiten (neu)")
    assert shown == "Öffnungszeiten "
    assert problems


@pytest.mark.parametrize(
    ("now", "midnight"),
    [
        (datetime(2026, 12, 1, 22, 15, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC)),
        (datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        (datetime(2026, 12, 2, 0, 0, tzinfo=UTC), datetime(2026, 12, 3, tzinfo=UTC)),
        # 00:30 in Berlin is still the previous day in UTC
        (
            datetime(2026, 12, 2, 0, 30, tzinfo=timezone(timedelta(hours=1))),
            datetime(2026, 12, 2, tzinfo=UTC),
        ),
    ],
)
def test_next_utc_midnight(now: datetime, midnight: datetime) -> None:
    """The daily quotas reset at the next 00:00 UTC strictly after now, whatever the zone."""
    assert next_utc_midnight(now) == midnight


def test_only_a_429_waits_for_midnight() -> None:
    """The reset parser blocks after a 429 only; a success never blocks the account."""
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    assert daily_quota_reset(httpx.Response(429), now) == datetime(2026, 12, 2, tzinfo=UTC)
    assert daily_quota_reset(httpx.Response(201), now) is None


@pytest.mark.parametrize("value", ["urn:li:organization:10234567", "10234567", " 10234567 "])
def test_organization_urn_from_urn_or_number(value: str) -> None:
    """The page may be configured as its URN or as the number in its admin URL."""
    assert organization_urn(value) == "urn:li:organization:10234567"


@pytest.mark.parametrize(
    "value", ["zv-staedtedreieck", "urn:li:person:123", "urn:li:organization:"]
)
def test_organization_urn_refuses_anything_else(value: str) -> None:
    """A page name, a person or an empty URN is not an organization."""
    with pytest.raises(ValueError, match=value.strip() or "''"):
        organization_urn(value)
