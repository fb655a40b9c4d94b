"""runner.caches and `clean --prune-caches` / `doctor`'s cache sizes: sizes per kind, pruning only the named
entries strictly inside the cache dir (a symlink out is removed, never followed), refusal while a run is live or
when the cache dir is not the tool's own; and the --json outputs of doctor, report and merge."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from runner import caches, cli, json_out
from runner.engine import LABEL_RUN
from runner.errors import UsageError
from runner.model import Engine, Status
from runner.resources import LABEL_OWNER, owner_token
from tests.unit.test_clean_live import FakeDriver
from tests.unit.test_render_reports import cells as report_cells


def fill(root: Path) -> None:
    (root / "toolchains" / "go1.22-linux-amd64" / "go").mkdir(parents=True)
    (root / "toolchains" / "go1.22-linux-amd64" / "go" / "VERSION").write_bytes(b"x" * 1000)
    (root / "proxy" / "k").mkdir(parents=True)
    (root / "proxy" / "k" / "list").write_bytes(b"y" * 10)
    (root / "locks").mkdir()
    (root / "locks" / "image.lock").write_text("")
    (root / "durations.json").write_text("{}")
    (root / "mystery").write_text("keep me")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "home" / "cache" / "go-cache-matrix"
    root.mkdir(parents=True)
    fill(root)
    monkeypatch.setenv("GCM_CACHE_DIR", str(root))
    return root


def test_usage_sizes_each_kind_and_lists_unknown_entries_apart(cache: Path) -> None:
    by = {u.kind: u for u in caches.usage(cache)}
    assert (by["toolchains"].bytes, by["toolchains"].files) == (1000, 1)
    assert (by["proxy"].bytes, by["durations"].bytes) == (10, 2)
    assert by["rootfs"].paths == () and by["rootfs"].bytes == 0
    assert by["other"].paths == (str(cache / "mystery"),)
    assert "locks" not in json.dumps([u.to_dict() for u in by.values()])


def test_parse_kinds() -> None:
    assert caches.parse_kinds("all") == caches.NAMES
    assert caches.parse_kinds("proxy, toolchains,proxy") == ("proxy", "toolchains")
    with pytest.raises(UsageError, match="unknown kind locks") as e:
        caches.parse_kinds("locks")
    assert "toolchains" in (e.value.fix or "")


def test_prune_deletes_only_the_named_kinds_and_never_locks_or_unknown_entries(cache: Path) -> None:
    done = caches.prune(["toolchains", "durations"], live=[], root=cache)
    assert [(Path(p).name, n) for p, n, _ in done] == [("toolchains", 1000), ("durations.json", 2)]
    assert not (cache / "toolchains").exists() and not (cache / "durations.json").exists()
    assert (cache / "proxy" / "k" / "list").exists() and (cache / "locks" / "image.lock").exists()
    assert (cache / "mystery").read_text() == "keep me"


def test_prune_removes_a_symlink_out_of_the_cache_but_not_its_target(cache: Path, tmp_path: Path) -> None:
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "data").write_text("mine")
    os.symlink(outside, cache / "rootfs")
    caches.prune(["rootfs"], live=[], root=cache)
    assert not (cache / "rootfs").is_symlink() and (outside / "data").read_text() == "mine"


def test_prune_refuses_while_a_run_is_live_and_deletes_nothing(cache: Path) -> None:
    with pytest.raises(UsageError, match="while 1 run\\(s\\) are live: nightly") as e:
        caches.prune(caches.NAMES, live=["nightly"], root=cache)
    assert "Ctrl-C" in (e.value.fix or "")
    assert (cache / "toolchains").exists()


@pytest.mark.parametrize("where", ["/", "home"])
def test_prune_refuses_a_cache_dir_that_is_not_the_tools_own(where: str, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    root = Path("/") if where == "/" else tmp_path
    with pytest.raises(UsageError, match="not a directory of this tool's own"):
        caches.prune(["toolchains"], live=[], root=root)


def _run_dir(reports: Path, run_id: str, owner: str) -> None:
    d = reports / "runs" / run_id
    d.mkdir(parents=True)
    (d / "run.json").write_text(json.dumps({"run_id": run_id, "owner": owner}))


def test_clean_prune_caches_refuses_with_a_live_run_and_sweeps_nothing(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli, "driver_for", FakeDriver)
    FakeDriver.labels, FakeDriver.swept = [], []
    _run_dir(tmp_path / "reports", "busy", owner_token())  # this very process: live
    code = cli.main(["clean", "--prune-caches", "--reports", str(tmp_path / "reports")])
    assert code != 0 and FakeDriver.swept == []
    assert "refusing to prune caches while 1 run(s) are live: busy" in capsys.readouterr().err
    assert (cache / "toolchains").exists()


def test_clean_prune_caches_asks_podman_too(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A live run with resources on podman only (none on docker, no run.json under --reports) still blocks it."""
    class OnPodman(FakeDriver):
        def labelled(self, keys: list[str]) -> list[dict[str, str]]:
            return super().labelled(keys) if self.engine is Engine.PODMAN else []

    monkeypatch.setattr(cli, "driver_for", OnPodman)
    OnPodman.labels, OnPodman.swept = [{LABEL_RUN: "pod-run", LABEL_OWNER: owner_token()}], []
    assert cli.main(["clean", "--prune-caches", "--reports", str(tmp_path / "reports")]) != 0
    assert "pod-run" in capsys.readouterr().err and (cache / "toolchains").exists()


def test_clean_prune_caches_prunes_when_nothing_is_live(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli, "driver_for", FakeDriver)
    FakeDriver.labels, FakeDriver.swept = [], []
    monkeypatch.setattr("runner.resources.unmount_leftovers", lambda *a, **k: 0)
    assert cli.main(["clean", "--prune-caches", "proxy", "--reports", str(tmp_path / "reports")]) == 0
    out = capsys.readouterr().out
    assert f"caches: removed {cache / 'proxy'} (10 B)" in out and "caches: freed 10 B" in out
    assert not (cache / "proxy").exists() and (cache / "toolchains").exists()


def test_report_json_is_one_object_with_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from runner.results import write_json_atomic

    run = tmp_path / "reports" / "runs" / "r1"
    (run / "cells").mkdir(parents=True)
    write_json_atomic(run / "run.json", {"schema_version": 1, "run_id": "r1"})
    for i, c in enumerate(report_cells()):
        write_json_atomic(run / "cells" / f"c{i}.json", c.to_dict())
    assert cli.main(["report", str(run), "--json"]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert data["run_id"] == "r1" and data["cells"] == len(report_cells())
    assert data["counts"][Status.PASS.value] == sum(1 for c in report_cells() if c.status is Status.PASS)
    assert set(data["counts"]) == {s.value for s in Status}
    assert str(run / "matrix.md") in data["written"] and data["changed"] is None
    assert data["questions"] >= data["answered"] > 0


def test_doctor_json_carries_the_lines_and_the_cache_sizes(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runner import doctor

    def fake_run(matrix: str, *, debug: bool = False, out: Any = print, facts: dict[str, Any] | None = None) -> int:
        assert facts is not None
        out("host: test")
        doctor.check_caches(out, facts)
        return 4

    monkeypatch.setattr(doctor, "run", fake_run)
    code, data = json_out.doctor("matrix.toml")
    assert code == 4 and data["exit_code"] == 4 and data["essentials_ok"] is False
    assert data["caches"]["dir"] == str(cache) and data["caches"]["bytes"] == 1000 + 10 + 2 + len("keep me")
    assert data["lines"][0] == "host: test" and any("toolchains: 1000 B" in line for line in data["lines"])


def test_merge_json_names_the_shards_and_keeps_warnings_on_stderr(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from tests.unit.test_results import make
    from tests.unit.test_shard_merge import _write_run

    _write_run(tmp_path / "a" / "run-a", "run-a", [make("debian-12/amd64/docker/go1.22/env")])
    _write_run(tmp_path / "b" / "run-b", "run-b", [make("debian-12/amd64/docker/go1.22/env", Status.FAIL)], "arm64")
    assert cli.main(["merge", str(tmp_path / "a"), str(tmp_path / "b"), "--reports", str(tmp_path / "out"),
                     "--json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert [(s["run_id"], s["host_arch"]) for s in data["shards"]] == [("run-a", "amd64"), ("run-b", "arm64")]
    assert data["run_id"] == "merged" and data["report"] == str(tmp_path / "out" / "matrix.md")
    assert data["problems"] and "warning:" in captured.err  # the conflicting results: said on stderr, kept in JSON
