"""Parity: does a scenario's cheap workload decide its question as the `small` program does?

Behavioural scenarios (location, storage, readonly) build the three-package `lib` workload instead of a
program that compiles the runtime. That is only honest if it changes no answer. Run the same cells twice,
once as they are and once with GCM_WORKLOAD=small (`nox -s parity` does both), then:

    python -m runner.parity CHEAP_RUN FULL_RUN     # run dirs or run ids under reports/runs

Per cell: both statuses and each scenario's decisive observations (its `parity(obs)`: exit codes, Go's
words, hit or miss, what survived), which must be equal; the cells' wall times show what the cheap
workload saves. Exit 0 when every cell agrees, 1 when one differs, 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabulate import tabulate

from runner.results import CellResult, RunResults, load_run
from runner.scenarios import registry


@dataclass(frozen=True)
class Row:
    cell: str
    workloads: tuple[str, str]
    statuses: tuple[str, str]
    differences: dict[str, tuple[Any, Any]]  # decisive observation -> (cheap, full), only where they differ
    walls: tuple[float | None, float | None]

    @property
    def equal(self) -> bool:
        return self.statuses[0] == self.statuses[1] and not self.differences


def decisive(c: CellResult) -> dict[str, Any] | None:
    """The scenario's decisive observations of this cell; None when the scenario has no cheap workload."""
    impl = registry().get(str(c.cell.get("scenario")))
    fn = getattr(impl, "parity", None)
    return dict(fn(c.observations)) if fn is not None else None


def compare(cheap: RunResults, full: RunResults) -> list[Row]:
    """One row per cell id present in both runs whose scenario declares parity()."""
    by_id = {c.id: c for c in full.cells}
    rows = []
    for a in sorted(cheap.cells, key=lambda c: c.id):
        b = by_id.get(a.id)
        da = decisive(a)
        if b is None or da is None:
            continue
        db = decisive(b) or {}
        diffs = {k: (da.get(k), db.get(k)) for k in sorted(set(da) | set(db)) if da.get(k) != db.get(k)}
        rows.append(Row(cell=a.id,
                        workloads=(str(a.observations.get("workload", "?")), str(b.observations.get("workload", "?"))),
                        statuses=(a.status.value, b.status.value), differences=diffs,
                        walls=(a.timings.get("cell_wall_sec"), b.timings.get("cell_wall_sec"))))
    return rows


def markdown(rows: Sequence[Row]) -> str:
    table = [[r.cell, f"{r.workloads[0]} / {r.workloads[1]}", f"{r.statuses[0]} / {r.statuses[1]}",
              "same" if r.equal else "; ".join(f"{k}: {a!r} vs {b!r}" for k, (a, b) in r.differences.items())
              or "status differs",
              f"{r.walls[0]} / {r.walls[1]}"] for r in rows]
    head = ["cell", "workload (cheap / full)", "status", "decisive observations", "cell wall s"]
    same = sum(r.equal for r in rows)
    cheap = sum(r.walls[0] or 0.0 for r in rows)
    full = sum(r.walls[1] or 0.0 for r in rows)
    ratio = f"{full / cheap:.1f}x" if cheap else "-"
    return (str(tabulate(table, head, tablefmt="github")) + f"\n\nparity: {same} of {len(rows)} cells agree; cell wall "
            f"{cheap:.1f}s cheap vs {full:.1f}s full ({ratio})\n")


def _run_dir(arg: str, reports: Path) -> Path:
    p = Path(arg)
    for cand in (p, reports / "runs" / arg):
        if (cand / "cells").is_dir():
            return cand
    raise SystemExit(f"parity: error: {arg} is not a run directory (no cells/ inside)\n"
                     f"  fix: pass reports/runs/<run-id> or a run id under {reports}/runs")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m runner.parity", description=__doc__.splitlines()[0])
    ap.add_argument("cheap", help="the run as it is (each scenario's own workload)")
    ap.add_argument("full", help="the same cells with GCM_WORKLOAD=small")
    ap.add_argument("--reports", default="reports")
    ap.add_argument("-o", "--output", help="also write the table here (Markdown)")
    args = ap.parse_args(argv)
    try:
        rows = compare(load_run(_run_dir(args.cheap, Path(args.reports))),
                       load_run(_run_dir(args.full, Path(args.reports))))
    except SystemExit as e:
        print(e, file=sys.stderr)
        return 2
    if not rows:
        print("parity: error: the two runs share no cell of a scenario with a cheap workload\n"
              "  fix: run the same --select twice, once with GCM_WORKLOAD=small", file=sys.stderr)
        return 2
    text = markdown(rows)
    print(text)
    if args.output:
        Path(args.output).write_text(text)
    return 0 if all(r.equal for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
