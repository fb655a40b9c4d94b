"""mixed-go: the verdict on synthetic probe output, the steps' gos, and Q11 from synthetic cells (agreeing, not)."""

from __future__ import annotations

from typing import Any

from runner.answer import BREAKS, DEPENDS, NOT_MEASURED, VALUE, WORKS
from runner.model import Status
from runner.scenarios import SWITCH_GOROOT, JobContext
from runner.scenarios.mixedgo import BUILDS, PATH2, VERIFY, MixedGo, answer_mixed
from tests.unit.test_results import make
from tests.unit.test_scenarios import cell

CTX = JobContext(build_timeout=60, workload="lib",
                 switch={"id": "go1.27", "version": "1.27.3", "goroot": SWITCH_GOROOT, "proxy": "/p"})
D12, D13 = "debian-12/amd64/docker/go1.22", "debian-13/amd64/docker/go1.22"
ENVS = {"a": "go1.22.10\n/usr/local/go\n", "b": "go1.27.3\n/opt/gcm/switch-go\n", "path2": f"go1.22.10\n{PATH2}\n"}


def ok(name: str, stdout: str = "") -> dict[str, Any]:
    return {"name": name, "ok": True, "exit_code": 0, "wall_sec": 0.01, "stdout": stdout}


def build(name: str, compiled: int = 0, fail: str = "") -> dict[str, Any]:
    return {"name": name, "ok": not fail, "exit_code": 1 if fail else 0, "wall_sec": 0.1, "stderr": fail,
            "compiled": [f"p{i}" for i in range(compiled)], "after": {"/gocache/build": {"files": 39}}}


def probes(compiled: dict[str, int] | None = None, fail: dict[str, str] | None = None) -> dict[str, Any]:
    counts = {"a-cold": 3, "b-first": 3, **(compiled or {})}
    steps = [ok("copy-src"), ok("mkdir"), ok("mod-download"), ok("link-path2")]
    steps += [ok(f"env-{w}", out) for w, out in ENVS.items()]
    steps += [build(n, counts.get(n, 0), (fail or {}).get(n, "")) for n in (*BUILDS, *VERIFY)]
    return {"main": {"steps": steps}}


def verdict(p: dict[str, Any]) -> Any:
    return MixedGo().evaluate(cell(f"{D12}/mixed-go"), p, CTX)


def mcell(where: str, **kw: Any) -> Any:
    v = verdict(probes(**kw))
    return make(f"{where}/mixed-go", v.status, **v.observations)


def test_each_step_runs_the_go_it_names() -> None:
    steps = {s["name"]: s for s in MixedGo().phases(cell(f"{D12}/mixed-go"), CTX)[0].steps}
    assert steps["b-first"]["env"]["PATH"].startswith(f"{SWITCH_GOROOT}/bin:")
    assert steps["path2-first"]["env"]["GOROOT"] == PATH2 and steps["path2-first"]["env"]["PATH"].startswith(PATH2)
    assert steps["a-after-b"]["env"]["PATH"].startswith("/usr/local/go/bin:")
    assert steps["verify-b"]["env"]["GODEBUG"] == "gocacheverify=1"
    assert steps["link-path2"]["argv"] == ["ln", "-s", "/usr/local/go", PATH2]


def test_shared_without_errors_passes() -> None:
    v = verdict(probes())
    assert v.status is Status.PASS, v.reason
    assert v.observations["gos"]["path2"] == {"version": "go1.22.10", "goroot": PATH2}
    assert "go1.27.3 after go1.22.10: 3 of 3 compiled again" in v.reason
    assert MixedGo.outcome(make(f"{D12}/mixed-go", **v.observations)).word == WORKS  # type: ignore[union-attr]


def test_a_verify_failure_breaks() -> None:
    v = verdict(probes(fail={"verify-b": "go: cache verify failed: id abc"}))
    assert v.status is Status.FAIL and "gocacheverify with b: exit 1: go: cache verify failed" in v.reason
    assert MixedGo.outcome(make(f"{D12}/mixed-go", Status.FAIL, **v.observations)).word == BREAKS  # type: ignore[union-attr]


def test_a_warm_rebuild_that_compiles_fails() -> None:
    v = verdict(probes({"a-after-b": 2}))
    assert v.status is Status.FAIL and "a-after-b compiled 2 packages" in v.reason


def test_q11_agreeing_rows() -> None:
    a = answer_mixed([mcell(D12), mcell(D13)])
    assert a.verdict == VALUE
    assert a.text.startswith("no errors, gocacheverify clean; another Go version hits none of the first's; "
                             "the same Go at another GOROOT path hits every entry")
    assert a.figure == "go1.22.10 then go1.27.3: 3 of 3 packages compiled again"


def test_q11_disagreeing_rows_depend() -> None:
    a = answer_mixed([mcell(D12), mcell(D13, compiled={"path2-first": 1})])
    assert a.verdict == DEPENDS and "hits some entries" in a.text and "hits every entry" in a.text
    b = answer_mixed([mcell(D12), mcell(D13, fail={"verify-a": "bad"})])
    assert b.verdict == DEPENDS and "errors in verify-a" in b.text


def test_q11_without_builds_is_not_measured() -> None:
    assert answer_mixed([make(f"{D12}/mixed-go")]).verdict == NOT_MEASURED
