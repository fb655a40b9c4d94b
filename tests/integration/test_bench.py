"""`bench --reps 1` for real: the output's schema, and every figure a positive measured number or an
explicit n/a with its reason. No thresholds: goals are printed, not asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_bench_reps_1(tmp_path: Path) -> None:
    # --skip-row: the row and tmpfs-goroot's spread run a whole row of cells (minutes); bench.md documents them.
    proc = subprocess.run([sys.executable, "-m", "runner", "bench", "--reps", "1", "--skip-qemu", "--skip-row",
                           "--reports", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads((tmp_path / "bench.json").read_text())
    assert data["schema_version"] == 1 and data["reps"] == 1
    assert data["host"]["engine"]["engine"] == "docker" and data["commands"]
    names = {f["name"] for f in data["figures"]}
    for wanted in ("runner overhead per cell", "runner cell wall ÷ bare loop wall (cold + warm)",
                   "container tax, cold: in-container build ÷ host build",
                   "cached smoke rerun: provisioning ÷ total wall",
                   "-n 2 wall ÷ -n 1 wall, 16 short cells", "plan of a synthetic 10,000-cell matrix",
                   "render 10,000 results to Markdown"):
        assert wanted in names
    for f in data["figures"]:
        if f["status"] == "n/a":
            assert f["reason"], f
            continue
        assert f["status"] == "measured" and f["reps"] == len(f["values"]) >= 1
        assert f["min"] <= f["median"] <= f["max"]
        # Overhead can legitimately be tiny, never negative; everything else is a positive time or ratio.
        assert all(v > 0 for v in f["values"]), f
    qemu = next(f for f in data["figures"] if f["name"].startswith("QEMU factor"))
    assert qemu["status"] == "n/a" and "--skip-qemu" in qemu["reason"]
    assert "| figure" in (tmp_path / "bench.md").read_text()
