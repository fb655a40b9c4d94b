"""`storage` and `filesystem`: the same cache on different storage under the container.

storage:<backend> puts GOCACHE (and GOMODCACHE) on the container's writable overlay layer, a bind
mount from the run directory, a named volume, a tmpfs, or in an image layer baked by committing a
container that built once (`baked`; `baked-aged` also ages every entry and trim.txt by 6 days before
the commit, to show what Go's trim does to a cache copied up from old layers). Phases:

    first     new container: cold build, warm build
    restart   the same container started again: warm build   (what survives a stop/start)
    recreate  a new container with the same mounts: warm build  (what survives a re-create)

What survives is Docker's documented behaviour per backend (the writable layer lives as long as the
container; tmpfs mounts are discarded when the container stops; volumes and bind mounts outlive
containers; an image layer is in every container made from it). A warm build that compiles 0
packages means the cache survived.

filesystem:<fs> puts both caches on a loop-mounted ext4/xfs/btrfs image bound into the container,
records the filesystem type the container sees, whether flock(2) excludes a second process (Go's
cache and module locks use flock), and runs a cold and a warm build, then 3 cold builds at once on the
emptied cache and a warm build after them.

Workloads: storage builds the three-package `lib` (whether the cache survives is hit or miss). filesystem's
3 builds at once are a contention question: it builds `wide` (runner/workloads/wide_gen.py, 121 packages,
no standard library), whose cold build writes about 500 entries (the `small` program: 398) in about 1.4 s
instead of 16 s; the 3 builds each compile most packages themselves (`concurrent.raced_packages`). flock and
the filesystem seen do not depend on the workload. `nox -s parity` checks both against `small`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from runner.answer import (
    BREAKS,
    DEGRADED,
    WORKS,
    Answer,
    AnswerFn,
    Outcome,
    judged,
    obs_of,
    per_case,
    pick,
    yes_no,
)
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
    build_argv,
    build_obs,
    describe_failure,
    exec_step,
    raced,
    step,
)
from runner.scenarios.base import Rows, Scenario
from runner.scenarios.rows import kept, lead, secs
from runner.stats import rate_text

SRC = f"{SCRATCH}/src"
CACHE_ROOT = "/gocache"  # GOCACHE and GOMODCACHE live under here, whatever the backend
GOCACHE = f"{CACHE_ROOT}/build"
GOMODCACHE = f"{CACHE_ROOT}/mod"
ENV = {**OFFLINE_GO, "GOCACHE": GOCACHE, "GOMODCACHE": GOMODCACHE}

# backend -> (mount, survives restart, survives re-create)
BACKENDS: dict[str, tuple[MountSpec | None, bool, bool]] = {
    "overlay": (None, True, False),
    "bind": (MountSpec("bind", CACHE_ROOT, name="cache"), True, True),
    "volume": (MountSpec("volume", CACHE_ROOT, name="cache"), True, True),
    "tmpfs": (MountSpec("tmpfs", CACHE_ROOT, options="size=1g"), False, False),
    "baked": (None, True, True),
    "baked-aged": (None, True, True),
    # Not in matrix.toml's default variants (it fails by construction; the fault tests enable it): both caches
    # on a 1 MiB tmpfs that a `dd` fills before Go runs. The cold build must fail with Go's own words
    # ("no space left on device"), recorded as the cell's `fail`.
    "full": (MountSpec("tmpfs", CACHE_ROOT, options="size=1m"), False, False),
}
FILESYSTEMS = ("ext4", "xfs", "btrfs")
AGE_DAYS = 6  # > Go's trimLimit (5 days): entries this old are trimmed unless used


def prepare_steps(ctx: JobContext) -> list[dict[str, Any]]:
    return [
        {"name": "copy-src", "kind": "copytree", "path": f"{WORKLOADS}/{ctx.workload}", "dest": SRC,
         "stop_on_error": True},
        exec_step("mkdir", ["mkdir", "-p", GOCACHE, GOMODCACHE], stop_on_error=True),
        {"name": "fs", "kind": "statfs", "path": CACHE_ROOT},
        exec_step("mod-download", ["go", "mod", "download"], dir=SRC, env=ENV, timeout_sec=ctx.build_timeout,
                  stop_on_error=True),
    ]


def build_step(name: str, ctx: JobContext, out: str = "app", **kw: Any) -> dict[str, Any]:
    return exec_step(name, build_argv(ctx.workload, f"{SCRATCH}/bin/{out}"), dir=SRC, env=ENV,
                     count_compiled=True, measure=[GOCACHE], timeout_sec=ctx.build_timeout, **kw)


def warm_only_steps(ctx: JobContext) -> list[dict[str, Any]]:
    # After a re-create the source is gone with the old container layer: copy it again (same path).
    return [{"name": "copy-src", "kind": "copytree", "path": f"{WORKLOADS}/{ctx.workload}", "dest": SRC},
            {"name": "cache-before", "kind": "du", "path": GOCACHE},
            build_step("warm", ctx)]


def _storage_rows(cells: Sequence[CellResult]) -> Rows:
    headers = ["distro", "arch", "engine", "toolchain", "backend", "fs seen", "cold s (pkgs)", "warm s (pkgs)",
               "after restart", "after re-create", "baked cache files: before → after 1st build", "status"]
    rows = []
    for c in cells:
        o = c.observations
        baked = f"{o['baked_files_before']} → {o['baked_files_after']}" if "baked_files_before" in o else ""
        rows.append(lead(c) + [c.cell.get("variant"), o.get("fs_type", ""), secs(o.get("cold")), secs(o.get("warm")),
                                 kept(o.get("restart")), kept(o.get("recreate")), baked, c.status.value])
    return headers, rows


class Storage(Scenario):
    id = "storage"
    title = ("GOCACHE+GOMODCACHE on each storage backend: warm hit, and whether the cache survives a container "
             "restart and a re-create (kept/lost · s (pkgs) of that rebuild)")
    # Whether the cache survives a restart or a re-create is hit (0 compiled) or miss, whatever is compiled:
    # the three-package `lib` decides it like a program does (runner.parity checks that it does).
    workload = "lib"

    def phases(self, cell: Cell, ctx: JobContext) -> list[Phase]:
        assert cell.variant is not None
        backend = cell.variant
        mount, _, _ = BACKENDS[backend]
        mounts = (mount,) if mount else ()
        if backend == "full":
            fill = exec_step("fill", ["dd", "if=/dev/zero", f"of={CACHE_ROOT}/fill", "bs=64k"])  # exits 1: ENOSPC
            return [Phase("first", [*prepare_steps(ctx)[:3], fill, build_step("cold", ctx)], mounts=mounts)]
        if backend.startswith("baked"):
            bake = [*prepare_steps(ctx), build_step("cold", ctx)]
            if backend == "baked-aged":
                stale = str(int(time.time()) - AGE_DAYS * 86400)
                bake += [{"name": "age-entries", "kind": "age", "path": CACHE_ROOT, "days": AGE_DAYS},
                         {"name": "age-trim", "kind": "write", "path": f"{GOCACHE}/trim.txt", "data": stale + "\n"}]
            return [
                Phase("bake", bake, commit="baked"),
                Phase("first", [{"name": "cache-before", "kind": "du", "path": GOCACHE}, build_step("warm", ctx),
                                {"name": "cache-after", "kind": "du", "path": GOCACHE}], image="baked"),
                Phase("restart", [{"name": "cache-before", "kind": "du", "path": GOCACHE}, build_step("warm", ctx)],
                      container="restart"),
                Phase("recreate", warm_only_steps(ctx), image="baked"),
            ]
        return [
            Phase("first", [*prepare_steps(ctx), build_step("cold", ctx), build_step("warm", ctx)], mounts=mounts),
            Phase("restart", [{"name": "cache-before", "kind": "du", "path": GOCACHE}, build_step("warm", ctx)],
                  container="restart"),
            Phase("recreate", warm_only_steps(ctx), mounts=mounts),
        ]

    @staticmethod
    def answers() -> dict[str, AnswerFn]:
        return {"Q14": answer_backends}  # Q07: ci-restore's answer_ci reads the baked-aged cells too

    @staticmethod
    def outcome(c: CellResult) -> Outcome:
        """A failed build breaks; a cache that is gone after a restart or re-create (documented or not) degrades."""
        o = c.observations
        for name in ("cold", "warm", "restart", "recreate"):
            if (o.get(name) or {}).get("ok") is False:
                return Outcome(BREAKS, f"{name} build exit {o[name].get('exit_code')}: {o[name].get('stderr', '')}")
        lost = [name for name in ("restart", "recreate") if (o.get(name) or {}).get("survived") is False]
        if lost or (o.get("warm") or {}).get("compiled"):
            return Outcome(DEGRADED, "cache lost after " + " and ".join(lost) if lost else "warm build missed")
        return Outcome(WORKS, "kept across restart and re-create") if c.status is Status.PASS else Outcome(
            BREAKS, c.reason)

    @staticmethod
    def parity(obs: Mapping[str, Any]) -> dict[str, Any]:
        """What decides a storage case, whatever the workload (runner.parity compares it): hits and survival."""
        return {"fs_type": obs.get("fs_type"), "cold_ok": (obs.get("cold") or {}).get("ok"),
                "warm_compiled_any": bool((obs.get("warm") or {}).get("compiled")),
                "restart_survived": (obs.get("restart") or {}).get("survived"),
                "recreate_survived": (obs.get("recreate") or {}).get("survived"),
                "trimmed_any": bool(obs.get("trimmed_files")) if "trimmed_files" in obs else None}

    def evaluate(self, cell: Cell, probes: Probes, ctx: JobContext) -> Verdict:
        assert cell.variant is not None
        backend = cell.variant
        _, keep_restart, keep_recreate = BACKENDS[backend]
        baked = backend.startswith("baked")
        first = probes["first"]
        obs: dict[str, Any] = {"backend": backend}
        fs = step(probes["bake" if baked else "first"], "fs")
        obs["fs_type"] = (fs or {}).get("fs_type", "")
        cold = step(probes["bake"] if baked else first, "cold")
        obs["cold"] = build_obs(cold, GOCACHE)
        if not (cold and cold.get("ok")):
            return Verdict(Status.FAIL, describe_failure(cold, "cold build"), obs)
        if backend == "full":
            return Verdict(Status.PASS, "the cold build succeeded with both caches on a full disk", obs)
        obs["warm"] = build_obs(step(first, "warm"), GOCACHE)
        if baked:
            before = (step(first, "cache-before") or {}).get("usage", {})
            after = (step(first, "cache-after") or {}).get("usage", {})
            obs["baked_files_before"], obs["baked_files_after"] = before.get("files"), after.get("files")
            obs["trimmed_files"] = (before.get("files") or 0) - (after.get("files") or 0)
        problems = []
        if not obs["warm"].get("ok"):
            problems.append(describe_failure(step(first, "warm"), "warm build"))
        elif obs["warm"]["compiled"]:
            problems.append(f"warm build on {backend} compiled {obs['warm']['compiled']} packages, expected 0")
        for phase, expect in (("restart", keep_restart), ("recreate", keep_recreate)):
            s = step(probes[phase], "warm")
            obs[phase] = build_obs(s, GOCACHE)
            before = (step(probes[phase], "cache-before") or {}).get("usage", {})
            obs[phase]["cache_files_before"] = before.get("files", 0) if before.get("exists") else 0
            if not (s and s.get("ok")):
                problems.append(describe_failure(s, f"build after {phase}"))
                continue
            survived = obs[phase]["compiled"] == 0
            obs[phase]["survived"] = survived
            if survived != expect:
                problems.append(f"after {phase} the cache {'survived' if survived else 'was lost'} "
                                f"({obs[phase]['compiled']} packages compiled); a {backend} cache should "
                                f"{'survive' if expect else 'be lost'}")
        if problems:
            return Verdict(Status.FAIL, "; ".join(problems), obs)
        return Verdict(Status.PASS, f"warm 0 compiled; restart {'kept' if keep_restart else 'lost'}, re-create "
                                    f"{'kept' if keep_recreate else 'lost'} the cache, as documented", obs)

    def detail_rows(self, cells: Sequence[CellResult]) -> Rows:
        return _storage_rows(cells)


def _filesystem_rows(cells: Sequence[CellResult]) -> Rows:
    headers = ["distro", "arch", "engine", "toolchain", "fs", "fs seen", "flock excludes 2nd process", "cold s (pkgs)",
               "warm s (pkgs)", "3 concurrent cold s (failed)", "after s (pkgs)", "status"]
    rows = []
    for c in cells:
        o = c.observations
        conc = o.get("concurrent") or {}
        flock = o.get("flock_second_blocked")
        rows.append(lead(c) + [c.cell.get("variant"), o.get("fs_type", ""),
                                 "" if flock is None else ("yes" if flock else "NO"), secs(o.get("cold")),
                                 secs(o.get("warm")), f"{conc.get('sec', 0):.2f} ({conc.get('failed', '?')})" if conc
                                 else "", secs(o.get("after-concurrent")), c.status.value])
    return headers, rows


class Filesystem(Scenario):
    id = "filesystem"
    title = "Both caches on a loop-mounted filesystem: flock, warm hits, 3 cold builds at once on one cache"
    # Its concurrent builds need many entries written at once, not the runtime: `wide` (runner.parity checks it).
    workload = "wide"

    @staticmethod
    def parity(obs: Mapping[str, Any]) -> dict[str, Any]:
        """What decides a filesystem cell whatever the workload: the fs seen, flock, every build's exit, hits, and
        whether the 3 concurrent builds failed and raced on the same packages."""
        conc = obs.get("concurrent") or {}
        return {"fs_type": obs.get("fs_type"), "flock_second_blocked": obs.get("flock_second_blocked"),
                "flock_after_release": obs.get("flock_after_release"),
                "cold_ok": (obs.get("cold") or {}).get("ok"),
                "warm_compiled_any": bool((obs.get("warm") or {}).get("compiled")),
                "concurrent_builds": conc.get("builds"), "concurrent_failed": conc.get("failed"),
                "concurrent_raced": (conc.get("raced_packages") or 0) > 0,
                "after_concurrent_ok": (obs.get("after-concurrent") or {}).get("ok"),
                "after_concurrent_compiled_any": bool((obs.get("after-concurrent") or {}).get("compiled"))}

    @staticmethod
    def answers() -> dict[str, AnswerFn]:
        return {"Q16": answer_flock}

    @staticmethod
    def outcome(c: CellResult) -> Outcome:
        o = c.observations
        failed = [n for n in ("cold", "warm", "after-concurrent") if (o.get(n) or {}).get("ok") is False]
        conc = o.get("concurrent") or {}
        if failed or conc.get("failed") or o.get("flock_second_blocked") is False:
            return Outcome(BREAKS, c.reason)
        if (o.get("warm") or {}).get("compiled") or (o.get("after-concurrent") or {}).get("compiled"):
            return Outcome(DEGRADED, "a warm build recompiled")
        return Outcome(WORKS, f"{conc.get('builds', 0)} concurrent cold builds clean") if c.status is Status.PASS \
            else Outcome(BREAKS, c.reason)

    def phases(self, cell: Cell, ctx: JobContext) -> list[Phase]:
        assert cell.variant is not None
        steps = [
            *prepare_steps(ctx),
            {"name": "flock", "kind": "flock", "path": f"{CACHE_ROOT}/flock-test"},
            build_step("cold", ctx),
            build_step("warm", ctx),
            {"name": "clear", "kind": "rmtree", "path": GOCACHE},
            {"name": "concurrent", "kind": "parallel",
             "steps": [build_step(f"cold-{i}", ctx, out=f"app{i}") for i in range(3)]},
            build_step("after-concurrent", ctx),
        ]
        return [Phase("main", steps, mounts=(MountSpec("loop", CACHE_ROOT, name=cell.variant),))]

    def evaluate(self, cell: Cell, probes: Probes, ctx: JobContext) -> Verdict:
        probe = probes["main"]
        obs: dict[str, Any] = {"fs": cell.variant, "fs_type": (step(probe, "fs") or {}).get("fs_type", "")}
        flock = (step(probe, "flock") or {}).get("flock") or {}
        obs["flock_second_blocked"] = flock.get("second_blocked")
        obs["flock_after_release"] = flock.get("acquired_after_release")
        for name in ("cold", "warm", "after-concurrent"):
            obs[name] = build_obs(step(probe, name), GOCACHE)
        par = step(probe, "concurrent") or {}
        runs = par.get("parallel") or []
        obs["concurrent"] = {"builds": len(runs), "failed": sum(1 for r in runs if not r.get("ok")),
                             "sec": round(float(par.get("wall_sec", 0.0)), 3),
                             "errors": [describe_failure(r, r.get("name", "?")) for r in runs if not r.get("ok")],
                             **raced(runs)}
        problems = []
        if obs["fs_type"] != cell.variant:
            problems.append(f"the cache is on {obs['fs_type'] or 'an unknown fs'}, not {cell.variant}")
        if flock.get("second_blocked") is not True or flock.get("acquired_after_release") is not True:
            problems.append(f"flock does not exclude a second process here ({flock or 'no result'})")
        for name in ("cold", "warm", "after-concurrent"):
            if not obs[name].get("ok"):
                problems.append(describe_failure(step(probe, name), f"{name} build"))
        if obs["warm"].get("ok") and obs["warm"]["compiled"]:
            problems.append(f"warm build compiled {obs['warm']['compiled']} packages, expected 0")
        if obs["concurrent"]["failed"] or len(runs) != 3:
            problems.append(f"{obs['concurrent']['failed']} of {len(runs)} concurrent cold builds failed: "
                            f"{'; '.join(obs['concurrent']['errors'])}")
        if obs["after-concurrent"].get("ok") and obs["after-concurrent"]["compiled"]:
            problems.append(f"the build after the concurrent ones compiled {obs['after-concurrent']['compiled']} "
                            "packages, expected 0")
        if problems:
            return Verdict(Status.FAIL, "; ".join(problems), obs)
        return Verdict(Status.PASS, f"{obs['fs_type']}: cold {obs['cold']['sec']:.2f}s, warm 0 compiled, flock "
                                    f"excludes, 3 concurrent cold builds clean ({obs['concurrent']['sec']:.1f}s)", obs)

    def detail_rows(self, cells: Sequence[CellResult]) -> Rows:
        return _filesystem_rows(cells)


def _kept(c: CellResult) -> str | None:
    r, rc = obs_of(c, "restart", "survived"), obs_of(c, "recreate", "survived")
    if r is None and rc is None:
        return None
    word = {True: "kept", False: "lost", None: "?"}
    return f"{c.cell.get('variant')}: restart {word[r]}, re-create {word[rc]}"  # type: ignore[index]


def answer_backends(cells: Sequence[CellResult]) -> Answer:
    """Q14: per backend, does the cache survive a restart and a re-create (a warm build compiling 0)?"""
    basis = [c for c in pick(cells, "storage") if c.cell.get("variant") != "full"]
    native = [c for c in judged(basis) if not c.cell.get("emulated")]  # QEMU's seconds are not Go's
    warm = [float(w) for c in native if isinstance(w := obs_of(c, "warm", "sec"), (int, float))]
    cold = [float(w) for c in native if isinstance(w := obs_of(c, "cold", "sec"), (int, float))]
    figure = (f"cold {min(cold):.2f}–{max(cold):.2f} s, warm {min(warm):.2f}–{max(warm):.2f} s over {len(warm)} "
              "native cells (the three-package `lib`, not run alone: not a timing comparison of backends)"
              ) if warm and cold else ""
    return per_case(basis, _kept, figure=figure,
                    limits="costs per backend need timing cells run alone (cold-warm, tmpfs-goroot); not measured "
                           "per backend")


def answer_flock(cells: Sequence[CellResult]) -> Answer:
    """Q16: does flock exclude a second process per filesystem; how many concurrent builds failed (filesystem: 3 cold
    builds of `wide`; concurrent:many-<fs>: 16 builds of `lib`, tmpfs and overlay included), and the probe's flock
    waits and failed attempts there."""
    many = [c for c in pick(cells, "concurrent") if str(c.cell.get("variant") or "").startswith("many-")]
    basis = pick(cells, "filesystem") + many
    failed = sum(int(obs_of(c, "concurrent", "failed") or 0) for c in judged(basis))  # type: ignore[call-overload]
    builds = sum(int(obs_of(c, "concurrent", "builds") or 0) for c in judged(basis))  # type: ignore[call-overload]
    fs = sorted({str(c.cell.get("variant")).removeprefix("many-") for c in judged(basis)})
    p95 = [f"{c.cell.get('variant')}: p50 {obs_of(c, 'build_sec_p50')}s p95 {obs_of(c, 'build_sec_p95')}s"
           for c in judged(many) if obs_of(c, "build_sec_p95") is not None]
    figure = rate_text(failed, builds, "concurrent builds failed") if builds else ""
    if p95:
        figure += ("; " if figure else "") + "build wall time of 16 at once, " + ", ".join(p95)
    locks = [(c, w) for c in judged(many) if (w := c.observations.get("lock_waits") or {}).get("ran")
             and w.get("procs") and w.get("attempts")]
    hold: dict[str, Any] = next((w for _, w in locks), {})
    if locks:
        tried = sum(int(w["attempts"]) for _, w in locks)
        lost = sum(int(w.get("failed") or 0) for _, w in locks)
        waits = ", ".join(f"{str(c.cell.get('variant')).removeprefix('many-')} p50 {w['p50_ms']:.1f} ms p95 "
                          f"{w['p95_ms']:.1f} ms" for c, w in locks if "p95_ms" in w)
        figure += ("; " if figure else "") + rate_text(lost, tried, "flock(2) attempts failed") + (
            f"; flock waits with {hold['procs']} processes each holding it {hold.get('hold_ms')} ms (mostly their "
            f"queue): {waits}" if waits else "")
    a = yes_no(basis, lambda c: obs_of(c, "flock_second_blocked"),  # type: ignore[arg-type, return-value]
               f"flock excludes a second process on {', '.join(fs)}", "flock does not exclude", figure=figure,
               limits=(f"at most 16 writers per cell; Go does not report its own lock waits: the waits are the probe's "
                       f"flock(2), the call Go's lockedfile makes, by {hold.get('procs')} processes holding it "
                       f"{hold.get('hold_ms')} ms each, and the build wall times" if locks else
                       "at most 16 writers per cell; Go does not report its lock waits: the build wall times stand in "
                       "for them") if many else "3 concurrent builds per filesystem, not many writers; tmpfs and "
                      "overlay flock and lock waits (p50/p95) need the concurrent:many-<fs> cells")
    return a or Answer("value", "", tuple(basis))
