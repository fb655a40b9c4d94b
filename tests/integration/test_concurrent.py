"""concurrent for real on Debian 12 (amd64, go1.22): N=4 builds at once on one GOCACHE+GOMODCACHE bind mount,
of the `wide` workload (121 packages, no standard library) the scenario declares.

Observations, not outcomes, are asserted where Go's behaviour is a race (which build fails while
`go clean -cache` runs, and how).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runner.scenarios.concurrent import CLEAN_AT

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RUN_ID = "it-concurrent"
CELL = "debian-12/amd64/docker/go1.22/concurrent:{}"
VARIANTS = ("same", "mixed", "containers", "clean-during")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    reports = tmp_path_factory.mktemp("reports-concurrent")
    selects = [a for v in VARIANTS for a in ("--select", CELL.format(v))]
    proc = subprocess.run([sys.executable, "-m", "runner", "run", "--reports", str(reports), "-q", "-n", "2",
                           "--run-id", RUN_ID, *selects],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    print(proc.stdout[-4000:], proc.stderr[-2000:], sep="\n")
    data = json.loads((reports / "runs" / RUN_ID / "results.json").read_text())
    return reports, {c["id"]: c for c in data["cells"]}


def obs(run: Any, variant: str) -> dict[str, Any]:
    c = run[1][CELL.format(variant)]
    o: dict[str, Any] = c["observations"]
    print(variant, c["status"], c["reason"])
    return o


@pytest.mark.parametrize("variant", ["same", "mixed", "containers"])
def test_concurrent_builds_all_succeed_and_fill_the_cache(run: Any, variant: str) -> None:
    c = run[1][CELL.format(variant)]
    o = obs(run, variant)
    assert o["n"] == 4 and len(o["builds"]) == 4
    assert o["failures"] == 0, o["builds"]
    assert o["corruption"] == []
    assert all(b["ok"] and b["exit_code"] == 0 for b in o["builds"])
    assert all(b["compiled"] > 0 for b in o["builds"]), "every build started on an empty cache"
    assert o["warm_compiled"] == 0, o["after"]
    assert all(a["ok"] and a["compiled"] == 0 for a in o["after"].values())
    assert o["cache_files_after"] > 100
    assert o["workload"] == "wide"
    # `containers` runs its builds in four containers at once: their probes overlap, counted once.
    t = c["timings"]
    assert 0 < t["in_container_sec"] <= t["cell_wall_sec"], t
    # Contention, recorded: two or more builds compiled the same packages (their writes raced on the same entries).
    assert o["raced_packages"] > 0 and o["distinct_packages"] >= o["raced_packages"], o
    assert c["status"] == "pass", c["reason"]


def test_mixed_builds_both_workloads(run: Any) -> None:
    o = obs(run, "mixed")
    assert [b["name"] for b in o["builds"]] == ["wide-1", "wide-2", "alt-3", "alt-4"]
    assert set(o["after"]) == {"warm-wide", "warm-alt"}
    # alt shares wide's lower layers and has packages of its own: more distinct packages than wide alone
    assert o["distinct_packages"] > max(b["compiled"] for b in o["builds"][:2]), o


def test_containers_ran_at_the_same_time(run: Any) -> None:
    o = obs(run, "containers")
    assert {b["name"].split("/")[0] for b in o["builds"]} == {"parallel.1", "parallel.2"}
    assert len(o["parallel_sec_each"]) == 2
    # Recorded, then checked: the two containers' parallel steps overlapped for most of their run.
    assert o["containers_overlap_sec"] > 0.5 * min(o["parallel_sec_each"]), o


def test_clean_during_leaves_a_working_cache(run: Any) -> None:
    c = run[1][CELL.format("clean-during")]
    o = obs(run, "clean-during")
    assert o["n"] == 3 and o["clean"]["ran"] and o["clean"]["exit_code"] == 0, o.get("clean")
    assert o["workload"] == "small"  # it keeps the program, whatever the cell's workload
    # The clean waited for the builds' entries, so it removed some they had written (CLEAN_AT or more).
    assert o["clean"]["entries_before"] >= CLEAN_AT, o["clean"]
    assert isinstance(o["builds_running_after_clean"], int)
    for b in o["builds"]:
        print("during clean:", b["name"], b["exit_code"], b["sec"], b["compiled"], repr(b.get("go_error")))
        if not b["ok"]:
            assert b["stderr_first_line"] and b["go_error"], "a failing build must record Go's words"
    assert o["after"]["warm-up"]["ok"]
    assert o["after"]["warm"]["ok"] and o["warm_compiled"] == 0
    assert o["corruption_after"] == []
    assert c["status"] == "pass", c["reason"]


def test_report_has_the_concurrent_table(run: Any) -> None:
    md = (run[0] / "matrix.md").read_text()
    assert "### `concurrent`" in md
    for v in VARIANTS:
        assert f"| {v} " in md
