"""Post files: front matter, encoding, keys and types, media files, and error messages."""

from __future__ import annotations

import contextlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from tests.rawsettings import settings_from
from tests.unprivileged import without_file_powers

from crosspost.compose import render
from crosspost.exceptions import PostFileError, PostRejected
from crosspost.models import Post
from crosspost.postfile import (
    MAX_MEDIA,
    MAX_MEDIA_BYTES,
    MAX_POST_BYTES,
    image_mime,
    read_post_file,
)

ZONE = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
LINK = "https://www.zv-staedtedreieck.de/aktuelles/weihnachtsmarkt"
BODY = "Der Weihnachtsmarkt im Städtedreieck öffnet am 1. Dezember um 16 Uhr."

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00"
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 "

SPEC_EXAMPLE = f"""+++
title = "Weihnachtsmarkt im Städtedreieck"
link = "{LINK}"
category = "veranstaltung"
publish_at = 2026-12-01T09:00:00        # no offset: site.timezone (DST-correct)
accounts = ["mastodon", "bluesky"]

[[media]]
path = "weihnachtsmarkt.jpg"            # relative to the post file
alt = "Beleuchtete Marktstände auf dem Platz der Freiheit"

[variants.bluesky]
text = "Der Weihnachtsmarkt öffnet am 1. Dezember."
+++
{BODY}
"""


def read(path: Path) -> Post:
    return read_post_file(path, zone=ZONE, now=NOW)


def write_post(folder: Path, front: str, body: str = BODY, name: str = "post.md") -> Path:
    path = folder / name
    path.write_text(f"+++\n{front}\n+++\n{body}\n", encoding="utf-8")
    return path


def refused(path: Path) -> str:
    """The one-line message a post file is refused with."""
    with pytest.raises(PostFileError) as caught:
        read(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    assert "\n" not in message
    return message


# --- the file's shape -----------------------------------------------------------------------


def test_spec_example_reads_into_a_post(tmp_path: Path) -> None:
    """The example from SPEC.md gives every field, with publish_at in UTC and media resolved."""
    (tmp_path / "weihnachtsmarkt.jpg").write_bytes(JPEG)
    path = tmp_path / "weihnachtsmarkt.md"
    path.write_text(SPEC_EXAMPLE, encoding="utf-8")
    post = read(path)
    assert post.title == "Weihnachtsmarkt im Städtedreieck"
    assert post.link == LINK
    assert post.category == "veranstaltung"
    assert post.publish_at == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)  # CET = UTC+1
    assert post.ambiguous_time is False
    assert post.accounts == ("mastodon", "bluesky")
    assert post.variants == {"bluesky": "Der Weihnachtsmarkt öffnet am 1. Dezember."}
    assert post.body == BODY
    assert post.source == str(path)
    (image,) = post.media
    assert image.path == (tmp_path / "weihnachtsmarkt.jpg").resolve()
    assert image.alt == "Beleuchtete Marktstände auf dem Platz der Freiheit"
    assert image.mime == "image/jpeg"


def test_bom_and_crlf_give_the_same_post(tmp_path: Path) -> None:
    """A UTF-8 byte order mark and Windows line endings are accepted and make no difference."""
    (tmp_path / "weihnachtsmarkt.jpg").write_bytes(JPEG)
    plain = tmp_path / "plain.md"
    plain.write_bytes(SPEC_EXAMPLE.encode("utf-8"))
    windows = tmp_path / "windows.md"
    windows.write_bytes(b"\xef\xbb\xbf" + SPEC_EXAMPLE.replace("\n", "\r\n").encode("utf-8"))
    first, second = read(plain), read(windows)
    assert (first.body, first.variants, first.media, first.publish_at) == (
        second.body,
        second.variants,
        second.media,
        second.publish_at,
    )
    assert "\r" not in second.body


def test_missing_fields_take_their_defaults(tmp_path: Path) -> None:
    """Only a body is required: title from its first line, link and accounts left to compose."""
    post = read(write_post(tmp_path, "", body="Erste Zeile\nZweite Zeile"))
    assert post.title == "Erste Zeile"
    assert (post.link, post.category, post.publish_at, post.accounts) == ("", None, None, ())
    assert (post.media, post.variants) == ((), {})


def test_long_first_line_gives_a_shortened_title(tmp_path: Path) -> None:
    """A title taken from a long first line is cut to 100 characters with an ellipsis."""
    post = read(write_post(tmp_path, "", body="x" * 150))
    assert post.title == "x" * 99 + "…"
    assert post.body == "x" * 150  # the body itself is never cut


def test_invalid_utf8_is_refused(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are refused with the offset of the first bad byte."""
    content = f"+++\ntitle = 'x'\n+++\n{BODY}"
    path = tmp_path / "latin1.md"
    path.write_bytes(content.encode("latin-1"))
    message = refused(path)
    assert "UTF-8" in message
    assert f"byte {content.index('ä')}" in message  # ASCII before it: bytes = characters


def test_nul_character_is_refused(tmp_path: Path) -> None:
    """A NUL byte means a binary file was passed by mistake."""
    path = tmp_path / "binary.md"
    path.write_bytes(b"+++\ntitle = 'x'\n+++\nText\x00mehr")
    assert "NUL" in refused(path)


def test_huge_file_is_refused_before_reading_it_as_text(tmp_path: Path) -> None:
    """A post file over the size limit is refused with its size and the limit."""
    path = tmp_path / "huge.md"
    path.write_bytes(b"+++\n+++\n" + b"a" * MAX_POST_BYTES)
    message = refused(path)
    assert str(MAX_POST_BYTES + 8) in message
    assert str(MAX_POST_BYTES) in message


def test_file_of_exactly_the_size_limit_is_read(tmp_path: Path) -> None:
    """The size limit itself is allowed."""
    path = tmp_path / "big.md"
    path.write_bytes(b"+++\n+++\n" + b"a" * (MAX_POST_BYTES - 8))
    assert len(read(path).body) == MAX_POST_BYTES - 8


@pytest.mark.parametrize(
    "content",
    [
        f"title = 'x'\n+++\n{BODY}",
        f"\n+++\ntitle = 'x'\n+++\n{BODY}",
        f"---\ntitle: x\n---\n{BODY}",
        BODY,
        "",
    ],
)
def test_file_not_starting_with_front_matter_is_refused(tmp_path: Path, content: str) -> None:
    """The first line must be +++; the message says so and points at line 1."""
    path = tmp_path / "post.md"
    path.write_text(content, encoding="utf-8")
    message = refused(path)
    assert "line 1" in message
    assert "+++" in message


def test_unclosed_front_matter_is_refused(tmp_path: Path) -> None:
    """Front matter without its closing +++ line is refused, asking for the line."""
    path = tmp_path / "post.md"
    path.write_text(f"+++\ntitle = 'x'\n{BODY}\n", encoding="utf-8")
    assert "not closed" in refused(path)


def test_missing_file_and_folder_are_refused(tmp_path: Path) -> None:
    """A path that is no file gives a PostFileError naming it, not an OSError."""
    assert "no such file" in refused(tmp_path / "fehlt.md")
    assert "folder" in refused(tmp_path)


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_toml_error_names_the_line_of_the_file(tmp_path: Path, newline: str) -> None:
    """TOML errors count lines from the file's first line (+++), as an editor's editor does."""
    lines = ["+++", 'title = "Markt"', f'link = "{LINK}"', "category = veranstaltung", "+++"]
    path = tmp_path / "post.md"
    path.write_bytes((newline.join([*lines, BODY]) + newline).encode("utf-8"))
    message = refused(path)
    assert "line 4" in message  # the bare word veranstaltung
    assert "line 3" not in message


@pytest.mark.parametrize("key", ["titel", "tags", "publish"])
def test_unknown_key_is_refused_naming_it(tmp_path: Path, key: str) -> None:
    """A misspelt or unsupported key is named, with the list of known keys."""
    message = refused(write_post(tmp_path, f'{key} = "x"'))
    assert f": {key}: unknown key" in message
    assert "publish_at" in message


@pytest.mark.parametrize(
    ("front", "field"),
    [
        ("title = 1", "title"),
        ('title = "  "', "title"),
        ("link = ['https://x.de']", "link"),
        ("category = true", "category"),
        ("accounts = [1, 2]", "accounts"),
        ('accounts = ["mastodon", ""]', "accounts"),
        ("accounts = 3", "accounts"),
        ("publish_at = 2026-12-01", "publish_at"),
        ("publish_at = 09:00:00", "publish_at"),
        ("publish_at = 1764576000", "publish_at"),
        ('publish_at = "morgen"', "publish_at"),
        ("publish_at = 2026-03-29T02:30:00", "publish_at"),
        ('variants = "kurz"', "variants"),
        ("variants.bluesky = 3", "variants.bluesky"),
        ('[variants.bluesky]\ntxt = "Kurz"', "variants.bluesky.txt"),
        ("[variants.bluesky]\ntext = 3", "variants.bluesky.text"),
        ('[variants.bluesky]\ntext = "  "', "variants.bluesky.text"),
        ('media = "bild.jpg"', "media"),
        ('[media]\npath = "bild.jpg"\nalt = "Bild"', "media"),
        ("media = [1]", "media[0]"),
        ('[[media]]\nalt = "Bild"', "media[0].path"),
        ('[[media]]\npath = "bild.jpg"', "media[0].alt"),
        ('[[media]]\npath = "bild.jpg"\nalt = "   "', "media[0].alt"),
        ('[[media]]\npath = "bild.jpg"\nalt = 3', "media[0].alt"),
        ('[[media]]\npath = "bild.jpg"\nalt = "Bild"\ncaption = "x"', "media[0].caption"),
    ],
)
def test_wrong_value_is_refused_naming_the_field(tmp_path: Path, front: str, field: str) -> None:
    """Every wrong type or empty value is refused with the file and the dotted field."""
    (tmp_path / "bild.jpg").write_bytes(JPEG)
    message = refused(write_post(tmp_path, front))
    assert message.startswith(f"{tmp_path / 'post.md'}: {field}: "), message


def test_single_account_may_be_written_as_text(tmp_path: Path) -> None:
    """accounts = "mastodon" means the list with that one account."""
    assert read(write_post(tmp_path, 'accounts = "mastodon"')).accounts == ("mastodon",)


def test_variant_may_be_written_as_plain_text(tmp_path: Path) -> None:
    """variants.bluesky = "…" is short for a table with text, trimmed like the body."""
    post = read(write_post(tmp_path, 'variants.bluesky = "  Kurz.  "'))
    assert post.variants == {"bluesky": "Kurz."}


@pytest.mark.parametrize("body", ["", "   \n\t\n", "\n\n"])
def test_post_without_text_is_refused(tmp_path: Path, body: str) -> None:
    """A post whose body is empty or blank is refused."""
    assert "no text" in refused(write_post(tmp_path, 'title = "x"', body=body))


def test_post_with_variants_but_no_body_is_refused(tmp_path: Path) -> None:
    """Variants do not replace the main text, which every other account needs."""
    message = refused(write_post(tmp_path, 'variants.bluesky = "Kurz."', body=""))
    assert "no main text" in message


def test_publish_at_with_offset_and_as_relative_text(tmp_path: Path) -> None:
    """publish_at may carry an offset, or be a string such as "+2h" counted from now."""
    offset = read(write_post(tmp_path, "publish_at = 2026-12-01T09:00:00+02:00", name="a.md"))
    assert offset.publish_at == datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    relative = read(write_post(tmp_path, 'publish_at = "+2h"', name="b.md"))
    assert relative.publish_at == datetime(2026, 11, 27, 11, 0, tzinfo=UTC)


def test_publish_at_in_the_autumn_hour_is_marked_ambiguous(tmp_path: Path) -> None:
    """A repeated wall time means its first occurrence, and the post says it was ambiguous."""
    post = read(write_post(tmp_path, "publish_at = 2026-10-25T02:30:00"))
    assert post.publish_at == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert post.ambiguous_time is True


def test_publish_at_in_the_spring_gap_is_refused(tmp_path: Path) -> None:
    """A wall time the clocks skip is refused naming publish_at."""
    message = refused(write_post(tmp_path, "publish_at = 2026-03-29T02:30:00"))
    assert ": publish_at: " in message
    assert "does not exist" in message


# --- media ----------------------------------------------------------------------------------


def media_front(path: str, alt: str = "Beleuchtete Marktstände") -> str:
    return f"[[media]]\npath = {json.dumps(path)}\nalt = {json.dumps(alt)}"


@pytest.mark.parametrize(
    ("head", "mime"),
    [(JPEG, "image/jpeg"), (PNG, "image/png"), (GIF, "image/gif"), (WEBP, "image/webp")],
)
def test_image_type_comes_from_the_first_bytes(tmp_path: Path, head: bytes, mime: str) -> None:
    """JPEG, PNG, GIF and WebP are recognised by their signature, whatever the file is called."""
    (tmp_path / "bild.dat").write_bytes(head)
    (image,) = read(write_post(tmp_path, media_front("bild.dat"))).media
    assert image.mime == mime


@pytest.mark.parametrize(
    "head",
    [
        b"<html><body>kein Bild</body></html>",
        b"%PDF-1.7\n",
        b"WEBP\x00\x00\x00\x00WEBPVP8 ",  # WebP signature without the RIFF container
        b"",
    ],
)
def test_image_mime_refuses_what_is_not_an_image(head: bytes) -> None:
    """Anything without an image signature has no image type."""
    assert image_mime(head) is None


def test_non_image_named_jpg_is_refused(tmp_path: Path) -> None:
    """A text file called .jpg is refused: the type comes from the bytes, not the name."""
    (tmp_path / "bild.jpg").write_text("Das ist kein Bild.", encoding="utf-8")
    message = refused(write_post(tmp_path, media_front("bild.jpg")))
    assert ": media[0].path: bild.jpg is not a JPEG, PNG, GIF or WebP image" in message


def test_media_path_is_relative_to_the_post_folder(tmp_path: Path) -> None:
    """A path in a subfolder of the post's folder is found there, whatever the cwd is."""
    folder = tmp_path / "posts"
    (folder / "bilder").mkdir(parents=True)
    (folder / "bilder" / "markt.png").write_bytes(PNG)
    (image,) = read(write_post(folder, media_front("bilder/markt.png"))).media
    assert image.path == (folder / "bilder" / "markt.png").resolve()
    assert image.path.is_absolute()


@pytest.mark.parametrize(
    "relative", ["../../etc/passwd", "../geheim.jpg", "bilder/../../geheim.jpg"]
)
def test_media_path_leaving_the_folder_is_refused(tmp_path: Path, relative: str) -> None:
    """Paths that climb out of the post's folder are refused, even to a real image."""
    (tmp_path / "geheim.jpg").write_bytes(JPEG)
    folder = tmp_path / "posts"
    (folder / "bilder").mkdir(parents=True)
    message = refused(write_post(folder, media_front(relative)))
    assert ": media[0].path: must stay inside the post file's folder" in message


def test_absolute_media_path_is_refused(tmp_path: Path) -> None:
    """An absolute path is refused even when it points at an image inside the folder."""
    (tmp_path / "bild.jpg").write_bytes(JPEG)
    message = refused(write_post(tmp_path, media_front(str(tmp_path / "bild.jpg"))))
    assert ": media[0].path: must be relative" in message


def test_symlink_escaping_the_folder_is_refused(tmp_path: Path) -> None:
    """A symlink inside the folder that points outside it is refused."""
    (tmp_path / "geheim.jpg").write_bytes(JPEG)
    folder = tmp_path / "posts"
    folder.mkdir()
    (folder / "bild.jpg").symlink_to(tmp_path / "geheim.jpg")
    (folder / "extern").symlink_to(tmp_path, target_is_directory=True)
    assert "must stay inside" in refused(write_post(folder, media_front("bild.jpg"), name="a.md"))
    message = refused(write_post(folder, media_front("extern/geheim.jpg"), name="b.md"))
    assert "must stay inside" in message


def test_symlink_within_the_folder_is_followed(tmp_path: Path) -> None:
    """A symlink to an image in the same folder is fine and resolves to the real file."""
    (tmp_path / "original.jpg").write_bytes(JPEG)
    (tmp_path / "bild.jpg").symlink_to(tmp_path / "original.jpg")
    (image,) = read(write_post(tmp_path, media_front("bild.jpg"))).media
    assert image.path == (tmp_path / "original.jpg").resolve()


def test_missing_or_folder_media_is_refused(tmp_path: Path) -> None:
    """A media path naming nothing, or a folder, is refused naming the path."""
    (tmp_path / "bilder").mkdir()
    assert "fehlt.jpg does not exist" in refused(write_post(tmp_path, media_front("fehlt.jpg")))
    assert "bilder is not a file" in refused(write_post(tmp_path, media_front("bilder")))


def test_too_many_images_are_refused(tmp_path: Path) -> None:
    """At most MAX_MEDIA images go with one post."""
    (tmp_path / "bild.jpg").write_bytes(JPEG)
    front = "\n".join(media_front("bild.jpg") for _ in range(MAX_MEDIA + 1))
    assert f": media: at most {MAX_MEDIA} images" in refused(write_post(tmp_path, front))
    allowed = "\n".join(media_front("bild.jpg") for _ in range(MAX_MEDIA))
    assert len(read(write_post(tmp_path, allowed, name="ok.md")).media) == MAX_MEDIA


def test_oversized_image_is_refused(tmp_path: Path) -> None:
    """An image over the size limit is refused with its size (a sparse file: no disk used)."""
    image = tmp_path / "riesig.jpg"
    with image.open("wb") as handle:
        handle.write(JPEG)
        handle.truncate(MAX_MEDIA_BYTES + 1)
    message = refused(write_post(tmp_path, media_front("riesig.jpg")))
    assert f"{MAX_MEDIA_BYTES + 1} bytes" in message


@without_file_powers
def test_unreadable_image_is_refused(tmp_path: Path) -> None:
    """An image the user may not read is a PostFileError, not an OSError."""
    image = tmp_path / "bild.jpg"
    image.write_bytes(JPEG)
    image.chmod(0)
    refused(write_post(tmp_path, media_front("bild.jpg")))


# --- property: any body either reads and renders with the link once, or is refused ---------

PROPERTY_SETTINGS = settings_from(
    site={"url": "https://www.zv-staedtedreieck.de"},
    accounts={
        "mastodon": {"platform": "mastodon", "base_url": "https://social.example"},
        "bluesky": {"platform": "bluesky", "handle": "zv.bsky.social"},
        "x": {"platform": "x"},
        "telegram": {"platform": "telegram", "chat": "@zv"},
        "website": {"platform": "feed", "path": "queue/site"},
    },
)
# Ways the link may already stand in the text, as the whole address or inside a longer one.
SPLICES = [
    "",
    "{link}",
    "{link}.",
    "{link},",
    "({link})",
    "„{link}“",
    "{link}!",
    "{link}/programm",
    "{link}.html",
    "{link}?utm_source=mastodon",
    "{link}#anfahrt",
    "{link}-2025",
    "x={link}",
    "https://archiv.example/?u={link}",
]
OPENING = frozenset("([<\"'«»„“‚‘")
CLOSING = frozenset(".,;:!?)]>\"'«»“”‘’…")


def whole_occurrences(text: str, link: str) -> int:
    """How often ``link`` stands in ``text`` as a whole address (this test's own rule).

    Whole: preceded by the start, whitespace or an opening bracket or quote, and followed
    by nothing but closing punctuation up to the next whitespace.
    """
    count = 0
    start = text.find(link)
    while start != -1:
        end = start + len(link)
        before = start == 0 or text[start - 1].isspace() or text[start - 1] in OPENING
        match = re.match(r"\S*", text[end:])
        after = all(ch in CLOSING for ch in match.group()) if match else True
        count += before and after
        start = text.find(link, start + 1)
    return count


@hypothesis_settings(
    max_examples=300,
    deadline=None,
    # The autouse environment fixture is per test, not per example, and nothing here
    # changes the environment, so sharing it between examples is sound.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    before=st.text(),
    splice=st.sampled_from(SPLICES),
    after=st.text(),
    variant=st.none() | st.text(),
)
def test_any_body_reads_and_renders_with_the_link_once_or_is_refused(
    tmp_path_factory: pytest.TempPathFactory,
    before: str,
    splice: str,
    after: str,
    variant: str | None,
) -> None:
    """For any body text, reading gives a Post or a PostFileError, rendering a PostRejected at
    worst, and every rendered text contains the canonical link exactly once as a whole URL."""
    folder = tmp_path_factory.mktemp("prop", numbered=True)
    front = f'link = "{LINK}"\naccounts = ["mastodon", "bluesky", "x", "telegram", "website"]'
    if variant is not None:
        front += f"\nvariants.bluesky = {json.dumps(variant, ensure_ascii=False)}"
    body = f"{before} {splice.replace('{link}', LINK)} {after}"
    path = folder / "post.md"
    path.write_bytes(f"+++\n{front}\n+++\n{body}".encode())
    try:
        post = read(path)
    except PostFileError:
        return
    with contextlib.suppress(PostRejected):  # too long for an account: the editor's to fix
        render(post, PROPERTY_SETTINGS)
    for item in render(post, PROPERTY_SETTINGS, check=False):
        assert whole_occurrences(item.text, LINK) == 1, item.text
        assert item.text.endswith(LINK) or whole_occurrences(post.body, LINK) == 1
