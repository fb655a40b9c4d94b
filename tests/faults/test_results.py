"""A writer killed in the middle of a result write, and result files damaged afterwards.

Promise: a result file is either the previous complete one or the new complete one (temp file, fsync, rename),
and `report` names every unfinished or unreadable file among its problems instead of crashing.
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

from tests.faults.conftest import Fault
from tests.faults.util import ENV, Run, cli, run_id, valid_json, wait_for

pytestmark = pytest.mark.integration

WRITER = """
import sys
from pathlib import Path
from runner.results import write_json_atomic
path = Path(sys.argv[1])
big = {"cells": [{"id": f"cell-{i}", "reason": "x" * 200, "steps": list(range(50))} for i in range(40000)]}
n = 0
while True:
    n += 1
    write_json_atomic(path, {"generation": n, **big})
"""


def test_kill_during_a_result_write(tmp_path: Path, fault: Fault) -> None:
    target = tmp_path / "cells" / "result.json"
    target.parent.mkdir()
    fault.inject("SIGKILL of a process in the middle of write_json_atomic (a ~30 MB result, rewritten in a loop)")
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], cwd=Path(__file__).resolve().parents[2])
    try:
        # Kill it while a temp file is being written and the target holds an earlier complete write.
        wait_for("a first complete write and a second one under way",
                 lambda: target.exists() and list(target.parent.glob(".result.json.tmp*")), 120)
        time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    temps = list(target.parent.glob(".result.json.tmp*"))
    ok = valid_json(target)
    fault.done(f"target {'complete' if ok else 'TRUNCATED'} (generation "
               f"{json.loads(target.read_text())['generation'] if ok else '?'}), {len(temps)} temp leftover(s)",
               lost=0 if ok else 1)
    assert ok, "the result file must never be seen half-written"


def test_report_flags_temp_leftovers_and_damaged_cells(tmp_path: Path, fault: Fault) -> None:
    reports = tmp_path / "reports"
    run = Run(reports, run_id("damaged"), [ENV])
    try:
        assert run.wait(180) == 0, run.output()[-3000:]
    finally:
        run.kill()
    cells = run.run_dir / "cells"
    good = next(cells.glob("*.json"))
    # What a writer killed before its rename leaves, and two damaged results.
    leftover = cells / f".{good.name}.tmp{os.getpid()}"
    leftover.write_text(good.read_text()[:100])
    truncated = cells / "truncated-cell.json"
    truncated.write_text(good.read_text()[: len(good.read_text()) // 2])
    wrong = cells / "not-a-cell.json"
    wrong.write_text(json.dumps({"schema_version": 1, "hello": "world"}))
    shutil.copy(good, cells / "copy-of-good.json")  # a valid duplicate: still read, not a problem
    fault.inject("an unfinished temp file, a truncated cell JSON and a JSON that is not a cell in a run's cells/")
    report = cli("report", str(run.run_dir), "--reports", str(reports))
    warnings = [line for line in report.stderr.splitlines() if line.startswith("warning: ")]
    fault.done(f"report exit {report.returncode}, {len(warnings)} problem(s) named", lost=0)
    assert report.returncode == 0, report.stderr
    assert "Traceback" not in report.stderr + report.stdout
    assert any(str(leftover) in w and "unfinished write" in w for w in warnings), warnings
    assert any(str(truncated) in w for w in warnings), warnings
    assert any(str(wrong) in w for w in warnings), warnings
    md = (run.run_dir / "matrix.md").read_text()
    assert "Problems reading this run" in md and truncated.name in md and leftover.name in md
