"""multiuser: the verdict rules on synthetic probe output, the mode parser, and the steps' credentials."""

from __future__ import annotations

from typing import Any

import pytest

from runner.model import Cell, Status
from runner.scenarios import JobContext
from runner.scenarios.multiuser import BUILDS, MultiUser, modes_summary, parse_modes
from tests.unit.test_scenarios import cell

CTX = JobContext(build_timeout=60)
DENIED = "open /shared/cache/57/5755-d: permission denied"


def ok(name: str, stdout: str = "") -> dict[str, Any]:
    return {"name": name, "ok": True, "exit_code": 0, "wall_sec": 0.1, "stdout": stdout}


def build(name: str, compiled: int = 0, stderr: str = "") -> dict[str, Any]:
    return {"name": name, "ok": not stderr, "exit_code": 1 if stderr else 0, "wall_sec": 1.0,
            "compiled": [f"p{i}" for i in range(compiled)], "stderr": stderr}


def modes(dir_mode: str, file_mode: str, b_files: int) -> str:
    lines = ["      1 cache d 2775 0 4242", f"    256 cache d {dir_mode} 1001 4242",
             f"    398 cache f {file_mode} 1001 4242", "      2 mod d 2555 1001 4242", "      4 mod f 444 1001 4242"]
    if b_files:
        lines.append(f"     {b_files} cache f {file_mode} 1002 4242")
    return "\n".join(lines) + "\n"


def probes(builds: dict[str, dict[str, Any]], dir_mode: str, file_mode: str, b_files: int,
           setup_ok: bool = True) -> dict[str, Any]:
    steps = [ok("setup") if setup_ok else {"name": "setup", "ok": False, "exit_code": 1, "stderr": "chown: nope"},
             ok("copy-a"), ok("chown-a"), ok("id-a", "uid=1001 gid=4242 groups=4242,0(root)\n"),
             ok("copy-b"), ok("chown-b"), ok("id-b", "uid=1002 gid=4242 groups=4242,0(root)\n"),
             ok("a-mod-download"), ok("modes-after-a", modes(dir_mode, file_mode, 0)), ok("edit-b"),
             ok("modes-end", modes(dir_mode, file_mode, b_files)), ok("b-sample")]
    return {"share": {"steps": steps + [builds[n] for n in BUILDS if n in builds]}}


def shared_ok() -> dict[str, dict[str, Any]]:
    return {"a-cold": build("a-cold", 56), "b-warm": build("b-warm"), "b-edit": build("b-edit", 1),
            "b-again": build("b-again"), "b-noindex": build("b-noindex"), "a-again": build("a-again")}


def broken_022() -> dict[str, dict[str, Any]]:
    return {"a-cold": build("a-cold", 56), "b-warm": build("b-warm", stderr=DENIED),
            "b-edit": build("b-edit", stderr=DENIED), "b-again": build("b-again", stderr=DENIED),
            "b-noindex": build("b-noindex", 1), "a-again": build("a-again")}


def mu_cell(variant: str) -> Cell:
    c: Cell = cell(f"debian-12/amd64/docker/go1.22/multiuser:{variant}")
    return c


def verdict(variant: str, p: dict[str, Any]) -> Any:
    return MultiUser().evaluate(mu_cell(variant), p, CTX)


def test_umask_002_shares() -> None:
    v = verdict("umask-002", probes(shared_ok(), "2775", "664", 10))
    assert v.status is Status.PASS, v.reason
    assert v.observations["a_cache_dirs_group_writable"] is True and v.observations["b_cache_entries"] == 10
    assert v.observations["first_error"] == ""


def test_umask_022_breaks_as_the_source_says() -> None:
    v = verdict("umask-022", probes(broken_022(), "2755", "644", 0))
    assert v.status is Status.PASS, v.reason
    assert v.observations["first_error"] == f"b-warm: {DENIED}"
    assert v.observations["builds"]["b-warm"]["exit_code"] == 1
    assert "B cannot store its module-index entry" in v.reason


@pytest.mark.parametrize(("variant", "change", "dirs", "files", "b_files", "why"), [
    ("umask-002", {"b-warm": build("b-warm", stderr=DENIED)}, "2775", "664", 10, "b-warm (uid 1002): exit 1"),
    ("umask-002", {"b-warm": build("b-warm", 3)}, "2775", "664", 10, "b-warm compiled 3 packages"),
    ("umask-002", {"b-again": build("b-again", 1)}, "2775", "664", 10, "b-again compiled 1 packages"),
    ("umask-002", {}, "2755", "664", 10, "not group-writable"),
    ("umask-022", {"b-warm": build("b-warm")}, "2755", "644", 0, "b-warm (uid 1002) exited 0"),
    ("umask-022", {"b-edit": build("b-edit", stderr="go: no space left")}, "2755", "644", 0, "not on a GOCACHE write"),
    ("umask-022", {"b-noindex": build("b-noindex", 0)}, "2755", "644", 0, "b-noindex compiled nothing"),
    ("umask-022", {"a-again": build("a-again", stderr="boom")}, "2755", "644", 0, "a-again (uid 1001)"),
    ("umask-022", {}, "2755", "644", 3, "B owns 3 entries"),
])
def test_deviations_fail(variant: str, change: dict[str, Any], dirs: str, files: str, b_files: int, why: str) -> None:
    builds = {**(shared_ok() if variant == "umask-002" else broken_022()), **change}
    v = verdict(variant, probes(builds, dirs, files, b_files))
    assert v.status is Status.FAIL and why in v.reason, v.reason


def test_broken_setup_is_an_error() -> None:
    v = verdict("umask-002", probes(shared_ok(), "2775", "664", 10, setup_ok=False))
    assert v.status is Status.ERROR and "setup" in v.reason


def test_parse_and_summarise_modes() -> None:
    m = parse_modes(modes("2755", "644", 0) + "      5 cache f 600 1002 0\nnot a line\n")
    assert m["cache"]["1001"] == {"d": {"2755": 256}, "f": {"644": 398}}
    assert m["cache"]["1002"] == {"f": {"600:g0": 5}}
    assert modes_summary(m["mod"]) == "1001: d 2555 (2), f 444 (4)"


def test_builds_run_as_the_two_uids_with_the_variant_umask() -> None:
    (phase,) = MultiUser().phases(mu_cell("umask-022"), CTX)
    steps = {s["name"]: s for s in phase.steps}
    for name in BUILDS:
        s = steps[name]
        assert (s["uid"], s["gid"], s["umask"]) == (1001 if name[0] == "a" else 1002, 4242, 0o022)
        assert s["env"]["GOCACHE"] == "/shared/cache" and s["env"]["GOMODCACHE"] == "/shared/mod"
        assert "-trimpath" in s["argv"] and s["count_compiled"]
    assert steps["b-noindex"]["env"]["GODEBUG"] == "goindex=0"
    assert "chmod 2775 /shared/cache /shared/mod" in steps["setup"]["argv"][2]
