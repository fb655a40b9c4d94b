"""multiuser for real on Debian 12 (amd64, go1.22): two uids of group 4242 share GOCACHE and GOMODCACHE
through setgid dirs, under umask 002 and 022.

multiuser is in no profile of matrix.toml, so the run uses a copy of it with one more profile (and the
repository's images/ beside it, where the runner looks for image recipes).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RUN_ID = "it-multiuser"
CELL = "debian-12/amd64/docker/go1.22/multiuser:"


@pytest.fixture(scope="module")
def mu(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    reports = tmp_path_factory.mktemp("reports-multiuser")
    proc = subprocess.run([sys.executable, "-m", "runner", "run", "--reports", str(reports), "-q", "-n", "2",
                           "--run-id", RUN_ID, "--select", CELL + "*"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    print(proc.stdout[-4000:], proc.stderr[-2000:], sep="\n")
    data = json.loads((reports / "runs" / RUN_ID / "results.json").read_text())
    return reports, {c["cell"]["variant"]: c for c in data["cells"]}


def test_both_variants_follow_the_rule(mu: Any) -> None:
    cells = mu[1]
    assert set(cells) == {"umask-002", "umask-022"}
    for c in cells.values():
        assert c["status"] == "pass", c["reason"]
        o = c["observations"]
        assert o["id"]["a"].startswith("uid=1001 gid=4242") and o["id"]["b"].startswith("uid=1002 gid=4242")
        b = o["builds"]
        # multiuser builds the three-package lib workload (runner/workloads/lib): words, internal/format, lib
        assert b["a-cold"]["exit_code"] == 0 and b["a-cold"]["compiled"] == 3
        assert b["a-again"]["exit_code"] == 0 and b["a-again"]["compiled"] == 0
        assert b["b-noindex"]["exit_code"] == 0
        assert o["a_cache_dirs"] == 256
        # Extracted module trees are read-only whatever the umask.
        a_mod = o["modes_end"]["mod"]["1001"]
        assert "2555" in a_mod["d"] and set(a_mod["f"]) >= {"444"}


def test_umask_002_shares_the_cache(mu: Any) -> None:
    o = mu[1]["umask-002"]["observations"]
    b = o["builds"]
    assert all(x["exit_code"] == 0 for x in b.values()), b
    assert b["b-warm"]["compiled"] == 0 and b["b-again"]["compiled"] == 0 and b["b-edit"]["compiled"] >= 1
    assert o["a_cache_dirs_group_writable"] is True
    assert set(o["modes_after_a"]["cache"]["1001"]["d"]) == {"2775"}
    assert set(o["modes_after_a"]["cache"]["1001"]["f"]) == {"664"}
    assert o["b_cache_entries"] > 0 and set(o["modes_end"]["cache"]["1002"]["f"]) == {"664"}
    assert o["first_error"] == ""


def test_umask_022_locks_user_b_out(mu: Any) -> None:
    o = mu[1]["umask-022"]["observations"]
    b = o["builds"]
    assert o["a_cache_dirs_group_writable"] is False
    assert set(o["modes_after_a"]["cache"]["1001"]["d"]) == {"2755"}
    assert set(o["modes_after_a"]["cache"]["1001"]["f"]) == {"644"}
    for name in ("b-warm", "b-edit", "b-again"):
        assert b[name]["exit_code"] != 0
        assert "/shared/cache/" in b[name]["stderr_first_line"] and "permission denied" in b[name]["stderr_first_line"]
    assert b["b-noindex"]["compiled"] >= 1, "without group write B's edited package is never stored"
    assert o["b_cache_entries"] == 0 and "1002" not in o["modes_end"]["cache"]
    assert o["first_error"].startswith("b-warm: open /shared/cache/")


def test_detail_table_is_rendered(mu: Any) -> None:
    md = (mu[0] / "matrix.md").read_text()
    assert "### `multiuser`" in md
    assert "| 022 " in md and "permission denied" in md
