"""runner.slot: a timing cell waits for the cells in flight, and cells started after it wait for it."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from runner import slot


def _hold(run_dir: str, exclusive: bool, seconds: float, log: str, name: str) -> None:
    with slot.hold(Path(run_dir), exclusive=exclusive):
        with open(log, "a") as fh:
            fh.write(f"{name} start {time.monotonic():.3f}\n")
        time.sleep(seconds)
        with open(log, "a") as fh:
            fh.write(f"{name} end {time.monotonic():.3f}\n")


def _events(log: Path) -> dict[str, float]:
    out = {}
    for line in log.read_text().splitlines():
        name, what, at = line.split()
        out[f"{name}.{what}"] = float(at)
    return out


def test_timing_cell_runs_alone_and_is_not_starved(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    log = tmp_path / "log"
    shared1 = ctx.Process(target=_hold, args=(str(tmp_path), False, 1.0, str(log), "shared1"))
    shared1.start()
    time.sleep(0.3)  # shared1 holds the slot
    timing = ctx.Process(target=_hold, args=(str(tmp_path), True, 0.8, str(log), "timing"))
    timing.start()
    time.sleep(0.3)  # timing waits for shared1, holding the turnstile
    shared2 = ctx.Process(target=_hold, args=(str(tmp_path), False, 0.2, str(log), "shared2"))
    shared2.start()
    for p in (shared1, timing, shared2):
        p.join(20)
        assert p.exitcode == 0
    ev = _events(log)
    assert ev["timing.start"] >= ev["shared1.end"], "the timing cell started while another cell ran"
    assert ev["shared2.start"] >= ev["timing.end"], "a cell started while the timing cell measured"


def test_shared_holders_run_together(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    log = tmp_path / "log"
    procs = [ctx.Process(target=_hold, args=(str(tmp_path), False, 0.6, str(log), f"s{i}")) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(20)
        assert p.exitcode == 0
    ev = _events(log)
    assert ev["s1.start"] < ev["s0.end"] and ev["s0.start"] < ev["s1.end"]


def test_exclusive_hold_records_the_load(tmp_path: Path) -> None:
    with slot.hold(tmp_path, exclusive=True) as record:
        pass
    assert record["exclusive"] is True and record["waited_sec"] >= 0
    assert isinstance(record["loadavg_before"], float) and isinstance(record["loadavg_after"], float)
