"""A throw-away PostgreSQL for the tests (registered in ``tests/conftest.py``).

Where the server comes from, in this order:

1. ``CROSSPOST_TEST_PG_URL`` -- a server you run, as a URL whose user may
   ``CREATE DATABASE`` (e.g. ``postgresql+psycopg://crosspost@127.0.0.1:5432/postgres``);
2. the PostgreSQL binaries of Debian's ``postgresql`` package
   (``/usr/lib/postgresql/<version>/bin``; ``.ci/run`` installs it): a cluster
   in a temporary folder (on ``/dev/shm`` where possible) on a free port of
   127.0.0.1, without fsync, started once per session
   (as the ``postgres`` user when the tests run as root, since ``initdb``
   refuses root) and removed at the end;
3. otherwise every test that needs PostgreSQL is skipped, saying why -- or, with
   ``CROSSPOST_TEST_REQUIRE_POSTGRESQL=1`` (``.ci/run`` sets it), fails: CI must
   not pass by leaving PostgreSQL out.

The schema is migrated once into a template database; each test gets its own
copy (``CREATE DATABASE … TEMPLATE …``, a few milliseconds), dropped afterwards.

Fixtures: ``pg_server`` (session), ``pg_url`` (a migrated database of its
own), ``pg_empty_url`` (an empty database of its own, for ``db upgrade``).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest
from sqlalchemy.engine import make_url

PG_URL_ENV = "CROSSPOST_TEST_PG_URL"
#: set (to 1) where PostgreSQL must be had: a missing server fails the tests instead
REQUIRE_ENV = "CROSSPOST_TEST_REQUIRE_POSTGRESQL"
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
#: settings of the throw-away cluster: durability is not wanted, speed is
_SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}


def find_pg_bin() -> Path | None:
    """The newest installed PostgreSQL's binaries (the folder holding ``initdb``)."""
    found = [p for p in Path("/").glob(PG_BIN_GLOB.lstrip("/")) if (p / "initdb").is_file()]

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in path.parent.name.split(".") if part.isdigit())

    return max(found, key=version) if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class PgServer:
    """A PostgreSQL server the tests may create and drop databases on."""

    url: str  #: SQLAlchemy URL of a database to connect to for CREATE/DROP DATABASE
    prefix: str = field(default_factory=lambda: f"cp{secrets.token_hex(3)}")
    _numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def url_of(self, database: str, *, user: str | None = None) -> str:
        """The SQLAlchemy URL (``postgresql+psycopg://…``) of ``database`` on this server."""
        url = make_url(self.url).set(drivername="postgresql+psycopg", database=database)
        if user is not None:
            url = url.set(username=user, password=None)
        return url.render_as_string(hide_password=False)

    def admin(self, sql: str) -> None:
        """Run one statement on the maintenance database, outside a transaction."""
        conninfo = make_url(self.url).set(drivername="postgresql")
        with psycopg.connect(
            conninfo.render_as_string(hide_password=False), autocommit=True
        ) as conn:
            conn.execute(sql)  # names are ours, never user input

    def new_name(self, what: str) -> str:
        return f"{self.prefix}_{what}_{next(self._numbers)}"

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create ``name`` (a copy of ``template`` if given); return its URL."""
        suffix = f' TEMPLATE "{template}"' if template else ""
        self.admin(f'CREATE DATABASE "{name}"{suffix}')
        return self.url_of(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, cutting connections left over (a killed daemon's, say)."""
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class _Cluster:
    """``initdb`` + ``pg_ctl start`` in a temporary folder; ``stop`` removes it all."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        # In memory where there is a tmpfs: copying a template then takes
        # milliseconds instead of a quarter of a second on disk.
        shm = Path("/dev/shm")  # noqa: S108 - mkdtemp makes a private folder in it
        base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
        self.root = Path(tempfile.mkdtemp(prefix="crosspost-pg-", dir=base))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "postgres"  # initdb refuses to run as root
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.port = 0

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            cwd=self.root,
            user=self.user,
            group=self.user,
            extra_groups=[] if self.user else None,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def start(self) -> str:
        """Create and start the cluster; return the URL of its ``postgres`` database."""
        done = self._run(
            "initdb", "-D", str(self.data), "-A", "trust", "-U", "crosspost",
            "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{done.stdout}\n{done.stderr}")
        for _ in range(5):  # another process may take the free port before the server does
            self.port = _free_port()
            options = " ".join(
                [f"-p {self.port}", f"-k {self.root}"]
                + [f"-c {key}={value}" for key, value in _SERVER_SETTINGS.items()]
            )
            done = self._run(
                "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                "-o", options, "start",
            )  # fmt: skip
            if done.returncode == 0:
                return f"postgresql+psycopg://crosspost@127.0.0.1:{self.port}/postgres"
        log = self.log.read_text(errors="replace") if self.log.exists() else ""
        raise RuntimeError(f"pg_ctl start failed:\n{done.stdout}\n{done.stderr}\n{log}")

    def stop(self) -> None:
        if self.data.exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def unavailable(reason: str) -> NoReturn:
    """Skip the test needing PostgreSQL -- or fail it where PostgreSQL is required (CI)."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1: CI needs PostgreSQL)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL server for the session: ``CROSSPOST_TEST_PG_URL``, else a throw-away one."""
    url = os.environ.get(PG_URL_ENV)
    if url:
        yield PgServer(url)
        return
    bindir = find_pg_bin()
    if bindir is None:
        unavailable(
            f"PostgreSQL is not installed (no {PG_BIN_GLOB}/initdb) and {PG_URL_ENV} is "
            "not set: apt-get install postgresql (.ci/run does), or point "
            f"{PG_URL_ENV} at a server whose user may CREATE DATABASE"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root, and there is no postgres user to run initdb as")
    cluster = _Cluster(bindir)
    try:
        yield PgServer(cluster.start())
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_template(pg_server: PgServer) -> Iterator[str]:
    """The name of a database holding the migrated schema, to copy for each test."""
    from crosspost.store.migrate import upgrade
    from crosspost.store.sql import SqlStore

    name = pg_server.new_name("template")
    store = SqlStore(pg_server.create_database(name))
    try:
        upgrade(store.engine)
        store.check_schema()
    finally:
        store.close()  # a template must have no connections when it is copied
    yield name
    pg_server.drop_database(name)


@pytest.fixture
def pg_url(pg_server: PgServer, pg_template: str) -> Iterator[str]:
    """The URL of a fresh database with crosspost's schema, for this test alone."""
    name = pg_server.new_name("test")
    url = pg_server.create_database(name, template=pg_template)
    yield url
    with contextlib.suppress(psycopg.Error):
        pg_server.drop_database(name)


@pytest.fixture
def pg_empty_url(pg_server: PgServer) -> Iterator[str]:
    """The URL of a fresh, empty database (no schema), for this test alone."""
    name = pg_server.new_name("empty")
    url = pg_server.create_database(name)
    yield url
    with contextlib.suppress(psycopg.Error):
        pg_server.drop_database(name)
