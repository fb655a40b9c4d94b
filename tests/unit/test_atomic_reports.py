"""Atomic reports and a full disk named as such (issue 19, item 7), through the real CLI entry in-process."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from runner import results
from runner.cli import main
from runner.results import load_run, write_json_atomic
from tests.unit.test_results import make


def _run(reports: Path, run_id: str = "r1") -> Path:
    run_dir = reports / "runs" / run_id
    write_json_atomic(run_dir / "run.json", {"run_id": run_id, "profile": "smoke"})
    write_json_atomic(run_dir / "cells" / "a.json", make().to_dict())
    return run_dir


def test_top_level_reports_are_replaced_not_rewritten_in_place(tmp_path: Path) -> None:
    """A reader holding reports/matrix.md open (or a second run writing it) keeps a whole file: the new one is
    renamed over it, so the old inode keeps the old text instead of being truncated and rewritten."""
    src = _run(tmp_path / "in")
    assert main(["merge", str(src), "--reports", str(tmp_path / "out")]) == 0
    top = tmp_path / "out" / "matrix.md"
    with open(top, encoding="utf-8") as held:
        old_inode, old_text = os.fstat(held.fileno()).st_ino, top.read_text()
        assert main(["merge", str(src), "--reports", str(tmp_path / "out")]) == 0
        assert held.read() == old_text
    assert os.stat(top).st_ino != old_inode
    assert not list((tmp_path / "out").rglob(".*.tmp*"))


def test_a_full_disk_is_named_with_the_path_and_leaves_no_temp_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    src = _run(tmp_path / "in")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(results.os, "fsync", full)
    code = main(["merge", str(src), "--reports", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "disk full" in err and str(tmp_path / "out") in err and "Traceback" not in err, err
    leftovers = [p for p in tmp_path.rglob("*") if ".tmp" in p.name or ".merging" in p.name]
    assert leftovers == []
    monkeypatch.undo()
    run = load_run(src)
    assert not [p for p in run.problems if "writer was killed" in p]


def test_a_full_disk_in_report_is_one_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = _run(tmp_path)
    assert main(["report", str(run_dir), "-o", "/dev/full"]) == 2
    err = capsys.readouterr().err
    assert "error: disk full: cannot write /dev/full" in err and "fix:" in err and "Traceback" not in err
