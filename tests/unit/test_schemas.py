"""runner/schemas: the documented shapes of cell, run and plan JSON, and `report` naming files that do not fit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner import config as config_mod
from runner import plan, schemas
from runner.cli import main
from runner.model import Arch

ROOT = Path(__file__).resolve().parents[2]
CELL = {"id": "debian-12/amd64/docker/go1.22/env", "distro": "debian-12", "arch": "amd64", "engine": "docker",
        "toolchain": "go1.22", "scenario": "env", "variant": None, "emulated": False}


def cell_result(**over: object) -> dict[str, object]:
    return {"schema_version": 1, "id": CELL["id"], "cell": CELL, "status": "pass", "reason": "ok",
            "reproduce": "go-cache-matrix run --select x", **over}


def test_every_profile_plan_fits_the_plan_schema() -> None:
    cfg = config_mod.load(ROOT / "matrix.toml")
    for profile in cfg.profiles:
        cells = plan.build_plan(cfg, plan.Choices(profile=profile), host_arch=Arch.AMD64)
        out = {"schema_version": 1, **plan.plan_to_dict(cells, host_arch=Arch.AMD64, profile=profile)}
        assert schemas.validate("plan", out, profile) == []


def test_a_cell_of_the_wrong_shape_is_named_with_where_and_what() -> None:
    assert schemas.validate("cell", cell_result(), "c.json") == []
    problems = schemas.validate("cell", cell_result(status="maybe"), "c.json")
    assert problems and problems[0].startswith("c.json: status: 'maybe' is not one of"), problems


def test_report_lists_schema_problems_as_warnings_not_tracebacks(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "runs" / "r1"
    (run / "cells").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"schema_version": 1, "run_id": "r1", "warnings": "not a list"}))
    (run / "cells" / "a.json").write_text(json.dumps(cell_result(timings=[1, 2])))
    assert main(["report", str(run), "--reports", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    # The loader's own shape check names these first (runner.results); the schema covers the rest.
    assert "run.json: warnings has a shape this tool does not write" in err, err
    assert "a.json: not a cell result (timings is a JSON array)" in err, err
