"""The benchmark harness runs end to end at tiny sizes, so it cannot rot.

Targets are not checked here (timed tests on a shared machine would be noise):
they are read in bench/results/latest.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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
    for scenario in ("machine", "startup", "queue", "idle", "lateness", "throughput"):
        assert scenario in results
    assert results["throughput"]["requests_seen"] == 2 * results["throughput"]["deliveries"]
    assert results["lateness"]["published"] == results["lateness"]["posts"]
    assert "ix_deliveries_due" in " ".join(results["queue"]["sqlite"]["plan"])
    report = (tmp_path / "latest.md").read_text()
    assert "| scenario | measured | target |" in report
