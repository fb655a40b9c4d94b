"""Faults that need an engine of their own: two runs at once with `clean --all`, a SIGKILLed run swept by the next
one, and the engine dying mid-cell.

All three run against a second, throw-away dockerd (tests/dockerd.py: its own socket, data-root, exec-root, pidfile,
containerd namespace and bridge; cells routed to it with --endpoint), so neither `clean --all` nor stopping the
daemon touches the main dockerd that the rest of the suite (and anyone else on this host) is using. The tests run
in file order: the engine dies in the last one.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dockerd import Dockerd, throwaway_dockerd
from tests.faults.conftest import Fault
from tests.faults.util import COLD_WARM, ENV, LOCATION, VOLUME, Run, cli, count, engine, labelled, run_id, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def dockerd() -> Iterator[Dockerd]:
    with throwaway_dockerd("flt", "10.213.79.1/24") as d:
        yield d


def test_two_runs_at_once_and_clean(dockerd: Dockerd, tmp_path: Path, fault: Fault) -> None:
    on_d2 = {"DOCKER_HOST": dockerd.sock}  # `clean` talks to the throw-away engine only
    route = ("--endpoint", f"amd64={dockerd.sock}")
    one, two = run_id("one"), run_id("two")
    runs = [Run(tmp_path / "r1", one, [VOLUME], *route)]
    try:
        with engine(dockerd.sock) as d2, engine() as main:
            # Run 1 first, until it has a container and a volume; run 2's start-up sweep must leave them alone.
            res1 = wait_for("run 1's container and volume", lambda: (r := labelled(d2, one))["containers"]
                            and r["volumes"] and r, 300, runs[0])
            runs.append(Run(tmp_path / "r2", two, [VOLUME], *route))
            res2 = wait_for("run 2's container and volume", lambda: (r := labelled(d2, two))["containers"]
                            and r["volumes"] and r, 300, runs[1])
            fault.inject("two runs at once on one engine, then `clean --run` of the first and `clean --all`")
            untouched = set(labelled(d2, one)["containers"]) >= set(res1["containers"])
            cleaned_one = cli("clean", "--run", one, env=on_d2)
            after_one = labelled(d2, one)
            two_kept = labelled(d2, two)
            cleaned_all = cli("clean", "--all", env=on_d2)
            codes = [r.wait(180) for r in runs]
            left = count(labelled(d2, one)) + count(labelled(d2, two))
            on_main = count(labelled(main, one)) + count(labelled(main, two))
        fault.done(f"run 2 started beside run 1 ({'kept' if untouched else 'REMOVED'} run 1's); `clean --run 1`: "
                   f"{cleaned_one.stdout.splitlines()[0] if cleaned_one.stdout else '?'}, run 2's "
                   f"{'kept' if two_kept == res2 else 'TOUCHED'}; `clean --all`: {left} left; run exits {codes}",
                   leaked=left + on_main)
        assert untouched, "run 2's start-up sweep removed a live run's container"
        assert "swept stale run" not in runs[1].output()
        assert cleaned_one.returncode == 0 and count(after_one) == 0, after_one
        assert two_kept == res2, "clean --run of run 1 touched run 2's resources"
        assert cleaned_all.returncode == 0 and left == 0
        assert on_main == 0, "the routed runs created resources on the main engine"
        assert all(c in (0, 1) for c in codes), codes  # their cells lost their containers: error, not a crash
    finally:
        for r in runs:
            r.kill()


def test_sigkill_leftovers_are_cleaned_and_swept(dockerd: Dockerd, tmp_path: Path, fault: Fault) -> None:
    # On the throw-away engine: on the main one, any other test's run could sweep kill 2's leftovers first.
    on_d2 = {"DOCKER_HOST": dockerd.sock}
    route = ("--endpoint", f"amd64={dockerd.sock}")
    reports = tmp_path / "reports"
    killed = [Run(reports, run_id("kill1"), [COLD_WARM], *route)]
    try:
        with engine(dockerd.sock) as client:
            # 1. SIGKILL: the run cannot clean up; `clean --run ID` removes what it left.
            first = killed[0]
            wait_for("a container of the run", lambda: labelled(client, first.rid)["containers"], 180, first)
            fault.inject("SIGKILL of the runner's process group with a container running, then `clean --run` "
                         "and the next run's start-up sweep")
            first.signal(signal.SIGKILL)
            first.wait(30)
            left_first = count(labelled(client, first.rid))
            cleaned = cli("clean", "--run", first.rid, env=on_d2)
            after_clean = count(labelled(client, first.rid))
            # 2. SIGKILL again; this time the next `run` sweeps it (its owner process is gone).
            killed.append(Run(reports, run_id("kill2"), [COLD_WARM], *route))
            second = killed[1]
            wait_for("a container of the run", lambda: labelled(client, second.rid)["containers"], 180, second)
            second.signal(signal.SIGKILL)
            second.wait(30)
            left_second = count(labelled(client, second.rid))
            nxt = Run(reports, run_id("next"), [ENV], *route)
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
            cli("clean", "--run", r.rid, env=on_d2)


def test_engine_dies_mid_cell(dockerd: Dockerd, tmp_path: Path, fault: Fault) -> None:
    rid = run_id("enginedeath")
    run = Run(tmp_path / "reports", rid, [COLD_WARM, ENV, LOCATION], "--endpoint", f"amd64={dockerd.sock}")
    try:
        with engine(dockerd.sock) as d2:
            busy = wait_for("the cold-warm cell's container", lambda: [
                c.labels for c in d2.containers.list(all=True, filters={"label": f"io.go-cache-matrix.run={rid}"},
                                                     ignore_removed=True)
                if c.labels.get("io.go-cache-matrix.cell") == COLD_WARM], 300, run)
        assert busy
        done_before = {json.loads(p.read_text())["id"] for p in run.cell_files()}
        fault.inject(f"the engine (a throw-away dockerd) stopped while {COLD_WARM} runs in it")
        t0 = time.monotonic()
        dockerd.stop()
        code = run.wait(240)
        ended = time.monotonic() - t0
        cells = {c["id"]: c for c in run.results()["cells"]}
        with engine() as main:
            on_main = count(labelled(main, rid))
        cw = cells.get(COLD_WARM, {})
        rest = {i: (c["status"], c["timings"].get("cell_wall_sec")) for i, c in cells.items() if i != COLD_WARM}
        fault.done(f"{COLD_WARM.rsplit('/', 1)[1]} {cw.get('status')}, the rest {rest}; run ended {ended:.1f}s after "
                   f"the engine stopped, exit {code}", leaked=on_main, lost=3 - len(cells))
        assert cw["status"] == "error", cw
        assert "stopped answering during the run" in cw["reason"] and dockerd.sock in cw["reason"], cw["reason"]
        for i, c in cells.items():
            if i != COLD_WARM and i not in done_before:
                assert c["status"] == "error" and "stopped answering" in c["reason"], c
                assert c["timings"]["cell_wall_sec"] < 15, f"{i} did not fail fast: {c['timings']}"
        assert len(cells) == 3
        assert code == 1
        assert ended < 120, f"the run took {ended:.0f}s to end after the engine stopped"
        assert "engine lost mid-run: the docker engine at " in run.output(), run.output()[-3000:]
        assert on_main == 0
    finally:
        run.kill()
