"""`tmpfs-goroot`: does a toolchain or a cache on tmpfs make a cold build faster?

One container holds two copies of GOROOT (container layer on disk, and a tmpfs) and builds the
`small` workload cold in four placements — GOROOT disk|tmpfs x GOCACHE disk|tmpfs — interleaved
(A B C D A B C D ...) `reps` times, so drift on a shared host hits every placement alike. A
measurement, not a gate: the cell passes when every build completed; the ratios are the finding.
"""

from __future__ import annotations

import statistics
from typing import Any

from runner.model import Cell, Status
from runner.scenarios import (
    BASE_PATH,
    GOROOT,
    OFFLINE_GO,
    SCRATCH,
    WORKLOADS,
    JobContext,
    MountSpec,
    Phase,
    Probes,
    Verdict,
    describe_failure,
    exec_step,
)

RAM = "/mnt/ram"
DISK = f"{SCRATCH}/disk"
SRC = f"{SCRATCH}/src"
MODCACHE = f"{SCRATCH}/mod"
PLACES = {"disk": DISK, "tmpfs": RAM}
PLACEMENTS = [("disk", "disk"), ("tmpfs", "disk"), ("disk", "tmpfs"), ("tmpfs", "tmpfs")]


def _key(goroot: str, gocache: str) -> str:
    return f"goroot-{goroot}/gocache-{gocache}"


class TmpfsGoroot:
    id = "tmpfs-goroot"
    # The ratios are the finding; beside another build they measure the neighbour (runner.slot).
    timing = True

    def phases(self, cell: Cell, ctx: JobContext) -> list[Phase]:
        steps: list[dict[str, Any]] = [
            {"name": "copy-src", "kind": "copytree", "path": f"{WORKLOADS}/small", "dest": SRC, "stop_on_error": True},
            exec_step("mod-download", ["go", "mod", "download"], dir=SRC, timeout_sec=ctx.build_timeout,
                      env={**OFFLINE_GO, "GOMODCACHE": MODCACHE}, stop_on_error=True),
            {"name": "fs-ram", "kind": "statfs", "path": RAM},
            {"name": "fs-disk", "kind": "statfs", "path": SCRATCH},
        ]
        for place, root in PLACES.items():
            steps.append({"name": f"copy-goroot-{place}", "kind": "copytree", "path": GOROOT,
                          "dest": f"{root}/goroot", "stop_on_error": True})
        for rep in range(ctx.reps):
            for goroot, gocache in PLACEMENTS:
                cache = f"{PLACES[gocache]}/gocache"
                steps.append({"name": f"clear-{rep}-{goroot}-{gocache}", "kind": "rmtree", "path": cache})
                steps.append(exec_step(
                    f"{_key(goroot, gocache)}#{rep}", ["go", "build", "-v", "-o", f"{SCRATCH}/app", "."], dir=SRC,
                    count_compiled=True, timeout_sec=ctx.build_timeout, stop_on_error=True,
                    env={**OFFLINE_GO, "GOMODCACHE": MODCACHE, "GOCACHE": cache,
                         "PATH": f"{PLACES[goroot]}/goroot/bin:{BASE_PATH}"}))
        return [Phase("main", steps, mounts=(MountSpec("tmpfs", RAM, options="size=2g,exec"),))]

    def evaluate(self, cell: Cell, probes: Probes, ctx: JobContext) -> Verdict:
        steps = {s["name"]: s for s in probes["main"].get("steps", [])}
        obs: dict[str, Any] = {"reps": ctx.reps, "fs": {"tmpfs": steps.get("fs-ram", {}).get("fs_type"),
                                                         "disk": steps.get("fs-disk", {}).get("fs_type")}}
        times: dict[str, list[float]] = {}
        for goroot, gocache in PLACEMENTS:
            key = _key(goroot, gocache)
            for rep in range(ctx.reps):
                s = steps.get(f"{key}#{rep}")
                if not (s and s.get("ok")):
                    return Verdict(Status.FAIL, describe_failure(s, f"{key} build #{rep}"), obs)
                times.setdefault(key, []).append(float(s["wall_sec"]))
        obs["placements"] = {k: {"median": round(statistics.median(v), 3), "min": round(min(v), 3),
                                 "max": round(max(v), 3), "runs": [round(x, 3) for x in v]} for k, v in times.items()}
        base = times[_key("disk", "disk")]

        def ratio(key: str) -> dict[str, float]:
            # Interleaved: each rep's pair ran back to back, so the per-rep ratio is the fair one.
            per_rep = [t / b for t, b in zip(times[key], base, strict=True)]
            return {"median": round(statistics.median(per_rep), 3), "min": round(min(per_rep), 3),
                    "max": round(max(per_rep), 3)}

        obs["ratio_vs_disk"] = {k: ratio(k) for k in times if k != _key("disk", "disk")}
        summary = ", ".join(
            f"{k.replace('goroot-', 'GOROOT ').replace('/gocache-', ' + GOCACHE ')} "
            f"{r['median']:.2f}× ({r['min']:.2f}–{r['max']:.2f})" for k, r in obs["ratio_vs_disk"].items())
        return Verdict(Status.PASS, f"cold build time vs all-on-disk, median (min–max) of {ctx.reps}: {summary}", obs)
