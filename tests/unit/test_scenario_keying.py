"""keying: the verdict on synthetic probe output, and Q08/Q10 answered from synthetic cells, agreeing and not."""

from __future__ import annotations

from typing import Any

from runner.answer import BREAKS, DEGRADED, DEPENDS, NO, VALUE, WORKS, YES
from runner.model import Status
from runner.scenarios import JobContext
from runner.scenarios.keying import CHANGES, Keying, answer_keyed, answer_links
from tests.unit.test_results import make
from tests.unit.test_scenarios import cell

CTX = JobContext(build_timeout=60, workload="lib")
D12, D13 = "debian-12/amd64/docker/go1.22", "debian-13/amd64/docker/go1.22"
LINKS = "files=24\nmulti_linked=0\noutput_links=1\noutput_in_cache=0\n"


def ok(name: str, stdout: str = "") -> dict[str, Any]:
    return {"name": name, "ok": True, "exit_code": 0, "wall_sec": 0.01, "stdout": stdout}


def build(name: str, compiled: int = 0, fail: str = "") -> dict[str, Any]:
    return {"name": name, "ok": not fail, "exit_code": 1 if fail else 0, "wall_sec": 0.1, "stderr": fail,
            "compiled": [f"p{i}" for i in range(compiled)]}


def probes(recompiles: dict[str, int] | None = None, links: str = LINKS, fail: str = "") -> dict[str, Any]:
    steps = [ok("copy-src"), ok("mkdir"), ok("mod-download"), ok("mkdir-out"), build("cold", 3), build("warm"),
             ok("links", links)]
    for n in CHANGES:
        steps += [ok(f"stat-before-{n}", "10 644 1 100"), ok(f"change-{n}"), ok(f"stat-after-{n}", "11 600 2 100"),
                  build(f"after-{n}", (recompiles or {}).get(n, 0), fail if n == "chmod" else "")]
    return {"main": {"steps": steps}}


def verdict(p: dict[str, Any]) -> Any:
    return Keying().evaluate(cell(f"{D12}/keying"), p, CTX)


def test_no_metadata_change_recompiles_passes() -> None:
    v = verdict(probes())
    assert v.status is Status.PASS, v.reason
    o = v.observations
    assert o["links"] == {"files": 24, "multi_linked": 0, "output_links": 1, "output_in_cache": 0}
    assert o["changes"]["chmod"]["changed"] == "inode 10→11, mode 644→600, links 1→2"
    assert o["workload"] == "lib"


def test_a_recompile_after_chmod_is_a_fail_with_the_count() -> None:
    v = verdict(probes({"chmod": 2}))
    assert v.status is Status.FAIL and "chmod alone recompiled 2 packages" in v.reason
    assert Keying.outcome(make(f"{D12}/keying", Status.FAIL, **v.observations)).word == DEGRADED


def test_a_failed_build_breaks() -> None:
    v = verdict(probes(fail="go: corrupt"))
    assert v.status is Status.FAIL and "build after chmod: exit 1: go: corrupt" in v.reason
    assert Keying.outcome(make(f"{D12}/keying", Status.FAIL, **v.observations)).word == BREAKS
    assert Keying.outcome(make(f"{D12}/keying", **verdict(probes()).observations)).word == WORKS


def test_setup_failure_is_an_error() -> None:
    p = probes()
    p["main"]["steps"][2] = {"name": "mod-download", "ok": False, "exit_code": 1, "stderr": "no proxy"}
    assert verdict(p).status is Status.ERROR


def kcell(where: str, recompiles: dict[str, int] | None = None, links: str = LINKS) -> Any:
    v = verdict(probes(recompiles, links))
    return make(f"{where}/keying", v.status, **v.observations)


def test_q08_agreeing_rows_say_content() -> None:
    a = answer_keyed([kcell(D12), kcell(D13), make(f"{D12}/cold-warm:small", touch={"compiled": 0})])
    assert a.verdict == NO and "touch, chmod, a copy to a new inode, a hard link" in a.text and "(2 rows)" in a.text


def test_q08_one_change_recompiling_everywhere_is_yes() -> None:
    a = answer_keyed([kcell(D12, {"new-inode": 3}), kcell(D13, {"new-inode": 1})])
    assert a.verdict == YES and a.text.startswith("yes: a copy to a new inode alone recompiles")


def test_q08_disagreeing_rows_depend_naming_them() -> None:
    a = answer_keyed([kcell(D12), kcell(D13, {"hard-link": 1})])
    assert a.verdict == DEPENDS and "a hard link recompiles on debian-13/amd64/docker/go1.22" in a.text
    assert "not on debian-12/amd64/docker/go1.22" in a.text


def test_q08_from_cold_warm_alone_says_its_limits() -> None:
    a = answer_keyed([make(f"{D12}/cold-warm:small", touch={"compiled": 0})])
    assert a.verdict == NO and "touch only" in a.limits


def test_q10_copied_and_disagreeing_rows() -> None:
    a = answer_links([kcell(D12), kcell(D13)])
    assert a.verdict == VALUE and a.text.startswith("copied") and "0 of 24" in a.figure
    linked = kcell(D13, links="files=24\nmulti_linked=1\noutput_links=2\noutput_in_cache=1\n")
    b = answer_links([kcell(D12), linked])
    assert b.verdict == DEPENDS and "hard-linked" in b.text and "copied" in b.text


def test_q10_without_link_counts_is_not_measured() -> None:
    bad = kcell(D12, links="files=x\n")
    assert bad.status is Status.FAIL
    assert answer_links([bad]).text == ""
