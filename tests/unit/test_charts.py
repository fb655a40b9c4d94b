"""runner.render.charts: which numbers each chart takes from the cells, and that a run without them gets no chart."""

from __future__ import annotations

import re
from pathlib import Path

from runner.model import Status
from runner.render import charts
from runner.render import html as html_report
from runner.results import RunResults
from tests.unit.test_results import make

NATIVE = "debian-12/amd64/docker/go1.22/cold-warm:small"
EMULATED = "debian-12/arm64/docker/go1.22/cold-warm:small"  # make(): arm64 is emulated


def cold_warm(cid: str, cold: float, warm: float, status: Status = Status.PASS) -> object:
    return make(cid, status, cold={"sec": cold, "compiled": 56}, warm={"sec": warm, "compiled": 0})


def test_cold_warm_takes_judged_cells_with_both_builds() -> None:
    cells = [cold_warm(NATIVE, 12.0, 0.1), cold_warm(EMULATED, 84.0, 0.9),
             cold_warm("debian-13/amd64/docker/go1.22/cold-warm:small", 9.0, 0.1, Status.UNAVAILABLE),
             make("debian-13/amd64/docker/go1.27/cold-warm:small", cold={"sec": 3.0})]  # no warm build recorded
    bars = charts.cold_warm(cells)  # type: ignore[arg-type]
    assert bars == [charts.Bar("debian-12/amd64/docker/go1.22", (12.0, 0.1)),
                    charts.Bar("debian-12/arm64/docker/go1.22 (QEMU)", (84.0, 0.9))]


def test_qemu_slowdown_pairs_an_emulated_cell_with_its_native_twin() -> None:
    other_toolchain = cold_warm("debian-12/amd64/docker/go1.27/cold-warm:small", 20.0, 0.1)
    bars = charts.qemu_slowdown([cold_warm(NATIVE, 12.0, 0.1), cold_warm(EMULATED, 84.0, 0.9),  # type: ignore[list-item]
                                 other_toolchain])
    assert bars == [charts.Bar("debian-12/arm64/docker/go1.22 (QEMU) vs amd64", (7.0,))]
    assert charts.qemu_slowdown([cold_warm(NATIVE, 12.0, 0.1)]) == []  # type: ignore[list-item]


def test_qemu_slowdown_reads_a_merged_runs_emulated_twin() -> None:
    c = cold_warm("debian-12/amd64/docker/go1.22/cold-warm:small", 12.0, 0.1)
    c.timings = {"in_container_sec": 10.0, "emulated_twin": {"in_container_sec": 55.0}}  # type: ignore[attr-defined]
    assert charts.qemu_slowdown([c]) == [  # type: ignore[list-item]
        charts.Bar("debian-12/amd64/docker/go1.22 run natively and under QEMU", (5.5,))]


def test_tmpfs_ratios_keep_the_spread_and_leave_out_emulated_cells() -> None:
    ratios = {"goroot-tmpfs/gocache-disk": {"median": 1.08, "min": 0.73, "max": 1.15},
              "goroot-disk/gocache-tmpfs": {"median": 0.92, "min": 0.62, "max": 1.8},
              "broken": {"median": "n/a"}}
    cells = [make("debian-12/amd64/docker/go1.22/tmpfs-goroot", ratio_vs_disk=ratios),
             make("debian-12/arm64/docker/go1.22/tmpfs-goroot", ratio_vs_disk=ratios)]
    assert charts.tmpfs_ratios(cells) == [
        charts.Spread("debian-12/amd64/docker/go1.22 goroot-disk/gocache-tmpfs", 0.92, 0.62, 1.8),
        charts.Spread("debian-12/amd64/docker/go1.22 goroot-tmpfs/gocache-disk", 1.08, 0.73, 1.15)]


def test_concurrent_spreads_each_build_and_puts_the_lone_build_beside_filesystem_rows() -> None:
    same = make("debian-12/amd64/docker/go1.22/concurrent:same",
                builds=[{"ran": True, "sec": s} for s in (70.0, 72.0, 69.0)] + [{"ran": False, "sec": None}])
    fs = make("debian-12/amd64/docker/go1.22/filesystem:xfs", cold={"sec": 15.0},
              concurrent={"builds": 3, "failed": 0, "sec": 34.0})
    spreads, alone = charts.concurrent([same, fs])
    assert spreads == [charts.Spread("debian-12/amd64/docker/go1.22 concurrent:same (3 builds)", 70.0, 69.0, 72.0),
                       charts.Spread("debian-12/amd64/docker/go1.22 filesystem:xfs (3 builds, wall of all)",
                                     34.0, 34.0, 34.0)]
    assert [b.values for b in alone] == [(None,), (15.0,)]


def test_a_run_without_chart_data_has_no_charts_section() -> None:
    run = RunResults(run_dir=Path("r"), meta={"run_id": "r"},
                     cells=[make("debian-12/amd64/docker/go1.22/env")], problems=[])
    assert charts.charts(run.cells) == []
    assert 'id="charts"' not in html_report.render(run)


def test_charts_are_inline_svg_without_urls_and_with_distinct_ids() -> None:
    cells = [cold_warm(NATIVE, 12.0, 0.1), cold_warm(EMULATED, 84.0, 0.9)]
    drawn = charts.charts(cells)  # type: ignore[arg-type]
    assert [c.id for c in drawn] == ["chart-cold-warm", "chart-qemu"]
    for c in drawn:
        assert c.svg.startswith("<svg") and c.svg.endswith("</svg>")
        assert "://" not in c.svg and "<script" not in c.svg and "<?xml" not in c.svg
    ids = [i for c in drawn for i in re.findall(r' id="([^"]+)"', c.svg)]
    assert len(ids) == len(set(ids))  # two charts on one page never define the same id
    page = html_report.render(RunResults(run_dir=Path("r"), meta={"run_id": "r"},
                                         cells=cells, problems=[]))  # type: ignore[arg-type]
    assert page.count("<svg") == 2 and '<a href="#charts">Charts</a>' in page
