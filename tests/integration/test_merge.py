"""Sharding for real: the same selection run whole and as two shards; `merge` of the shards must give
the same table and the same status per cell as the unsharded run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runner.render.markdown import compat_table
from runner.results import load_run

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# Cheap cells with three outcomes: measured (Debian), unavailable without a registry (Ubuntu), n/a (Arch arm64).
SELECT = ["debian-1[23]/amd64/docker/go1.22/env", "ubuntu-24.04/amd64/docker/go1.22/env",
          "arch/arm64/docker/go1.22/env"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "runner", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=1200)
    print(proc.stdout[-3000:], proc.stderr[-2000:], sep="\n")
    return proc


def test_merged_shards_equal_the_unsharded_run(tmp_path: Path) -> None:
    selects = [a for s in SELECT for a in ("--select", s)]
    whole = cli("run", "--reports", str(tmp_path / "whole"), "-q", "-n", "0", "--run-id", "whole", *selects)
    assert whole.returncode == 0, whole.stdout[-2000:]
    for i in (1, 2):
        shard = cli("run", "--reports", str(tmp_path / f"shard{i}"), "-q", "-n", "0", "--run-id", f"shard{i}",
                    "--shard", f"{i}/2", *selects)
        assert shard.returncode == 0, shard.stdout[-2000:]
        assert json.loads((tmp_path / f"shard{i}" / "runs" / f"shard{i}" / "run.json").read_text())[
            "choices"]["shard"] == f"{i}/2"
    merged = cli("merge", str(tmp_path / "shard1"), str(tmp_path / "shard2" / "runs" / "shard2"),
                 "--reports", str(tmp_path / "merged"))
    assert merged.returncode == 0, merged.stderr
    one = load_run(tmp_path / "whole" / "runs" / "whole")
    two = load_run(tmp_path / "merged" / "runs" / "merged")
    assert {c.id: c.status for c in two.cells} == {c.id: c.status for c in one.cells}
    assert len(one.cells) == 4 and {c.status.value for c in one.cells} == {"pass", "unavailable", "n/a"}
    assert compat_table(two.cells) == compat_table(one.cells)
    assert compat_table(one.cells) in merged.stdout, "merge prints the joined table"
    assert [s["run_id"] for s in two.meta["shards"]] == ["shard1", "shard2"] and two.meta["conflicts"] == []
    for name in ("matrix.md", "matrix.html", "junit.xml"):
        assert (tmp_path / "merged" / name).stat().st_size > 0
