"""The benchmark harness runs end to end at tiny sizes, so it cannot rot.

Targets are not checked here (timed tests on a shared machine would be noise):
they are read in bench/results/latest.md.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from crosspost.adapters._http import header_budget
from crosspost.models import Budget

ROOT = Path(__file__).resolve().parents[2]
LIMITS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


def test_harness_produces_every_scenario(tmp_path: Path) -> None:
    """`bench/run.py --smoke` writes a report with every scenario's raw figures,
    and the throughput run saw every request it sent."""
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--out", str(tmp_path)],
        check=True,
        timeout=600,
        capture_output=True,
    )
    results = json.loads((tmp_path / "latest.json").read_text())
    for scenario in ("machine", "startup", "queue", "idle", "lateness", "throughput", "postgresql"):
        assert scenario in results
    assert results["throughput"]["requests_seen"] == 2 * results["throughput"]["deliveries"]
    assert results["throughput"]["states_after"]["published"] == results["throughput"]["deliveries"]
    # the fake answered like Mastodon, so the daemon kept every account's budget (issue 5)
    assert results["rate_limit_headers"] is True
    assert results["throughput"]["budgets_after"] == results["throughput"]["accounts"]
    assert results["lateness"]["published"] == results["lateness"]["posts"]
    assert "ix_deliveries_account_due" in " ".join(results["queue"]["sqlite"]["plan"])
    report = (tmp_path / "latest.md").read_text()
    assert "| scenario | measured | target |" in report
    pg = results["postgresql"]
    if "skipped" in pg:  # no PostgreSQL here: the report says so instead of a figure
        assert "PostgreSQL scenarios | not run:" in report
        return
    # every request once: the floor's and the daemon's, nothing sent twice
    assert pg["throughput"]["requests_seen"] == 2 * pg["throughput"]["deliveries"]
    assert pg["throughput"]["states_after"]["published"] == pg["throughput"]["deliveries"]
    assert pg["throughput"]["budgets_after"] == pg["throughput"]["accounts"]
    assert pg["queue"]["index_scan_on_claim_index"], pg["queue"]["plan_large"]
    assert not pg["queue"]["sequential_scan_on_deliveries"], pg["queue"]["plan_large"]
    for run in (pg["scale_out"]["one"], pg["scale_out"]["three"]):
        assert run["requests_seen"] == run["deliveries"]
        assert run["published"] == run["deliveries"]
    assert "Claim query plan (PostgreSQL" in report


@contextmanager
def fake(*options: str) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "fakeplatform.py"), "--latency", "0", *options],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield str(json.loads(process.stdout.readline())["url"])
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


def test_fake_platform_states_a_budget_as_mastodon_does() -> None:
    """Every answer carries X-RateLimit-Limit/-Remaining/-Reset: the reset is the end of
    the current 300 s window in ISO 8601, each request counts, and the daemon's own
    parser (Mastodon's) reads a budget from them that never runs short in a benchmark."""
    parse = header_budget("X-RateLimit-Remaining", "X-RateLimit-Reset")
    with fake() as url, httpx.Client(base_url=url, timeout=30) as client:
        auth = {"Authorization": "Bearer bench-token"}
        before = datetime.now(UTC)
        answers = [
            client.post("/api/v1/statuses", json={"status": "a"}, headers=auth),
            client.post("/api/v1/statuses", json={"status": "b"}, headers=auth),
            client.get("/api/v1/accounts/verify_credentials", headers=auth),
        ]
        after = datetime.now(UTC)
    budgets = []
    for answer in answers:
        assert answer.headers["X-RateLimit-Limit"] == "1000000"
        reset = datetime.fromisoformat(answer.headers["X-RateLimit-Reset"].replace("Z", "+00:00"))
        assert reset.timestamp() % 300 == 0  # windows aligned to the epoch, as Mastodon's
        assert before < reset <= after + timedelta(seconds=300)
        budget = parse(answer, after)
        assert budget is not None
        assert budget.reset == reset
        budgets.append(budget)
    # one count per request; a new window (the test ran across its end) starts afresh
    assert budgets[0].remaining == 999_999
    for earlier, later in itertools.pairwise(budgets):
        expected = earlier.remaining - 1 if later.reset == earlier.reset else 999_999
        assert later == Budget(expected, later.reset)


@pytest.mark.parametrize("path", ["/api/v1/statuses", "/api/v2/instance"])
def test_fake_platform_without_rate_limit_headers(path: str) -> None:
    """``--no-rate-limit-headers``: no answer states a budget (the daemon keeps none)."""
    with fake("--no-rate-limit-headers") as url:
        answer = httpx.post(f"{url}{path}", json={"status": "a"}, timeout=30)
    assert answer.status_code == 200
    assert not [h for h in answer.headers if h.lower() in LIMITS]
    assert (
        header_budget("X-RateLimit-Remaining", "X-RateLimit-Reset")(answer, datetime.now(UTC))
        is None
    )


def test_harness_without_rate_limit_headers(tmp_path: Path) -> None:
    """`bench/run.py --no-rate-limit-headers` passes the switch to the fake: the daemon
    publishes everything and keeps no budget (the path measured against the default's)."""
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--only", "throughput",
         "--no-rate-limit-headers", "--out", str(tmp_path)],
        check=True,
        timeout=600,
        capture_output=True,
    )  # fmt: skip
    results = json.loads((tmp_path / "latest.json").read_text())
    assert results["rate_limit_headers"] is False
    throughput = results["throughput"]
    assert throughput["states_after"]["published"] == throughput["deliveries"]
    assert throughput["rate_limit_headers"] is False
    assert throughput["budgets_after"] == 0
