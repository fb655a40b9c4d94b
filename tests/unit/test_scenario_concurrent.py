"""concurrent: the phases per variant and the verdict rules on synthetic probe output."""

from __future__ import annotations

from typing import Any

import pytest

from runner.model import Cell, Status
from runner.scenarios import JobContext, registry
from runner.scenarios.concurrent import (
    CLEAN_AT,
    CLEAN_SCRIPT,
    GOCACHE,
    Concurrent,
    corruption,
    error_kind,
    go_error,
    message,
)
from tests.unit.test_scenarios import cell

CTX = JobContext(build_timeout=60)
CORRUPT = "go: cache entry 0a1b for gcm.example/small is corrupt: unexpected EOF"


def ccell(variant: str) -> Cell:
    c: Cell = cell(f"debian-12/amd64/docker/go1.22/concurrent:{variant}")
    return c


def run(name: str, compiled: int = 40, ok: bool = True, stderr: str = "", sec: float = 20.0) -> dict[str, Any]:
    pkgs = [f"gcm.example/p{i}" for i in range(compiled)]
    return {"name": name, "kind": "exec", "ok": ok, "exit_code": 0 if ok else 1, "wall_sec": sec,
            "compiled": pkgs, "stderr": "\n".join([*pkgs, stderr]) + "\n"}


def probe(builds: list[dict[str, Any]], afters: list[dict[str, Any]], setup_ok: bool = True,
          started: str = "2026-11-01T10:00:00Z", barrier: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"started": started, "steps": [
        {"name": "copy-src", "ok": True, "wall_sec": 0.01},
        {"name": "mkdir", "ok": True, "exit_code": 0, "wall_sec": 0.01},
        {"name": "mod-download", "ok": setup_ok, "exit_code": 0 if setup_ok else 1, "wall_sec": 0.5,
         "stderr": "" if setup_ok else "go: gcm.example/greet@v1.1.0: not found\n"},
        *([barrier] if barrier else []),
        {"name": "cache-before", "ok": True, "usage": {"exists": True, "bytes": 0, "files": 0}},
        {"name": "parallel", "kind": "parallel", "ok": all(b["ok"] for b in builds), "wall_sec": 21.0,
         "parallel": builds, "after": {GOCACHE: {"exists": True, "bytes": 9, "files": 398}}},
        *afters,
        {"name": "cache-after", "ok": True, "usage": {"exists": True, "bytes": 9, "files": 398}},
    ]}


def same(builds: list[dict[str, Any]] | None = None, warm: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"main": probe(builds or [run(f"small-{i}") for i in range(1, 5)], [warm or run("warm", 0, sec=0.4)])}


def test_registered_with_its_variants() -> None:
    from runner.config import KNOWN_SCENARIOS
    from runner.scenarios import catalogue

    assert "concurrent" in KNOWN_SCENARIOS and "concurrent" in registry()
    assert catalogue.variants("concurrent")[:4] == ("same", "mixed", "containers", "clean-during")
    assert {v for v in catalogue.variants("concurrent") if v.startswith("many-")} == {
        "many-ext4", "many-xfs", "many-btrfs", "many-tmpfs", "many-overlay"}


@pytest.mark.parametrize(("variant", "targets"), [
    ("same", [".", ".", ".", "."]),
    ("mixed", [".", ".", "cmd/gofmt", "cmd/gofmt"]),
    ("clean-during", [".", ".", ".", None]),
])
def test_one_container_phases(variant: str, targets: list[str | None]) -> None:
    (ph,) = Concurrent().phases(ccell(variant), CTX)
    assert ph.replicas == 1 and ph.mounts[0].kind == "bind" and ph.mounts[0].target == "/gocache"
    par = next(s for s in ph.steps if s["kind"] == "parallel")
    got = [s["argv"][-1] if s["argv"][0] == "go" else None for s in par["steps"]]
    assert got == targets
    outs = [s["argv"][4] for s in par["steps"] if s["argv"][0] == "go"]
    assert len(set(outs)) == len(outs), "each build writes its own -o"
    if variant == "clean-during":
        assert par["steps"][-1]["argv"] == ["sh", "-c", CLEAN_SCRIPT] and CLEAN_SCRIPT.endswith("; go clean -cache")
        assert f"{GOCACHE}/??/*" in CLEAN_SCRIPT and f"-ge {CLEAN_AT} ]" in CLEAN_SCRIPT
        assert par["steps"][-1]["env"]["GOCACHE"] == GOCACHE


def test_containers_phases() -> None:
    prep, par, final = Concurrent().phases(ccell("containers"), CTX)
    assert (prep.name, par.name, final.name) == ("prepare", "parallel", "final")
    assert par.replicas == 2 and prep.replicas == final.replicas == 1
    assert prep.mounts == par.mounts == final.mounts
    assert any(s["name"] == "mod-download" for s in prep.steps)
    assert not any(s["name"] == "mod-download" for s in par.steps)
    assert len(next(s for s in par.steps if s["kind"] == "parallel")["steps"]) == 2


def test_same_pass() -> None:
    v = Concurrent().evaluate(ccell("same"), same(), CTX)
    assert v.status is Status.PASS, v.reason
    o = v.observations
    assert o["n"] == 4 and o["failures"] == 0 and o["warm_compiled"] == 0 and o["corruption"] == []
    assert o["parallel_sec"] == 21.0 and o["cache_files_before"] == [0]


@pytest.mark.parametrize(("probes", "words"), [
    (same(builds=[run("small-1"), run("small-2", ok=False, stderr="go: open /gocache/build/0a: no such file"),
                  run("small-3"), run("small-4")]),
     "1 of 4 concurrent builds failed: small-2: exit 1: go: open /gocache/build/0a: no such file"),
    (same(warm=run("warm", 3)), "warm build compiled 3 packages, expected 0 (gcm.example/p0"),
    (same(builds=[run("small-1", stderr=CORRUPT), *[run(f"small-{i}") for i in (2, 3, 4)]]),
     "corrupted cache during the concurrent builds: " + CORRUPT),
    (same(warm=run("warm", 0, ok=False, stderr="go: something")), "warm build: exit 1: go: something"),
])
def test_same_fail(probes: dict[str, Any], words: str) -> None:
    v = Concurrent().evaluate(ccell("same"), probes, CTX)
    assert v.status is Status.FAIL
    assert words in v.reason


def test_setup_failure_is_an_error() -> None:
    p = probe([run("small-1")], [run("warm", 0)], setup_ok=False)
    v = Concurrent().evaluate(ccell("same"), {"main": p}, CTX)
    assert v.status is Status.ERROR and "not found" in v.reason


def test_mixed_needs_both_warm_builds_at_zero() -> None:
    builds = [run("small-1"), run("small-2"), run("gofmt-3", 60), run("gofmt-4", 60)]
    ok = {"main": probe(builds, [run("warm-small", 0), run("warm-gofmt", 0)])}
    assert Concurrent().evaluate(ccell("mixed"), ok, CTX).status is Status.PASS
    bad = {"main": probe(builds, [run("warm-small", 0), run("warm-gofmt", 2)])}
    v = Concurrent().evaluate(ccell("mixed"), bad, CTX)
    assert v.status is Status.FAIL and "warm-gofmt build compiled 2" in v.reason


MET = {"name": "barrier", "ok": True, "exit_code": 0, "wall_sec": 0.0}


def test_containers_records_overlap() -> None:
    p1 = probe([run("small-1"), run("small-2")], [], started="2026-11-01T10:00:00Z", barrier={**MET, "wall_sec": 5.0})
    p2 = probe([run("small-1"), run("small-2")], [], started="2026-11-01T10:00:05Z", barrier=MET)
    final = probe([], [run("warm", 0)])
    v = Concurrent().evaluate(ccell("containers"), {"prepare": final, "parallel.1": p1, "parallel.2": p2,
                                                    "final": final}, CTX)
    assert v.status is Status.PASS, v.reason
    o = v.observations
    assert o["n"] == 4 and [b["name"] for b in o["builds"]][:2] == ["parallel.1/small-1", "parallel.1/small-2"]
    # the first container waited 5 s at the barrier for the second: their parallel steps start together
    assert o["barrier_met"] is True
    assert o["containers_start_gap_sec"] == 0.0 and o["containers_overlap_sec"] == 21.0


def test_containers_that_missed_the_barrier_are_an_error_not_a_pass() -> None:
    alone = {**MET, "ok": False, "exit_code": 1, "stderr": "barrier: only 1 of 2 ready\n"}
    p1 = probe([run("small-1"), run("small-2")], [], barrier=alone)
    p2 = probe([run("small-1", 0), run("small-2", 0)], [], barrier=MET)
    final = probe([], [run("warm", 0)])
    v = Concurrent().evaluate(ccell("containers"), {"prepare": final, "parallel.1": p1, "parallel.2": p2,
                                                    "final": final}, CTX)
    assert v.status is Status.ERROR and v.observations["barrier_met"] is False
    assert "containers of the parallel builds did not start together: parallel.1: barrier: exit 1: barrier: only 1 " \
           "of 2 ready" in v.reason
    assert "parallel.2" not in v.reason


def clean_during(failed: str | None, warm_up: dict[str, Any], warm: dict[str, Any]) -> dict[str, Any]:
    clean = {**run("clean", 0, sec=1.5), "stdout": "gcm-clean: 57 entries\n"}
    builds = [run("small-1"), run("small-2", 0, ok=False, stderr=failed, sec=1.6) if failed else run("small-2"),
              run("small-3", sec=0.8), clean]
    return {"main": probe(builds, [warm_up, warm])}


def test_clean_during_failure_is_an_observation() -> None:
    words = "/usr/local/go/src/bytes/buffer.go:10:2: package errors is not in std (/usr/local/go/src/errors)"
    v = Concurrent().evaluate(ccell("clean-during"), clean_during(words, run("warm-up", 56), run("warm", 0)), CTX)
    assert v.status is Status.PASS, v.reason
    o = v.observations
    assert o["n"] == 3 and o["failures"] == 1 and o["clean"]["exit_code"] == 0
    assert o["builds"][1]["stderr_first_line"] == words == o["builds"][1]["go_error"] and words in v.reason
    assert o["builds_running_after_clean"] == 2  # small-3 had finished before the clean returned
    assert o["clean"]["entries_before"] == 57
    assert "the clean started with 57 files in GOCACHE (the wait for 200 timed out), 2 builds still running" in v.reason
    assert o["warm_compiled"] == 0 and o["after"]["warm-up"]["compiled"] == 56


@pytest.mark.parametrize(("warm_up", "warm", "words"), [
    (run("warm-up", 56), run("warm", 4), "warm build compiled 4"),
    (run("warm-up", 56, stderr=CORRUPT), run("warm", 0), "corrupted cache afterwards"),
    (run("warm-up", 0, ok=False, stderr="go: broken"), run("warm", 0), "warm-up build: exit 1: go: broken"),
])
def test_clean_during_fails_only_on_what_comes_after(warm_up: dict[str, Any], warm: dict[str, Any],
                                                     words: str) -> None:
    v = Concurrent().evaluate(ccell("clean-during"), clean_during(CORRUPT, warm_up, warm), CTX)
    assert v.status is Status.FAIL
    assert words in v.reason
    assert v.observations["corruption_during"] == [CORRUPT]


def test_messages() -> None:
    lines = "gcm.example/p\ngo: cache is invalid\nunexpected EOF\ncache: missing\n"
    assert corruption(lines) == ["go: cache is invalid"]
    assert message("runtime\ninternal/abi\n# gcm.example/small\n./main.go:3: x\n") == "# gcm.example/small"
    assert message("fmt\n") == ""
    gone = ("internal/abi\n# runtime\n/usr/local/go/src/runtime/covercounter.go:8:2: could not import "
            "internal/coverage/rtcov (open /gocache/build/5a/5ae4-d: no such file or directory)\n")
    assert message(gone) == "# runtime"
    assert go_error(gone) == ("runtime: /usr/local/go/src/runtime/covercounter.go:8:2: could not import "
                              "internal/coverage/rtcov (open /gocache/build/5a/5ae4-d: no such file or directory)")
    assert go_error("go: no Go files\n") == "go: no Go files"
    assert go_error("# a\n") == "a"


def test_failed_build_records_go_s_words_past_the_header() -> None:
    gone = "# runtime\ncovercounter.go:8:2: could not import internal/coverage/rtcov (open x: no such file)"
    p = same(builds=[run("small-1", ok=False, stderr=gone), *[run(f"small-{i}") for i in (2, 3, 4)]])
    v = Concurrent().evaluate(ccell("same"), p, CTX)
    assert v.status is Status.FAIL
    assert "small-1: exit 1: runtime: covercounter.go:8:2: could not import" in v.reason
    b = v.observations["builds"][0]
    assert b["stderr_first_line"] == "# runtime" and b["stderr"] == gone


def many(flock: bool = True, failed: int = 0, dl_failed: int = 0, verified: bool = True,
         contend: dict[str, Any] | None = None) -> dict[str, Any]:
    builds = [run(f"lib-{i}", 3, ok=i > failed, stderr="" if i > failed else "go: lock: bad", sec=0.2 + i / 100)
              for i in range(1, 17)]
    p = probe(builds, [run("warm", 0, sec=0.1)])
    lock = {"second_blocked": flock, "acquired_after_release": True}
    downloads = [{"name": f"download-{i}", "ok": i > dl_failed, "exit_code": 0 if i > dl_failed else 1,
                  "stderr": "" if i > dl_failed else "go: rename x: file exists"} for i in range(1, 17)]
    waits = {"procs": 16, "rounds": 20, "hold_ms": 2.0, "acquired": 320, "failures": 0, "proc_failures": 0,
             "waits_ms": [float(i % 40) for i in range(320)]} if contend is None else contend
    p["steps"][2:2] = [{"name": "fs", "ok": True, "fs_type": "tmpfs"}, {"name": "flock", "ok": True, "flock": lock},
                       {"name": "flock-contend", "ok": True, "contend": waits},
                       {"name": "downloads", "ok": not dl_failed, "parallel": downloads},
                       {"name": "downloads-verify", "ok": verified, "exit_code": 0 if verified else 1,
                        "stdout": "all modules verified\n" if verified else "gcm.example/words v1.0.0: dir has been "
                                                                            "modified\n"}]
    return {"main": p}


@pytest.mark.parametrize(("variant", "mount"), [("many-ext4", "loop"), ("many-tmpfs", "tmpfs"), ("many-overlay", None)])
def test_many_builds_the_lib_sixteen_times_on_its_filesystem(variant: str, mount: str | None) -> None:
    (phase,) = Concurrent().phases(ccell(variant), CTX)
    assert [m.kind for m in phase.mounts] == ([mount] if mount else [])
    par = next(s for s in phase.steps if s["name"] == "parallel")["steps"]
    assert len(par) == 16 and all(b["dir"].endswith("/lib") for b in par)
    assert {s["name"] for s in phase.steps} >= {"fs", "flock", "warm"}


def test_many_records_fs_flock_and_build_time_percentiles() -> None:
    v = Concurrent().evaluate(ccell("many-tmpfs"), many(), CTX)
    assert v.status is Status.PASS, v.reason
    o = v.observations
    assert (o["fs_type"], o["flock_second_blocked"], o["concurrent"]) == ("tmpfs", True, {"builds": 16, "failed": 0})
    assert o["build_sec_p50"] == 0.28 and o["build_sec_p95"] == 0.36
    assert "build wall p50 0.28s, p95 0.36s" in v.reason


def test_many_records_flock_waits_and_fails_on_a_lost_lock() -> None:
    steps = [s["name"] for s in Concurrent().phases(ccell("many-ext4"), CTX)[0].steps]
    assert steps.index("flock-contend") < steps.index("parallel"), "the lock test runs before the builds"
    o = Concurrent().evaluate(ccell("many-tmpfs"), many(), CTX).observations
    assert o["lock_waits"] == {"ran": True, "procs": 16, "rounds": 20, "hold_ms": 2.0, "attempts": 320,
                               "acquired": 320, "failed": 0, "unreported": 0, "errors": [], "p50_ms": 19.0,
                               "p95_ms": 37.0, "max_ms": 39.0}
    lost = {"procs": 16, "rounds": 20, "hold_ms": 2.0, "acquired": 300, "failures": 20, "proc_failures": 0,
            "waits_ms": [1.0] * 300, "errors": ["lock: no locks available"]}
    v = Concurrent().evaluate(ccell("many-tmpfs"), many(contend=lost), CTX)
    assert v.status is Status.FAIL and "20 of 320 flock(2) attempts by 16 processes failed on tmpfs: lock: no locks" \
        in v.reason
    dead = {"procs": 16, "rounds": 20, "hold_ms": 2.0, "acquired": 0, "failures": 0, "proc_failures": 16,
            "waits_ms": [], "errors": ["process 1: signal: killed"]}
    w = Concurrent().evaluate(ccell("many-tmpfs"), many(contend=dead), CTX)
    assert w.status is Status.ERROR and "lost 16 of its 16 processes: process 1: signal: killed" in w.reason, \
        "the probe's own test broke: not a filesystem finding"
    p = many()
    p["main"]["steps"] = [dict(s, ok=False, error="open /gocache/flock-contend: read-only file system", contend=None)
                          if s["name"] == "flock-contend" else s for s in p["main"]["steps"]]
    x = Concurrent().evaluate(ccell("many-tmpfs"), p, CTX)
    assert x.status is Status.ERROR and "did not run: open /gocache/flock-contend" in x.reason, \
        "a lock test that never ran is never a pass"


def test_many_fails_on_a_failed_build_or_a_flock_that_does_not_exclude() -> None:
    v = Concurrent().evaluate(ccell("many-xfs"), many(failed=2), CTX)
    assert v.status is Status.FAIL and "2 of 16 concurrent builds failed" in v.reason
    w = Concurrent().evaluate(ccell("many-xfs"), many(flock=False), CTX)
    assert w.status is Status.FAIL and "flock on tmpfs did not exclude" in w.reason


def test_q16_reads_the_many_cells_and_disagreeing_rows_depend() -> None:
    from runner.answer import DEPENDS, YES
    from runner.scenarios.storage import answer_flock
    from tests.unit.test_results import make

    def mcell(where: str, variant: str, **kw: Any) -> Any:
        v = Concurrent().evaluate(ccell(variant), many(**kw), CTX)
        return make(f"{where}/concurrent:{variant}", v.status, **v.observations)

    d12, d13 = "debian-12/amd64/docker/go1.22", "debian-13/amd64/docker/go1.22"
    a = answer_flock([mcell(d12, "many-tmpfs"), mcell(d12, "many-overlay")])
    assert a.verdict == YES and "overlay, tmpfs" in a.text and "0 of 32 concurrent builds failed" in a.figure
    assert "many-tmpfs: p50 0.28s p95 0.36s" in a.figure
    assert "0 of 640 flock(2) attempts failed" in a.figure
    assert "flock waits with 16 processes each holding it 2.0 ms (mostly their queue): tmpfs p50 19.0 ms p95 37.0 ms" \
        in a.figure
    assert "by 16 processes holding it 2.0 ms each" in a.limits
    b = answer_flock([mcell(d12, "many-tmpfs"), mcell(d13, "many-tmpfs", flock=False)])
    assert b.verdict == DEPENDS and "debian-13" in b.text


def test_many_judges_the_concurrent_downloads_and_q20_reads_them() -> None:
    from runner.answer import DEPENDS, NO, YES
    from runner.scenarios.modcache import answer_downloads
    from tests.unit.test_results import make

    v = Concurrent().evaluate(ccell("many-btrfs"), many(), CTX)
    assert v.status is Status.PASS and len(v.observations["downloads"]["runs"]) == 16
    bad = Concurrent().evaluate(ccell("many-btrfs"), many(dl_failed=1), CTX)
    assert bad.status is Status.FAIL and "1 of 16 concurrent go mod downloads failed: go: rename x" in bad.reason
    unverified = Concurrent().evaluate(ccell("many-btrfs"), many(verified=False), CTX)
    assert "go mod verify after the concurrent downloads: gcm.example/words" in unverified.reason

    def mcell(where: str, **kw: Any) -> Any:
        r = Concurrent().evaluate(ccell("many-btrfs"), many(**kw), CTX)
        return make(f"{where}/concurrent:many-btrfs", r.status, **r.observations)

    d12, d13 = "debian-12/amd64/docker/go1.22", "debian-13/amd64/docker/go1.22"
    a = answer_downloads([mcell(d12), mcell(d13)])
    assert a.verdict == YES and "passed (on btrfs)" in a.text and "0 of 32 concurrent downloads failed" in a.figure
    assert answer_downloads([mcell(d12, dl_failed=2)]).verdict == NO
    assert answer_downloads([mcell(d12), mcell(d13, verified=False)]).verdict == DEPENDS


WIDE = JobContext(build_timeout=60, workload="wide")


def test_declares_wide_and_builds_it_as_a_library() -> None:
    assert Concurrent.workload == "wide"
    (ph,) = Concurrent().phases(ccell("same"), WIDE)
    assert next(s for s in ph.steps if s["name"] == "copy-src")["path"].endswith("/workloads/wide")
    par = next(s for s in ph.steps if s["kind"] == "parallel")["steps"]
    assert [s["argv"] for s in par] == [["go", "build", "-v", "."]] * 4  # a library: no -o
    assert [s["name"] for s in par] == ["wide-1", "wide-2", "wide-3", "wide-4"]
    assert next(s for s in ph.steps if s["name"] == "warm")["argv"] == ["go", "build", "-v", "."]


def test_mixed_with_wide_builds_alt_beside_it() -> None:
    (ph,) = Concurrent().phases(ccell("mixed"), WIDE)
    par = next(s for s in ph.steps if s["kind"] == "parallel")["steps"]
    assert [s["argv"][-1] for s in par] == [".", ".", "./alt", "./alt"]
    assert [s["name"] for s in ph.steps if s["name"].startswith("warm")] == ["warm-wide", "warm-alt"]
    assert next(s for s in ph.steps if s["name"] == "warm-alt")["argv"][-1] == "./alt"


def test_many_builds_lib_whatever_the_cells_workload() -> None:
    for ctx in (WIDE, CTX):
        (ph,) = Concurrent().phases(ccell("many-tmpfs"), ctx)
        par = next(s for s in ph.steps if s["name"] == "parallel")["steps"]
        assert all(b["dir"].endswith("/lib") and b["argv"] == ["go", "build", "-v", "."] for b in par)
        assert next(s for s in ph.steps if s["name"] == "warm")["dir"].endswith("/lib")
    v = Concurrent().evaluate(ccell("many-tmpfs"), many(), WIDE)
    assert v.observations["workload"] == "lib" and Concurrent.parity(v.observations) is None


def test_records_how_many_packages_the_builds_raced_on() -> None:
    builds = [run("wide-1", 3), run("wide-2", 5), run("wide-3", 1), run("wide-4", 0)]  # p0..p4 compiled
    o = Concurrent().evaluate(ccell("same"), same(builds=builds), WIDE).observations
    assert (o["raced_packages"], o["distinct_packages"]) == (3, 5)  # p0, p1, p2 by two or more
    assert o["workload"] == "wide"


def test_error_kind_leaves_out_what_names_the_build() -> None:
    small = ("/usr/local/go/src/runtime/internal/math/math.go:7:8: could not import "
             "internal/goarch (open /gocache/build/7e/7e75b2e648ccd2e6f689af061bd921f523837e5e776ec775a6a9a8413beda"
             "3e0-d: no such file or directory)")
    wide = ("l3/p3/p3.go:6:5: could not import gcm.example/wide/l2/p3 (open /gocache/build"
            "/78/78a4ca718b9debde7fd39bb5e2bedaed02eabefad613d3f18a922dd61781f65e-d: no such file or directory)")
    assert error_kind(small) == error_kind(wide) == "could not import <pkg> (open <path>: no such file or directory)"
    assert error_kind("go: no Go files") == "go: no Go files"
    assert error_kind("x: open /a/b: permission denied") != error_kind(wide)


def _obs(variant: str, probes: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    o = Concurrent().evaluate(ccell(variant), probes, ctx).observations
    return {**o, "builds": [{**b, "name": "?"} for b in o["builds"]]}


def test_parity_compares_outcomes_not_sizes() -> None:
    small = _obs("same", same(), CTX)
    wide = _obs("same", same(builds=[run(f"wide-{i}", 120, sec=4.0) for i in range(1, 5)]), WIDE)
    assert Concurrent.parity(small) == Concurrent.parity(wide)
    assert Concurrent.parity(wide) == {"builds": 4, "exit_codes": [0], "go_error_kinds": [], "raced": True,
                                       "corruption_any": False, "after_ok": [True], "warm_compiled": 0}
    one_failed = _obs("same", same(builds=[run("wide-1", ok=False, stderr="# a\nx.go:1:2: could not import b (open "
                                                                          "/gocache/build/1: no such file)"),
                                           *[run(f"wide-{i}") for i in (2, 3, 4)]]), WIDE)
    assert Concurrent.parity(one_failed)["exit_codes"] == [0, 1]  # type: ignore[index]
    assert Concurrent.parity(one_failed)["go_error_kinds"] == [  # type: ignore[index]
        "could not import <pkg> (open <path>: no such file)"]
    warm_missed = _obs("same", same(warm=run("warm", 2)), CTX)
    assert Concurrent.parity(warm_missed) != Concurrent.parity(small)


def test_parity_of_mixed_ignores_the_targets_names() -> None:
    small = {"main": probe([run("small-1"), run("small-2"), run("gofmt-3"), run("gofmt-4")],
                           [run("warm-small", 0), run("warm-gofmt", 0)])}
    wide = {"main": probe([run("wide-1"), run("wide-2"), run("alt-3"), run("alt-4")],
                          [run("warm-wide", 0), run("warm-alt", 0)])}
    assert Concurrent.parity(_obs("mixed", small, CTX)) == Concurrent.parity(_obs("mixed", wide, WIDE))


def test_clean_during_keeps_the_program_and_records_what_the_clean_removed() -> None:
    for ctx in (WIDE, CTX):
        (ph,) = Concurrent().phases(ccell("clean-during"), ctx)
        assert next(s for s in ph.steps if s["name"] == "copy-src")["path"].endswith("/workloads/small")
        par = next(s for s in ph.steps if s["kind"] == "parallel")["steps"]
        assert [s["name"] for s in par] == ["small-1", "small-2", "small-3", "clean"]
        assert all(s["argv"][:4] == ["go", "build", "-v", "-o"] for s in par[:3])
    v = Concurrent().evaluate(ccell("clean-during"), clean_during(CORRUPT, run("warm-up", 56), run("warm", 0)), WIDE)
    assert v.observations["workload"] == "small" and v.observations["clean"]["entries_before"] == 57
    assert Concurrent.parity(v.observations) is None  # no cheap workload decides it: not in the parity check
