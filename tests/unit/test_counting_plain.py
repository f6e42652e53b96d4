"""Plain text is counted without the regex module, and exactly as with it.

``crosspost.counting`` counts "plain" text (Latin script, its punctuation and
currency signs) with the standard library alone, so that ``enqueue --dry-run``
starts fast. These tests hold every plain character to the promise the shortcut
rests on, and compare both ways of counting on many texts.
"""

from __future__ import annotations

import regex  # type: ignore[import-untyped, unused-ignore]  # typed only with types-regex
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from crosspost import counting
from crosspost.counting import _PLAIN_RANGES, _grapheme, _mastodon_url, _url_spans, is_plain

PLAIN = [chr(c) for first, last in _PLAIN_RANGES for c in range(first, last + 1)]
#: grapheme break properties that join a character to its neighbour (UAX #29)
JOINING = regex.compile(
    r"[\p{Grapheme_Cluster_Break=Extend}\p{Grapheme_Cluster_Break=ZWJ}"
    r"\p{Grapheme_Cluster_Break=SpacingMark}\p{Grapheme_Cluster_Break=Prepend}"
    r"\p{Grapheme_Cluster_Break=Regional_Indicator}\p{Grapheme_Cluster_Break=L}"
    r"\p{Grapheme_Cluster_Break=V}\p{Grapheme_Cluster_Break=T}"
    r"\p{Grapheme_Cluster_Break=LV}\p{Grapheme_Cluster_Break=LVT}\p{M}]"
)
TEMPLATES = [
    "{c}",
    "a{c}b https://www.zv-staedtedreieck.de/{c}",
    "https://{c}.de",
    "https://{c}{c}.{c}{c}",
    "https://a{c}b.de/x{c}y",
    "https://ab.{c}{c} x",
    "https://ab.d{c}",
    "x{c}https://ab.de/p",
    "{c}https://ab.de/p{c}",
    "https://ab.de/p{c}q{c}",
    "https://ab.de/p?{c}x",
    "https://ab.de/p?q={c}",
    "https://ab.de/({c})",
    "https://ab.de/a({c}b)c",
    "https://ab.de:8{c}/x",
    "http://{c}b-c.de/",
    "https://a_{c}.b.de/",
    "(https://ab.de/{c})",
    "https://xn--{c}.de",
    "https://ab.de/{c}.",
]


def by_regex_module(text: str) -> tuple[int, list[tuple[int, int, bool]]]:
    """Graphemes and Mastodon's URL spans as the regex module finds them."""
    return len(_grapheme().findall(text)), _url_spans(text, _mastodon_url(False))


def by_standard_library(text: str) -> tuple[int, list[tuple[int, int, bool]]]:
    assert is_plain(text)
    return counting.graphemes(text), _url_spans(text, _mastodon_url(True))


def test_every_plain_character_is_a_grapheme_of_its_own() -> None:
    """No plain character joins its neighbours into one grapheme (only CR LF pairs do)."""
    assert [hex(ord(c)) for c in PLAIN if JOINING.match(c)] == []
    text = "".join(PLAIN)
    assert len(_grapheme().findall(text)) == counting.graphemes(text) == len(text)
    assert counting.graphemes("a\r\nb\n\r") == len(_grapheme().findall("a\r\nb\n\r")) == 5


def test_plain_characters_have_the_same_properties_in_re_and_regex() -> None:
    """Letters, spaces and case-insensitive classes agree between the two engines."""
    import re

    for c in PLAIN:
        assert c.isalpha() == bool(regex.fullmatch(r"\p{L}", c)), hex(ord(c))
        assert bool(re.fullmatch(r"\s", c)) == bool(regex.fullmatch(r"\s", c)), hex(ord(c))
        for cls in ("[a-z]", "[a-z0-9]", "[^a-z]", "[\u00c0-\u00ff]", "[\u0100-\u024f]"):
            mine = bool(re.fullmatch(cls, c, re.IGNORECASE))
            theirs = bool(regex.fullmatch(cls, c, regex.IGNORECASE))
            assert mine == theirs, (cls, hex(ord(c)))


def test_every_plain_character_counts_the_same_in_urls_and_text() -> None:
    """Each plain character, in and around URLs, gives the same spans and counts."""
    for template in TEMPLATES:
        for c in PLAIN:
            text = template.format(c=c)
            assert by_standard_library(text) == by_regex_module(text), (template, hex(ord(c)))


def test_text_with_other_characters_is_not_plain() -> None:
    """Combining marks, emoji, other scripts and control characters take the regex way."""
    for text in ("u\u0308", "👍", "🇩🇪", "한국", "Straße\u200d", "ı", "\x1f", "\x0b", "\x85"):
        assert not is_plain(text), repr(text)
        assert counting.graphemes(text) == len(_grapheme().findall(text))


URLISH = st.sampled_from(
    ["https://", "http://", "www.", ".de", ".com", "/", "?", "=", "&", "(", ")", ":", "#",
     "zv-staedtedreieck", "xn--", "@", " ", "\n", "\r\n", ".", ",", "-", "_", "…", "„", "“"]
)  # fmt: skip


@hypothesis_settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(URLISH, st.sampled_from(PLAIN), st.text(PLAIN, max_size=4))))
def test_any_plain_text_counts_the_same_both_ways(parts: list[str]) -> None:
    """Random plain text, rich in URL fragments: the same graphemes and URL spans."""
    text = "".join(parts)
    assert by_standard_library(text) == by_regex_module(text)
