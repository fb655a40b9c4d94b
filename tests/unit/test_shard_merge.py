"""Sharding, endpoint routing in the plan, the pure preflight branches, and merge: no engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner import config, merge, plan, preflight
from runner.errors import NothingSelected, UsageError
from runner.model import Arch, Status, cell_slug
from runner.render.markdown import compat_table
from runner.results import cell_path, load_run, write_json_atomic
from tests.unit.test_results import make

MATRIX = Path(__file__).resolve().parents[2] / "matrix.toml"


@pytest.fixture(scope="module")
def cfg() -> config.MatrixConfig:
    return config.load(MATRIX)


def test_shards_partition_the_plan_and_balance_cost(cfg: config.MatrixConfig) -> None:
    full = plan.build_plan(cfg, plan.Choices(), host_arch=Arch.AMD64)
    shards = [plan.build_plan(cfg, plan.Choices(shard=(i, 3)), host_arch=Arch.AMD64) for i in (1, 2, 3)]
    ids = [c.id for s in shards for c in s]
    assert sorted(ids) == sorted(c.id for c in full) and len(ids) == len(set(ids)), "not a partition"
    loads = [sum(c.cost for c in s) for s in shards]
    assert max(loads) - min(loads) <= max(c.cost for c in full), loads
    again = plan.build_plan(cfg, plan.Choices(shard=(2, 3)), host_arch=Arch.AMD64)
    assert [c.id for c in again] == [c.id for c in shards[1]], "sharding must be deterministic"


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0", ""])
def test_bad_shard_is_one_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="I/N"):
        plan.parse_shard(text)


def test_more_shards_than_cells(cfg: config.MatrixConfig) -> None:
    with pytest.raises(NothingSelected, match="shard 5/5 gets no cell"):
        plan.build_plan(cfg, plan.Choices(profile="smoke", shard=(5, 5)), host_arch=Arch.AMD64)


def test_an_endpoint_makes_its_arch_native(cfg: config.MatrixConfig) -> None:
    routed = plan.Choices(select=("debian-12/arm64/*/env",), endpoints={Arch.ARM64: "ssh://me@arm-box"})
    cells = plan.build_plan(cfg, routed, host_arch=Arch.AMD64)
    assert cells and all(not c.emulated and c.endpoint == "ssh://me@arm-box" for c in cells)
    here = plan.build_plan(cfg, plan.Choices(select=("debian-12/arm64/*/env",)), host_arch=Arch.AMD64)
    assert all(c.emulated and c.endpoint is None for c in here)


@pytest.mark.parametrize("item", ["arm64", "arm=unix:///x", "arm64=http://box", "arm64=unix://"])
def test_bad_endpoint_arguments(item: str) -> None:
    with pytest.raises(UsageError) as e:
        config.parse_endpoint_args([item], "--endpoint")
    assert "--endpoint" in str(e.value) and e.value.fix


def test_endpoints_in_matrix_toml(tmp_path: Path) -> None:
    text = MATRIX.read_text().replace("reps = 5", 'reps = 5\nendpoints = { arm64 = "ftp://box" }')
    (tmp_path / "m.toml").write_text(text)
    with pytest.raises(config.ConfigError, match=r"settings\.endpoints\.arm64: 'ftp://box' is not an engine"):
        config.load(tmp_path / "m.toml")


@pytest.mark.parametrize(("url", "local"), [("unix:///run/docker.sock", True), ("tcp://127.0.0.1:2375", True),
                                            ("tcp://arm-box:2376", False), ("ssh://me@arm-box", False)])
def test_is_local(url: str, local: bool) -> None:
    assert preflight.is_local(url) is local


def test_remote_endpoint_is_unavailable_with_the_shard_and_merge_fix() -> None:
    check = preflight.check(Arch.ARM64, Arch.AMD64, driver=None, endpoint="ssh://me@arm-box", probes=None, labels={})
    assert not check.ok and check.mode == "endpoint"
    assert "another machine" in check.detail and "--arch arm64" in (check.fix or "") and "merge" in (check.fix or "")
    assert preflight.ArchCheck.from_dict(json.loads(json.dumps(check.to_dict()))) == check


def _write_run(run_dir: Path, run_id: str, cells: list, arch: str = "amd64") -> None:  # type: ignore[type-arg]
    for c in cells:
        write_json_atomic(cell_path(run_dir, cell_slug(c.id)), c.to_dict())
    write_json_atomic(run_dir / "run.json", {"run_id": run_id, "profile": "default", "started": "2026-11-28T01:00:00",
                                             "finished": "2026-11-28T02:00:00", "host": {"arch": arch},
                                             "missing_cells": []})


def test_merge_joins_shards_and_reports_conflicts(tmp_path: Path) -> None:
    a = [make("debian-12/amd64/docker/go1.22/env"), make("debian-13/amd64/docker/go1.22/env", Status.FAIL)]
    b = [make("debian-12/arm64/docker/go1.22/env"), make("debian-12/amd64/docker/go1.22/env", Status.ERROR)]
    _write_run(tmp_path / "artifacts" / "shard-a" / "run-a", "run-a", a)
    _write_run(tmp_path / "run-b", "run-b", b, arch="arm64")
    merged = merge.merge([str(tmp_path / "artifacts"), str(tmp_path / "run-b")], tmp_path / "out")
    assert sorted(c.id for c in merged.cells) == sorted({c.id for c in a + b})
    assert [s["run_id"] for s in merged.meta["shards"]] == ["run-a", "run-b"]
    assert [s["host"]["arch"] for s in merged.meta["shards"]] == ["amd64", "arm64"]
    (conflict,) = merged.meta["conflicts"]
    assert "debian-12/amd64/docker/go1.22/env" in conflict and "DIFFERENT" in conflict
    kept = next(c for c in merged.cells if c.id == "debian-12/amd64/docker/go1.22/env")
    assert kept.status is Status.PASS, "the first directory wins"
    assert compat_table(load_run(tmp_path / "out" / "runs" / "merged").cells) == compat_table(merged.cells)


def test_merge_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such directory"):
        merge.merge([str(tmp_path / "nope")], tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="holds no run directory"):
        merge.merge([str(tmp_path / "empty")], tmp_path / "out")
    _write_run(tmp_path / "out" / "runs" / "merged", "x", [make()])
    with pytest.raises(UsageError, match="also an input"):
        merge.merge([str(tmp_path / "out" / "runs" / "merged")], tmp_path / "out")


def test_merge_keeps_native_and_records_the_emulated_twin(tmp_path: Path) -> None:
    cid = "debian-12/arm64/docker/go1.22/cold-warm:small"
    emulated = make(cid)
    emulated.timings = {"in_container_sec": 50.0}
    native = make(cid)
    native.cell = {**native.cell, "emulated": False}
    native.timings = {"in_container_sec": 5.0}
    _write_run(tmp_path / "emu", "emu", [emulated])
    _write_run(tmp_path / "nat", "nat", [native], arch="arm64")
    merged = merge.merge([str(tmp_path / "emu"), str(tmp_path / "nat")], tmp_path / "out")
    (cell,) = merged.cells
    assert cell.cell["emulated"] is False and cell.timings["emulated_twin"]["in_container_sec"] == 50.0
    assert merged.meta["conflicts"] == [], "the same status natively and emulated is not a clash"
    from runner.render.markdown import detail_tables
    assert "10.0× (emulated run of this arch)" in detail_tables(merged.cells)
