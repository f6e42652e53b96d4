"""The benchmark harness: every target is a ratio measured in the same run.

    python bench/run.py            # full sizes, writes bench/results/latest.{md,json}
    python bench/run.py --smoke    # tiny sizes (CI), writes into --out

Scenarios (issue 6): throughput against a bare httpx floor, lateness of posts
due at spread instants, CLI start-up against ``python -c pass``, the cost of a
claim with a small and a large queue (with query plans), the idle daemon's CPU
and memory. PostgreSQL scenarios run when ``--pg-url`` (or
``CROSSPOST_BENCH_PG_URL``) names a server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pgcluster  # bench/pgcluster.py (this folder is on sys.path when run as a script)

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
CROSSPOST = str(Path(PY).with_name("crosspost"))
SITE = "https://www.zv-staedtedreieck.de"
T = TypeVar("T")
#: the fake platform's options for this run (main: ``--no-rate-limit-headers``)
FAKE_OPTIONS: list[str] = []
TOKEN = "bench-token"  # noqa: S105 - the fake platform accepts any token


@dataclass
class Sizes:
    deliveries: int = 5000
    accounts: int = 20
    latency: float = 0.05
    lateness_posts: int = 200
    lateness_spread: float = 20.0
    startup_runs: int = 10
    # the throughput scenario runs this many rounds and reports the median round: one
    # round's ratio moved by up to 0.15 between runs on a quiet machine
    throughput_rounds: int = 3
    queue_small: int = 1000
    queue_large: int = 100_000
    pg_queue_large: int = 1_000_000
    idle_seconds: float = 60.0
    # 1 vs 3 daemons on PostgreSQL: few accounts and a slow platform, so one daemon's
    # capacity (accounts x daemon.concurrency requests in flight) is the limit
    scale_deliveries: int = 600
    scale_accounts: int = 3
    scale_latency: float = 0.5


SMOKE = Sizes(
    deliveries=60,
    accounts=3,
    latency=0.01,
    lateness_posts=6,
    lateness_spread=1.5,
    startup_runs=2,
    throughput_rounds=1,
    queue_small=50,
    queue_large=500,
    pg_queue_large=2000,
    idle_seconds=2.0,
    scale_deliveries=24,
    scale_accounts=2,
    scale_latency=0.02,
)


# -- plumbing ---------------------------------------------------------------------------
@contextmanager
def fake_platform(latency: float) -> Iterator[str]:
    """bench/fakeplatform.py: Mastodon's rate-limit headers on every answer (so the
    daemon keeps each account's budget, as with a real instance) unless
    :data:`FAKE_OPTIONS` says ``--no-rate-limit-headers``."""
    process = subprocess.Popen(
        [PY, str(ROOT / "bench" / "fakeplatform.py"), "--latency", str(latency), *FAKE_OPTIONS],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = json.loads(process.stdout.readline())["url"]
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


def stats(url: str) -> list[tuple[float, str]]:
    import httpx

    arrivals = httpx.get(f"{url}/__stats", timeout=30).json()["arrivals"]
    return [(float(t), str(title)) for t, title in arrivals]


def write_config(folder: Path, url: str, accounts: int, db_url: str | None = None) -> Path:
    lines = [
        "[site]",
        f'url = "{SITE}"',
        'timezone = "Europe/Berlin"',
        "[database]",
        f'url = "{db_url or f"sqlite:///{folder}/bench.db"}"',
        "[daemon]",
        "poll_interval = 0.2",
        f'state_dir = "{folder}/state"',
    ]
    for i in range(accounts):
        lines += [
            f"[accounts.m{i:02d}]",
            'platform = "mastodon"',
            f'base_url = "{url}"',
            'token_env = "BENCH_TOKEN"',
            "max_characters = 500",
        ]
    path = folder / "crosspost.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def env_for(config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSPOST_")}
    env.update(CROSSPOST_CONFIG=str(config), BENCH_TOKEN=TOKEN, LANGUAGE="C")
    return env


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CROSSPOST, *args], env=env, capture_output=True, text=True, check=True)


def fill(config: Path, posts: list[tuple[str, datetime]], accounts: int) -> None:
    """Enqueue posts through the Python API (the CLI would dominate the set-up time)."""
    os.environ["CROSSPOST_CONFIG"] = str(config)
    from crosspost.config import load_settings
    from crosspost.models import Post, Rendered
    from crosspost.store.sql import SqlStore

    settings = load_settings(config)
    store = SqlStore(settings.database.url)
    now = datetime.now(UTC)
    names = [f"m{i:02d}" for i in range(accounts)]
    for title, due in posts:
        text = f"{title}\n\n{SITE}/b"
        post = Post(title, text, f"{SITE}/b", None, due, tuple(names))
        rendered = [Rendered(n, "mastodon", text, len(text), 500, "graphemes") for n in names]
        store.enqueue(post, rendered, due_at=due, created_by="bench", now=now)
    store.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


# -- scenarios -----------------------------------------------------------------------------
async def _floor(url: str, accounts: int, per_account: int, concurrency: int) -> float:
    import httpx

    async def account(i: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            queue = list(range(per_account))

            async def worker() -> None:
                while queue:
                    n = queue.pop()
                    await client.post(
                        "/api/v1/statuses",
                        json={"status": f"floor {i}-{n}\n\n{SITE}/b", "visibility": "public"},
                        headers={"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": f"{i}-{n}"},
                    )

            await asyncio.gather(*(worker() for _ in range(concurrency)))

    started = time.perf_counter()
    await asyncio.gather(*(account(i) for i in range(accounts)))
    return time.perf_counter() - started


def _children_cpu() -> float:
    """CPU seconds of the harness's finished child processes (user + system)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def throughput(sizes: Sizes, database: Callable[[int], str] | None = None) -> dict[str, Any]:
    """:func:`throughput_round` ``sizes.throughput_rounds`` times, each against a fresh
    database (SQLite without ``database``; else ``database(round)``'s URL); the round
    with the median ratio, and every round's figures (``rounds``)."""
    rounds = []
    for n in range(sizes.throughput_rounds):
        rounds.append(throughput_round(sizes, None if database is None else database(n)))
    median = dict(sorted(rounds, key=lambda r: float(r["ratio"]))[len(rounds) // 2])
    keys = ("ratio", "cpu_ratio", "floor_s", "drain_s")
    median["rounds"] = [{k: r[k] for k in keys} for r in rounds]
    return median


def throughput_round(sizes: Sizes, db_url: str | None = None) -> dict[str, Any]:
    """Drain time of ``daemon --once`` against the bare httpx floor, in the same run.

    Also the CPU seconds of both (the floor's in this process, the daemon's as a
    child), net of the daemon's start-up and shutdown: on a shared machine the
    wall-clock ratio moves with the neighbours' load, the CPU ratio much less.
    """
    per_account = sizes.deliveries // sizes.accounts
    concurrency = 4  # daemon.concurrency's default, per account
    with tempfile.TemporaryDirectory() as tmp, fake_platform(sizes.latency) as url:
        folder = Path(tmp)
        cpu = time.process_time()
        floor = asyncio.run(_floor(url, sizes.accounts, per_account, concurrency))
        floor_cpu = time.process_time() - cpu
        config = write_config(folder, url, sizes.accounts, db_url)
        env = env_for(config)
        cli(env, "db", "upgrade")
        cpu, started = _children_cpu(), time.perf_counter()
        cli(env, "daemon", "--once")  # empty queue: start-up and shutdown only
        overhead = time.perf_counter() - started
        overhead_cpu = _children_cpu() - cpu
        now = datetime.now(UTC)
        fill(config, [(f"post {n}", now) for n in range(per_account)], sizes.accounts)
        cpu, started = _children_cpu(), time.perf_counter()
        drained = cli(env, "daemon", "--once")
        total = time.perf_counter() - started
        total_cpu = _children_cpu() - cpu
        arrivals = stats(url)
        status = json.loads(cli(env, "status", "--json").stdout)
    counts = status.get("counts", {})
    drain = total - overhead
    drain_cpu = total_cpu - overhead_cpu
    deliveries = per_account * sizes.accounts
    return {
        "database": "postgresql" if db_url else "sqlite",
        "deliveries": deliveries,
        "accounts": sizes.accounts,
        "latency_s": sizes.latency,
        "concurrency_per_account": concurrency,
        "floor_s": round(floor, 3),
        "daemon_total_s": round(total, 3),
        "daemon_startup_shutdown_s": round(overhead, 3),
        "drain_s": round(drain, 3),
        "ratio": round(drain / floor, 3),
        "target": 1.25,
        "floor_cpu_s": round(floor_cpu, 3),
        "drain_cpu_s": round(drain_cpu, 3),
        "cpu_ratio": round(drain_cpu / floor_cpu, 3) if floor_cpu > 0 else None,
        "requests_seen": len(arrivals),
        "daemon_requests": len(arrivals) - deliveries,  # the floor sent one per delivery
        "states_after": counts,
        "rate_limit_headers": "--no-rate-limit-headers" not in FAKE_OPTIONS,
        # the budgets the daemon kept (one per account when the fake sends the headers)
        "budgets_after": len(status.get("rate_limits", {})),
        # the daemon's own count of claim transactions and settlement batches
        "daemon_stopped": _stopped_fields(drained.stderr),
    }


def _stopped_fields(log: str) -> dict[str, int]:
    """``claims=…`` and the like from the daemon's ``stopped`` log line."""
    for line in reversed(log.splitlines()):
        if " stopped " in f" {line} ":
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            return {k: int(v) for k, v in fields.items() if v.isdigit()}
    return {}


def lateness(sizes: Sizes) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, fake_platform(0.0) as url:
        folder = Path(tmp)
        config = write_config(folder, url, 1)
        env = env_for(config)
        cli(env, "db", "upgrade")
        daemon = subprocess.Popen([CROSSPOST, "daemon"], env=env, stderr=subprocess.DEVNULL)
        try:
            for _ in range(200):  # wait for its heartbeat
                if json.loads(cli(env, "status", "--json").stdout)["daemons"]:
                    break
                time.sleep(0.1)
            start = datetime.now(UTC) + timedelta(seconds=2)
            step = sizes.lateness_spread / sizes.lateness_posts
            due = {
                f"late {n}": start + timedelta(seconds=n * step)
                for n in range(sizes.lateness_posts)
            }
            fill(config, list(due.items()), 1)
            deadline = time.time() + sizes.lateness_spread + 30
            while time.time() < deadline and len(stats(url)) < len(due):
                time.sleep(0.2)
            arrivals = stats(url)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)
    late = [
        (datetime.fromtimestamp(t, UTC) - due[title]).total_seconds() * 1000
        for t, title in arrivals
        if title in due
    ]
    return {
        "posts": len(due),
        "published": len(late),
        "p50_ms": round(percentile(late, 50), 1) if late else None,
        "p99_ms": round(percentile(late, 99), 1) if late else None,
        "max_ms": round(max(late), 1) if late else None,
        "target_p50_ms": 50,
        "target_p99_ms": 250,
    }


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, env=env, capture_output=True, check=False)
    return time.perf_counter() - started


def startup(sizes: Sizes) -> dict[str, Any]:
    """CLI start-up against ``python -c pass``, as an editor meets it day to day.

    The first ``--help`` and dry run fill crosspost's start-up cache (crosspost.entry,
    docs/design.md); they are reported apart (``*_first_s``) and the medians measure
    the runs after them. Python writes bytecode as it does for any user (the harness's
    own PYTHONDONTWRITEBYTECODE would make every run compile crosspost's sources). The
    three commands take turns, so a load change on a shared machine hits all alike.
    """
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = write_config(folder, "http://127.0.0.1:9", 1)
        env = env_for(config)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["XDG_CACHE_HOME"] = str(folder / "cache")  # a fresh start-up cache
        cli(env, "db", "upgrade")
        post = folder / "post.md"
        post.write_text(f'+++\ntitle = "Bench"\nlink = "{SITE}/b"\n+++\nHallo Welt.\n')
        commands = {
            "base": [PY, "-c", "pass"],
            "help": [CROSSPOST, "--help"],
            "dry": [CROSSPOST, "enqueue", "--dry-run", str(post)],
        }
        first = {name: _timed(cmd, env) for name, cmd in commands.items()}
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(sizes.startup_runs):
            for name, cmd in commands.items():
                times[name].append(_timed(cmd, env))
        base, help_, dry = (statistics.median(times[n]) for n in ("base", "help", "dry"))
    return {
        "python_pass_s": round(base, 4),
        "help_s": round(help_, 4),
        "dry_run_s": round(dry, 4),
        "help_ratio": round(help_ / base, 2),
        "dry_run_ratio": round(dry / base, 2),
        "help_first_s": round(first["help"], 4),
        "dry_run_first_s": round(first["dry"], 4),
        "raw_s": {name: [round(t, 4) for t in values] for name, values in times.items()},
        "target_help_ratio": 2.0,
        "target_dry_run_ratio": 3.0,
    }


#: untimed, between two timed claims: the claimed rows go back, so each claim sees the same queue
_REQUEUE = (
    "UPDATE deliveries SET state = 'scheduled', worker = NULL, lease_until = NULL"
    " WHERE state = 'publishing'"
)


def _claim_cost(url: str, queued: int, accounts: int) -> Generator[float, None, list[str]]:
    """SQLite: fill, then yield the time of one claim per step (see _interleaved); return
    the plan of the claim's statement (the one the store really ran)."""
    from sqlalchemy import event

    from crosspost.store.migrate import upgrade
    from crosspost.store.sql import SqlStore

    store = SqlStore(url, create=True)
    upgrade(store.engine)
    now = datetime.now(UTC)
    with sqlite3.connect(url.split("///", 1)[1]) as db:
        stamp = now.replace(tzinfo=None).isoformat(" ", "microseconds")
        db.executemany(
            "INSERT INTO posts (id, title, body, link, created_at, created_by, media, variants)"
            " VALUES (?, 'b', 'b', 'x', ?, 'bench', '[]', '{}')",
            ((n + 1, stamp) for n in range(queued // accounts + 1)),
        )
        rows = (
            (
                i // accounts + 1,
                f"m{i % accounts:02d}",
                "mastodon",
                "scheduled",
                (now - timedelta(seconds=queued - i))
                .replace(tzinfo=None)
                .isoformat(" ", "microseconds"),
                "t",
                f"k{i}",
                now.replace(tzinfo=None).isoformat(" ", "microseconds"),
            )
            for i in range(queued)
        )
        db.executemany(
            "INSERT INTO deliveries (post_id, account, platform, state, due_at, text,"
            " idempotency_key, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        db.execute("ANALYZE")
    capacity = {f"m{i:02d}": 4 for i in range(accounts)}
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.startswith("UPDATE deliveries") and "ix_deliveries_account_due" in statement:
            statements.append((statement, params))  # the claim's UPDATE (crosspost.store._hot)

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        for n in range(CLAIM_ROUNDS):
            started = time.perf_counter()
            store.claim_and_start(
                f"w{n}",
                now=now,
                lease=timedelta(seconds=60),
                capacity=capacity,
                reconcilable=["mastodon"],
            )
            yield time.perf_counter() - started
            with store.engine.begin() as conn:  # back to the queue: every claim sees `queued`
                conn.exec_driver_sql(_REQUEUE)
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    statement, params = statements[-1]
    with store.engine.connect() as conn:
        plans = [
            " ".join(str(c) for c in r)
            for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params)
        ]
    store.close()
    return plans


#: timed claims per queue size, the small and the large queue's taken in turns
CLAIM_ROUNDS = 31


def _interleaved(small: Generator[float, None, T], large: Generator[float, None, T]) -> tuple[
    float, float, T, T
]:  # fmt: skip
    """Run two claim benchmarks in turns, one claim each, so that a burst of the
    neighbours' load hits both alike; the medians and what each returned."""
    times: tuple[list[float], list[float]] = ([], [])
    results: list[Any] = [None, None]
    running = [True, True]
    while any(running):
        for i, bench in enumerate((small, large)):
            if not running[i]:
                continue
            try:
                times[i].append(next(bench))
            except StopIteration as done:
                results[i] = done.value
                running[i] = False
    return statistics.median(times[0]), statistics.median(times[1]), results[0], results[1]


def queue_size(sizes: Sizes) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        small, large, _plan_small, plan_large = _interleaved(
            _claim_cost(f"sqlite:///{tmp}/small.db", sizes.queue_small, 20),
            _claim_cost(f"sqlite:///{tmp}/large.db", sizes.queue_large, 20),
        )
    return {
        "sqlite": {
            "small_queue": sizes.queue_small,
            "large_queue": sizes.queue_large,
            "claim_small_ms": round(small * 1000, 3),
            "claim_large_ms": round(large * 1000, 3),
            "ratio": round(large / small, 3),
            "target": 1.5,
            "plan": plan_large,
        }
    }


# -- PostgreSQL -------------------------------------------------------------------------------
#: the large queue, written by the server itself (a million rows in seconds, no Python loop)
_PG_FILL = [
    """INSERT INTO posts (id, title, body, link, created_at, created_by, media, variants)
       SELECT g, 'b', 'b', 'x', now() AT TIME ZONE 'UTC', 'bench', '[]', '{{}}'
       FROM generate_series(1, {posts}) AS g""",
    "SELECT setval(pg_get_serial_sequence('posts', 'id'), {posts})",
    """INSERT INTO deliveries (post_id, account, platform, state, due_at, text,
                               idempotency_key, updated_at)
       SELECT g / {accounts} + 1, 'm' || lpad(mod(g, {accounts})::text, 2, '0'), 'mastodon',
              'scheduled', (now() AT TIME ZONE 'UTC') - make_interval(secs => {queued} - g),
              't', 'k' || g, now() AT TIME ZONE 'UTC'
       FROM generate_series(0, {queued} - 1) AS g""",
    "ANALYZE",
]


def _pg_claim_cost(url: str, queued: int, accounts: int) -> Generator[float, None, dict[str, Any]]:
    """PostgreSQL: fill ``queued`` due deliveries, yield the time of one claim (80 rows:
    4 for each of 20 accounts) per step (see _interleaved); return the plan of that very
    statement (EXPLAIN ANALYZE, rolled back) and where a claim's time goes."""
    from sqlalchemy import event

    from crosspost.store.migrate import upgrade
    from crosspost.store.sql import SqlStore

    store = SqlStore(url)
    upgrade(store.engine)
    started = time.perf_counter()
    with store.engine.begin() as conn:
        for sql in _PG_FILL:
            conn.exec_driver_sql(
                sql.format(posts=queued // accounts + 1, accounts=accounts, queued=queued)
            )
    fill_s = time.perf_counter() - started
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "FOR UPDATE SKIP LOCKED" in statement:  # the claim's UPDATE … WHERE id IN (…)
            statements.append((statement, params))

    capacity = {f"m{i:02d}": 4 for i in range(accounts)}
    times = []
    steps: list[dict[str, float]] = []

    def timed(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        conn.info["began"] = time.perf_counter()

    def took(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        word = statement.lstrip().split(None, 1)[0].lower()
        step = steps[-1]
        step[word] = step.get(word, 0.0) + time.perf_counter() - conn.info["began"]

    event.listen(store.engine, "before_cursor_execute", record)
    event.listen(store.engine, "before_cursor_execute", timed)
    event.listen(store.engine, "after_cursor_execute", took)
    try:
        for n in range(CLAIM_ROUNDS):
            steps.append({})
            began = time.perf_counter()
            claimed = store.claim_and_start(
                f"w{n}",
                now=datetime.now(UTC),
                lease=timedelta(seconds=60),
                capacity=capacity,
                reconcilable=["mastodon"],
            )
            times.append(time.perf_counter() - began)
            yield times[-1]
            assert len(claimed) == min(queued, 4 * accounts), len(claimed)
            with store.engine.begin() as conn:  # back to the queue: every claim sees `queued`
                conn.exec_driver_sql(_REQUEUE)
            steps[-1]["total"] = times[-1]
            steps.append({})
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
        event.remove(store.engine, "before_cursor_execute", timed)
        event.remove(store.engine, "after_cursor_execute", took)
    statement, params = statements[-1]
    with store.engine.connect() as conn:
        transaction = conn.begin()
        plan = [
            str(row[0])
            for row in conn.exec_driver_sql(
                "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + statement, params
            )
        ]
        transaction.rollback()
    store.close()
    claims = [step for step in steps if "total" in step]
    # where a claim's time goes, per kind of statement (median over the claims, ms)
    breakdown = {
        key: round(statistics.median(step.get(key, 0.0) for step in claims) * 1000, 3)
        for key in sorted({k for step in claims for k in step})
    }
    return {
        "median_s": statistics.median(times),
        "plan": plan,
        "fill_s": round(fill_s, 1),
        "breakdown_ms": breakdown,
    }


def _plan_verdict(plan: list[str]) -> dict[str, bool]:
    """Index scans on ``deliveries``, no sequential scan of it (``account_state``, one row
    per account, and the VALUES list of wanted accounts are read whole, as they should)."""
    text = "\n".join(plan)
    return {
        # the per-account index; on a small queue the planner may walk the due index instead
        "index_scan_on_claim_index": "Index Scan using ix_deliveries_account_due" in text
        or "Index Scan using ix_deliveries_due" in text,
        "index_scan_on_primary_key": "Index Scan using deliveries_pkey" in text,
        "sequential_scan_on_deliveries": "Seq Scan on deliveries" in text,
    }


def pg_queue_size(sizes: Sizes, server: pgcluster.Server) -> dict[str, Any]:
    _small, _large, small, large = _interleaved(
        _pg_claim_cost(server.create_database("bench_queue_small"), sizes.queue_small, 20),
        _pg_claim_cost(server.create_database("bench_queue_large"), sizes.pg_queue_large, 20),
    )
    return {
        "small_queue": sizes.queue_small,
        "large_queue": sizes.pg_queue_large,
        "claim_small_ms": round(small["median_s"] * 1000, 3),
        "claim_large_ms": round(large["median_s"] * 1000, 3),
        "ratio": round(large["median_s"] / small["median_s"], 3),
        "target": 1.5,
        "fill_large_s": large["fill_s"],
        "breakdown_small_ms": small["breakdown_ms"],
        "breakdown_large_ms": large["breakdown_ms"],
        "plan_small": small["plan"],
        "plan_large": large["plan"],
        **_plan_verdict(large["plan"]),
    }


def _daemons_up(env: dict[str, str], count: int) -> bool:
    for _ in range(600):
        if len(json.loads(cli(env, "status", "--json").stdout)["daemons"]) >= count:
            return True
        time.sleep(0.1)
    return False


def _make_due(url: str, due: datetime) -> None:
    from sqlalchemy import create_engine, text

    from crosspost.store.engine import CHANNEL

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE deliveries SET due_at = :due"), {"due": due.replace(tzinfo=None)})
        conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
    engine.dispose()


def _scale_run(sizes: Sizes, url: str, daemons: int) -> dict[str, Any]:
    """``daemons`` daemons (separate processes) drain posts that all fall due at once."""
    per_account = sizes.scale_deliveries // sizes.scale_accounts
    with tempfile.TemporaryDirectory() as tmp, fake_platform(sizes.scale_latency) as fake:
        config = write_config(Path(tmp), fake, sizes.scale_accounts, url)
        env = env_for(config)
        cli(env, "db", "upgrade")
        processes = [
            subprocess.Popen([CROSSPOST, "daemon"], env=env, stderr=subprocess.DEVNULL)
            for _ in range(daemons)
        ]
        try:
            if not _daemons_up(env, daemons):
                raise RuntimeError(f"{daemons} daemons did not start")
            filling = time.perf_counter()
            # Queued for tomorrow, then made due in one transaction (whose NOTIFY wakes the
            # daemons): they all start from the full queue at the same instant.
            later = datetime.now(UTC) + timedelta(days=1)
            fill(config, [(f"scale {n}", later) for n in range(per_account)], sizes.scale_accounts)
            fill_s = time.perf_counter() - filling
            due = datetime.now(UTC) + timedelta(seconds=2)
            _make_due(url, due)
            expected = per_account * sizes.scale_accounts
            deadline = time.time() + 600
            while time.time() < deadline and len(stats(fake)) < expected:
                time.sleep(0.1)
            while time.time() < deadline:  # the last answers settle
                counts = json.loads(cli(env, "status", "--json").stdout)["counts"]
                if counts.get("published", 0) >= expected:
                    break
                time.sleep(0.1)
            arrivals = stats(fake)
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                process.wait(timeout=60)
    times = sorted(t for t, _title in arrivals)
    last = times[-1] + sizes.scale_latency  # its answer came one latency later
    makespan = last - due.timestamp()
    return {
        "daemons": daemons,
        "deliveries": expected,
        "requests_seen": len(arrivals),
        "published": counts.get("published", 0),
        "fill_s": round(fill_s, 2),
        "first_request_after_due_ms": round((times[0] - due.timestamp()) * 1000, 1),
        "makespan_s": round(makespan, 3),
        "per_second": round(expected / makespan, 1),
    }


def scale_out(sizes: Sizes, server: pgcluster.Server) -> dict[str, Any]:
    one = _scale_run(sizes, server.create_database("bench_scale_1"), 1)
    three = _scale_run(sizes, server.create_database("bench_scale_3"), 3)
    return {
        "accounts": sizes.scale_accounts,
        "concurrency_per_account": 4,
        "latency_s": sizes.scale_latency,
        "ideal_ratio": 3.0,
        "one": one,
        "three": three,
        "ratio": round(three["per_second"] / one["per_second"], 3),
        "target": 2.5,
    }


def postgresql(
    sizes: Sizes, url: str | None, *, durable: bool = True, steps: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """Every PostgreSQL scenario (or those named in ``steps``) on one server (a throw-away
    cluster unless ``url``)."""
    started = time.perf_counter()
    with pgcluster.server(url, durable=durable) as server:
        results: dict[str, Any] = {
            "server": (
                "given"
                if url
                else "throw-away cluster on disk, PostgreSQL's durable defaults (fsync, "
                "synchronous_commit on)"
                if durable
                else "throw-away cluster in memory without fsync (smoke run)"
            ),
            "version": server.version(),
            "settings": {} if url else pgcluster.settings(durable),
        }
        scenarios: dict[str, Callable[[], dict[str, Any]]] = {
            "throughput": lambda: throughput(
                sizes, lambda n: server.create_database(f"bench_throughput_{n}")
            ),
            "queue": lambda: pg_queue_size(sizes, server),
            "scale_out": lambda: scale_out(sizes, server),
        }
        for name, step in scenarios.items():
            if steps is not None and name not in steps:
                continue
            print(f"bench: postgresql {name} …", file=sys.stderr, flush=True)
            results[name] = step()
            brief = json.dumps(results[name])[:300]
            print(f"bench: postgresql {name}: {brief}", file=sys.stderr, flush=True)
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def idle(sizes: Sizes) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, fake_platform(0.0) as url:
        config = write_config(Path(tmp), url, 1)
        env = env_for(config)
        cli(env, "db", "upgrade")
        daemon = subprocess.Popen([CROSSPOST, "daemon"], env=env, stderr=subprocess.DEVNULL)
        try:
            for _ in range(200):
                if json.loads(cli(env, "status", "--json").stdout)["daemons"]:
                    break
                time.sleep(0.1)
            time.sleep(1.0)  # past start-up
            ticks0, t0 = _cpu_ticks(daemon.pid), time.perf_counter()
            time.sleep(sizes.idle_seconds)  # the measurement window itself
            ticks1, t1 = _cpu_ticks(daemon.pid), time.perf_counter()
            rss = _rss_kb(daemon.pid)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)
    hz = os.sysconf("SC_CLK_TCK")
    cpu = (ticks1 - ticks0) / hz / (t1 - t0) * 100
    return {
        "seconds": round(t1 - t0, 1),
        "cpu_percent_of_one_core": round(cpu, 3),
        "rss_mb": round(rss / 1024, 1),
        "target_cpu_percent": 1.0,
        "target_rss_mb": 80,
    }


# -- report ----------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
        platform.processor(),
    )
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem = next(line.split()[1] for line in meminfo if line.startswith("MemTotal"))
    import crosspost

    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(int(mem) / 1024 / 1024, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "crosspost": crosspost.__version__,
        "load_average": " ".join(f"{x:.1f}" for x in os.getloadavg()),
    }


def verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("met" if ok else "**missed**")


def _throughput_row(name: str, t: dict[str, Any]) -> tuple[str, str, str, bool | None]:
    return (
        f"Throughput vs httpx floor ({name})",
        f"{t['ratio']} × ({t['drain_s']} s vs {t['floor_s']} s; CPU {t['cpu_ratio']} ×; "
        f"median of {len(t.get('rounds', [t]))} rounds: "
        + ", ".join(f"{r['ratio']} ×" for r in t.get("rounds", [t]))
        + ")",
        "≤ 1.25 ×",
        t["ratio"] <= 1.25,
    )


def _postgresql_rows(pg: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    if "skipped" in pg:
        return [("PostgreSQL scenarios", f"not run: {pg['skipped']}", "", None)]
    t, q, so = pg["throughput"], pg["queue"], pg["scale_out"]
    plan_ok = q["index_scan_on_claim_index"] and not q["sequential_scan_on_deliveries"]
    return [
        _throughput_row("PostgreSQL", t),
        (
            f"Claim, {q['large_queue']:,} vs {q['small_queue']:,} queued (PostgreSQL)",
            f"{q['ratio']} × ({q['claim_large_ms']} ms vs {q['claim_small_ms']} ms)",
            "≤ 1.5 ×",
            q["ratio"] <= 1.5,
        ),
        (
            "Claim plan (PostgreSQL, large queue)",
            "index scans on deliveries"
            + ("" if plan_ok else " — **a sequential scan of deliveries**"),
            "no sequential scan",
            plan_ok,
        ),
        (
            "Scale-out, 3 vs 1 daemons (PostgreSQL)",
            f"{so['ratio']} × ({so['three']['per_second']} vs {so['one']['per_second']} "
            f"deliveries/s)",
            "≥ 2.5 ×",
            so["ratio"] >= 2.5,
        ),
    ]


def _fold_branches(plan: list[str]) -> list[str]:
    """SQLite's plan of the claim with the per-account branches after the first two
    folded into one line (they are the same search for another account)."""
    unions = [i for i, line in enumerate(plan) if line.endswith("UNION ALL")]
    if len(unions) < 2:
        return plan
    tail = next(
        (i for i in range(unions[-1] + 1, len(plan)) if "LIST SUBQUERY" in plan[i]), len(plan)
    )
    folded = (
        f"… {len(unions) - 1} more UNION ALL branches like the one above "
        f"(one per account, {len(unions) + 1} in all)"
    )
    return [*plan[: unions[1]], folded, *plan[tail:]]


def markdown(results: dict[str, Any]) -> str:
    m, t, la, s, q, i = (
        results[k] for k in ("machine", "throughput", "lateness", "startup", "queue", "idle")
    )
    pg = results.get("postgresql", {"skipped": "not run (--only)"})
    rows = [
        _throughput_row("SQLite", t),
        (
            "Lateness p50",
            f"{la['p50_ms']} ms",
            "≤ 50 ms",
            la["p50_ms"] is not None and la["p50_ms"] <= 50,
        ),
        (
            "Lateness p99",
            f"{la['p99_ms']} ms",
            "≤ 250 ms",
            la["p99_ms"] is not None and la["p99_ms"] <= 250,
        ),
        (
            "`crosspost --help`",
            f"{s['help_ratio']} × ({s['help_s']} s vs {s['python_pass_s']} s)",
            "≤ 2.0 ×",
            s["help_ratio"] <= 2.0,
        ),
        (
            "`enqueue --dry-run`",
            f"{s['dry_run_ratio']} × ({s['dry_run_s']} s)",
            "≤ 3.0 ×",
            s["dry_run_ratio"] <= 3.0,
        ),
        (
            f"Claim, {q['sqlite']['large_queue']:,} vs {q['sqlite']['small_queue']:,} "
            "queued (SQLite)",
            f"{q['sqlite']['ratio']} × ({q['sqlite']['claim_large_ms']} ms vs "
            f"{q['sqlite']['claim_small_ms']} ms)",
            "≤ 1.5 ×",
            q["sqlite"]["ratio"] <= 1.5,
        ),
        *_postgresql_rows(pg),
        (
            "Idle CPU",
            f"{i['cpu_percent_of_one_core']} % of a core over {i['seconds']} s",
            "≤ 1 %",
            i["cpu_percent_of_one_core"] <= 1.0,
        ),
        ("Idle RSS", f"{i['rss_mb']} MB", "≤ 80 MB", i["rss_mb"] <= 80),
    ]
    postgres = "" if "skipped" in pg else f", PostgreSQL {pg['version'].split()[0]}"
    lines = [
        "# crosspost benchmark results",
        "",
        f"Measured {m['date']} on {m['cpu']} ({m['cores']} cores, {m['memory_gb']} GB, "
        f"load average {m.get('load_average', '?')} at the start), Python {m['python']}, "
        f"SQLite {m['sqlite']}{postgres}, crosspost {m['crosspost']}"
        + (" — **smoke sizes, not the targets' sizes**" if results["smoke"] else "")
        + (
            ""
            if results.get("rate_limit_headers", True)
            else " — **the fake platform sent no rate-limit headers**"
        )
        + ".",
        "",
        "| scenario | measured | target | |",
        "|---|---|---|---|",
        *[f"| {a} | {b} | {c} | {verdict(d)} |" for a, b, c, d in rows],
        "",
        "Throughput: the drain time of `daemon --once` (start-up and shutdown subtracted) "
        "against a bare `httpx.AsyncClient` loop with the same requests and concurrency, "
        "in rounds (each a fresh floor, database and daemon); the row gives the round with "
        "the median ratio and lists every round's. CPU is the daemon's CPU seconds against "
        "the floor's, the figure the neighbours' load moves least.",
        "",
        "## Claim query plan (SQLite, large queue)",
        "",
        "The claim's own statement (one search of the due index per account), "
        "`EXPLAIN QUERY PLAN`.",
        "",
        "```",
        *_fold_branches(q["sqlite"]["plan"]),
        "```",
        "",
    ]
    if "skipped" not in pg:
        lines += [
            f"## Claim query plan (PostgreSQL, {pg['queue']['large_queue']:,} queued)",
            "",
            f"The claim's own statement, `EXPLAIN (ANALYZE)` in a rolled-back transaction. "
            f"Server: {pg['server']}.",
            "",
            "```",
            *pg["queue"]["plan_large"],
            "```",
            "",
        ]
    lines += [
        "Raw figures: `latest.json` beside this file. Analysis, and what the missed "
        "targets need: `bench/README.md`.",
        "",
    ]
    return "\n".join(lines)


def _postgresql_or_why_not(
    sizes: Sizes, url: str | None, *, durable: bool, steps: tuple[str, ...] | None = None
) -> dict[str, Any]:
    if not url and pgcluster.find_pg_bin() is None:
        return {
            "skipped": "PostgreSQL is not installed (apt-get install postgresql) and "
            "CROSSPOST_BENCH_PG_URL is not set"
        }
    return postgresql(sizes, url, durable=durable, steps=steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes for CI")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--only",
        nargs="*",
        help="run only these scenarios: startup queue idle lateness throughput postgresql, "
        "or pg-throughput (PostgreSQL's throughput alone, without the million-row claim "
        "and the scale-out runs)",
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("CROSSPOST_BENCH_PG_URL"),
        help="a PostgreSQL server whose user may CREATE DATABASE (default: a throw-away "
        "cluster of the installed PostgreSQL)",
    )
    parser.add_argument(
        "--no-rate-limit-headers",
        action="store_true",
        help="the fake platform answers without Mastodon's X-RateLimit-* headers, so the "
        "daemon keeps no budget (to measure what keeping it costs)",
    )
    args = parser.parse_args()
    sizes = SMOKE if args.smoke else Sizes()
    if args.no_rate_limit_headers:
        FAKE_OPTIONS.append("--no-rate-limit-headers")
    scenarios: dict[str, Callable[[], dict[str, Any]]] = {
        "startup": lambda: startup(sizes),
        "queue": lambda: queue_size(sizes),
        "idle": lambda: idle(sizes),
        "lateness": lambda: lateness(sizes),
        "throughput": lambda: throughput(sizes),
        "postgresql": lambda: _postgresql_or_why_not(sizes, args.pg_url, durable=not args.smoke),
    }
    #: parts of a scenario, run only when named in --only (not part of the report)
    extra: dict[str, Callable[[], dict[str, Any]]] = {
        "pg-throughput": lambda: _postgresql_or_why_not(
            sizes, args.pg_url, durable=not args.smoke, steps=("throughput",)
        ),
    }
    results: dict[str, Any] = {
        "machine": machine(),
        "smoke": args.smoke,
        "rate_limit_headers": not args.no_rate_limit_headers,
    }
    for name, run in [*scenarios.items(), *extra.items()]:
        if (args.only and name not in args.only) or (name in extra and not args.only):
            continue
        print(f"bench: {name} …", file=sys.stderr, flush=True)
        results[name] = run()
        print(f"bench: {name}: {json.dumps(results[name])[:300]}", file=sys.stderr, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if all(k in results for k in scenarios):
        (args.out / "latest.md").write_text(markdown(results), encoding="utf-8")
    print(f"bench: wrote {args.out}/latest.json", file=sys.stderr)


if __name__ == "__main__":
    main()
