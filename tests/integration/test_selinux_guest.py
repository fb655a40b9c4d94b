"""The guest lab's `selinux` mode for real (engine podman-selinux): bake (or reuse) the image, boot once for the
container cases (`selinux`) and the host-level ones (`se-host`) of go1.27 (TCG on a host without usable KVM), and
assert on what the guest observed. Then Ctrl-C during a boot: no QEMU process and no overlay may be left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from runner import guest, lab
from runner.scenarios.selinux import VARIANTS

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RUN_ID = "it-selinux-guest"
TOOLCHAIN = "go1.27"  # the default profile runs "se-host@go1.27": se-host cells exist for it
PREFIX = f"debian-12/amd64/podman-selinux/{TOOLCHAIN}/selinux:"
HOST_PREFIX = f"debian-12/amd64/podman-selinux/{TOOLCHAIN}/se-host:"
BUDGET = 3600  # bake (first time only) + one boot with every case, under TCG (a loaded 2-core host is slow)


def qemu_processes() -> list[str]:
    """Command lines of QEMU processes that use this tool's guest job directories."""
    jobs = str(guest.jobs_root())
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if guest.QEMU in cmd and jobs in cmd:
                out.append(cmd)
    return out


def leftovers() -> list[Path]:
    root = guest.jobs_root()
    return sorted(root.rglob("*")) if root.is_dir() else []


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], float]:
    reports = tmp_path_factory.mktemp("reports-selinux-guest")
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "runner", "run", "--reports", str(reports), "-q", "-n", "2",
                           "--run-id", RUN_ID, "--engine", "podman-selinux", "--select", PREFIX + "*",
                           "--select", HOST_PREFIX + "*"],
                          cwd=ROOT, capture_output=True, text=True, timeout=BUDGET)
    wall = time.monotonic() - t0
    print(proc.stdout[-4000:], proc.stderr[-3000:], sep="\n")
    data = json.loads((reports / "runs" / RUN_ID / "results.json").read_text())
    cells = {c["id"].removeprefix(PREFIX).replace(HOST_PREFIX, "host:"): c for c in data["cells"]}
    timings = next(iter(cells.values()))["timings"]
    print(f"guest part: {wall:.0f}s wall; bake {timings.get('bake_sec')}s (reused: {timings.get('bake_reused')}), "
          f"boot {timings.get('boot_total_sec')}s (job started after {timings.get('boot_to_job_sec')}s)")
    return reports, cells, wall


def test_every_case_was_measured_in_one_enforcing_boot(run: Any) -> None:
    _, every, _ = run
    cells = {k: c for k, c in every.items() if not k.startswith("host:")}
    assert sorted(cells) == sorted(VARIANTS)
    for variant, c in cells.items():
        assert c["status"] in ("pass", "fail"), f"{variant}: {c['status']}: {c['reason']}"
    boots = {json.dumps(c["observations"]["guest"]["cases_in_boot"]) for c in cells.values()}
    hosts = [f"se-host/{TOOLCHAIN}/{c.variant}" for c in lab.CASES["se-host"]]
    assert boots == {json.dumps([f"selinux/{TOOLCHAIN}/{v}" for v in VARIANTS] + hosts)}, "all cases ran in one boot"
    # One cell of the boot booted it, the rest read its results: whichever went first in the run's order, which
    # follows the durations measured on this host (an se-host cell as often as a selinux one).
    assert sum(1 for c in every.values() if not c["timings"]["shared_boot"]) == 1, \
        {k: c["timings"]["shared_boot"] for k, c in every.items()}
    g = cells["bind"]["observations"]["guest"]
    assert g["mode"] == "selinux" and "selinux" in g["lsm"].split(",")
    assert g["enforce"] == "Enforcing" and g["accel"] in ("KVM", "TCG") and g["duration_factor"] > 0
    assert g["podman"] and "refpolicy" in g["policy"] and "container" in g["container_module"]


def test_no_relabel_write_is_denied_with_an_avc_naming_container_t(run: Any) -> None:
    c = run[1]["bind"]
    first = c["observations"]["runs"]["first"]
    assert first["label"].split(":")[2] == "container_t"
    assert first["write"]["ok"] is False and "Permission denied" in first["write"]["error"]
    denials = [a for a in c["observations"]["avc"] if a["result"] == "denied"]
    assert any(a["scontext"].split(":")[2] == "container_t" and "write" in a["permissions"] for a in denials), denials
    assert c["status"] == "pass", c["reason"]


def test_z_and_Z_writes_succeed(run: Any) -> None:
    for variant in ("bind-z", "bind-Z"):
        first = run[1][variant]["observations"]["runs"]["first"]
        assert first["write"]["ok"] is True, (variant, first)
        assert "container_file_t" in first["dir_label_after"], (variant, first["dir_label_after"])
    private = run[1]["bind-Z"]["observations"]["runs"]["first"]["dir_label_after"]
    assert ":c" in private  # :Z: the container's MCS categories on the directory


def test_go_without_relabel_fails_with_the_build_cache_error(run: Any) -> None:
    build = run[1]["bind"]["observations"]["runs"]["first"]["build"]
    assert build["ok"] is False and build["exit_code"] != 0
    assert "build cache" in build["stderr"] and "permission denied" in build["stderr"], build


def test_go_with_z_succeeds_and_the_warm_rebuild_compiles_nothing(run: Any) -> None:
    runs = run[1]["bind-z"]["observations"]["runs"]
    assert runs["first"]["build"]["ok"] is True and runs["first"]["build"]["compiled"] >= 1, runs["first"]
    assert runs["second"]["build"]["ok"] is True and runs["second"]["build"]["compiled"] == 0, runs["second"]
    assert run[1]["bind-z"]["status"] == "pass"


def test_host_level_builds_ran_in_the_mapped_contexts_with_their_labels(run: Any) -> None:
    cells = {k.removeprefix("host:"): c for k, c in run[1].items() if k.startswith("host:")}
    assert sorted(cells) == sorted(c.variant for c in lab.CASES["se-host"])
    want = {"root": "unconfined_t", "user_u": "user_t", "staff_u": "staff_t", "user_u-fcontext": "user_t"}
    for variant, c in cells.items():
        o = c["observations"]
        assert c["status"] in ("pass", "fail"), f"{variant}: {c['status']}: {c['reason']}"
        assert o["context"].split(":")[2] == want[variant], (variant, o["context"])  # a real pam_selinux login
        assert o["build"]["ran"], (variant, o)
        if o["build"]["ok"]:
            assert o["cache_label"], (variant, o)  # the cache exists and its label was recorded
        else:
            assert o["build"]["stderr"], (variant, o)
    md = (run[0] / "matrix.md").read_text()
    assert "### `se-host`" in md and "RHEL's targeted policy: not measured here" in md


def test_the_report_names_what_the_column_is(run: Any) -> None:
    md = (run[0] / "matrix.md").read_text()
    section = md.split("### `selinux`", 1)[1].split("\n### ", 1)[0]
    print(section)
    assert "podman-selinux" in section and "refpolicy" in section and "podman 4" in section
    assert ("TCG" in section) or ("KVM" in section)
    assert "not Fedora/RHEL `container-selinux`" in section


def test_nothing_is_left_after_the_run(run: Any) -> None:
    assert qemu_processes() == []
    assert leftovers() == []


def test_ctrl_c_during_a_boot_leaves_no_qemu_and_no_overlay(run: Any, tmp_path: Path) -> None:
    """SIGINT to `go-cache-matrix run` while the guest boots: QEMU is killed, the overlay deleted."""
    cmd = [sys.executable, "-m", "runner", "run", "--reports", str(tmp_path), "-q", "-n", "0", "--run-id", "it-sigint",
           "--engine", "podman-selinux", "--select", PREFIX + "label-disable"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while not qemu_processes():
            assert proc.poll() is None, f"the run ended before QEMU started: {proc.communicate()[0]}"
            assert time.monotonic() < deadline, "QEMU did not start within 300s"
            time.sleep(0.5)
        overlays = [p for p in leftovers() if p.name == "overlay.qcow2"]
        assert overlays, "the boot uses an overlay in the job directory"
        time.sleep(3)  # well into the boot
        os.kill(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    print(out[-2000:])
    assert proc.returncode != 0
    assert qemu_processes() == []
    assert not any(p.exists() for p in overlays)
    assert leftovers() == []
    # Nothing was cached for that batch: an interrupted boot is not a result.
    assert not (tmp_path / "runs" / "it-sigint" / "guest" / "debian-12-amd64-selinux" / "cases.json").exists()
