"""Fixed regular expressions, their compiled programs kept in the start-up cache.

The standard library compiles a pattern in Python (``re._parser``,
``re._compiler``) into a program for its matching engine (``_sre``); for the
URL grammar of :mod:`crosspost.counting` that takes longer than starting Python
itself. :func:`compiled` keeps the program in the start-up cache
(:mod:`crosspost.startcache`), like Python keeps a module's bytecode, and hands
it to the engine at the next start:

* the programs are ``re``'s own: made by its compiler, and kept only where the
  pattern built from them compares equal to ``re.compile``'s (which compares
  flags, pattern and program);
* the entry belongs to one Python (its version, installation and engine's
  ``MAGIC``) and to ``re``'s compiler files as they were (a manifest, checked
  at every start);
* only the constant patterns of crosspost's own code come here -- never one
  built from a post -- so the cache holds no user data and stays small;
* only ``enqueue --dry-run``'s quick path (:mod:`crosspost.dryrun`) sets
  :data:`enabled`: the daemon and the full command compile as usual.

Any doubt, and anything unexpected, means :func:`re.compile` as usual.
"""

from __future__ import annotations

import os
import sys

from crosspost import startcache

TYPE_CHECKING = False  # importing typing costs; mypy knows the name
if TYPE_CHECKING:
    import re
    from typing import Any

KIND = "regex"
#: programs kept at most (a new pattern beyond it starts the entry afresh)
MAX_PROGRAMS = 32

_programs: dict[tuple[str, int], Any] | None = None
#: set by the quick paths of crosspost.entry (enqueue --dry-run); the daemon and the
#: full command compile as usual and never touch the cache
enabled = False


def compiled(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """``re.compile(pattern, flags)``, from the kept program where there is one."""
    if not enabled:
        import re

        return re.compile(pattern, flags)
    programs = _loaded()
    program = programs.get((pattern, int(flags)))
    if program is not None:
        try:
            built: re.Pattern[str] = _engine().compile(pattern, *program)
            return built
        except Exception:  # noqa: BLE001, S110 - a program that does not load: compile anew
            pass
    return _compile_and_keep(pattern, int(flags), programs)


def _engine() -> Any:
    """``_sre``, the matching engine (private: imported by name, typed loosely)."""
    return __import__("_sre")


def _internals() -> tuple[Any, Any]:
    """``re._parser`` and ``re._compiler`` (private, as ``_sre``)."""
    parser = __import__("re._parser", fromlist=["parse"])
    compiler = __import__("re._compiler", fromlist=["_code"])
    return parser, compiler


def _key() -> tuple[Any, ...]:
    engine = _engine()
    return (sys.version, sys.prefix, engine.MAGIC, engine.CODESIZE, sys.maxunicode)


def _loaded() -> dict[tuple[str, int], Any]:
    global _programs
    if _programs is None:
        _programs = {}
        if startcache.enabled():
            try:
                entry = startcache.load(KIND, _key())
                found = entry.get("programs") if entry else None
                if isinstance(found, dict):
                    _programs = found
            except Exception:  # noqa: BLE001, S110 - no programs: patterns are compiled
                pass
    return _programs


def _compile_and_keep(
    pattern: str, flags: int, programs: dict[tuple[str, int], Any]
) -> re.Pattern[str]:
    import re

    expected = re.compile(pattern, flags)
    if not startcache.enabled():
        return expected
    try:
        _parser, _compiler = _internals()
        parsed = _parser.parse(pattern, flags)
        code = _compiler._code(parsed, flags)
        groupindex = dict(parsed.state.groupdict)
        indexgroup: list[str | None] = [None] * parsed.state.groups
        for name, index in groupindex.items():
            indexgroup[index] = name
        program = (
            int(flags | parsed.state.flags),
            [int(op) for op in code],
            int(parsed.state.groups) - 1,
            groupindex,
            tuple(indexgroup),
        )
        if _engine().compile(pattern, *program) != expected:
            return expected  # not what re makes of it: keep nothing
        kept = {} if len(programs) >= MAX_PROGRAMS else dict(programs)
        kept[(pattern, flags)] = program
        startcache.store(KIND, _key(), startcache.manifest(_compiler_files()), programs=kept)
        programs[(pattern, flags)] = program
    except Exception:  # noqa: BLE001, S110 - re's internals differ: compile as usual
        pass
    return expected


def _compiler_files() -> list[str]:
    """The files of ``re``'s compiler: a changed one makes every kept program a miss."""
    _parser, compiler = _internals()
    folder = os.path.dirname(compiler.__file__)
    return [os.path.join(folder, name) for name in ("_compiler.py", "_parser.py", "_constants.py")]
