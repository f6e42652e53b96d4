"""`enqueue --dry-run` without click and pydantic answers exactly as the full command.

Every case runs three times: through the full command (click, pydantic), through
the quick path with an empty start-up cache (it validates the configuration and
keeps a copy) and through the quick path again (it uses the copy). Standard output,
standard error and the exit code must be the same, in English and German, with and
without ``--json``.
"""

from __future__ import annotations

import contextlib
import io
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from crosspost import dryrun, i18n, snapshot, startcache
from crosspost.clock import system_clock
from crosspost.config import Settings, load_settings

SITE = "https://www.zv-staedtedreieck.de"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01"
SECRET = "geheimes-token-4711"
NOW = datetime(2026, 11, 27, 9, 0, 30, tzinfo=UTC)

CONFIG = f"""
[site]
url = "{SITE}"
name = "Zweckverband Städtedreieck"
timezone = "Europe/Berlin"
link_hosts = ["www.staedtedreieck-tourismus.de"]

[database]
url = "sqlite:///{{db}}"

[accounts.mastodon]
platform = "mastodon"
base_url = "https://social.example"
token_env = "CROSSPOST_TEST_TOKEN"

[accounts.bluesky]
platform = "bluesky"
handle = "zv.bsky.social"
token_env = "CROSSPOST_TEST_TOKEN"

[accounts.telegram]
platform = "telegram"
chat = "@zv"
token_env = "CROSSPOST_TEST_TOKEN"

[accounts.x]
platform = "x"
enabled = false

[accounts.website]
platform = "feed"
path = "site"
public_url = "{SITE}/social"

[routing]
stellenangebot = ["mastodon", "website"]
"""

FRONT = f'title = "Weihnachtsmarkt"\nlink = "{SITE}/aktuelles/weihnachtsmarkt"'
#: name -> file contents (bytes), one post file per case unless the name holds "+"
CASES: dict[str, bytes] = {
    "valid": f"+++\n{FRONT}\n+++\nDer Weihnachtsmarkt öffnet am 1. Dezember.\n".encode(),
    "spec-example": (
        f'+++\n{FRONT}\ncategory = "veranstaltung"\npublish_at = 2026-12-01T09:00:00\n'
        'accounts = ["mastodon", "bluesky"]\n\n[[media]]\npath = "markt.jpg"\n'
        'alt = "Beleuchtete Marktstände"\n\n[variants.bluesky]\n'
        'text = "Der Weihnachtsmarkt öffnet am 1. Dezember."\n+++\n'
        "Der Weihnachtsmarkt im Städtedreieck öffnet am 1. Dezember um 16 Uhr …\n"
    ).encode(),
    "routed": f'+++\n{FRONT}\ncategory = "stellenangebot"\n+++\nWir suchen Verstärkung.\n'.encode(),
    "past": f"+++\n{FRONT}\npublish_at = 2020-03-01T09:00:00\n+++\nVorbei.\n".encode(),
    "ambiguous": f"+++\n{FRONT}\npublish_at = 2025-10-26T02:30:00\n+++\nZweimal.\n".encode(),
    "emoji": f"+++\n{FRONT}\n+++\nFrohe Weihnachten 🎄🇩🇪 und Grüße u\u0308berall!\n".encode(),
    "too-long": f"+++\n{FRONT}\n+++\n{'Sehr lang. ' * 10}\n".encode(),
    "foreign-link": b'+++\ntitle = "T"\nlink = "https://example.org/x"\n+++\nText.\n',
    "second-host": (
        b'+++\ntitle = "T"\nlink = "https://www.staedtedreieck-tourismus.de/a"\n+++\nText.\n'
    ),
    "unknown-account": f'+++\n{FRONT}\naccounts = ["myspace"]\n+++\nText.\n'.encode(),
    "disabled-account": f'+++\n{FRONT}\naccounts = ["x"]\n+++\nText.\n'.encode(),
    "unknown-category": f'+++\n{FRONT}\ncategory = "sport"\n+++\nText.\n'.encode(),
    "unknown-variant": f'+++\n{FRONT}\n[variants.myspace]\ntext = "x"\n+++\nText.\n'.encode(),
    "no-alt": f'+++\n{FRONT}\n[[media]]\npath = "markt.jpg"\n+++\nText.\n'.encode(),
    "missing-image": f'+++\n{FRONT}\n[[media]]\npath = "weg.jpg"\nalt = "A"\n+++\nText.\n'.encode(),
    "unknown-key": f'+++\n{FRONT}\ntags = ["a"]\n+++\nText.\n'.encode(),
    "bad-toml": f"+++\n{FRONT}\ntitle = \n+++\nText.\n".encode(),
    "no-front-matter": b"Nur Text.\n",
    "unclosed": f"+++\n{FRONT}\nText.\n".encode(),
    "empty-body": f"+++\n{FRONT}\n+++\n\n".encode(),
    "control-character": f"+++\n{FRONT}\n+++\nText\x1b[31m rot.\n".encode(),
    "latin-1": f"+++\n{FRONT}\n+++\n".encode() + "Grüße\n".encode("latin-1"),
    "bom-crlf": b"\xef\xbb\xbf" + f"+++\r\n{FRONT}\r\n+++\r\nText.\r\n".encode(),
}
#: cases given as several files; "missing" names a file that does not exist
MULTI = {
    "several-valid": ["valid", "routed", "past"],
    "one-bad-among-good": ["valid", "too-long", "routed"],
    "missing-file": ["valid", "missing"],
    "a-folder": ["images"],
}
LANGUAGES = {"en": "C", "de": "de"}


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A configuration, a queue with a learnt limit, the post files and a private cache."""
    db = tmp_path / "queue.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE account_state (account TEXT, text_limit INTEGER)")
        conn.execute("INSERT INTO account_state VALUES ('mastodon', 90)")
    (tmp_path / "crosspost.toml").write_text(CONFIG.replace("{db}", str(db)), encoding="utf-8")
    posts = tmp_path / "posts"
    (posts / "images").mkdir(parents=True)
    (posts / "markt.jpg").write_bytes(JPEG)
    for name, content in CASES.items():
        (posts / f"{name}.md").write_bytes(content)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CROSSPOST_CONFIG", str(tmp_path / "crosspost.toml"))
    monkeypatch.setenv("CROSSPOST_TEST_TOKEN", SECRET)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(dryrun, "SETTLE_NS", 0)  # the tree may be edited while tests run
    # "due now" is printed to the second: both paths must see the same instant
    monkeypatch.setattr(system_clock, "now", lambda: NOW)
    return tmp_path


Outcome = tuple[str, str, object]


def _captured(call: Callable[[], object]) -> Outcome:
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = call()
        except SystemExit as exc:
            code = exc.code
    return out.buffer.getvalue().decode(), err.buffer.getvalue().decode(), code or 0


def full_command(argv: list[str]) -> Outcome:
    from crosspost.cli import main

    i18n.reset()
    saved = sys.argv
    sys.argv = ["crosspost", *argv]
    try:
        return _captured(main)
    finally:
        sys.argv = saved


def quick_path(argv: list[str]) -> Outcome:
    i18n.reset()
    out, err, code = _captured(lambda: dryrun.run(argv))
    assert code is not None, f"the quick path declined {argv}"
    return out, err, code


def files_of(case: str) -> list[str]:
    names = MULTI.get(case, [case])
    return [f"posts/{name}.md" if name != "images" else "posts/images" for name in names]


@pytest.mark.parametrize("language", sorted(LANGUAGES))
@pytest.mark.parametrize("case", [*CASES, *MULTI])
def test_quick_dry_run_answers_as_the_full_command(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, case: str, language: str
) -> None:
    """Same output, errors and exit code, whether the configuration is cached or not."""
    monkeypatch.setenv("LANGUAGE", LANGUAGES[language])
    for extra in ([], ["--json"]):
        argv = ["enqueue", "--dry-run", *extra, *files_of(case)]
        expected = full_command(argv)
        assert expected[2] in (0, 2), expected
        assert quick_path(argv) == expected  # validates the configuration, keeps a copy
        assert quick_path(argv) == expected  # uses the copy


def test_the_cases_cover_success_notes_and_errors(workspace: Path) -> None:
    """The comparison above is not vacuous: valid posts, notes and refusals all occur."""
    outcomes = [full_command(["enqueue", "--dry-run", *files_of(c)]) for c in [*CASES, *MULTI]]
    assert sum(code == 0 for _o, _e, code in outcomes) >= 6
    assert sum(code == 2 for _o, _e, code in outcomes) >= 15
    assert any("note:" in out for out, _e, _c in outcomes)
    assert any("too long for account mastodon" in err for _o, err, _c in outcomes)


def test_global_options_before_the_command(workspace: Path) -> None:
    """`--config FILE`, `--config=FILE` and `-q` give the same answer on both paths."""
    config = str(workspace / "crosspost.toml")
    for argv in (
        ["--config", config, "enqueue", "--dry-run", "posts/valid.md"],
        [f"--config={config}", "-q", "enqueue", "posts/past.md", "--dry-run", "--json"],
    ):
        assert quick_path(argv) == full_command(argv)


def test_a_changed_configuration_is_used_at_once(workspace: Path) -> None:
    """Editing the file (here: a lower limit) changes the next answer."""
    argv = ["enqueue", "--dry-run", "posts/valid.md"]
    assert quick_path(argv)[2] == 0
    config = workspace / "crosspost.toml"
    text = config.read_text(encoding="utf-8").replace(
        'base_url = "https://social.example"',
        'base_url = "https://social.example"\nmax_characters = 20',
    )
    config.write_text(text, encoding="utf-8")
    changed = quick_path(argv)
    assert changed == full_command(argv)
    assert changed[2] == 2
    assert "20 graphemes" in changed[1]


def test_a_changed_environment_is_used_at_once(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CROSSPOST_<SECTION>__<KEY> variable (any case) changes the next answer."""
    argv = ["enqueue", "--dry-run", "posts/second-host.md"]
    assert quick_path(argv)[2] == 0
    monkeypatch.setenv("crosspost_site__link_hosts", "[]")
    refused = quick_path(argv)
    assert refused == full_command(argv)
    assert refused[2] == 2


def test_the_cache_holds_no_secret_and_is_private(workspace: Path) -> None:
    """The kept configuration never holds a token; folder 0700, files 0600."""
    # A process of its own, as an editor runs it: this one has compiled the fixed patterns
    # (functools.cache) and filled re's cache long before, so it would keep no program.
    done = subprocess.run(
        [sys.executable, "-m", "crosspost", "enqueue", "--dry-run", "posts/valid.md"],
        env={**os.environ, "CROSSPOST_NO_CACHE": ""},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done
    folder = workspace / "cache" / "crosspost"
    entries = list(folder.iterdir())
    # the configuration's copy, and the compiled programs of fixed patterns (patterns.py)
    assert sorted(e.name.split("-")[0] for e in entries) == ["config", "regex"]
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for entry in entries:
        assert stat.S_IMODE(entry.stat().st_mode) == 0o600
        assert SECRET.encode() not in entry.read_bytes()


def test_a_damaged_cache_entry_is_a_miss(workspace: Path) -> None:
    """Garbage in the cache is ignored (and replaced), never shown or fatal."""
    argv = ["enqueue", "--dry-run", "posts/valid.md"]
    expected = full_command(argv)
    quick_path(argv)
    for entry in (workspace / "cache" / "crosspost").iterdir():
        entry.write_bytes(b"\x00garbage")
    assert quick_path(argv) == expected


def test_what_the_quick_path_does_not_answer_is_left_to_the_full_command(
    workspace: Path,
) -> None:
    """Other commands, other options and PostgreSQL queues return None (full command)."""
    for argv in (
        ["enqueue", "posts/valid.md"],
        ["enqueue", "--dry-run"],
        ["enqueue", "--dry-run", "--text", "Hallo"],
        ["enqueue", "--dry-run", "--at", "now", "posts/valid.md"],
        ["enqueue", "--dry-run", "--", "posts/valid.md"],
        ["-v", "enqueue", "--dry-run", "posts/valid.md"],
        ["preview", "--dry-run", "posts/valid.md"],
        ["--config", "enqueue"],
    ):
        assert dryrun.parse(argv) is None, argv
    assert dryrun.parse(["-q", "enqueue", "a.md", "--dry-run", "b.md", "--json"]) is not None
    config = workspace / "crosspost.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace(f"sqlite:///{workspace}/queue.db", "postgresql+psycopg://u@127.0.0.1/x"),
        encoding="utf-8",
    )
    assert dryrun.run(["enqueue", "--dry-run", "posts/valid.md"]) is None


@pytest.mark.parametrize(
    ("section", "post"),
    [
        ("[approval]\nrequired = true\n", "valid"),
        ('[approval]\ncategories = ["stellenangebot"]\n', "routed"),
        ('[quiet_hours]\nstellenangebot = "00:00-23:59"\n', "routed"),
        ("", "repeating"),
    ],
)
def test_the_editorial_workflow_is_left_to_the_full_command(
    workspace: Path, section: str, post: str
) -> None:
    """Approval, quiet hours and repeat rules add notes only the full command knows."""
    config = workspace / "crosspost.toml"
    config.write_text(config.read_text(encoding="utf-8") + section, encoding="utf-8")
    (workspace / "posts" / "repeating.md").write_text(
        f'+++\n{FRONT}\nrepeat = "FREQ=WEEKLY"\n+++\nJede Woche.\n', encoding="utf-8"
    )
    argv = ["enqueue", "--dry-run", f"posts/{post}.md"]
    assert full_command(argv)[2] == 0
    assert _captured(lambda: dryrun.run(argv)) == ("", "", 0)


def test_a_configuration_that_does_not_load_is_left_to_the_full_command(
    workspace: Path,
) -> None:
    """A broken configuration: nothing printed here, the full command explains."""
    (workspace / "crosspost.toml").write_text("[site]\nurl = 3\n", encoding="utf-8")
    assert _captured(lambda: dryrun.run(["enqueue", "--dry-run", "posts/valid.md"])) == (
        "",
        "",
        0,
    )


def test_error_lines_are_escaped_as_the_full_command_escapes_them() -> None:
    """dryrun.one_line is cli.one_line for every character they could differ on."""
    from crosspost.cli import one_line

    text = "".join(chr(c) for c in range(0x3000) if not 0xD800 <= c <= 0xDFFF)
    assert dryrun.one_line(text) == one_line(text)


def test_config_path_is_the_configs_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The quick path reads the file crosspost.config.config_path names."""
    from crosspost.config import config_path

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CROSSPOST_CONFIG", raising=False)
    assert dryrun.config_path(None) == str(config_path(None))
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "crosspost.toml").write_text("")
    assert dryrun.config_path(None) == str(config_path(None))
    monkeypatch.setenv("CROSSPOST_CONFIG", "/x/y.toml")
    assert dryrun.config_path(None) == str(config_path(None))
    assert dryrun.config_path("a.toml") == str(config_path("a.toml"))


@pytest.fixture
def rich_settings(tmp_path: Path) -> Settings:
    path = tmp_path / "crosspost.toml"
    path.write_text(
        CONFIG.replace("{db}", str(tmp_path / "q.db"))
        + '\n[accounts.linkedin]\nplatform = "linkedin"\norganization = "urn:li:organization:1"\n'
        'token_file = "/run/x"\ntoken_expires_at = 2027-01-01T00:00:00\n'
        '\n[accounts.hook]\nplatform = "webhook"\nurl = "https://hooks.example/x"\n',
        encoding="utf-8",
    )
    return load_settings(path)


def _same(real: object, copy: object, where: str) -> None:
    from pydantic import BaseModel

    if isinstance(real, BaseModel):
        cls = type(real)
        names = [*cls.model_fields, *getattr(cls, "__class_vars__", ()), "model_extra"]
        names += [
            n
            for k in cls.__mro__
            if k.__module__.startswith("crosspost.")
            for n, m in vars(k).items()
            if isinstance(m, property) and not n.startswith("_")
        ]
        for name in names:
            try:
                value = getattr(real, name)
            except Exception:  # noqa: BLE001 - a raising property is not copied
                assert not hasattr(copy, name), f"{where}.{name}"
                continue
            _same(value, getattr(copy, name), f"{where}.{name}")
    elif isinstance(real, dict):
        assert isinstance(copy, dict), where
        assert list(real) == list(copy), where
        for k in real:
            _same(real[k], copy[k], f"{where}[{k}]")
    elif isinstance(real, list | tuple):
        assert type(real) is type(copy), where
        assert len(real) == len(copy), where
        for i, (a, b) in enumerate(zip(real, copy, strict=True)):
            _same(a, b, f"{where}[{i}]")
    else:
        assert type(real) is type(copy), (where, real, copy)
        assert real == copy, (where, real, copy)


def test_the_snapshot_answers_every_attribute_as_the_settings(rich_settings: Settings) -> None:
    """Every field, constant and property of every section and account, and the methods
    planning uses, read the same from the restored snapshot."""
    data = snapshot.capture(rich_settings)
    assert data is not None
    copy = snapshot.restore(startcache_roundtrip(data))
    _same(rich_settings, copy, "settings")
    assert list(copy.enabled_accounts()) == list(rich_settings.enabled_accounts())
    assert copy.account("website").public_url == f"{SITE}/social"
    with pytest.raises(AttributeError):
        copy.site.url = "https://elsewhere.example"


def startcache_roundtrip(data: Any) -> Any:
    """What the cache file gives back (marshal), not the object itself."""
    import marshal

    return marshal.loads(marshal.dumps(data, 4))  # noqa: S302 - our own bytes


def test_a_secret_in_the_settings_is_never_copied() -> None:
    """A SecretStr anywhere makes the snapshot refuse (nothing is cached)."""
    from pydantic import BaseModel, SecretStr

    class Holder(BaseModel):
        token: SecretStr

    # Not a Settings on purpose: any model holding a secret is refused.
    assert snapshot.capture(Holder(token=SecretStr("x"))) is None  # type: ignore[arg-type]


def test_cache_folder_of_someone_else_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder others may write is no cache: nothing is read from or written to it."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = tmp_path / "crosspost"
    folder.mkdir()
    os.chmod(folder, 0o777)  # noqa: S103 - the folder a careless admin left writable
    assert startcache.folder() is None
    assert not startcache.store("help", ("k",), ())
    os.chmod(folder, 0o700)
    assert startcache.folder() == str(folder)
    monkeypatch.setenv("CROSSPOST_NO_CACHE", "1")
    assert not startcache.enabled()
