"""bench's tmpfs-goroot spread: per rep, GOCACHE on tmpfs over on disk; the largest distance from the median."""

from __future__ import annotations

from typing import Any, cast

import pytest

from runner.bench import Figure, tmpfs_spread_of


def obs(disk: list[float], tmpfs: list[float]) -> dict[str, object]:
    return {"placements": {"goroot-disk/gocache-disk": {"runs": disk}, "goroot-disk/gocache-tmpfs": {"runs": tmpfs},
                           "goroot-tmpfs/gocache-disk": {"runs": [99.0] * len(disk)}}}


def test_spread_is_the_largest_distance_of_a_reps_ratio_from_the_median() -> None:
    # ratios 1.0, 1.1, 0.9, 1.0, 1.0: median 1.0, the farthest 0.1 away
    spread, med, n = tmpfs_spread_of(obs([10, 10, 10, 10, 10], [10, 11, 9, 10, 10]))
    assert (round(spread, 6), med, n) == (10.0, 1.0, 5)
    # the other placements (GOROOT on tmpfs) do not enter it
    assert tmpfs_spread_of(obs([7.0, 7.0, 7.0], [7.0, 7.0, 7.0]))[0] == 0.0


def test_a_rep_without_its_pair_is_an_error_not_a_shorter_list() -> None:
    with pytest.raises(ValueError):
        tmpfs_spread_of(obs([10, 10, 10], [10, 10]))


def test_the_goal_is_judged_on_the_median_run_and_every_run_is_kept() -> None:
    d = Figure("spread alone", [11.7, 2.7, 10.0], "%", "≤ 10 %", lambda m: m <= 10).to_dict()
    assert d["values"] == [11.7, 2.7, 10.0] and d["median"] == 10.0 and d["max"] == 11.7 and d["goal_met"] is True


def test_a_failed_later_run_keeps_the_runs_measured_before_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    from runner import bench, config
    from runner.model import Arch, Status
    from runner.results import CellResult

    cfg = config.load(Path(__file__).resolve().parents[2] / "matrix.toml")
    b = object.__new__(bench.Bench)  # no engine: only the figure assembly is under test
    b.reps, b.distro, b.toolchain, b.host_arch = 3, cfg.distros["debian-12"], cfg.toolchains["go1.22"], Arch.AMD64
    b.ctx = cast(Any, None)  # run_cell is replaced below
    results = iter([CellResult(cell={}, status=Status.PASS, reason="", observations=obs([10, 10], [10, 11])),
                    CellResult(cell={}, status=Status.ERROR, reason="the engine went away"),
                    CellResult(cell={}, status=Status.ERROR, reason="the engine went away")])
    monkeypatch.setattr(bench, "run_cell", lambda cell, ctx: next(results))
    monkeypatch.setattr(bench.Bench, "_busy_loop", lambda self, stop: None)
    alone, beside = (f.to_dict() for f in b.tmpfs_spread())
    assert alone["values"] == [pytest.approx(4.7619, abs=1e-3)] and alone["goal_met"] is True
    assert "(1 of 1 runs within 10 %)" in alone["how"] and "run 2 of 3: " in alone["how"]
    assert "error: the engine went away" in alone["how"]
    assert beside["status"] == "n/a" and "the engine went away" in beside["reason"]
