"""Bad input, post files: at least 500 generated files, and each named case of issue 4.

Files are built from front matter that is valid, wrong in type, unknown in key,
pointing at other hosts, ``javascript:`` or look-alike hosts, with media
escaping the folder, symlinks leading out of it and non-images named ``.jpg``;
then encoded with a BOM, CRLF, invalid UTF-8, NUL, a second front matter, cut
short or padded past the size limit. Every run exits 0 or 2 with one line naming
the file, never a traceback; a refusal leaves the database byte for byte as it
was; what is certainly wrong is refused and what is certainly valid accepted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.reliability.badinput import (
    BAD_LINKS,
    GOOD_LINKS,
    HYPOTHESIS,
    JPEG,
    PNG,
    Part,
    World,
    any_text,
    exercise,
    forbidden,
    make_world,
    report,
    safe_text,
    toml_string,
    weighted,
)
from tests.reliability.conftest import Figures


def text_part(key: str) -> st.SearchStrategy[Part]:
    def judge(value: str) -> Part:
        reasons = []
        if forbidden(value):
            reasons.append(f"{key}: control character")
        if not value.strip():
            reasons.append(f"{key}: empty")
        return f"{key} = {toml_string(value)}", reasons, False

    wrong_type = st.sampled_from(["5", "true", '["a"]', "2026-01-01T00:00:00", "{ a = 1 }", "1.5"])
    return weighted(
        (6, safe_text.map(lambda v: (f"{key} = {toml_string(v)}", [], False))),
        (1, any_text.map(judge)),
        (1, wrong_type.map(lambda v: (f"{key} = {v}", [f"{key}: wrong type"], False))),
    )


link_part: st.SearchStrategy[Part] = weighted(
    (4, st.sampled_from(GOOD_LINKS).map(lambda v: (f"link = {toml_string(v)}", [], False))),
    (
        2,
        st.sampled_from(BAD_LINKS).map(
            lambda v: (f"link = {toml_string(v)}", [f"link {v!r}"], False)
        ),
    ),
    (1, st.sampled_from(["5", "[]", "false"]).map(lambda v: (f"link = {v}", ["link type"], False))),
    (1, any_text.map(lambda v: (f"link = {toml_string(v)}", [], True))),
)

category_part: st.SearchStrategy[Part] = weighted(
    (
        6,
        st.sampled_from(["veranstaltung", "stellenangebot", "nachrichten", "tourismus"]).map(
            lambda v: (f"category = {toml_string(v)}", [], False)
        ),
    ),
    (
        1,
        st.sampled_from(["unbekannt", "Veranstaltung", "stellenangebote"]).map(
            lambda v: (f"category = {toml_string(v)}", ["unknown category"], False)
        ),
    ),
    (1, st.just(("category = 3", ["category type"], False))),
)

publish_part: st.SearchStrategy[Part] = weighted(
    (
        5,
        st.sampled_from(
            [
                "publish_at = 2026-12-01T09:00:00",
                "publish_at = 2027-06-01T09:00:00+02:00",
                'publish_at = "now"',
                'publish_at = "+2h"',
                'publish_at = "2026-12-24 18:00"',
                "publish_at = 2020-01-01T09:00:00",  # in the past: as soon as possible
                "publish_at = 2026-10-25T02:30:00",  # occurs twice: the first is used
            ]
        ).map(lambda v: (v, [], False)),
    ),
    (
        1,
        st.sampled_from(
            [
                "publish_at = 2026-03-29T02:30:00",  # does not exist (DST gap)
                'publish_at = "2026-03-29 02:30"',
                "publish_at = 2026-12-01",  # a date without a time
                "publish_at = 09:00:00",
                "publish_at = 20261201",
                'publish_at = "morgen früh"',
                'publish_at = ""',
                "publish_at = 0001-01-01T00:00:00",
                'publish_at = "+99999999999999999999h"',
                "publish_at = [2026-12-01T09:00:00]",
            ]
        ).map(lambda v: (v, [f"bad time {v}"], False)),
    ),
)

accounts_part: st.SearchStrategy[Part] = weighted(
    (
        5,
        st.sampled_from(
            ['["mastodon"]', '["website"]', '"mastodon"', '["mastodon", "website"]']
        ).map(lambda v: (f"accounts = {v}", [], False)),
    ),
    (
        1,
        st.sampled_from(['["nope"]', "[1]", '["archiv"]', '[""]', "5", '["mastodon", 2]']).map(
            lambda v: (f"accounts = {v}", [f"accounts {v}"], False)
        ),
    ),
)

UNKNOWN_KEYS = ["Title", "tags", "publish-at", "links", "image", "alt", "visibility", "draft", "x"]
unknown_part: st.SearchStrategy[Part] = st.tuples(
    st.sampled_from(UNKNOWN_KEYS), st.sampled_from(['"x"', "1", "true", "[]"])
).map(lambda kv: (f"{kv[0]} = {kv[1]}", [f"unknown key {kv[0]}"], False))

variant_part: st.SearchStrategy[Part] = weighted(
    (2, safe_text.map(lambda v: (f"[variants.bluesky]\ntext = {toml_string(v)}", [], False))),
    (2, safe_text.map(lambda v: (f"[variants.mastodon]\ntext = {toml_string(v)}", [], False))),
    (2, st.just(('[variants]\ntelegram = "Kurz."', [], False))),
    (
        1,
        st.one_of(
            st.just(('[variants.nirgends]\ntext = "x"', ["variant target"], False)),
            st.just(('[variants.bluesky]\ntext = "x"\nlang = "de"', ["variant key"], False)),
            st.just(("[variants.bluesky]\ntext = 5", ["variant type"], False)),
            st.just(('[variants.bluesky]\ntext = "   "', ["variant empty"], False)),
            st.just(("variants = 5", ["variants type"], False)),
        ),
    ),
)

#: media entries: (path, must-refuse reason or None)
MEDIA_PATHS = [
    ("bild.jpg", None),
    ("unterordner/foto.png", None),
    ("link-innen.jpg", None),  # a symlink to an image inside the folder
    ("fake.jpg", "not an image"),
    ("../../etc/passwd", "escapes the folder"),
    ("../outside.jpg", "escapes the folder"),
    ("/etc/passwd", "absolute"),
    ("link-aussen.jpg", "symlink out of the folder"),
    ("link-passwd.jpg", "symlink to /etc/passwd"),
    ("fehlt.jpg", "missing"),
    ("unterordner", "a folder"),
    ("bild.jpg\u0000.txt", "NUL in the path"),
    ("", "empty path"),
]


def media_part() -> st.SearchStrategy[Part]:
    def entry(path: str, reason: str | None, alt: str | None) -> Part:
        lines = ["[[media]]", f"path = {toml_string(path)}"]
        reasons = [f"media {reason}"] if reason else []
        if alt is None:
            reasons.append("media without alt")
        else:
            lines.append(f"alt = {toml_string(alt)}")
            if not alt.strip():
                reasons.append("media with empty alt")
        return "\n".join(lines), reasons, False

    paths = weighted(
        (3, st.sampled_from([m for m in MEDIA_PATHS if m[1] is None])),
        (2, st.sampled_from([m for m in MEDIA_PATHS if m[1] is not None])),
    )
    alts = weighted((8, safe_text), (1, st.none()), (1, st.just(" ")))
    return st.tuples(paths, alts).map(lambda t: entry(t[0][0], t[0][1], t[1]))


BODIES = [
    "Der Weihnachtsmarkt im Städtedreieck öffnet am 1. Dezember um 16 Uhr.",
    "Wir suchen eine Fachkraft für Abwassertechnik (m/w/d). 🚰",
    "+++ Eilmeldung +++ Der Wertstoffhof bleibt am Montag geschlossen.",
    "Zeile eins\n\nZeile zwei mit Link https://www.zv-staedtedreieck.de/aktuelles/weihnachtsmarkt",
]


@dataclass
class PostCase:
    front: list[Part]
    tables: list[Part]
    body: str
    body_reasons: list[str]
    body_unsure: bool
    mutation: str
    command: str
    raw: bytes = b""
    reasons: list[str] = field(default_factory=list)
    unsure: bool = False


body_strategy = weighted(
    (4, st.sampled_from(BODIES).map(lambda b: (b, [], False))),
    (4, st.tuples(st.sampled_from(BODIES), safe_text).map(lambda t: (f"{t[0]} {t[1]}", [], False))),
    (1, any_text.map(lambda b: (b, [], True))),
    (1, st.just(("", ["no text"], False))),
    (1, st.just(("Erster Teil.\n+++\ntitle = 'zweite'\n+++\nZweiter Teil.", ["+++"], False))),
)

MUTATIONS = [
    *["none"] * 12, "bom", "bom", "crlf", "crlf", "bom+crlf", "cr",
    "invalid-utf8", "latin1", "nul", "huge", "no-front-matter", "unclosed",
    "duplicated-front-matter", "truncated", "empty-file", "only-bom",
]  # fmt: skip


@st.composite
def post_cases(draw: st.DrawFn) -> PostCase:
    front: list[Part] = []
    for strategy in (
        text_part("title"),
        link_part,
        category_part,
        publish_part,
        accounts_part,
    ):
        if draw(st.booleans()):
            front.append(draw(strategy))
    if draw(st.integers(0, 5)) == 0:
        front.append(draw(unknown_part))
    tables: list[Part] = []
    for _ in range(draw(st.integers(0, 2))):
        tables.append(draw(media_part()))
    if draw(st.integers(0, 3)) == 0:
        tables.append(draw(variant_part))
    body, body_reasons, body_unsure = draw(body_strategy)
    mutation = draw(st.sampled_from(MUTATIONS))
    command = draw(st.sampled_from(["enqueue", "enqueue", "enqueue", "dry-run", "preview"]))
    case = PostCase(front, tables, body, body_reasons, body_unsure, mutation, command)
    build_post(case, draw)
    return case


def build_post(case: PostCase, draw: st.DrawFn) -> None:
    lines = [part for part, _r, _u in case.front]
    variants_seen = False
    tables = []
    for part, _r, _u in case.tables:
        # TOML: [[media]] tables after the plain keys; one [variants] table at most
        if part.startswith(("[variants", "variants")):
            if variants_seen:
                continue
            variants_seen = True
        tables.append(part)
    tables.sort(key=lambda t: t.startswith("variants ="))  # a plain key must precede tables
    plain = [t for t in tables if t.startswith("variants =")]
    tables = [t for t in tables if not t.startswith("variants =")]
    front = "\n".join([*lines, *plain, *tables])
    reasons = [r for _p, rs, _u in case.front for r in rs]
    reasons += [r for p, rs, _u in case.tables if p in plain or p in tables for r in rs]
    unsure = any(u for _p, _r, u in case.front) or case.body_unsure
    body = case.body
    text = f"+++\n{front}\n+++\n{body}\n"
    reasons += case.body_reasons
    if forbidden(body.replace("\r", "")):
        reasons.append("body: control character")
    if "\r" in body:
        unsure = True  # a lone CR becomes a line break; it may create a "+++" line
    if any(line.strip() == "+++" for line in body.replace("\r", "\n").split("\n")):
        reasons.append("body: a +++ line")
    if not body.strip():
        reasons.append("body: empty")
    raw = text.encode("utf-8")
    m = case.mutation
    if "bom" in m:
        raw = b"\xef\xbb\xbf" + raw
    if "crlf" in m:
        raw = raw.replace(b"\n", b"\r\n")
    if m == "cr":
        raw = raw.replace(b"\n", b"\r")
    if m == "invalid-utf8":
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + b"\xff\xfe" + raw[at:]
        reasons.append("invalid UTF-8")
    if m == "latin1":
        raw = raw + "Grüße aus dem Städtedreieck".encode("latin-1")
        reasons.append("Latin-1")
    if m == "nul":
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + b"\x00" + raw[at:]
        reasons.append("NUL")
    if m == "huge":
        raw = raw + b"x" * (256 * 1024)
        reasons.append("huge")
    if m == "no-front-matter":
        raw = raw.split(b"\n", 1)[1]
        reasons.append("no front matter")
    if m == "unclosed":
        raw = f"+++\n{front}\n{body}\n".encode()
        reasons.append("unclosed front matter")
        unsure = unsure or "+++" in body
    if m == "duplicated-front-matter":
        raw = f"+++\n{front}\n+++\n+++\n{front}\n+++\n{body}\n".encode()
        reasons.append("duplicated front matter")
    if m == "truncated":
        raw = raw[: draw(st.integers(0, len(raw)))]
        unsure = True
    if m == "empty-file":
        raw = b""
        reasons.append("empty")
    if m == "only-bom":
        raw = b"\xef\xbb\xbf"
        reasons.append("empty")
    case.raw = raw
    case.reasons = reasons
    case.unsure = unsure


def prepare_folder(folder: Path) -> None:
    """The images and traps a post's media entries refer to."""
    (folder / "bild.jpg").write_bytes(JPEG)
    (folder / "unterordner").mkdir()
    (folder / "unterordner" / "foto.png").write_bytes(PNG)
    (folder / "fake.jpg").write_text("Ich bin kein Bild.\n", encoding="utf-8")
    os.symlink("bild.jpg", folder / "link-innen.jpg")
    os.symlink(folder.parent.parent / "outside.jpg", folder / "link-aussen.jpg")
    os.symlink("/etc/passwd", folder / "link-passwd.jpg")


@pytest.fixture(scope="module")
def post_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("post-files"))


@HYPOTHESIS
@given(case=post_cases())
def test_generated_post_files(post_world: World, case: PostCase) -> None:
    """Post files of every shape: refused ones exit 2 with one line naming the file and
    leave the database unchanged; certainly wrong ones are refused, certainly valid
    ones accepted; none crashes."""
    folder = post_world.case_dir()
    prepare_folder(folder)
    path = folder / "beitrag.md"
    path.write_bytes(case.raw)
    args = {
        "enqueue": ["enqueue", str(path)],
        "dry-run": ["enqueue", "--dry-run", str(path)],
        "preview": ["preview", str(path)],
    }[case.command]
    clean = not case.reasons and not case.unsure and case.mutation in (
        "none", "bom", "crlf", "bom+crlf", "cr"
    )  # fmt: skip
    result = exercise(
        post_world,
        args,
        must_refuse=case.reasons,
        must_accept=clean,
    )
    if result.code == 2:
        assert str(path) in result.stderr or "Error: " in result.stderr, result.describe()


def test_post_file_cases_were_counted(post_world: World, figures: Figures) -> None:
    """At least 500 generated post files ran, on both sides of the line."""
    report(post_world, figures, "post_files")


# -- the named cases of issue 4, each once ------------------------------------------------------
VALID_FRONT = 'title = "Weihnachtsmarkt"\nlink = "https://www.zv-staedtedreieck.de/aktuelles/wm"\n'
NAMED_POSTS: list[tuple[str, bytes, int, str]] = [
    ("bom-crlf", ("\ufeff+++\r\n" + VALID_FRONT + "+++\r\nText.\r\n").encode(), 0, "enqueued"),
    ("invalid-utf8", b"+++\n+++\nGr\xfc\xdfe\n", 2, "not UTF-8"),
    ("missing-front-matter", b"Nur Text.\n", 2, "must start with a line +++"),
    (
        "duplicated-front-matter",
        f"+++\n{VALID_FRONT}+++\n+++\n{VALID_FRONT}+++\nText.\n".encode(),
        2,
        "a second +++ line",
    ),
    ("wrong-type", b"+++\ntitle = 5\n+++\nText.\n", 2, "title: must be text"),
    ("unknown-key", b'+++\ntags = ["a"]\n+++\nText.\n', 2, "tags: unknown key"),
    ("other-host", b'+++\nlink = "https://evil.example/x"\n+++\nText.\n', 2, "evil.example"),
    ("javascript", b'+++\nlink = "javascript:alert(1)"\n+++\nText.\n', 2, "not a web address"),
    (
        "idn-look-alike",
        '+++\nlink = "https://www.zv-städtedreieck.de/x"\n+++\nText.\n'.encode(),
        2,
        "is not the association's website",
    ),
    (
        "fullwidth-host",
        '+++\nlink = "https://ｗｗｗ.zv-staedtedreieck.de/x"\n+++\nT.\n'.encode(),
        2,
        "is not the association's website",
    ),
    (
        "escaping-media",
        b'+++\n[[media]]\npath = "../../etc/passwd"\nalt = "x"\n+++\nText.\n',
        2,
        "must stay inside the post file's folder",
    ),
    (
        "symlink-out",
        b'+++\n[[media]]\npath = "link-passwd.jpg"\nalt = "x"\n+++\nText.\n',
        2,
        "must stay inside the post file's folder",
    ),
    (
        "not-an-image",
        b'+++\n[[media]]\npath = "fake.jpg"\nalt = "x"\n+++\nText.\n',
        2,
        "is not a JPEG, PNG, GIF or WebP image",
    ),
    ("huge", b"+++\n+++\n" + b"x" * (300 * 1024), 2, "a post file may have at most"),
    ("control-character", b'+++\ntitle = "a\\u001b[2J"\n+++\nText.\n', 2, "U+001B"),
]


@pytest.mark.parametrize(
    ("content", "code", "needle"),
    [case[1:] for case in NAMED_POSTS],
    ids=[case[0] for case in NAMED_POSTS],
)
def test_named_post_files(post_world: World, content: bytes, code: int, needle: str) -> None:
    """Each kind of bad post file the issue names is refused with a line saying what is wrong
    (and the BOM + CRLF file is accepted)."""
    folder = post_world.case_dir()
    prepare_folder(folder)
    path = folder / "beitrag.md"
    path.write_bytes(content)
    result = exercise(post_world, ["enqueue", str(path)], must_refuse=[], must_accept=code == 0)
    assert result.code == code, result.describe()
    assert needle in (result.stdout if code == 0 else result.stderr), result.describe()


def test_endless_files_are_refused_without_reading_them_whole(post_world: World) -> None:
    """/dev/zero as a post file or as the configuration: refused as too big, at once."""
    result = exercise(
        post_world, ["enqueue", "/dev/zero"], must_refuse=["endless"], must_accept=False
    )
    assert "at most" in result.stderr
    result = exercise(
        post_world, ["--config", "/dev/zero", "status"], must_refuse=["endless"], must_accept=False
    )
    assert "at most" in result.stderr


def test_a_file_name_with_a_line_break_stays_one_line(post_world: World) -> None:
    """A post file whose name holds a line break and an escape sequence is named in one
    line, with both shown as escapes (nothing reaches the terminal raw)."""
    folder = post_world.case_dir()
    path = folder / "zwei\nzeilen\x1b[31m.md"
    path.write_bytes(b"+++\ntags = 1\n+++\nText.\n")
    result = exercise(post_world, ["enqueue", str(path)], must_refuse=["tags"], must_accept=False)
    assert "zwei\\nzeilen\\x1b[31m.md" in result.stderr
