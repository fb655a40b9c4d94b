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
    assert f"{m}:3: settings.engine: unknown key (did you mean 'engines'?)" in err and "fix:" in err


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


def _run(tmp_path: Path, run_id: str, *cells: object) -> Path:
    run_dir = tmp_path / "runs" / run_id
    write_json_atomic(run_dir / "run.json", {"run_id": run_id, "profile": "default"})
    for c in cells:
        d = c.to_dict()  # type: ignore[attr-defined]
        write_json_atomic(run_dir / "cells" / f"{d['id'].replace('/', '__')}.json", d)
    return run_dir


def test_report_outputs_and_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from runner.model import Status

    old = _run(tmp_path, "old", make(), make("debian-13/amd64/docker/go1.22/env"))
    new = _run(tmp_path, "new", make(status=Status.FAIL), make("debian-13/amd64/docker/go1.22/env"))
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    args = ["report", str(new), "--baseline", str(old), "--html", str(tmp_path / "m.html"),
            "--junit", str(tmp_path / "j.xml"), "--github-summary-file", str(summary)]
    assert main(args) == 0
    assert main([*args, "--fail-on-change"]) == 1, "a changed status fails the check when asked"
    md = (new / "matrix.md").read_text()
    assert "Changes since baseline `old`" in md and "debian-12/amd64/docker/go1.22/env" in md
    assert summary.read_text().startswith("earlier step\n"), "the summary is appended to, not replaced"
    assert (tmp_path / "m.html").read_text().startswith("<!DOCTYPE html>") and (tmp_path / "j.xml").exists()
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    assert main(["report", str(new), "--github-summary"]) == 2
    assert "$GITHUB_STEP_SUMMARY is not set" in capsys.readouterr().err


def test_report_github_summary_does_not_swallow_the_run_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = _run(tmp_path, "r1", make())
    summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert main(["report", "--reports", str(tmp_path / "elsewhere"), "--github-summary", str(run_dir)]) == 0
    assert (run_dir / "matrix.md").exists() and summary.read_text().strip(), "RUN_DIR is the run, not the summary"
    with pytest.raises(SystemExit) as e:  # argparse's usage error
        main(["report", str(run_dir), "--github-summary", "--github-summary-file", str(summary)])
    assert e.value.code == 2 and "not allowed with" in capsys.readouterr().err


def test_report_fail_on_change_needs_a_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = _run(tmp_path, "r1", make())
    assert main(["report", str(run_dir), "--fail-on-change"]) == 2
    assert "--fail-on-change needs --baseline OLD_RUN" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--html", "--junit", "--github-summary-file", "-o"])
def test_report_unwritable_output_is_one_error_naming_the_path(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                option: str) -> None:
    run_dir = _run(tmp_path, "r1", make())
    bad = tmp_path / "no-such-dir" / "out.file"
    assert main(["report", str(run_dir), option, str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"go-cache-matrix: error: cannot write {bad}" in err and "Traceback" not in err


def test_merge_into_unwritable_reports_is_one_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = _run(tmp_path, "r1", make())
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    assert main(["merge", str(run_dir), "--reports", str(blocker)]) == 2
    err = capsys.readouterr().err
    assert "cannot write the merged run to" in err and str(blocker) in err and "Traceback" not in err


def test_plan_with_an_adhoc_distro(project_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    matrix = str(project_root / "matrix.toml")
    assert main(["plan", "--matrix", matrix, "--distro", "alpine-3.25=docker.io/library/alpine:3.25",
                 "--select", "alpine-3.25/amd64/*/go1.22/env"]) == 0
    assert capsys.readouterr().out.strip() == "alpine-3.25/amd64/docker/go1.22/env"
    for bad, words in (("alpine", "NAME=IMAGE_REF"), ("plan9-1=img", "package family"),
                       ("debian-13=debian@sha1:ab", "not a digest")):
        assert main(["plan", "--matrix", matrix, "--distro", bad]) == 2
        assert words in capsys.readouterr().err
