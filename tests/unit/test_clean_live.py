"""`clean` spares live runs by default (issue 19, item 5): through the real CLI entry with an engine stand-in that
lists labelled resources and records what is swept, and loop mounts named as a run leaves them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest

from runner import cli, resources
from runner.engine import LABEL_MANAGED, LABEL_RUN
from runner.model import Engine
from runner.resources import LABEL_OWNER, owner_token


class FakeDriver:
    swept: ClassVar[list[dict[str, str]]] = []
    labels: ClassVar[list[dict[str, str]]] = []

    def __init__(self, engine: Engine, *a: Any, **kw: Any) -> None:
        self.engine = engine

    def check(self) -> dict[str, str]:
        return {}

    def labelled(self, keys: list[str]) -> list[dict[str, str]]:
        return [lab for lab in self.labels if all(k in lab for k in keys)]

    def build_records(self, types: tuple[str, ...] = ()) -> list[Any]:
        return []

    def remove_build_records(self, ids: list[str]) -> None:
        assert not ids, "this engine listed no records"

    def sweep(self, match: dict[str, str]) -> dict[str, int]:
        FakeDriver.swept.append(dict(match))
        return {"containers": 1, "volumes": 0}


@pytest.fixture
def two_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    dead = owner_token(child.pid)
    child.wait()
    live = owner_token()
    FakeDriver.swept = []
    FakeDriver.labels = [{LABEL_RUN: "live1", LABEL_OWNER: live, LABEL_MANAGED: "1"},
                         {LABEL_RUN: "dead1", LABEL_OWNER: dead, LABEL_MANAGED: "1"}]
    monkeypatch.setattr(cli, "driver_for", FakeDriver)
    monkeypatch.setenv("GCM_CACHE_DIR", str(tmp_path / "cache"))
    points = {}
    for run_id, owner in (("live1", live), ("dead1", dead)):
        run_dir = tmp_path / "reports" / "runs" / run_id
        run_dir.mkdir(parents=True)
        (run_dir / "run.json").write_text(json.dumps({"run_id": run_id, "owner": owner}))
        points[run_id] = str(run_dir / "work" / "c" / "data" / "ext4-mnt")
    unmounted: list[str] = []
    monkeypatch.setattr(resources, "leftover_loop_mounts",
                        lambda run_id=None, mounts=None: [p for r, p in points.items() if run_id in (None, r)])
    monkeypatch.setattr(resources, "_umount", lambda p: unmounted.append(str(p)))
    return {"points": points, "unmounted": unmounted, "dead": dead}


def test_clean_without_arguments_leaves_live_runs_alone(two_runs: dict[str, Any],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["clean"]) == 0
    out = capsys.readouterr().out
    assert FakeDriver.swept == [{LABEL_RUN: "dead1", LABEL_OWNER: two_runs["dead"]}]
    assert two_runs["points"]["live1"] not in two_runs["unmounted"]
    assert two_runs["points"]["dead1"] in two_runs["unmounted"]
    assert "left 1 live run(s) alone: live1" in out and "run dead1" in out


def test_clean_all_removes_live_runs_too_and_says_so(two_runs: dict[str, Any],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["clean", "--all"]) == 0
    out = capsys.readouterr().out
    assert FakeDriver.swept == [{LABEL_MANAGED: "1"}]
    assert sorted(two_runs["unmounted"]) == sorted(two_runs["points"].values())
    assert "--all removed the resources of 1 live run(s) too: live1" in out


def test_clean_run_is_that_run_only(two_runs: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["clean", "--run", "live1"]) == 0
    assert FakeDriver.swept == [{LABEL_RUN: "live1"}]
    assert two_runs["unmounted"] == [two_runs["points"]["live1"]]
