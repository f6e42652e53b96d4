"""A throw-away PostgreSQL cluster for the benchmarks (as tests/pgfixture.py starts one).

Unlike the tests' cluster it keeps PostgreSQL's durable defaults (``fsync``,
``synchronous_commit``, ``full_page_writes`` on) and lives on disk, not on
``/dev/shm``: the figures should be those of a server someone would run.
``CROSSPOST_BENCH_PG_URL`` (or ``--pg-url``) names a server of your own instead;
its user must be allowed to ``CREATE DATABASE``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

PG_BIN_GLOB = "usr/lib/postgresql/*/bin"
#: the only settings changed from PostgreSQL's defaults (recorded in the report)
SETTINGS = {"listen_addresses": "127.0.0.1", "max_connections": "200", "shared_buffers": "256MB"}
#: added for the smoke run only, where speed matters and the figures do not
FAST = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def find_pg_bin() -> Path | None:
    found = [p for p in Path("/").glob(PG_BIN_GLOB) if (p / "initdb").is_file()]

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in path.parent.name.split(".") if part.isdigit())

    return max(found, key=version) if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    """A server the harness may create databases on."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.created: list[str] = []

    def _conninfo(self) -> str:
        return make_url(self.url).set(drivername="postgresql").render_as_string(False)

    def admin(self, sql: str) -> None:
        with psycopg.connect(self._conninfo(), autocommit=True) as conn:
            conn.execute(sql.encode())  # names are the harness's own, never input

    def version(self) -> str:
        with psycopg.connect(self._conninfo()) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"

    def create_database(self, name: str) -> str:
        """A fresh database (dropped first if a killed run left it); its SQLAlchemy URL."""
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return (
            make_url(self.url)
            .set(drivername="postgresql+psycopg", database=name)
            .render_as_string(hide_password=False)
        )

    def drop_all(self) -> None:
        for name in self.created:
            self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


def settings(durable: bool) -> dict[str, str]:
    return dict(SETTINGS) if durable else {**SETTINGS, **FAST}


@contextmanager
def cluster(*, durable: bool = True) -> Iterator[Server]:
    """``initdb`` + ``pg_ctl start`` in a temporary folder, removed afterwards: on disk
    with PostgreSQL's durable defaults, or (``durable=False``) in memory without fsync."""
    bindir = find_pg_bin()
    if bindir is None:
        raise RuntimeError(
            "PostgreSQL is not installed (apt-get install postgresql) and "
            "CROSSPOST_BENCH_PG_URL is not set"
        )
    shm = Path("/dev/shm")  # noqa: S108 - mkdtemp makes a private folder in it
    memory = not durable and shm.is_dir() and os.access(shm, os.W_OK)
    root = Path(tempfile.mkdtemp(prefix="crosspost-bench-pg-", dir=shm if memory else None))
    user = None
    if os.geteuid() == 0:
        user = "postgres"  # initdb refuses to run as root
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    data, log = root / "data", root / "server.log"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(bindir / args[0]), *args[1:]],
            cwd=root,
            user=user,
            group=user,
            extra_groups=[] if user else None,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    try:
        done = run("initdb", "-D", str(data), "-A", "trust", "-U", "crosspost", "-E", "UTF8",
                   "--locale=C", *([] if durable else ["--no-sync"]))  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{done.stdout}\n{done.stderr}")
        for _ in range(5):  # another process may take the free port first
            port = _free_port()
            options = " ".join(
                [f"-p {port}", f"-k {root}"] + [f"-c {k}={v}" for k, v in settings(durable).items()]
            )
            done = run("pg_ctl", "-D", str(data), "-l", str(log), "-w", "-t", "120",
                       "-o", options, "start")  # fmt: skip
            if done.returncode == 0:
                break
        else:
            raise RuntimeError(f"pg_ctl start failed:\n{done.stdout}\n{done.stderr}")
        server = Server(f"postgresql+psycopg://crosspost@127.0.0.1:{port}/postgres")
        yield server
    finally:
        if data.exists():
            run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def server(url: str | None, *, durable: bool = True) -> Iterator[Server]:
    """The server at ``url`` (its databases dropped afterwards), else a throw-away cluster."""
    if url:
        given = Server(url)
        try:
            yield given
        finally:
            given.drop_all()
        return
    with cluster(durable=durable) as started:
        yield started


__all__ = ["FAST", "SETTINGS", "Server", "cluster", "find_pg_bin", "server", "settings"]
