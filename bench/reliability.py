"""The reliability report (issue 4): run the long reliability suites and write their figures.

    python bench/reliability.py            # long run, writes bench/results/reliability.{md,json}
    python bench/reliability.py --quick    # the CI sizes (to try the report), same output

It runs ``pytest tests/reliability`` with ``CROSSPOST_RELIABILITY=full`` (300 posts
per account and at least 25 SIGKILLs per crash seed; 2 500 generated cases per
bad-input kind; every registered platform) and collects the figures the suites
record through ``CROSSPOST_RELIABILITY_FIGURES``. The exit code is non-zero when
a test failed or a figure that must be 0 (duplicates, lost, tracebacks) is not.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run_suites(quick: bool, extra: list[str]) -> tuple[int, dict[str, Any], str, float]:
    """pytest over tests/reliability; its exit code, the figures, the summary, the seconds."""
    with tempfile.TemporaryDirectory(prefix="crosspost-reliability-") as tmp:
        figures_file = Path(tmp) / "figures.json"
        env = dict(os.environ)
        env["CROSSPOST_RELIABILITY_FIGURES"] = str(figures_file)
        if quick:
            env.pop("CROSSPOST_RELIABILITY", None)
        else:
            env["CROSSPOST_RELIABILITY"] = "full"
        started = time.monotonic()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "tests/reliability",
                "-q",
                "-rfExX",
                "-p",
                "no:cacheprovider",
                "-o",
                "timeout=3600",
                *extra,
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.monotonic() - started
        figures = json.loads(figures_file.read_text()) if figures_file.exists() else {}
    summary = [line for line in result.stdout.splitlines() if line.strip()]
    tail = "\n".join(summary[-25:])
    sys.stdout.write(result.stdout[-20000:])
    sys.stderr.write(result.stderr[-5000:])
    return result.returncode, figures, tail, seconds


#: the crash campaigns' figure prefixes (tests/reliability/test_crash.py), as the report names them
CAMPAIGNS = {
    "crash": "SQLite, one daemon",
    "crash_other_platforms": "SQLite, one daemon, the other platforms",
    "crash_postgresql": "PostgreSQL, a second daemon running throughout",
}


def headline(figures: dict[str, Any]) -> dict[str, Any]:
    """The figures issue 4 asks for, from what the suites recorded."""
    faults: dict[str, int] = {}
    sources = (*(f"{p}.faults_injected" for p in CAMPAIGNS), "faults.injected")
    for key in (*sources, "secrets.faults_echoing_the_token"):
        for kind, n in figures.get(key, {}).items():
            name = kind
            if key == "secrets.faults_echoing_the_token":
                name = f"failures echoing the token ({kind})"
            faults[name] = faults.get(name, 0) + n
    for kind, n in figures.get("storage_faults", {}).items():
        faults[f"storage: {kind}"] = faults.get(f"storage: {kind}", 0) + n
    bad = {
        kind: figures.get(f"bad_input.{kind}.cases", 0)
        for kind in ("post_files", "command_lines", "config_files")
    }

    def crash(name: str) -> int:
        """A figure summed over every crash campaign (see CAMPAIGNS)."""
        return sum(int(figures.get(f"{prefix}.{name}", 0)) for prefix in CAMPAIGNS)

    return {
        "kills_survived": crash("kills"),
        "deliveries": crash("deliveries"),
        "published": crash("published"),
        "duplicates": crash("duplicates") + figures.get("concurrency.duplicates", 0),
        "lost": crash("lost") + figures.get("concurrency.lost", 0),
        "stuck": crash("stuck"),
        "unknown": crash("unknown"),
        "faults_injected": dict(sorted(faults.items())),
        "bad_inputs_tried": sum(bad.values()),
        "bad_inputs_by_kind": bad,
        "tracebacks": figures.get("tracebacks", 0) + crash("tracebacks"),
    }


def machine() -> dict[str, Any]:
    import crosspost

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
        check=False,
    ).stdout.strip()  # fmt: skip
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit or None,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "crosspost": crosspost.__version__,
    }


def markdown(report: dict[str, Any]) -> str:
    h, m, f = report["headline"], report["machine"], report["figures"]
    must_be_zero = {"duplicates", "lost", "stuck", "tracebacks"}
    rows = [
        ("kills survived (SIGKILL, then restart)", h["kills_survived"]),
        ("deliveries in the crash campaigns", h["deliveries"]),
        ("… published exactly once", h["published"]),
        ("duplicates (must be 0)", h["duplicates"]),
        ("lost (must be 0)", h["lost"]),
        ("stuck in publishing/waiting (must be 0)", h["stuck"]),
        ("unknown (only where the platform cannot tell; listed by status)", h["unknown"]),
        ("bad inputs tried", h["bad_inputs_tried"]),
        ("tracebacks (must be 0)", h["tracebacks"]),
    ]
    lines = [
        "# crosspost reliability report",
        "",
        f"{m['date']} · commit {m['commit']} · crosspost {m['crosspost']} · Python "
        f"{m['python']} · SQLite {m['sqlite']} · {m['cores']} cores · "
        f"{'CI sizes (--quick)' if report['quick'] else 'long run'} · "
        f"{report['seconds']:.0f} s · tests: **{'passed' if report['passed'] else 'FAILED'}**",
        "",
        "Written by `make reliability` (`bench/reliability.py`), which runs `tests/reliability` "
        "with `CROSSPOST_RELIABILITY=full`.",
        "",
        "| figure | value |",
        "|---|---:|",
        *(
            f"| {name} | {'**' if key_bad(name, value, must_be_zero) else ''}{value}"
            f"{'**' if key_bad(name, value, must_be_zero) else ''} |"
            for name, value in rows
        ),
        "",
        "## Faults injected, by kind",
        "",
        "| fault | count |",
        "|---|---:|",
        *(f"| {kind} | {n} |" for kind, n in h["faults_injected"].items()),
        "",
        "## Bad inputs, by kind",
        "",
        "| kind | generated cases | refused (exit 2) | accepted | also through the installed "
        "command |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {kind.replace('_', ' ')} | {f.get(f'bad_input.{kind}.cases', 0)} | "
            f"{f.get(f'bad_input.{kind}.refused', 0)} | {f.get(f'bad_input.{kind}.accepted', 0)} | "
            f"{f.get(f'bad_input.{kind}.through_installed_command', 0)} |"
            for kind in ("post_files", "command_lines", "config_files")
        ),
        "",
        "## Crash campaigns",
        "",
        "| campaign | seed | platforms | posts | kills | deliveries | duplicates | lost | "
        "stuck | unknown | seconds |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {CAMPAIGNS[key.split('.')[0]]} | {c['seed']} | {', '.join(c['platforms'])} | "
            f"{c['posts']} | {c['kills']} | {c['deliveries']} | {c['duplicates']} | "
            f"{c['lost']} | {c['stuck']} | {c['unknown']} | {c['seconds']} |"
            for key, c in sorted(f.items())
            if key.split(".")[0] in CAMPAIGNS and ".seed_" in key
        ),
        "",
        "The headline figures add up every campaign: Mastodon, Bluesky (the real PDS) and "
        "Telegram with 300 posts each and 30 kills per seed (issue 4); the other platforms "
        "(seed 101); and a shared PostgreSQL queue where a second daemon runs throughout and "
        "finishes alone after the last kill (seed 7). What each figure means: "
        "`docs/reliability.md`.",
        "",
        "## Other measurements",
        "",
        *(
            f"- `{key}`: {json.dumps(value, sort_keys=True)}"
            for key, value in sorted(f.items())
            if key.startswith(("faults.", "concurrency.", "secrets."))
        ),
        "",
        "## pytest summary",
        "",
        "```",
        report["summary"],
        "```",
        "",
    ]
    return "\n".join(lines)


def key_bad(name: str, value: Any, must_be_zero: set[str]) -> bool:
    return any(word in name for word in must_be_zero) and value != 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="the CI sizes")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("pytest_args", nargs="*", help="passed on to pytest (e.g. -k crash)")
    args = parser.parse_args()
    code, figures, summary, seconds = run_suites(args.quick, args.pytest_args)
    report = {
        "machine": machine(),
        "quick": args.quick,
        "passed": code == 0,
        "seconds": round(seconds),
        "headline": headline(figures),
        "figures": figures,
        "summary": summary,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "reliability.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    (args.out / "reliability.md").write_text(markdown(report), encoding="utf-8")
    h = report["headline"]
    print(f"reliability: wrote {args.out}/reliability.md: {json.dumps(h)}", file=sys.stderr)
    zero = h["duplicates"] == h["lost"] == h["stuck"] == h["tracebacks"] == 0
    return 0 if code == 0 and zero else 1


if __name__ == "__main__":
    raise SystemExit(main())
