"""What admins rely on: systemd notifications, exit codes, bad input writing nothing."""

from __future__ import annotations

import signal
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update
from tests.acceptance.conftest import SITE, Workspace
from tests.fakes.mastodon import MastodonFake
from tests.fakes.server import status

from crosspost.store.schema import deliveries


def test_daemon_speaks_the_systemd_notify_protocol(workspace: Workspace, tmp_path: Path) -> None:
    """READY=1 once started, WATCHDOG=1 at half of WatchdogSec, STOPPING=1 on
    SIGTERM, then exit code 0."""
    address = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(30)
    workspace.env.update(NOTIFY_SOCKET=address, WATCHDOG_USEC="1000000")
    daemon = workspace.start_daemon()
    try:
        seen: list[str] = []

        def receive_until(wanted: str) -> None:
            while not any(wanted in m for m in seen):
                seen.append(sock.recv(4096).decode())

        receive_until("READY=1")
        receive_until("WATCHDOG=1")
        daemon.send_signal(signal.SIGTERM)
        receive_until("STOPPING=1")
        assert daemon.wait(timeout=30) == 0
    finally:
        sock.close()


def test_daemon_once_exits_1_when_a_delivery_failed(
    workspace: Workspace, mastodon: MastodonFake
) -> None:
    """A post the platform rejects fails; `daemon --once` says so with exit 1,
    and `status` lists the failure with the platform's message."""
    mastodon.inject(
        status(422, {"error": "Validation failed: Text character limit of 500 exceeded"}),
        route="POST /api/v1/statuses",
    )
    workspace.run("enqueue", "--text", "Hallo", "--link", f"{SITE}/a", "--to", "mastodon")
    result = workspace.run("daemon", "--once", check=False)
    assert result.returncode == 1, result.stderr
    problems = workspace.json("status")["problems"]
    assert [p["state"] for p in problems] == ["failed"]
    assert "character limit" in problems[0]["error"]


def test_daemon_once_exits_0_when_everything_was_published(
    workspace: Workspace, mastodon: MastodonFake
) -> None:
    """Everything due is published once; exit code 0; nothing left due."""
    workspace.run("enqueue", "--text", "Hallo Welt", "--link", f"{SITE}/b")
    assert workspace.run("daemon", "--once", check=False).returncode == 0
    assert len(mastodon.statuses_containing(f"{SITE}/b")) == 1
    assert workspace.json("status")["counts"]["published"] == 2  # mastodon + website


def test_bad_input_exits_2_with_one_line_and_writes_nothing(workspace: Workspace) -> None:
    """Each refused input prints one line naming the problem, exits 2, and leaves
    the database unchanged (SQLite: the file byte for byte)."""
    post = workspace.root / "post.md"
    post.write_text('+++\ntitle = "x"\nlink = "https://evil.example/x"\n+++\nText\n')
    long_post = workspace.root / "long.md"
    long_post.write_text('+++\naccounts = ["mastodon"]\n+++\n' + "ä" * 600 + "\n")
    cases = [
        (["enqueue", str(post)], "evil.example"),
        (["enqueue", str(long_post)], "mastodon"),
        (["enqueue", "--text", "x", "--to", "nope"], "nope"),
        (["enqueue", "--text", "x", "--at", "2026-03-29 02:30"], "02:30"),
        (["enqueue", "--text", "x", "--category", "unbekannt"], "unbekannt"),
        (["enqueue", str(workspace.root / "missing.md")], "missing.md"),
        (["show", "999"], "999"),
        (["enqueue"], "--text"),
    ]
    workspace.run("status")  # let SQLite settle its WAL before taking the digest
    before = workspace.fingerprint()
    for args, needle in cases:
        result = workspace.run(*args, check=False)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, (args, result.stderr)
        assert needle in lines[0], (args, lines[0])
        assert "Traceback" not in result.stderr
        assert workspace.fingerprint() == before, args
    # 600 umlauts + a blank line + the link (every URL counts 23 on Mastodon)
    assert "625 of 500" in workspace.run("enqueue", str(long_post), check=False).stderr


def test_retract_deletes_the_post_everywhere(workspace: Workspace, mastodon: MastodonFake) -> None:
    """`crosspost retract ID` removes the status from Mastodon and the entry from the
    website feed, and marks both deliveries retracted."""
    link = f"{SITE}/aktuelles/irrtum"
    post = workspace.json("enqueue", "--text", "Ein Irrtum.", "--link", link)[0]["id"]
    assert workspace.run("daemon", "--once", check=False).returncode == 0
    assert len(mastodon.statuses_containing(link)) == 1
    assert link in (workspace.root / "site" / "feed.xml").read_text()

    result = workspace.run("retract", str(post))
    assert "mastodon" in result.stdout
    assert mastodon.statuses_containing(link) == []
    assert link not in (workspace.root / "site" / "feed.xml").read_text()
    states = {d["account"]: d["state"] for d in workspace.json("show", str(post))["deliveries"]}
    assert states == {"mastodon": "retracted", "website": "retracted"}


def test_metrics_collect_stores_engagement_and_followers(
    workspace: Workspace, mastodon: MastodonFake
) -> None:
    """`crosspost metrics collect` samples a post's figures once it is a day old (the
    first fixed age), not before, and reports per account."""
    workspace.run("enqueue", "--text", "Gemessen.", "--link", f"{SITE}/m", "--to", "mastodon")
    assert workspace.run("daemon", "--once", check=False).returncode == 0

    def status_reads() -> int:
        return len([r for r in mastodon.requests if r.method == "GET" and "/statuses/" in r.path])

    [fresh] = [r for r in workspace.json("metrics", "collect") if r["account"] == "mastodon"]
    assert fresh["ok"] is True
    assert fresh["message"].startswith("0 "), fresh
    assert status_reads() == 0

    store = workspace.store()  # the post went out 25 hours ago
    try:
        with store.engine.begin() as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.account == "mastodon")
                .values(published_at=datetime.now(UTC) - timedelta(hours=25))
            )
    finally:
        store.close()
    [aged] = [r for r in workspace.json("metrics", "collect") if r["account"] == "mastodon"]
    assert aged["ok"] is True
    assert aged["message"].startswith("1 "), aged
    assert status_reads() == 1


def test_dry_run_uses_the_limit_learnt_from_the_instance(
    workspace: Workspace, mastodon: MastodonFake
) -> None:
    """`enqueue --dry-run` checks against the instance's own limit once the daemon
    has learnt it (here 1000 instead of the default 500), and stores nothing."""
    text = "ä" * 600
    refused = workspace.run(
        "enqueue", "--dry-run", "--text", text, "--link", f"{SITE}/d", "--to", "mastodon",
        check=False,
    )  # fmt: skip
    assert refused.returncode == 2
    mastodon.max_characters = 1000
    assert workspace.run("daemon", "--once", check=False).returncode == 0  # learns the limit
    accepted = workspace.run(
        "enqueue", "--dry-run", "--text", text, "--link", f"{SITE}/d", "--to", "mastodon"
    )
    assert "mastodon" in accepted.stdout
    assert workspace.json("list") == []
