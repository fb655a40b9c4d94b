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


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0", "", "²/3", "1/²", "١/٣", "1/3\n", " 1/3", "+1/3"])
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


def _write_run(run_dir: Path, run_id: str, cells: list, arch: str = "amd64",  # type: ignore[type-arg]
               **extra: object) -> None:
    for c in cells:
        write_json_atomic(cell_path(run_dir, cell_slug(c.id)), c.to_dict())
    write_json_atomic(run_dir / "run.json", {"run_id": run_id, "profile": "default", "started": "2026-11-28T01:00:00",
                                             "finished": "2026-11-28T02:00:00", "host": {"arch": arch},
                                             "missing_cells": [], **extra})


def test_merge_keeps_what_each_shards_profile_left_out_or_kept_to_a_row(tmp_path: Path) -> None:
    from runner.render.markdown import kept_to_lines, qemu_left_out

    _write_run(tmp_path / "a", "a", [make("debian-12/amd64/docker/go1.27/env")],
               kept_to={"tmpfs-goroot": "on debian-12 with go1.27"})
    _write_run(tmp_path / "b", "b", [make("debian-12/arm64/docker/go1.27/env")], arch="arm64",
               kept_to={"selinux": "with go1.27"}, left_out_under_qemu={"scenario filesystem": "too slow"})
    merged = merge.merge([str(tmp_path / "a"), str(tmp_path / "b")], tmp_path / "out")
    assert merged.meta["kept_to"] == {"tmpfs-goroot": "on debian-12 with go1.27", "selinux": "with go1.27"}
    assert "- scenario filesystem: too slow" in qemu_left_out(merged.meta)
    assert "- selinux: with go1.27" in kept_to_lines(merged.meta), "the CI summary renders the merged run"


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


# ---------------------------------------------------------------- plan hash: shards of one split


def test_plan_hash_is_shared_by_the_shards_and_depends_on_the_host_arch(cfg: config.MatrixConfig) -> None:
    hashes = {plan.plan_hash(cfg, plan.Choices(shard=(i, 3)), host_arch=Arch.AMD64) for i in (1, 2, 3)}
    assert len(hashes) == 1, "shards of one split have one plan hash"
    (h,) = hashes
    assert plan.plan_hash(cfg, plan.Choices(shard=(1, 3)), host_arch=Arch.ARM64) != h, "emulated costs differ"
    assert plan.plan_hash(cfg, plan.Choices(shard=(1, 2)), host_arch=Arch.AMD64) != h, "another shard count"
    cells = plan.build_plan(cfg, plan.Choices(shard=(1, 3)), host_arch=Arch.AMD64)
    assert plan.plan_to_dict(cells, host_arch=Arch.AMD64, profile="default", plan_hash=h)["hash"] == h


def _write_shard(run_dir: Path, run_id: str, cells: list, shard: str, plan_hash: str,  # type: ignore[type-arg]
                 arch: str) -> None:
    _write_run(run_dir, run_id, cells, arch=arch)
    meta = json.loads((run_dir / "run.json").read_text())
    write_json_atomic(run_dir / "run.json", {**meta, "choices": {"shard": shard}, "plan": {"hash": plan_hash}})


def test_merge_warns_when_shards_were_planned_differently(tmp_path: Path) -> None:
    _write_shard(tmp_path / "s1", "s1", [make("debian-12/amd64/docker/go1.22/env")], "1/2", "aaaa", "amd64")
    _write_shard(tmp_path / "s2", "s2", [make("debian-13/amd64/docker/go1.22/env")], "2/2", "aaaa", "amd64")
    same = merge.merge([str(tmp_path / "s1"), str(tmp_path / "s2")], tmp_path / "out")
    assert not any("planned differently" in p for p in same.problems)
    _write_shard(tmp_path / "s2", "s2", [make("debian-13/amd64/docker/go1.22/env")], "2/2", "bbbb", "arm64")
    differ = merge.merge([str(tmp_path / "s1"), str(tmp_path / "s2")], tmp_path / "out")
    (warning,) = [p for p in differ.problems if "planned differently" in p]
    assert "shards were planned differently" in warning and "s1 (aaaa)" in warning and "s2 (bbbb)" in warning
    assert "runners of one arch or pass --arch" in warning


# ---------------------------------------------------------------- merge: native vs emulated, output dir


def test_merge_prefers_a_measured_emulated_result_over_an_unavailable_native_one(tmp_path: Path) -> None:
    cid = "debian-12/arm64/docker/go1.22/cold-warm:small"
    emulated = make(cid)
    emulated.timings = {"in_container_sec": 50.0}
    native = make(cid, Status.UNAVAILABLE)
    native.cell = {**native.cell, "emulated": False}
    for order in (("nat", "emu"), ("emu", "nat")):
        _write_run(tmp_path / "emu", "emu", [emulated])
        _write_run(tmp_path / "nat", "nat", [native], arch="arm64")
        merged = merge.merge([str(tmp_path / d) for d in order], tmp_path / "out")
        (cell,) = merged.cells
        assert cell.status is Status.PASS and cell.cell["emulated"] is True, order
        assert cell.timings["native_twin"]["status"] == "unavailable"
        (conflict,) = merged.meta["conflicts"]
        assert "unavailable natively (unavailable because) but pass emulated" in conflict
        assert "shows the emulated result" in conflict


def test_merge_skips_an_earlier_merge_found_under_an_input(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    _write_run(reports / "runs" / "r1", "r1", [make()])
    _write_run(reports / "runs" / "merged", "merged", [make("debian-13/amd64/docker/go1.22/env")])
    merged = merge.merge([str(reports)], reports)
    assert [s["run_id"] for s in merged.meta["shards"]] == ["r1"]
    assert [c.id for c in merged.cells] == [make().id]
    assert merge.find_runs([str(reports)], reports / "runs" / "merged") == [reports / "runs" / "r1"]


def test_merge_never_removes_an_input_under_its_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    inner = out / "runs" / "merged" / "kept"
    _write_run(inner, "kept", [make()])
    with pytest.raises(UsageError, match="also an input"):
        merge.merge([str(inner)], out)
    assert (inner / "run.json").exists() and len(list((inner / "cells").iterdir())) == 1


def test_merge_into_an_unwritable_place_is_one_usage_error(tmp_path: Path) -> None:
    _write_run(tmp_path / "r1", "r1", [make()])
    (tmp_path / "afile").write_text("")
    with pytest.raises(UsageError, match="cannot write the merged run to") as e:
        merge.merge([str(tmp_path / "r1")], tmp_path / "afile")
    assert str(tmp_path / "afile") in str(e.value)


# ---------------------------------------------------------------- endpoint contexts


def _fake_context(monkeypatch: pytest.MonkeyPatch, *, host: str | None = None,
                  error: BaseException | None = None) -> None:
    import subprocess

    def run(cmd: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        assert cmd[1:3] == ["context", "inspect"]
        if error is not None:
            raise error
        if host is None:
            return subprocess.CompletedProcess(cmd, 1, "", f"context {cmd[3]!r} does not exist")
        return subprocess.CompletedProcess(cmd, 0, host + "\n", "")

    monkeypatch.setattr(preflight.subprocess, "run", run)


class _EndpointDriver:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def check(self) -> dict[str, str]:
        return {"arch": "arm64", "engine": "docker", "version": "27.0"}


def test_a_context_endpoint_is_judged_by_the_url_it_resolves_to(monkeypatch: pytest.MonkeyPatch) -> None:
    check = preflight.check(Arch.ARM64, Arch.AMD64, driver=_EndpointDriver("unix:///run/arm/docker.sock"),
                            endpoint="context:arm", probes=None, labels={})  # type: ignore[arg-type]
    assert check.ok and check.mode == "endpoint", check.line()
    _fake_context(monkeypatch, host="tcp://arm-box:2376")
    remote = preflight.check(Arch.ARM64, Arch.AMD64, driver=None, endpoint="context:arm", probes=None, labels={})
    assert not remote.ok and "another machine" in remote.detail and "tcp://arm-box:2376" in remote.detail
    _fake_context(monkeypatch, host="unix:///run/arm/docker.sock")
    local = preflight.check(Arch.ARM64, Arch.AMD64, driver=None, endpoint="context:arm", probes=None, labels={})
    assert "another machine" not in local.detail


@pytest.mark.parametrize("error", [None, FileNotFoundError(2, "No such file or directory", "docker"),
                                   __import__("subprocess").TimeoutExpired(["docker"], 30)])
def test_an_unknown_context_is_a_failed_check_not_a_crash(monkeypatch: pytest.MonkeyPatch, cfg: config.MatrixConfig,
                                                          tmp_path: Path, error: BaseException | None) -> None:
    from runner.execute import RunContext
    from runner.model import Engine

    _fake_context(monkeypatch, error=error)
    ctx = RunContext(run_id="t", run_dir=tmp_path, cfg=cfg, images_dir=tmp_path, host_arch=Arch.AMD64,
                     profile="default")
    check = ctx.arch_check(Arch.ARM64, Engine.DOCKER, "context:nope")
    assert not check.ok and check.mode == "endpoint" and "'nope'" in check.detail
    assert "docker context create nope --docker host=" in (check.fix or "") and "unix://" in (check.fix or "")
    assert check.endpoint == "context:nope"
