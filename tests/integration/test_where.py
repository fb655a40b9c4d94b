"""Scenarios I for real on Debian 12 and 13 (amd64): location, storage, filesystem, readonly, tmpfs-goroot.

One CLI run drives every variant of the five scenarios on both releases (tmpfs-goroot, a timing cell that
runs alone, on Debian 12 only); the tests assert on the observations each cell recorded, and that the loop
mounts, volumes, containers and committed images the cells created are gone afterwards. A second run builds
three of the cheap-workload cells with the `small` program (GCM_WORKLOAD=small): their decisive
observations must be the same (runner.parity). A third runs Debian 12's location variants each in its own
container (GCM_SHARE_CONTAINERS=0): they must decide as they did sharing one (runner.share).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker
import pytest

from runner.engine import LABEL_RUN

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
RUN_ID = "it-where"
DISTROS = ("debian-12", "debian-13")
SCENARIOS = ("location:*", "storage:*", "filesystem:*", "readonly:*")
PARITY = ("location:uid-home-root", "storage:overlay", "readonly:missing")


def _run(reports: Path, run_id: str, selects: list[str], env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "runner", "run", "--reports", str(reports), "-q", "-n", "2",
                           "--run-id", run_id, *selects], cwd=ROOT, capture_output=True, text=True, timeout=3600,
                          env={**os.environ, **(env or {})})
    print(proc.stdout[-6000:], proc.stderr[-3000:], sep="\n")
    return proc


@pytest.fixture(scope="module")
def where(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]]:
    reports = tmp_path_factory.mktemp("reports-where")
    selects = [a for d in DISTROS for s in SCENARIOS for a in ("--select", f"{d}/amd64/docker/go1.22/{s}")]
    # tmpfs-goroot: the default runs it @go1.27 only
    proc = _run(reports, RUN_ID, [*selects, "--select", "debian-12/amd64/docker/go1.27/tmpfs-goroot"])
    data = json.loads((reports / "runs" / RUN_ID / "results.json").read_text())
    return reports, proc, {c["id"]: c for c in data["cells"]}


def cells(where: Any, scenario: str, distros: tuple[str, ...] = DISTROS) -> list[dict[str, Any]]:
    found = [c for c in where[2].values() if c["cell"]["scenario"] == scenario]
    assert {c["cell"]["distro"] for c in found} == set(distros), f"{scenario}: not run on {distros}"
    return found


def test_every_variant_ran_and_passed(where: Any) -> None:
    _, proc, results = where
    bad = {k: f"{c['status']}: {c['reason']}" for k, c in results.items() if c["status"] != "pass"}
    assert not bad, bad
    assert proc.returncode == 0
    assert len(results) == 2 * (7 + 6 + 3 + 3) + 1


def test_location_records_go_s_own_words(where: Any) -> None:
    for c in cells(where, "location"):
        o = c["observations"]
        assert isinstance(o["exit_code"], int)
        if o["exit_code"] != 0:
            assert o["stderr_first_line"], f"a failing case must record Go's words: {o}"
        variant = c["cell"]["variant"]
        if variant == "gocache-absolute":
            assert o["exit_code"] == 0 and o["go_env_gocache"] == "/tmp/gcm/abs-cache" and o["compiled"] > 0
        if variant == "gocache-off":
            assert o["exit_code"] != 0 and "GOCACHE=off" in o["stderr_first_line"]
        if variant == "uid-home-root":
            assert o["go_env_gocache"] == "/.cache/go-build" and "permission denied" in o["stderr_first_line"]


def test_storage_warm_hits_and_persistence(where: Any) -> None:
    for c in cells(where, "storage"):
        o, backend = c["observations"], c["cell"]["variant"]
        assert o["warm"]["compiled"] == 0, (c["id"], o["warm"])
        # lib compiles gcm.example/words, its internal/format and itself: never the runtime
        assert o["workload"] == "lib" and o["cold"]["compiled"] == 3, o["cold"]
        if backend == "tmpfs":
            assert o["fs_type"] == "tmpfs"
            assert o["restart"]["survived"] is False and o["recreate"]["survived"] is False
            assert o["recreate"]["compiled"] == o["cold"]["compiled"]
        if backend in ("bind", "volume"):
            assert o["restart"]["survived"] is True and o["recreate"]["survived"] is True
        if backend == "overlay":
            assert o["fs_type"] == "overlay"
            assert o["restart"]["survived"] is True and o["recreate"]["survived"] is False
        if backend.startswith("baked"):
            assert o["recreate"]["survived"] is True
            assert o["baked_files_before"] > 0
        if backend == "baked-aged":
            assert o["baked_files_after"] < o["baked_files_before"], "aged entries nobody used should be trimmed"


def test_filesystem_flock_and_concurrency(where: Any) -> None:
    for c in cells(where, "filesystem"):
        o = c["observations"]
        assert o["fs_type"] == c["cell"]["variant"]
        assert o["flock_second_blocked"] is True and o["flock_after_release"] is True
        assert o["concurrent"]["builds"] == 3 and o["concurrent"]["failed"] == 0
        assert o["warm"]["compiled"] == 0 and o["after-concurrent"]["compiled"] == 0
        assert c["observations"]["workload"] == "wide" and o["cold"]["compiled"] > 100  # many entries, no runtime
        assert o["concurrent"]["raced_packages"] > 0, o["concurrent"]


def test_readonly_uses_hits_and_records_the_exit(where: Any) -> None:
    for c in cells(where, "readonly"):
        ro = c["observations"]["readonly"]
        assert ro["compiled"] == 0
        assert isinstance(ro["exit_code"], int)
        if ro["exit_code"] != 0:
            assert ro["stderr_first_line"], "a failing read-only build must say why"
    fresh = [c for c in cells(where, "readonly") if c["cell"]["variant"] == "fresh"]
    assert all(c["observations"]["trim_txt_seen"].isdigit() for c in fresh)


def test_tmpfs_goroot_measures_ratios_with_spread_alone(where: Any) -> None:
    for c in cells(where, "tmpfs-goroot", ("debian-12",)):
        alone = c["timings"]["alone"]
        assert alone["exclusive"] is True and "loadavg_before" in alone and "loadavg_after" in alone
        o = c["observations"]
        assert o["reps"] >= 5 and o["fs"]["tmpfs"] == "tmpfs"
        for placement in o["placements"].values():
            assert len(placement["runs"]) == o["reps"] and min(placement["runs"]) > 0
        assert set(o["ratio_vs_disk"]) == {"goroot-tmpfs/gocache-disk", "goroot-disk/gocache-tmpfs",
                                           "goroot-tmpfs/gocache-tmpfs"}
        for r in o["ratio_vs_disk"].values():
            assert 0 < r["min"] <= r["median"] <= r["max"]


def test_cheap_workload_decides_as_the_program_does(where: Any) -> None:
    """Parity: the same cells with GCM_WORKLOAD=small give the same status and decisive observations."""
    from runner import parity
    from runner.results import load_run

    reports = where[0]
    selects = [a for s in PARITY for a in ("--select", f"debian-12/amd64/docker/go1.22/{s}")]
    proc = _run(reports, f"{RUN_ID}-small", selects, env={"GCM_WORKLOAD": "small"})
    assert proc.returncode == 0, proc.stdout[-3000:]
    both = parity.compare(load_run(reports / "runs" / RUN_ID), load_run(reports / "runs" / f"{RUN_ID}-small"))
    rows = [r for r in both if r.cell.startswith("debian-12/") and r.cell.split("/", 4)[4] in PARITY]
    print(parity.markdown(rows))
    assert len(rows) == len(PARITY) and {r.workloads for r in rows} == {("lib", "small")}
    assert all(r.equal for r in rows), parity.markdown(rows)
    assert all(r.walls[0] is not None and r.walls[1] is not None for r in rows)


def test_location_variants_share_one_container_per_row_and_decide_as_alone(where: Any) -> None:
    """runner.share: each row's 7 location variants ran in one container (one leader, the others took their
    probes), and the same cells run each alone (GCM_SHARE_CONTAINERS=0) give the same statuses and decisive
    observations (runner.parity --alone)."""
    from runner import parity
    from runner.results import load_run

    reports = where[0]
    for d in DISTROS:
        row = [c for c in cells(where, "location") if c["cell"]["distro"] == d]
        shared = [c["observations"].get("shared_container") for c in row]
        assert all(shared) and len({s["leader"] for s in shared}) == 1, shared
        assert all(len(s["members"]) == 7 for s in shared)
        leader = next(c for c in row if c["id"] == shared[0]["leader"])
        assert leader["timings"]["phases"]["main"]["shared"]["members"] == 7
    proc = _run(reports, f"{RUN_ID}-alone", ["--select", "debian-12/amd64/docker/go1.22/location:*"],
                env={"GCM_SHARE_CONTAINERS": "0"})
    assert proc.returncode == 0, proc.stdout[-3000:]
    both = parity.compare(load_run(reports / "runs" / RUN_ID), load_run(reports / "runs" / f"{RUN_ID}-alone"),
                          alone=True)
    rows = [r for r in both if r.cell.startswith("debian-12/") and "/location:" in r.cell]
    print(parity.markdown(rows, alone=True))
    assert len(rows) == 7 and all(r.equal for r in rows), parity.markdown(rows, alone=True)


def test_detail_tables_are_rendered(where: Any) -> None:
    md = (where[0] / "runs" / RUN_ID / "matrix.md").read_text()  # the top-level copy is the newest run's
    for heading in ("### `location`", "### `storage`", "### `filesystem`", "### `readonly`", "### `tmpfs-goroot`"):
        assert heading in md
    assert "build cache is disabled by GOCACHE=off" in md


def test_nothing_left_behind(where: Any, docker_client: docker.DockerClient) -> None:
    reports = where[0]
    mounts = Path("/proc/self/mounts").read_text()
    assert str(reports) not in mounts, "a loop filesystem is still mounted"
    assert not list(reports.rglob("*.img")), "a loop image file was left"
    client = docker_client
    for label in (f"{LABEL_RUN}={RUN_ID}", f"{LABEL_RUN}={RUN_ID}-small"):
        assert client.containers.list(all=True, filters={"label": label}) == []
        assert client.volumes.list(filters={"label": label}) == []
        assert client.images.list(filters={"label": label}) == []
