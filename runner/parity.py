"""Parity: does a scenario's cheap workload decide its question as the `small` program does?

Behavioural scenarios (location, storage, readonly) build the three-package `lib` workload instead of a
program that compiles the runtime. That is only honest if it changes no answer. Run the same cells twice,
once as they are and once with GCM_WORKLOAD=small (`nox -s parity` does both), then:

    python -m runner.parity CHEAP_RUN FULL_RUN     # run dirs or run ids under reports/runs

Per cell: both statuses and each scenario's decisive observations (its `parity(obs)`: exit codes, Go's
words, hit or miss, what survived), which must be equal; the cells' wall times show what the cheap
workload saves. A cell agrees only when both runs decided it (pass, fail or known) with the workloads
they were meant to build (the scenario's declared one, and `small`); one missing from either run, or
undecided in both (unavailable, error), is listed and never counted as agreement. A cell n/a in both runs for
the same reason (decided before anything was built: go1.22 has no GOCACHEPROG) is listed apart and counted
neither way. Exit 0 when every other cell agrees and none is missing, 1 otherwise, 2 on bad input.

    python -m runner.parity --alone SHARED_RUN ALONE_RUN   # `nox -s parity -- --alone`

compares cells that shared a container (runner.share) with the same cells run each in its own container
(GCM_SHARE_CONTAINERS=0): the scenario's parity() where it declares one, else every observation but the steps'
records and times. A cell of the first run that did not share does not agree (exit 1): the check is then not
a check of sharing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabulate import tabulate

from runner.errors import UsageError
from runner.model import Status
from runner.results import CellResult, RunResults, load_run
from runner.scenarios import registry

DECIDED = (Status.PASS, Status.FAIL, Status.KNOWN)


@dataclass(frozen=True)
class Row:
    cell: str
    workloads: tuple[str, str]
    statuses: tuple[str, str]
    differences: dict[str, tuple[Any, Any]]  # decisive observation -> (cheap, full), only where they differ
    walls: tuple[float | None, float | None]
    problem: str = ""  # why the row cannot count as agreement: missing, undecided, the wrong workload
    na: str | None = None  # n/a in both runs for this same reason: no question for a workload to decide

    @property
    def equal(self) -> bool:
        return self.na is None and not self.problem and self.statuses[0] == self.statuses[1] and not self.differences


def decisive(c: CellResult) -> dict[str, Any] | None:
    """The scenario's decisive observations of this cell; None when the scenario has no cheap workload."""
    impl = registry().get(str(c.cell.get("scenario")))
    found = impl.parity(c.observations) if impl is not None else None
    return dict(found) if found is not None else None


def decisive_alone(c: CellResult) -> dict[str, Any] | None:
    """--alone: what a cell that shared a container must observe as it does alone: the scenario's parity()
    where it declares one, else every observation but the steps' records, times and where it ran."""
    impl = registry().get(str(c.cell.get("scenario")))
    if impl is None or not impl.shares_container:
        return None
    found = impl.parity(c.observations)
    if found is not None:
        return dict(found)
    return {k: v for k, v in c.observations.items()
            if k not in ("steps", "made_once", "shared_container") and not k.endswith("_sec")}


def _problem(a: CellResult | None, b: CellResult | None, alone: bool = False) -> str:
    if a is None or b is None:
        return f"only in the {('alone' if alone else 'full') if a is None else ('shared' if alone else 'cheap')} run"
    if a.status not in DECIDED and b.status not in DECIDED:
        return f"undecided in both ({a.status.value} / {b.status.value})"
    if alone:  # both build the scenario's own workload; the first shared a container, the second did not
        if a.status in DECIDED and "shared_container" not in a.observations:
            return "did not share a container in the shared run"
        if "shared_container" in b.observations:
            return "shared a container in the alone run (GCM_SHARE_CONTAINERS=0 not set?)"
        return ""
    impl = registry().get(str(a.cell.get("scenario")))
    declared = impl.workload if impl is not None else None
    got = (a.observations.get("workload"), b.observations.get("workload"))
    if (a.status in DECIDED and got[0] != declared) or (b.status in DECIDED and got[1] != "small"):
        return f"built {got[0]} / {got[1]}, not {declared} / small"
    return ""


def compare(cheap: RunResults, full: RunResults, alone: bool = False) -> list[Row]:
    """One row per cell id, of either run, whose scenario declares parity(); alone: the first run shared
    containers and the second ran each cell alone (GCM_SHARE_CONTAINERS=0), rows of scenarios that share."""
    a_by, b_by = {c.id: c for c in cheap.cells}, {c.id: c for c in full.cells}
    rows = []
    facts = decisive_alone if alone else decisive
    for cid in sorted(set(a_by) | set(b_by)):
        a, b = a_by.get(cid), b_by.get(cid)
        one = a or b
        assert one is not None
        if facts(one) is None:
            continue
        da, db = (facts(a) or {}) if a else {}, (facts(b) or {}) if b else {}
        diffs = {k: (da.get(k), db.get(k)) for k in sorted(set(da) | set(db)) if a and b and da.get(k) != db.get(k)}
        def workload(c: CellResult | None) -> str:
            return str(c.observations.get("workload", "?")) if c else "-"

        def wall(c: CellResult | None) -> float | None:
            return c.timings.get("cell_wall_sec") if c else None

        na = a.reason if a and b and a.status is b.status is Status.NA and a.reason == b.reason else None
        rows.append(Row(cell=cid, workloads=(workload(a), workload(b)),
                        statuses=(a.status.value if a else "-", b.status.value if b else "-"),
                        differences=diffs, problem="" if na is not None else _problem(a, b, alone),
                        walls=(wall(a), wall(b)),
                        na=na))
    return rows


def _finding(r: Row) -> str:
    if r.equal:
        return "same"
    if r.na is not None:
        return f"n/a in both: {r.na}"
    return r.problem or "; ".join(f"{k}: {a!r} vs {b!r}" for k, (a, b) in r.differences.items()) or "status differs"


def markdown(rows: Sequence[Row], alone: bool = False) -> str:
    table = [[r.cell, f"{r.workloads[0]} / {r.workloads[1]}", f"{r.statuses[0]} / {r.statuses[1]}", _finding(r),
              f"{r.walls[0]} / {r.walls[1]}"] for r in rows]
    runs = "shared / alone" if alone else "cheap / full"
    head = ["cell", f"workload ({runs})", f"status ({runs})", "decisive observations", f"cell wall s ({runs})"]
    same = sum(r.equal for r in rows)
    na = sum(r.na is not None for r in rows)
    left_out = f" ({na} n/a in both, left out)" if na else ""
    cheap = sum(r.walls[0] or 0.0 for r in rows)
    full = sum(r.walls[1] or 0.0 for r in rows)
    ratio = f"{full / cheap:.1f}x" if cheap else "-"
    first, second = runs.split(" / ")
    return (str(tabulate(table, head, tablefmt="github")) + f"\n\nparity: {same} of {len(rows) - na} cells agree"
            f"{left_out}; cell wall {cheap:.1f}s {first} vs {full:.1f}s {second} ({ratio})\n")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m runner.parity", description=__doc__.splitlines()[0])
    ap.add_argument("cheap", help="the run as it is (each scenario's own workload; with --alone: sharing containers)")
    ap.add_argument("full", help="the same cells with GCM_WORKLOAD=small (with --alone: GCM_SHARE_CONTAINERS=0)")
    ap.add_argument("--alone", action="store_true",
                    help="compare cells that shared a container with the same cells run each alone (runner.share)")
    ap.add_argument("--reports", default="reports")
    ap.add_argument("-o", "--output", help="also write the table here (Markdown)")
    args = ap.parse_args(argv)
    from runner.cli_results import _run_dir  # the CLI's own rule for "a run directory or a run id", and its message

    try:
        rows = compare(load_run(_run_dir(args.cheap, args.reports)), load_run(_run_dir(args.full, args.reports)),
                       alone=args.alone)
    except UsageError as e:
        print(f"parity: error: {e}", file=sys.stderr)
        return 2
    if not rows:
        what, how = ("that shares containers", "GCM_SHARE_CONTAINERS=0") if args.alone else \
            ("with a cheap workload", "GCM_WORKLOAD=small")
        print(f"parity: error: the two runs share no cell of a scenario {what}\n"
              f"  fix: run the same --select twice, once with {how}", file=sys.stderr)
        return 2
    text = markdown(rows, alone=args.alone)
    print(text)
    if args.output:
        Path(args.output).write_text(text)
    judged = [r for r in rows if r.na is None]
    if not judged:
        print("parity: error: every shared cell is n/a in both runs: no workload decided anything\n"
              "  fix: select cells this host and toolchain can run (the reasons are in the table above)",
              file=sys.stderr)
        return 2
    return 0 if all(r.equal for r in judged) else 1


if __name__ == "__main__":
    sys.exit(main())
