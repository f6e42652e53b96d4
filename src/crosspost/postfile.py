"""Post files: UTF-8 text with TOML front matter between ``+++`` lines.

::

    +++
    title = "Weihnachtsmarkt im Städtedreieck"
    link = "https://www.zv-staedtedreieck.de/aktuelles/weihnachtsmarkt"
    category = "veranstaltung"
    publish_at = 2026-12-01T09:00:00
    accounts = ["mastodon", "bluesky"]

    [[media]]
    path = "weihnachtsmarkt.jpg"
    alt = "Beleuchtete Marktstände auf dem Platz der Freiheit"

    [variants.bluesky]
    text = "Der Weihnachtsmarkt öffnet am 1. Dezember."
    +++
    Der Weihnachtsmarkt im Städtedreieck öffnet am 1. Dezember um 16 Uhr …

This module checks the file's own shape (encoding, front matter, keys, types,
media files and alt texts). What depends on the configuration — categories,
accounts, link hosts, lengths — is checked by :mod:`crosspost.compose`.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tomllib
from functools import cache

from crosspost.exceptions import PostFileError
from crosspost.i18n import _
from crosspost.patterns import compiled
from crosspost.records import Media, Post
from crosspost.timeparse import TimeError, from_toml

TYPE_CHECKING = False  # importing typing costs; mypy knows the name
if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path
    from typing import Any
    from zoneinfo import ZoneInfo

MAX_POST_BYTES = 256 * 1024
MAX_MEDIA_BYTES = 20 * 1024 * 1024
MAX_MEDIA = 4
FRONT_MATTER_KEYS = frozenset(
    {"title", "link", "category", "publish_at", "accounts", "media", "variants", "repeat"}
)
MEDIA_KEYS = frozenset({"path", "alt"})
VARIANT_KEYS = frozenset({"text"})
#: characters no text field may hold: control characters other than tab and line breaks
#: (they reach terminals and platforms invisibly), and lone surrogates (bytes that were
#: not UTF-8, as the file system or the command line hands them over)
_FORBIDDEN = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]"
_IMAGE_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),
)


@cache
def _forbidden() -> re.Pattern[str]:
    """``_FORBIDDEN`` compiled (the surrogates make it slow to compile: crosspost.patterns)."""
    return compiled(_FORBIDDEN)


def image_mime(head: bytes) -> str | None:
    """The image type from a file's first bytes (never from its name)."""
    for signature, offset, mime in _IMAGE_SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            if mime == "image/webp" and not head.startswith(b"RIFF"):
                continue
            return mime
    return None


def _fail(source: str, field: str | None, problem: str) -> PostFileError:
    if field:
        return PostFileError(
            _("{file}: {field}: {problem}").format(file=source, field=field, problem=problem)
        )
    return PostFileError(_("{file}: {problem}").format(file=source, problem=problem))


def split_front_matter(text: str, source: str) -> tuple[str, str, int]:
    """(front matter, body, line number where the body starts)."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "+++":
        raise _fail(
            source,
            None,
            _("line 1: the file must start with a line +++ followed by the TOML front matter"),
        )
    for number, line in enumerate(lines[1:], start=2):
        if line.strip() == "+++":
            front = "\n".join(lines[1 : number - 1])
            body = "\n".join(lines[number:])
            return front, body, number + 1
    raise _fail(source, None, _("the front matter is not closed; add a line +++ after it"))


def decode(raw: bytes, source: str) -> str:
    if len(raw) > MAX_POST_BYTES:
        raise _fail(
            source,
            None,
            _("the file is {size} bytes; a post file may have at most {limit}").format(
                size=len(raw), limit=MAX_POST_BYTES
            ),
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(
            source,
            None,
            _("not UTF-8 (byte {offset}); save the file as UTF-8").format(offset=exc.start),
        ) from None
    if "\x00" in text:
        raise _fail(source, None, _("contains a NUL character; is this a text file?"))
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _is_dir(path: str) -> bool:
    """:meth:`pathlib.Path.is_dir`: False where nothing is; other errors raise."""
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP):
            raise
        return False
    except ValueError:
        return False


def read_post_file(path: Path | str, *, zone: ZoneInfo, now: datetime) -> Post:
    """Read and check one post file.

    ``path`` is a :class:`~pathlib.Path` or its text (``str(Path(…))``): the file is
    read with :mod:`os` alone, so that ``enqueue --dry-run`` starts without pathlib.
    """
    source = str(path)
    try:
        if _is_dir(source):
            raise _fail(source, None, _("is a folder, not a post file"))
        with open(source, "rb") as handle:
            # Bounded: a device or a pipe that never ends is refused like a huge file.
            raw = handle.read(MAX_POST_BYTES + 1)
            if len(raw) > MAX_POST_BYTES:
                size = max(len(raw), os.fstat(handle.fileno()).st_size)
                raise _fail(
                    source,
                    None,
                    _("the file is {size} bytes; a post file may have at most {limit}").format(
                        size=size, limit=MAX_POST_BYTES
                    ),
                )
    except FileNotFoundError:
        raise _fail(source, None, _("no such file")) from None
    except PermissionError:
        raise _fail(source, None, _("permission denied")) from None
    except OSError as exc:
        raise _fail(source, None, str(exc.strerror)) from None
    text = decode(raw, source)
    absolute = source if os.path.isabs(source) else os.path.join(os.getcwd(), source)
    if _forbidden().search(absolute):
        # The database and the platforms take only UTF-8; the path is stored with the post.
        raise _fail(source, None, _("the file or folder name is not UTF-8; rename it"))
    front, body, body_line = split_front_matter(text, source)
    for number, line in enumerate(body.split("\n"), start=body_line):
        if line.strip() == "+++":
            raise _fail(
                source,
                None,
                _(
                    "line {line}: a second +++ line; a post file has one front matter block, "
                    "at its start"
                ).format(line=number),
            )
    try:
        data = tomllib.loads(front)
    except tomllib.TOMLDecodeError as exc:
        raise _fail(
            source,
            None,
            _("the front matter is not valid TOML ({reason}; line 1 is the first +++)").format(
                reason=_shift_toml_line(str(exc))
            ),
        ) from None
    except RecursionError:
        raise _fail(
            source, None, _("the front matter is nested too deeply to be a post's front matter")
        ) from None
    folder = os.path.dirname(source) or "."  # what Path.parent gives
    return post_from_data(data, body, source=source, folder=folder, zone=zone, now=now)


def _shift_toml_line(message: str) -> str:
    """tomllib counts from the first front-matter line; editors count from the file's first."""
    import re

    return re.sub(r"line (\d+)", lambda m: f"line {int(m.group(1)) + 1}", message)


def post_from_data(
    data: dict[str, Any],
    body: str,
    *,
    source: str,
    folder: Path | str | None,
    zone: ZoneInfo,
    now: datetime,
) -> Post:
    """Turn front matter + body into a :class:`Post`, checking every key and type."""
    unknown = sorted(set(data) - FRONT_MATTER_KEYS)
    if unknown:
        raise _fail(
            source,
            unknown[0],
            _("unknown key; known keys are: {keys}").format(
                keys=", ".join(sorted(FRONT_MATTER_KEYS))
            ),
        )
    _check_text(body, source, None)
    body = body.strip()
    title = _optional_str(data, "title", source)
    link = _optional_str(data, "link", source)
    category = _optional_str(data, "category", source)
    accounts = _str_list(data, "accounts", source)
    publish_at = None
    ambiguous = False
    if "publish_at" in data:
        try:
            resolved = from_toml(data["publish_at"], zone, now)
        except TimeError as exc:
            raise _fail(source, "publish_at", str(exc)) from None
        publish_at, ambiguous = resolved.at, resolved.ambiguous
    repeat = _repeat(data, source, publish_at or now, zone)
    variants = _variants(data.get("variants", {}), source)
    media = _media(data.get("media", []), source, folder)
    if not body and not variants:
        raise _fail(source, None, _("the post has no text; write it below the closing +++"))
    if not body:
        raise _fail(
            source,
            None,
            _("the post has variants but no main text; write the main text below the closing +++"),
        )
    return Post(
        title=title or _title_from(body),
        body=body,
        link=link or "",
        category=category,
        publish_at=publish_at,
        accounts=tuple(accounts),
        media=tuple(media),
        variants=variants,
        source=source,
        ambiguous_time=ambiguous,
        repeat=repeat,
    )


def _repeat(data: dict[str, Any], source: str, start: datetime, zone: ZoneInfo) -> str | None:
    """``repeat``: an RFC 5545 RRULE, checked here (dateutil only when a post repeats)."""
    text = _optional_str(data, "repeat", source)
    if text is None:
        return None
    from crosspost.recurrence import RecurrenceError, parse_recurrence

    try:
        return parse_recurrence(text, start, zone).rule
    except RecurrenceError as exc:
        raise _fail(source, "repeat", str(exc)) from None


def _check_text(value: str, source: str, field: str | None) -> str:
    """``value``, unless it holds a character no post may carry (see ``_FORBIDDEN``)."""
    found = _forbidden().search(value)
    if found is None:
        return value
    code = ord(found.group())
    if 0xD800 <= code <= 0xDFFF:
        raise _fail(source, field, _("is not valid UTF-8 text"))
    raise _fail(
        source,
        field,
        _("contains the invisible control character U+{code:04X}; remove it").format(code=code),
    )


def _title_from(body: str) -> str:
    first = body.strip().split("\n", 1)[0].strip()
    return first if len(first) <= 100 else first[:99].rstrip() + "…"


def _optional_str(data: dict[str, Any], key: str, source: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _fail(source, key, _("must be text in quotes"))
    value = _check_text(value, source, key).strip()
    if not value:
        raise _fail(source, key, _("is empty; remove the key or give a value"))
    return value


def _str_list(data: dict[str, Any], key: str, source: str) -> list[str]:
    value = data.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _fail(source, key, _('must be a list of names such as ["mastodon", "website"]'))
    return [_check_text(v, source, key).strip() for v in value]


def _variants(value: Any, source: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _fail(source, "variants", _('must be tables such as [variants.bluesky] text = "…"'))
    variants: dict[str, str] = {}
    for target, table in value.items():
        field = f"variants.{target}"
        if isinstance(table, str):
            text = table
        elif isinstance(table, dict):
            unknown = sorted(set(table) - VARIANT_KEYS)
            if unknown:
                raise _fail(
                    source, f"{field}.{unknown[0]}", _("unknown key; a variant has only text")
                )
            value_text = table.get("text")
            if not isinstance(value_text, str):
                raise _fail(source, f"{field}.text", _("is missing or not text"))
            text = value_text
        else:
            raise _fail(source, field, _('must be a table with text = "…"'))
        if not text.strip():
            raise _fail(source, f"{field}.text", _("is empty"))
        variants[_check_text(target, source, field)] = _check_text(
            text, source, f"{field}.text"
        ).strip()
    return variants


def _media(value: Any, source: str, folder: Path | str | None) -> list[Media]:
    if not isinstance(value, list):
        raise _fail(source, "media", _("must be [[media]] tables with path and alt"))
    if len(value) > MAX_MEDIA:
        raise _fail(source, "media", _("at most {n} images per post").format(n=MAX_MEDIA))
    media: list[Media] = []
    for index, item in enumerate(value):
        field = f"media[{index}]"
        if not isinstance(item, dict):
            raise _fail(source, field, _("must be a table with path and alt"))
        unknown = sorted(set(item) - MEDIA_KEYS)
        if unknown:
            raise _fail(
                source, f"{field}.{unknown[0]}", _("unknown key; an image has path and alt")
            )
        path = item.get("path")
        if not isinstance(path, str) or not path.strip():
            raise _fail(
                source, f"{field}.path", _("is missing; give the image file next to the post")
            )
        alt = item.get("alt")
        if not isinstance(alt, str) or not alt.strip():
            raise _fail(
                source,
                f"{field}.alt",
                _(
                    "every image needs alt text describing it for people who cannot see it; "
                    'add alt = "…"'
                ),
            )
        if folder is None:
            raise _fail(source, f"{field}.path", _("images need a post file; use enqueue FILE"))
        _check_text(path, source, f"{field}.path")
        _check_text(alt, source, f"{field}.alt")
        media.append(_media_file(folder, path.strip(), alt.strip(), source, f"{field}.path"))
    return media


def _media_file(folder: Path | str, relative: str, alt: str, source: str, field: str) -> Media:
    from pathlib import Path  # only posts with images need it

    base = Path(folder).resolve()
    candidate = Path(relative)
    if candidate.is_absolute():
        raise _fail(source, field, _("must be relative to the post file's folder"))
    resolved = (base / candidate).resolve()
    if not resolved.is_relative_to(base):
        raise _fail(source, field, _("must stay inside the post file's folder"))
    try:
        size = resolved.stat().st_size
        if not resolved.is_file():
            raise _fail(source, field, _("{path} is not a file").format(path=relative))
        with resolved.open("rb") as handle:
            head = handle.read(16)
    except FileNotFoundError:
        raise _fail(source, field, _("{path} does not exist").format(path=relative)) from None
    except OSError as exc:
        raise _fail(source, field, str(exc.strerror)) from None
    mime = image_mime(head)
    if mime is None:
        raise _fail(
            source, field, _("{path} is not a JPEG, PNG, GIF or WebP image").format(path=relative)
        )
    if size > MAX_MEDIA_BYTES:
        raise _fail(
            source,
            field,
            _("{path} is {size} bytes; at most {limit}").format(
                path=relative, size=size, limit=MAX_MEDIA_BYTES
            ),
        )
    return Media(path=resolved, alt=alt, mime=mime)
