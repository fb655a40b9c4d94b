"""filesystem: it builds `wide` as a library, records how the 3 concurrent builds raced, and its parity() is what
decides it whatever the workload."""

from __future__ import annotations

from typing import Any

from runner.model import Status
from runner.scenarios import JobContext
from runner.scenarios.storage import GOCACHE, Filesystem
from tests.unit.test_scenarios import cell

WIDE = JobContext(build_timeout=60, workload="wide")
SMALL = JobContext(build_timeout=60)


def build(name: str, pkgs: list[str], ok: bool = True) -> dict[str, Any]:
    return {"name": name, "kind": "exec", "ok": ok, "exit_code": 0 if ok else 1, "wall_sec": 1.0,
            "compiled": pkgs, "stderr": "" if ok else "go: boom",
            "after": {GOCACHE: {"exists": True, "bytes": 10, "files": 3}}}


def probes(n: int, concurrent: list[list[str]], warm: int = 0, fail: int = -1) -> dict[str, Any]:
    pkgs = [f"p{i}" for i in range(n)]
    return {"main": {"steps": [
        {"name": "fs", "ok": True, "fs_type": "xfs"},
        {"name": "flock", "ok": True, "flock": {"second_blocked": True, "acquired_after_release": True}},
        build("cold", pkgs), build("warm", pkgs[:warm]),
        {"name": "concurrent", "ok": fail < 0, "wall_sec": 3.0,
         "parallel": [build(f"cold-{i}", c, ok=i != fail) for i, c in enumerate(concurrent)]},
        build("after-concurrent", [])]}}


def test_builds_wide_without_an_output_file() -> None:
    assert Filesystem.workload == "wide"
    (ph,) = Filesystem().phases(cell("debian-12/amd64/docker/go1.22/filesystem:xfs"), WIDE)
    assert next(s for s in ph.steps if s["name"] == "copy-src")["path"].endswith("/workloads/wide")
    par = next(s for s in ph.steps if s["name"] == "concurrent")["steps"]
    assert [s["argv"] for s in par] == [["go", "build", "-v", "."]] * 3
    (full,) = Filesystem().phases(cell("debian-12/amd64/docker/go1.22/filesystem:xfs"), SMALL)
    assert next(s for s in full.steps if s["name"] == "cold")["argv"][:4] == ["go", "build", "-v", "-o"]


def test_parity_is_equal_for_workloads_that_decide_alike_and_records_the_race() -> None:
    c = cell("debian-12/amd64/docker/go1.22/filesystem:xfs")
    wide = Filesystem().evaluate(c, probes(122, [["p1", "p2"], ["p2", "p3"], ["p2"]]), WIDE)
    small = Filesystem().evaluate(c, probes(56, [["a", "b"], ["b"], ["c"]]), SMALL)
    assert wide.status is small.status is Status.PASS
    assert wide.observations["concurrent"]["raced_packages"] == 1
    assert wide.observations["concurrent"]["distinct_packages"] == 3
    assert Filesystem.parity(wide.observations) == Filesystem.parity(small.observations)
    alone = Filesystem().evaluate(c, probes(56, [["a"], ["b"], ["c"]]), SMALL)  # nothing compiled twice
    assert Filesystem.parity(alone.observations)["concurrent_raced"] is False
    failed = Filesystem().evaluate(c, probes(56, [["a"], ["a"], ["c"]], fail=1), SMALL)
    assert failed.status is Status.FAIL
    assert Filesystem.parity(failed.observations) != Filesystem.parity(small.observations)
