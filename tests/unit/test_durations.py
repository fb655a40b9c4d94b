"""runner.durations: measured cell times on this host drive the local order and the estimate."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner import config, durations, plan
from runner.model import Arch, Status
from runner.results import CellResult

ROOT = Path(__file__).resolve().parents[2]


def _cells() -> list:  # type: ignore[type-arg]
    cfg = config.load(ROOT / "matrix.toml")
    return plan.build_plan(cfg, plan.Choices(select=("debian-12/amd64/docker/go1.22/*",)), host_arch=Arch.AMD64)


def _result(cid: str, sec: float) -> CellResult:
    return CellResult(cell={"id": cid}, status=Status.PASS, reason="", timings={"cell_wall_sec": sec})


def test_unmeasured_cells_are_estimated_from_costs(tmp_path: Path) -> None:
    cells = _cells()
    d = durations.load(tmp_path / "none.json")
    assert d.runs == 0 and d.warning is None
    wall, source = durations.estimate(cells, d, 2)
    assert wall > 0 and "no earlier run" in source
    assert durations.order(cells, d)[0].cost == max(c.cost for c in cells if not plan.is_timing(c.scenario))


def test_measured_cells_reorder_and_scale_the_rest(tmp_path: Path) -> None:
    cells = _cells()
    f = tmp_path / "durations.json"
    slow_cheap = min(cells, key=lambda c: (c.cost, c.id))
    durations.record([_result(slow_cheap.id, 5000.0)], f)
    durations.record([_result(slow_cheap.id, 3000.0)], f)
    d = durations.load(f)
    assert d.runs == 2 and d.cells[slow_cheap.id] == 4000.0  # the mean of the old figure and the new one
    exp = d.expected(cells)
    assert exp[slow_cheap.id] == 4000.0
    behavioural = sorted(c.id for c in cells if not plan.is_timing(c.scenario))  # timing cells go last
    assert durations.order(cells, d)[0].id == max(behavioural, key=lambda cid: exp[cid])
    assert "2 earlier runs" in durations.estimate(cells, d, 2)[1]
    assert slow_cheap.id in d.measured
    # Seconds per cost unit come from what was measured: every other cell is scaled the same way.
    assert d.unit_sec(cells) == 4000.0 / slow_cheap.cost


def _one_unavailable_one_ran(f: Path) -> tuple[list, durations.Durations]:  # type: ignore[type-arg]
    """cells[0] unavailable here (0.01 s), cells[1] ran at 10 s a unit of cost."""
    cells = _cells()
    quick = CellResult(cell={"id": cells[0].id}, status=Status.UNAVAILABLE, reason="no registry",
                       timings={"cell_wall_sec": 0.01})
    durations.record([quick, _result(cells[1].id, 10 * cells[1].cost)], f)
    return cells, durations.load(f)


def test_cells_that_did_not_run_do_not_scale_the_estimate(tmp_path: Path) -> None:
    f = tmp_path / "durations.json"
    cells, d = _one_unavailable_one_ran(f)
    assert d.cells[cells[0].id] == 0.01 and cells[0].id not in d.measured
    assert d.unit_sec(cells) == 10.0, "only the cell that ran gives seconds per unit of cost"
    assert d.expected(cells)[cells[0].id] == 0.01, "the unavailable cell is expected to be quick again"


def test_a_corrupt_or_foreign_file_is_ignored_with_a_warning(tmp_path: Path) -> None:
    for text in ("{not json", '{"schema_version": 99, "cells": {}}', "[1, 2]"):
        f = tmp_path / "durations.json"
        f.write_text(text)
        d = durations.load(f)
        assert d.cells == {} and d.warning and str(f) in d.warning
        durations.record([_result("x/y", 1.0)], f)  # written anew
        assert durations.load(f).cells == {"x/y": 1.0}


def test_plan_fits_shards_to_minutes_for_a_runner(tmp_path: Path, capsys: object, monkeypatch: object) -> None:
    from runner import cli

    monkeypatch.setenv("GCM_CACHE_DIR", str(tmp_path))  # type: ignore[attr-defined]
    monkeypatch.setenv("GCM_DURATIONS", str(tmp_path / "durations.json"))  # type: ignore[attr-defined]
    base = ["plan", "--matrix", str(ROOT / "matrix.toml"), "--profile", "full", "--workers", "4"]
    assert cli.main([*base, "--arch", "amd64", "--host-arch", "amd64", "--fit-minutes", "60"]) == 0
    native = int(capsys.readouterr().out.strip())  # type: ignore[attr-defined]
    assert cli.main([*base, "--arch", "arm64", "--host-arch", "amd64", "--fit-minutes", "60"]) == 0
    emulated = int(capsys.readouterr().out.strip())  # type: ignore[attr-defined]
    assert 1 < native < emulated, "emulated cells cost the QEMU factor more: more shards"
    cfg = config.load(ROOT / "matrix.toml")
    whole = plan.build_plan(cfg, plan.Choices(profile="full", arches=(Arch.AMD64,)), host_arch=Arch.AMD64)
    d = durations.load(tmp_path / "durations.json")
    assert all(durations.estimate(plan.shard(whole, i, native), d, 4)[0] <= 3600 for i in range(1, native + 1))
    assert max(durations.estimate(plan.shard(whole, i, native - 1), d, 4)[0] for i in range(1, native)) > 3600
    assert cli.main([*base, "--fit-minutes", "0.01"]) == 2, "no shard count fits: one error, exit 2"


def test_the_file_can_be_named_and_the_suite_keeps_its_own(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert durations.path().name.startswith("gcm-test-durations-"), "tests/conftest.py points the suite elsewhere"
    monkeypatch.setenv("GCM_DURATIONS", str(tmp_path / "d.json"))
    durations.record([_result("x/y", 2.0)])
    assert durations.load().cells == {"x/y": 2.0}
    monkeypatch.delenv("GCM_DURATIONS")
    monkeypatch.setenv("GCM_CACHE_DIR", str(tmp_path / "cache"))
    assert durations.path() == tmp_path / "cache" / "durations.json"


def test_timing_cells_go_last_and_guest_boots_are_spread_through_the_rest(tmp_path: Path) -> None:
    """Longest first would put both guest boots and both tmpfs-goroot cells at the front: each waits for the one
    before (one guest boot at a time; timing cells alone), and a worker idles."""
    from runner.guest.modes import boot_of
    from runner.plan import is_timing

    cfg = config.load(ROOT / "matrix.toml")
    cells = plan.build_plan(cfg, plan.Choices(select=("debian-1[23]/amd64/*/go1.27/*",)), host_arch=Arch.AMD64)
    f = tmp_path / "durations.json"
    guest = [c for c in cells if c.engine.is_guest and c.preset is None]
    leaders = {boot_of(c.scenario).name: c for c in guest}
    durations.record([_result(c.id, 300.0) for c in leaders.values()]
                     + [_result(c.id, 200.0) for c in cells if c.scenario == "tmpfs-goroot"], f)
    got = durations.order(cells, durations.load(f))
    assert sorted(c.id for c in got) == sorted(c.id for c in cells)
    timing = [i for i, c in enumerate(got) if not c.engine.is_guest and c.preset is None and is_timing(c.scenario)]
    assert timing and timing == list(range(len(got) - len(timing), len(got))), "timing cells last, together"
    assert got[0].engine.is_guest, "the first boot starts at once"
    starts = sorted(min(i for i, c in enumerate(got) if c.engine.is_guest and boot_of(c.scenario).name == b)
                    for b in leaders)
    assert len(starts) == 2 and starts[1] - starts[0] > 20, "the second boot comes after other work, not next"
    for b in leaders:  # the boot's other cells only read its results: after every other non-timing cell
        idx = [i for i, c in enumerate(got) if c.engine.is_guest and c.preset is None and boot_of(c.scenario).name == b]
        assert len(idx) > 1 and all(i > max(j for j, c in enumerate(got) if not c.engine.is_guest
                                            and j < timing[0]) for i in idx[1:]), idx


def test_a_share_groups_other_cells_go_after_the_rest(tmp_path: Path) -> None:
    """runner.share: the first cell of a row's location (or toolchain) variants runs the container for all; next
    to it, the others held the other worker for the whole container (measured: 18 s for a toolchain row)."""
    from runner.plan import is_timing

    cells = _cells()
    f = tmp_path / "durations.json"
    durations.record([_result(c.id, 9.0 if c.scenario == "toolchain" else 0.5) for c in cells], f)
    got = durations.order(cells, durations.load(f))
    assert sorted(c.id for c in got) == sorted(c.id for c in cells)
    others = [i for i, c in enumerate(got) if c.preset is None and not is_timing(c.scenario)
              and c.scenario not in ("location", "toolchain")]
    for scenario in ("location", "toolchain"):
        idx = [i for i, c in enumerate(got) if c.scenario == scenario and c.preset is None]
        assert len(idx) > 2, idx
        assert idx[0] < max(others), f"{scenario}: the group's first cell keeps its place"
        assert all(i > max(others) for i in idx[1:]), f"{scenario}: the rest after every other cell: {idx}"


def test_a_part_of_a_plan_is_estimated_with_the_whole_plans_unit(tmp_path: Path) -> None:
    """One odd measured cell (a guest cell that pays a boot: 270 s at cost 0.5) must not set the unit for the
    unmeasured cells of the shard it lands in: a shard is estimated with its whole plan's unit."""
    cells = _cells()
    f = tmp_path / "durations.json"
    ordinary = [c for c in cells if c.cost > 0][:5]
    odd = ordinary.pop()
    durations.record([_result(c.id, 10 * c.cost) for c in ordinary] + [_result(odd.id, 500 * odd.cost)], f)
    d = durations.load(f)
    whole_unit = d.unit_sec(cells)
    assert whole_unit == 10.0
    part = [odd] + [c for c in cells if c.id not in d.cells][:3]
    assert d.unit_sec(part) == 500.0, "the part alone would take the odd cell's unit"
    wall, _ = durations.estimate(part, d, 1, unit=whole_unit)
    assert wall == pytest.approx(500 * odd.cost + sum(10 * c.cost for c in part[1:]))


def test_fitting_shards_counts_cells_unavailable_here_at_their_cost(tmp_path: Path) -> None:
    f = tmp_path / "durations.json"
    cells, d = _one_unavailable_one_ran(f)
    assert d.expected(cells)[cells[0].id] == 0.01, "here it is unavailable again"
    assert d.expected(cells, pullable=True)[cells[0].id] == 10.0 * cells[0].cost, "where its image pulls, it runs"
    # A cell that was n/a when it ran (e.g. nothing newer to switch to) is n/a where images pull, too.
    na = CellResult(cell={"id": cells[2].id}, status=Status.NA, reason="no newer toolchain",
                    timings={"cell_wall_sec": 0.02})
    durations.record([na], f)
    d = durations.load(f)
    assert d.expected(cells, pullable=True)[cells[2].id] == 0.02
    # Once it runs, it is measured and no longer unavailable.
    durations.record([_result(cells[0].id, 3.0)], f)
    assert cells[0].id not in durations.load(f).unavailable
    assert "as if they pulled" in durations.estimate(cells, d, 2, pullable=True)[1]


def test_a_shard_and_its_run_take_the_unit_from_the_whole_plan() -> None:
    cfg = config.load(ROOT / "matrix.toml")
    whole = plan.build_plan(cfg, plan.Choices(), host_arch=Arch.AMD64)
    one = plan.Choices(shard=(2, 5))
    part = plan.build_plan(cfg, one, host_arch=Arch.AMD64)
    assert {c.id for c in plan.unit_basis(cfg, one, part, host_arch=Arch.AMD64)} == {c.id for c in whole}
    assert plan.unit_basis(cfg, plan.Choices(), whole, host_arch=Arch.AMD64) is whole, "not sharded: the cells"
