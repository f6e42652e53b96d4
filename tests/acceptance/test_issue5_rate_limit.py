"""Issue 5: three daemons and one account's rate limit, on PostgreSQL.

One Mastodon instance (a fake in a process of its own, answering after 0.2 s) grants
``LIMIT`` requests in a window far longer than the test. Three ``crosspost daemon``
processes share 60 deliveries to it. Once the budget is used up, the account's block
lies in the database (``account_state.blocked_until``, the instance's reset time) and
holds all three daemons: the instance accepted exactly ``LIMIT`` requests, nothing
was published twice, and no daemon claims the account's deliveries before the reset.

What this does NOT show (see docs/scaling.md, "Rate limits"): the remaining budget
itself is not shared, so the requests already in flight when it runs out are answered
429 -- up to ``daemon.concurrency`` per daemon, so three daemons send more such
requests than one would.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.acceptance.conftest import SITE, Workspace, clean_env
from tests.fakes.mastodon import SPEC_NAME
from tests.fakes.server import RemoteFake, skip_without_spec

from crosspost.models import DeliveryState

pytestmark = pytest.mark.acceptance

LIMIT = 30  #: requests per window the instance grants
WINDOW_S = 3600  #: longer than the test: the block lasts until its end
POSTS = 60
DAEMONS = 3
CONCURRENCY = 4  #: the default daemon.concurrency, per daemon and account


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[RemoteFake]:
    skip_without_spec(SPEC_NAME)
    with (tmp_path / "fake.log").open("w") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.mastodon", "--no-validate", "--latency", "0.2",
             "--rate-limit", str(LIMIT), "--rate-window", str(WINDOW_S)],
            stdout=subprocess.PIPE, stderr=errors, text=True,
        )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, f"the Mastodon fake did not start (exit code {process.poll()})"
        yield RemoteFake(json.loads(line)["url"])
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_three_daemons_stop_together_when_one_accounts_budget_is_used_up(
    tmp_path: Path, pg_empty_url: str, instance: RemoteFake
) -> None:
    (tmp_path / "crosspost.toml").write_text(
        f"""
[site]
url = "{SITE}"
name = "Zweckverband Städtedreieck"
timezone = "Europe/Berlin"

[database]
url = "{pg_empty_url}"

[daemon]
lease_seconds = 5
poll_interval = 0.2
backoff_base = 0.2
concurrency = {CONCURRENCY}

[accounts.mastodon]
platform = "mastodon"
base_url = "{instance.url}"
token_env = "CROSSPOST_TEST_MASTODON_TOKEN"
""",
        encoding="utf-8",
    )
    ws = Workspace(tmp_path, clean_env(tmp_path), pg_empty_url)
    ws.run("db", "upgrade")
    files = []
    for i in range(POSTS):
        post = tmp_path / f"beitrag-{i:02d}.md"
        post.write_text(f'+++\ntitle = "Beitrag {i}"\nlink = "{SITE}/limit/{i}"\n+++\n'
                        f"Beitrag {i}.\n", encoding="utf-8")  # fmt: skip
        files.append(str(post))
    assert len(ws.json("enqueue", *files)) == POSTS

    def settled() -> bool:
        """The account is blocked in the database and no delivery is in flight."""
        store = ws.store()
        try:
            state = store.account_states().get("mastodon")
            counts = store.counts()
        finally:
            store.close()
        blocked = state is not None and state.blocked_until is not None
        return blocked and counts.get(DeliveryState.PUBLISHING, 0) == 0

    daemons = [ws.start_daemon() for _ in range(DAEMONS)]
    try:
        for daemon in daemons:
            ws.wait_ready(daemon)
        ws.wait_until(settled, timeout=120, what="the account's block and no request in flight")
        store = ws.store()
        try:
            blocked_until = store.account_states()["mastodon"].blocked_until
            counts = store.counts()
            waiting = [
                d for p, ds in store.list_posts(limit=1000) for d in ds
                if d.state is not DeliveryState.PUBLISHED
            ]  # fmt: skip
        finally:
            store.close()
        requests = instance.requests()
        for daemon in daemons:
            daemon.send_signal(signal.SIGTERM)
        assert [daemon.wait(timeout=60) for daemon in daemons] == [0] * DAEMONS
    finally:
        ws.stop_all()

    answered = Counter(r["status"] for r in requests)
    statuses = [s["text"] for s in instance.state()["statuses"]]
    # The instance's budget and nothing more was granted; every status is there once.
    assert answered[200] == LIMIT, answered
    assert len(statuses) == len(set(statuses)) == counts[DeliveryState.PUBLISHED]
    assert counts[DeliveryState.PUBLISHED] == LIMIT - answered_non_status(requests)
    # Over the budget: only requests that were in flight when it ran out, at most
    # `concurrency` per daemon (the shared block stops every daemon at once after that).
    assert answered[429] <= DAEMONS * CONCURRENCY, answered
    assert sum(counts.values()) == POSTS
    # The block is the instance's reset time, stored once for all daemons, and no
    # waiting delivery is due before it.
    assert blocked_until is not None
    assert blocked_until > datetime.now(UTC) + timedelta(seconds=WINDOW_S / 2)
    assert waiting, "nothing was left for the block to hold"
    assert all(d.state in (DeliveryState.SCHEDULED, DeliveryState.RETRYING) for d in waiting)
    assert all(d.due_at >= blocked_until for d in waiting if d.state is DeliveryState.RETRYING)


def answered_non_status(requests: list[dict[str, object]]) -> int:
    """Requests that used the budget without posting a status (the instance's limits)."""
    return sum(1 for r in requests if r["status"] == 200 and r["route"] != "POST /api/v1/statuses")
