"""Scenario verdicts from synthetic probe output: pure logic, no engine.

These pin the rules (what counts as a hit, as survival, as Go's documented outcome), so a change in
a rule shows up as a failing test rather than as a quietly greener table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runner import config, plan
from runner.model import Arch, Status
from runner.resources import apply_host_actions
from runner.scenarios import JobContext
from runner.scenarios.location import Location, expected
from runner.scenarios.storage import GOCACHE, Storage

ROOT = Path(__file__).resolve().parents[2]


def cell(cell_id: str):  # type: ignore[no-untyped-def]
    cfg = config.load(ROOT / "matrix.toml")
    return plan.build_plan(cfg, plan.Choices(profile="full", select=(cell_id,)), host_arch=Arch.AMD64)[0]


def build(name: str, compiled: int, ok: bool = True, stderr: str = "") -> dict[str, Any]:
    return {"name": name, "kind": "exec", "ok": ok, "exit_code": 0 if ok else 1, "wall_sec": 1.5,
            "compiled": [f"p{i}" for i in range(compiled)], "stderr": stderr,
            "after": {GOCACHE: {"exists": True, "bytes": 10, "files": 3}}}


def test_xdg_relative_expectation_follows_the_toolchain_source(tmp_path: Path) -> None:
    (tmp_path / "os").mkdir()
    (tmp_path / "os" / "file.go").write_text('return "", errors.New("path in $XDG_CACHE_HOME is relative")')
    assert expected("xdg-relative", tmp_path)["ok"] is False
    (tmp_path / "os" / "file.go").write_text("dir += \"/.cache\"")
    assert expected("xdg-relative", tmp_path) == {"ok": True, "gocache": "relcache/go-build"}


def test_location_fails_when_go_does_something_else(tmp_path: Path) -> None:
    c = cell("debian-12/amd64/docker/go1.22/location:gocache-off")
    ok_probe = {"steps": [{"name": "go-env", "ok": True, "exit_code": 0, "stdout": "off\n"},
                          build("build", 0, ok=False, stderr="go: build cache is disabled by GOCACHE=off, but "
                                "required as of Go 1.12\n")]}
    v = Location().evaluate(c, {"main": ok_probe}, JobContext(build_timeout=1))
    assert v.status is Status.PASS and v.observations["exit_code"] == 1
    odd = {"steps": [ok_probe["steps"][0], build("build", 40)]}
    v = Location().evaluate(c, {"main": odd}, JobContext(build_timeout=1))
    assert v.status is Status.FAIL and "should fail" in v.reason


def storage_probes(restart: int, recreate: int) -> dict[str, Any]:
    return {"first": {"steps": [{"name": "fs", "fs_type": "tmpfs"}, build("cold", 56), build("warm", 0)]},
            "restart": {"steps": [build("warm", restart)]}, "recreate": {"steps": [build("warm", recreate)]}}


@pytest.mark.parametrize(("restart", "recreate", "status"), [(56, 56, Status.PASS), (0, 56, Status.FAIL),
                                                             (56, 0, Status.FAIL)])
def test_tmpfs_must_lose_the_cache(restart: int, recreate: int, status: Status) -> None:
    c = cell("debian-12/amd64/docker/go1.22/storage:tmpfs")
    v = Storage().evaluate(c, storage_probes(restart, recreate), JobContext(build_timeout=1))
    assert v.status is status, v.reason
    assert v.observations["restart"]["survived"] is (restart == 0)


def test_a_warm_build_that_compiles_is_a_finding() -> None:
    c = cell("debian-12/amd64/docker/go1.22/storage:volume")
    probes = storage_probes(0, 0)
    probes["first"]["steps"][2] = build("warm", 3)
    v = Storage().evaluate(c, probes, JobContext(build_timeout=1))
    assert v.status is Status.FAIL and "compiled 3 packages, expected 0" in v.reason


def test_host_actions_stay_inside_the_data_dir(tmp_path: Path) -> None:
    (tmp_path / "cache").mkdir()
    apply_host_actions(tmp_path, ({"op": "write", "path": "cache/trim.txt", "data": "123\n"},))
    assert (tmp_path / "cache" / "trim.txt").read_text() == "123\n"
    apply_host_actions(tmp_path, ({"op": "remove", "path": "cache/trim.txt"},))
    assert not (tmp_path / "cache" / "trim.txt").exists()
    with pytest.raises(ValueError, match="outside"):
        apply_host_actions(tmp_path, ({"op": "remove", "path": "../etc/passwd"},))


def test_leftover_loop_mounts_are_found_by_their_path_shape() -> None:
    from runner.resources import leftover_loop_mounts

    mounts = "\n".join([
        "/dev/loop1 /r/runs/run-a/work/deb__x/data/ext4-mnt ext4 rw 0 0",
        "/dev/loop2 /r/runs/run-b/work/deb__y/data/xfs-mnt xfs rw 0 0",
        "/dev/loop3 /mnt/data/ext4-mnt ext4 rw 0 0",  # not ours: no runs/<id>/work/<cell>
        "/dev/vda / ext4 rw 0 0",
    ])
    assert leftover_loop_mounts(None, mounts) == ["/r/runs/run-a/work/deb__x/data/ext4-mnt",
                                                  "/r/runs/run-b/work/deb__y/data/xfs-mnt"]
    assert leftover_loop_mounts("run-b", mounts) == ["/r/runs/run-b/work/deb__y/data/xfs-mnt"]


def test_cold_warm_setup_the_tool_could_not_do_is_an_error_not_a_finding() -> None:
    """debian-12 distro cold-warm:gofmt once read `fork/exec /tmp/gcm/goroot/bin/go: no such file or directory`
    (a dangling src link in the copied GOROOT) as a `fail` of Go: it is the tool's `error`."""
    from runner.scenarios.coldwarm import ColdWarm, workload

    c = cell("debian-12/amd64/docker/distro/cold-warm:gofmt")
    ctx = JobContext(build_timeout=1, goroot="/usr/lib/go-1.23")
    copy = next(s for s in ColdWarm().steps(c, ctx) if s["name"] == "copy-goroot")
    assert copy["path"] == "/usr/lib/go-1.23" and copy["deref_outside"] is True
    assert workload("gofmt").setup[0]["deref_outside"] is True
    no_exec = {"steps": [{"name": "copy-goroot", "ok": True, "count": 9},
                         {"name": "go-env", "kind": "exec", "ok": False,
                          "error": "fork/exec /tmp/gcm/goroot/bin/go: no such file or directory"}]}
    v = ColdWarm().evaluate(c, {"main": no_exec}, ctx)
    assert v.status is Status.ERROR and "could not start go: fork/exec /tmp/gcm/goroot/bin/go" in v.reason
    failed_copy = {"steps": [{"name": "copy-goroot", "ok": False, "error": "open /x: permission denied"}]}
    v = ColdWarm().evaluate(c, {"main": failed_copy}, ctx)
    assert v.status is Status.ERROR and v.reason.startswith("setup: copy-goroot: open /x: permission denied")
    go_said_no = {"steps": [{"name": "copy-goroot", "ok": True},
                            {"name": "go-env", "ok": False, "exit_code": 1, "stderr": "go: bad GOROOT\n"},
                            build("cold", 0, ok=False, stderr="go: bad GOROOT\n")]}
    assert ColdWarm().evaluate(c, {"main": go_said_no}, ctx).status is Status.FAIL  # Go's own answer: a finding


def test_env_that_cannot_start_go_is_an_error() -> None:
    from runner.scenarios.env import Env

    c = cell("debian-12/amd64/docker/distro/env")
    missing = 'exec: "go": executable file not found in $PATH'
    probe = {"steps": [{"name": "version-root", "ok": False, "error": missing}]}
    v = Env().evaluate(c, {"main": probe}, JobContext(build_timeout=1, goroot="/usr/lib/go-1.23"))
    assert v.status is Status.ERROR and v.reason == f"setup: could not start go: {missing}"
    said = {"steps": [{"name": "version-root", "ok": False, "exit_code": 2, "stderr": "go: bad GOROOT\n"}]}
    assert Env().evaluate(c, {"main": said}, JobContext(build_timeout=1)).status is Status.FAIL
