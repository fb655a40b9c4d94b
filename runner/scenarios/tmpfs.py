"""`tmpfs-goroot`: does a toolchain or a cache on tmpfs make a cold build faster?

One container holds two copies of GOROOT (container layer on disk, and a tmpfs) and builds the
`small` workload cold in four placements — GOROOT disk|tmpfs x GOCACHE disk|tmpfs — interleaved
(A B C D A' A B C D A' ...) `reps` times, so drift on a shared host hits every placement alike. A' is
A (all on disk) again: the A/A ratio A'/A of each rep is the noise floor a difference must exceed
(runner.stats.compare). A measurement, not a gate: the cell passes when every build completed; the
ratios are the finding.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from runner.answer import DEPENDS, NO, NO_DIFFERENCE, NOT_MEASURED, VALUE, YES, Answer, AnswerFn, judged, listing, where
from runner.model import Cell, Status
from runner.results import CellResult
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
from runner.scenarios.base import Rows, Scenario
from runner.scenarios.rows import lead, ratio
from runner.stats import FASTER, SAME, SLOWER, compare, direction

RAM = "/mnt/ram"
DISK = f"{SCRATCH}/disk"
SRC = f"{SCRATCH}/src"
MODCACHE = f"{SCRATCH}/mod"
PLACES = {"disk": DISK, "tmpfs": RAM}
# (GOROOT, GOCACHE, repeat): the last is the first placement again, the A/A pair that measures the noise.
PLACEMENTS = [("disk", "disk", ""), ("tmpfs", "disk", ""), ("disk", "tmpfs", ""), ("tmpfs", "tmpfs", ""),
              ("disk", "disk", "again")]
BASE = "goroot-disk/gocache-disk"
AA = f"{BASE}/again"
LABELS = {"goroot-tmpfs/gocache-disk": "GOROOT on tmpfs", "goroot-disk/gocache-tmpfs": "GOCACHE on tmpfs",
          "goroot-tmpfs/gocache-tmpfs": "both on tmpfs"}


def _key(goroot: str, gocache: str, again: str = "") -> str:
    return f"goroot-{goroot}/gocache-{gocache}" + (f"/{again}" if again else "")


def per_rep_ratios(obs: Mapping[str, Any], key: str) -> list[float]:
    """placement time / all-on-disk time of the same rep (each rep's builds ran back to back)."""
    placements = obs.get("placements") or {}
    runs, base = (placements.get(key) or {}).get("runs") or [], (placements.get(BASE) or {}).get("runs") or []
    return [t / b for t, b in zip(runs, base, strict=False) if b > 0]  # old results: base only


def _tmpfs_rows(cells: Sequence[CellResult]) -> Rows:
    headers = ["distro", "arch", "engine", "toolchain", "reps", "all on disk: median s (min–max)",
               "GOROOT on tmpfs", "GOCACHE on tmpfs", "both on tmpfs", "all on disk again (A/A)", "status"]
    rows = []
    for c in cells:
        o = c.observations
        base = (o.get("placements") or {}).get("goroot-disk/gocache-disk")
        ratios = o.get("ratio_vs_disk") or {}
        rows.append(lead(c) + [o.get("reps", ""),
                                 f"{base['median']:.2f} ({base['min']:.2f}–{base['max']:.2f})" if base else "",
                                 ratio(ratios.get("goroot-tmpfs/gocache-disk")),
                                 ratio(ratios.get("goroot-disk/gocache-tmpfs")),
                                 ratio(ratios.get("goroot-tmpfs/gocache-tmpfs")), ratio(o.get("aa_ratio")),
                                 c.status.value])
    return headers, rows


class TmpfsGoroot(Scenario):
    id = "tmpfs-goroot"
    title = ("Cold build time with GOROOT and GOCACHE on tmpfs, as a ratio to both on disk (above 1×: slower): "
             "median (min–max) of per-repetition ratios, placements interleaved; all on disk again is the A/A "
             "pair, the noise a difference must exceed (Findings, Q15)")
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
            for goroot, gocache, again in PLACEMENTS:
                cache = f"{PLACES[gocache]}/gocache"
                steps.append({"name": f"clear-{rep}-{goroot}-{gocache}{again}", "kind": "rmtree", "path": cache})
                steps.append(exec_step(
                    f"{_key(goroot, gocache, again)}#{rep}", ["go", "build", "-v", "-o", f"{SCRATCH}/app", "."],
                    dir=SRC, count_compiled=True, timeout_sec=ctx.build_timeout, stop_on_error=True,
                    env={**OFFLINE_GO, "GOMODCACHE": MODCACHE, "GOCACHE": cache,
                         "PATH": f"{PLACES[goroot]}/goroot/bin:{BASE_PATH}"}))
        return [Phase("main", steps, mounts=(MountSpec("tmpfs", RAM, options="size=2g,exec"),))]

    def evaluate(self, cell: Cell, probes: Probes, ctx: JobContext) -> Verdict:
        steps = {s["name"]: s for s in probes["main"].get("steps", [])}
        obs: dict[str, Any] = {"reps": ctx.reps, "fs": {"tmpfs": steps.get("fs-ram", {}).get("fs_type"),
                                                         "disk": steps.get("fs-disk", {}).get("fs_type")}}
        times: dict[str, list[float]] = {}
        for goroot, gocache, again in PLACEMENTS:
            key = _key(goroot, gocache, again)
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

        obs["ratio_vs_disk"] = {k: ratio(k) for k in times if k not in (BASE, AA)}
        obs["aa_ratio"] = ratio(AA)
        summary = ", ".join(f"{LABELS[k]} {direction(r['median'])} ({r['min']:.2f}–{r['max']:.2f}×)"
                            for k, r in obs["ratio_vs_disk"].items())
        aa = obs["aa_ratio"]
        return Verdict(Status.PASS, f"cold build time ÷ all on disk, median (min–max) of {ctx.reps} per-rep ratios: "
                                    f"{summary}; all on disk twice (A/A) {aa['median']:.2f}× ({aa['min']:.2f}–"
                                    f"{aa['max']:.2f}×)", obs)

    @staticmethod
    def answers() -> dict[str, AnswerFn]:
        return {"Q15": answer_tmpfs}

    def detail_rows(self, cells: Sequence[CellResult]) -> Rows:
        return _tmpfs_rows(cells)


def answer_tmpfs(cells: Sequence[CellResult]) -> Answer:
    """Q15: per row, each tmpfs placement's per-rep ratios against all-on-disk, judged against the A/A floor.
    The verdict follows GOROOT on tmpfs (the question's claim); GOCACHE and both are reported beside it."""
    basis = [c for c in cells if c.cell.get("scenario") == "tmpfs-goroot"]
    native = [c for c in judged(basis) if not c.cell.get("emulated")]  # QEMU's times are not Go's
    by_label: dict[str, dict[str, list[str]]] = {}
    figures = []
    for c in native:
        aa = per_rep_ratios(c.observations, AA)
        for key, label in LABELS.items():
            cmp = compare(per_rep_ratios(c.observations, key), aa)
            if cmp is None:
                continue
            by_label.setdefault(label, {}).setdefault(cmp.verdict, []).append(where(c))
            figures.append(f"{where(c)} {label}: {cmp.short()}")
    goroot = by_label.get(LABELS["goroot-tmpfs/gocache-disk"], {})
    if not goroot:
        return Answer(NOT_MEASURED, "", tuple(basis))
    if len(goroot) > 1:
        verdict = DEPENDS
    else:
        verdict = {FASTER: YES, SLOWER: NO, SAME: NO_DIFFERENCE}.get(next(iter(goroot)), VALUE)
    text = "; ".join(f"{label}: " + ", ".join(f"{v} on {listing(rows)}" for v, rows in sorted(found.items()))
                     for label, found in by_label.items())
    # The verdict is GOROOT's (the claim); say so, since GOCACHE's may differ in the text that follows.
    prefix = {YES: "yes, faster", NO: "no, slower", NO_DIFFERENCE: "no measurable difference",
              DEPENDS: "depends", VALUE: ""}[verdict]
    prefix = f"{prefix} (the verdict is GOROOT on tmpfs's): " if prefix else ""
    return Answer(verdict, prefix + text, tuple(basis), figure="; ".join(figures),
                  limits="the `small` workload's cold build; emulated cells left out (QEMU's times)")
