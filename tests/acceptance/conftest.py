"""Acceptance fixtures: the installed ``crosspost`` command in subprocesses,
against a Mastodon fake on 127.0.0.1 and a feed folder, on a real SQLite file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.fakes.mastodon import DEFAULT_TOKEN, MastodonFake

CROSSPOST = str(Path(sys.executable).with_name("crosspost"))
SITE = "https://www.zv-staedtedreieck.de"


@dataclass
class Workspace:
    """A folder with a config, a database and the environment to run crosspost in."""

    root: Path
    env: dict[str, str]
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def config(self) -> Path:
        return self.root / "crosspost.toml"

    def run(
        self, *args: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [CROSSPOST, *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"crosspost {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)

    def start_daemon(self, *extra: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [CROSSPOST, *extra, "daemon"],
            cwd=self.root,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.processes.append(process)
        return process

    def wait_until(self, predicate: Any, timeout: float = 30.0, what: str = "condition") -> None:
        """Poll ``predicate`` (bounded), failing the test with ``what`` on timeout."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(0.05)

    def wait_ready(self, process: subprocess.Popen[str], timeout: float = 30.0) -> None:
        """A daemon is ready once it has written its heartbeat with its pid."""

        def ready() -> bool:
            assert process.poll() is None, (
                f"daemon exited early: {process.stdout and process.stdout.read()}"
            )
            daemons = self.json("status")["daemons"]
            return any(d["pid"] == process.pid for d in daemons)

        self.wait_until(ready, timeout, "the daemon to start")

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=10)


def write_config(root: Path, mastodon_url: str) -> None:
    (root / "crosspost.toml").write_text(
        f"""
[site]
url = "{SITE}"
name = "Zweckverband Städtedreieck"
timezone = "Europe/Berlin"

[database]
url = "sqlite:///{root}/crosspost.db"

[daemon]
lease_seconds = 5
poll_interval = 0.1
backoff_base = 0.2

[accounts.mastodon]
platform = "mastodon"
base_url = "{mastodon_url}"
token_env = "CROSSPOST_TEST_MASTODON_TOKEN"

[accounts.website]
platform = "feed"
path = "{root}/site"
""",
        encoding="utf-8",
    )


@pytest.fixture
def mastodon(start_fake: Any) -> MastodonFake:
    from tests.fakes.mastodon import SPEC_NAME
    from tests.fakes.server import skip_without_spec

    skip_without_spec(SPEC_NAME)
    fake: MastodonFake = start_fake(MastodonFake())
    return fake


@pytest.fixture
def workspace(tmp_path: Path, mastodon: MastodonFake) -> Iterator[Workspace]:
    write_config(tmp_path, mastodon.url)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CROSSPOST_", "NOTIFY_SOCKET", "WATCHDOG_", "LANG", "LC_", "LANGUAGE"))
    }
    env.update(
        CROSSPOST_CONFIG=str(tmp_path / "crosspost.toml"),
        CROSSPOST_TEST_MASTODON_TOKEN=DEFAULT_TOKEN,
        LANG="C.UTF-8",
        PYTHONUNBUFFERED="1",
    )
    ws = Workspace(tmp_path, env)
    ws.run("db", "upgrade")
    yield ws
    ws.stop_all()
