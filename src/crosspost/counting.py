"""How long a text is in each platform's own unit, so an over-long post is caught before sending.

Every platform counts differently, and a platform that counts more strictly than we do
refuses the post at publish time, when no editor is watching. Each ``count_*`` function
reproduces one platform's documented rule; where a rule is unknown or only partly known we
choose the count that is never smaller than the platform's. :func:`measure` is the one entry
point for enqueue and preview. Pure functions: no I/O, no configuration.
"""

from __future__ import annotations

import re
from functools import cache

from crosspost.patterns import compiled
from crosspost.records import Record

TYPE_CHECKING = False  # importing typing costs; mypy knows the name
if TYPE_CHECKING:
    from typing import Any

CHARACTERS = "characters"
GRAPHEMES = "graphemes"
BYTES = "bytes"
UTF16 = "UTF-16 code units"
WEIGHTED = "weighted characters"


class Measure(Record):
    """A text's length in ``unit`` against the limit it must stay within."""

    _fields = ("length", "limit", "unit")
    __slots__ = _fields

    length: int
    limit: int
    unit: str

    def __init__(self, length: int, limit: int, unit: str) -> None:
        object.__setattr__(self, "length", length)
        object.__setattr__(self, "limit", limit)
        object.__setattr__(self, "unit", unit)

    @property
    def fits(self) -> bool:
        return self.length <= self.limit


DEFAULT_LIMITS: dict[str, int] = {
    "mastodon": 500,  # instance setting configuration.statuses.max_characters; pass it as limit
    "bluesky": 300,
    "x": 280,
    "telegram": 4096,
    "threads": 500,
    "instagram": 2200,
    "linkedin": 3000,
    "facebook": 63206,
    "webhook": 1_000_000,  # our own sinks: only a sanity bound
    "feed": 1_000_000,
    "console": 1_000_000,
}
TELEGRAM_CAPTION_LIMIT = 1024
BLUESKY_MAX_BYTES = 3000
URL_LENGTH = 23  # Mastodon characters_reserved_per_url and X transformedURLLength alike

# twitter-text v3 configuration (conformance/twitter-text/v3.json; the tests compare).
X_SCALE = 100
X_DEFAULT_WEIGHT = 200
X_WEIGHT_RANGES: tuple[tuple[int, int, int], ...] = (
    (0x0000, 0x10FF, 100),  # Latin, Greek, Cyrillic, Hebrew, Arabic, Indic, ...
    (0x2000, 0x200D, 100),  # spaces, ZWJ
    (0x2010, 0x201F, 100),  # dashes, quotation marks
    (0x2032, 0x2037, 100),  # primes
)

# Top-level domains a URL may end in. Every ASCII country code plus the generic ones a
# German public body's readers meet. X turns a bare "www.example.de" into a link only when
# it knows the TLD, so this list decides which bare domains count 23 there.
_CCTLD_NAMES = (
    "ac ad ae af ag ai al am an ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bl bm bn "
    "bo bq br bs bt bv bw by bz ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj "
    "dk dm do dz ec ee eg eh er es et eu fi fj fk fm fo fr ga gb gd ge gf gg gh gi gl gm gn gp "
    "gq gr gs gt gu gw gy hk hm hn hr ht hu id ie il im in io iq ir is it je jm jo jp ke kg kh "
    "ki km kn kp kr kw ky kz la lb lc li lk lr ls lt lu lv ly ma mc md me mf mg mh mk ml mm mn "
    "mo mp mq mr ms mt mu mv mw mx my mz na nc ne nf ng ni nl no np nr nu nz om pa pe pf pg ph "
    "pk pl pm pn pr ps pt pw py qa re ro rs ru rw sa sb sc sd se sg sh si sj sk sl sm sn so sr "
    "ss st su sv sx sy sz tc td tf tg th tj tk tl tm tn to tp tr tt tv tw tz ua ug uk um us uy "
    "uz va vc ve vg vi vn vu wf ws ye yt za zm zw"
)
_GTLD_NAMES = (
    "com net org edu gov mil int info biz name pro mobi asia tel travel jobs aero coop museum "
    "post cat arpa onion app dev page blog cloud online site website shop store tech news media "
    "social digital email link live world xyz top club one berlin hamburg koeln cologne bayern "
    "nrw ruhr saarland wien tirol swiss zuerich bzh eus gal scot wales london paris amsterdam "
    "brussels gmbh immobilien versicherung kaufen jetzt schule haus reise reisen bio eco energy "
    "events gratis help support systems network services solutions agency consulting group "
    "company center community foundation health care science school university education "
    "academy law legal tax bank insurance video radio film music art design photo"
)
_CCTLDS = frozenset(_CCTLD_NAMES.split())
_TLDS = _CCTLDS | frozenset(_GTLD_NAMES.split())
_SHORT_OK = frozenset({"co", "tv"})  # X links a bare "name.co"/"name.tv", not other "name.cc"

_LATIN = r"\xc0-\xd6\xd8-\xf6\xf8-\xff\u0100-\u024f\u1e00-\u1eff\u0300-\u036f"
_SPACES = r"\t-\r \x85\xa0\u1680\u180e\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_NOT_HOST = (
    r"!'#%&()*+,\\\-./:;<=>?@\[\]^_{|}~$"  # ASCII punctuation
    r"\ufffe\ufeff\uffff\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # invalid, directional
)
_HC = rf"[^{_NOT_HOST}{_SPACES}]"  # any letter of any script, digits, symbols
_ASCII_LABEL = rf"[a-z0-9{_LATIN}](?:[a-z0-9{_LATIN}-]*[a-z0-9{_LATIN}])?"
_TLD_END = r"(?![0-9a-z@+-])"
_QUERY = r"(?:\?[a-z0-9!?*'@();:&=+$/%#\[\]\-_.,~|]*[a-z0-9\-_&=#/])?"


# Plain text: the characters of Latin-script text, its punctuation and currency signs,
# each of which is a grapheme cluster of its own (UAX #29 break property Other, or CR/LF;
# no combining marks, joiners, regional indicators or Hangul jamo) and has the same
# letter, space and case-folding properties in the standard library's re as in the regex
# module (tests/unit/test_counting_plain.py checks every one of them). Editors' German
# text is nearly always plain, and counting it needs neither the regex module nor its
# patterns, which cost an editor more start-up time than the rest of a dry run.
_PLAIN_RANGES: tuple[tuple[int, int], ...] = (
    (0x09, 0x0A), (0x0D, 0x0D), (0x20, 0x7E),  # tab, line breaks, ASCII
    (0xA0, 0x130), (0x132, 0x2FF),  # Latin; not the dotless ı, which re matches as [i]
    (0x2010, 0x2027), (0x2030, 0x205E),  # dashes, quotation marks, ellipsis, …
    (0x20A0, 0x20C0),  # currency signs
)  # fmt: skip


def _char_class(ranges: tuple[tuple[int, int], ...], keep: Any = None) -> str:
    """The body of a character class holding ``ranges`` (only what ``keep`` accepts)."""
    if keep is not None:  # the kept characters, joined again into ranges
        kept = [ord(ch) for a, b in ranges for ch in filter(keep, map(chr, range(a, b + 1)))]
        runs: list[list[int]] = []
        for c in kept:
            if runs and runs[-1][1] == c - 1:
                runs[-1][1] = c
            else:
                runs.append([c, c])
        ranges = tuple((a, b) for a, b in runs)
    return "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)


@cache
def _plain() -> re.Pattern[str]:
    return compiled(f"[{_char_class(_PLAIN_RANGES)}]*")


def is_plain(text: str) -> bool:
    """Whether every character of ``text`` is plain (see ``_PLAIN_RANGES``)."""
    return _plain().fullmatch(text) is not None


@cache
def _plain_letters() -> str:
    """The letters (``\\p{L}``) among the plain characters, as a character class body."""
    return _char_class(_PLAIN_RANGES, str.isalpha)


def _regex() -> Any:
    """The regex module (Unicode properties, grapheme clusters), imported on first need."""
    # Stubs are the types-regex package; the second code keeps mypy quiet once installed.
    import regex  # type: ignore[import-untyped, unused-ignore]

    return regex


def _url_pattern(path_char: str, path_end: str, *, bare: bool, plain: bool = False) -> Any:
    """twitter-text's URL grammar (which Mastodon reuses), with our own path characters.

    With a scheme the host may be in any script and end in any alphabetic TLD (the caller
    checks the TLD against the list); without one (``bare``) it must be ASCII and end in a
    listed TLD, because that is all X extracts. ``plain``: the same grammar for the
    standard library's re, correct for plain text only (:func:`is_plain`), which holds no
    combining marks.
    """
    letter, letter_or_mark = r"\p{L}", r"[\p{L}\p{M}]"
    if plain:
        letter = letter_or_mark = f"[{_plain_letters()}]"
    parens = rf"\((?:{path_char}+|{path_char}*\({path_char}+\){path_char}*)\)"
    host = (
        rf"(?:{_HC}(?:[-_]|{_HC})*\.)*(?:{_HC}(?:-|{_HC})*)?{_HC}\."  # "_" only in subdomains
        rf"(?P<tld>xn--[-0-9a-z]+|{letter}{letter_or_mark}+){_TLD_END}"
    )
    tlds = "|".join(sorted(_TLDS, key=len, reverse=True))
    bare_host = rf"(?<![-_./])(?P<bare>(?:{_ASCII_LABEL}\.)+(?:{tlds})){_TLD_END}"
    either = rf"(?P<scheme>https?://)(?P<host>{host})" + (f"|{bare_host}" if bare else "")
    pattern = (
        rf"(?<![a-z0-9@＠$#＃\ufffe\ufeff\uffff])(?:{either})(?::[0-9]+)?"
        rf"(?P<path>/(?:(?:{path_char}|{parens})*(?:{path_end}|{parens}))?)?{_QUERY}"
    )
    if plain:
        # re's compiler takes longer over this than Python takes to start: its program
        # is kept in the start-up cache (crosspost.patterns)
        return compiled(pattern, re.IGNORECASE)
    engine = _regex()
    return engine.compile(pattern, engine.IGNORECASE)


_X_PATH_CHAR = rf"[a-z\u0400-\u04ff0-9!*';:=+,.$/%#\[\]\-\u2013_~@|&{_LATIN}]"
_X_PATH_END = rf"[+\-a-z\u0400-\u04ff0-9=_#/{_LATIN}]"
# Mastodon widens the path to anything but spaces, angle brackets, parens and "?".
_MASTODON_PATH_CHAR = r"[^\s<>()?]"
_MASTODON_PATH_END = r"""[^\s()?!*"'「」<>;:=,.$%\[\]~&|@]"""
# One emoji as twitter-text's emoji parser sees it: keycap, flag, or pictographs joined by
# ZWJ with their modifiers, variation selectors and tags. "©" and "®" are not emoji there.
_EMOJI_UNIT = (
    r"(?:(?![\xa9\xae])\p{ExtPict}|\p{Emoji_Modifier})"
    r"[\ufe0f\p{Emoji_Modifier}\U000e0020-\U000e007f]*"
)


# The patterns are compiled on first use: each platform needs only its own.
@cache
def _x_url() -> Any:
    return _url_pattern(_X_PATH_CHAR, _X_PATH_END, bare=True)


@cache
def _mastodon_url(plain: bool) -> Any:
    return _url_pattern(_MASTODON_PATH_CHAR, _MASTODON_PATH_END, bare=False, plain=plain)


@cache
def _grapheme() -> Any:
    return _regex().compile(r"\X")


@cache
def _pictographic() -> Any:
    return _regex().compile(r"[\p{Extended_Pictographic}\p{Regional_Indicator}\u20e3]")


@cache
def _x_emoji() -> Any:
    return _regex().compile(
        rf"[#*0-9]\ufe0f?\u20e3|\p{{RI}}\p{{RI}}|{_EMOJI_UNIT}(?:\u200d{_EMOJI_UNIT})*"
    )


def _host_ok(host: str, scheme: str, url: str) -> bool:
    """twitter-text's IDNA check: every label at most 63 characters once punycoded, the URL
    at most 4096. It is why a URL with an over-long host counts in full, not as 23."""
    if host[:4].lower() == "xn--" and not host.isascii():
        return False
    extra = 0
    for label in host.split("."):
        size = len(label) if label.isascii() else 4 + len(label.encode("punycode"))
        if not 0 < size <= 63:
            return False
        extra += size - len(label)
    return len(scheme or "https://") + len(url) + extra <= 4096


def _url_spans(text: str, pattern: Any) -> list[tuple[int, int, bool]]:
    """(start, end, certain) of every URL the platform shortens to 23.

    ``certain`` is False for a URL whose TLD is not in our list: the platform may count it
    in full, so callers charge it the larger of 23 and its own length.
    """
    spans: list[tuple[int, int, bool]] = []
    for m in pattern.finditer(text):
        url: str = m.group()
        if m.groupdict().get("bare") is not None:
            host: str = m.group("bare")
            labels = host.lower().split(".")
            short = len(labels) == 2 and labels[1] in _CCTLDS and labels[1] not in _SHORT_OK
            if (short and m.group("path") is None) or not _host_ok(host, "", url):
                continue  # X leaves a bare "name.de" unlinked
            spans.append((m.start(), m.end(), True))
        elif _host_ok(m.group("host"), m.group("scheme"), url):
            tld: str = m.group("tld").lower()
            spans.append((m.start(), m.end(), tld in _TLDS or tld.startswith("xn--")))
    return spans


def graphemes(text: str) -> int:
    """User-perceived characters (extended grapheme clusters, UAX #29).

    👩‍👩‍👧‍👦, 🇩🇪 and "u" plus a combining diaeresis are one each: what Mastodon and Bluesky
    count, because that is what a reader sees as one character.
    """
    if is_plain(text):
        return len(text) - text.count("\r\n")
    return len(_grapheme().findall(text))


def count_mastodon(text: str, url_length: int = URL_LENGTH) -> int:
    """Mastodon: graphemes, after every http(s) URL is replaced by ``url_length`` characters.

    Mastodon links URLs with twitter-text's extractor and counts each as
    ``characters_reserved_per_url``, however long. We substitute the same placeholder and
    count graphemes of the result, as its StatusLengthValidator does. Mastodon also counts
    a remote mention ``@user@domain`` as ``@user`` and shortens a few other schemes
    (gemini://, ...); we count those in full, which can only over-count.
    """
    parts: list[str] = []
    pos = 0
    for start, end, certain in _url_spans(text, _mastodon_url(is_plain(text))):
        url = text[start:end]
        keep = not certain and graphemes(url) > url_length
        parts += [text[pos:start], url if keep else "x" * url_length]
        pos = end
    parts.append(text[pos:])
    return graphemes("".join(parts))


def count_bluesky(text: str) -> tuple[int, int]:
    """Bluesky: (graphemes, UTF-8 bytes); a post must keep within 300 and 3000 of each.

    The lexicon bounds ``app.bsky.feed.post#text`` both ways. A link is text plus a facet,
    so a URL counts in full, character by character.
    """
    return graphemes(text), len(text.encode("utf-8"))


def _x_weight(segment: str) -> int:
    """Weighted length (in X_SCALE units) of text that holds no URL."""

    def plain(chars: str) -> int:
        return sum(
            next((w for lo, hi, w in X_WEIGHT_RANGES if lo <= ord(c) <= hi), X_DEFAULT_WEIGHT)
            for c in chars
        )

    total = pos = 0
    for m in _x_emoji().finditer(segment):
        total += plain(segment[pos : m.start()]) + X_DEFAULT_WEIGHT
        pos = m.end()
    return total + plain(segment[pos:])


def count_x(text: str) -> int:
    """X: twitter-text v3 weighted length, in characters of the 280 limit.

    After NFC normalisation each code point weighs 1 in the ranges of X_WEIGHT_RANGES and 2
    elsewhere (CJK, emoji); a whole emoji sequence (ZWJ family, flag, skin tone, keycap)
    weighs 2; every URL, with or without scheme ("example.com"), weighs 23. Rounded up.
    """
    import unicodedata

    text = unicodedata.normalize("NFC", text)
    total = pos = 0
    for start, end, certain in _url_spans(text, _x_url()):
        short = URL_LENGTH * X_SCALE
        total += _x_weight(text[pos:start])
        total += short if certain else max(short, _x_weight(text[start:end]))
        pos = end
    total += _x_weight(text[pos:])
    return -(-total // X_SCALE)


def count_telegram(text: str) -> int:
    """Telegram: UTF-16 code units of the text as sent, without leading/trailing whitespace.

    The Bot API counts "after entities parsing" in UTF-16 (so 😀 is 2). We send plain text,
    so the parsed text is ours, trimmed as Telegram trims it.
    """
    return len(text.strip().encode("utf-16-le")) // 2


def count_threads(text: str) -> int:
    """Threads: code points, but an emoji counts as many as its UTF-8 bytes (Meta's rule).

    An emoji is a grapheme cluster holding a pictograph, flag letter or keycap, so 👍🏽 is 8
    and 👩‍👩‍👧‍👦 25. "©" counts its 2 bytes too: not knowing Meta's emoji list, we count more.
    """
    return sum(
        len(g.encode("utf-8")) if _pictographic().search(g) else len(g)
        for g in _grapheme().findall(text)
    )


def count_plain(text: str) -> int:
    """Instagram, LinkedIn, Facebook: UTF-16 code units.

    None of them documents its unit. Their composers are JavaScript, whose string length
    is UTF-16 code units, and that count is never below code points or graphemes: a text
    that fits by it fits by any rule they might apply.
    """
    return len(text.encode("utf-16-le")) // 2


def measure(
    platform: str, text: str, *, limit: int | None = None, caption: bool = False
) -> Measure:
    """``text``'s length on ``platform`` and the limit it must keep.

    ``limit`` replaces the platform default (a Mastodon instance's own limit, an account's
    setting); ``caption`` selects Telegram's 1024 for text under a photo. For Bluesky the
    binding measure is returned: bytes once they pass 3000, graphemes otherwise.
    """
    if platform not in DEFAULT_LIMITS:
        raise ValueError(f"unknown platform: {platform!r}")
    if limit is None:
        caption_limit = caption and platform == "telegram"
        limit = TELEGRAM_CAPTION_LIMIT if caption_limit else DEFAULT_LIMITS[platform]
    if platform == "mastodon":
        return Measure(count_mastodon(text), limit, GRAPHEMES)
    if platform == "bluesky":
        clusters, size = count_bluesky(text)
        if size > BLUESKY_MAX_BYTES:
            return Measure(size, BLUESKY_MAX_BYTES, BYTES)
        return Measure(clusters, limit, GRAPHEMES)
    if platform == "x":
        return Measure(count_x(text), limit, WEIGHTED)
    if platform == "telegram":
        return Measure(count_telegram(text), limit, UTF16)
    if platform == "threads":
        return Measure(count_threads(text), limit, CHARACTERS)
    if platform in ("instagram", "linkedin", "facebook"):
        return Measure(count_plain(text), limit, UTF16)
    return Measure(len(text), limit, CHARACTERS)
