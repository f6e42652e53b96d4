"""Issue 5, scale-out: several daemons share one PostgreSQL and never publish twice.

The installed ``crosspost`` command runs in subprocesses; the platforms are
Mastodon fakes, each in a process of its own (``python -m tests.fakes.mastodon``)
so their work does not compete with the test for one interpreter, answering
after ``LATENCY_S`` like a server across a network.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from tests.acceptance.conftest import SITE, Workspace, clean_env, downgrade, write_crosspost_toml
from tests.fakes.mastodon import SPEC_NAME, MastodonFake
from tests.fakes.server import RemoteFake, skip_without_spec

from crosspost.models import DeliveryState, Outcome
from crosspost.store.engine import PG_POOL_SIZE

ACCOUNTS = 10
POSTS = 300  # x 10 accounts = 3 000 deliveries
LEASE_S = 3
#: long enough for the run to last ~15 s, so the kill lands mid-run (at 50 ms the three
#: daemons published all 3 000 before a poll of the queue saw the first 1 000)
LATENCY_S = 0.5


def _parse(when: str) -> datetime:
    return datetime.fromisoformat(when.replace("Z", "+00:00"))


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[list[RemoteFake]]:
    """Ten Mastodon instances in processes of their own, answering after ``LATENCY_S``.

    Requests are not checked against the OpenAPI contract here (``--no-validate``:
    3 ms each would make the fakes the bottleneck); every other test checks them.
    """
    skip_without_spec(SPEC_NAME)
    fake_command = [
        sys.executable, "-m", "tests.fakes.mastodon", "--no-validate",
        "--latency", str(LATENCY_S), "--rate-limit", "100000",
    ]  # fmt: skip
    processes = []
    for i in range(ACCOUNTS):
        with (tmp_path / f"fake-{i}.log").open("w") as errors:
            processes.append(
                subprocess.Popen(fake_command, stdout=subprocess.PIPE, stderr=errors, text=True)
            )
    try:
        fakes = []
        for process in processes:
            assert process.stdout is not None
            line = process.stdout.readline()  # the fake's first line: {"url": …}
            assert line, f"a Mastodon fake did not start (exit code {process.poll()})"
            fakes.append(RemoteFake(json.loads(line)["url"]))
        yield fakes
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def _scale_config(root: Path, database_url: str, fakes: list[RemoteFake]) -> None:
    accounts = "".join(
        f"""
[accounts.m{i}]
platform = "mastodon"
base_url = "{fake.url}"
token_env = "CROSSPOST_TEST_MASTODON_TOKEN"
"""
        for i, fake in enumerate(fakes)
    )
    write_crosspost_toml(
        root,
        database_url,
        {"lease_seconds": LEASE_S, "poll_interval": 0.2, "backoff_base": 0.2},
        accounts,
    )


def _write_posts(folder: Path) -> list[str]:
    folder.mkdir()
    paths = []
    for i in range(POSTS):
        path = folder / f"beitrag-{i:03d}.md"
        path.write_text(
            f'+++\ntitle = "Beitrag {i}"\nlink = "{SITE}/aktuelles/skalierung-{i}"\n+++\n'
            f"Beitrag {i}: Neuigkeiten aus dem Städtedreieck.\n",
            encoding="utf-8",
        )
        paths.append(str(path))
    return paths


def _published(ws: Workspace) -> int:
    store = ws.store()
    try:
        return store.counts().get(DeliveryState.PUBLISHED, 0)
    finally:
        store.close()


def _busiest_worker(ws: Workspace) -> str:
    """The daemon holding the most deliveries in ``publishing`` right now."""
    store = ws.store()
    try:
        with store.engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT worker FROM deliveries WHERE state = 'publishing' "
                    "GROUP BY worker ORDER BY count(*) DESC LIMIT 1"
                )
            ).first()
        counts = store.counts()
    finally:
        store.close()
    assert row is not None, f"no daemon holds a delivery a third of the way through: {counts}"
    return str(row[0])


def _assert_each_instance_holds_every_post_once(fleet: list[RemoteFake]) -> None:
    """On the platforms: every instance holds exactly its 300 statuses, none twice."""
    expected = {f"Beitrag {n}: Neuigkeiten aus dem Städtedreieck." for n in range(POSTS)}
    for i, fake in enumerate(fleet):
        texts = [s["text"] for s in fake.state()["statuses"]]
        twice = [t for t, n in Counter(texts).items() if n > 1]
        assert twice == [], f"m{i}: published twice: {twice[:3]}"
        assert len(texts) == POSTS, f"m{i}: {len(texts)} statuses, not {POSTS}"
        assert {t.split("\n\n")[0] for t in texts} == expected, f"m{i}: statuses lost"


def test_three_daemons_publish_3000_deliveries_over_ten_accounts_exactly_once(
    tmp_path: Path, pg_empty_url: str, fleet: list[RemoteFake]
) -> None:
    """Three daemons, from start to end, share 3 000 deliveries over ten accounts whose
    instances answer after ``LATENCY_S``: exactly 3 000 posts arrive, none twice, each
    delivery with one published attempt, and each daemon did part of the work."""
    _scale_config(tmp_path, pg_empty_url, fleet)
    ws = Workspace(tmp_path, clean_env(tmp_path), pg_empty_url)
    ws.run("db", "upgrade")
    assert len(ws.json("enqueue", *_write_posts(tmp_path / "posts"))) == POSTS
    daemons = [ws.start_daemon() for _ in range(3)]
    try:
        for daemon in daemons:
            ws.wait_ready(daemon)
        workers = {d["pid"]: d["worker"] for d in ws.json("status")["daemons"]}
        assert sorted(workers) == sorted(d.pid for d in daemons)
        # `status` lists each live daemon: host, pid, version, last heartbeat, deliveries in
        # hand -- in --json and in the text, while they work
        ws.wait_until(
            lambda: any(d["in_hand"] > 0 for d in ws.json("status")["daemons"]),
            timeout=60,
            what="a heartbeat with deliveries in hand",
        )
        listed, human = ws.json("status")["daemons"], ws.run("status").stdout
        assert len(listed) == 3
        for row in listed:
            assert all(row[key] for key in ("host", "version", "heartbeat_at")), row
            line = (
                rf"daemon {re.escape(row['host'])} pid {row['pid']} "
                rf"\(version {re.escape(row['version'])}\), last heartbeat \S.*, \d+ in hand"
            )
            assert re.search(line, human), human

        # docs/scaling.md: a daemon holds at most 5 pooled connections + 1 for LISTEN
        peak: Counter[str] = Counter()
        probe_url = make_url(pg_empty_url).set(drivername="postgresql")
        with psycopg.connect(
            probe_url.render_as_string(hide_password=False),
            autocommit=True,
            application_name="probe",
        ) as probe:

            def all_published() -> bool:
                rows = probe.execute(
                    "SELECT application_name, count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() GROUP BY application_name"
                ).fetchall()
                for name, count in rows:
                    peak[name] = max(peak[name], count)
                return _published(ws) == POSTS * ACCOUNTS

            ws.wait_until(all_published, timeout=240, what="3 000 publications")
        for daemon in daemons:
            daemon.send_signal(signal.SIGTERM)
        assert [daemon.wait(timeout=60) for daemon in daemons] == [0, 0, 0]
    finally:
        ws.stop_all()

    _assert_each_instance_holds_every_post_once(fleet)
    store = ws.store()
    try:
        assert store.counts() == {DeliveryState.PUBLISHED: POSTS * ACCOUNTS}
        attempts = store.attempts(limit=100_000)
    finally:
        store.close()
    # one published attempt per delivery (a lease lost to a starved CPU may add a retry,
    # never a second publication)
    published = Counter(a.delivery_id for a in attempts if a.outcome is Outcome.PUBLISHED)
    assert len(published) == POSTS * ACCOUNTS
    assert set(published.values()) == {1}
    shares = Counter(a.worker for a in attempts)
    assert set(shares) == set(workers.values()), shares
    assert peak["crosspost listen"] == 3, peak
    # + 1: the test's own count of published deliveries, a connection just closed
    assert 3 <= peak["crosspost"] <= 3 * PG_POOL_SIZE + 1, peak
    print(f"\nscale-out: 3 daemons, connections at their peak: {dict(peak)}, shares {shares}")


def test_three_daemons_publish_3000_deliveries_once_and_take_over_a_killed_ones_leases(
    tmp_path: Path, pg_empty_url: str, fleet: list[RemoteFake]
) -> None:
    """Three daemons share 3 000 deliveries over ten accounts; ``status`` lists all three
    (host, pid, version, heartbeat, deliveries in hand). One is SIGKILLed mid-run: the
    deliveries it had leased are finished by the others after its lease expired. In
    the end every instance holds exactly its 300 statuses: none twice, none lost."""
    _scale_config(tmp_path, pg_empty_url, fleet)
    ws = Workspace(tmp_path, clean_env(tmp_path), pg_empty_url)
    ws.run("db", "upgrade")
    enqueued = ws.json("enqueue", *_write_posts(tmp_path / "posts"))
    assert len(enqueued) == POSTS

    started = time.monotonic()
    daemons = [ws.start_daemon() for _ in range(3)]
    try:
        for daemon in daemons:
            ws.wait_ready(daemon)
        listed = ws.json("status")["daemons"]
        assert sorted(d["pid"] for d in listed) == sorted(d.pid for d in daemons)
        assert all(d["host"] and d["version"] and d["heartbeat_at"] for d in listed)
        assert all(isinstance(d["in_hand"], int) for d in listed)
        human = ws.run("status").stdout
        assert all(f"pid {d.pid}" in human for d in daemons), human

        # SIGKILL one daemon while work is in flight, a third of the way through: the one
        # holding the most deliveries at that moment, so the kill always leaves leases behind.
        ws.wait_until(lambda: _published(ws) >= 1000, timeout=120, what="1 000 publications")
        worker = _busiest_worker(ws)
        victim = next(d for d in daemons for row in listed
                      if row["worker"] == worker and row["pid"] == d.pid)  # fmt: skip
        survivors = [d for d in daemons if d is not victim]
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        store = ws.store()
        try:
            with store.engine.connect() as conn:
                held: dict[int, datetime] = dict(
                    conn.execute(
                        text(
                            "SELECT id, lease_until FROM deliveries "
                            "WHERE worker = :worker AND state = 'publishing'"
                        ),
                        {"worker": worker},
                    ).all()
                )
        finally:
            store.close()
        assert held, "the killed daemon held no delivery; the test proves nothing"

        ws.wait_until(
            lambda: _published(ws) == POSTS * ACCOUNTS, timeout=240, what="3 000 publications"
        )
        elapsed = time.monotonic() - started
        # A dead daemon drops out of `status` once its heartbeat is older than two leases.
        ws.wait_until(
            lambda: (
                sorted(d["pid"] for d in ws.json("status")["daemons"])
                == sorted(d.pid for d in survivors)
            ),
            timeout=30,
            what="status to list only the two live daemons",
        )
        for daemon in survivors:
            daemon.send_signal(signal.SIGTERM)
        assert [daemon.wait(timeout=60) for daemon in survivors] == [0, 0]
    finally:
        ws.stop_all()

    _assert_each_instance_holds_every_post_once(fleet)

    # In the queue: everything published; the killed daemon's leases were taken
    # over only after they expired, and finished by the others.
    store = ws.store()
    try:
        assert store.counts() == {DeliveryState.PUBLISHED: POSTS * ACCOUNTS}
        attempts = store.attempts(limit=100_000)
    finally:
        store.close()
    assert not [a for a in attempts if a.worker == worker and a.outcome is Outcome.PENDING]
    for delivery_id, lease_until in held.items():
        mine = [a for a in attempts if a.delivery_id == delivery_id]
        takeover = [a for a in mine if a.worker != worker]
        assert takeover, f"delivery {delivery_id} was not taken over: {mine}"
        first = min(a.started_at for a in takeover)
        assert first >= lease_until.replace(tzinfo=UTC) - timedelta(milliseconds=50), (
            f"delivery {delivery_id} taken over at {first}, before its lease ended {lease_until}"
        )
    rate = POSTS * ACCOUNTS / elapsed
    print(
        f"\nscale-out: {POSTS * ACCOUNTS} deliveries, 3 daemons (1 killed), {elapsed:.1f} s, "
        f"{rate:.0f}/s; the killed daemon held {len(held)}, all finished by the others"
    )


def test_a_post_enqueued_for_now_is_published_within_a_second(
    workspace: Workspace, mastodon: MastodonFake
) -> None:
    """Three posts enqueued for "now", one after the other, each reach Mastodon within
    1 s of being stored (the enqueue command's return): on SQLite by polling the change
    counter, on PostgreSQL by NOTIFY (the workspace polls PostgreSQL once a minute)."""
    daemon = workspace.start_daemon()
    workspace.wait_ready(daemon)
    for n in range(3):
        link = f"{SITE}/aktuelles/sofort-{n}"
        workspace.json("enqueue", "--text", f"Sofort {n}", "--link", link,
                       "--to", "mastodon", "--at", "now")  # fmt: skip
        stored = datetime.now(UTC)

        def reached(link: str = link) -> bool:
            return len(mastodon.statuses_containing(link)) == 1

        arrived = mastodon.wait_for(reached, timeout=10)
        assert arrived, f"post {n} did not reach Mastodon"
        [request] = [
            r for r in mastodon.requests_to("POST /api/v1/statuses") if link in r.body.decode()
        ]
        lateness = (request.received_at - stored).total_seconds()
        assert lateness <= 1.0, f"post {n} reached Mastodon {lateness:.2f} s after it was stored"
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0


def _start_together(ws: Workspace, *args: str, count: int = 2) -> list[Any]:
    """Run ``crosspost ARGS`` ``count`` times at the same instant; the completed runs."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        barrier.wait(timeout=30)
        results[i] = ws.run(*args, check=False, timeout=120)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=150)
    return results


def test_daemons_refuse_an_outdated_schema_and_concurrent_upgrades_migrate_once(
    workspace: Workspace,
) -> None:
    """Against a schema one revision behind, two daemons started together both refuse
    to run (exit 2, naming ``db upgrade``); two ``db upgrade`` run together both succeed
    and migrate once; then a daemon starts."""
    downgrade(workspace.database_url, "0001")
    refused = _start_together(workspace, "daemon")
    for result in refused:
        assert result.returncode == 2, result.stderr
        assert "db upgrade" in result.stderr
        assert "Traceback" not in result.stderr

    upgrades = _start_together(workspace, "db", "upgrade")
    assert [r.returncode for r in upgrades] == [0, 0], [r.stderr for r in upgrades]
    store = workspace.store()
    try:
        store.check_schema()
        with store.engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    finally:
        store.close()
    assert len(versions) == 1

    daemon = workspace.start_daemon()
    workspace.wait_ready(daemon)
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0
