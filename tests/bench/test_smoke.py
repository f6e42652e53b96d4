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
    for scenario in ("machine", "startup", "queue", "idle", "lateness", "throughput", "postgresql"):
        assert scenario in results
    assert results["throughput"]["requests_seen"] == 2 * results["throughput"]["deliveries"]
    assert results["throughput"]["states_after"]["published"] == results["throughput"]["deliveries"]
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
    assert pg["queue"]["index_scan_on_claim_index"], pg["queue"]["plan_large"]
    assert not pg["queue"]["sequential_scan_on_deliveries"], pg["queue"]["plan_large"]
    for run in (pg["scale_out"]["one"], pg["scale_out"]["three"]):
        assert run["requests_seen"] == run["deliveries"]
        assert run["published"] == run["deliveries"]
    assert "Claim query plan (PostgreSQL" in report
