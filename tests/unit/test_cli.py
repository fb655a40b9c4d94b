"""The CLI's exit codes and messages, without an engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.cli import main
from runner.results import write_json_atomic
from tests.unit.test_results import make


def test_plan_json(project_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--matrix", str(project_root / "matrix.toml"), "--profile", "smoke", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["count"] == 2


def test_nothing_selected_exits_3(project_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["plan", "--matrix", str(project_root / "matrix.toml"), "--select", "nope/*"])
    assert code == 3
    err = capsys.readouterr().err
    assert err.startswith("go-cache-matrix: error: --select 'nope/*'") and "Traceback" not in err


def test_bad_matrix_exits_2_naming_file_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = tmp_path / "m.toml"
    m.write_text("schema_version = 1\n[settings]\nengine = ['docker']\n")
    assert main(["plan", "--matrix", str(m)]) == 2
    err = capsys.readouterr().err
    assert f"{m}: settings.engine: unknown key (did you mean 'engines'?)" in err and "fix:" in err


def test_report_rerenders_without_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "runs" / "r1"
    write_json_atomic(run_dir / "run.json", {"run_id": "r1", "profile": "smoke"})
    write_json_atomic(run_dir / "cells" / "a.json", make().to_dict())
    assert main(["report", "--reports", str(tmp_path)]) == 0
    text = (run_dir / "matrix.md").read_text()
    assert "debian-12/amd64/docker/go1.22/env" in text


def test_report_without_runs_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--reports", str(tmp_path)]) == 2
    assert "no runs under" in capsys.readouterr().err
