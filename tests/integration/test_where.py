"""Scenarios I for real on Debian 12 and 13 (amd64): location, storage, filesystem, readonly, tmpfs-goroot.

One CLI run drives every variant of the five scenarios on both releases; the tests assert on the
observations each cell recorded, and that the loop mounts, volumes, containers and committed images
the cells created are gone afterwards.
"""

from __future__ import annotations

import json
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
SCENARIOS = ("location:*", "storage:*", "filesystem:*", "readonly:*", "tmpfs-goroot")


@pytest.fixture(scope="module")
def where(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]]:
    reports = tmp_path_factory.mktemp("reports-where")
    selects = [a for d in DISTROS for s in SCENARIOS for a in ("--select", f"{d}/amd64/docker/go1.22/{s}")]
    proc = subprocess.run([sys.executable, "-m", "runner", "run", "--reports", str(reports), "-q", "-n", "2",
                           "--run-id", RUN_ID, *selects], cwd=ROOT, capture_output=True, text=True, timeout=3600)
    print(proc.stdout[-6000:], proc.stderr[-3000:], sep="\n")
    data = json.loads((reports / "runs" / RUN_ID / "results.json").read_text())
    return reports, proc, {c["id"]: c for c in data["cells"]}


def cells(where: Any, scenario: str) -> list[dict[str, Any]]:
    found = [c for c in where[2].values() if c["cell"]["scenario"] == scenario]
    assert {c["cell"]["distro"] for c in found} == set(DISTROS), f"{scenario}: not run on both releases"
    return found


def test_every_variant_ran_and_passed(where: Any) -> None:
    _, proc, results = where
    bad = {k: f"{c['status']}: {c['reason']}" for k, c in results.items() if c["status"] != "pass"}
    assert not bad, bad
    assert proc.returncode == 0
    assert len(results) == 2 * (7 + 6 + 3 + 3 + 1)


def test_location_records_go_s_own_words(where: Any) -> None:
    for c in cells(where, "location"):
        o = c["observations"]
        assert isinstance(o["exit_code"], int)
        if o["exit_code"] != 0:
            assert o["stderr_first_line"], f"a failing case must record Go's words: {o}"
        variant = c["cell"]["variant"]
        if variant == "gocache-absolute":
            assert o["exit_code"] == 0 and o["go_env_gocache"] == "/tmp/gcm/abs-cache" and o["compiled"] > 10
        if variant == "gocache-off":
            assert o["exit_code"] != 0 and "GOCACHE=off" in o["stderr_first_line"]
        if variant == "uid-home-root":
            assert o["go_env_gocache"] == "/.cache/go-build" and "permission denied" in o["stderr_first_line"]


def test_storage_warm_hits_and_persistence(where: Any) -> None:
    for c in cells(where, "storage"):
        o, backend = c["observations"], c["cell"]["variant"]
        assert o["warm"]["compiled"] == 0, (c["id"], o["warm"])
        assert o["cold"]["compiled"] > 10
        if backend == "tmpfs":
            assert o["fs_type"] == "tmpfs"
            assert o["restart"]["survived"] is False and o["recreate"]["survived"] is False
            assert o["recreate"]["compiled"] > 10
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


def test_readonly_uses_hits_and_records_the_exit(where: Any) -> None:
    for c in cells(where, "readonly"):
        ro = c["observations"]["readonly"]
        assert ro["compiled"] == 0
        assert isinstance(ro["exit_code"], int)
        if ro["exit_code"] != 0:
            assert ro["stderr_first_line"], "a failing read-only build must say why"
    fresh = [c for c in cells(where, "readonly") if c["cell"]["variant"] == "fresh"]
    assert all(c["observations"]["trim_txt_seen"].isdigit() for c in fresh)


def test_tmpfs_goroot_measures_ratios_with_spread(where: Any) -> None:
    for c in cells(where, "tmpfs-goroot"):
        o = c["observations"]
        assert o["reps"] >= 5 and o["fs"]["tmpfs"] == "tmpfs"
        for placement in o["placements"].values():
            assert len(placement["runs"]) == o["reps"] and min(placement["runs"]) > 0
        assert set(o["ratio_vs_disk"]) == {"goroot-tmpfs/gocache-disk", "goroot-disk/gocache-tmpfs",
                                           "goroot-tmpfs/gocache-tmpfs"}
        for r in o["ratio_vs_disk"].values():
            assert 0 < r["min"] <= r["median"] <= r["max"]


def test_detail_tables_are_rendered(where: Any) -> None:
    md = (where[0] / "matrix.md").read_text()
    for heading in ("### `location`", "### `storage`", "### `filesystem`", "### `readonly`", "### `tmpfs-goroot`"):
        assert heading in md
    assert "build cache is disabled by GOCACHE=off" in md


def test_nothing_left_behind(where: Any, docker_client: docker.DockerClient) -> None:
    reports = where[0]
    mounts = Path("/proc/self/mounts").read_text()
    assert str(reports) not in mounts, "a loop filesystem is still mounted"
    assert not list(reports.rglob("*.img")), "a loop image file was left"
    client = docker_client
    label = f"{LABEL_RUN}={RUN_ID}"
    assert client.containers.list(all=True, filters={"label": label}) == []
    assert client.volumes.list(filters={"label": label}) == []
    assert client.images.list(filters={"label": label}) == []
