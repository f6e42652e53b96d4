"""``crosspost db backup FILE`` and ``crosspost db restore FILE``.

SQLite
    Backup uses SQLite's online backup API: a consistent copy of one instant,
    taken while the daemon and the editors go on writing (it never blocks them
    for more than a moment). The copy is checked (``PRAGMA quick_check``),
    switched out of WAL mode so it is one self-contained file, written under a
    temporary name and renamed: a half-written backup never carries the final
    name. Restore copies the file back *into* the live database through the
    same API, so the database file keeps its inode, owner, group and mode;
    before that the current content is saved beside it
    (``<db>.before-restore-<time>``).

PostgreSQL
    Backup runs ``pg_dump --format=custom``; restore runs ``pg_restore --clean
    --if-exists --no-owner --single-transaction`` (all or nothing). The
    password goes to them in ``PGPASSWORD``, never on the command line. They
    are looked up in ``$PATH``, then in ``/usr/lib/postgresql/*/bin`` (newest
    first); ``pg_dump`` must be at least as new as the server.

Restore refuses a file of a newer schema than this crosspost knows, a file
that is not a crosspost database, and -- while any daemon holds a lease or
has sent a heartbeat recently -- to run at all: stop the daemons first. A
file of an older schema is restored and then migrated (``db upgrade``).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from crosspost.exceptions import CrosspostError, InputError, StoreError
from crosspost.i18n import _
from crosspost.store.schema import SCHEMA_REVISION
from crosspost.store.sql import SqlStore, sqlite_path

#: pages copied per step of the online backup; between steps writers may go on
BACKUP_PAGES = 1024
PG_BIN_GLOB = "usr/lib/postgresql/*/bin"


class BackupError(CrosspostError):
    """The backup or restore failed."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    size: int
    revision: str | None
    backend: str


@dataclass(frozen=True, slots=True)
class RestoreResult:
    path: Path
    revision: str
    backend: str
    #: the previous content of a SQLite database, saved before the restore
    saved: Path | None
    migrated: bool


# -- backup ------------------------------------------------------------------------------
def backup(store: SqlStore, target: Path, *, force: bool = False) -> BackupResult:
    if target.exists() and not force:
        raise InputError(
            _("{path}: the file exists; choose another name or add --force").format(path=target)
        )
    if target.is_dir():
        raise InputError(_("{path}: is a folder; name a file").format(path=target))
    if not target.parent.is_dir():
        raise InputError(
            _("{path}: the folder {folder} does not exist").format(
                path=target, folder=target.parent
            )
        )
    store.check_schema()
    path = sqlite_path(store.url)
    if store.is_sqlite:
        if path is None:
            raise InputError(_("an in-memory database cannot be backed up"))
        _sqlite_backup(path, target)
        return BackupResult(target, target.stat().st_size, SCHEMA_REVISION, "sqlite")
    _pg_dump(store, target)
    return BackupResult(target, target.stat().st_size, SCHEMA_REVISION, "postgresql")


def _copy(src: sqlite3.Connection, target: Path, journal_mode: str, timeout: float = 5) -> str:
    """SQLite's online backup of ``src`` (closed afterwards) into ``target``, left in
    ``journal_mode``; ``PRAGMA quick_check``'s verdict on the copy ("ok" when sound)."""
    try:
        dst = sqlite3.connect(target, timeout=timeout)
        try:
            src.backup(dst, pages=BACKUP_PAGES)
            dst.execute(f"PRAGMA journal_mode = {journal_mode}")
            return str(dst.execute("PRAGMA quick_check").fetchone()[0])
        finally:
            dst.close()
    finally:
        src.close()


def _sqlite_backup(source: Path, target: Path) -> None:
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)
    try:
        # One self-contained file: no -wal beside it is needed to read it.
        verdict = _copy(sqlite3.connect(source, timeout=30), partial, "DELETE")
        if verdict != "ok":
            raise BackupError(
                _("the copy of {path} failed its check: {verdict}").format(
                    path=source, verdict=verdict
                )
            )
        with partial.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, target)
    except sqlite3.Error as exc:
        raise BackupError(
            _("cannot back up {path}: {reason}").format(path=source, reason=exc)
        ) from None
    except OSError as exc:
        raise BackupError(
            _("cannot write {path}: {reason}").format(path=target, reason=exc.strerror or exc)
        ) from None
    finally:
        partial.unlink(missing_ok=True)


# -- restore -----------------------------------------------------------------------------
def check_no_daemon(store: SqlStore, *, now: datetime, stale_after: timedelta) -> None:
    """Refuse while a daemon holds leases or has sent a heartbeat within ``stale_after``."""
    from sqlalchemy import inspect
    from sqlalchemy.exc import DBAPIError

    from crosspost.store.operations import OperationsStore

    try:
        with store.engine.connect() as conn:
            names = set(inspect(conn).get_table_names())
    except DBAPIError as exc:
        raise StoreError(store._describe(exc)) from exc
    if not {"daemons", "deliveries"} <= names:
        return  # an empty database: no daemon can be working on it
    held = OperationsStore(store).leases_held(now)
    alive = [d for d in store.daemons() if now - d.heartbeat_at <= stale_after]
    if held or alive:
        who = ", ".join(f"{d.host} pid {d.pid}" for d in alive) or "-"
        raise BackupError(
            _(
                "a daemon is running ({daemons}; {n} deliveries leased): stop every daemon "
                "first (systemctl stop crosspost), then restore"
            ).format(daemons=who, n=held)
        )


def sqlite_revision(path: Path) -> str:
    """The schema revision of a crosspost SQLite file; InputError if it is not one."""
    if not path.is_file():
        raise InputError(_("{path}: no such file").format(path=path))
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        raise InputError(
            _("{path}: not a crosspost backup (no SQLite database with a crosspost schema)").format(
                path=path
            )
        ) from None
    if verdict != "ok":
        raise InputError(
            _("{path}: the backup is damaged: {verdict}").format(path=path, verdict=verdict)
        )
    if row is None:
        raise InputError(_("{path}: not a crosspost backup (no schema revision)").format(path=path))
    return str(row[0])


def _check_revision(path: Path, revision: str) -> None:
    if revision > SCHEMA_REVISION:
        raise InputError(
            _(
                "{path}: the backup has schema {found}, newer than this crosspost ({expected}); "
                "install the crosspost version that made it, then restore"
            ).format(path=path, found=revision, expected=SCHEMA_REVISION)
        )


def restore(
    store: SqlStore, source: Path, *, now: datetime, stale_after: timedelta
) -> RestoreResult:
    """Replace the database's content with the backup's (see the module docstring)."""
    if store.is_sqlite:
        revision = sqlite_revision(source)
        _check_revision(source, revision)
        target = sqlite_path(store.url)
        if target is None:
            raise InputError(_("an in-memory database cannot be restored"))
        if target.exists():
            check_no_daemon(store, now=now, stale_after=stale_after)
        saved = None
        if target.exists():
            saved = target.with_name(
                f"{target.name}.before-restore-{now.strftime('%Y%m%dT%H%M%SZ')}"
            )
            try:
                _sqlite_backup(target, saved)
            except BackupError:
                # A damaged database (the reason to restore) may fail the check: keep its bytes.
                shutil.copyfile(target, saved)
                os.chmod(saved, 0o600)
        _sqlite_copy_into(source, target)
    else:
        if not source.is_file():
            raise InputError(_("{path}: no such file").format(path=source))
        revision = _pg_revision(source)
        _check_revision(source, revision)
        check_no_daemon(store, now=now, stale_after=stale_after)
        saved = None
        _pg_restore(store, source)
    migrated = revision != SCHEMA_REVISION
    if migrated:
        from crosspost.store.migrate import upgrade

        store.engine.dispose()  # connections opened before the restore see the old schema
        upgrade(store.engine)
    store.engine.dispose()
    store.check_schema()
    return RestoreResult(
        source, revision, "sqlite" if store.is_sqlite else "postgresql", saved, migrated
    )


def _sqlite_copy_into(source: Path, target: Path) -> None:
    """Copy ``source`` into the database at ``target`` (created 0660 if missing)."""
    if not target.exists():
        from crosspost.store.engine import make_engine

        make_engine(f"sqlite:///{target}", create=True).dispose()
    try:
        # The backup file is in rollback mode; the live database runs in WAL.
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        verdict = _copy(src, target, "WAL", timeout=30)
    except sqlite3.Error as exc:
        raise BackupError(
            _("cannot restore into {path}: {reason}").format(path=target, reason=exc)
        ) from None
    if verdict != "ok":
        raise BackupError(
            _("the restored database {path} failed its check: {verdict}").format(
                path=target, verdict=verdict
            )
        )


# -- PostgreSQL: pg_dump and pg_restore --------------------------------------------------
def pg_tool(name: str) -> Path:
    found = shutil.which(name)
    if found:
        return Path(found)
    candidates = [p / name for p in Path("/").glob(PG_BIN_GLOB) if (p / name).is_file()]

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in path.parent.parent.name.split(".") if x.isdigit())

    if candidates:
        return max(candidates, key=version)
    raise BackupError(
        _(
            "{tool} is not installed; install the PostgreSQL client tools "
            "(apt-get install postgresql-client) in the server's version or newer"
        ).format(tool=name)
    )


def _pg_environment(store: SqlStore) -> tuple[list[str], dict[str, str]]:
    url = store.engine.url
    args = []
    if url.host:
        args += ["--host", str(url.host)]
    if url.port:
        args += ["--port", str(url.port)]
    if url.username:
        args += ["--username", str(url.username)]
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    env.setdefault("PGCONNECT_TIMEOUT", "30")
    for key, value in url.query.items():  # e.g. sslmode=require
        if key == "sslmode" and isinstance(value, str):
            env["PGSSLMODE"] = value
    return args, env


def _run(tool: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    from crosspost.observability import scrub

    program = pg_tool(tool)
    try:
        result = subprocess.run(  # noqa: S603 - fixed program, arguments are not shell-parsed
            [str(program), *args], env=env, capture_output=True, text=True, check=False
        )
    except OSError as exc:
        raise BackupError(
            _("cannot run {tool}: {reason}").format(tool=program, reason=exc.strerror or exc)
        ) from None
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        reason = scrub(lines[0] if lines else f"exit code {result.returncode}")
        raise BackupError(_("{tool} failed: {reason}").format(tool=tool, reason=reason))
    return result


def _pg_dump(store: SqlStore, target: Path) -> None:
    args, env = _pg_environment(store)
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        _run(
            "pg_dump",
            [*args, "--format=custom", "--no-owner", "--no-privileges",
             f"--file={partial}", "--dbname", str(store.engine.url.database)],
            env,
        )  # fmt: skip
        os.chmod(partial, 0o600)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _pg_revision(source: Path) -> str:
    """The alembic revision inside a pg_dump custom-format file."""
    result = _run(
        "pg_restore",
        ["--data-only", "--table=alembic_version", "--file=-", str(source)],
        dict(os.environ),
    )
    lines = result.stdout.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("COPY ") and "alembic_version" in line and i + 1 < len(lines):
            value = lines[i + 1].strip()
            if value and value != "\\.":
                return value
    raise InputError(_("{path}: not a crosspost backup (no schema revision)").format(path=source))


def _pg_restore(store: SqlStore, source: Path) -> None:
    args, env = _pg_environment(store)
    store.engine.dispose()  # our own pooled connections must not hold locks on the tables
    _run(
        "pg_restore",
        [*args, "--clean", "--if-exists", "--no-owner", "--no-privileges",
         "--single-transaction", "--exit-on-error",
         "--dbname", str(store.engine.url.database), str(source)],
        env,
    )  # fmt: skip


__all__ = [
    "BackupError",
    "BackupResult",
    "RestoreResult",
    "StoreError",
    "backup",
    "check_no_daemon",
    "restore",
    "sqlite_revision",
]
