"""Acceptance fixtures: the installed ``crosspost`` command in subprocesses,
against a Mastodon fake on 127.0.0.1 and a feed folder.

Every test using ``workspace`` runs twice: on a real SQLite file and on a
PostgreSQL database of its own (``tests/pgfixture.py``; skipped, saying why,
where no PostgreSQL is to be had)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import MetaData, select
from tests.commandline import CROSSPOST, CommandLine
from tests.fakes.mastodon import DEFAULT_TOKEN, MastodonFake

from crosspost.store.migrate import alembic_config
from crosspost.store.sql import SqlStore, sqlite_path

SITE = "https://www.zv-staedtedreieck.de"


@dataclass
class Workspace(CommandLine):
    """A folder with a config, a database and the environment to run crosspost in."""

    root: Path
    env: dict[str, str]
    database_url: str
    processes: list[subprocess.Popen[str]] = field(default_factory=list)
    logs: dict[int, Path] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.root / "crosspost.toml"

    @property
    def backend(self) -> str:
        return "sqlite" if self.database_url.startswith("sqlite") else "postgresql"

    def store(self) -> SqlStore:
        """The queue, read directly (the caller closes it)."""
        return SqlStore(self.database_url)

    def fingerprint(self) -> str:
        """A digest of everything stored: the file's bytes on SQLite, every row on PostgreSQL."""
        if self.backend == "sqlite":
            path = sqlite_path(self.database_url)
            assert path is not None
            return hashlib.sha256(path.read_bytes()).hexdigest()
        digest = hashlib.sha256()
        store = self.store()
        try:
            with store.engine.connect() as conn:
                tables = MetaData()
                tables.reflect(conn)  # crosspost's tables and alembic_version
                for table in tables.sorted_tables:
                    rows = conn.execute(select(table).order_by(*table.primary_key)).all()
                    digest.update(f"{table.name}:{rows!r}".encode())
        finally:
            store.close()
        return digest.hexdigest()

    def start_daemon(self, *extra: str) -> subprocess.Popen[str]:
        """``crosspost daemon`` in the background, logging to a file (:meth:`output`)."""
        log = self.root / f"daemon-{len(self.processes) + 1}.log"
        with log.open("w") as sink:  # a file, not a pipe: a busy daemon would fill a pipe
            process = subprocess.Popen(
                [CROSSPOST, *extra, "daemon"],
                cwd=self.root,
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                text=True,
            )
        self.logs[process.pid] = log
        self.processes.append(process)
        return process

    def output(self, process: subprocess.Popen[str]) -> str:
        """What a daemon started here has logged so far."""
        return self.logs[process.pid].read_text(errors="replace")

    def early_exit(self, process: subprocess.Popen[str]) -> str:
        return f"daemon exited early: {self.output(process)}"


def toml_value(value: object) -> str:
    """A TOML value: a bool, an int or float as such, anything else a basic string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)


def write_crosspost_toml(
    root: Path, database_url: str, daemon: Mapping[str, object], accounts: str
) -> None:
    """``root/crosspost.toml``: the association's site, ``database_url``, the given
    ``[daemon]`` settings and the ``accounts`` tables (TOML text)."""
    settings = "\n".join(f"{key} = {toml_value(value)}" for key, value in daemon.items())
    (root / "crosspost.toml").write_text(
        f"""
[site]
url = "{SITE}"
name = "Zweckverband Städtedreieck"
timezone = "Europe/Berlin"

[database]
url = "{database_url}"

[daemon]
{settings}
{accounts}""",
        encoding="utf-8",
    )


def write_config(root: Path, mastodon_url: str, database_url: str) -> None:
    # listen_fallback_interval: on PostgreSQL only NOTIFY can wake the daemon in time
    write_crosspost_toml(
        root,
        database_url,
        {"lease_seconds": 5, "poll_interval": 0.1, "listen_fallback_interval": 60,
         "backoff_base": 0.2},
        f"""
[accounts.mastodon]
platform = "mastodon"
base_url = "{mastodon_url}"
token_env = "CROSSPOST_TEST_MASTODON_TOKEN"

[accounts.website]
platform = "feed"
path = "{root}/site"
""",
    )  # fmt: skip


@pytest.fixture
def mastodon(start_fake: Any) -> MastodonFake:
    from tests.fakes.mastodon import SPEC_NAME
    from tests.fakes.server import skip_without_spec

    skip_without_spec(SPEC_NAME)
    fake: MastodonFake = start_fake(MastodonFake())
    return fake


def clean_env(root: Path) -> dict[str, str]:
    """The test's environment without crosspost's, systemd's and locale variables."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CROSSPOST_", "NOTIFY_SOCKET", "WATCHDOG_", "LANG", "LC_", "LANGUAGE"))
    }
    env.update(
        CROSSPOST_CONFIG=str(root / "crosspost.toml"),
        CROSSPOST_TEST_MASTODON_TOKEN=DEFAULT_TOKEN,
        LANG="C.UTF-8",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database (no schema yet) of each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/crosspost.db"
    url: str = request.getfixturevalue("pg_empty_url")
    return url


@pytest.fixture
def workspace(tmp_path: Path, mastodon: MastodonFake, database_url: str) -> Iterator[Workspace]:
    write_config(tmp_path, mastodon.url, database_url)
    ws = Workspace(tmp_path, clean_env(tmp_path), database_url)
    ws.run("db", "upgrade")
    yield ws
    ws.stop_all()


def downgrade(database_url: str, revision: str) -> None:
    """Take the schema back to ``revision`` (an outdated database for the refusal tests)."""
    store = SqlStore(database_url)
    try:
        config = alembic_config()
        with store.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, revision)
    finally:
        store.close()
