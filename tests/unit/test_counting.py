"""Each platform's length rule, at its limit and one past it, and X's own conformance data."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.fakes.server import REQUIRE_ENV, skip_or_fail

from crosspost import counting
from crosspost.counting import (
    BLUESKY_MAX_BYTES,
    DEFAULT_LIMITS,
    TELEGRAM_CAPTION_LIMIT,
    Measure,
    count_bluesky,
    count_mastodon,
    count_plain,
    count_telegram,
    count_threads,
    count_x,
    graphemes,
    measure,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
TWITTER_TEXT = SHARED / "conformance" / "twitter-text"

UMLAUT = "ü"  # precomposed U+00FC
DECOMPOSED = "u\u0308"  # u + COMBINING DIAERESIS: one grapheme, two code points
FAMILY = "👩\u200d👩\u200d👧\u200d👦"  # 4 emoji + 3 ZWJ: 1 grapheme, 7 code points, 25 bytes
FLAG = "🇩🇪"  # two regional indicators
THUMB = "👍🏽"  # emoji + skin tone modifier
CJK = "漢"
GRIN = "😀"  # outside the BMP: two UTF-16 code units
LONG_URL = "https://www.stadt-musterstadt.de/aktuelles/" + "a" * 157  # 200 characters


def fill(unit: str, cost: int, length: int) -> str:
    """A text made of ``unit`` (each costing ``cost``) padded with "a" to exactly ``length``."""
    return unit * (length // cost) + "a" * (length % cost)


def at_and_past(units: list[tuple[str, int]], limit: int) -> list[Any]:
    """Cases (text, expected length) at the limit and one past it, for each unit."""
    cases = []
    for unit, cost in units:
        name = unit.encode("unicode_escape").decode("ascii")
        text = fill(unit, cost, limit)
        cases.append(pytest.param(text, limit, id=f"{name}-at-limit"))
        cases.append(pytest.param(text + "a", limit + 1, id=f"{name}-one-past"))
    return cases


# --- graphemes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        (UMLAUT, 1),
        (DECOMPOSED, 1),
        (FAMILY, 1),
        (FLAG, 1),
        (THUMB, 1),
        (CJK * 2, 2),
        ("Grüße aus Köln", 14),
    ],
)
def test_graphemes_count_user_perceived_characters(text: str, expected: int) -> None:
    """A ZWJ family, a flag, a skin-toned emoji and a base letter with a combining mark
    are each one grapheme cluster."""
    assert graphemes(text) == expected


# --- Mastodon ----------------------------------------------------------------------------

GRAPHEME_UNITS = [(UMLAUT, 1), (DECOMPOSED, 1), (FAMILY, 1), (FLAG, 1), (THUMB, 1), (CJK, 1)]


@pytest.mark.parametrize(("text", "expected"), at_and_past(GRAPHEME_UNITS, 500))
def test_mastodon_counts_graphemes_up_to_500(text: str, expected: int) -> None:
    """Mastodon counts grapheme clusters: 500 fit the default limit, 501 do not."""
    assert measure("mastodon", text) == Measure(expected, 500, "graphemes")
    assert measure("mastodon", text).fits is (expected <= 500)


def test_mastodon_counts_a_200_character_url_as_23() -> None:
    """Every http(s) URL counts 23 on Mastodon, however long it is."""
    assert len(LONG_URL) == 200
    assert count_mastodon(LONG_URL) == 23
    assert count_mastodon(f"Mehr: {LONG_URL} – danke") == 6 + 23 + 8


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("a" * 476 + " " + LONG_URL, 500, id="at-limit"),
        pytest.param("a" * 477 + " " + LONG_URL, 501, id="one-past"),
    ],
)
def test_mastodon_limit_with_url(text: str, expected: int) -> None:
    """A post with a long URL is measured with the URL as 23 against the 500 limit."""
    assert measure("mastodon", text) == Measure(expected, 500, "graphemes")


def test_mastodon_leaves_bare_domains_and_honours_url_length() -> None:
    """Mastodon shortens only URLs with a scheme; the reserved length is the instance's."""
    assert count_mastodon("www.stadt-musterstadt.de") == 24
    assert count_mastodon(LONG_URL, url_length=30) == 30


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("http://foo.unknowntld/" + "a" * 50, 72, id="long-counts-in-full"),
        pytest.param("http://foo.unknowntld/", 23, id="short-counts-23"),
    ],
)
def test_mastodon_url_with_unlisted_tld_counts_the_larger(text: str, expected: int) -> None:
    """A URL whose TLD we do not know may be left unshortened: it counts max(23, length)."""
    assert count_mastodon(text) == expected


def test_mastodon_instance_limit_overrides_default() -> None:
    """An instance's own max_characters replaces 500."""
    assert measure("mastodon", "a" * 501, limit=1000) == Measure(501, 1000, "graphemes")


# --- Bluesky -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    at_and_past([(UMLAUT, 1), (DECOMPOSED, 1), (FLAG, 1), (THUMB, 1), (CJK, 1)], 300),
)
def test_bluesky_counts_graphemes_up_to_300(text: str, expected: int) -> None:
    """Under 3000 bytes Bluesky's binding limit is 300 graphemes."""
    assert measure("bluesky", text) == Measure(expected, 300, "graphemes")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(FAMILY * 120, Measure(120, 300, "graphemes"), id="3000-bytes-fit"),
        pytest.param(FAMILY * 120 + "a", Measure(3001, 3000, "bytes"), id="3001-bytes"),
        pytest.param(FAMILY * 121, Measure(3025, 3000, "bytes"), id="3025-bytes"),
    ],
)
def test_bluesky_bytes_bind_before_graphemes(text: str, expected: Measure) -> None:
    """A ZWJ family is 1 grapheme but 25 UTF-8 bytes: 120 of them reach 3000 bytes while
    far below 300 graphemes, so past that the byte measure is returned."""
    assert count_bluesky(FAMILY) == (1, 25)
    assert measure("bluesky", text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("a" * 99 + " " + LONG_URL, 300, id="at-limit"),
        pytest.param("a" * 100 + " " + LONG_URL, 301, id="one-past"),
    ],
)
def test_bluesky_counts_urls_in_full(text: str, expected: int) -> None:
    """Bluesky has no URL discount: a 200-character URL counts 200."""
    assert count_bluesky(LONG_URL) == (200, 200)
    assert measure("bluesky", text) == Measure(expected, 300, "graphemes")


# --- X -----------------------------------------------------------------------------------

X_UNITS = [
    ("a", 1),
    (UMLAUT, 1),
    (DECOMPOSED, 1),  # NFC makes it "ü"
    (CJK, 2),
    (GRIN, 2),
    (FAMILY, 2),
    (FLAG, 2),
    (THUMB, 2),
    ("1\ufe0f\u20e3", 2),  # keycap
]


@pytest.mark.parametrize(("text", "expected"), at_and_past(X_UNITS, 280))
def test_x_weighted_length_up_to_280(text: str, expected: int) -> None:
    """Latin (also decomposed, after NFC) weighs 1, CJK and every emoji sequence 2."""
    assert measure("x", text) == Measure(expected, 280, "weighted characters")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(LONG_URL, 23, id="200-char-url"),
        pytest.param("http://x.de", 23, id="short-url-also-23"),
        pytest.param("www.stadt-musterstadt.de", 23, id="bare-domain"),
        pytest.param("stadt-musterstadt.de/aktuelles", 23, id="bare-with-path"),
        pytest.param("stadt.de", 8, id="bare-name-ccTLD-is-not-a-link"),
        pytest.param("Veranstaltung.Info", 23, id="bare-gTLD"),
        pytest.param("z.B. am 1.1.2025 im Rathaus.", 28, id="german-abbreviations"),
        pytest.param("info@stadt.de", 13, id="e-mail-is-not-a-url"),
        pytest.param("Siehe https://stadt.de/a.", 6 + 23 + 1, id="trailing-dot-outside"),
    ],
)
def test_x_urls_count_23(text: str, expected: int) -> None:
    """Every URL X links, with or without scheme, weighs 23; other text weighs per char."""
    assert count_x(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("a" * 256 + " " + LONG_URL, 280, id="at-limit"),
        pytest.param("a" * 257 + " " + LONG_URL, 281, id="one-past"),
    ],
)
def test_x_limit_with_url(text: str, expected: int) -> None:
    """A long URL takes 23 of the 280."""
    assert measure("x", text) == Measure(expected, 280, "weighted characters")


# --- Telegram ----------------------------------------------------------------------------

UTF16_UNITS = [
    (UMLAUT, 1),
    (DECOMPOSED, 2),
    (CJK, 1),
    (GRIN, 2),
    (FLAG, 4),
    (THUMB, 4),
    (FAMILY, 11),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [(GRIN, 2), (UMLAUT, 1), (DECOMPOSED, 2), (FAMILY, 11), ("  Hallo\n\n", 5), ("\t", 0)],
)
def test_telegram_counts_utf16_units_of_trimmed_text(text: str, expected: int) -> None:
    """😀 is a surrogate pair (2 units); leading and trailing whitespace is not counted."""
    assert count_telegram(text) == expected


@pytest.mark.parametrize(("text", "expected"), at_and_past(UTF16_UNITS, 4096))
def test_telegram_message_up_to_4096(text: str, expected: int) -> None:
    """A message holds 4096 UTF-16 code units."""
    assert measure("telegram", text) == Measure(expected, 4096, "UTF-16 code units")


@pytest.mark.parametrize(("text", "expected"), at_and_past(UTF16_UNITS, 1024))
def test_telegram_caption_up_to_1024(text: str, expected: int) -> None:
    """A photo caption holds 1024 UTF-16 code units."""
    assert TELEGRAM_CAPTION_LIMIT == 1024
    got = measure("telegram", text, caption=True)
    assert got == Measure(expected, 1024, "UTF-16 code units")


# --- Threads -----------------------------------------------------------------------------

THREADS_UNITS = [
    (UMLAUT, 1),
    (DECOMPOSED, 2),  # two code points, no emoji
    (CJK, 1),
    (GRIN, 4),
    (FLAG, 8),
    (THUMB, 8),
    (FAMILY, 25),
]


@pytest.mark.parametrize(("text", "expected"), at_and_past(THREADS_UNITS, 500))
def test_threads_counts_emoji_as_utf8_bytes(text: str, expected: int) -> None:
    """Threads counts characters but an emoji as its UTF-8 bytes (👩‍👩‍👧‍👦 = 25)."""
    assert count_threads(text) == expected
    assert measure("threads", text) == Measure(expected, 500, "characters")


# --- Instagram, LinkedIn, Facebook ---------------------------------------------------------


@pytest.mark.parametrize("platform", ["instagram", "linkedin", "facebook"])
@pytest.mark.parametrize("unit", UTF16_UNITS, ids=lambda u: u[0].encode("unicode_escape").decode())
def test_plain_platforms_count_utf16_units(platform: str, unit: tuple[str, int]) -> None:
    """Instagram 2200, LinkedIn 3000, Facebook 63 206, each in UTF-16 code units."""
    limit = {"instagram": 2200, "linkedin": 3000, "facebook": 63206}[platform]
    text = fill(*unit, limit)
    assert count_plain(text) == limit
    assert measure(platform, text) == Measure(limit, limit, "UTF-16 code units")
    assert measure(platform, text + "a") == Measure(limit + 1, limit, "UTF-16 code units")
    assert not measure(platform, text + "a").fits


# --- measure -----------------------------------------------------------------------------


def test_default_limits() -> None:
    """The limits PLATFORMS.md gives, and a generous bound for our own sinks."""
    assert {k: v for k, v in DEFAULT_LIMITS.items() if v < 1_000_000} == {
        "mastodon": 500,
        "bluesky": 300,
        "x": 280,
        "telegram": 4096,
        "threads": 500,
        "instagram": 2200,
        "linkedin": 3000,
        "facebook": 63206,
    }
    assert BLUESKY_MAX_BYTES == 3000
    for sink in ("webhook", "feed", "console"):
        assert measure(sink, "Grüße 👍🏽").fits


def test_unknown_platform_is_an_error() -> None:
    """A platform without a rule is refused rather than guessed."""
    with pytest.raises(ValueError, match="myspace"):
        measure("myspace", "hi")


def test_limit_override_keeps_unit() -> None:
    """An explicit limit replaces the default, also for captions."""
    assert measure("x", "a" * 300, limit=4000) == Measure(300, 4000, "weighted characters")
    assert measure("telegram", "a" * 2000, caption=True, limit=4096).fits
    assert not Measure(3, 2, "bytes").fits


# --- X conformance (twitter-text's validate.yml in ../shared) ----------------------------


def conformance_cases(*sections: str) -> list[Any]:
    """The cases of ``sections``; one skipped case if the shared data is absent."""
    path = TWITTER_TEXT / "validate.yml"
    if not path.is_file():
        reason = f"twitter-text conformance data not found at {path}"
        if os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
            raise FileNotFoundError(f"{reason} ({REQUIRE_ENV} is set: CI needs it)")
        return [pytest.param(None, id="absent", marks=pytest.mark.skip(reason=reason))]
    tests = yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]
    return [
        pytest.param(case, id=f"{section}: {case['description']}")
        for section in sections
        for case in tests[section]
    ]


@pytest.mark.parametrize(
    "case",
    conformance_cases(
        "WeightedTweetsWithDiscountedEmojiCounterTest", "UnicodeDirectionalMarkerCounterTest"
    ),
)
def test_x_matches_twitter_text_conformance(case: dict[str, Any]) -> None:
    """count_x gives twitter-text v3's weightedLength for each official case."""
    expected = case["expected"]
    assert count_x(case["text"]) == expected["weightedLength"]


@pytest.mark.parametrize("case", conformance_cases("WeightedTweetsWithDiscountedEmojiCounterTest"))
def test_x_fits_matches_conformance_validity(case: dict[str, Any]) -> None:
    """Within the emoji section (no invalid characters) "valid" is "fits in 280"."""
    assert measure("x", case["text"]).fits is case["expected"]["valid"]


@pytest.mark.parametrize("case", conformance_cases("urls_without_protocol"))
def test_x_bare_domains_from_conformance_count_23(case: dict[str, Any]) -> None:
    """Each of twitter-text's valid URLs without a scheme is a whole URL: it weighs 23."""
    assert case["expected"] is True
    assert count_x(case["text"]) == 23


def test_x_constants_match_v3_config() -> None:
    """Our weight ranges, scale, default weight, URL length and limit are v3.json's."""
    path = TWITTER_TEXT / "v3.json"
    if not path.is_file():
        skip_or_fail(f"twitter-text v3 config not found at {path}")
    config = json.loads(path.read_text(encoding="utf-8"))
    assert config["version"] == 3
    assert config["emojiParsingEnabled"] is True
    ranges = tuple((r["start"], r["end"], r["weight"]) for r in config["ranges"])
    assert ranges == counting.X_WEIGHT_RANGES
    assert config["scale"] == counting.X_SCALE
    assert config["defaultWeight"] == counting.X_DEFAULT_WEIGHT
    assert config["transformedURLLength"] == counting.URL_LENGTH
    assert config["maxWeightedTweetLength"] == DEFAULT_LIMITS["x"]
