"""The installed command answers help and dry runs from its start-up cache exactly as click.

``crosspost --help`` (every command's, the bare ``crosspost``, ``--version``) and
``crosspost enqueue --dry-run FILE`` are answered without importing click and
pydantic once the start-up cache holds the answer (crosspost.entry). These tests
run the installed command three times per request -- with the cache off (click
answers), with an empty cache (click answers and the answer is kept) and once more
(the kept answer is replayed) -- and compare every byte and the exit code, in
English and German. The commands are read from the click tree when the tests run,
so a command added to the CLI is compared as well.
"""

from __future__ import annotations

import marshal
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import pytest

from crosspost.cli import main_group

pytestmark = pytest.mark.acceptance

CROSSPOST = str(Path(sys.executable).with_name("crosspost"))
SITE = "https://www.zv-staedtedreieck.de"
LANGUAGES = {"en": {"LANG": "C.UTF-8"}, "de": {"LANG": "de_DE.UTF-8", "LANGUAGE": "de"}}


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(group.commands.items()):
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


REQUESTS = [
    [],
    ["--help"],
    ["-h"],
    ["--version"],
    ["no-such-command", "--help"],
    *([*c, "--help"] for c in _commands(main_group)),
]

Outcome = tuple[str, str, int]


def environment(root: Path, language: str, *, cache: bool) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CROSSPOST_", "_CROSSPOST", "LANG", "LC_", "COLUMNS"))
    }
    env.update(LANGUAGES[language], XDG_CACHE_HOME=str(root / "cache"), COLUMNS="80")
    env.update(CROSSPOST_CONFIG=str(root / "crosspost.toml"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if not cache:
        env["CROSSPOST_NO_CACHE"] = "1"
    return env


def run(argv: list[str], env: dict[str, str], cwd: Path) -> Outcome:
    result = subprocess.run(
        [CROSSPOST, *argv], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    return result.stdout, result.stderr, result.returncode


def three_ways(argv: list[str], root: Path, language: str) -> tuple[Outcome, Outcome, Outcome]:
    click_answer = run(argv, environment(root, language, cache=False), root)
    first = run(argv, environment(root, language, cache=True), root)
    again = run(argv, environment(root, language, cache=True), root)
    return click_answer, first, again


def entries(root: Path, kind: str) -> list[Path]:
    folder = root / "cache" / "crosspost"
    return sorted(folder.glob(f"{kind}-*.bin")) if folder.is_dir() else []


def run_until_kept(argv: list[str], env: dict[str, str], root: Path, kind: str) -> Outcome:
    """Run until the answer is kept. Code edited less than two seconds ago is not trusted
    and nothing is kept: in a working tree other people edit, a later run keeps it."""
    for _ in range(30):
        outcome = run(argv, env, root)
        if entries(root, kind):
            return outcome
    raise AssertionError(f"no {kind} entry was kept for {argv}")


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_help_from_the_cache_is_clicks_help_byte_for_byte(tmp_path: Path, language: str) -> None:
    """Every help request, in English and German: the same bytes and exit code."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda a: three_ways(a, tmp_path, language), REQUESTS))
    for argv, (click_answer, first, again) in zip(REQUESTS, answers, strict=True):
        assert first == click_answer, argv
        assert again == click_answer, argv
    # one entry per request -- fewer only where a module was edited during the run
    # (code younger than two seconds is not trusted to be the code that ran)
    assert 0 < len(entries(tmp_path, "help")) <= len(REQUESTS)
    german = answers[1][0][0]
    assert german.startswith("Aufruf:" if language == "de" else "Usage:")


def test_a_kept_answer_is_replayed_and_a_changed_module_is_noticed(tmp_path: Path) -> None:
    """The second answer comes from the cache (a planted answer shows), and an entry whose
    recorded module changed is not used (click answers again)."""
    env = environment(tmp_path, "en", cache=True)
    expected = run_until_kept(["--help"], env, tmp_path, "help")
    [entry_file] = entries(tmp_path, "help")
    entry = marshal.loads(entry_file.read_bytes())  # noqa: S302 - the test's own cache
    assert entry["stdout"] == expected[0]
    entry["stdout"] = "planted\n"
    entry_file.write_bytes(marshal.dumps(entry))
    assert run(["--help"], env, tmp_path)[0] == "planted\n"
    # the same entry, but one recorded module "changed" since: stale, click answers
    entry["manifest"] = tuple((p, m - 1, s) for p, m, s in entry["manifest"])
    entry_file.write_bytes(marshal.dumps(entry))
    assert run(["--help"], env, tmp_path) == expected


def test_the_cache_can_be_turned_off(tmp_path: Path) -> None:
    """CROSSPOST_NO_CACHE=1: nothing is written."""
    run(["--help"], environment(tmp_path, "en", cache=False), tmp_path)
    assert entries(tmp_path, "help") == []


@pytest.fixture(params=["sqlite", "postgresql"])
def dry_run_workspace(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A config and post files; the queue (the duplicate guard reads it) on each backend."""
    if request.param == "sqlite":
        database = f"sqlite:///{tmp_path}/q.db"
    else:
        database = request.getfixturevalue("pg_url")
    (tmp_path / "crosspost.toml").write_text(
        f'[site]\nurl = "{SITE}"\n[database]\nurl = "{database}"\n'
        '[accounts.mastodon]\nplatform = "mastodon"\nbase_url = "https://social.example"\n'
        "max_characters = 80\n"
        '[accounts.website]\nplatform = "feed"\npath = "site"\n',
        encoding="utf-8",
    )
    front = f'+++\ntitle = "Markt"\nlink = "{SITE}/markt"\n'
    # due times in the future: "now" would differ between the runs compared
    (tmp_path / "ok.md").write_text(front + "publish_at = 2030-01-01T10:00:00\n+++\nHallo.\n")
    (tmp_path / "long.md").write_text(front + "publish_at = 2030-01-02\n+++\n" + "Lang. " * 20)
    (tmp_path / "broken.md").write_text(front + "titel = 1\n+++\nText.\n")
    return tmp_path


@pytest.mark.parametrize("language", sorted(LANGUAGES))
@pytest.mark.parametrize(
    "argv",
    [
        ["enqueue", "--dry-run", "ok.md"],
        ["enqueue", "--dry-run", "--json", "ok.md"],
        ["enqueue", "--dry-run", "ok.md", "long.md"],
        ["enqueue", "--dry-run", "broken.md"],
        ["enqueue", "--dry-run", "missing.md"],
    ],
    ids=" ".join,
)
def test_dry_run_from_the_cache_answers_as_the_full_command(
    dry_run_workspace: Path, argv: list[str], language: str
) -> None:
    """The installed command, end to end: output, errors and exit code."""
    click_answer, first, again = three_ways(argv, dry_run_workspace, language)
    assert first == click_answer
    assert again == click_answer
    assert click_answer[2] in (0, 2)
    env = environment(dry_run_workspace, language, cache=True)
    assert run_until_kept(argv, env, dry_run_workspace, "config") == click_answer
    assert run(argv, env, dry_run_workspace) == click_answer  # from the kept copy
    assert len(entries(dry_run_workspace, "config")) == 1


def test_python_dash_m_takes_the_same_way(tmp_path: Path) -> None:
    """`python -m crosspost` answers as the console script does."""
    env = environment(tmp_path, "en", cache=True)
    module = subprocess.run(
        [sys.executable, "-m", "crosspost", "--help"], env=env, capture_output=True, text=True
    )
    assert (module.stdout, module.stderr, module.returncode) == run(["--help"], env, tmp_path)
