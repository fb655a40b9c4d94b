"""ci-restore: the verdict on synthetic probe output, and Q07 from synthetic cells with storage:baked-aged beside it."""

from __future__ import annotations

from typing import Any

from runner.answer import BREAKS, DEPENDS, NO, NOT_MEASURED, WORKS, YES
from runner.model import Status
from runner.scenarios import JobContext
from runner.scenarios.restore import CiRestore, answer_ci, parse_count
from tests.unit.test_results import make
from tests.unit.test_scenarios import cell

CTX = JobContext(build_timeout=60, workload="lib")
D12, D13 = "debian-12/amd64/docker/go1.22", "debian-13/amd64/docker/go1.22"


def ok(name: str, stdout: str = "", **kw: Any) -> dict[str, Any]:
    return {"name": name, "ok": True, "exit_code": 0, "wall_sec": 0.01, "stdout": stdout, **kw}


def build(name: str, compiled: int = 0, fail: str = "") -> dict[str, Any]:
    return {"name": name, "ok": not fail, "exit_code": 1 if fail else 0, "wall_sec": 0.1, "stderr": fail,
            "compiled": [f"p{i}" for i in range(compiled)]}


def probes(restored: int = 0, again: int = 0, after: str = "files=18 old=1", unused: int = 3,
           fail: str = "") -> dict[str, Any]:
    pop = [ok("copy-src"), ok("mkdir"), ok("mod-download"), build("cold", 3), build("cold-trimpath", 3), ok("age"),
           ok("count-saved", "files=36 old=36"), ok("save")]
    res = [ok("mkdir"), ok("extract"), ok("copy-src"), ok("count-restored", "files=36 old=35"),
           build("restored", restored, fail), ok("count-after", after), ok("trim.txt", content="1796545816\n"),
           build("again", again), build("trimpath-after", unused)]
    return {"populate": {"steps": pop}, "restore": {"steps": res}}


def verdict(p: dict[str, Any]) -> Any:
    return CiRestore().evaluate(cell(f"{D12}/ci-restore"), p, CTX)


def rcell(where: str, **kw: Any) -> Any:
    v = verdict(probes(**kw))
    return make(f"{where}/ci-restore", v.status, **v.observations)


def test_the_archive_is_saved_and_restored_with_tar() -> None:
    pop, res = CiRestore().phases(cell(f"{D12}/ci-restore"), CTX)
    save = next(s for s in pop.steps if s["name"] == "save")
    assert save["argv"][:2] == ["tar", "-C"] and pop.mounts == res.mounts
    assert next(s for s in pop.steps if s["name"] == "cold-trimpath")["argv"][:3] == ["go", "build", "-trimpath"]
    assert [s["name"] for s in res.steps][:2] == ["mkdir", "extract"]


def test_restored_hit_and_trim_pass() -> None:
    v = verdict(probes())
    assert v.status is Status.PASS, v.reason
    assert v.observations["restored_files"] == {"files": 36, "old": 35}
    assert v.observations["after_first"] == {"files": 18, "old": 1}
    assert "files 36 → 18" in v.reason
    assert CiRestore.outcome(make(f"{D12}/ci-restore", **v.observations)).word == WORKS  # type: ignore[union-attr]


def test_a_miss_or_a_failure_fails() -> None:
    assert "archive's entries missed" in verdict(probes(restored=3)).reason
    v = verdict(probes(fail="go: bad"))
    assert v.status is Status.FAIL
    assert CiRestore.outcome(make(f"{D12}/ci-restore", Status.FAIL, **v.observations)).word == BREAKS  # type: ignore[union-attr]
    assert "the trim removed used entries" in verdict(probes(again=1)).reason


def test_parse_count() -> None:
    assert parse_count({"ok": True, "stdout": "files=3 old=2\n"}) == {"files": 3, "old": 2}
    assert parse_count({"ok": True, "stdout": "files=\n"}) is None


def test_q07_agreeing_rows_with_baked_aged() -> None:
    aged = make(f"{D12}/storage:baked-aged", warm={"compiled": 0}, baked_files_before=24, baked_files_after=16)
    a = answer_ci([aged, rcell(D12), rcell(D13)])
    assert a.verdict == YES and "the first build's trim removed the entries it did not use" in a.text
    assert "(tar restore): 36 → 18 files" in a.figure and "(image layer): 24 → 16 files" in a.figure
    assert "tar restore" not in a.limits


def test_q07_disagreeing_rows_depend() -> None:
    a = answer_ci([rcell(D12), rcell(D13, after="files=36 old=35", unused=0)])
    assert a.verdict == DEPENDS and "nothing was trimmed" in a.text
    b = answer_ci([rcell(D12), rcell(D13, restored=2)])
    assert b.verdict == DEPENDS


def test_q07_from_baked_aged_alone_says_its_limits() -> None:
    a = answer_ci([make(f"{D12}/storage:baked-aged", warm={"compiled": 2})])
    assert a.verdict == NO and "needs a ci-restore cell" in a.limits
    assert answer_ci([make(f"{D12}/ci-restore")]).verdict == NOT_MEASURED
