"""The ``crosspost`` command's front door (the console script and ``python -m crosspost``).

Importing click, pydantic and SQLAlchemy takes several times longer than
starting Python, and editors run ``crosspost --help`` and ``crosspost enqueue
--dry-run FILE`` all day. So this module answers those two from the start-up
cache (:mod:`crosspost.startcache`) and hands everything else, untouched, to
:func:`crosspost.cli.main`:

* **help and version** -- ``crosspost``, ``crosspost [COMMAND…] --help|-h``,
  ``crosspost --version``: the first time, click answers while this module
  records exactly what it wrote to stdout and stderr and its exit code; from
  then on the recorded answer is replayed. The entry's key holds the arguments,
  the language variables and the terminal width; its manifest holds every
  module of crosspost and click that was loaded and the message catalogues, so
  a new command, a changed help text or a new translation makes a new answer.
* **enqueue --dry-run FILE…** -- :mod:`crosspost.dryrun` validates without
  click and pydantic, from a plain-data copy of the configuration.

Whatever does not match exactly, and every doubt (no cache folder, output
streams that are not UTF-8, a shell-completion request), takes the normal path.
"""

from __future__ import annotations

import os
import sys
import time

from crosspost import __version__

TYPE_CHECKING = False  # importing typing costs a few ms; mypy knows the name
if TYPE_CHECKING:
    from typing import Any, NoReturn, TextIO

HELP_OPTIONS = ("--help", "-h")
#: the variables gettext chooses the language from, in its order
LANGUAGE_VARIABLES = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")
#: a module changed this recently may have changed after it was imported
SETTLE_NS = 2_000_000_000


def main() -> None:
    """Run ``crosspost`` with ``sys.argv``; never returns normally on the quick paths."""
    started = time.time_ns()
    argv = sys.argv[1:]
    try:
        if _quick_paths_allowed():
            if is_help_request(argv):
                _help(argv, started)
            elif "--dry-run" in argv:
                from crosspost.dryrun import run

                code = run(argv)
                if code is not None:
                    sys.exit(code)
    except KeyboardInterrupt:
        sys.exit(130)  # as crosspost.cli.main: no traceback
    except BrokenPipeError:
        # the reader went away (``crosspost --help | head -1``): no traceback at exit either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    _full(argv)


def _full(argv: list[str]) -> None:
    from crosspost.cli import main as cli_main

    cli_main()


def _quick_paths_allowed() -> bool:
    from crosspost import startcache

    if not startcache.enabled():
        return False
    # click's shell completion answers through these variables instead of running a command
    if any(name.startswith("_CROSSPOST_") for name in os.environ):
        return False
    return utf8_stream(sys.stdout) and utf8_stream(sys.stderr)


def utf8_stream(stream: TextIO | None) -> bool:
    """Whether ``stream`` is a text stream writing UTF-8 (click uses those as they are)."""
    import codecs

    encoding = getattr(stream, "encoding", None)
    if not isinstance(encoding, str):
        return False
    try:
        return codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return False


def is_help_request(argv: list[str]) -> bool:
    """``[]``, ``["--version"]`` or command names followed by ``--help``/``-h``."""
    if not argv or argv == ["--version"]:
        return True
    return argv[-1] in HELP_OPTIONS and all(_is_command_name(a) for a in argv[:-1])


def _is_command_name(token: str) -> bool:
    bare = token.replace("-", "").replace("_", "")
    return token[:1].isalpha() and token.isascii() and token.islower() and bare.isalnum()


def terminal_columns() -> int:
    """The width :func:`shutil.get_terminal_size` reports (click wraps help to it)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            stdout = sys.__stdout__
            columns = os.get_terminal_size(stdout.fileno()).columns if stdout else 0
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def help_key(argv: list[str]) -> tuple[Any, ...]:
    return (
        __version__,
        sys.version,
        sys.prefix,  # two installations sharing a home folder keep apart
        tuple(argv),
        tuple(os.environ.get(name) for name in LANGUAGE_VARIABLES),
        terminal_columns(),
    )


def _help(argv: list[str], started: int) -> None:
    from crosspost import startcache

    key = help_key(argv)
    entry = startcache.load("help", key)
    if entry is not None:
        replay(entry)
    # A miss: click answers, and what it writes is kept for the next time.
    out, err = Recorder(sys.stdout), Recorder(sys.stderr)
    sys.stdout, sys.stderr = out, err
    code: str | int | None = 0
    try:
        _full(argv)
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.stdout, sys.stderr = out.stream, err.stream
    if code is None:
        code = 0
    if (
        isinstance(code, int)
        and not out.tainted
        and not err.tainted
        and not (out.text and err.text)
    ):
        files = startcache.module_files("crosspost", "click") + startcache.catalogue_files()
        recorded = startcache.manifest(files)
        if all(mtime < started - SETTLE_NS for _path, mtime, _size in recorded):
            startcache.store("help", key, recorded, stdout=out.text, stderr=err.text, code=code)
    sys.exit(code)


def replay(entry: dict[str, Any]) -> NoReturn:
    """Write a recorded answer as click wrote it, and exit with its code."""
    for stream, text in ((sys.stdout, entry.get("stdout")), (sys.stderr, entry.get("stderr"))):
        if isinstance(text, str) and text:
            stream.write(text)
            stream.flush()
    code = entry.get("code")
    sys.exit(code if isinstance(code, int) else 1)


class Recorder:
    """A text stream that writes through to ``stream`` and keeps a copy of what it wrote.

    Anything beyond plain text writes (its binary buffer asked for) taints the copy,
    which is then not kept.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.parts: list[str] = []
        self.tainted = False

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def write(self, text: str) -> int:
        written = self.stream.write(text)  # raises for bytes, as a text stream does
        self.parts.append(text)
        return written

    def writelines(self, lines: list[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:
        return self.stream.encoding

    @property
    def errors(self) -> str | None:
        return self.stream.errors

    @property
    def buffer(self) -> Any:
        self.tainted = True
        return self.stream.buffer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)
