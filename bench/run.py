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
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
CROSSPOST = str(Path(PY).with_name("crosspost"))
SITE = "https://www.zv-staedtedreieck.de"
TOKEN = "bench-token"  # noqa: S105 - the fake platform accepts any token


@dataclass
class Sizes:
    deliveries: int = 5000
    accounts: int = 20
    latency: float = 0.05
    lateness_posts: int = 200
    lateness_spread: float = 20.0
    startup_runs: int = 10
    queue_small: int = 1000
    queue_large: int = 100_000
    idle_seconds: float = 60.0


SMOKE = Sizes(
    deliveries=60,
    accounts=3,
    latency=0.01,
    lateness_posts=6,
    lateness_spread=1.5,
    startup_runs=2,
    queue_small=50,
    queue_large=500,
    idle_seconds=2.0,
)


# -- plumbing ---------------------------------------------------------------------------
@contextmanager
def fake_platform(latency: float) -> Iterator[str]:
    process = subprocess.Popen(
        [PY, str(ROOT / "bench" / "fakeplatform.py"), "--latency", str(latency)],
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

    return [tuple(a) for a in httpx.get(f"{url}/__stats", timeout=30).json()["arrivals"]]  # type: ignore[misc]


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


def throughput(sizes: Sizes, db_url: str | None = None) -> dict[str, Any]:
    per_account = sizes.deliveries // sizes.accounts
    concurrency = 4  # daemon.concurrency's default, per account
    with tempfile.TemporaryDirectory() as tmp, fake_platform(sizes.latency) as url:
        folder = Path(tmp)
        floor = asyncio.run(_floor(url, sizes.accounts, per_account, concurrency))
        config = write_config(folder, url, sizes.accounts, db_url)
        env = env_for(config)
        cli(env, "db", "upgrade")
        started = time.perf_counter()
        cli(env, "daemon", "--once")  # empty queue: start-up and shutdown only
        overhead = time.perf_counter() - started
        now = datetime.now(UTC)
        fill(config, [(f"post {n}", now) for n in range(per_account)], sizes.accounts)
        started = time.perf_counter()
        cli(env, "daemon", "--once")
        total = time.perf_counter() - started
        arrivals = [a for a, _ in stats(url) if True]
    drain = total - overhead
    return {
        "deliveries": per_account * sizes.accounts,
        "accounts": sizes.accounts,
        "latency_s": sizes.latency,
        "concurrency_per_account": concurrency,
        "floor_s": round(floor, 3),
        "daemon_total_s": round(total, 3),
        "daemon_startup_shutdown_s": round(overhead, 3),
        "drain_s": round(drain, 3),
        "ratio": round(drain / floor, 3),
        "target": 1.25,
        "requests_seen": len(arrivals),
    }


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


def _median_run(cmd: list[str], runs: int, env: dict[str, str]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def startup(sizes: Sizes) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = write_config(folder, "http://127.0.0.1:9", 1)
        env = env_for(config)
        cli(env, "db", "upgrade")
        post = folder / "post.md"
        post.write_text(f'+++\ntitle = "Bench"\nlink = "{SITE}/b"\n+++\nHallo Welt.\n')
        base = _median_run([PY, "-c", "pass"], sizes.startup_runs, env)
        help_ = _median_run([CROSSPOST, "--help"], sizes.startup_runs, env)
        dry = _median_run([CROSSPOST, "enqueue", "--dry-run", str(post)], sizes.startup_runs, env)
    return {
        "python_pass_s": round(base, 4),
        "help_s": round(help_, 4),
        "dry_run_s": round(dry, 4),
        "help_ratio": round(help_ / base, 2),
        "dry_run_ratio": round(dry / base, 2),
        "target_help_ratio": 2.0,
        "target_dry_run_ratio": 3.0,
    }


def _claim_cost(url: str, queued: int, accounts: int) -> tuple[float, list[str]]:
    from crosspost.store.migrate import upgrade
    from crosspost.store.sql import SqlStore

    store = SqlStore(url, create=True)
    upgrade(store.engine)
    now = datetime.now(UTC)
    with sqlite3.connect(url.split("///", 1)[1]) as conn:
        stamp = now.replace(tzinfo=None).isoformat(sep=" ")
        conn.executemany(
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
                (now - timedelta(seconds=queued - i)).replace(tzinfo=None).isoformat(sep=" "),
                "t",
                f"k{i}",
                now.replace(tzinfo=None).isoformat(sep=" "),
            )
            for i in range(queued)
        )
        conn.executemany(
            "INSERT INTO deliveries (post_id, account, platform, state, due_at, text,"
            " idempotency_key, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.execute("ANALYZE")
    capacity = {f"m{i:02d}": 4 for i in range(accounts)}
    times = []
    for n in range(15):
        started = time.perf_counter()
        store.claim_due(
            f"w{n}",
            now=now,
            lease=timedelta(seconds=60),
            capacity=capacity,
            reconcilable=["mastodon"],
        )
        times.append(time.perf_counter() - started)
    plans = []
    with store.engine.connect() as conn:
        from sqlalchemy import select

        from crosspost.store.sql import _due, deliveries  # type: ignore[attr-defined]

        query = (
            select(_due.c.id)
            .where(
                store._due_condition(["mastodon"]), _due.c.due_at <= now, _due.c.account == "m00"
            )
            .order_by(_due.c.due_at)
            .limit(4)
        )
        compiled = query.compile(store.engine, compile_kwargs={"literal_binds": True})
        plans = [
            " ".join(str(c) for c in r)
            for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")
        ]
        del deliveries
    store.close()
    return statistics.median(times), plans


def queue_size(sizes: Sizes) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        small, _plan_small = _claim_cost(f"sqlite:///{tmp}/small.db", sizes.queue_small, 20)
        large, plan_large = _claim_cost(f"sqlite:///{tmp}/large.db", sizes.queue_large, 20)
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
    }


def verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("met" if ok else "**missed**")


def markdown(results: dict[str, Any]) -> str:
    m, t, la, s, q, i = (
        results[k] for k in ("machine", "throughput", "lateness", "startup", "queue", "idle")
    )
    rows = [
        (
            "Throughput vs httpx floor (SQLite)",
            f"{t['ratio']} × ({t['drain_s']} s vs {t['floor_s']} s)",
            "≤ 1.25 ×",
            t["ratio"] <= 1.25,
        ),
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
            "Claim, large vs small queue (SQLite)",
            f"{q['sqlite']['ratio']} × ({q['sqlite']['claim_large_ms']} ms vs "
            f"{q['sqlite']['claim_small_ms']} ms)",
            "≤ 1.5 ×",
            q["sqlite"]["ratio"] <= 1.5,
        ),
        (
            "Idle CPU",
            f"{i['cpu_percent_of_one_core']} % of a core over {i['seconds']} s",
            "≤ 1 %",
            i["cpu_percent_of_one_core"] <= 1.0,
        ),
        ("Idle RSS", f"{i['rss_mb']} MB", "≤ 80 MB", i["rss_mb"] <= 80),
    ]
    lines = [
        "# crosspost benchmark results",
        "",
        f"Measured {m['date']} on {m['cpu']} ({m['cores']} cores, {m['memory_gb']} GB), "
        f"Python {m['python']}, SQLite {m['sqlite']}, crosspost {m['crosspost']}"
        + (" — **smoke sizes, not the targets' sizes**" if results["smoke"] else "")
        + ".",
        "",
        "| scenario | measured | target | |",
        "|---|---|---|---|",
        *[f"| {a} | {b} | {c} | {verdict(d)} |" for a, b, c, d in rows],
        "",
        "## Claim query plan (SQLite, large queue)",
        "",
        "```",
        *q["sqlite"]["plan"],
        "```",
        "",
        "Raw figures: `latest.json` beside this file. What the missed targets need: "
        "`bench/README.md`.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes for CI")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--only", nargs="*", help="run only these scenarios")
    args = parser.parse_args()
    sizes = SMOKE if args.smoke else Sizes()
    scenarios = {
        "startup": lambda: startup(sizes),
        "queue": lambda: queue_size(sizes),
        "idle": lambda: idle(sizes),
        "lateness": lambda: lateness(sizes),
        "throughput": lambda: throughput(sizes),
    }
    results: dict[str, Any] = {"machine": machine(), "smoke": args.smoke}
    for name, run in scenarios.items():
        if args.only and name not in args.only:
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
