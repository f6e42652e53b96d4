"""The start-up cache: what the CLI worked out once, kept for the next start.

``crosspost --help`` and ``crosspost enqueue --dry-run FILE`` are what editors
run most, and most of their time went into importing click, pydantic and
SQLAlchemy. :mod:`crosspost.entry` answers them from entries kept here instead:
the exact text click printed for a help request, and a plain-data copy of the
validated configuration (:mod:`crosspost.snapshot`).

Every entry names what it was made from, and is used only while all of that is
unchanged:

* a **key** (crosspost's and Python's versions, the arguments, the language and
  terminal variables, the configuration's path, bytes and environment) that must
  be equal, not merely hash-equal;
* a **manifest**: path, modification time (ns) and size of every file that went
  into the answer -- crosspost's and click's modules, the message catalogues,
  the configuration file's folder -- compared at every use.

Where: ``$XDG_CACHE_HOME/crosspost``, else ``~/.cache/crosspost`` (a folder of
mode 0700 the user owns; files 0600, written to a temporary name and renamed, so
a reader never sees half an entry). Entries hold no secret: help texts, and
settings that by design name secrets instead of holding them. Anything odd --
a folder owned by someone else, a file that does not load, a stale manifest --
is a miss, and a miss only costs the normal start-up. ``CROSSPOST_NO_CACHE=1``
turns the cache off.

Only the standard library's cheapest module is imported here (``marshal``): this
runs before everything else on every start.
"""

from __future__ import annotations

import marshal
import os
import sys

TYPE_CHECKING = False  # typing itself costs a few ms; mypy reads the name
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

#: bump when the layout of entries changes
FORMAT = 3
#: entries kept per kind before the least recently written are removed
MAX_ENTRIES = 64
#: the switch that turns the cache off (documented in docs/admin.md)
DISABLE_VARIABLE = "CROSSPOST_NO_CACHE"

Manifest = tuple[tuple[str, int, int], ...]


def enabled() -> bool:
    return os.environ.get(DISABLE_VARIABLE, "").strip().lower() in ("", "0", "no", "false")


def folder() -> str | None:
    """The cache folder, created 0700 if needed; None when there is no usable one."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        home = os.environ.get("HOME") or os.path.expanduser("~")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".cache")
    path = os.path.join(base, "crosspost")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        try:
            os.makedirs(path, mode=0o700, exist_ok=True)
            st = os.stat(path)
        except OSError:
            return None
    except OSError:
        return None
    # Someone else's folder (sudo with the user's HOME) or one others may write: not ours.
    if st.st_uid != os.geteuid() or st.st_mode & 0o022:
        return None
    return path


def entry_name(kind: str, key: Any) -> str:
    """A file name for ``key`` (equality of the stored key is checked on load)."""
    text = repr(key).encode("utf-8", "backslashreplace")
    # The hash of a tuple of ints is the same in every process (str hashes are salted),
    # and costs less than importing zlib for a checksum.
    digest = hash(tuple(text)) & 0xFFFF_FFFF_FFFF_FFFF
    return f"{kind}-{digest:016x}.bin"


def load(kind: str, key: Any) -> dict[str, Any] | None:
    """The entry stored for ``key``, if its key is equal and its manifest unchanged."""
    where = folder()
    if where is None:
        return None
    path = os.path.join(where, entry_name(kind, key))
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_uid != os.geteuid():
                return None
            # marshal builds data, never runs code; the file is the user's own (checked above)
            entry = marshal.loads(handle.read())  # noqa: S302
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if not isinstance(entry, dict) or entry.get("format") != FORMAT or entry.get("key") != key:
        return None
    if not unchanged(entry.get("manifest", ())):
        return None
    return entry


def store(kind: str, key: Any, manifest: Manifest, **values: Any) -> bool:
    """Write an entry atomically (0600); False if it could not be written (never raises)."""
    where = folder()
    if where is None or any(mtime < 0 for _path, mtime, _size in manifest):
        return False  # a file that cannot be watched (gone, or inside a zip): keep nothing
    entry = {"format": FORMAT, "key": key, "manifest": manifest, **values}
    try:
        data = marshal.dumps(entry, 4)
    except ValueError:
        return False  # something that is not plain data: keep nothing
    path = os.path.join(where, entry_name(kind, key))
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
        except BaseException:
            os.unlink(temporary)
            raise
        os.replace(temporary, path)
    except OSError:
        return False
    _prune(where, kind)
    return True


def _prune(where: str, kind: str) -> None:
    """Keep the newest MAX_ENTRIES entries of ``kind`` (temporary configs come and go)."""
    try:
        names = [n for n in os.listdir(where) if n.startswith(f"{kind}-") and n.endswith(".bin")]
        if len(names) <= MAX_ENTRIES:
            return
        aged = sorted(names, key=lambda n: os.stat(os.path.join(where, n)).st_mtime_ns)
        for name in aged[: len(names) - MAX_ENTRIES]:
            os.unlink(os.path.join(where, name))
    except OSError:
        return


def fingerprint(path: str) -> tuple[str, int, int]:
    """(path, mtime in ns, size); mtime -1 for a path that does not exist."""
    try:
        st = os.stat(path)
    except OSError:
        return (path, -1, -1)
    return (path, st.st_mtime_ns, st.st_size)


def manifest(paths: Iterable[str]) -> Manifest:
    return tuple(fingerprint(p) for p in sorted(set(paths)))


def unchanged(recorded: Manifest) -> bool:
    try:
        return all(fingerprint(path) == (path, mtime, size) for path, mtime, size in recorded)
    except (TypeError, ValueError):
        return False


def module_files(*packages: str) -> list[str]:
    """The source files of every loaded module of ``packages``.

    A module that starts being imported is imported by one that changed; so the
    files suffice (their folders' times change with every editor's temporary file).
    """
    files: set[str] = set()
    for name, module in list(sys.modules.items()):
        if name.split(".", 1)[0] not in packages:
            continue
        path = getattr(module, "__file__", None)
        if isinstance(path, str):
            files.add(path)
    return sorted(files)


def catalogue_files() -> list[str]:
    """crosspost's message catalogues (``locale/<lang>/LC_MESSAGES/*.mo``) and their folders."""
    base = os.path.join(os.path.dirname(__file__), "locale")
    found = [base]
    try:
        for language in os.listdir(base):
            messages = os.path.join(base, language, "LC_MESSAGES")
            if os.path.isdir(messages):
                found.append(messages)
                found += [os.path.join(messages, n) for n in os.listdir(messages)]
    except OSError:
        pass
    return found
