"""Storage faults: a full disk, a read-only database, a database deleted under the daemon.

Each fault gives a clear one-line error and a non-zero exit, never a traceback;
nothing is left half-written (the queue passes SQLite's integrity check, the
feed's files parse and no temporary file is left); and once the fault is gone
the same installation publishes everything exactly once.

A full disk is a file size limit (``RLIMIT_FSIZE``, with ``SIGXFSZ`` ignored,
so writes past it fail with ``EFBIG`` as they would with ``ENOSPC``): it needs
no privileges. A read-only database is a read-only mount where the tests run
as root (root writes through file modes), else file modes.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import sqlite3
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.fakes.mastodon import DEFAULT_TOKEN, SPEC_NAME, MastodonFake
from tests.fakes.server import skip_without_spec
from tests.reliability.conftest import (
    SITE,
    Figures,
    Workspace,
    error_lines,
    has_traceback,
    make_workspace,
)

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"


def file_size_limit(limit: int) -> Callable[[], None]:
    """A ``preexec_fn``: no file may grow past ``limit`` bytes (the disk is full there)."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def integrity(db: Path) -> str:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def one_error_line(stderr: str) -> str:
    assert not has_traceback(stderr), stderr
    lines = error_lines(stderr)
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture
def mastodon() -> Iterator[MastodonFake]:
    skip_without_spec(SPEC_NAME)
    with MastodonFake(latency=0.02, check_responses=False) as fake:
        yield fake


def workspace(root: Path, mastodon: MastodonFake | None = None) -> Workspace:
    accounts: dict[str, dict[str, object]] = {
        "website": {"platform": "feed", "path": str(root / "site")}
    }
    if mastodon is not None:
        accounts["mastodon"] = {
            "platform": "mastodon",
            "base_url": mastodon.url,
            "token_env": "CROSSPOST_TEST_MASTODON_TOKEN",
        }
    return make_workspace(
        root,
        accounts,
        env={"CROSSPOST_TEST_MASTODON_TOKEN": DEFAULT_TOKEN},
        daemon={"max_attempts": 3, "backoff_base": 0.05, "max_inline_wait": 2},
    )


def write_posts(folder: Path, count: int, *, size: int = 0, image: bytes = b"") -> list[str]:
    folder.mkdir(exist_ok=True)
    paths = []
    for n in range(count):
        media = ""
        if image:
            (folder / f"bild{n}.jpg").write_bytes(image)
            media = f'[[media]]\npath = "bild{n}.jpg"\nalt = "Ein großes Bild"\n'
        text = f"Beitrag {n} ({folder.name}) aus dem Städtedreieck. " + "ä" * size
        path = folder / f"post{n}.md"
        # the folder in the link: posts of two folders are two posts (the duplicate guard)
        link = f"{SITE}/speicher/{n}" if folder.name == "posts" else f"{SITE}/{folder.name}/{n}"
        path.write_text(f'+++\nlink = "{link}"\n{media}+++\n{text}\n')
        paths.append(str(path))
    return paths


def copies(mastodon: MastodonFake, link: str) -> int:
    """How many statuses carry ``link`` as their canonical link (the end of the text)."""
    return sum(1 for s in mastodon.statuses if s.text.endswith("\n\n" + link))


def posts_on(ws: Workspace) -> list[dict[str, object]]:
    result: list[dict[str, object]] = ws.json("list", "--limit", "100000")
    return result


# -- a full disk ----------------------------------------------------------------------------------
def test_disk_full_while_enqueueing_writes_nothing_half(tmp_path: Path, figures: Figures) -> None:
    """The disk fills while a big post is stored: exit 1 with one line saying so; the
    queue is intact and holds no part of the post; with space again it goes in."""
    ws = workspace(tmp_path)
    [post] = write_posts(tmp_path / "posts", 1, size=100_000)
    result = ws.run("enqueue", post, check=False, preexec_fn=file_size_limit(64 * 1024))
    assert result.returncode == 1, result.stdout + result.stderr
    line = one_error_line(result.stderr)
    assert "database" in line
    assert "full" in line
    assert integrity(ws.db) == "ok"
    assert posts_on(ws) == []
    assert ws.run("enqueue", post).returncode == 0
    assert len(posts_on(ws)) == 1
    figures.merge("storage_faults", {"disk_full_enqueue": 1})


def test_disk_full_in_a_batch_enqueues_all_or_nothing(tmp_path: Path) -> None:
    """`enqueue` of many files fails as a whole when the disk fills part-way: none of the
    posts is queued, so running it again cannot queue any twice."""
    ws = workspace(tmp_path)
    paths = write_posts(tmp_path / "posts", 40, size=8_000)
    result = ws.run("enqueue", *paths, check=False, preexec_fn=file_size_limit(128 * 1024))
    assert result.returncode == 1
    one_error_line(result.stderr)
    assert integrity(ws.db) == "ok"
    assert posts_on(ws) == []


def test_disk_full_under_the_daemon_then_recovery(
    tmp_path: Path, mastodon: MastodonFake, figures: Figures
) -> None:
    """The disk fills while the daemon publishes: it stops with exit 1 and one clear line
    (no traceback); the queue is intact; restarted with space, it finishes the queue and
    every post is on Mastodon exactly once."""
    ws = workspace(tmp_path, mastodon)
    paths = write_posts(tmp_path / "posts", 30, size=400)
    ws.run("enqueue", *paths)
    log = tmp_path / "daemon.log"
    # the write-ahead log starts empty; 256 KiB of it hold a few dozen transactions
    daemon = ws.start_daemon(log=log, preexec_fn=file_size_limit(256 * 1024))
    code = daemon.wait(timeout=120)
    output = log.read_text()
    assert code == 1, output
    assert not has_traceback(output), output
    [line] = [x for x in output.splitlines() if x.startswith("crosspost: error:")]
    assert "full" in line
    assert integrity(ws.db) == "ok"

    assert ws.run("daemon", "--once", check=False, timeout=120).returncode == 0
    links = [f"{SITE}/speicher/{n}" for n in range(30)]
    for link in links:
        assert copies(mastodon, link) == 1, link
    figures.merge("storage_faults", {"disk_full_daemon": 1})


def test_disk_full_while_writing_the_feed(tmp_path: Path, figures: Figures) -> None:
    """The disk fills while the feed copies a post's image: the delivery fails after its
    retries (`daemon --once` exits 1, `status` names the error); feed.xml and
    entries.json are the old ones, whole, and no temporary file is left; with space
    again, `retry --failed` publishes it once."""
    ws = workspace(tmp_path)
    ws.run("enqueue", *write_posts(tmp_path / "old", 1))
    assert ws.run("daemon", "--once", check=False).returncode == 0
    site = tmp_path / "site"
    before = {p.name: p.read_bytes() for p in site.iterdir() if p.is_file()}

    big = JPEG + b"\x00" * (3 * 1024 * 1024)
    posts = tmp_path / "new"
    ws.run("enqueue", *write_posts(posts, 1, image=big)[:1])
    result = ws.run(
        "daemon", "--once", check=False, timeout=120, preexec_fn=file_size_limit(1024 * 1024)
    )
    assert result.returncode == 1, result.stderr
    assert not has_traceback(result.stdout + result.stderr)
    [problem] = ws.json("status")["problems"]
    assert problem["state"] == "failed"
    assert problem["error"]
    after = {p.name: p.read_bytes() for p in site.iterdir() if p.is_file()}
    assert after == before  # nothing half-written: every file is the old one
    leftovers = [p for p in site.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    ET.fromstring((site / "feed.xml").read_bytes())
    json.loads((site / "entries.json").read_bytes())

    assert ws.run("retry", "--failed").returncode == 0
    assert ws.run("daemon", "--once", check=False).returncode == 0
    entries = json.loads((site / "entries.json").read_bytes())["entries"]
    assert sorted(entries) == ["1", "2"]  # the old post and the new one, each once
    assert (site / "media" / "2-1.jpg").read_bytes() == big
    figures.merge("storage_faults", {"disk_full_feed": 1})


# -- a read-only database -------------------------------------------------------------------------
@contextlib.contextmanager
def read_only_switch(folder: Path) -> Iterator[Callable[[bool], None]]:
    """A callable that makes ``folder`` (and the database in it) read-only, or writable again.

    As root, whom file modes do not stop, the folder is bind-mounted on itself and
    that mount is remounted read-only; else the modes of the folder and its files
    change. (A file system cannot turn read-only under open writers, so the fault
    is there before the daemon starts.)
    """
    if os.geteuid() != 0:

        def set_modes(read_only: bool) -> None:
            for path in [*folder.iterdir(), folder]:
                writable = 0o770 if path.is_dir() else 0o660
                readable = 0o550 if path.is_dir() else 0o440
                path.chmod(readable if read_only else writable)

        try:
            yield set_modes
        finally:
            set_modes(False)
        return
    bound = subprocess.run(
        ["mount", "--bind", str(folder), str(folder)], capture_output=True, check=False
    )
    if bound.returncode != 0:
        pytest.skip(f"root, but cannot bind-mount: {bound.stderr.decode().strip()}")

    def remount(read_only: bool) -> None:
        flag = "ro" if read_only else "rw"
        subprocess.run(["mount", "-o", f"remount,bind,{flag}", str(folder)], check=True)

    try:
        yield remount
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_read_only_database_is_a_clear_error_and_recovers(
    tmp_path: Path, mastodon: MastodonFake, figures: Figures
) -> None:
    """With the database read-only, the daemon (also `--once`) and `enqueue` exit 1 with one
    line naming the database, no traceback; writable again, the queue is whole and
    every post is published exactly once."""
    queue = tmp_path / "queue"
    queue.mkdir()
    ws = workspace(tmp_path, mastodon)
    config = tmp_path / "crosspost.toml"
    config.write_text(config.read_text().replace("/crosspost.db", "/queue/crosspost.db"))
    ws.run("db", "upgrade")
    paths = write_posts(tmp_path / "posts", 6)
    ws.run("enqueue", *paths[:3])
    with read_only_switch(queue) as make_read_only:
        make_read_only(True)
        for args in (["daemon"], ["daemon", "--once"], ["enqueue", *paths[3:]]):
            result = ws.run(*args, check=False, timeout=60)
            assert result.returncode == 1, (args, result.stdout, result.stderr)
            assert "database" in one_error_line(result.stderr)
        make_read_only(False)
    assert integrity(queue / "crosspost.db") == "ok"
    assert mastodon.statuses == []
    ws.run("enqueue", *paths[3:])
    assert ws.run("daemon", "--once", check=False, timeout=120).returncode == 0
    for n in range(6):
        assert copies(mastodon, f"{SITE}/speicher/{n}") == 1, n
    figures.merge("storage_faults", {"read_only_database": 1})


# -- a database deleted under the daemon ----------------------------------------------------------
def test_a_database_deleted_under_the_daemon_stops_it(
    tmp_path: Path, mastodon: MastodonFake, figures: Figures
) -> None:
    """Someone deletes the database file while the daemon runs: the daemon notices, exits 1
    with one line naming the file (instead of writing on into a file nobody else sees);
    the CLI says how to create it; after `db upgrade` the daemon runs again."""
    ws = workspace(tmp_path, mastodon)
    ws.run("enqueue", *write_posts(tmp_path / "posts", 3))
    log = tmp_path / "daemon.log"
    daemon = ws.start_daemon(log=log)
    ws.wait_ready(daemon)
    ws.wait_until(lambda: len(mastodon.statuses) == 3, what="the posts")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{ws.db}{suffix}").unlink(missing_ok=True)

    code = daemon.wait(timeout=60)
    output = log.read_text()
    assert code == 1, output
    assert not has_traceback(output), output
    [line] = [x for x in output.splitlines() if x.startswith("crosspost: error:")]
    assert str(ws.db) in line
    status = ws.run("status", check=False)
    assert status.returncode == 2
    assert "crosspost db upgrade" in one_error_line(status.stderr)

    ws.run("db", "upgrade")
    again = ws.start_daemon(log=log)
    ws.wait_ready(again)
    again.send_signal(signal.SIGTERM)
    assert again.wait(timeout=60) == 0
    figures.merge("storage_faults", {"database_deleted": 1})
