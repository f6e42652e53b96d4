"""Issue 5: "three daemons together respect one account's limit exactly as one would".

One Mastodon instance (a fake in a process of its own, answering after 0.2 s) grants
``LIMIT`` requests in a window far longer than the test and says what is left in
``X-RateLimit-Remaining``/``-Reset`` on every answer. One, then three ``crosspost
daemon`` processes on one PostgreSQL share 60 deliveries to it, ``concurrency`` 4
each. The budget lies in the database (``account_state.limit_remaining``/
``limit_reset``, written with each settlement) and caps every claim at what is left of
it less the deliveries in flight of all daemons. So with one daemon and with three:
the instance accepted exactly ``LIMIT`` requests and refused none (no 429: no request
was sent over the budget), nothing was published twice, the account is blocked until
the instance's reset and nothing of it is claimed before.

Before the budget was shared (session 4, same test): one daemon sent 3 requests over
the budget, three daemons 11.
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
from tests.acceptance.conftest import SITE, Workspace, clean_env, write_crosspost_toml
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


@pytest.mark.parametrize("daemon_count", [1, DAEMONS], ids=["one-daemon", "three-daemons"])
def test_daemons_send_nothing_over_one_accounts_budget(
    tmp_path: Path, pg_empty_url: str, instance: RemoteFake, daemon_count: int
) -> None:
    write_crosspost_toml(
        tmp_path,
        pg_empty_url,
        {"lease_seconds": 5, "poll_interval": 0.2, "backoff_base": 0.2,
         "concurrency": CONCURRENCY},
        f"""
[accounts.mastodon]
platform = "mastodon"
base_url = "{instance.url}"
token_env = "CROSSPOST_TEST_MASTODON_TOKEN"
""",
    )  # fmt: skip
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

    daemons = [ws.start_daemon() for _ in range(daemon_count)]
    try:
        for daemon in daemons:
            ws.wait_ready(daemon)
        ws.wait_until(settled, timeout=120, what="the account's block and no request in flight")
        store = ws.store()
        try:
            state = store.account_states()["mastodon"]
            blocked_until = state.blocked_until
            counts = store.counts()
            waiting = [
                d for p, ds in store.list_posts(limit=1000) for d in ds
                if d.state is not DeliveryState.PUBLISHED
            ]  # fmt: skip
        finally:
            store.close()
        requests = instance.requests()
        # What an admin sees: the shared budget and block, in `status` and `accounts`.
        shown = ws.json("status")["rate_limits"]["mastodon"]
        listed = {a["account"]: a for a in ws.json("accounts")}["mastodon"]
        status_text = ws.run("status").stdout
        for daemon in daemons:
            daemon.send_signal(signal.SIGTERM)
        assert [daemon.wait(timeout=60) for daemon in daemons] == [0] * daemon_count
    finally:
        ws.stop_all()

    answered = Counter(r["status"] for r in requests)
    statuses = [s["text"] for s in instance.state()["statuses"]]
    # The instance's budget and nothing more was granted; every status is there once.
    assert answered[200] == LIMIT, answered
    assert len(statuses) == len(set(statuses)) == counts[DeliveryState.PUBLISHED]
    assert counts[DeliveryState.PUBLISHED] == LIMIT - answered_non_status(requests)
    # Nothing over the budget, however many daemons share it.
    assert answered[429] == 0, answered
    assert set(answered) == {200}, answered
    assert sum(counts.values()) == POSTS
    # The budget as the instance last stated it: nothing left until its reset; the
    # block is that reset, stored once for all daemons; nothing waiting is due before.
    assert state.budget is not None
    assert state.budget.remaining == 0
    assert blocked_until is not None
    assert blocked_until == state.budget.reset
    assert blocked_until > datetime.now(UTC) + timedelta(seconds=WINDOW_S / 2)
    assert waiting, "nothing was left for the block to hold"
    assert all(d.state in (DeliveryState.SCHEDULED, DeliveryState.RETRYING) for d in waiting)
    assert all(d.due_at >= blocked_until for d in waiting if d.state is DeliveryState.RETRYING)
    reset = state.budget.reset.isoformat(timespec="seconds").replace("+00:00", "Z")
    assert shown == {"remaining": 0, "reset": reset, "blocked_until": reset}
    assert listed["rate_limit"] == {"remaining": 0, "reset": reset}
    assert listed["blocked_until"] == reset
    assert "account mastodon rate-limited until" in status_text


def answered_non_status(requests: list[dict[str, object]]) -> int:
    """Requests that used the budget without posting a status (the instance's limits)."""
    return sum(1 for r in requests if r["status"] == 200 and r["route"] != "POST /api/v1/statuses")
