"""``crosspost enqueue --dry-run FILE…`` without click and pydantic.

Editors check a post file dozens of times while writing it, so this path must
start nearly as fast as Python itself. It runs the same validation as the full
command -- :class:`crosspost.service.Crosspost` reading the files and planning
each post, against the text limits the daemon learnt (read from SQLite with the
standard library, as the full command does) -- and prints the same lines, errors,
exit codes and ``--json`` output. What it saves is the configuration: instead of
validating ``crosspost.toml`` with pydantic at every start, it uses the
validated copy in the start-up cache (:mod:`crosspost.startcache`,
:mod:`crosspost.snapshot`), kept while all of this is unchanged:

* the configuration file's path, modification time, size and exact bytes;
* the ``CROSSPOST_<SECTION>…`` variables pydantic-settings reads, and
  ``$STATE_DIRECTORY`` and ``$CREDENTIALS_DIRECTORY``;
* crosspost's version and modules, pydantic's, and Python's version.

The message language is not part of it: the copy holds no message.

It answers only ``[--config FILE] [-q] enqueue [--dry-run] [--json] FILE…`` with
``--dry-run`` given, on a SQLite queue (PostgreSQL needs SQLAlchemy anyway).
Everything else, a configuration that does not load (the full command prints
why), and any unexpected fault returns None before anything is printed, and the
full command answers instead.
"""

from __future__ import annotations

import os
import sys

from crosspost import __version__

TYPE_CHECKING = False  # importing typing costs; mypy knows the name
if TYPE_CHECKING:
    from typing import Any

    from crosspost.service import Crosspost, Planned

#: the same limit crosspost.config.load_settings applies
MAX_CONFIG_BYTES = 1024 * 1024
#: where crosspost.config.config_path looks when neither --config nor $CROSSPOST_CONFIG says
DEFAULT_CONFIG_PATHS = ("config/crosspost.toml", "/etc/crosspost/crosspost.toml")
#: code changed this recently may have changed after it was imported
SETTLE_NS = 2_000_000_000
#: variables besides CROSSPOST_* that the settings' values depend on
OTHER_VARIABLES = ("STATE_DIRECTORY", "CREDENTIALS_DIRECTORY")


class Request:
    """What the command line asks for."""

    def __init__(self, config: str | None, files: list[str], as_json: bool) -> None:
        self.config = config
        self.files = files
        self.as_json = as_json


def parse(argv: list[str]) -> Request | None:
    """The request, if ``argv`` is exactly a dry run this module answers; else None."""
    config: str | None = None
    index = 0
    while index < len(argv) and argv[index] != "enqueue":
        word = argv[index]
        if word == "--config" and index + 1 < len(argv):
            config = argv[index + 1]
            index += 2
        elif word.startswith("--config="):
            config = word.removeprefix("--config=")
            index += 1
        elif word in ("-q", "--quiet"):
            index += 1
        else:
            return None
    dry_run = as_json = False
    files: list[str] = []
    for word in argv[index + 1 :]:
        if word == "--dry-run":
            dry_run = True
        elif word == "--json":
            as_json = True
        elif word.startswith("-"):
            return None
        else:
            files.append(word)
    if index >= len(argv) or not dry_run or not files:
        return None
    return Request(config, files, as_json)


def run(argv: list[str]) -> int | None:
    """Answer the dry run in ``argv``: its exit code, or None to let the full command answer."""
    request = parse(argv)
    if request is None:
        return None
    from crosspost import patterns

    # compiled regular expressions (crosspost's URL grammar, tomllib's) from the start-up cache
    patterns.enabled = True
    try:
        patterns.preload_stdlib()
        settings = load(request.config)
        answer = None if settings is None else check(settings, request)
        if answer is not None:
            patterns.keep_stdlib()
    except Exception:  # noqa: BLE001 - any doubt: the full command answers (and explains)
        return None
    finally:
        patterns.enabled = False  # the full command, if it answers, compiles as usual
    if answer is None:
        return None
    stream, text, code = answer
    stream.write(text)
    stream.flush()
    return code


# -- the configuration ---------------------------------------------------------------------
def config_path(explicit: str | None) -> str:
    """What :func:`crosspost.config.config_path` returns, as text."""
    if explicit:
        return explicit
    env = os.environ.get("CROSSPOST_CONFIG")
    if env:
        return env
    for candidate in DEFAULT_CONFIG_PATHS:
        if os.path.isfile(candidate):
            return candidate
    return DEFAULT_CONFIG_PATHS[0]


def environment(fields: Any) -> tuple[tuple[str, str | None], ...]:
    """The variables the settings were read from: CROSSPOST_<field>[__…] (any case)."""
    prefixes = tuple(f"crosspost_{field}".lower() for field in fields)
    found = []
    for name, value in os.environ.items():
        lowered = name.lower()
        if lowered.startswith("crosspost_") and any(  # every prefix starts so
            lowered == p or lowered.startswith(f"{p}__") for p in prefixes
        ):
            found.append((name, value))
    found.sort()
    return (*found, *((name, os.environ.get(name)) for name in OTHER_VARIABLES))


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError:
        return None
    return raw if len(raw) <= MAX_CONFIG_BYTES else None


def load(explicit: str | None) -> Any | None:
    """The settings (a snapshot), from the cache or validated now; None if they do not load."""
    from crosspost import snapshot, startcache

    path = config_path(explicit)
    key = (__version__, sys.version, sys.prefix, os.path.abspath(path))
    entry = startcache.load("config", key)
    if entry is not None:
        raw = _read(path)
        if (
            raw is not None
            and raw == entry.get("config")
            and environment(entry.get("fields", ())) == entry.get("environment")
        ):
            return snapshot.restore(entry["settings"])
    return _validate_and_keep(path, key)


def _validate_and_keep(path: str, key: Any) -> Any | None:
    """A miss: pydantic validates, and the result is kept for the next start."""
    import time
    from pathlib import Path

    from crosspost import snapshot, startcache
    from crosspost.config import Settings, load_settings
    from crosspost.exceptions import CrosspostError

    started = time.time_ns()
    before = startcache.fingerprint(path)
    raw = _read(path)
    try:
        settings = load_settings(Path(path))
    except CrosspostError:
        return None  # the full command reports it
    data = snapshot.capture(settings)
    if data is None:
        return None
    fields = tuple(Settings.model_fields)
    code = startcache.manifest(
        [
            *startcache.module_files("crosspost"),
            *(_package_file(name) for name in ("pydantic", "pydantic_core", "pydantic_settings")),
        ]
    )
    # Code changed while it ran may not be the code that ran; the configuration itself is
    # compared byte for byte, before and after it was read (and at every use).
    settled = all(mtime < started - SETTLE_NS for _p, mtime, _s in code)
    unchanged = startcache.fingerprint(path) == before and _read(path) == raw
    if raw is not None and settled and unchanged:
        recorded = (*code, before)
        startcache.store(
            "config",
            key,
            recorded,
            config=raw,
            fields=fields,
            environment=environment(fields),
            settings=data,
        )
    return snapshot.restore(data)


def _package_file(name: str) -> str:
    module = sys.modules.get(name)
    return str(getattr(module, "__file__", "") or name)


# -- the check ---------------------------------------------------------------------------
class LearnedLimits:
    """The one part of a store that planning reads: the text limits learnt per account.

    Read from the SQLite file when planning first asks (``crosspost.service.LazyLimits``):
    only for an account whose limit may have been learnt.
    """

    def __init__(self, url: str) -> None:
        self.url = url

    def account_states(self) -> dict[str, Any]:
        from crosspost.store.peek import learned_limits, sqlite_path

        database = sqlite_path(self.url)  # as sqlite_file, without importing pathlib
        limits = {} if database is None else learned_limits(os.path.expanduser(database))
        return {name: _State(name, limit) for name, limit in limits.items()}


class _State:
    def __init__(self, account: str, text_limit: int) -> None:
        self.account = account
        self.text_limit = text_limit


def check(settings: Any, request: Request) -> tuple[Any, str, int] | None:
    """Validate every file as ``App.checker()`` does: (stream, text, exit code) to print."""
    from crosspost.exceptions import CrosspostError
    from crosspost.service import Crosspost
    from crosspost.store.peek import sqlite_path

    if sqlite_path(settings.database.url) is None:
        return None  # PostgreSQL: the full command reads the limits through SQLAlchemy
    service = Crosspost(settings, LearnedLimits(settings.database.url))  # type: ignore[arg-type]
    try:
        posts = service.read_files([path_text(name) for name in request.files])
        planned = [service.plan(post, at=None) for post in posts]
    except CrosspostError as exc:
        return _printable(sys.stderr, error_line(exc.message), exc.exit_code)
    if not workflow_adds_nothing(settings, planned):
        return None
    text = report_json(planned) if request.as_json else report(service, planned)
    return _printable(sys.stdout, text, 0)


def path_text(name: str) -> str:
    """``str(pathlib.Path(name))`` -- what the full command names the file (click hands it a
    Path) -- without importing pathlib: redundant slashes and ``.`` parts dropped."""
    root = ""
    if name.startswith("/"):
        stripped = name.lstrip("/")
        root = "//" if len(name) - len(stripped) == 2 else "/"  # POSIX keeps a leading "//"
        name = stripped
    return root + "/".join(part for part in name.split("/") if part and part != ".") or "."


def workflow_adds_nothing(settings: Any, planned: list[Planned]) -> bool:
    """Whether :meth:`crosspost.workflow.Workflow.notes` has nothing to add on a dry run.

    It speaks of repeat rules, quiet hours and approval; duplicates are only looked
    for in a SQL store, which a dry run does not open. Where any of the three is in
    play, the full command answers (the workflow needs pydantic and SQLAlchemy).
    """
    approval = settings.approval
    if approval.required or approval.categories or settings.quiet_hours.model_extra:
        return False
    if any(getattr(account, "quiet_hours", None) for account in settings.accounts.values()):
        return False
    return all(p.post.repeat is None for p in planned)


def report(service: Crosspost, planned: list[Planned]) -> str:
    """The lines ``enqueue --dry-run`` prints."""
    from crosspost.i18n import _

    lines = []
    for p in planned:
        names = ", ".join(r.account for r in p.rendered)
        line = _("valid: {title} → {accounts}, due {due}")
        due = service.local(p.due_at)
        lines.append(
            line.format(id=None, ids="", series=None, title=p.post.title, accounts=names, due=due)
        )
        lines += ["  " + _("note: {note}").format(note=note) for note in p.notes]
    return "".join(f"{line}\n" for line in lines)


def report_json(planned: list[Planned]) -> str:
    """What ``enqueue --dry-run --json`` prints (never translated)."""
    import json

    from crosspost.views import iso

    data = [
        {
            "id": None,
            "ids": [],
            "series": None,
            "state": None,
            "source": p.post.source,
            "title": p.post.title,
            "due_at": iso(p.due_at),
            "accounts": [r.account for r in p.rendered],
        }
        for p in planned
    ]
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def error_line(message: str) -> str:
    """The error line of ``crosspost.cli.fail``."""
    from crosspost.i18n import _

    return _("crosspost: error: {message}").format(message=one_line(message)) + "\n"


def one_line(text: str) -> str:
    """``crosspost.cli.one_line``: control characters and line separators as escapes."""
    import re

    return re.sub("[\x00-\x1f\x7f-\x9f\u2028\u2029]", lambda m: repr(m.group())[1:-1], text)


def _printable(stream: Any, text: str, code: int) -> tuple[Any, str, int] | None:
    """``(stream, text, code)``, or None where click.echo might write something else."""
    if "\x1b" in text:
        return None  # click strips terminal escapes when not writing to a terminal
    try:
        text.encode(stream.encoding, stream.errors or "strict")
    except (UnicodeError, LookupError):
        return None
    return stream, text, code
