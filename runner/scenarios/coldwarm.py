"""`cold-warm`: cold build, unchanged rebuild, rebuild after touching every source file, rebuild
after a one-byte change in one package. GOCACHE is Go's default ($HOME/.cache/go-build) on the
container's writable layer.

Go keys its cache on content, not mtimes, so (from cmd/go's documentation of the build cache):
  warm and touch rebuilds compile 0 packages;
  the one-byte change recompiles the changed package, and at most its dependents (a dependent is
  skipped when the changed package's export data stayed the same).
Packages compiled are the lines `go build -v` prints: it names only packages it actually compiles.
Besides: the cold build's CPU time and peak RSS (the probe's rusage of go and the compile/link processes it
waited for; Q31) and the row's C library and version (Q32), answered in runner.scenarios.footprint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner.answer import (
    BREAKS,
    DEGRADED,
    NO_DIFFERENCE,
    VALUE,
    WORKS,
    Answer,
    AnswerFn,
    Outcome,
    judged,
    obs_of,
    per_case,
    pick,
    where,
)
from runner.model import Cell, Status
from runner.results import CellResult
from runner.scenarios import (
    BASE_PATH,
    GOROOT,
    OFFLINE_GO,
    SCRATCH,
    WORKLOADS,
    JobContext,
    Phase,
    Probes,
    Verdict,
    describe_failure,
    exec_step,
    step,
)
from runner.scenarios.base import Rows, Scenario
from runner.scenarios.footprint import LIBC_SCRIPT, answer_libc, answer_resources, parse_libc, rusage_obs
from runner.scenarios.keying import answer_keyed
from runner.scenarios.rows import lead, mb
from runner.stats import SAME, compare

GOCACHE_DEFAULT = "/root/.cache/go-build"  # HOME=/root, XDG_CACHE_HOME unset
BUILDS = ("cold", "warm", "touch", "edit")
DEPS_FORMAT = "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}"


@dataclass(frozen=True)
class WorkloadSpec:
    setup: list[dict[str, Any]]  # copy the sources somewhere writable
    env: dict[str, str]
    dir: str  # where go runs
    target: str  # what `go build` builds
    touch_dir: str
    edit_file: str
    edit_package: str
    list_args: list[str]  # packages whose Deps decide who depends on edit_package
    run: list[str]  # the built binary, run once


def workload(name: str, goroot_in_container: str = GOROOT) -> WorkloadSpec:
    if name == "small":
        src = f"{SCRATCH}/src"
        return WorkloadSpec(
            setup=[{"name": "copy-src", "kind": "copytree", "path": f"{WORKLOADS}/small", "dest": src}],
            env=dict(OFFLINE_GO), dir=src, target=".", touch_dir=src,
            edit_file=f"{src}/internal/format/format.go", edit_package="gcm.example/small/internal/format",
            list_args=["./..."], run=[f"{SCRATCH}/bin/app"],
        )
    if name == "gofmt":
        # GOROOT is a read-only mount: build from a writable copy so the touch/edit steps can happen. A distro's
        # GOROOT may link outside itself (Debian: src -> ../../share/go-1.23/src): those links are copied as
        # their targets, links inside the tree stay links: the copy is laid out as the distro has it.
        goroot = f"{SCRATCH}/goroot"
        return WorkloadSpec(
            setup=[{"name": "copy-goroot", "kind": "copytree", "path": goroot_in_container, "dest": goroot,
                    "deref_outside": True}],
            env={"PATH": f"{goroot}/bin:{BASE_PATH}", "GOTOOLCHAIN": "local", "GOPROXY": "off"},
            dir=f"{goroot}/src/cmd", target="cmd/gofmt", touch_dir=f"{goroot}/src/cmd/gofmt",
            edit_file=f"{goroot}/src/cmd/gofmt/gofmt.go", edit_package="cmd/gofmt",
            list_args=["cmd/gofmt"], run=[f"{SCRATCH}/bin/app", "-l", f"{goroot}/src/cmd/gofmt"],
        )
    raise ValueError(f"cold-warm has no workload {name!r}")


def setup_problem(probe: Mapping[str, Any], setup: list[str]) -> str | None:
    """Why the tool could not prepare the workload (an `error`, not a finding about Go), or None.
    A setup step (copying sources) failed, or go could not even be started: the probe reports an exec error
    (no exit code) such as `fork/exec ...: no such file or directory` when the binary or its directory is
    missing, which says nothing about Go's cache."""
    for name in setup:
        s = step(probe, name)
        if s is None or not s.get("ok"):
            return f"setup: {describe_failure(s, name)} (the tool could not prepare the workload)"
    go_env = step(probe, "go-env")
    if go_env is not None and not go_env.get("ok") and go_env.get("error") and go_env.get("exit_code") is None:
        return f"setup: could not start go: {go_env['error']} (the workload's go or its directory is missing)"
    return None


def _coldwarm_rows(cells: Sequence[CellResult]) -> Rows:
    headers = ["distro", "arch", "engine", "toolchain", "workload", "cold s (pkgs)", "warm s (pkgs)",
               "touch s (pkgs)", "1-byte edit s (pkgs)", "cache MB", "cold CPU s · peak RSS MB", "libc", "status"]
    rows = []
    for c in cells:
        o = c.observations

        def b(name: str, o: dict[str, Any] = o) -> str:
            s = o.get(name)
            return f"{s['sec']:.2f} ({s['compiled']})" if isinstance(s, dict) and "sec" in s else ""

        cache = o.get("edit", {}).get("cache_bytes_after") if isinstance(o.get("edit"), dict) else None
        cold = o.get("cold")
        cost = f"{cold['cpu_sec']:.1f} · {cold['maxrss_mb']:.0f}" if isinstance(cold, dict) and "maxrss_mb" in cold \
            else ""
        libc = (o.get("libc") or {}).get("raw", "") if isinstance(o.get("libc"), dict) else ""
        rows.append(lead(c) + [c.cell.get("variant", ""), b("cold"), b("warm"), b("touch"), b("edit"), mb(cache),
                                 cost, libc, c.status.value])
    return headers, rows


class ColdWarm(Scenario):
    id = "cold-warm"
    title = ("Cold build, then rebuilds: unchanged, after `touch` of every source, after a one-byte edit. Times "
             "measured inside the container; (pkgs) = packages compiled")
    # Its build times are the figures people read (and the QEMU factor): measured alone (runner.slot).
    timing = True

    @staticmethod
    def answers() -> dict[str, AnswerFn]:
        # Q08: this scenario's touch rebuild, with the keying cells' chmod, new inode and hard link beside it.
        return {"Q08": answer_keyed, "Q09": answer_edit, "Q26": answer_qemu, "Q31": answer_resources,
                "Q32": answer_libc}

    @staticmethod
    def outcome(c: CellResult) -> Outcome:
        """A build that did not finish breaks; a warm or touch rebuild that compiled degrades."""
        o = c.observations
        if any(name not in o for name in BUILDS) or o.get("binary_runs") is False:
            return Outcome(BREAKS, c.reason)
        missed = [f"{n} compiled {o[n]['compiled']}" for n in ("warm", "touch") if o[n].get("compiled")]
        if missed:
            return Outcome(DEGRADED, ", ".join(missed))
        if c.status is not Status.PASS:
            return Outcome(DEGRADED, c.reason)
        return Outcome(WORKS, f"warm {o['warm']['sec']:.2f}s vs cold {o['cold']['sec']:.2f}s, 0 compiled")

    def phases(self, cell: Cell, ctx: JobContext) -> list[Phase]:
        return [Phase("main", self.steps(cell, ctx))]

    def steps(self, cell: Cell, ctx: JobContext) -> list[dict[str, Any]]:
        assert cell.variant is not None
        w = workload(cell.variant, ctx.goroot)
        base = {"env": w.env, "dir": w.dir, "timeout_sec": ctx.build_timeout, "stop_on_error": True}
        build = ["go", "build", "-v", "-o", f"{SCRATCH}/bin/app", w.target]

        def build_step(name: str) -> dict[str, Any]:
            return exec_step(name, build, count_compiled=True, measure=[GOCACHE_DEFAULT], **base)

        steps = [*({**s, "stop_on_error": True} for s in w.setup),
                 exec_step("go-env", ["go", "env", "GOCACHE", "GOMODCACHE"], **base)]
        if cell.variant == "small":
            steps.append(exec_step("mod-download", ["go", "mod", "download"], **base))
        steps += [
            build_step("cold"),
            build_step("warm"),
            {"name": "touch-all", "kind": "touch", "path": w.touch_dir, "stop_on_error": True},
            build_step("touch"),
            {"name": "edit-one-byte", "kind": "edit", "path": w.edit_file, "data": "\n", "stop_on_error": True},
            build_step("edit"),
            exec_step("deps", ["go", "list", "-f", DEPS_FORMAT, *w.list_args], **base),
            exec_step("run", w.run, **{**base, "stop_on_error": False}),
            exec_step("libc", ["sh", "-c", LIBC_SCRIPT], stop_on_error=False),
        ]
        return steps

    def evaluate(self, cell: Cell, probes: Probes, ctx: JobContext) -> Verdict:
        probe = probes["main"]
        assert cell.variant is not None
        w = workload(cell.variant)
        obs: dict[str, Any] = {"workload": cell.variant, "edited_package": w.edit_package}
        if (broken := setup_problem(probe, [s["name"] for s in w.setup])) is not None:
            return Verdict(Status.ERROR, broken, obs)
        env_step = step(probe, "go-env")
        if env_step and env_step.get("ok"):
            lines = (env_step.get("stdout") or "").splitlines()
            obs["gocache"], obs["gomodcache"] = (lines + ["", ""])[:2]
        for name in BUILDS:
            s = step(probe, name)
            if s is None or not s.get("ok"):
                return Verdict(Status.FAIL, describe_failure(s, f"{name} build"), obs)
            compiled = s.get("compiled") or []
            obs[name] = {
                "sec": round(float(s["wall_sec"]), 3),
                "compiled": len(compiled),
                "cache_bytes_after": (s.get("after") or {}).get(GOCACHE_DEFAULT, {}).get("bytes"),
                "cache_files_after": (s.get("after") or {}).get(GOCACHE_DEFAULT, {}).get("files"),
            }
            if name in ("touch", "edit"):
                obs[name]["packages"] = compiled
        obs["cold"].update(rusage_obs(step(probe, "cold")))
        obs["libc"] = parse_libc(step(probe, "libc"))
        cold_before = (step(probe, "cold") or {}).get("before", {}).get(GOCACHE_DEFAULT, {})
        obs["cold"]["cache_bytes_before"] = cold_before.get("bytes", 0) if cold_before.get("exists") else 0
        run = step(probe, "run")
        obs["binary_runs"] = bool(run and run.get("ok"))

        deps_step = step(probe, "deps")
        if deps_step is None or not deps_step.get("ok"):
            return Verdict(Status.ERROR, "could not list package dependencies: "
                           + describe_failure(deps_step, "go list"), obs)
        dependents = sorted(
            words[0] for words in (line.split() for line in (deps_step.get("stdout") or "").splitlines())
            if words and w.edit_package in words[1:]
        )
        obs["dependents_of_edited"] = dependents

        problems = []
        if obs["cold"]["compiled"] == 0:
            problems.append("cold build compiled 0 packages: the cache was not empty or -v printed nothing")
        for name in ("warm", "touch"):
            if obs[name]["compiled"]:
                problems.append(f"{name} rebuild compiled {obs[name]['compiled']} packages "
                                f"({', '.join(step(probe, name).get('compiled', [])[:5])}), expected 0")  # type: ignore[union-attr]
        edited = set(obs["edit"]["packages"])
        if w.edit_package not in edited:
            problems.append(f"one-byte change in {w.edit_package} did not recompile it (compiled: {sorted(edited)})")
        outside = edited - {w.edit_package, *dependents}
        if outside:
            problems.append(f"one-byte change recompiled packages that do not depend on {w.edit_package}: "
                            f"{sorted(outside)}")
        if not obs["binary_runs"]:
            problems.append(describe_failure(run, "built binary"))
        if problems:
            return Verdict(Status.FAIL, "; ".join(problems), obs)
        return Verdict(
            Status.PASS,
            f"cold {obs['cold']['sec']:.2f}s/{obs['cold']['compiled']} pkgs, warm {obs['warm']['sec']:.2f}s/0, "
            f"touch {obs['touch']['sec']:.2f}s/0, edit {obs['edit']['sec']:.2f}s/{len(edited)}",
            obs,
        )

    def detail_rows(self, cells: Sequence[CellResult]) -> Rows:
        return _coldwarm_rows(cells)


def _edit(c: CellResult) -> str | None:
    edited, deps = obs_of(c, "edited_package"), obs_of(c, "dependents_of_edited")
    pkgs = obs_of(c, "edit", "packages")
    if not isinstance(pkgs, list) or not isinstance(deps, list):
        return None
    again = [p for p in deps if p in pkgs]
    if pkgs == [edited]:
        return f"{c.cell.get('variant')}: only the changed package ({len(deps)} dependents not recompiled)"
    return f"{c.cell.get('variant')}: the changed package and {len(again)} of its {len(deps)} dependents"


def answer_edit(cells: Sequence[CellResult]) -> Answer:
    """Q09: a one-byte change in one package: which packages does the next build compile?"""
    return per_case(pick(cells, "cold-warm"), _edit,
                    limits="a trailing newline in one file: the export data stays the same, so dependents may be "
                           "skipped; a change of an exported API is not measured")


def _twins(cells: Sequence[CellResult]) -> list[tuple[CellResult, CellResult]]:
    """(emulated, native) cold-warm cells of one distro, engine, toolchain and workload on different arches."""
    native = {(c.id.split("/", 2)[0], *c.id.split("/")[2:]): c for c in judged(cells) if not c.cell.get("emulated")}
    out = []
    for c in judged(cells):
        if c.cell.get("emulated"):
            twin = native.get((c.id.split("/", 2)[0], *c.id.split("/")[2:]))
            if twin is not None:
                out.append((c, twin))
    return out


def answer_qemu(cells: Sequence[CellResult]) -> Answer:
    """Q26: what emulation costs a cold build: each emulated cold-warm cell against its native twin (other arch,
    same distro, engine, toolchain, workload), plus a merged run's native cells that carry an emulated twin."""
    basis = pick(cells, "cold-warm")
    ratios, rows = [], []
    for emu, nat in _twins(basis):
        e, n = obs_of(emu, "cold", "sec"), obs_of(nat, "cold", "sec")
        if isinstance(e, (int, float)) and isinstance(n, (int, float)) and n > 0:
            ratios.append(e / n)
            rows.append(f"{where(emu)} vs {nat.cell['arch']}")
    for c in judged(basis):
        twin, own = c.timings.get("emulated_twin") or {}, c.timings.get("in_container_sec")
        if isinstance(twin.get("in_container_sec"), (int, float)) and isinstance(own, (int, float)) and own > 0:
            ratios.append(float(twin["in_container_sec"]) / own)
            rows.append(f"{where(c)} run natively and under QEMU (whole cell)")
    cmp = compare(ratios)
    if cmp is None:
        return Answer(NO_DIFFERENCE, "", tuple(b for b in basis if b.cell.get("emulated")),
                      limits="no emulated cold-warm cell with a native twin in this run")
    verdict = NO_DIFFERENCE if cmp.verdict == SAME else VALUE
    return Answer(verdict, f"QEMU's cost, not Go's on that arch: a cold build under QEMU against native: {cmp.short()}",
                  tuple(basis), figure=f"{len(ratios)} pairs: {'; '.join(rows)}",
                  limits="user-mode QEMU on this host's CPU; one workload per pair; pairs are rows, not reps")
