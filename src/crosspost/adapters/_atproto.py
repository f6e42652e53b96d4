"""AT Protocol pieces without I/O: record keys (TIDs), rich-text facets, image headers,
token expiry and XRPC error envelopes.

Used by :mod:`crosspost.adapters.bluesky`; each follows the protocol's published
rules (atproto.com/specs/tid, the ``app.bsky.richtext.facet`` and
``app.bsky.embed.images`` lexicons, the XRPC error envelope
``{"error": name, "message": text}``).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx

# Stubs are the types-regex package; the second code keeps mypy quiet once they are installed.
import regex  # type: ignore[import-untyped, unused-ignore]

from crosspost.adapters._http import platform_message
from crosspost.counting import graphemes
from crosspost.exceptions import AuthError, PlatformError, Rejected, Transient
from crosspost.i18n import _

#: the card's description: the post's text without its links, this many graphemes at most
CARD_DESCRIPTION = 200


# --- record keys --------------------------------------------------------------------------------

_B32_SORT = "234567abcdefghijklmnopqrstuvwxyz"
_TID = re.compile(r"[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}")


def tid(micros: int, clock_id: int) -> str:
    """A TID: 53 bits of microseconds since the epoch and a 10-bit clock id, base32-sortable."""
    if not 0 <= micros < 1 << 53 or not 0 <= clock_id < 1 << 10:
        raise ValueError("TID fields out of range")
    value = (micros << 10) | clock_id
    return "".join(_B32_SORT[(value >> shift) & 31] for shift in range(60, -1, -5))


def is_tid(value: str) -> bool:
    return _TID.fullmatch(value) is not None


class TidClock:
    """Strictly increasing TIDs from the wall clock and one random clock id."""

    def __init__(self, clock_id: int | None = None) -> None:
        self.clock_id = secrets.randbelow(1024) if clock_id is None else clock_id
        self._last = 0

    def next(self) -> str:
        micros = max(time.time_ns() // 1000, self._last + 1)
        self._last = micros
        return tid(micros, self.clock_id)


# --- facets -------------------------------------------------------------------------------------

_URL = re.compile(r"https?://[^\s<>\"]+", re.IGNORECASE)
_URL_TRAILING = ".,;:!?'\""
# "#" after a space or at the start, then word characters with at least one letter
# (so "#1" is no tag), as the Bluesky app detects them.
_TAG = re.compile(r"(?:(?<=\s)|^)#(\w*[^\W\d]\w*)")
MAX_TAG_GRAPHEMES = 64


def _url_end(text: str, start: int, end: int) -> int:
    """Trim trailing punctuation; a ")" only when it closes nothing opened in the URL."""
    while end > start:
        last = text[end - 1]
        unbalanced = last == ")" and text.count("(", start, end) < text.count(")", start, end)
        if last not in _URL_TRAILING and not unbalanced:
            break
        end -= 1
    return end


def link_spans(text: str, link: str = "") -> list[tuple[int, int]]:
    """Character spans of every URL in ``text``; ``link`` always whole where it occurs."""
    spans = [(m.start(), _url_end(text, m.start(), m.end())) for m in _URL.finditer(text)]
    if link:
        at = text.find(link)
        while at >= 0:
            whole = (at, at + len(link))
            spans = [s for s in spans if not (s[0] < whole[1] and whole[0] < s[1])]
            spans.append(whole)
            at = text.find(link, at + len(link))
    return sorted(spans)


def facets(text: str, link: str = "") -> list[dict[str, Any]]:
    """``app.bsky.richtext.facet`` for every link and hashtag, with UTF-8 byte offsets."""

    def offset(index: int) -> int:
        return len(text[:index].encode("utf-8"))

    found: list[dict[str, Any]] = []
    links = link_spans(text, link)
    for start, end in links:
        found.append(
            {
                "index": {"byteStart": offset(start), "byteEnd": offset(end)},
                "features": [{"$type": "app.bsky.richtext.facet#link", "uri": text[start:end]}],
            }
        )
    for match in _TAG.finditer(text):
        start, end = match.start(), match.end()
        if any(s < end and start < e for s, e in links):
            continue
        tag = match.group(1)
        if graphemes(tag) > MAX_TAG_GRAPHEMES:
            continue
        found.append(
            {
                "index": {"byteStart": offset(start), "byteEnd": offset(end)},
                "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": tag}],
            }
        )
    found.sort(key=lambda facet: int(facet["index"]["byteStart"]))
    return found


def card_description(text: str, link: str) -> str:
    """The post's text without its links, whitespace collapsed, at most 200 graphemes."""
    plain = text
    for start, end in reversed(link_spans(text, link)):
        plain = plain[:start] + " " + plain[end:]
    plain = " ".join(plain.split())
    if graphemes(plain) <= CARD_DESCRIPTION:
        return plain
    clusters = regex.findall(r"\X", plain)[: CARD_DESCRIPTION - 1]
    return "".join(clusters).rstrip() + "…"


# --- images -------------------------------------------------------------------------------------


def image_type(data: bytes) -> str | None:
    """The MIME type the file's first bytes announce (JPEG, PNG, GIF, WebP)."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE})


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG, GIF or WebP header; None when unreadable."""
    kind = image_type(data)
    size: tuple[int, int] | None = None
    if kind == "image/png" and len(data) >= 24 and data[12:16] == b"IHDR":
        size = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    elif kind == "image/gif" and len(data) >= 10:
        size = int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    elif kind == "image/jpeg":
        size = _jpeg_size(data)
    elif kind == "image/webp":
        size = _webp_size(data)
    if size is None or size[0] < 1 or size[1] < 1:
        return None
    return size


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            at += 2
            continue
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        if marker in _JPEG_SOF and at + 9 <= len(data):
            height = int.from_bytes(data[at + 5 : at + 7], "big")
            width = int.from_bytes(data[at + 7 : at + 9], "big")
            return width, height
        if length < 2:
            return None
        at += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8 " and len(data) >= 30:
        width = int.from_bytes(data[26:28], "little") & 0x3FFF
        height = int.from_bytes(data[28:30], "little") & 0x3FFF
        return width, height
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    return None


# --- tokens ---


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim (epoch seconds) of a JWT, read without verifying it."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, (int, float)) else None


# --- XRPC errors ---


class TokenRefused(AuthError):
    """The server refused the session token (expired, revoked or unreadable)."""


class RecordNotFound(Rejected):
    """The record does not exist."""


class NotSupported(Rejected):
    """This server does not serve the method (a PDS without AppView)."""


class RecordExists(Transient):
    """A record with this key exists already."""


_TOKEN_ERRORS = frozenset({"ExpiredToken", "InvalidToken"})
_UNSUPPORTED_ERRORS = frozenset({"MethodNotImplemented", "XRPCNotSupported", "NotSupported"})


def _error_fields(response: httpx.Response) -> tuple[str, str]:
    """The XRPC envelope ``{"error": name, "message": text}`` (empty strings if absent)."""
    try:
        body = response.json()
    except ValueError:
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    error, message = body.get("error"), body.get("message")
    return (
        error if isinstance(error, str) else "",
        message if isinstance(message, str) else "",
    )


def classify(response: httpx.Response, redact: Callable[[str], str]) -> PlatformError | None:
    """XRPC error envelopes (``{"error": "ExpiredToken", "message": …}``) as errors that
    say what happened; None leaves the status mapping to the HTTP client."""
    status = response.status_code
    error, detail = _error_fields(response)
    nsid = response.request.url.path.rsplit("/", 1)[-1]
    text = f"{error}: {detail}" if error and detail else platform_message(response)
    message = _("{method}: {status} {text}").format(
        method=nsid, status=status, text=redact(" ".join(text.split())[:300])
    )
    if status in (400, 401) and error in _TOKEN_ERRORS:
        return TokenRefused(message, http_status=status)
    if error == "RecordNotFound":
        return RecordNotFound(message, http_status=status)
    lowered = message.lower()
    if error == "RecordAlreadyExists" or "already exists" in lowered:
        return RecordExists(message, http_status=status)
    if (
        status in (404, 501)
        or error in _UNSUPPORTED_ERRORS
        or (status == 400 and "no service configured" in lowered)
    ):
        return NotSupported(message, http_status=status)
    if error == "AuthFactorTokenRequired":
        return AuthError(
            _("{message} (use an app password, which needs no e-mail code)").format(
                message=message
            ),
            http_status=status,
        )
    # The envelope's "message" says more than its "error" code ("Invalid identifier or
    # password" vs "AuthenticationRequired"); 429, 408 and 5xx stay with the HTTP client,
    # which also remembers rate limits.
    if status in (401, 403):
        return AuthError(message, http_status=status)
    if 400 <= status < 500 and status not in (408, 429):
        return Rejected(message, http_status=status)
    return None
