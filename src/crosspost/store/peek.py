"""Cheap read-only looks into a SQLite queue with the standard library alone.

``enqueue --dry-run`` and ``preview`` of a file only need the text limits the
daemon learnt from the platforms; importing SQLAlchemy for that would cost an
editor a quarter of a second on every check.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing and pathlib only where needed: a dry run starts without them
if TYPE_CHECKING:
    from pathlib import Path


def learned_limits(path: Path | str) -> dict[str, int]:
    """``account_state.text_limit`` per account; {} if there is no usable database yet."""
    if not os.path.isfile(path):
        return {}
    import sqlite3  # here: a dry run reads no limit unless an account's limit may be learnt

    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            rows = conn.execute(
                "SELECT account, text_limit FROM account_state WHERE text_limit IS NOT NULL"
            ).fetchall()
    except sqlite3.Error:
        return {}
    return {str(account): int(limit) for account, limit in rows}


def sqlite_file(url: str) -> Path | None:
    """The file behind a ``sqlite:///`` URL (None for other databases or in-memory)."""
    path = sqlite_path(url)
    if path is None:
        return None
    from pathlib import Path

    return Path(path).expanduser()


def sqlite_path(url: str) -> str | None:
    """:func:`sqlite_file` as written in the URL (``~`` not expanded), without pathlib."""
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[-1].split("?", 1)[0]
    return None if not path or path == ":memory:" else path
