"""Shared pieces of the reliability suites (issue 4): "never twice, nothing lost".

* :func:`run_inprocess` runs the ``crosspost`` entry point inside the test process,
  with the same exit codes and stderr as the installed command (hundreds of
  generated cases would take minutes as subprocesses); :func:`run_installed`
  runs the real command for the sample that proves the two agree.
* :func:`check_outcome` is the rule every run must keep: exit 0 or 2, one clear
  error line, never a traceback.
* :class:`Figures` collects what the suites measured; ``make reliability``
  (``bench/reliability.py``) reads them from ``$CROSSPOST_RELIABILITY_FIGURES``.

Scale: ``CROSSPOST_RELIABILITY=full`` runs the long campaign; by default (CI) a
short seed set with the same code paths.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.commandline import CROSSPOST, CommandLine

from crosspost import i18n

SITE = "https://www.zv-staedtedreieck.de"

FULL = os.environ.get("CROSSPOST_RELIABILITY", "").lower() == "full"
#: where make reliability collects the figures (unset: only printed in the summary)
FIGURES_FILE = os.environ.get("CROSSPOST_RELIABILITY_FIGURES")


#: the platforms of the crash suite's accounts (issue 4); the long run adds every other one
CI_PLATFORMS = ("mastodon", "bluesky", "telegram")


def scaled(ci: int, full: int) -> int:
    """A size for the short CI run or the long ``make reliability`` run."""
    return full if FULL else ci


# -- figures ----------------------------------------------------------------------------------
class Figures:
    """Counters the suites add to; printed after the run, written for the report."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values: dict[str, Any] = {}

    def add(self, key: str, amount: int = 1) -> None:
        with self._lock:
            self.values[key] = self.values.get(key, 0) + amount

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self.values[key] = value

    def update(self, key: str, values: Mapping[str, Any]) -> None:
        """Set entries of the mapping under ``key`` (measurements, not counts)."""
        with self._lock:
            self.values.setdefault(key, {}).update(values)

    def merge(self, key: str, counts: Mapping[str, int]) -> None:
        """Add ``counts`` (e.g. faults by kind) into the mapping under ``key``."""
        with self._lock:
            target = self.values.setdefault(key, {})
            for name, n in counts.items():
                target[name] = target.get(name, 0) + n


FIGURES = Figures()


@pytest.fixture(scope="session")
def figures() -> Figures:
    return FIGURES


HERE = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "reliability: the issue-4 reliability suites (tests/reliability); short seeded set "
        "unless CROSSPOST_RELIABILITY=full",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of this folder ``reliability`` (``-m "not reliability"`` skips them)."""
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.reliability)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if FIGURES_FILE and FIGURES.values:
        path = Path(FIGURES_FILE)
        old = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        old.update(FIGURES.values)
        path.write_text(json.dumps(old, indent=2, sort_keys=True), encoding="utf-8")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES.values:
        return
    terminalreporter.section("reliability figures")
    for key in sorted(FIGURES.values):
        terminalreporter.write_line(f"{key}: {json.dumps(FIGURES.values[key], sort_keys=True)}")


# -- running crosspost ------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return (
            f"crosspost {self.args!r} exited {self.code}\n"
            f"--stdout--\n{self.stdout}\n--stderr--\n{self.stderr}"
        )


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without crosspost, systemd or locale settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("CROSSPOST_", "NOTIFY_SOCKET", "WATCHDOG_", "LANG", "LC_", "CREDENTIALS_DIRECTORY")
        )
        and k != "STATE_DIRECTORY"
    }
    env.update(LANG="C.UTF-8", LANGUAGE="C", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


_inprocess_lock = threading.Lock()


@contextlib.contextmanager
def _process_state(env: Mapping[str, str], cwd: Path) -> Iterator[None]:
    """Swap the environment and working directory as a new process would see them."""
    saved_env = dict(os.environ)
    saved_cwd = Path.cwd()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    i18n.reset()
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        i18n.reset()


def run_inprocess(args: Sequence[str], *, env: Mapping[str, str], cwd: Path) -> Run:
    """Call ``crosspost.cli.main`` as the installed script does, and capture what it shows.

    stdout and stderr are UTF-8 byte streams with the error handlers Python gives a
    C.UTF-8 process (``surrogateescape`` / ``backslashreplace``), so what cannot be
    printed fails here as it would there; the exit code is the one ``sys.exit`` gets.
    """
    from crosspost.cli import main

    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="surrogateescape")
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace")
    code: int
    with _inprocess_lock, _process_state(env, cwd):
        saved = sys.argv, sys.stdout, sys.stderr
        sys.argv = ["crosspost", *args]
        sys.stdout, sys.stderr = out, err
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc.code)
        finally:
            sys.argv, sys.stdout, sys.stderr = saved
    out.flush()
    err.flush()
    return Run(
        tuple(args),
        code,
        out.buffer.getvalue().decode("utf-8", "replace"),
        err.buffer.getvalue().decode("utf-8", "replace"),
    )


def _exit_code(code: object) -> int:
    """What the interpreter makes of ``sys.exit(code)``."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    return 1  # sys.exit("message") prints the message and exits 1


def run_installed(
    args: Sequence[str], *, env: Mapping[str, str], cwd: Path, timeout: float = 60
) -> Run:
    """The installed ``crosspost`` command in a subprocess (arguments as bytes, like a shell)."""
    result = subprocess.run(
        [CROSSPOST, *(os.fsencode(a) for a in args)],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    return Run(
        tuple(args),
        result.returncode,
        result.stdout.decode("utf-8", "replace"),
        result.stderr.decode("utf-8", "replace"),
    )


# -- what every run must keep -----------------------------------------------------------------
_CLICK_USAGE = re.compile(r"^Usage: crosspost")
_CLICK_HINT = re.compile(r"^Try 'crosspost.*' for help\.$")


def error_lines(stderr: str) -> list[str]:
    """The lines of stderr that state an error (click's usage framing left out)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    if lines and _CLICK_USAGE.match(lines[0]):
        lines = [line for line in lines[1:] if not _CLICK_HINT.match(line)]
    return lines


def has_traceback(text: str) -> bool:
    """Whether output shows a traceback (or the CLI's last-guard "internal error"); counted."""
    found = text.count("Traceback (most recent call last)") + text.count("internal error")
    if found:
        FIGURES.add("tracebacks", found)
    return bool(found)


def nothing_to_do(run: Run) -> bool:
    """Exit 1 is the honest answer of cancel, reschedule and retry that changed nothing."""
    return run.code == 1 and run.stderr == "" and " 0 deliveries" in f" {run.stdout}"


def check_outcome(run: Run, *, allowed: Sequence[int] = (0, 2)) -> None:
    """Exit 0 or 2 (or another allowed code); a refusal is one clear line; never a traceback."""
    assert not has_traceback(run.stdout + run.stderr), run.describe()
    assert run.code in allowed, run.describe()
    if run.code == 0 or nothing_to_do(run):
        return
    if run.code == 2 and (run.args == () or run.args[-1:] in (("db",), ("metrics",))):
        # a command group without its command: click shows the help instead of one line
        assert run.stderr.startswith("Usage: crosspost"), run.describe()
        assert "Commands:" in run.stderr, run.describe()
        return
    lines = error_lines(run.stderr)
    assert len(lines) == 1, "not one clear line:\n" + run.describe()
    line = lines[0]
    assert line.startswith(("crosspost: error: ", "Error: ")), run.describe()
    # A clear line says what is wrong: more than the bare prefix.
    what = line.removeprefix("crosspost: error: ").removeprefix("Error: ")
    assert len(what.strip()) >= 5, run.describe()


def settle_wal(db: Path) -> None:
    """Checkpoint the write-ahead log into the file, as the last process to close it does.

    In-process runs leave what a process exit would close to the garbage collector;
    settling between cases keeps a later command's checkpoint from changing bytes
    that no command changed in content.
    """
    import sqlite3

    if db.exists():
        with contextlib.closing(sqlite3.connect(db)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def db_digest(db: Path) -> str:
    """The database file and its write-ahead log, byte for byte."""
    digest = hashlib.sha256()
    for path in (db, db.with_name(db.name + "-wal")):
        digest.update(path.name.encode())
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def copy_world(world: Path, target: Path) -> Path:
    """A copy of a world folder (config with relative paths, database, feed) to replay in."""
    shutil.copytree(world, target, symlinks=True)
    return target


# -- installations ----------------------------------------------------------------------------
@dataclass
class Workspace(CommandLine):
    """A folder with a config, a SQLite database and the environment to run crosspost in."""

    root: Path
    env: dict[str, str]
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def db(self) -> Path:
        return self.root / "crosspost.db"

    def start_daemon(
        self,
        *extra: str,
        log: Path | None = None,
        preexec_fn: Callable[[], None] | None = None,
    ) -> subprocess.Popen[str]:
        """The daemon in the background; its output goes to ``log`` (default: a pipe)."""
        output: Any = subprocess.PIPE
        if log is not None:
            output = log.open("a", encoding="utf-8")
        process = subprocess.Popen(
            [CROSSPOST, *extra, "daemon"],
            cwd=self.root,
            env=self.env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=preexec_fn,
        )
        if log is not None:
            output.close()
        self.processes.append(process)
        return process


# -- platforms and configurations -------------------------------------------------------------
def harness_names() -> list[str]:
    """Every platform test server registered in ``tests.fakes.harness.HARNESSES``."""
    import importlib
    import pkgutil

    import tests.fakes
    from tests.fakes.harness import HARNESSES

    for module in pkgutil.iter_modules(tests.fakes.__path__):
        importlib.import_module(f"tests.fakes.{module.name}")
    return sorted(HARNESSES)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def config_text(
    root: Path,
    accounts: Mapping[str, Mapping[str, Any]],
    *,
    daemon: Mapping[str, Any] | None = None,
    site: Mapping[str, Any] | None = None,
    database_url: str | None = None,
) -> str:
    """A configuration for a test installation in ``root`` (SQLite file inside it, unless
    ``database_url`` names another database)."""
    sections: list[str] = [
        "[site]",
        f'url = "{SITE}"',
        'name = "Zweckverband Städtedreieck"',
        'timezone = "Europe/Berlin"',
        *(f"{k} = {toml_value(v)}" for k, v in (site or {}).items()),
        "",
        "[database]",
        f'url = "{database_url or f"sqlite:///{root}/crosspost.db"}"',
        "",
        "[daemon]",
        *(
            f"{k} = {toml_value(v)}"
            for k, v in {
                "lease_seconds": 5,
                "poll_interval": 0.05,
                "backoff_base": 0.2,
                "state_dir": str(root / "state"),
                **(daemon or {}),
            }.items()
        ),
    ]
    for name, table in accounts.items():
        sections += ["", f"[accounts.{name}]"]
        sections += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(sections) + "\n"


_WORKSPACES: list[Workspace] = []


@pytest.fixture(autouse=True)
def _no_daemon_outlives_its_test() -> Iterator[None]:
    """Kill whatever daemon a test started and left running (a failed assertion, say)."""
    yield
    while _WORKSPACES:
        _WORKSPACES.pop().stop_all()


def make_workspace(
    root: Path,
    accounts: Mapping[str, Mapping[str, Any]],
    *,
    env: Mapping[str, str] | None = None,
    daemon: Mapping[str, Any] | None = None,
    upgrade: bool = True,
    database_url: str | None = None,
) -> Workspace:
    """A :class:`Workspace` with the given accounts, its database created."""
    root.mkdir(parents=True, exist_ok=True)
    text = config_text(root, accounts, daemon=daemon, database_url=database_url)
    (root / "crosspost.toml").write_text(text, "utf-8")
    ws = Workspace(root, clean_env(CROSSPOST_CONFIG=str(root / "crosspost.toml"), **(env or {})))
    _WORKSPACES.append(ws)
    if upgrade:
        ws.run("db", "upgrade")
    return ws


def dump_database(db: Path) -> str:
    """Every table of the SQLite database as SQL text."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(db)) as conn:
        return "\n".join(conn.iterdump())
