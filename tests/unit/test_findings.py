"""runner.findings: every answer function fed synthetic observations (agreeing rows, disagreeing rows, noisy and
clear timings), coverage, the two words per cell, the JSON and its schema, and where the section is rendered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runner import findings
from runner.answer import BREAKS, DEGRADED, DEPENDS, NO, NO_DIFFERENCE, NOT_MEASURED, VALUE, WORKS, YES
from runner.model import Status
from runner.render import html as html_report
from runner.render import markdown
from runner.results import CellResult, RunResults
from tests.unit.test_render import COLD
from tests.unit.test_results import make

D12, D13, ALP = "debian-12/amd64/docker/go1.22", "debian-13/amd64/docker/go1.22", "alpine-3.23/amd64/docker/go1.22"
ARM = "debian-12/arm64/docker/go1.22"  # make(): arm64 cells are emulated
LAB = "debian-12/amd64/podman-selinux/go1.27"  # the guest lab


def c(where: str, scenario: str, status: Status = Status.PASS, **obs: Any) -> CellResult:
    return make(f"{where}/{scenario}", status, **obs)


def env(gocache: str = "/root/.cache/go-build", user: str = "/.cache/go-build") -> dict[str, Any]:
    return {"env_root": {"GOCACHE": gocache, "GOMODCACHE": "/root/go/pkg/mod", "GOPATH": "/root/go"},
            "env_user": {"GOCACHE": user, "GOMODCACHE": "/go/pkg/mod", "GOPATH": "/go"}}


def answer(qid: str, cells: list[CellResult]) -> findings.Finding:
    return next(f for f in findings.compute(cells) if f.question.id == qid)


def runs(times: list[float]) -> dict[str, Any]:
    return {"runs": times, "median": sorted(times)[len(times) // 2], "min": min(times), "max": max(times)}


def tmpfs(goroot: list[float], aa: list[float] | None = None) -> dict[str, Any]:
    base = [10.0] * len(goroot)
    p = {"goroot-disk/gocache-disk": runs(base), "goroot-tmpfs/gocache-disk": runs(goroot),
         "goroot-disk/gocache-tmpfs": runs(base), "goroot-tmpfs/gocache-tmpfs": runs(goroot)}
    if aa is not None:
        p["goroot-disk/gocache-disk/again"] = runs(aa)
    return {"placements": p}


def concurrent(failed: int, n: int = 4, variant_clean: bool = False) -> dict[str, Any]:
    builds = [{"name": f"small-{i}", "ok": i >= failed, "go_error": "could not import" if i < failed else ""}
              for i in range(n)]
    return {"builds": builds, "failures": failed if not variant_clean else 0, "after": {"warm": {"ran": True,
            "ok": True, "compiled": 0}}, "warm_compiled": 0, "corruption": []}


STORAGE_OK = {"cold": {"ok": True, "sec": 5.0, "compiled": 3}, "warm": {"ok": True, "sec": 0.1, "compiled": 0},
              "restart": {"ok": True, "survived": True}, "recreate": {"ok": True, "survived": False}}
MODCACHE_DL = {"default": {"modes": {"module_dir": "555", "go_file": "444"}},
               "modcacherw": {"modes": {"module_dir": "755", "go_file": "444"}}, "rm_plain": {"ok": False}}
MODCACHE_CONC = {"in_container": {"runs": [{"ok": True}] * 4, "verify": {"verified": True}},
                 "across_containers": {"runs": [{"ok": True}] * 4, "verify": {"verified": True}}, "failures": 0}
STATS = {"puts": 1, "misses": 1, "hits_local": 0, "hits_shared": 235, "gets": 236}
REMOTE = {"first": {"sec": 9.0, "compiled": 78, "stats": STATS}, "second": {"sec": 0.6, "compiled": 0, "stats": STATS}}
PORT = {"same-path": {"ok": True, "compiled": 0}, "other-path": {"ok": True, "compiled": 3},
        "other-path-trimpath": {"ok": True, "compiled": 0}}
EDIT = {**COLD, "edited_package": "m/internal/format", "dependents_of_edited": ["m"],
        "edit": {"sec": 0.1, "compiled": 1, "packages": ["m/internal/format"]}}

# Per question: synthetic cells that agree on every row (the answer must not be `not measured here`).
AGREE: dict[str, list[CellResult]] = {
    "Q01": [c(D12, "env", **env()), c(D13, "env", **env())],
    "Q02": [c(D12, "location:home-unset", exit_code=1, stderr_first_line="build cache is required")],
    "Q03": [c(D12, "location:uid-home-root", exit_code=1, stderr_first_line="mkdir /.cache: permission denied")],
    "Q04": [c(D12, "readonly:stale", readonly={"exit_code": 1, "compiled": 0}),
            c(D12, "location:uid-home-root", exit_code=1)],
    "Q05": [c(D12, "env", **env())],
    "Q07": [c(D12, "storage:baked-aged", warm={"compiled": 0}, baked_files_before=398, baked_files_after=281)],
    "Q08": [c(D12, "cold-warm:small", **COLD)],
    "Q09": [c(D12, "cold-warm:small", **EDIT)],
    "Q10": [c(D12, "keying", links={"files": 24, "multi_linked": 0, "output_links": 1, "output_in_cache": 0})],
    "Q11": [c(D12, "mixed-go", builds={"a-cold": {"ok": True, "compiled": 3}, "b-first": {"ok": True, "compiled": 3},
                                       "path2-first": {"ok": True, "compiled": 0}}, verify={"a": {"ok": True}})],
    "Q12": [c(D13, "portability:from-debian-12", **PORT), c(D12, "portability:binary", sha256="ab"),
            c(D13, "portability:binary", sha256="ab")],
    "Q13": [c(D12, "static-binary:binary", bytes={"plain": 10, "trimpath": 9, "stripped": 7},
              runs={"plain": {"ok": True}}, scratch={"ok": True})],
    "Q14": [c(D12, "storage:overlay", **STORAGE_OK)],
    "Q15": [c(D12, "tmpfs-goroot", **tmpfs([8.0, 8.1, 7.9, 8.0, 8.2], [10.0, 10.2, 9.9, 10.1, 10.0]))],
    "Q16": [c(D12, "filesystem:xfs", flock_second_blocked=True, concurrent={"builds": 3, "failed": 0})],
    "Q18": [c(D12, "readonly:fresh", readonly={"exit_code": 0, "compiled": 0})],
    "Q19": [c(D12, "concurrent:same", **concurrent(0))],
    "Q20": [c(D12, "modcache:concurrent", **MODCACHE_CONC)],
    "Q21": [c(D12, "multiuser:umask-002", builds={"a-cold": {"ok": True}, "b-warm": {"ok": True}})],
    "Q22": [c(D12, "modcache:download", **MODCACHE_DL)],
    "Q23": [c(D12, "offline-proxy", cases={"tampered": {"ok": False, "said": "checksum mismatch", "hosts": []}})],
    "Q24": [c("debian-12/amd64/docker/go1.27", "remote", **REMOTE)],
    "Q25": [c(D12, "buildkit:prune", builds={"before": {"go_build_ok": True}, "after": {"go_build_ok": True}},
              survived_prune=False)],
    "Q26": [c(D12, "cold-warm:small", **COLD), c(ARM, "cold-warm:small", **{**COLD, "cold": {"sec": 115.0,
                                                                                              "compiled": 56}})],
    "Q27": [c(D12, "selinux:bind-z", write="ok", first={"ran": True, "ok": True}, second={"ran": True, "ok": True})],
    "Q06": [c(LAB, "systemd:dynamic", first={"home": "<unset>", "go_env_gocache": "off", "build": {
        "ran": True, "ok": False, "exit_code": 1, "stderr": "build cache is required, but could not be located"}})],
    "Q17": [c(LAB, "nfs:v4.2", steps={"go-a:cold": {"what": "cold build", "ran": True, "ok": True, "compiled": 3}},
              flock={"cross": True, "same": True})],
    "Q28": [c(LAB, "se-host:user_u", context="user_u:user_r:user_t:s0", cache_label="user_u:object_r:xdg_cache_t:s0",
              build={"ran": True, "ok": True, "compiled": 1}, avc=[])],
    "Q29": [c(LAB, "apparmor:user", build={"ran": True, "ok": True, "compiled": 1}, denied=[])],
    "Q31": [c(D12, "cold-warm:small", **{**COLD, "cold": {**COLD["cold"], "maxrss_mb": 210.5, "cpu_sec": 30.2}})],
    "Q32": [c(D12, "cold-warm:small", **COLD, libc={"name": "glibc", "version": "2.36", "raw": "glibc 2.36"})],
    "Q30": [make(f"{D12.replace('go1.22', 'distro')}/env", **env(), goroot="/usr/lib/go-1.23",
                 distro_changes={"go.env": {}, "go_env": {}})],
}
AGREE["Q30"][0].cell["toolchain_source"] = "distro"
AGREE["Q30"][0].toolchain = {"version": "1.23.5"}


def test_questions_are_q01_to_q32_and_none_is_answered_twice() -> None:
    assert [q.id for q in findings.questions()] == [f"Q{i:02d}" for i in range(1, 33)]
    fns = findings.answer_functions()  # raises on a question answered by two scenarios
    assert set(fns) <= {q.id for q in findings.questions()}
    assert len(fns) >= 20
    assert set(fns) == set(AGREE), "every answer function has a synthetic case here"


def test_every_question_has_a_row_even_with_no_cells() -> None:
    found = findings.compute([])
    assert len(found) == 32
    assert all(f.verdict == NOT_MEASURED and f.answer.startswith("not measured here: ") for f in found)
    q06 = next(f for f in found if f.question.id == "Q06")
    assert "systemd" in q06.answer


@pytest.mark.parametrize("qid", sorted(AGREE))
def test_every_answer_function_answers_from_synthetic_observations(qid: str) -> None:
    f = answer(qid, AGREE[qid])
    assert f.verdict not in (NOT_MEASURED, DEPENDS), f.answer
    assert f.cells and f.coverage is not None and f.coverage.measured
    assert f.reproduce.startswith("go-cache-matrix run --select ")


@pytest.mark.parametrize("qid", sorted(AGREE))
def test_every_answer_function_says_not_measured_when_only_unavailable_cells(qid: str) -> None:
    cells = [make(x.id, Status.UNAVAILABLE) for x in AGREE[qid]]
    for gone, was in zip(cells, AGREE[qid], strict=True):
        gone.cell = {**was.cell}
    f = answer(qid, cells)
    assert f.verdict == NOT_MEASURED and "unavailable because" in f.answer
    assert f.coverage is not None and f.coverage.unavailable


def test_disagreeing_rows_are_depends_naming_them() -> None:
    f = answer("Q01", [c(D12, "env", **env()), c(ALP, "env", **env(gocache="/var/cache/go"))])
    assert f.verdict == DEPENDS
    assert D12 in f.answer and ALP in f.answer and "/var/cache/go" in f.answer
    g = answer("Q19", [c(D12, "concurrent:same", **concurrent(0)), c(D13, "concurrent:same", **concurrent(1))])
    assert g.verdict == DEPENDS and "1 of 8 concurrent builds failed" in g.figure
    h = answer("Q16", [c(D12, "filesystem:xfs", flock_second_blocked=True, concurrent={"builds": 3, "failed": 0}),
                       c(D13, "filesystem:xfs", flock_second_blocked=False, concurrent={"builds": 3, "failed": 0})])
    assert h.verdict == DEPENDS and D13 in h.answer


def test_go_clean_during_builds_alone_is_still_an_answer() -> None:
    f = answer("Q19", [c(D12, "concurrent:clean-during", **concurrent(2, 3, variant_clean=True))])
    assert f.verdict == VALUE and "2 of 3 builds failed" in f.answer
    assert "2 of 3 builds failed while `go clean -cache` ran: at most" in f.figure


def test_judged_cells_without_the_deciding_observations_are_not_measured() -> None:
    f = answer("Q22", [c(D12, "modcache:download")])
    assert f.verdict == NOT_MEASURED and "do not record" in f.answer


def test_rates_are_counts_with_an_upper_bound() -> None:
    f = answer("Q19", [c(D12, "concurrent:same", **concurrent(0)), c(D13, "concurrent:mixed", **concurrent(0))])
    assert f.verdict == NO
    assert "0 of 8 concurrent builds failed: at most 31 % at 95 % confidence" in f.figure
    assert "%" not in f.answer  # never a bare percentage


def test_noisy_tmpfs_timings_are_no_measurable_difference() -> None:
    noisy = tmpfs([7.1, 15.0, 19.2, 12.0, 16.0], [9.0, 11.0, 10.5, 9.5, 10.0])
    f = answer("Q15", [c(D12, "tmpfs-goroot", **noisy)])
    assert f.verdict == NO_DIFFERENCE
    assert "A/A floor" in f.figure and "few reps" in f.figure


def test_clear_tmpfs_timings_have_a_direction_and_disagreeing_rows_depend() -> None:
    fast = tmpfs([8.0, 8.1, 7.9, 8.0, 8.2], [10.0, 10.2, 9.9, 10.1, 10.0])
    slow = tmpfs([13.0, 13.1, 12.9, 13.0, 13.2], [10.0, 10.2, 9.9, 10.1, 10.0])
    assert answer("Q15", [c(D12, "tmpfs-goroot", **fast)]).verdict == YES
    assert answer("Q15", [c(D12, "tmpfs-goroot", **slow)]).verdict == NO
    both = answer("Q15", [c(D12, "tmpfs-goroot", **fast), c(D13, "tmpfs-goroot", **slow)])
    assert both.verdict == DEPENDS and "faster" in both.figure and "slower" in both.figure


def test_tmpfs_under_qemu_is_not_a_timing_of_go() -> None:
    f = answer("Q15", [c(ARM, "tmpfs-goroot", **tmpfs([5.0] * 5, [10.0] * 5))])
    assert f.verdict == NOT_MEASURED


def test_qemu_figures_are_labelled_qemus() -> None:
    f = answer("Q26", AGREE["Q26"])
    assert f.verdict == VALUE and "QEMU's cost, not Go's" in f.answer and "10.00× slower" in f.answer
    assert f.coverage is not None and f.coverage.emulated == ["debian-12/arm64"]
    assert "under QEMU: debian-12/arm64" in f.coverage.text()


def test_coverage_names_measured_emulated_and_unavailable_rows() -> None:
    cells = [c(D12, "env", **env()), c(ARM, "env", **env()), make(f"{ALP}/env", Status.UNAVAILABLE)]
    cov = answer("Q01", cells).coverage
    assert cov is not None
    assert (cov.measured, cov.emulated, cov.unavailable) == (["debian-12/amd64"], ["debian-12/arm64"],
                                                             ["alpine-3.23/amd64"])


def test_findings_never_change_a_status() -> None:
    cells = [c(D12, "concurrent:same", Status.FAIL, **concurrent(2)), c(D13, "env", Status.KNOWN, **env())]
    findings.compute(cells)
    assert [x.status for x in cells] == [Status.FAIL, Status.KNOWN]


def test_what_happened_is_separate_from_the_status() -> None:
    clean = c(D12, "concurrent:clean-during", **concurrent(2, 3, variant_clean=True))
    o = findings.outcome_of(clean)
    assert clean.status is Status.PASS and o is not None and o.word == BREAKS and "2 of 3 builds failed" in o.message
    refused = c(D12, "location:home-unset", exit_code=1, stderr_first_line="build cache is required")
    assert findings.outcome_of(refused).word == BREAKS  # type: ignore[union-attr]
    lost = c(D12, "storage:tmpfs", **{**STORAGE_OK, "restart": {"ok": True, "survived": False}})
    assert findings.outcome_of(lost).word == DEGRADED  # type: ignore[union-attr]
    assert findings.outcome_of(c(D12, "cold-warm:small", **COLD)).word == WORKS  # type: ignore[union-attr]
    assert findings.outcome_of(c(D12, "readonly:stale", readonly={"exit_code": 1, "compiled": 0})).word == BREAKS  # type: ignore[union-attr]
    assert findings.outcome_of(make(f"{D12}/env", Status.UNAVAILABLE)) is None


def _run(tmp_path: Path, cells: list[CellResult]) -> RunResults:
    return RunResults(run_dir=tmp_path, meta={"run_id": "r1"}, cells=cells, problems=[])


def all_cells() -> list[CellResult]:
    return [x for cs in AGREE.values() for x in cs]


def test_findings_json_validates_against_its_schema(tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(findings.SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    path = findings.write(_run(tmp_path, all_cells()))
    data = json.loads(path.read_text())
    jsonschema.validate(data, schema)
    assert data["answered"] == len(AGREE) and len(data["questions"]) == 32
    jsonschema.validate(findings.to_json(_run(tmp_path, [])), schema)


def test_markdown_opens_with_findings_and_keeps_tables_valid(tmp_path: Path) -> None:
    pipe = c(D12, "location:home-unset", exit_code=1, stderr_first_line="a | b\nc")
    text = markdown.render(_run(tmp_path, [*all_cells(), pipe]))
    assert text.index("## Findings") < text.index("## Distro × architecture")
    section = text.split("## Findings\n")[1].split("## Distro")[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("| [Q")]
    assert len(rows) == 32
    header_cols = len(markdown.FINDINGS_COMPACT_HEADERS)
    for row in rows:
        assert row.replace("\\|", "").count("|") == header_cols + 1, row
        assert "   |" not in row, "the compact table is not padded"
    # Nothing is dropped: every question's full answer, coverage and reproduce command is in its detail entry,
    # which the compact table's id links to.
    for f in findings.compute([*all_cells(), pipe]):
        entry = section.split(f"#### {f.question.id}\n")[1].split("\n#### ")[0]
        assert f"](#{f.question.id.lower()})" in section
        assert " ".join(f.answer.split()) in entry and f.question.title in entry
        if f.reproduce:
            assert f.reproduce in entry
        if f.coverage:
            assert f.coverage.text() in entry
    summary = markdown.github_summary(_run(tmp_path, all_cells()))
    assert summary.index("### Findings") < summary.index("### Distro × architecture")


def test_tables_show_what_happened_before_the_status(tmp_path: Path) -> None:
    clean = c(D12, "concurrent:clean-during", **concurrent(2, 3, variant_clean=True))
    text = markdown.render(_run(tmp_path, [clean]))
    assert "breaks 1 — ✓ 1/1" in text  # the compatibility table
    detail = text.split("### `concurrent`")[1]
    header = next(ln for ln in detail.splitlines() if ln.startswith("| distro"))
    assert header.index("what happened") < header.index("status")
    page = html_report.render(_run(tmp_path, [clean, *all_cells()]))
    assert page.index('<h2 id="findings">Findings</h2>') < page.index('<h2 id="compat">Distro × architecture</h2>')
    assert 'class="w-breaks"' in page and 'id="scenario-concurrent"' in page
