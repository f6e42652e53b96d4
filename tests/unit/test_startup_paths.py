"""The lean start-up of ``enqueue --dry-run`` reads and decides exactly as the standard
library it avoids importing: each fast path against the module it stands in for."""

from __future__ import annotations

import copy
import gettext
import os
import pickle
import subprocess
import sys
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crosspost import compose, dryrun, i18n, patterns, startcache
from crosspost.counting import Measure
from crosspost.models import Media, Post, Rendered
from crosspost.postfile import _is_dir
from crosspost.records import FrozenRecordError
from crosspost.service import LazyLimits, Planned
from crosspost.timeparse import Resolved

URL_CHARACTERS = "aZ09+-.:/?#@[]%_~ !é\t\x7f"


def _split(url: str) -> tuple[object, ...]:
    try:
        parts = urlsplit(url)
    except ValueError:
        return ("ValueError",)
    return (parts.scheme, parts.hostname, parts.username is not None or parts.password is not None)


def _parts(url: str) -> tuple[object, ...]:
    try:
        return compose.url_parts(url)
    except ValueError:
        return ("ValueError",)


@given(
    st.sampled_from(["", "https://", "http://", "HtTp://", "//", "x+y.z:", "1a:"]),
    st.text(alphabet=URL_CHARACTERS, max_size=24),
)
def test_url_parts_reads_as_urlsplit(prefix: str, rest: str) -> None:
    """Scheme, host and user of any address, as urllib.parse reads them."""
    assert _parts(prefix + rest) == _split(prefix + rest)


@pytest.mark.parametrize(
    "url",
    [
        "https://www.zv-staedtedreieck.de/aktuelles/a?b=1#c",
        "HTTPS://WWW.ZV-staedtedreieck.DE:443/",
        "https://user:pw@www.zv-staedtedreieck.de/",
        "https://[::1]/x",
        "https://a%B/",
        "https://münchen.de/",
        "https:x",
        "//host/x",
        "mailto:someone@example.org",
    ],
)
def test_url_parts_of_known_addresses(url: str) -> None:
    assert _parts(url) == _split(url)


def test_invisible_is_unicodes_control_and_format_categories() -> None:
    for code in range(0x3000):
        ch = chr(code)
        expected = ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf")
        assert compose._invisible(ch) == expected, hex(code)


@given(st.text(alphabet="abcXYZ09.-_xn", max_size=70))
def test_ascii_hosts_need_no_idna_codec(host: str) -> None:
    """For an ASCII host the idna codec gives the host itself, lower-cased (or fails)."""
    try:
        expected = host.lower().encode("idna").decode("ascii")
    except UnicodeError:
        expected = host.lower()
    assert compose._ascii_host(host) == expected
    assert compose._written_canonically(host)


@given(st.text(alphabet="/.a~ ", max_size=12))
def test_path_text_is_what_pathlib_prints(name: str) -> None:
    assert dryrun.path_text(name) == str(Path(name))


def test_is_dir_as_pathlib(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    for name in ("", "f", "missing", "f/below"):
        path = tmp_path / name
        assert _is_dir(str(path)) == path.is_dir()


@pytest.mark.parametrize(
    "environment",
    [
        {},
        {"LANGUAGE": "C"},
        {"LANGUAGE": "POSIX"},
        {"LANG": "C"},
        {"LC_ALL": "C:de"},
        {"LANGUAGE": "de"},
        {"LANG": "de_DE.UTF-8"},
        {"LANG": "C.UTF-8"},
        {"LANG": "C.utf8"},
        {"LANGUAGE": "C.UTF-8:de"},
        {"LC_ALL": "POSIX"},
        {"LANGUAGE": "", "LANG": "de_AT"},
        {"LANGUAGE": "german"},
        {"LC_MESSAGES": "en_US.UTF-8"},
    ],
)
def test_the_source_language_is_recognised_as_gettext_does(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the quick check says "untranslated", gettext finds no catalogue either."""
    for name in i18n.LANGUAGE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    found = gettext.find(i18n.DOMAIN, i18n.LOCALE_FOLDER)
    if i18n._source_language():
        assert found is None
    i18n.reset()
    message = "valid: {title} → {accounts}, due {due}"
    real = gettext.translation(i18n.DOMAIN, i18n.LOCALE_FOLDER, fallback=True)
    assert i18n._(message) == real.gettext(message)
    assert i18n.ngettext("{n} post", "{n} posts", 2) == real.ngettext("{n} post", "{n} posts", 2)
    i18n.reset()


def test_locale_dir_is_still_a_path() -> None:
    assert Path(i18n.LOCALE_FOLDER) == i18n.LOCALE_DIR
    assert (i18n.LOCALE_DIR / "de" / "LC_MESSAGES" / "crosspost.mo").is_file()


# -- the records: what @dataclass(frozen=True, slots=True) gave ----------------------------
def _post(**changes: object) -> Post:
    values: dict[str, object] = {
        "title": "T",
        "body": "B",
        "link": "https://x.example/",
        "category": None,
        "publish_at": datetime(2026, 12, 1, 8, tzinfo=UTC),
        "accounts": ("mastodon",),
    }
    values.update(changes)
    return Post(**values)  # type: ignore[arg-type]


def test_records_compare_hash_and_print_by_their_fields() -> None:
    media = Media(Path("/a.jpg"), "Alt")
    assert media == Media(path=Path("/a.jpg"), alt="Alt", mime="image/jpeg")
    assert media != Media(Path("/a.jpg"), "Alt", "image/png")
    assert hash(media) == hash(Media(Path("/a.jpg"), "Alt"))
    assert repr(media) == "Media(path=PosixPath('/a.jpg'), alt='Alt', mime='image/jpeg')"
    assert media != ("/a.jpg", "Alt", "image/jpeg")
    post = _post(media=(media,))
    assert post.variants == {}
    assert post.source is None
    assert post.repeat is None
    assert post.variants is not _post().variants  # a new dict each time, as default_factory
    with pytest.raises(TypeError):
        hash(post)  # it holds a dict, as the dataclass did
    assert Rendered("a", "mastodon", "t", 1, 500, "graphemes").limit == 500
    assert Measure(3, 2, "bytes").fits is False
    assert Resolved(datetime(2026, 1, 1, tzinfo=UTC)).ambiguous is False


def test_records_are_frozen_and_replaced_not_changed() -> None:
    post = _post()
    with pytest.raises(AttributeError):
        post.title = "other"
    with pytest.raises(FrozenRecordError):
        del post.body
    changed = post.replace(title="other", publish_at=None)
    assert (changed.title, changed.publish_at, changed.body) == ("other", None, "B")
    assert post.title == "T"
    with pytest.raises(TypeError):
        post.replace(colour="red")
    planned = Planned(post=post, due_at=datetime(2026, 12, 1, tzinfo=UTC), rendered=[])
    assert planned.notes == []
    assert planned.replace(post=changed).post is changed


def test_records_copy_and_pickle() -> None:
    post = _post(media=(Media(Path("/a.jpg"), "Alt"),), variants={"x": "y"})
    assert pickle.loads(pickle.dumps(post)) == post  # noqa: S301 - our own bytes
    assert copy.copy(post) == post
    assert copy.deepcopy(post) == post


def test_lazy_limits_are_read_only_when_looked_at() -> None:
    calls: list[int] = []

    def load() -> dict[str, int]:
        calls.append(1)
        return {"mastodon": 90}

    limits = LazyLimits(load)
    assert calls == []
    assert "mastodon" in limits
    assert limits["mastodon"] == 90
    assert dict(limits) == {"mastodon": 90}
    assert calls == [1]


# -- kept regular-expression programs ------------------------------------------------------
def test_a_kept_program_is_the_pattern_re_compiles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(startcache.DISABLE_VARIABLE, raising=False)
    monkeypatch.setattr(patterns, "_programs", None)
    monkeypatch.setattr(patterns, "enabled", True)
    pattern = r"(?P<word>[\wäöü]+)\s*(?:\.|\u2026)"
    first = patterns.compiled(pattern, re.IGNORECASE)
    assert first == re.compile(pattern, re.IGNORECASE)
    assert [n.split("-")[0] for n in os.listdir(tmp_path / "crosspost")] == ["regex"]
    monkeypatch.setattr(patterns, "_programs", None)  # a new process: from the cache
    kept = patterns.compiled(pattern, re.IGNORECASE)
    assert kept == first
    found = kept.match("Grüße …")
    assert found is not None
    assert found.group("word") == "Grüße"


def test_only_the_quick_path_keeps_programs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon and the full command compile as usual and write no cache."""
    import re

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(patterns, "_programs", None)
    monkeypatch.setattr(patterns, "enabled", False)
    assert patterns.compiled("x+y") == re.compile("x+y")
    assert not (tmp_path / "crosspost").exists()


def test_a_damaged_program_is_compiled_anew(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(patterns, "enabled", True)
    pattern = "a+b"
    monkeypatch.setattr(patterns, "_programs", {(pattern, 0): (0, [1, 2, 3], 0, {}, (None,))})
    assert patterns.compiled(pattern) == re.compile(pattern)


# -- what the quick path imports -----------------------------------------------------------
def test_the_quick_dry_run_imports_none_of_the_heavy_modules(tmp_path: Path) -> None:
    """click, pydantic, SQLAlchemy and the slower standard modules stay out of a dry run
    of a plain post to an account with its own limit (the start-up benchmark's case)."""
    db = tmp_path / "q.db"
    config = tmp_path / "crosspost.toml"
    config.write_text(
        '[site]\nurl = "https://www.zv-staedtedreieck.de"\ntimezone = "Europe/Berlin"\n'
        f'[database]\nurl = "sqlite:///{db}"\n'
        '[accounts.m]\nplatform = "mastodon"\nbase_url = "https://social.example"\n'
        'token_env = "T"\nmax_characters = 500\n',
        encoding="utf-8",
    )
    post = tmp_path / "post.md"
    post.write_text(
        '+++\ntitle = "T"\nlink = "https://www.zv-staedtedreieck.de/b"\n+++\nHallo Welt.\n'
    )
    script = (
        "import sys\n"
        "from crosspost import dryrun\n"
        "dryrun.SETTLE_NS = 0\n"  # the tree may be edited while tests run
        f"code = dryrun.run(['enqueue', '--dry-run', {str(post)!r}])\n"
        "print(code, sorted(m for m in sys.modules if m.split('.')[0] in ("
        "'click', 'pydantic', 'sqlalchemy', 'dataclasses', 'pathlib', 'urllib', 'ipaddress', "
        "'sqlite3', 'gettext', 'locale', 'inspect', 'json', 'zlib', 'mimetypes', 'getpass')))\n"
    )
    env = {
        **os.environ,
        "CROSSPOST_CONFIG": str(config),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "LANGUAGE": "C",
    }
    env.pop("CROSSPOST_NO_CACHE", None)
    first = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert first.stdout.splitlines()[-1].startswith("0 "), first  # pydantic validated it
    again = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert again.stdout.startswith("valid: T → m, due "), again
    assert again.stdout.splitlines()[-1] == "0 []", again


def test_the_standard_librarys_patterns_are_kept_as_re_compiles_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a dry run the programs of tomllib's and string.Template's patterns are kept;
    the next dry run finds them in re's cache, equal to what re compiles."""
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    env.pop("CROSSPOST_NO_CACHE", None)
    # kept by a fresh process, as after a dry run: in this one re's cache (512 entries,
    # oldest dropped first) may have lost tomllib's patterns long ago
    keep = (
        "from crosspost import patterns\n"
        "patterns.enabled = True\n"
        "import tomllib, string\n"
        "patterns.keep_stdlib()\n"
    )
    subprocess.run([sys.executable, "-c", keep], env=env, check=True, timeout=120)
    script = (
        "import re, sys\n"
        "from crosspost import patterns\n"
        "patterns.enabled = True\n"
        "patterns.preload_stdlib()\n"
        "kept = {k: v for k, v in re._cache.items()}\n"
        "import tomllib, string\n"
        "from re import _compiler\n"
        "same = [v == _compiler.compile(p, f) and re._cache[(t, p, f)] is v\n"
        "        for (t, p, f), v in kept.items()]\n"
        "print(len(kept), all(same))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["4", "True"], done
