"""Ctrl-C (and a CI cancel's SIGTERM) on the README's own command, `nox -s matrix`, the way a person does it: the
signal goes to the whole process group (nox, the runner, its xdist workers) while a cell is in flight. Then the
interrupted run is resumed: only its missing and errored cells run, and one report covers all of them.

Promises: exit 130 from nox; every finished cell kept; run.json and results.json say interrupted with the missing
cells; the partial matrix.md is written; no labelled container, volume or loop mount is left; no traceback (nor
pluggy's "cannot send") from the workers.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.resources import leftover_loop_mounts
from tests.faults.conftest import Fault
from tests.faults.util import (
    MORE_THAN_A_HAND_OUT,
    ROOT,
    cli,
    count,
    engine,
    labelled,
    run_id,
    valid_json,
    wait_for,
)

pytestmark = pytest.mark.integration

CELLS = MORE_THAN_A_HAND_OUT  # cheap; more than xdist hands out at first, so some are missing at the signal


def _nox() -> list[str]:
    if exe := shutil.which("nox"):
        return [exe]
    pytest.importorskip("nox", reason="nox is not installed (python3 -m pip install nox)")
    return [sys.executable, "-m", "nox"]


class NoxRun:
    """`nox -s matrix -- ...` in its own process group, as a terminal's foreground job."""

    def __init__(self, reports: Path, rid: str) -> None:
        self.rid = rid
        self.run_dir = reports / "runs" / rid
        self.log = reports.parent / f"{rid}.nox.log"
        reports.mkdir(parents=True, exist_ok=True)
        args = [*_nox(), "-s", "matrix", "--", "--reports", str(reports), "--run-id", rid, "-q", "-n", "2"]
        for c in CELLS:
            args += ["--select", c]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def cell_files(self) -> list[Path]:
        return sorted((self.run_dir / "cells").glob("*.json"))

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"nox did not end within {timeout:.0f}s:\n{self.output()[-3000:]}") from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_interrupting_nox_matrix_keeps_the_report_and_resumes(tmp_path: Path, fault: Fault,
                                                              sig: signal.Signals) -> None:
    rid = run_id(f"nox-{sig.name.lower()}")
    reports = tmp_path / "reports"
    run = NoxRun(reports, rid)
    try:
        with engine() as client:
            # nox may first create its venv (minutes on a fresh checkout); then a cell finishes in seconds.
            wait_for("a finished cell and a container of the run in flight",
                     lambda: run.cell_files() and labelled(client, rid)["containers"], 600, run)  # type: ignore[arg-type]  # Run-like
            finished = {p.name: p.read_text() for p in run.cell_files() if valid_json(p)}
            fault.inject(f"{sig.name} to the process group of `nox -s matrix` with {len(finished)} cell(s) finished")
            t0 = time.monotonic()
            os.killpg(run.proc.pid, sig)
            code = run.wait(360)
            took = time.monotonic() - t0
            left = labelled(client, rid)
        mounts = leftover_loop_mounts(rid)
        meta = json.loads((run.run_dir / "run.json").read_text())
        kept = {p.name: p.read_text() for p in run.cell_files()}
        lost = sum(1 for name, text in finished.items() if kept.get(name) != text)
        out = run.output()
        worker_noise = [ln for ln in out.splitlines() if "Traceback" in ln or "cannot send" in ln]
        fault.done(f"nox exit {code} after {took:.0f}s, {len(kept)} cell(s) kept, "
                   f"interrupted={meta.get('interrupted')}, "
                   f"missing {meta.get('missing_cells')}, {count(left)} resources and {len(mounts)} mounts left, "
                   f"{len(worker_noise)} traceback lines", leaked=count(left) + len(mounts), lost=lost)
        assert code == 130, out[-3000:]
        assert lost == 0
        assert meta["interrupted"] is True and meta["missing_cells"], meta
        assert (run.run_dir / "matrix.md").is_file() and (reports / "matrix.md").is_file()
        assert "interrupted: partial results" in (run.run_dir / "matrix.md").read_text()
        results = json.loads((run.run_dir / "results.json").read_text())
        assert results["run"]["interrupted"] is True
        assert count(left) == 0 and mounts == [], (left, mounts)
        assert worker_noise == [], "\n".join(worker_noise)

        # Resume: only the missing (and errored) cells run; one report over all of them.
        redo = set(meta["missing_cells"]) | {json.loads(t)["id"] for t in kept.values()
                                             if json.loads(t)["status"] == "error"}
        args = ["run", "--reports", str(reports), "--run-id", rid, "--resume", "-q", "-n", "0"]
        for c in CELLS:
            args += ["--select", c]
        resumed = cli(*args, timeout=600)
        assert resumed.returncode in (0, 1), resumed.stdout[-3000:] + resumed.stderr[-2000:]
        meta2 = json.loads((run.run_dir / "run.json").read_text())
        assert meta2["interrupted"] is False and meta2["missing_cells"] == [], meta2
        assert meta2["resumed"][-1]["cells"] == len(redo)
        after = {p.name: p.read_text() for p in run.cell_files()}
        assert all(after[name] == text for name, text in kept.items() if json.loads(text)["id"] not in redo), \
            "a finished cell was run again"
        results2 = json.loads((run.run_dir / "results.json").read_text())
        assert sorted(c["id"] for c in results2["cells"]) == sorted(CELLS)
    finally:
        run.kill()
        cli("clean", "--run", rid)
