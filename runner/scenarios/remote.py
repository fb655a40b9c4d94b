"""`remote`: the build cache behind GOCACHEPROG, shared by two containers through a directory.

GOCACHEPROG (Go 1.24+, cmd/go/internal/cacheprog) names a program the go command starts and asks for
cache entries over stdin/stdout instead of reading GOCACHE. runner/cacheprog is such a program (mounted
at /opt/gcm/cacheprog): it keeps entries in a shared directory, here a bind mount at /remote, and a
local copy in the container that its answers point to. Phases, each a new container with an empty
local GOCACHE and the same /remote:

    first   cold build through the cache program: everything compiled and put into /remote
    second  the same build again: served from /remote, so nothing should compile

Passes when the second build compiles 0 packages and the cache program counted hits from the shared
directory. The program's counters (gets, hits, misses, puts) come from its own stats line per go
command. Toolchains older than Go 1.24 have no GOCACHEPROG (1.21-1.23 only behind
GOEXPERIMENT=cacheprog): the cell records `go version` and `go env GOCACHEPROG` and is n/a.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from runner.answer import BREAKS, DEGRADED, WORKS, Answer, AnswerFn, Outcome, judged, obs_of, pick, yes_no
from runner.cacheprog import TARGET as CACHEPROG
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
    first_line,
    step,
)
from runner.scenarios.base import Rows, Scenario
from runner.scenarios.rows import lead, mb

SRC = f"{SCRATCH}/src"
SHARED = "/remote"
GOCACHE = f"{SCRATCH}/gocache"  # the container's own build cache: empty in every phase
LOCAL = f"{SCRATCH}/cacheprog-local"  # the cache program's local copy (DiskPath)
STATS = f"{SCRATCH}/cacheprog-stats.jsonl"  # one line per go command that started the program
MIN_GO = (1, 24)
BASE_ENV = {**OFFLINE_GO, "GOCACHE": GOCACHE}
PROG_ENV = {**BASE_ENV, "GOCACHEPROG": CACHEPROG, "GCM_CACHEPROG_DIR": SHARED, "GCM_CACHEPROG_LOCAL": LOCAL,
            "GCM_CACHEPROG_STATS": STATS}
PHASES = ("first", "second")
COUNTERS = ("gets", "hits_local", "hits_shared", "misses", "puts", "put_bytes", "errors")


def version_tuple(version: str) -> tuple[int, int]:
    major, minor = (version.split(".") + ["0"])[:2]
    return int(major), int(minor)


def supported(cell: Cell) -> bool:
    return version_tuple(cell.toolchain.version) >= MIN_GO


def na_reason(cell: Cell) -> str:
    return f"GOCACHEPROG needs Go {MIN_GO[0]}.{MIN_GO[1]} or newer; this toolchain is go{cell.toolchain.version}"


def _about_go(ctx: JobContext) -> list[dict[str, Any]]:
    return [exec_step("go-version", ["go", "version"], env=BASE_ENV, timeout_sec=ctx.build_timeout),
            exec_step("go-env", ["go", "env", "GOCACHEPROG", "GOCACHE"], dir="/",
                      env={**PROG_ENV, "GCM_CACHEPROG_STATS": f"{SCRATCH}/cacheprog-stats-env.jsonl"},
                      timeout_sec=ctx.build_timeout)]


def _phase_steps(ctx: JobContext) -> list[dict[str, Any]]:
    return [
        {"name": "copy-src", "kind": "copytree", "path": f"{WORKLOADS}/{ctx.workload}", "dest": SRC,
         "stop_on_error": True},
        *_about_go(ctx),
        exec_step("mod-download", ["go", "mod", "download"], dir=SRC, env=BASE_ENV, timeout_sec=ctx.build_timeout,
                  stop_on_error=True),
        {"name": "shared-before", "kind": "du", "path": SHARED},
        exec_step("build", build_argv(ctx.workload, f"{SCRATCH}/bin/app"), dir=SRC, env=PROG_ENV,
                  count_compiled=True, measure=[GOCACHE, SHARED], timeout_sec=ctx.build_timeout),
        {"name": "stats", "kind": "read", "path": STATS},
    ]


def parse_stats(s: dict[str, Any] | None) -> dict[str, Any]:
    """The cache program's counters, summed over its stats lines; processes: how many lines (0: none ran)."""
    out: dict[str, Any] = {"processes": 0, **{k: 0 for k in COUNTERS}}
    if not (s and s.get("ok")):
        return out
    for line in (s.get("content") or "").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            out["unreadable_lines"] = out.get("unreadable_lines", 0) + 1
            continue
        out["processes"] += 1
        for k in COUNTERS:
            out[k] += int(rec.get(k) or 0)
        if rec.get("first_error") and "first_error" not in out:
            out["first_error"] = rec["first_error"]
        if not rec.get("closed"):
            out["unclosed"] = out.get("unclosed", 0) + 1
    return out


def _remote_rows(cells: Sequence[CellResult]) -> Rows:
    headers = ["distro", "arch", "engine", "toolchain", "go version", "go env GOCACHEPROG", "first: compiled",
               "first: puts / misses", "shared dir MB", "second: compiled", "second: hits shared / local / misses",
               "status"]

    def built(o: Any) -> str:
        if not isinstance(o, dict):
            return ""
        return f"exit {o.get('exit_code')}" if o.get("ok") is False else str(o.get("compiled", ""))

    rows = []
    for c in cells:
        o = c.observations
        f, s = o.get("first") or {}, o.get("second") or {}
        fs, ss = f.get("stats") or {}, s.get("stats") or {}
        rows.append(lead(c) + [o.get("go_version", ""), o.get("goenv_gocacheprog", ""), built(f or None),
                                 f"{fs['puts']} / {fs['misses']}" if fs else "", mb(f.get("shared_bytes_after")),
                                 built(s or None),
                                 f"{ss['hits_shared']} / {ss['hits_local']} / {ss['misses']}" if ss else "",
                                 c.status.value])
    return headers, rows


class Remote(Scenario):
    id = "remote"
    title = ("GOCACHEPROG (Go 1.24+) backed by a directory two containers share: a cold build in the first, the "
             "same build in a second with an empty local cache; the cache program's own counters")
    # Whether a second container is served from the shared program is hit or miss per entry: the three-package
    # `lib` decides it as a program does (runner.parity checks that it does).
    workload = "lib"

    @staticmethod
    def answers() -> dict[str, AnswerFn]:
        return {"Q24": answer_remote}

    @staticmethod
    def outcome(c: CellResult) -> Outcome:
        second = c.observations.get("second") or {}
        if c.status is not Status.PASS and (second.get("ok") is False or (c.observations.get("first") or {}).get(
                "ok") is False or not second):
            return Outcome(BREAKS, c.reason)
        if second.get("compiled"):
            return Outcome(DEGRADED, f"the second container compiled {second['compiled']} packages")
        return Outcome(WORKS, f"the second container compiled 0, {(second.get('stats') or {}).get('hits_shared')} "
                              "hits from the shared dir")

    @staticmethod
    def parity(obs: Mapping[str, Any]) -> dict[str, Any]:
        """What decides remote, whatever the workload (runner.parity compares it)."""
        out: dict[str, Any] = {"gocacheprog": bool(obs.get("goenv_gocacheprog"))}
        for name in ("first", "second"):
            o = obs.get(name) or {}
            st = o.get("stats") or {}
            out[name] = {"ok": o.get("ok"), "compiled_any": bool(o.get("compiled")),
                         "hits_shared_any": bool(st.get("hits_shared"))}
        # The first build fills the shared dir; what the second puts (a program's link step stores entries, a
        # library has none) does not decide whether it was served from it.
        out["first"]["puts_any"] = bool(((obs.get("first") or {}).get("stats") or {}).get("puts"))
        return out

    def phases(self, cell: Cell, ctx: JobContext) -> list[Phase]:
        if not supported(cell):  # a phase must run: one container that only records what Go this is
            return [Phase("first", _about_go(ctx))]
        shared = (MountSpec("bind", SHARED, name="remote"),)
        return [Phase(name, _phase_steps(ctx), mounts=shared) for name in PHASES]

    def evaluate(self, cell: Cell, probes: Probes, ctx: JobContext) -> Verdict:
        first = probes["first"]
        v = step(first, "go-version")
        e = step(first, "go-env")
        env_lines = (e.get("stdout") or "").splitlines() if e and e.get("ok") else []
        obs: dict[str, Any] = {"go_version": first_line(v.get("stdout")) if v and v.get("ok") else "",
                               "goenv_gocacheprog": env_lines[0].strip() if env_lines else "",
                               "cacheprog": CACHEPROG, "shared_dir": SHARED}
        if not supported(cell):
            return Verdict(Status.NA, na_reason(cell), obs)
        problems: list[str] = []
        for name in PHASES:
            probe = probes[name]
            b = step(probe, "build")
            o = build_obs(b)
            o["stats"] = parse_stats(step(probe, "stats"))
            before = (step(probe, "shared-before") or {}).get("usage") or {}
            after = ((b or {}).get("after") or {})
            o["shared_bytes_before"] = before.get("bytes", 0) if before.get("exists") else 0
            o["shared_bytes_after"] = (after.get(SHARED) or {}).get("bytes")
            o["shared_files_after"] = (after.get(SHARED) or {}).get("files")
            o["local_gocache_files_after"] = (after.get(GOCACHE) or {}).get("files")
            obs[name] = o
            st = o["stats"]
            if st.get("errors"):
                return Verdict(Status.ERROR, f"{name}: the cache program reported {st['errors']} errors, first: "
                                             f"{st.get('first_error', '?')}", obs)
            if not o.get("ok"):
                problems.append(describe_failure(b, f"{name} build"))
                continue
            if not st["processes"]:
                problems.append(f"{name}: the go command never closed a GOCACHEPROG program (no stats; go env "
                                f"GOCACHEPROG={obs['goenv_gocacheprog']!r})")
        if problems:
            return Verdict(Status.FAIL, "; ".join(problems), obs)
        f, s = obs["first"], obs["second"]
        if not f["compiled"] or not f["stats"]["puts"]:
            problems.append(f"the first build, on an empty shared dir, compiled {f['compiled']} packages and put "
                            f"{f['stats']['puts']} entries: it did not fill the shared cache")
        if s["compiled"]:
            problems.append(f"the second container compiled {s['compiled']} packages "
                            f"({s['stats']['hits_shared']} hits from {SHARED}, {s['stats']['misses']} misses)")
        if not s["stats"]["hits_shared"]:
            problems.append(f"the second container had no hits from {SHARED} ({s['stats']['misses']} misses)")
        if problems:
            return Verdict(Status.FAIL, "; ".join(problems), obs)
        return Verdict(Status.PASS, f"second container: 0 compiled, {s['stats']['hits_shared']} hits from the "
                                    f"shared dir ({(f['shared_bytes_after'] or 0) / 1e6:.1f} MB after the first "
                                    f"build, {f['compiled']} packages compiled there)", obs)

    def detail_rows(self, cells: Sequence[CellResult]) -> Rows:
        return _remote_rows(cells)


def answer_remote(cells: Sequence[CellResult]) -> Answer:
    """Q24: through GOCACHEPROG and a shared directory, is a second container served (0 compiled, shared hits)?"""
    basis = pick(cells, "remote")

    def served(c: CellResult) -> bool | None:
        compiled, hits = obs_of(c, "second", "compiled"), obs_of(c, "second", "stats", "hits_shared")
        return None if compiled is None else (compiled == 0 and bool(hits))

    figs = [f"{c.id.split('/')[3]}: first {obs_of(c, 'first', 'sec')} s ({obs_of(c, 'first', 'compiled')} compiled), "
            f"second {obs_of(c, 'second', 'sec')} s, {obs_of(c, 'second', 'stats', 'hits_shared')} of "
            f"{obs_of(c, 'second', 'stats', 'gets')} gets from the shared dir" for c in judged(basis)]
    a = yes_no(basis, served, "the second container compiled 0, served from the shared directory",
               "the second container was not served from the shared directory", figure="; ".join(figs),
               limits="two containers on one host sharing a directory through this project's cache program; a "
                      "network store and its latency are not measured; Go < 1.24 is n/a")
    return a or Answer("value", "", tuple(basis))
