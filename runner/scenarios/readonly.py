"""`readonly`: a populated cache mounted read-only (a cache shipped to CI runners, a shared NFS
export). Go uses hits without writing; what it does about trimming depends on trim.txt, which holds
the Unix time of the last trim (cmd/go/internal/cache: a trim runs when that is over a day old):

    fresh    trim.txt as the populating build left it
    stale    trim.txt says the last trim was 2 days ago: Go wants to trim, on a read-only cache
    missing  no trim.txt: Go wants to trim and record it

Passes when the read-only build uses the hits (compiles 0 packages); its exit status and any
trim error are recorded exactly — a finding either way.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from runner.model import Cell, Status
from runner.scenarios import (
    WORKLOADS,
    JobContext,
    MountSpec,
    Phase,
    Probes,
    Verdict,
    build_obs,
    describe_failure,
    go_words,
    step,
)
from runner.scenarios.storage import CACHE_ROOT, GOCACHE, SRC, build_step, prepare_steps

VARIANTS = ("fresh", "stale", "missing")
TRIM_FILE = "cache/build/trim.txt"  # in the cell's data dir: the bind mount's source


def _host_actions(variant: str) -> tuple[dict[str, str], ...]:
    if variant == "stale":
        return ({"op": "write", "path": TRIM_FILE, "data": f"{int(time.time()) - 2 * 86400}\n"},)
    if variant == "missing":
        return ({"op": "remove", "path": TRIM_FILE},)
    return ()


class ReadOnly:
    id = "readonly"
    # Hits used or not, and what trimming does to a read-only cache, do not depend on how much is compiled:
    # the three-package `lib` decides them like a program does (runner.parity checks that it does).
    workload = "lib"

    def phases(self, cell: Cell, ctx: JobContext) -> list[Phase]:
        assert cell.variant is not None
        rw = MountSpec("bind", CACHE_ROOT, name="cache")
        ro = MountSpec("bind", CACHE_ROOT, name="cache", read_only=True)
        return [
            Phase("populate", [*prepare_steps(ctx), build_step("cold", ctx), {"name": "trim.txt", "kind": "read",
                                                                      "path": f"{GOCACHE}/trim.txt"}], mounts=(rw,)),
            Phase("readonly", [{"name": "copy-src", "kind": "copytree", "path": f"{WORKLOADS}/{ctx.workload}",
                                "dest": SRC},
                               {"name": "trim.txt", "kind": "read", "path": f"{GOCACHE}/trim.txt"},
                               build_step("build", ctx)],
                  mounts=(ro,), host=_host_actions(cell.variant)),
        ]

    @staticmethod
    def parity(obs: Mapping[str, Any]) -> dict[str, Any]:
        """What decides a read-only case, whatever the workload (runner.parity compares it)."""
        ro = obs.get("readonly") or {}
        seen = str(obs.get("trim_txt_seen", ""))
        return {"exit_code": ro.get("exit_code"), "go_words": ro.get("stderr_first_line"),
                "compiled_any": bool(ro.get("compiled")),
                "trim_txt": "time" if seen.isdigit() else seen}

    def evaluate(self, cell: Cell, probes: Probes, ctx: JobContext) -> Verdict:
        cold = step(probes["populate"], "cold")
        obs: dict[str, Any] = {"trim": cell.variant, "cold": build_obs(cold, GOCACHE)}
        if not (cold and cold.get("ok")):
            return Verdict(Status.FAIL, describe_failure(cold, "populating build"), obs)
        trim = step(probes["readonly"], "trim.txt") or {}
        obs["trim_txt_seen"] = (trim.get("content") or "").strip() if trim.get("ok") else "(missing)"
        build = step(probes["readonly"], "build")
        if build is None or build.get("exit_code") is None:
            return Verdict(Status.ERROR, describe_failure(build, "read-only build"), obs)
        compiled = build.get("compiled") or []
        obs["readonly"] = {"exit_code": build["exit_code"], "sec": round(float(build.get("wall_sec", 0)), 3),
                           "compiled": len(compiled), "stderr": (build.get("stderr") or "").strip()[:2000],
                           "stderr_first_line": go_words(build)}
        outcome = f"exit {build['exit_code']}" + (f": {obs['readonly']['stderr_first_line']}"
                                                  if obs["readonly"]["stderr_first_line"] else ", no stderr")
        if compiled:
            return Verdict(Status.FAIL, f"the read-only build compiled {len(compiled)} packages instead of using "
                                        f"the cache ({outcome})", obs)
        return Verdict(Status.PASS, f"hits used (0 compiled); {outcome}", obs)
