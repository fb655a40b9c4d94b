"""Host faults: a full disk under the Go caches, and no QEMU binfmt entry for the foreign arch.

Promise: every bad condition of the host becomes a cell with the reason (Go's own words, or the fix), never a
crash, and the other cells of the run are unaffected.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runner import host
from runner.model import Arch
from tests.faults.conftest import Fault
from tests.faults.util import ENV, FULL, LOCATION, ROOT, Run, cli, count, engine, labelled, run_id

pytestmark = pytest.mark.integration


def test_full_disk_under_the_go_caches(tmp_path: Path, fault: Fault) -> None:
    # storage:full is not in matrix.toml's default variants (it fails by construction): enable it in a copy.
    # The copy sits next to a link to images/, where the runner finds the Dockerfile templates.
    matrix = tmp_path / "matrix.toml"
    text = (ROOT / "matrix.toml").read_text()
    enabled = re.sub(r'(\[scenarios\.storage\]\s*\nvariants = \[)', r'\1"full", ', text, count=1)
    assert enabled != text, "matrix.toml has no [scenarios.storage] variants line"
    matrix.write_text(enabled)
    (tmp_path / "images").symlink_to(ROOT / "images")
    rid = run_id("full")
    fault.inject("GOCACHE and GOMODCACHE on a 1 MiB tmpfs filled by dd before `go build` (storage:full), "
                 "next to 2 other cells")
    run = Run(tmp_path / "reports", rid, [FULL, ENV, LOCATION], "--matrix", str(matrix), workers="2")
    try:
        code = run.wait(300)
        cells = {c["id"]: c for c in run.results()["cells"]}
        with engine() as client:
            left = labelled(client, rid)
        full = cells.get(FULL, {})
        others = {i: cells.get(i, {}).get("status") for i in (ENV, LOCATION)}
        fault.done(f"storage:full {full.get('status')}: {full.get('reason', '')[:160]}; others {others}",
                   leaked=count(left), lost=3 - len(cells))
        assert full["status"] == "fail", full
        assert "no space left on device" in full["reason"] and full["reason"].startswith("cold build: exit 1: go: ")
        assert full["observations"]["cold"]["stderr"].startswith("go: "), "Go's words, not a `go build -v` line"
        assert others == {ENV: "pass", LOCATION: "pass"}, run.output()[-3000:]
        assert code == 1, "a fail cell makes the run exit 1"
        assert count(left) == 0, left
    finally:
        run.kill()
        cli("clean", "--run", rid)


def test_missing_binfmt_for_the_foreign_arch(tmp_path: Path, fault: Fault) -> None:
    foreign = next(a for a in Arch if a is not Arch.host())
    empty = tmp_path / "binfmt_misc"
    empty.mkdir()
    rid = run_id("binfmt")
    fault.inject(f"no qemu binfmt entry for {foreign.value} (GCM_BINFMT_DIR pointed at an empty dir)")
    cell = ENV.replace("/amd64/", f"/{foreign.value}/")
    native = ENV.replace("/amd64/", f"/{Arch.host().value}/")
    run = Run(tmp_path / "reports", rid, [cell, native], env={"GCM_BINFMT_DIR": str(empty)})
    try:
        code = run.wait(180)
        cells = {c["id"]: c for c in run.results()["cells"]}
        got = cells.get(cell, {})
        fault.done(f"{got.get('status')}: {got.get('reason', '')[:200]}", lost=2 - len(cells))
        assert got["status"] == "unavailable", got
        assert got["reason"].endswith(f"fix: {host.emulation_fix(foreign)}"), got["reason"]
        assert "apt-get install qemu-user-static binfmt-support" in got["reason"]
        assert f"update-binfmts --enable qemu-{foreign.to_qemu()}" in got["reason"]
        assert f"no qemu-{foreign.to_qemu()} entry in {empty}" in got["reason"]
        assert cells[native]["status"] == "pass", cells[native]
        assert code == 0, "an unavailable cell is not a failure of the run"
        assert f"fix: {host.emulation_fix(foreign)}" in run.output(), "the preflight prints the fix too"
    finally:
        run.kill()
