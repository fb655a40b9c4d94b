"""The guest lab's AppArmor-booted modes for real, in their one shared boot with one toolchain (go1.27): `systemd`
(transient units), `nfs` (an export over loopback) and `apparmor` (Debian's profiles, profiles of ours, podman's
default profile). One `go-cache-matrix run` on the guest engine; the tests assert on what the guest recorded, never
on an outcome written in advance: a unit's HOME and GOCACHE must agree with what Go then did, every NFS step must
have a record, and a build our profile stopped must come with the kernel's DENIED record."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from runner import guest, lab

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TOOLCHAIN = "go1.27"
BUDGET = 3600  # a bake (first time only) + one boot under TCG on a loaded 2-core host


PREFIX = f"debian-12/amd64/podman-selinux/{TOOLCHAIN}/"


@pytest.fixture(scope="module")
def lab_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    tmp = tmp_path_factory.mktemp("lab")
    run_id = "it-lab"
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "runner", "run", "--reports", str(tmp), "-q", "-n", "2",
                           "--run-id", run_id, "--engine", "podman-selinux", "--select", PREFIX + "systemd:*",
                           "--select", PREFIX + "nfs:*", "--select", PREFIX + "apparmor:*"],
                          cwd=ROOT, capture_output=True, text=True, timeout=BUDGET)
    wall = time.monotonic() - t0
    print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
    data = json.loads((tmp / "runs" / run_id / "results.json").read_text())
    cells = {c["id"].removeprefix(PREFIX): c for c in data["cells"]}
    timings = next(iter(cells.values()))["timings"]
    print(f"lab: {wall:.0f}s wall; boot {timings.get('boot_total_sec')}s (job after {timings.get('boot_to_job_sec')}s)")
    return cells, (tmp / "matrix.md").read_text()


def _of(run: tuple[dict[str, Any], str], scenario: str) -> tuple[dict[str, Any], str]:
    cells, md = run
    return {k.split(":", 1)[1]: c for k, c in cells.items() if k.startswith(scenario + ":")}, md


@pytest.fixture(scope="module")
def systemd(lab_run: Any) -> tuple[dict[str, Any], str]:
    return _of(lab_run, "systemd")


@pytest.fixture(scope="module")
def nfs(lab_run: Any) -> tuple[dict[str, Any], str]:
    return _of(lab_run, "nfs")


@pytest.fixture(scope="module")
def apparmor(lab_run: Any) -> tuple[dict[str, Any], str]:
    return _of(lab_run, "apparmor")


def _one_boot(cells: dict[str, Any], mode: str) -> dict[str, Any]:
    for variant, c in cells.items():
        assert c["status"] in ("pass", "fail"), f"{variant}: {c['status']}: {c['reason']}"
    boots = {json.dumps(c["host"]["guest"]["cases_in_boot"]) for c in cells.values()}
    assert len(boots) == 1
    g = next(iter(cells.values()))["host"]["guest"]
    assert g["mode"] == mode and g["boot"] == "apparmor" and "apparmor" in g["lsm"].split(",")
    assert g["accel"] in ("KVM", "TCG") and set(g["modes_in_boot"]) == {"systemd", "nfs", "apparmor"}
    return dict(g)


def test_systemd_units_ran_in_one_boot_and_recorded_what_go_saw(systemd: Any) -> None:
    cells, md = systemd
    assert sorted(cells) == sorted(c.variant for c in lab.CASES["systemd"])
    g = _one_boot(cells, "systemd")
    assert g["systemd"]
    for variant, c in cells.items():
        first = c["observations"]["first"]
        assert first["ran"] and first["unit_rc"] is not None, (variant, first)
        build = first["build"]
        # what Go did agrees with the GOCACHE it reported: no usable GOCACHE, no build
        if build["ok"]:
            assert first["go_env_gocache"].startswith("/"), (variant, first)
        else:
            assert build["stderr"], (variant, first)
    assert cells["dynamic"]["observations"]["first"]["uid"] != "0"
    assert cells["root"]["observations"]["first"]["uid"] == "0"
    assert "%C" in json.dumps(cells["dynamic-cachedir"]["observations"]) or \
        cells["dynamic-cachedir"]["observations"]["setenv_expanded"] is not None
    assert "### `systemd`" in md and "Guest lab" in md


def test_nfs_mounts_and_every_step_recorded(nfs: Any) -> None:
    cells, md = nfs
    assert sorted(cells) == sorted(c.variant for c in lab.CASES["nfs"])
    g = _one_boot(cells, "nfs")
    assert g["nfs"]
    for variant, c in cells.items():
        o = c["observations"]
        assert o["mount"]["rc"] == {"a": "0", "b": "0"}, (variant, o["mount"])
        assert o["mount"]["vers"].startswith("4.2" if variant == "v4.2" else "3"), o["mount"]
        assert all(s["ran"] for s in o["steps"].values()), (variant, o["steps"])
        assert o["flock"]["same"] is True, (variant, o["flock"])  # one view excludes itself everywhere
    assert cells["v3-nolock"]["observations"]["mount"]["lock"] == "nolock"
    assert "### `nfs`" in md


def test_apparmor_builds_and_our_profile_with_its_denials(apparmor: Any) -> None:
    cells, md = apparmor
    assert sorted(cells) == sorted(c.variant for c in lab.CASES["apparmor"])
    g = _one_boot(cells, "apparmor")
    assert g["apparmor"] and int(g["apparmor_profiles"]) >= 1
    for variant in ("root", "user"):
        assert cells[variant]["observations"]["confinement"] == "unconfined", cells[variant]["observations"]
    ours = cells["profile"]["observations"]
    assert ours["confinement"].startswith("gcm-go"), ours
    if not ours["build"]["ok"]:  # stopped by our profile: the kernel says what and where
        assert any(d["profile"] == "gcm-go" and ".cache" in d.get("name", "") for d in ours["denied"]), ours
    assert cells["profile-rw"]["observations"]["confinement"].startswith("gcm-go")
    assert cells["podman"]["observations"]["confinement"].startswith("containers-default")
    assert "### `apparmor`" in md


def test_nothing_is_left_after_the_lab_runs(lab_run: Any) -> None:
    root = guest.jobs_root()
    assert not (sorted(root.rglob("*")) if root.is_dir() else [])
