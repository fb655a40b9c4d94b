"""The runner interrupted (SIGINT, as Ctrl-C sends to the terminal's foreground process group) and killed
(SIGKILL: OOM killer, a cancelled CI job) while cells are in flight, on the real dockerd.

Promises: nothing is left behind (the interrupted run cleans up itself; a killed run's leftovers go with `clean`
or the next run's start-up sweep), and nothing finished is lost (finished cells' JSON stays, and `report` renders
the partial run).
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.faults.conftest import Fault
from tests.faults.util import COLD_WARM, ENV, LOCATION, Run, cli, count, engine, labelled, run_id, valid_json, wait_for

pytestmark = pytest.mark.integration


def test_sigint_with_cells_in_flight(tmp_path: Path, fault: Fault) -> None:
    rid = run_id("sigint")
    run = Run(tmp_path / "reports", rid, [COLD_WARM, ENV, LOCATION], workers="2")  # xdist: cells in 2 workers
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


def test_sigkill_leftovers_are_cleaned_and_swept(tmp_path: Path, fault: Fault) -> None:
    reports = tmp_path / "reports"
    killed = [Run(reports, run_id("kill1"), [COLD_WARM])]
    try:
        with engine() as client:
            # 1. SIGKILL: the run cannot clean up; `clean --run ID` removes what it left.
            first = killed[0]
            wait_for("a container of the run", lambda: labelled(client, first.rid)["containers"], 180, first)
            fault.inject("SIGKILL of the runner's process group with a container running, then `clean --run` "
                         "and the next run's start-up sweep")
            first.signal(signal.SIGKILL)
            first.wait(30)
            left_first = count(labelled(client, first.rid))
            cleaned = cli("clean", "--run", first.rid)
            after_clean = count(labelled(client, first.rid))
            # 2. SIGKILL again; this time the next `run` sweeps it (its owner process is gone).
            killed.append(Run(reports, run_id("kill2"), [COLD_WARM]))
            second = killed[1]
            wait_for("a container of the run", lambda: labelled(client, second.rid)["containers"], 180, second)
            second.signal(signal.SIGKILL)
            second.wait(30)
            left_second = count(labelled(client, second.rid))
            nxt = Run(reports, run_id("next"), [ENV])
            code = nxt.wait(180)
            after_sweep = count(labelled(client, second.rid)) + count(labelled(client, nxt.rid))
        swept = [line for line in nxt.output().splitlines() if line.startswith(f"swept stale run {second.rid} ")]
        fault.done(f"{left_first} resource(s) left by kill 1, `clean --run` -> {after_clean} left; {left_second} "
                   f"left by kill 2, next run's sweep -> {after_sweep} left ({swept[0] if swept else 'no sweep line'})",
                   leaked=after_clean + after_sweep)
        assert left_first >= 1 and left_second >= 1, "a SIGKILLed run leaves its running container behind"
        assert cleaned.returncode == 0 and "removed 1 containers" in cleaned.stdout, cleaned.stdout
        assert after_clean == 0
        assert swept and "removed 1 containers" in swept[0], nxt.output()[-3000:]
        assert code == 0, nxt.output()[-3000:]
        assert after_sweep == 0
        run_json = json.loads((nxt.run_dir / "run.json").read_text())
        assert second.rid in {s["run_id"] for s in run_json["stale_swept"]}
    finally:
        for r in killed:
            r.kill()
            cli("clean", "--run", r.rid)
