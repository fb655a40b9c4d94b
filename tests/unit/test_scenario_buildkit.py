"""buildkit: the build plan per variant, the Dockerfile, reading results out of build logs, the verdicts."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import pytest

from runner.buildrun import BEGIN, END, cache_id, dockerfile, parse_output, sweep_host_dirs
from runner.model import Arch, Cell, Engine, Status
from runner.scenarios import JobContext
from runner.scenarios.buildkit import GOCACHE, VARIANTS, Build, Buildkit, builds, edit_package
from tests.unit.test_scenarios import cell

CTX = JobContext(build_timeout=60)  # workload small
EDIT_PACKAGE = edit_package("small")


def bk_cell(variant: str, engine: str = "docker") -> Cell:
    return dataclasses.replace(cell("debian-12/amd64/docker/go1.22/env"), scenario="buildkit", variant=variant,
                               engine=Engine(engine))


def probe(compiled: list[str], before_files: int, ok: bool = True, machine: str = "x86_64") -> dict[str, Any]:
    deps = ("gcm.example/small gcm.example/small/internal/report " + EDIT_PACKAGE + "\n"
            "gcm.example/small/internal/report " + EDIT_PACKAGE + "\n" + EDIT_PACKAGE + " strings\n")
    return {"machine": machine, "steps": [
        {"name": "cache-before", "ok": True, "usage": {"exists": True, "bytes": 10, "files": before_files}},
        {"name": "modcache-before", "ok": True, "usage": {"exists": True, "bytes": 0, "files": 0}},
        {"name": "build", "ok": ok, "exit_code": 0 if ok else 1, "wall_sec": 1.5, "compiled": compiled,
         "stderr": "" if ok else "go: could not create module cache: mkdir /cache/mod: permission denied\n"},
        {"name": "deps", "ok": True, "stdout": deps},
        {"name": "cache-after", "ok": True, "usage": {"exists": True, "bytes": 10, "files": before_files + 5}},
    ]}


def got(p: dict[str, Any] | None, **outcome: Any) -> dict[str, Any]:
    return {"probe": p, "outcome": {"exit_code": 0, "build_sec": 2.0, **outcome}}


def test_every_variant_plans_two_builds_with_distinct_names() -> None:
    for v in VARIANTS:
        plan = builds(bk_cell(v))
        assert len(plan) == 2 and len({b.name for b in plan}) == 2, v
    assert {b.sharing for b in builds(bk_cell("private"))} == {"private"}
    assert [b.group for b in builds(bk_cell("locked"))] == [0, 0]  # at the same time
    assert builds(bk_cell("cross-arch"))[1].arch is Arch.ARM64
    assert builds(bk_cell("nonroot"))[1].mount_uid == 1000 and builds(bk_cell("nonroot"))[0].mount_uid is None
    with pytest.raises(ValueError, match="no variant"):
        builds(bk_cell("nope"))


def test_dockerfile_mounts_both_caches_with_the_options_of_the_build() -> None:
    text = dockerfile(from_lines="FROM x\n", b=Build("uid", 1, sharing="locked", user=1000, mount_uid=1000),
                      cid="gcm-r-abc")
    assert f"--mount=type=cache,id=gcm-r-abc-gocache,target={GOCACHE},uid=1000,gid=1000,sharing=locked" in text
    assert "id=gcm-r-abc-gomodcache" in text and "USER 1000:1000" in text and "COPY --chown=1000:1000 src" in text
    assert "GCM_CACHE_ID=gcm-r-abc" in text  # names the mounts in BuildKit's cache records
    assert "uid=" not in dockerfile(from_lines="FROM x\n", b=Build("a", 0), cid="c")


def test_cache_id_is_per_run_and_cell() -> None:
    a = cache_id("20261128T1-X", "debian-12/amd64/docker/go1.22/buildkit:rebuild")
    assert a == a.lower() and a != cache_id("20261128T2-X", "debian-12/amd64/docker/go1.22/buildkit:rebuild")
    assert a != cache_id("20261128T1-X", "debian-12/amd64/podman/go1.22/buildkit:rebuild")


def test_clean_removes_only_the_named_run_s_build_dirs(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from runner import drivers
    from runner.resources import owner_token

    monkeypatch.setenv("GCM_CACHE_DIR", str(tmp_path / "cache"))
    ctx, buildah = tmp_path / "cache" / "buildctx", tmp_path / "tmp" / "buildah-cache"
    monkeypatch.setattr(drivers, "buildah_roots", lambda: [buildah])  # never the host's real /var/tmp
    cell_id = "debian-12/amd64/podman/go1.22/buildkit:rebuild"
    mine, longer, other, live = (cache_id(r, cell_id) for r in ("run-A", "run-A-2", "run-B", "run-C"))
    made = [ctx / mine, ctx / other, buildah / f"{mine}-gocache", buildah / f"{mine}-uid-gomodcache",
            buildah / f"{longer}-gocache", buildah / "a-user-s-own-id", ctx / live, buildah / f"{live}-gocache"]
    for d in made:
        d.mkdir(parents=True)
    (ctx / live / "owner").write_text(owner_token())  # a run in progress: this process
    (ctx / other / "owner").write_text("elsewhere/1/1")  # an owner on another host counts as alive: kept
    assert sweep_host_dirs("run-A") == 3  # not run-A-2's, whose id starts the same
    assert [d.exists() for d in made] == [False, True, False, False, True, True, True, True]
    assert sweep_host_dirs() == 1  # every run's but the live ones; never a directory this tool did not name
    assert [d.exists() for d in made] == [False, True, False, False, False, True, True, True]


def _log(result: dict[str, Any], buildkit: bool) -> str:
    b64 = base64.encodebytes(json.dumps(result).encode()).decode().splitlines()
    body = [BEGIN, *b64, END]
    if not buildkit:
        return "STEP 4/4: RUN --mount=...\n" + "\n".join(body) + "\nCOMMIT\n"
    lines = ["#9 [stage-0 4/4] RUN --mount=type=cache,id=x,target=/cache/go-build \\",
             *(f"#9 12.{i:03d} {ln}" for i, ln in enumerate(body)), "#9 DONE 13.4s", "#10 exporting to image",
             "#10 DONE 0.1s"]
    return "\n".join(lines)


@pytest.mark.parametrize("buildkit", [True, False], ids=["buildkit-plain-progress", "buildah"])
def test_parse_output_reads_the_result_from_either_builder(buildkit: bool) -> None:
    result = probe(["a"] * 40, 0)
    parsed, step_sec = parse_output(_log(result, buildkit))
    assert parsed == result
    assert step_sec == (13.4 if buildkit else None)


def test_parse_output_without_a_result() -> None:
    assert parse_output("#9 ERROR: failed to solve\n") == (None, None)
    assert parse_output(f"{BEGIN}\n!!notbase64\n{END}\n")[0] is None


def test_rebuild_passes_when_only_the_edited_package_and_dependents_compile() -> None:
    c = bk_cell("rebuild")
    v = Buildkit().evaluate(c, {"first": got(probe(["runtime", EDIT_PACKAGE], 0)),
                                "rebuild": got(probe([EDIT_PACKAGE], 400))}, CTX)
    assert v.status is Status.PASS, v.reason
    assert v.observations["builds"]["first"]["mount_empty"] is True
    assert v.observations["builds"]["rebuild"]["compiled"] == 1


def test_rebuild_fails_when_unrelated_packages_recompile_or_the_mount_was_not_empty() -> None:
    c = bk_cell("rebuild")
    v = Buildkit().evaluate(c, {"first": got(probe(["runtime"], 0)),
                                "rebuild": got(probe([EDIT_PACKAGE, "fmt", "runtime"], 400))}, CTX)
    assert v.status is Status.FAIL and "fmt" in v.reason
    v = Buildkit().evaluate(c, {"first": got(probe(["runtime"], 12)), "rebuild": got(probe([EDIT_PACKAGE], 400))},
                            CTX)
    assert v.status is Status.FAIL and "not empty" in v.reason


def test_a_build_the_builder_rejected_is_a_fail_with_its_error() -> None:
    c = bk_cell("private", "podman")
    err = 'unrecognized value "private" for field `sharing`'
    v = Buildkit().evaluate(c, {"a": got(None, exit_code=125, error=err), "b": got(None, exit_code=125, error=err)},
                            CTX)
    assert v.status is Status.FAIL and "private" in v.reason


def test_nonroot_records_the_failure_without_uid_and_passes_with_it() -> None:
    c = bk_cell("nonroot")
    v = Buildkit().evaluate(c, {"no-uid": got(probe([], 0, ok=False)), "uid": got(probe(["runtime"], 0))}, CTX)
    assert v.status is Status.PASS and "permission denied" in v.observations["without_uid"]
    v = Buildkit().evaluate(c, {"no-uid": got(probe([], 0, ok=False)), "uid": got(probe([], 0, ok=False))}, CTX)
    assert v.status is Status.FAIL


@pytest.mark.parametrize(("variant", "key"), [("prune", "survived_prune"), ("no-cache", "survived_no_cache")])
def test_survival_is_observed_not_assumed(variant: str, key: str) -> None:
    c = bk_cell(variant)
    names = [b.name for b in builds(c)]
    for files, survived in ((0, False), (300, True)):
        v = Buildkit().evaluate(c, {names[0]: got(probe(["runtime"], 0)), names[1]: got(probe(["x"], files))}, CTX)
        assert v.status is Status.PASS and v.observations[key] is survived


def test_a_result_from_the_wrong_machine_never_passes() -> None:
    c = bk_cell("rebuild")
    v = Buildkit().evaluate(c, {"first": got(None, error="the build ran on machine 'aarch64', expected 'x86_64'"),
                                "rebuild": got(probe([EDIT_PACKAGE], 400))}, CTX)
    assert v.status is Status.FAIL and "aarch64" in v.reason


def marked(p: dict[str, Any], start: float, end: float, saw: bool) -> dict[str, Any]:
    """A probe result of an at-once build: what its two marker steps printed."""
    marks = [{"name": "at-once-start", "ok": True, "stdout": f"start={start}\nsaw={int(saw)}\n"},
             {"name": "at-once-end", "ok": True, "stdout": f"end={end}\n"}]
    return {**p, "steps": [*p["steps"], *marks]}


def test_only_builds_started_together_carry_the_markers() -> None:
    names = [s["name"] for s in Buildkit().job(bk_cell("shared"), CTX)]
    assert names.index("cache-before") < names.index("at-once-start") < names.index("build") < names.index(
        "at-once-end")
    assert "at-once-start" not in [s["name"] for s in Buildkit().job(bk_cell("rebuild"), CTX)]


@pytest.mark.parametrize(("variant", "a", "b", "status", "found"), [
    # (start, end, saw) per build; which mount started empty is a race and never decides
    ("shared", (10.0, 14.0, True), (10.5, 14.5, True), Status.PASS, "one mount, used by both at once"),
    ("private", (10.0, 16.0, False), (10.2, 16.1, False), Status.PASS, "a mount each"),
    ("locked", (10.0, 16.0, False), (16.1, 18.0, True), Status.PASS, "the later on the earlier's mount"),
    ("shared", (10.0, 11.0, False), (30.0, 31.0, True), Status.ERROR, "did not overlap"),
    ("private", (10.0, 16.0, True), (10.2, 16.1, False), Status.PASS, "only one saw"),
])
def test_builds_at_once_are_judged_by_what_they_saw_and_whether_they_overlapped(
        variant: str, a: tuple[float, float, bool], b: tuple[float, float, bool], status: Status, found: str) -> None:
    for empties in ((0, 0), (0, 300)):
        v = Buildkit().evaluate(bk_cell(variant), {"a": got(marked(probe(["runtime"], empties[0]), *a)),
                                                   "b": got(marked(probe(["x"], empties[1]), *b))}, CTX)
        assert v.status is status and found in v.reason, v.reason
        if status is Status.PASS:
            assert Buildkit.parity(v.observations) == Buildkit.parity(
                Buildkit().evaluate(bk_cell(variant), {"a": got(marked(probe(["runtime"], 0), *a)),
                                                       "b": got(marked(probe(["x"], 0), *b))}, CTX).observations)


def test_the_other_build_s_marker_is_not_a_cache_entry() -> None:
    """cache-before counts the other build's marker; the barrier's own count of Go's files decides mount_empty."""
    a = marked(probe(["runtime"], 1), 10.0, 14.0, True)
    a["steps"][-2]["stdout"] += "go_files=0\n"
    v = Buildkit().evaluate(bk_cell("shared"), {"a": got(a), "b": got(marked(probe(["x"], 0), 10.5, 14.5, True))},
                            CTX)
    assert v.observations["builds"]["a"]["mount_empty"] is True and v.observations["mounts_started_empty"] == 2


def test_the_marker_is_named_by_the_build_and_counts_go_s_files_without_markers() -> None:
    script = next(s for s in Buildkit().job(bk_cell("locked"), CTX) if s["name"] == "at-once-start")["argv"][2]
    assert "${GCM_BUILD" in script and "! -name 'gcm-at-once-*'" in script


def test_a_build_at_once_without_markers_is_an_error() -> None:
    v = Buildkit().evaluate(bk_cell("shared"), {"a": got(probe(["runtime"], 0)), "b": got(probe(["x"], 0))}, CTX)
    assert v.status is Status.ERROR and "marker" in v.reason
