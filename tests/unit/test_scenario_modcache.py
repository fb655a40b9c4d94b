"""modcache: the phases per variant and the verdict rules on synthetic probe output."""

from __future__ import annotations

from typing import Any

import pytest

from runner.model import Cell, Status
from runner.scenarios import JobContext, MountSpec, registry
from runner.scenarios.modcache import GOMODCACHE, MODE_PATHS, PER_REPLICA, REPLICAS, ModCache, N, overlap, parse_counts
from tests.unit.test_results import make
from tests.unit.test_scenarios import cell

CTX = JobContext(build_timeout=60)
DENIED = "/usr/bin/rm: cannot remove '/modcache/mod/gcm.example/words@v1.0.0/go.mod': Permission denied"


def mcell(variant: str) -> Cell:
    c: Cell = cell(f"debian-12/amd64/docker/go1.22/modcache:{variant}")
    return c


def ex(name: str, code: int = 0, stdout: str = "", stderr: str = "") -> dict[str, Any]:
    return {"name": name, "kind": "exec", "ok": code == 0, "exit_code": code, "wall_sec": 0.02, "stdout": stdout,
            "stderr": stderr}


def modes(name: str, dir_mode: str, file_mode: str) -> dict[str, Any]:
    ms = {"module_dir": dir_mode, "go_file": file_mode, "parent_dir": "755", "zip": "644"}
    kinds = {"module_dir": "directory", "go_file": "regular file", "parent_dir": "directory", "zip": "regular file"}
    return ex(name, stdout="".join(f"{ms[k]} {kinds[k]} {GOMODCACHE}/{p}\n" for k, p in MODE_PATHS.items()))


def exists(name: str, there: bool) -> dict[str, Any]:
    return {"name": name, "kind": "du", "ok": True, "usage": {"exists": there, "bytes": 1 if there else 0,
                                                               "files": 1 if there else 0}}


def download_probe(**over: dict[str, Any]) -> dict[str, Any]:
    steps = [
        {"name": "copy-src", "ok": True}, ex("chown"),
        ex("download"), modes("modes", "555", "444"),
        ex("mode-counts", stdout="  2 555 directory\n  9 755 directory\n  4 444 regular file\n"),
        ex("verify", stdout="all modules verified\n"),
        ex("rm-plain", 1, stderr=DENIED + "\n" + DENIED + "\n"), exists("after-rm-plain", True),
        ex("download-root-rm"), ex("rm-root"), exists("after-rm-root", False),
        ex("clean-modcache"), exists("after-clean", False),
        ex("download-rw"), modes("modes-rw", "755", "444"), ex("mode-counts-rw", stdout=" 11 755 directory\n"),
        ex("verify-rw", stdout="all modules verified\n"), ex("rm-rw"), exists("after-rm-rw", False),
    ]
    return {"steps": [over.get(s["name"], s) for s in steps]}


def test_download_phase_runs_as_uid_1000_on_a_bind_mount() -> None:
    (phase,) = ModCache().phases(mcell("download"), CTX)
    assert phase.mounts == (MountSpec("bind", "/modcache", name="modcache"),)
    by = {s["name"]: s for s in phase.steps}
    for name in ("download", "verify", "rm-plain", "clean-modcache", "download-rw", "rm-rw"):
        assert by[name]["uid"] == 1000 and by[name]["gid"] == 1000, name
    assert "uid" not in by["rm-root"]
    assert by["download-rw"]["env"]["GOFLAGS"] == "-mod=readonly -modcacherw"
    assert by["download"]["env"]["GOFLAGS"] == "-mod=readonly"
    assert by["rm-plain"]["argv"] == ["rm", "-rf", GOMODCACHE]


def test_download_passes_on_documented_behaviour() -> None:
    v = ModCache().evaluate(mcell("download"), {"main": download_probe()}, CTX)
    assert v.status is Status.PASS, v.reason
    o = v.observations
    assert o["default"]["modes"]["module_dir"] == "555" and o["modcacherw"]["modes"]["module_dir"] == "755"
    assert o["rm_plain"] == {"ran": True, "ok": False, "exit_code": 1, "sec": 0.02, "stderr_first_line": DENIED,
                             "removed": False}
    assert o["clean_modcache"]["removed"] is True and o["rm_rw"]["removed"] is True
    assert o["default"]["mode_counts"] == {"d 555": 2, "d 755": 9, "f 444": 4}


@pytest.mark.parametrize(("over", "words"), [
    ({"rm-plain": ex("rm-plain")}, "succeeded for its non-root owner"),
    ({"rm-plain": ex("rm-plain", 1, stderr="rm: cannot remove 'x': Device or resource busy\n")},
     "without 'Permission denied'"),
    ({"clean-modcache": ex("clean-modcache", 1, stderr="go: unlinkat /modcache/mod: permission denied\n")},
     "go clean -modcache: exit 1: go: unlinkat"),
    ({"after-clean": exists("after-clean", True)}, "exited 0 but the cache is still there"),
    ({"rm-rw": ex("rm-rw", 1, stderr=DENIED + "\n")}, "-modcacherw cache by uid 1000: exit 1"),
    ({"modes": modes("modes", "755", "644")}, "writable, not read-only"),
    ({"modes-rw": modes("modes-rw", "555", "444")}, "not writable by its owner"),
    ({"verify": ex("verify", 1, stderr="gcm.example/greet v1.1.0: dir has been modified (/x)\n")},
     "default go mod verify: exit 1: gcm.example/greet v1.1.0: dir has been modified"),
])
def test_download_fails_with_the_observation(over: dict[str, Any], words: str) -> None:
    v = ModCache().evaluate(mcell("download"), {"main": download_probe(**over)}, CTX)
    assert v.status is Status.FAIL and words in v.reason, v.reason


def test_download_failure_and_broken_setup() -> None:
    bad = download_probe(download=ex("download", 1, stderr="go: gcm.example/greet@v1.1.0: not found\n"))
    v = ModCache().evaluate(mcell("download"), {"main": bad}, CTX)
    assert v.status is Status.FAIL and "not found" in v.reason
    v = ModCache().evaluate(mcell("download"), {"main": download_probe(chown=ex("chown", 1))}, CTX)
    assert v.status is Status.ERROR and "setup" in v.reason


def timed(name: str, start: float, end: float, code: int = 0, stderr: str = "") -> dict[str, Any]:
    return ex(name, code, stdout=f"{start:.9f}\n{end:.9f}\n", stderr=stderr)


def concurrent_probes(fail: bool = False, verify_code: int = 0) -> dict[str, Any]:
    src = {"name": "copy-src", "ok": True}
    bad = "gcm.example/words v1.0.0: missing ziphash: open x: no such file\n"
    verified = ex("verify", verify_code, stdout=VERIFIED_OUT if verify_code == 0 else "",
                  stderr="" if verify_code == 0 else bad)
    inproc = [timed(f"download-{i}", 100.0 + i / 100, 100.05 + i / 100) for i in range(1, N + 1)]
    probes: dict[str, Any] = {"inproc": {"steps": [src, {"name": "parallel", "ok": True, "wall_sec": 0.1,
                                                         "parallel": inproc}, ex("verify", stdout=VERIFIED_OUT)]}}
    for r in range(1, REPLICAS + 1):
        runs = [timed(f"download-{i}", 200.0 + r / 100, 200.04 + r / 100) for i in range(1, PER_REPLICA + 1)]
        if fail and r == 2:
            runs[0] = timed("download-1", 200.02, 200.03, 1, "go: gcm.example/greet@v1.1.0: rename x y: file exists\n")
        probes[f"across.{r}"] = {"steps": [src, ex("barrier", stdout="start at 1 + 0.5: sleep 0.4\n"),
                                           {"name": "parallel", "ok": True, "parallel": runs}]}
    probes["verify"] = {"steps": [src, verified]}
    return probes


VERIFIED_OUT = "all modules verified\n"


def test_concurrent_phases_share_one_volume_across_replicas() -> None:
    inproc, across, verify = ModCache().phases(mcell("concurrent"), CTX)
    assert inproc.mounts == (MountSpec("bind", "/modcache", name="modcache-a"),)
    assert across.replicas == REPLICAS and across.mounts == verify.mounts == (
        MountSpec("volume", "/modcache", name="modcache-b"),)
    assert len(next(s for s in inproc.steps if s["name"] == "parallel")["steps"]) == N
    assert [s["name"] for s in across.steps] == ["copy-src", "barrier", "parallel"]


def test_concurrent_passes_and_measures_overlap() -> None:
    v = ModCache().evaluate(mcell("concurrent"), concurrent_probes(), CTX)
    assert v.status is Status.PASS, v.reason
    o = v.observations
    assert o["failures"] == 0 and o["in_container"]["overlap_sec"] == pytest.approx(0.04)
    assert o["across_containers"]["overlap_sec"] == pytest.approx(0.03)
    assert o["across_containers"]["barrier_met"] is True and len(o["across_containers"]["runs"]) == 4


def test_concurrent_downloads_that_missed_the_barrier_are_an_error_as_in_concurrent() -> None:
    """Missed barriers are judged alike in both scenarios (runner.scenarios.barrier_missed): the downloads across
    containers did not overlap, so their 0 failures decide nothing."""
    probes = concurrent_probes()
    probes["across.1"]["steps"][1] = ex("barrier", 1, stderr="barrier: only 1 of 2 ready\n")
    v = ModCache().evaluate(mcell("concurrent"), probes, CTX)
    assert v.status is Status.ERROR and v.observations["across_containers"]["barrier_met"] is False
    assert v.reason.startswith("the 2 containers of the downloads across containers did not start together: "
                               "across.1: barrier: exit 1: barrier: only 1 of 2 ready"), v.reason
    assert "across.2" not in v.reason
    failed = concurrent_probes(fail=True)  # a failed download is a finding even when the barrier was missed
    failed["across.1"]["steps"][1] = ex("barrier", 1, stderr="barrier: only 1 of 2 ready\n")
    v = ModCache().evaluate(mcell("concurrent"), failed, CTX)
    assert v.status is Status.FAIL and "file exists" in v.reason and "did not start together" in v.reason


def test_concurrent_fails_on_a_failed_download_or_verify() -> None:
    v = ModCache().evaluate(mcell("concurrent"), concurrent_probes(fail=True), CTX)
    assert v.status is Status.FAIL and "1 of 4 concurrent downloads (across containers)" in v.reason
    assert "file exists" in v.reason and v.observations["failures"] == 1
    v = ModCache().evaluate(mcell("concurrent"), concurrent_probes(verify_code=1), CTX)
    assert v.status is Status.FAIL and "missing ziphash" in v.reason


def test_helpers() -> None:
    assert parse_counts("  3 555 directory\n garbage\n 12 444 regular file\n") == {"d 555": 3, "f 444": 12}
    runs = [{"name": "a/1", "start": 0.0, "end": 1.0}, {"name": "a/2", "start": 0.5, "end": 2.0},
            {"name": "b/1", "start": 1.8, "end": 3.0}]
    assert overlap(runs) == 0.5 and overlap(runs, across=True) == pytest.approx(0.2)
    assert overlap([{"name": "x"}]) is None


def test_registered_and_rendered() -> None:
    assert "modcache" in registry()
    v = ModCache().evaluate(mcell("download"), {"main": download_probe()}, CTX)
    w = ModCache().evaluate(mcell("concurrent"), concurrent_probes(), CTX)
    results = [make(f"debian-12/amd64/docker/go1.22/modcache:{name}", x.status, **x.observations)
               for name, x in (("download", v), ("concurrent", w))]
    headers, rows = registry()["modcache"].detail_rows(results)
    table = dict(zip([r[4] for r in rows], rows, strict=True))
    assert "Permission denied" in table["download"][headers.index("plain rm -rf (uid 1000)")]
    assert table["download"][headers.index("go clean -modcache")] == "exit 0, removed"
    assert table["concurrent"][headers.index("across containers")].startswith("0 of 4")
    assert table["download"][headers.index("go mod verify")] == "ok / ok"
