"""The runner interrupted (SIGINT, as Ctrl-C sends to the terminal's foreground process group) while cells are in
flight, on the real dockerd.

Promises: nothing is left behind (the interrupted run cleans up itself), and nothing finished is lost (finished
cells' JSON stays, and `report` renders the partial run). SIGKILL (OOM killer, a cancelled CI job) is in
test_engine.py: its leftovers must wait for the next run's sweep, which only a throw-away engine keeps to itself.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.faults.conftest import Fault
from tests.faults.util import (
    MORE_THAN_A_HAND_OUT,
    Run,
    cli,
    count,
    engine,
    labelled,
    run_id,
    valid_json,
    wait_for,
)

pytestmark = pytest.mark.integration


def test_sigint_with_cells_in_flight(tmp_path: Path, fault: Fault) -> None:
    rid = run_id("sigint")
    run = Run(tmp_path / "reports", rid, MORE_THAN_A_HAND_OUT, workers="2")  # xdist: cells in 2 workers
    try:
        with engine() as client:
            wait_for("a finished cell and a container of the run",
                     lambda: run.cell_files() and labelled(client, rid)["containers"], 180, run)
            finished = {p.name: p.read_text() for p in run.cell_files() if valid_json(p)}
            fault.inject(f"SIGINT to the runner's process group with {len(finished)} cell(s) finished and "
                         f"{len(labelled(client, rid)['containers'])} container(s) running")
            run.signal(signal.SIGINT)
            code = run.wait(120)
            left = labelled(client, rid)
        results = run.results()
        kept = {p.name: p.read_text() for p in run.cell_files()}
        lost = sum(1 for name, text in finished.items() if kept.get(name) != text)
        lost += sum(1 for p in run.cell_files() if not valid_json(p))
        in_results = {c["id"] for c in results["cells"]}
        lost += sum(1 for p in run.cell_files() if json.loads(p.read_text())["id"] not in in_results)
        report = cli("report", str(run.run_dir), "--reports", str(tmp_path / "reports"))
        fault.done(f"exit {code}, {len(kept)} finished cell(s) kept, interrupted={results['run'].get('interrupted')}, "
                   f"{count(left)} resources left, report exit {report.returncode}", leaked=count(left), lost=lost)
        assert code == 130, run.output()[-3000:]
        assert lost == 0
        assert results["run"]["interrupted"] is True
        assert results["run"]["missing_cells"], "nothing was in flight"
        assert count(left) == 0, left
        assert report.returncode == 0 and "Traceback" not in report.stderr, report.stderr
        md = (run.run_dir / "matrix.md").read_text()
        assert "interrupted: partial results" in md
        assert "interrupted:" in run.output()
    finally:
        run.kill()
        cli("clean", "--run", rid)
