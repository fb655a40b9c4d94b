"""Join the result directories of several runs (shards, runners, arches) into one run.

    DIR... ──find run dirs (run.json or cells/)──> load each ──union of cells by id──> OUT/runs/<id>/
                                                                 │
                                   a cell in two shards: the first DIR wins, the clash is reported;
                                   one measured natively and emulated: the native result is the
                                   cell, the emulated time gives its QEMU slowdown (unless only the
                                   emulated run measured it: then that one is the cell)

Cells keep their own host facts; the merged run.json lists every shard's run id, host and choices, so
the report can say which machine measured what.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from runner.errors import UsageError
from runner.model import Status, cell_slug
from runner.paths import check_run_id, remove_tree, runs_root
from runner.results import CellResult, RunResults, cell_path, load_run, now_iso, write_json_atomic

MEASURED = (Status.PASS, Status.FAIL, Status.KNOWN)  # the cell ran and was judged; not unavailable, n/a, error


def find_runs(paths: Sequence[str], out_dir: Path | None = None) -> list[Path]:
    """Each path is a run directory, or a directory holding run directories (e.g. an unpacked artifact).

    out_dir (the merge output, which merge replaces): a run found there or below it while searching a
    directory is skipped (an earlier merge's output); one passed as an argument is an error."""
    found: list[Path] = []
    out = out_dir.resolve() if out_dir is not None else None

    def inside_out(r: Path) -> bool:
        return out is not None and r.resolve().is_relative_to(out)

    for arg in paths:
        p = Path(arg)
        if not p.is_dir():
            raise UsageError(f"{arg}: no such directory", fix="pass run directories (reports/runs/<run-id>)")
        if inside_out(p):
            raise UsageError(f"the output {out_dir} is also an input ({arg}): merge replaces it",
                             fix="pass another --reports or --run-id")
        if (p / "run.json").exists() or (p / "cells").is_dir():
            runs = [p]
        else:
            runs = sorted(r for r in _run_dirs_below(p, arg) if not inside_out(r))
        if not runs:
            raise UsageError(f"{arg} holds no run directory (no run.json or cells/ below it)",
                             fix="pass reports/runs/<run-id>, or the directory a shard's artifact was unpacked to")
        found += [r for r in runs if r.resolve() not in {f.resolve() for f in found}]
    return found


SEARCH_DEPTH = 6  # an unpacked CI artifact: <artifact>/reports/runs/<run id>/cells is 4 deep
SEARCH_LIMIT = 20_000  # directories looked at below one argument


def _run_dirs_below(top: Path, arg: str) -> set[Path]:
    """Run directories (run.json or cells/ inside) at most SEARCH_DEPTH below top: bounded, so `merge /` is an
    error after a moment instead of a walk of the whole filesystem; unreadable or vanishing dirs are skipped."""
    found: set[Path] = set()
    # errors (a /proc entry gone, no permission) are ignored by os.walk
    for seen, (root, dirs, files) in enumerate(os.walk(top), start=1):
        if seen > SEARCH_LIMIT:
            raise UsageError(f"{arg}: more than {SEARCH_LIMIT} directories below it to search for runs",
                             fix="pass the run directories themselves (reports/runs/<run-id>) or the directory an "
                                 "artifact was unpacked to")
        here = Path(root)
        if "run.json" in files or "cells" in dirs:
            found.add(here)
        if len(here.relative_to(top).parts) >= SEARCH_DEPTH:
            dirs.clear()
    return found


def _measured(c: CellResult) -> bool:
    return c.status in MEASURED


def plan_problems(metas: Sequence[dict[str, Any]]) -> list[str]:
    """Shards of one split have one plan hash (runner.plan.plan_hash); different hashes mean each runner
    split a different plan (e.g. amd64 and arm64 hosts cost the emulated cells differently): cells may be
    missing or doubled."""
    hashes = {str(m.get("run_id", "?")): m["plan"]["hash"] for m in metas
              if (m.get("choices") or {}).get("shard") and isinstance(m.get("plan"), dict) and m["plan"].get("hash")}
    if len(set(hashes.values())) <= 1:
        return []
    shards = ", ".join(f"{rid} ({h})" for rid, h in hashes.items())
    return [f"shards were planned differently: plan hashes {shards} differ, so a cell may be missing or in two "
            "shards; compute all shards on runners of one arch or pass --arch"]


def merge(paths: Sequence[str], reports: Path, run_id: str = "merged") -> RunResults:
    out_dir = reports / "runs" / check_run_id(run_id)
    runs = [load_run(d) for d in find_runs(paths, out_dir)]
    for r in runs:  # find_runs skips them; never remove an input
        if r.run_dir.resolve().is_relative_to(out_dir.resolve()):
            raise UsageError(f"the output {out_dir} is also an input ({r.run_dir})",
                             fix="pass another --reports or --run-id")
    cells: dict[str, CellResult] = {}
    source: dict[str, Path] = {}
    conflicts: list[str] = []
    problems: list[str] = []
    for run in runs:
        problems += run.problems
        for c in run.cells:
            if c.id in cells and bool(cells[c.id].cell.get("emulated")) != bool(c.cell.get("emulated")):
                # The same cell from a native runner and an emulated one (CI's arm64 + arm64-emulated jobs):
                # not a clash. The native result is the cell; the emulated one gives its QEMU slowdown.
                # Unless only the emulated run measured it (native unavailable, n/a, error): then that is the cell.
                native, emulated = (c, cells[c.id]) if cells[c.id].cell.get("emulated") else (cells[c.id], c)
                if _measured(emulated) and not _measured(native):
                    kept, shown = emulated, "emulated"
                    kept.timings["native_twin"] = {"run_id": native.run_id, "status": native.status.value,
                                                   "reason": native.reason}
                else:
                    kept, shown = native, "native"
                    native.timings["emulated_twin"] = {
                        "run_id": emulated.run_id, "status": emulated.status.value, "reason": emulated.reason,
                        "in_container_sec": emulated.timings.get("in_container_sec")}
                if kept is c:
                    source[c.id] = run.run_dir
                cells[c.id] = kept
                if native.status is not emulated.status:
                    why = f" ({native.reason})" if shown == "emulated" else ""
                    conflicts.append(f"{c.id} is {native.status.value} natively{why} but {emulated.status.value} "
                                     f"emulated ({emulated.reason}); the table shows the {shown} result")
                continue
            if c.id in cells:
                first = cells[c.id]
                same = "same status" if first.status is c.status else "DIFFERENT status"
                conflicts.append(f"{c.id} is in {source[c.id]} ({first.status.value}) and in {run.run_dir} "
                                 f"({c.status.value}), {same}; kept the first")
                continue
            cells[c.id], source[c.id] = c, run.run_dir
    metas = [r.meta for r in runs]
    profiles = sorted({str(m.get("profile")) for m in metas if m.get("profile")})
    meta: dict[str, Any] = {
        "schema_version": 1, "run_id": run_id, "merged": now_iso(),
        "profile": profiles[0] if len(profiles) == 1 else " + ".join(profiles) or "?",
        "started": min((str(m["started"]) for m in metas if m.get("started")), default=None),
        "finished": max((str(m["finished"]) for m in metas if m.get("finished")), default=None),
        "interrupted": any(bool(m.get("interrupted")) for m in metas),
        "host": next((m["host"] for m in metas if m.get("host")), {}),
        "shards": [{"run_id": m.get("run_id", r.run_dir.name), "source": str(r.run_dir), "host": m.get("host", {}),
                    "choices": m.get("choices", {}), "interrupted": bool(m.get("interrupted")),
                    "cells": len(r.cells)} for r, m in zip(runs, metas, strict=True)],
        "missing_cells": sorted({i for m in metas for i in m.get("missing_cells", [])} - set(cells)),
        # What each shard's profile left out under QEMU or kept to a row: the report lists it under the table.
        **{key: {k: v for m in metas for k, v in (m.get(key) or {}).items()}
           for key in ("left_out_under_qemu", "kept_to")},
        "conflicts": conflicts,
        "problems": problems + plan_problems(metas),
    }
    _write_swapped(out_dir, cells.values(), meta)
    return load_run(out_dir)  # conflicts and problems come back from run.json


def _write_swapped(out_dir: Path, cells: Iterable[CellResult], meta: dict[str, Any]) -> None:
    """Write the merged run into a temporary directory beside out_dir, then swap it in: the previous merged
    output stays whole until the new one is complete (a failed or killed merge leaves the old one)."""
    root = runs_root(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.merging{os.getpid()}")
    old = out_dir.with_name(f".{out_dir.name}.old{os.getpid()}")
    try:
        remove_tree(tmp, root)
        for c in cells:
            write_json_atomic(cell_path(tmp, cell_slug(c.id)), c.to_dict())
        write_json_atomic(tmp / "run.json", meta)
        if out_dir.is_symlink() or out_dir.exists():
            os.rename(out_dir, old)
        os.rename(tmp, out_dir)
    except OSError as e:
        remove_tree(tmp, root)
        if old.exists() and not out_dir.exists():
            os.rename(old, out_dir)  # put the previous output back
        raise UsageError(f"cannot write the merged run to {out_dir}: {e.strerror or e}"
                         + (f" ({e.filename})" if e.filename else ""),
                         fix="pass a writable --reports directory") from e
    remove_tree(old, root)
