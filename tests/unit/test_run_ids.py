"""Run ids and deletions (issue 19, item 1), through the real CLI entry in-process: one run-id grammar for `run`
and `merge`, no argument makes the tool delete outside its own directories, an existing run id is refused unless
resumed, and `merge` swaps its output in only once the new one is complete."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runner import merge as merge_mod
from runner.cli import main
from runner.paths import UnsafeDeletion, remove_tree, run_id_problem
from runner.results import write_json_atomic
from tests.unit.test_results import make

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ["--matrix", str(ROOT / "matrix.toml"), "--profile", "smoke"]

BAD_IDS = [".", "..", "../x", "/tmp/x", "a/b", "", "-x", ".hidden", "a b", "a;b", "$(id)", "x\ny", "é", "a" * 65]


def _run_dir(reports: Path, run_id: str) -> Path:
    run_dir = reports / "runs" / run_id
    write_json_atomic(run_dir / "run.json", {"run_id": run_id, "profile": "smoke"})
    write_json_atomic(run_dir / "cells" / "a.json", make().to_dict())
    return run_dir


@pytest.mark.parametrize("run_id", ["r1", "nightly-2026.12.06", "A_b-c.d", "x" * 64])
def test_good_run_ids(run_id: str) -> None:
    assert run_id_problem(run_id) is None


@pytest.mark.parametrize("run_id", BAD_IDS)
def test_bad_run_id_for_merge_is_exit_2_and_deletes_nothing(tmp_path: Path, run_id: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    reports = tmp_path / "reports"
    src = _run_dir(reports, "s1")
    outside = tmp_path / "x"
    outside.mkdir()
    (outside / "keep").write_text("mine")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main(["merge", str(src), "--reports", str(reports), f"--run-id={run_id}"]) == 2
    err = capsys.readouterr().err
    assert "error: --run-id" in err and "fix:" in err and "Traceback" not in err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("run_id", BAD_IDS)
def test_bad_run_id_for_run_is_exit_2_before_any_engine(tmp_path: Path, run_id: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", *SMOKE, "--reports", str(tmp_path), f"--run-id={run_id}"]) == 2
    err = capsys.readouterr().err
    assert "error: --run-id" in err and "fix:" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_run_with_an_existing_run_id_is_refused_unless_resumed(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    _run_dir(tmp_path, "r1")
    assert main(["run", *SMOKE, "--reports", str(tmp_path), "--run-id", "r1"]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--resume" in err
    assert main(["run", *SMOKE, "--reports", str(tmp_path), "--resume"]) == 2
    assert "--resume needs the --run-id" in capsys.readouterr().err
    assert main(["run", *SMOKE, "--reports", str(tmp_path), "--run-id", "nope", "--resume"]) == 2
    assert "is not a run" in capsys.readouterr().err


def test_remove_tree_refuses_outside_and_symlink_escapes(tmp_path: Path) -> None:
    root = tmp_path / "reports" / "runs"
    (root / "r1" / "work").mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("mine")
    for path in (victim, root, root / ".." / ".." / "victim", root / "r1" / ".." / ".."):
        with pytest.raises(UnsafeDeletion):
            remove_tree(path, root)
    # A run's work dir that is a symlink out of the tree: the link goes, what it points to stays.
    os.symlink(victim, root / "r1" / "work2")
    remove_tree(root / "r1" / "work2", root)
    assert (victim / "keep").read_text() == "mine" and not (root / "r1" / "work2").exists()
    # A run dir reached through a symlinked parent that leaves the tree: refused.
    os.symlink(tmp_path, root / "r1" / "up")
    with pytest.raises(UnsafeDeletion):
        remove_tree(root / "r1" / "up" / "victim", root)
    assert (victim / "keep").exists()
    remove_tree(root / "r1" / "work", root)
    assert not (root / "r1" / "work").exists()


def test_merge_keeps_the_previous_output_until_the_new_one_is_complete(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    reports = tmp_path / "reports"
    src = _run_dir(tmp_path / "in", "s1")
    assert main(["merge", str(src), "--reports", str(reports)]) == 0
    merged = reports / "runs" / "merged"
    before = {p.name: p.read_text() for p in merged.rglob("*.json")}
    real = merge_mod.write_json_atomic

    def fail_on_run_json(path: Path, data: object) -> None:
        if path.name == "run.json":
            raise OSError(28, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(merge_mod, "write_json_atomic", fail_on_run_json)
    assert main(["merge", str(src), "--reports", str(reports)]) != 0
    assert "Traceback" not in capsys.readouterr().err
    assert {p.name: p.read_text() for p in merged.rglob("*.json")} == before
    assert sorted(p.name for p in (reports / "runs").iterdir()) == ["merged"]  # no temp dir left beside it
