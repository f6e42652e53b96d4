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

The standard library's own import-time patterns that a dry run pays for
(:data:`STDLIB_PATTERNS`: tomllib's grammar of numbers and dates,
``string.Template``'s) are kept the same way by :func:`keep_stdlib` and put into
``re``'s cache by :func:`preload_stdlib` before tomllib is imported, so that its
``re.compile`` calls find them built -- on Python 3.11, whose cache layout this
knows; elsewhere they are compiled as usual.

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
#: which of the kept programs are the standard library's (see preload_stdlib)
_stdlib: list[tuple[str, int]] | None = None
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
    global _programs, _stdlib
    if _programs is None:
        _programs, _stdlib = {}, []
        if startcache.enabled():
            try:
                entry = startcache.load(KIND, _key())
                found = entry.get("programs") if entry else None
                listed = entry.get("stdlib") if entry else None
                if isinstance(found, dict) and isinstance(listed, list):
                    _programs, _stdlib = found, listed
            except Exception:  # noqa: BLE001, S110 - no programs: patterns are compiled
                pass
    return _programs


def _program(pattern: str, flags: int, expected: re.Pattern[str]) -> Any | None:
    """What ``re``'s compiler makes of ``pattern`` for the engine, if it builds ``expected``."""
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
        if _engine().compile(pattern, *program) == expected:
            return program
    except Exception:  # noqa: BLE001, S110 - re's internals differ: keep nothing
        pass
    return None  # not what re makes of it: keep nothing


def _store(programs: dict[tuple[str, int], Any], stdlib: list[tuple[str, int]]) -> None:
    if not startcache.enabled():
        return
    try:
        manifest = startcache.manifest(_compiler_files())
        startcache.store(KIND, _key(), manifest, programs=programs, stdlib=stdlib)
    except Exception:  # noqa: BLE001, S110 - not kept: compiled again next time
        pass


def _compile_and_keep(
    pattern: str, flags: int, programs: dict[tuple[str, int], Any]
) -> re.Pattern[str]:
    import re

    expected = re.compile(pattern, flags)
    program = _program(pattern, flags, expected)
    if program is not None:
        kept = {} if len(programs) >= MAX_PROGRAMS else dict(programs)
        kept[(pattern, flags)] = program
        _store(kept, [k for k in (_stdlib or []) if k in kept])
        programs[(pattern, flags)] = program
    return expected


# -- the standard library's own patterns -----------------------------------------------------
#: the patterns the standard library compiles when a dry run imports it: tomllib's
#: grammar of numbers and dates, and string.Template's (tomllib imports string)
STDLIB_PATTERNS = (
    ("tomllib._re", "RE_NUMBER"),
    ("tomllib._re", "RE_LOCALTIME"),
    ("tomllib._re", "RE_DATETIME"),
    ("string", "Template"),
)


def _re_cache() -> dict[Any, Any] | None:
    """``re``'s own cache of compiled patterns, where its layout is known (Python 3.11:
    ``(type, pattern, flags) -> Pattern``, consulted by every ``re.compile``)."""
    import re

    cache = getattr(re, "_cache", None)
    return cache if sys.version_info[:2] == (3, 11) and isinstance(cache, dict) else None


def preload_stdlib() -> None:
    """Before a dry run imports tomllib: the kept programs of its patterns go into re's
    cache, so that ``re.compile`` finds them built (equal patterns, by construction)."""
    cache = _re_cache() if enabled else None
    if cache is None:
        return
    programs = _loaded()
    for pattern, flags in _stdlib or []:
        program = programs.get((pattern, flags))
        if program is not None and (str, pattern, flags) not in cache:
            try:
                cache[(str, pattern, flags)] = _engine().compile(pattern, *program)
            except Exception:  # noqa: BLE001, S112 - re compiles this one itself
                continue


def keep_stdlib() -> None:
    """After a dry run: keep the programs of :data:`STDLIB_PATTERNS` not kept yet."""
    cache = _re_cache() if enabled else None
    if cache is None:
        return
    programs = _loaded()
    wanted = set()
    for module, name in STDLIB_PATTERNS:
        found = getattr(sys.modules.get(module), name, None)
        if isinstance(found, type):  # string.Template holds its pattern as .pattern
            found = getattr(found, "pattern", None)
        wanted.add(id(found))
    stdlib = list(_stdlib or [])
    kept = dict(programs)
    for key, value in list(cache.items()):
        if id(value) not in wanted or not (isinstance(key, tuple) and len(key) == 3):
            continue
        _type, pattern, flags = key
        if _type is not str or (pattern, flags) in stdlib:
            continue
        program = _program(pattern, flags, value)
        if program is not None:
            kept[(pattern, flags)] = program
            stdlib.append((pattern, flags))
    if len(stdlib) != len(_stdlib or []):
        _store(kept, stdlib)


def _compiler_files() -> list[str]:
    """The files of ``re``'s compiler: a changed one makes every kept program a miss."""
    _parser, compiler = _internals()
    folder = os.path.dirname(compiler.__file__)
    return [os.path.join(folder, name) for name in ("_compiler.py", "_parser.py", "_constants.py")]
