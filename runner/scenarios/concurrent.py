"""`concurrent`: several `go build` processes on one GOCACHE (+GOMODCACHE) at the same time, on a bind mount.

cmd/go documents the build cache as safe for concurrent use ("The go command's build cache ... is safe
for concurrent invocations"): entries are written under content-derived names and published atomically,
so processes racing on the same action only do duplicate work. Variants, all with N=4 builds:

    same          one container: 4 `go build -v` of the workload (same dir) at once on an empty cache, then
                  one warm build
    mixed         one container: 2 builds of the workload + 2 of a second target sharing part of it (wide/alt;
                  with the program, `go build cmd/gofmt`) at once, then a warm build of each
    containers    a prepare container runs `go mod download` into the shared mount; then 2 containers at
                  once (Phase replicas) each run 2 builds at once; then a new container's warm build
    clean-during  one container: 3 builds at once with `go clean -cache` alongside, started once the builds
                  have written CLEAN_AT (200) cache entries; then a warm-up build and a second build
    many-<fs>     at scale: N=16 builds of the three-package `lib` at once in one container, both caches on
                  ext4, xfs or btrfs (loop-mounted), tmpfs, or the container's overlay layer; the filesystem
                  seen and whether flock(2) excludes a second process there are recorded too (Q16), and 16
                  processes taking one flock 20 times each (holding it 2 ms): every wait (p50/p95) and
                  failure; before the builds, 16 `go mod download`s at once into an empty GOMODCACHE on the
                  same filesystem, then `go mod verify` (Q20)

The workload (contention, not timing): `wide` (runner/workloads/wide_gen.py), 121 packages in layers with no
standard library import. The question is whether builds that write the same entries at the same time break or
corrupt the cache, so what it needs is many entries written at once by builds that reach the same actions, not
the runtime: a cold build of `wide` writes about 500 files to GOCACHE (the `small` program: 398) in about 1.4 s
(the program: about 16 s), and 4 at once each compile most packages themselves and take the rest from each
other's entries (`raced_packages` records how many packages two or more builds compiled). `nox -s parity` runs
these cells again with GCM_WORKLOAD=small (the program, and cmd/gofmt for mixed) and compares `parity(obs)`.

clean-during keeps the `small` program, whatever GCM_WORKLOAD says, because `wide` cannot decide it. cmd/go
reads from GOCACHE what it found there (what it compiled itself it reads from its work directory), so a clean
hurts a build that found another build's entry and has not read it yet. The program's builds drift apart on
the runtime's long compiles and use each other's entries: with the clean at 200 entries, 1 to 3 of its 3 builds
failed with "could not import <pkg> (open <GOCACHE file>: no such file or directory)" in each of 6 cells here
(debian-12 and 13, go1.22 and go1.27). `wide`'s builds run in step and compile nearly everything themselves: in
the 2 cells measured (debian-12, go1.22 and go1.27) 1 and 0 of 3 failed, that one while loading packages, not
compiling. The clean starts once the builds have written 200 entries, past the module index (one entry per
package directory, written while Go loads packages; a clean among them fails the builds there, "package runtime
is not in std"), so while they compile: `clean.entries_before` records how many it found, and
`builds_running_after_clean` counts the builds that ran on after it returned. many-<fs> builds `lib` in every
run. Neither is in the parity check.

Pass (same, mixed, containers): no build fails, Go prints no corruption message, the warm build(s)
compile 0 packages. clean-during: builds that fail while the cache is removed under them are recorded
(Go's own words), not judged; it passes when the second build afterwards compiles 0 packages and no
build after the clean reports a corrupted cache.

Every build's exit, packages compiled, first non-package stderr line and any stderr line naming the
cache with "corrupt"/"invalid"/"unexpected" are recorded; wall-clock overlap is recorded, not assumed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from runner.answer import BREAKS, DEGRADED, WORKS, Answer, AnswerFn, Outcome, Tally, judged, pick, yes_no
from runner.answer import where as row_of
from runner.model import Cell, Status
from runner.results import CellResult
from runner.scenarios import (
    OFFLINE_GO,
    SCRATCH,
    WORKLOADS,
    JobContext,
    MountSpec,
    Phase,
    Probes,
    Verdict,
    barrier_missed,
    barrier_step,
    build_argv,
    catalogue,
    describe_failure,
    exec_step,
    probe_started,
    raced,
    step,
)
from runner.scenarios.base import Rows, Scenario
from runner.scenarios.rows import lead
from runner.stats import rate_text

VARIANTS = catalogue.variants("concurrent")  # the registry line lists them
N = 4
REPLICAS = 2  # containers: containers at once, each running N // REPLICAS builds
CACHE_ROOT = "/gocache"
GOCACHE = f"{CACHE_ROOT}/build"
GOMODCACHE = f"{CACHE_ROOT}/mod"
ENV = {**OFFLINE_GO, "GOCACHE": GOCACHE, "GOMODCACHE": GOMODCACHE}
SRC = f"{SCRATCH}/src"
BIN = f"{SCRATCH}/bin"
MOUNT = MountSpec("bind", CACHE_ROOT, name="cache")
# clean-during: `go clean -cache` starts once the builds have written CLEAN_AT cache entries (so it removes entries
# that builds running beside it have written and will read), polling every 50 ms for at most CLEAN_WAIT_SEC; it
# prints how many entries it found. A fixed delay (1 s) landed before the first compile on a busy host. The first
# entries are the module index, one per package directory, written while Go loads packages (64-98 here); a clean
# among them fails the builds there ("package runtime is not in std"), not while they compile. 200 is past them and
# about the middle of a cold build of `small` (398 entries).
CLEAN_AT = 200
CLEAN_WAIT_SEC = 60
CLEAN_SCRIPT = (f'i=0; until set -- {GOCACHE}/??/*; [ -e "$1" ] && [ $# -ge {CLEAN_AT} ] || [ $i -ge '
                f'{CLEAN_WAIT_SEC * 20} ]; do sleep 0.05; i=$((i+1)); done; [ -e "$1" ] || set --; '
                f'echo "gcm-clean: $# entries"; go clean -cache')
_CLEAN_SAW = re.compile(r"^gcm-clean: (\d+) entries$", re.M)
CLEAN = "clean"
MANY_N = 16
# many-<fs>: MANY_N processes each take one flock(2) LOCK_ROUNDS times and hold it LOCK_HOLD_MS (the probe's
# flock-contend: the blocking call Go's lockedfile makes): every wait, and every attempt that failed.
LOCK_ROUNDS = 20
LOCK_HOLD_MS = 2.0
LIB_SRC = f"{SCRATCH}/lib"
DOWNLOAD_CACHE = f"{CACHE_ROOT}/mod-concurrent"  # many-<fs>: the GOMODCACHE the 16 downloads share
# many-<fs>: where both caches live (None: the container's writable overlay layer)
MANY_MOUNTS: dict[str, MountSpec | None] = {
    "ext4": MountSpec("loop", CACHE_ROOT, name="ext4"), "xfs": MountSpec("loop", CACHE_ROOT, name="xfs"),
    "btrfs": MountSpec("loop", CACHE_ROOT, name="btrfs"), "tmpfs": MountSpec("tmpfs", CACHE_ROOT, options="size=1g"),
    "overlay": None}

# A `go build -v` package line (the probe's own pattern): an import path alone on its line.
_PKG_LINE = re.compile(r"^[A-Za-z0-9_.~+\-]+(/[A-Za-z0-9_.~+\-]+)*$")
_CORRUPT = re.compile(r"corrupt|invalid|unexpected", re.IGNORECASE)
# Where a compiler message says where: "<file>.go:<line>:<col>: ".
_POSITION = re.compile(r"^\S+\.go:\d+(?::\d+)?: ")


def build(name: str, ctx: JobContext, workload: str, out: str, target: str = ".", src: str = SRC) -> dict[str, Any]:
    """One `go build -v` of `target` in `src` (the copied workload; cmd/gofmt comes from GOROOT)."""
    argv = ["go", "build", "-v", "-o", f"{BIN}/{out}", "cmd/gofmt"] if workload == "gofmt" \
        else build_argv(workload, f"{BIN}/{out}", target)
    return exec_step(name, argv, dir=src, env=ENV, count_compiled=True, timeout_sec=ctx.build_timeout)


def setup_steps(ctx: JobContext, download: bool = True, workload: str | None = None) -> list[dict[str, Any]]:
    steps = [{"name": "copy-src", "kind": "copytree", "path": f"{WORKLOADS}/{workload or ctx.workload}", "dest": SRC,
              "stop_on_error": True},
             exec_step("mkdir", ["mkdir", "-p", GOCACHE, GOMODCACHE], stop_on_error=True)]
    if download:
        steps.append(exec_step("mod-download", ["go", "mod", "download"], dir=SRC, env=ENV,
                               timeout_sec=ctx.build_timeout, stop_on_error=True))
    return steps


def many_setup(ctx: JobContext) -> list[dict[str, Any]]:
    """many-<fs>: the `lib` workload, both caches under CACHE_ROOT, the filesystem seen and a flock test there."""
    return [{"name": "copy-src", "kind": "copytree", "path": f"{WORKLOADS}/lib", "dest": LIB_SRC,
             "stop_on_error": True},
            exec_step("mkdir", ["mkdir", "-p", GOCACHE, GOMODCACHE, BIN], stop_on_error=True),
            {"name": "fs", "kind": "statfs", "path": CACHE_ROOT},
            {"name": "flock", "kind": "flock", "path": f"{CACHE_ROOT}/flock-test"},
            {"name": "flock-contend", "kind": "flock-contend", "path": f"{CACHE_ROOT}/flock-contend", "procs": MANY_N,
             "rounds": LOCK_ROUNDS, "hold_ms": LOCK_HOLD_MS},
            {"name": "downloads", "kind": "parallel", "steps": [
                exec_step(f"download-{i}", ["go", "mod", "download"], dir=LIB_SRC,
                          env={**ENV, "GOMODCACHE": DOWNLOAD_CACHE}, timeout_sec=ctx.build_timeout)
                for i in range(1, MANY_N + 1)]},
            exec_step("downloads-verify", ["go", "mod", "verify"], dir=LIB_SRC,
                      env={**ENV, "GOMODCACHE": DOWNLOAD_CACHE}, timeout_sec=ctx.build_timeout),
            exec_step("mod-download", ["go", "mod", "download"], dir=LIB_SRC, env=ENV, timeout_sec=ctx.build_timeout,
                      stop_on_error=True)]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def lock_waits(s: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The flock-contend step: attempts, acquisitions, failed attempts (lock or unlock errors), processes that did not
    report, wait p50/p95/max in ms; {"ran": False, ...} when the test itself did not run; None without the step."""
    if s is None:
        return None
    c = s.get("contend") or {}
    if not c:
        return {"ran": False, "attempts": 0, "failed": 0, "errors": [str(s.get("error") or "the step did not run")]}
    waits = [float(w) for w in c.get("waits_ms") or []]
    procs, rounds = int(c.get("procs") or 0), int(c.get("rounds") or 0)
    out: dict[str, Any] = {"ran": True, "procs": procs, "rounds": rounds, "hold_ms": c.get("hold_ms"),
                           "attempts": procs * rounds, "acquired": len(waits), "failed": int(c.get("failures") or 0),
                           "unreported": int(c.get("proc_failures") or 0), "errors": c.get("errors") or []}
    if waits:
        out.update(p50_ms=round(percentile(waits, 0.5), 3), p95_ms=round(percentile(waits, 0.95), 3),
                   max_ms=round(max(waits), 3))
    return out


def parallel(builds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": "cache-before", "kind": "du", "path": GOCACHE},
            {"name": "parallel", "kind": "parallel", "steps": builds, "measure": [GOCACHE]}]


# A build of the plan: (label, workload, target). The label names the build ("<label>-<i>") and its warm build.
Target = tuple[str, str, str]
# mixed: the second, different target on the same cache. With the program it is cmd/gofmt (they share the runtime
# and std); with `wide`, wide/alt (its own packages over wide's lower layers); with `lib`, its internal package.
SECOND = {"small": ("gofmt", "gofmt", "cmd/gofmt"), "wide": ("alt", "wide", "./alt"),
          "lib": ("format", "lib", "./internal/format")}


def workload_of(variant: str, workload: str) -> str:
    """What a variant builds: the cell's workload (the declared `wide`, or GCM_WORKLOAD's), except many-<fs>, which
    builds `lib` 16 times, and clean-during, which keeps the program (see the module's docstring: builds of `wide`
    do not fail when the cache is removed under them, the program's do)."""
    if variant.startswith("many-"):
        return "lib"
    return "small" if variant == "clean-during" else workload


def targets(variant: str, workload: str = "small") -> list[Target]:
    """What each parallel build in one container builds: the cell's workload (its declared `wide`, or the
    `small` program of a parity run), except many-<fs>, which builds `lib`, and clean-during, which builds the
    program, whatever the cell's workload is (workload_of)."""
    workload = workload_of(variant, workload)
    main = (workload, workload, ".")
    if variant == "mixed":
        return [main, main, SECOND[workload], SECOND[workload]]
    if variant == "containers":
        return [main] * (N // REPLICAS)
    if variant == "clean-during":
        return [main] * 3
    if variant.startswith("many-"):
        return [main] * MANY_N
    return [main] * N


def after_names(variant: str, workload: str = "small") -> list[str]:
    """The builds after the parallel step; the last of each target must compile 0."""
    workload = workload_of(variant, workload)
    if variant == "mixed":
        return ["warm-" + workload, "warm-" + SECOND[workload][0]]
    if variant == "clean-during":
        return ["warm-up", "warm"]
    return ["warm"]


def after_targets(variant: str, workload: str = "small") -> dict[str, Target]:
    workload = workload_of(variant, workload)
    main = (workload, workload, ".")
    if variant == "mixed":
        return dict(zip(after_names(variant, workload), (main, SECOND[workload]), strict=True))
    return {n: main for n in after_names(variant, workload)}


def corruption(stderr: str | None) -> list[str]:
    return [ln.strip() for ln in (stderr or "").splitlines() if "cache" in ln.lower() and _CORRUPT.search(ln)]


def messages(stderr: str | None) -> list[str]:
    """The stderr lines that are not package names `go build -v` printed."""
    return [ln.strip() for ln in (stderr or "").splitlines() if ln.strip() and not _PKG_LINE.match(ln.strip())]


def message(stderr: str | None) -> str:
    """The first stderr line that is not a package name: Go's `# <pkg>` header when a package failed."""
    return next(iter(messages(stderr)), "")


def _go_error_parts(stderr: str | None) -> tuple[str, str]:
    """(package of the first `# <pkg>` header, first message line that is not a header)."""
    header = ""
    for ln in messages(stderr):
        if ln.startswith("# "):
            header = header or ln[2:]
            continue
        return header, ln
    return header, ""


def go_error(stderr: str | None) -> str:
    """Go's words: the first message line that is not a `# <pkg>` header, prefixed with that package."""
    header, line = _go_error_parts(stderr)
    return f"{header}: {line}" if header and line else header or line


def error_kind(go_err: str) -> str:
    """A line of Go's words without what names this build: position, package, paths and hashes. "…/math.go:7:8:
    could not import internal/goarch (open /gocache/build/7e/7e75…-d: no such file or directory)" and the same
    about a `wide` package are one kind: "could not import <pkg> (open <path>: no such file or directory)"."""
    msg = _POSITION.sub("", go_err.strip(), count=1)  # a message line as Go printed it, without go_error's header
    msg = re.sub(r"could not import \S+", "could not import <pkg>", msg)
    msg = re.sub(r"(?<![\w.])/[^\s:()]+", "<path>", msg)
    return re.sub(r"\b[0-9a-f]{16,}\b", "<hash>", msg)


def _kind(b: Mapping[str, Any]) -> str:
    """A failed build's error kind, from its recorded messages (results written before go_error_kind have them)."""
    return error_kind(_go_error_parts(b.get("stderr"))[1]) if b.get("stderr") else str(b.get("go_error_kind", ""))


def run_obs(s: Mapping[str, Any] | None) -> dict[str, Any]:
    if s is None:
        return {"ran": False}
    out: dict[str, Any] = {"ran": True, "ok": bool(s.get("ok")), "exit_code": s.get("exit_code"),
                           "sec": round(float(s.get("wall_sec", 0.0)), 3), "compiled": len(s.get("compiled") or []),
                           "stderr_first_line": message(s.get("stderr")) or s.get("error", ""),
                           "corruption": corruption(s.get("stderr"))}
    if not s.get("ok"):
        out["go_error"] = go_error(s.get("stderr")) or s.get("error", "")
        out["go_error_kind"] = error_kind(_go_error_parts(s.get("stderr"))[1] or s.get("error", ""))
        out["stderr"] = "\n".join(messages(s.get("stderr")))[:2000]
    if s.get("timed_out"):
        out["timed_out"] = True
    return out


def _window(probe: Mapping[str, Any]) -> tuple[float, float] | None:
    """(start, end) of the probe's `parallel` step in wall-clock seconds: probe start + the steps before it."""
    t0 = probe_started(probe)
    if t0 is None:
        return None
    for s in probe.get("steps", []):
        sec = float(s.get("wall_sec", 0.0))
        if s.get("name") == "parallel":
            return t0, t0 + sec
        t0 += sec
    return None


def _waits_cell(lw: Mapping[str, Any] | None) -> str:
    if not lw:
        return ""
    if "p95_ms" not in lw:
        return f"({lw.get('failed', 0)} of {lw.get('attempts', 0)} failed)"
    return f"{lw['p50_ms']:.1f} / {lw['p95_ms']:.1f} ({lw['failed']} of {lw['attempts']})"


def _concurrent_rows(cells: Sequence[CellResult]) -> Rows:
    headers = ["distro", "arch", "engine", "toolchain", "variant", "N", "failures", "corruption messages",
               "parallel step s", "flock waits ms p50/p95 (failed)", "warm compiled after", "status"]
    rows = []
    for c in cells:
        o = c.observations
        fails = o.get("failures", "")
        firsts = sorted({b.get("go_error", "") for b in o.get("builds") or [] if not b.get("ok")} - {""})
        if fails and firsts:
            fails = f"{fails}: {firsts[0]}"
        corrupt = o.get("corruption") or []
        rows.append(lead(c) + [c.cell.get("variant"), o.get("n", ""), fails,
                                 "; ".join(corrupt) if corrupt else ("none" if "corruption" in o else ""),
                                 f"{o['parallel_sec']:.2f}" if isinstance(o.get("parallel_sec"), (int, float)) else "",
                                 _waits_cell(o.get("lock_waits")), o.get("warm_compiled", ""), c.status.value])
    return headers, rows


class Concurrent(Scenario):
    id = "concurrent"
    # Contention needs builds that write many cache entries at once, not the runtime: `wide` writes more entries
    # than the program (about 500 against 398) in a tenth of the time (runner.parity checks it decides alike).
    workload = "wide"
    title = ("N `go build`s at once on one GOCACHE+GOMODCACHE bind mount (`wide` four times, `wide` beside `wide/alt`, "
             "two containers; the program during `go clean -cache`; 16 of `lib` per filesystem), then warm rebuilds")

    @staticmethod
    def answers() -> dict[str, AnswerFn]:
        return {"Q19": answer_concurrent}

    @staticmethod
    def outcome(c: CellResult) -> Outcome:
        """Any failed build breaks, also where Go documents the failure (clean-during passes with failed builds)."""
        o = c.observations
        builds = o.get("builds") or []
        failed = [b for b in builds if not b.get("ok")]
        after_failed = [n for n, a in (o.get("after") or {}).items() if a.get("ran") and not a.get("ok")]
        if failed or after_failed or o.get("corruption"):
            first = failed[0].get("go_error", "") if failed else ""
            return Outcome(BREAKS, f"{len(failed)} of {len(builds)} builds failed" + (f": {first}" if first else "")
                           + (f"; after: {', '.join(after_failed)} failed" if after_failed else "")
                           + ("; corruption reported" if o.get("corruption") else ""))
        if o.get("warm_compiled"):
            return Outcome(DEGRADED, f"the warm build after compiled {o['warm_compiled']} packages")
        if c.status is not Status.PASS:
            return Outcome(BREAKS, c.reason)
        return Outcome(WORKS, f"{len(builds)} concurrent builds ok, warm build 0 compiled")

    @staticmethod
    def parity(obs: Mapping[str, Any]) -> dict[str, Any] | None:
        """What decides a contention cell whatever the workload (runner.parity compares it): every build's exit and
        Go's words (the kind, without package or path), corruption messages, whether the builds raced on the same
        packages, the warm builds after; containers: whether the two overlapped. None for the variants without a
        cheap workload: many-<fs> builds `lib` and clean-during the program in every run."""
        v = str(obs.get("variant") or "")
        if v.startswith("many-") or v == "clean-during":
            return None
        builds = obs.get("builds") or []
        out: dict[str, Any] = {
            "builds": len(builds), "exit_codes": sorted({b.get("exit_code") for b in builds}, key=str),
            "go_error_kinds": sorted({k for b in builds if not b.get("ok") and (k := _kind(b))}),
            "raced": (obs.get("raced_packages") or 0) > 0, "corruption_any": bool(obs.get("corruption")),
            "after_ok": [a.get("ok") for a in (obs.get("after") or {}).values()],  # in order: names follow targets
            "warm_compiled": obs.get("warm_compiled")}
        if v == "containers":
            out["containers_overlapped"] = (obs.get("containers_overlap_sec") or 0) > 0
        return out

    def phases(self, cell: Cell, ctx: JobContext) -> list[Phase]:
        assert cell.variant is not None
        v = cell.variant
        src = LIB_SRC if v.startswith("many-") else SRC
        builds = [build(f"{label}-{i}", ctx, w, f"{label}{i}", target, src)
                  for i, (label, w, target) in enumerate(targets(v, ctx.workload), 1)]
        if v == "clean-during":
            builds.append(exec_step(CLEAN, ["sh", "-c", CLEAN_SCRIPT], env=ENV, timeout_sec=ctx.build_timeout))
        afters = [build(n, ctx, w, n, target, src) for n, (_, w, target) in after_targets(v, ctx.workload).items()]
        after_all = [*afters, {"name": "cache-after", "kind": "du", "path": GOCACHE}]
        if v == "containers":
            return [
                Phase("prepare", setup_steps(ctx), mounts=(MOUNT,)),
                # The barrier: the engine may start the second container seconds after the first (seen on a
                # busy host: the first had finished its builds, the second's found the cache full).
                Phase("parallel", [*setup_steps(ctx, download=False), barrier_step(CACHE_ROOT, REPLICAS),
                                   *parallel(builds)], mounts=(MOUNT,), replicas=REPLICAS),
                Phase("final", [*setup_steps(ctx, download=False), *after_all], mounts=(MOUNT,)),
            ]
        if v.startswith("many-"):
            mount = MANY_MOUNTS[v.removeprefix("many-")]
            return [Phase("main", [*many_setup(ctx), *parallel(builds), *after_all], mounts=(mount,) if mount else ())]
        return [Phase("main", [*setup_steps(ctx, workload=workload_of(v, ctx.workload)), *parallel(builds),
                               *after_all], mounts=(MOUNT,))]

    def evaluate(self, cell: Cell, probes: Probes, ctx: JobContext) -> Verdict:
        assert cell.variant is not None
        v = cell.variant
        if v == "containers":
            setup = [probes.get("prepare", {}), *(probes.get(f"parallel.{i}", {}) for i in (1, 2))]
            par_probes = {f"parallel.{i}": probes.get(f"parallel.{i}", {}) for i in (1, 2)}
            after_probe = probes.get("final", {})
        else:
            setup, par_probes, after_probe = [probes.get("main", {})], {"main": probes.get("main", {})}, \
                probes.get("main", {})
        # many-<fs> builds `lib` and clean-during the program whatever the cell's workload (runner.parity reads it)
        obs: dict[str, Any] = {"variant": v, "workload": workload_of(v, ctx.workload)}
        for p in setup:
            for name in ("copy-src", "mkdir", "mod-download"):
                s = step(p, name)
                if s is not None and not s.get("ok"):
                    return Verdict(Status.ERROR, f"setup: {describe_failure(s, name)}", obs)
        if v == "containers":
            obs["barrier"], missed = barrier_missed(par_probes, "the parallel builds")
            obs["barrier_met"] = missed is None
            if missed is not None:
                return Verdict(Status.ERROR, missed, obs)

        runs: list[dict[str, Any]] = []
        raw: list[Mapping[str, Any]] = []  # the probe's build results: which packages each compiled
        clean: dict[str, Any] | None = None
        secs: list[float] = []
        before_files: list[int] = []
        after_files: list[int | None] = []
        for where, p in par_probes.items():
            par = step(p, "parallel")
            if par is None or not par.get("parallel"):
                return Verdict(Status.ERROR, f"{where}: the parallel step did not run", obs)
            secs.append(round(float(par.get("wall_sec", 0.0)), 3))
            before = (step(p, "cache-before") or {}).get("usage") or {}
            before_files.append(int(before.get("files", 0)) if before.get("exists") else 0)
            after_files.append(((par.get("after") or {}).get(GOCACHE) or {}).get("files"))
            for r in par["parallel"]:
                rec = {"name": r.get("name", "?") if where == "main" else f"{where}/{r.get('name', '?')}",
                       **run_obs(r)}
                if r.get("name") == CLEAN:
                    clean = rec
                    saw = _CLEAN_SAW.search(str(r.get("stdout") or ""))
                    clean["entries_before"] = int(saw.group(1)) if saw else None
                else:
                    runs.append(rec)
                    raw.append(r)
        builds = runs
        obs["n"] = len(builds)
        obs["builds"] = builds
        obs["parallel_sec"] = max(secs)
        obs["parallel_sec_each"] = secs
        obs["cache_files_before"] = before_files
        obs["cache_files_after_parallel"] = after_files
        obs["failures"] = sum(1 for r in builds if not r.get("ok"))
        obs["corruption_during"] = sorted({ln for r in builds for ln in r["corruption"]})
        obs.update(raced(raw))
        if v == "containers":
            wins = [w for w in (_window(p) for p in par_probes.values()) if w]
            if len(wins) == 2:
                obs["containers_overlap_sec"] = round(max(0.0, min(w[1] for w in wins) - max(w[0] for w in wins)), 3)
                obs["containers_start_gap_sec"] = round(abs(wins[0][0] - wins[1][0]), 3)
        if clean is not None:
            obs["clean"] = clean
            # The clean started once entries_before files were in GOCACHE (it removes what is there when it runs); a
            # build that ran longer than the whole clean step was running all through it.
            obs["builds_running_after_clean"] = sum(1 for r in builds if r.get("sec", 0) > clean.get("sec", 0))

        if v.startswith("many-"):
            probe = probes.get("main", {})
            obs["fs_type"] = (step(probe, "fs") or {}).get("fs_type", "")
            flock = (step(probe, "flock") or {}).get("flock") or {}
            obs["flock_second_blocked"] = flock.get("second_blocked")
            if (waits := lock_waits(step(probe, "flock-contend"))) is not None:
                obs["lock_waits"] = waits
            obs["concurrent"] = {"builds": len(builds), "failed": obs["failures"]}
            dl, verify = step(probe, "downloads") or {}, step(probe, "downloads-verify") or {}
            obs["downloads"] = {"runs": [{"ok": bool(d.get("ok")), "exit_code": d.get("exit_code"),
                                          "go_error": go_error(d.get("stderr"))} for d in dl.get("parallel") or []],
                                "verify": {"verified": bool(verify.get("ok")),
                                           "said": message(verify.get("stdout")) or message(verify.get("stderr"))}}
            times = [float(b["sec"]) for b in builds if b.get("ran")]
            if times:
                obs["build_sec_p50"], obs["build_sec_p95"] = percentile(times, 0.5), percentile(times, 0.95)
        afters = {n: run_obs(step(after_probe, n)) for n in after_names(v, ctx.workload)}
        obs["after"] = afters
        after_cache = (step(after_probe, "cache-after") or {}).get("usage") or {}
        obs["cache_files_after"] = after_cache.get("files")
        final_names = [n for n in after_names(v, ctx.workload) if n != "warm-up"]
        obs["warm_compiled"] = sum(afters[n].get("compiled", 0) for n in final_names if afters[n].get("ran"))
        obs["corruption_after"] = sorted({ln for a in afters.values() for ln in a.get("corruption", [])})
        obs["corruption"] = sorted({*obs["corruption_during"], *obs["corruption_after"]})

        problems: list[str] = []
        for n, a in afters.items():
            if not a.get("ran"):
                return Verdict(Status.ERROR, describe_failure(None, f"{n} build"), obs)
            if not a["ok"]:
                problems.append(describe_failure(step(after_probe, n), f"{n} build"))
        if v != "clean-during":
            failed = [r for r in builds if not r.get("ok")]
            if failed:
                problems.append(f"{len(failed)} of {len(builds)} concurrent builds failed: " + "; ".join(
                    f"{r['name']}: exit {r.get('exit_code')}: {r.get('go_error') or '(no stderr)'}"
                    for r in failed))
            if obs["corruption_during"]:
                problems.append(f"Go reported a corrupted cache during the concurrent builds: "
                                f"{obs['corruption_during'][0]}")
        dl_failed = [d for d in (obs.get("downloads") or {}).get("runs", []) if not d["ok"]]
        if dl_failed:
            problems.append(f"{len(dl_failed)} of {MANY_N} concurrent go mod downloads failed: "
                            f"{dl_failed[0]['go_error']}")
        if "downloads" in obs and not obs["downloads"]["verify"]["verified"]:
            problems.append(f"go mod verify after the concurrent downloads: {obs['downloads']['verify']['said']}")
        if v.startswith("many-") and obs.get("flock_second_blocked") is False:
            problems.append(f"flock on {obs.get('fs_type')} did not exclude a second process")
        lw = obs.get("lock_waits") or {}
        if lw and (not lw.get("ran") or lw.get("unreported")):  # the probe's test broke, not the filesystem
            what = "did not run" if not lw.get("ran") else f"lost {lw['unreported']} of its {lw.get('procs')} processes"
            return Verdict(Status.ERROR, f"the flock-contend test {what}: {(lw.get('errors') or ['(no message)'])[0]}",
                           obs)
        if lw.get("failed"):
            problems.append(f"{lw['failed']} of {lw['attempts']} flock(2) attempts by {lw.get('procs')} processes "
                            f"failed on {obs.get('fs_type')}: {(lw.get('errors') or ['(no message)'])[0]}")
        if obs["corruption_after"]:
            problems.append(f"Go reported a corrupted cache afterwards: {obs['corruption_after'][0]}")
        for n in final_names:
            if afters[n]["ok"] and afters[n]["compiled"]:
                pkgs = (step(after_probe, n) or {}).get("compiled") or []
                problems.append(f"{n} build compiled {afters[n]['compiled']} packages, expected 0 "
                                f"({', '.join(pkgs[:5])}{', …' if len(pkgs) > 5 else ''})")
        if problems:
            return Verdict(Status.FAIL, "; ".join(problems), obs)
        return Verdict(Status.PASS, self._summary(v, obs), obs)

    @staticmethod
    def _summary(v: str, obs: Mapping[str, Any]) -> str:
        builds: Sequence[Mapping[str, Any]] = obs["builds"]
        warm = ", ".join(f"{n} 0 compiled" for n in obs["after"] if n != "warm-up")
        if v == "clean-during":
            clean = obs.get("clean") or {}
            failed = [b for b in builds if not b.get("ok")]
            during = (f"{len(failed)} of {len(builds)} builds failed during `go clean -cache`"
                      + (f" ({failed[0]['go_error']})" if failed else "")
                      + f"; the clean started with {clean.get('entries_before')} files in GOCACHE"
                      + ("" if (clean.get("entries_before") or 0) >= CLEAN_AT
                         else f" (the wait for {CLEAN_AT} timed out)")
                      + ", "
                      f"{obs.get('builds_running_after_clean', 0)} builds still running when it returned; clean exit "
                      f"{clean.get('exit_code')}; {obs['cache_files_after_parallel'][0]} files in GOCACHE after "
                      f"the step")
            return f"{during}; afterwards: {warm}, no corruption reported"
        extra = f", containers overlapped {obs['containers_overlap_sec']:.1f}s" if "containers_overlap_sec" in obs \
            else ""
        if "build_sec_p50" in obs:
            extra += (f" on {obs.get('fs_type')}; build wall p50 {obs['build_sec_p50']:.2f}s, p95 "
                      f"{obs['build_sec_p95']:.2f}s; flock excludes: {obs.get('flock_second_blocked')}")
            if "p95_ms" in (lw := obs.get("lock_waits") or {}):
                extra += (f"; flock waits of {lw['procs']} processes p50 {lw['p50_ms']:.1f} ms, "
                          f"p95 {lw['p95_ms']:.1f} ms, {lw['failed']} of {lw['attempts']} failed")
        return (f"{len(builds)} concurrent builds all succeeded in {obs['parallel_sec']:.1f}s "
                f"(compiled {'/'.join(str(b['compiled']) for b in builds)}){extra}; {warm}")

    def detail_rows(self, cells: Sequence[CellResult]) -> Rows:
        return _concurrent_rows(cells)


def answer_concurrent(cells: Sequence[CellResult]) -> Answer:
    """Q19: concurrent `go build`s on one GOCACHE (one container and two): failures and corruption messages as
    counts with an upper bound; `go clean -cache` during builds apart (its failures are Go's documented risk)."""
    basis = pick(cells, "concurrent")
    racing = [c for c in judged(basis) if c.cell.get("variant") != "clean-during"]
    builds, clean = Tally(), Tally()
    for c in judged(basis):
        bs = c.observations.get("builds") or []
        (clean if c.cell.get("variant") == "clean-during" else builds).add(
            sum(1 for b in bs if not b.get("ok")), len(bs), row_of(c))
    corrupt = sorted({ln for c in judged(basis) for ln in c.observations.get("corruption") or []})
    figure = rate_text(builds.k, builds.n, "concurrent builds failed") if builds.n else ""
    if clean.n:
        figure += ("; " if figure else "") + rate_text(clean.k, clean.n, "builds failed while `go clean -cache` ran")
    a = yes_no(racing, lambda c: bool(c.observations.get("failures") or c.observations.get("corruption")),
               "concurrent builds failed or reported corruption", "no concurrent build failed, no corruption message",
               figure=figure + (f"; corruption: {corrupt[0]}" if corrupt else ""),
               limits=("4 builds at once (2+2 across two containers) of the `wide` library (121 packages, no "
                       "link; `nox -s parity` checks it decides as the program does), the program's during "
                       "`go clean -cache`" + (
                   ", and 16 of `lib` per filesystem (many-<fs>)" if any(
                       str(c.cell.get("variant")).startswith("many-") for c in racing) else ", not many writers")
                   + "; corruption is looked for in Go's messages and a warm rebuild, not by verifying entries"))
    if a is None and clean.n:  # only `go clean -cache` during builds ran: its count is the answer
        return Answer("value", f"only `go clean -cache` during builds was measured: {clean.k} of {clean.n} builds "
                               f"failed on {', '.join(clean.rows)}", tuple(basis), figure=figure,
                      limits="no cell of concurrent builds without a clean ran")
    if a is None:
        return Answer("value", "", tuple(basis), figure=figure)
    return Answer(a.verdict, a.text, tuple(basis), a.figure, a.limits)
