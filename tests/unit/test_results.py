"""Result files: versioned, atomic, and a damaged run is reported, not a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.model import Status
from runner.results import CellResult, ResultFormatError, cell_path, latest_run, load_run, write_json_atomic


def make(cell_id: str = "debian-12/amd64/docker/go1.22/env", status: Status = Status.PASS, **obs: object) -> CellResult:
    distro, arch, engine, tc, scenario = cell_id.split("/")
    name, _, release = distro.partition("-")
    sc, _, variant = scenario.partition(":")
    return CellResult(
        cell={"id": cell_id, "distro": distro, "distro_name": name.title(), "release": release, "arch": arch,
              "engine": engine, "toolchain": tc, "scenario": sc, "variant": variant or None,
              "emulated": arch == "arm64", "eol": "2028-06-30"},
        status=status, reason=f"{status.value} because", observations=dict(obs),
        reproduce=f"go-cache-matrix run --select {cell_id}",
    )


def test_round_trip() -> None:
    r = make(status=Status.UNAVAILABLE, x=1)
    d = r.to_dict()
    assert d["schema_version"] == 1
    back = CellResult.from_dict(json.loads(json.dumps(d)))
    assert back.to_dict() == d


def test_other_schema_version_is_refused() -> None:
    d = make().to_dict() | {"schema_version": 99}
    with pytest.raises(ResultFormatError, match="schema_version 99"):
        CellResult.from_dict(d, "x.json")


def test_load_run_reports_damage_instead_of_crashing(tmp_path: Path) -> None:
    good = make()
    write_json_atomic(cell_path(tmp_path, "good"), good.to_dict())
    (tmp_path / "cells" / "broken.json").write_text('{"schema_version": 1, "id": ')
    (tmp_path / "cells" / ".half.json.tmp123").write_text("{")
    run = load_run(tmp_path)
    assert [c.id for c in run.cells] == [good.id]
    text = "\n".join(run.problems)
    assert "broken.json" in text and "unfinished write" in text and "run.json is missing" in text


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / "a" / "b.json", {"k": 1})
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b.json"]


def test_the_latest_run_is_the_one_written_last_not_the_last_name(tmp_path: Path) -> None:
    """Run ids do not sort by time (`default-4`, `bench-…-default`, dated ids): report/show with no run pick the run
    whose run.json was written last."""
    import os
    for i, name in enumerate(("zz-named-run", "20261206T150000Z-abc123", "bench-20261206T140000Z-x-default")):
        (tmp_path / "runs" / name).mkdir(parents=True)
        meta = tmp_path / "runs" / name / "run.json"
        meta.write_text("{}")
        os.utime(meta, (1_000_000 + i, 1_000_000 + (i if name != "20261206T150000Z-abc123" else 99)))
    assert latest_run(tmp_path) == tmp_path / "runs" / "20261206T150000Z-abc123"
    assert latest_run(tmp_path / "none") is None
