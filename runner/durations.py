"""Measured cell durations on this host: the run's order (longest first), `plan`'s estimate and the ETA.

    <cache>/durations.json   {"schema_version": 1, "runs": N, "cells": {"<cell id>": seconds}, "measured": [ids]}
                             ($GCM_DURATIONS names another file)

Each finished run folds its cells' wall times in (the mean of the old figure and the new one). Shards
still split by matrix.toml's costs, so every runner computes the same split; these figures only order
a runner's own cells and estimate its time. A cell never measured here is estimated from its cost,
scaled by what cells that really ran (pass, fail, known: "measured") took per unit of cost, or UNIT_SEC
before any did: an `unavailable` cell takes no time and says nothing about what a unit of cost takes.
A corrupt or foreign file is ignored with a warning, never an error.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from runner.model import Cell, Status
from runner.paths import cache_dir, locked
from runner.results import CellResult, write_json_atomic

SCHEMA_VERSION = 1
UNIT_SEC = 17.0  # a cost unit before anything is measured: cold-warm:small, native, on a 2-core machine


@dataclass
class Durations:
    cells: dict[str, float] = field(default_factory=dict)
    measured: set[str] = field(default_factory=set)  # cells whose last run ran the scenario (pass, fail, known)
    unavailable: set[str] = field(default_factory=set)  # never measured, and unavailable when last run (no registry)
    runs: int = 0
    warning: str | None = None  # why the file was ignored

    def unit_sec(self, planned: Iterable[Cell]) -> float:
        """Seconds per unit of cost, from the planned cells measured here (median), else UNIT_SEC."""
        ratios = [self.cells[c.id] / c.cost for c in planned if c.id in self.measured and c.cost > 0]
        return statistics.median(ratios) if ratios else UNIT_SEC

    def expected(self, cells: Sequence[Cell], unit: float | None = None, *,
                 pullable: bool = False) -> dict[str, float]:
        """Seconds per cell: measured here, else its cost times `unit` (default: the unit of `cells` themselves; a
        shard passes its whole plan's, see estimate). pullable: a cell that never ran here (unavailable: no
        registry) is expected at its cost, as on a runner where every image pulls, not at its quick time here; a cell
        that was n/a when it ran (nothing newer to switch to, no enforcing host) is n/a there too."""
        unit = self.unit_sec(cells) if unit is None else unit

        def one(c: Cell) -> float:
            if c.preset is not None:
                return 0.1
            if c.id in self.cells and not (pullable and c.id in self.unavailable):
                return self.cells[c.id]
            return c.cost * unit

        return {c.id: one(c) for c in cells}


def path() -> Path:
    """<cache>/durations.json, or $GCM_DURATIONS (the test suite keeps its own: its runs share the cores with other
    tests, and their times would skew this host's estimate)."""
    explicit = os.environ.get("GCM_DURATIONS")
    return Path(explicit) if explicit else cache_dir() / "durations.json"


def load(where: Path | None = None) -> Durations:
    p = where or path()
    try:
        raw = json.loads(p.read_text())
    except FileNotFoundError:
        return Durations()
    except (OSError, ValueError) as e:
        return Durations(warning=f"{p}: ignored, not readable JSON ({e}); the next run writes it anew")
    if not (isinstance(raw, dict) and raw.get("schema_version") == SCHEMA_VERSION
            and isinstance(raw.get("cells"), dict)):
        return Durations(warning=f"{p}: ignored, not a durations file of schema {SCHEMA_VERSION}; the next run "
                                 "writes it anew")
    cells = {str(k): float(v) for k, v in raw["cells"].items() if isinstance(v, (int, float)) and v >= 0}
    measured = raw.get("measured")
    runs = raw.get("runs")
    unavailable = raw.get("unavailable")  # optional: files written before it have none (pullable = as measured)
    return Durations(cells=cells, measured={str(i) for i in measured if i in cells} if isinstance(measured, list)
                     else set(), runs=runs if isinstance(runs, int) else 0,
                     unavailable={str(i) for i in unavailable if i in cells}
                     if isinstance(unavailable, list) else set())


def record(results: Iterable[CellResult], where: Path | None = None) -> None:
    """Fold a run's measured wall times in; preset cells (n/a by the plan) took no time worth keeping."""
    p = where or path()
    results = list(results)
    walls = {r.id: float(r.timings["cell_wall_sec"]) for r in results
             if isinstance(r.timings.get("cell_wall_sec"), (int, float)) and not r.cell.get("preset")}
    ran = {r.id for r in results if r.status in (Status.PASS, Status.FAIL, Status.KNOWN)}
    if not walls:
        return
    with locked("durations"):
        old = load(p)
        cells = dict(old.cells)
        for cid, sec in walls.items():
            was, now = cid in old.measured, cid in ran
            if was and not now:
                continue  # unavailable this time (a registry outage): the time it took when it ran still holds
            # A cell that ran for the first time replaces the quick time of its unavailable runs.
            cells[cid] = round((cells[cid] + sec) / 2 if cid in cells and was == now else sec, 3)
        measured = old.measured | (ran & set(walls))
        # Unavailable when last run and never measured: its time here is not what it takes where it pulls.
        now_unavailable = {r.id for r in results if r.status is Status.UNAVAILABLE} & set(walls)
        unavailable = ((old.unavailable - set(walls)) | now_unavailable) - measured
        write_json_atomic(p, {"schema_version": SCHEMA_VERSION, "runs": old.runs + 1, "cells": cells,
                              "measured": sorted(measured), "unavailable": sorted(unavailable)})


def _boot(cell: Cell) -> str | None:
    """The guest boot a cell's case runs in (the host boots one guest at a time); None for the others."""
    if not cell.engine.is_guest or cell.preset is not None:
        return None
    from runner.guest.modes import boot_of

    try:
        return boot_of(cell.scenario).name
    except KeyError:
        return None


def _sharing_ids() -> frozenset[str]:
    """The scenarios whose variants share a container (runner.share), read once per order, not per cell."""
    from runner import share
    from runner.scenarios import registry

    if not share.enabled():
        return frozenset()
    return frozenset(sid for sid, impl in registry().items() if impl.shares_container and not impl.timing)


def _share_group(cell: Cell, sharing: frozenset[str]) -> tuple[str, ...] | None:
    """The container a cell may share with its row's other variants (runner.share); None when it runs alone."""
    if cell.scenario not in sharing or cell.preset is not None or cell.engine.is_guest:
        return None
    return cell.distro.id, cell.arch.value, cell.engine.value, cell.endpoint or "", cell.toolchain.id, cell.scenario


def order(cells: Sequence[Cell], durations: Durations, unit: float | None = None) -> list[Cell]:
    """Longest expected first, so two workers do not end on one long cell; ties by id. Two things would leave a
    worker waiting (a default run here spent its first 11 minutes one cell at a time: a guest boot, the timing
    cell waiting for it, the next boot waiting for that): timing cells run alone, so they go last, one after
    another; and the host boots one guest at a time, so each boot's first cell (the one that boots it) goes in
    after k/n of the other cells' expected time (boot k of n), with the other worker busy beside it, and the boot's
    other cells, which only read its results, go after the rest: next to it they held the other worker for the
    whole boot (measured: about 5 minutes of a default run). Cells that share a container (runner.share) likewise:
    the group's first cell runs the container for all, so the others go after the rest, where their probes are
    ready; next to it they waited for the whole container (measured: a toolchain row's 18 s)."""
    from runner.plan import is_timing

    exp = durations.expected(cells, unit)  # unit: see estimate
    ranked = sorted(cells, key=lambda c: (-exp[c.id], c.id))
    timing = [c for c in ranked if c.preset is None and not c.engine.is_guest and is_timing(c.scenario)]
    boots: dict[str, list[Cell]] = {}
    for c in ranked:
        if (b := _boot(c)) is not None:
            boots.setdefault(b, []).append(c)
    placed = {c.id for c in timing} | {c.id for group in boots.values() for c in group}
    first_of: dict[tuple[str, ...], str] = {}
    sharing = _sharing_ids()
    takers = []  # the share groups' other cells: their probes come from the group's first cell
    for c in ranked:
        if c.id not in placed and (g := _share_group(c, sharing)) is not None and first_of.setdefault(g, c.id) != c.id:
            takers.append(c)
    placed |= {c.id for c in takers}
    rest = [c for c in ranked if c.id not in placed]
    total = sum(exp[c.id] for c in rest)
    # Boots in the order of their longest cell; boot k of n goes in once k/n of the rest's time is ahead of it.
    groups = sorted(boots.values(), key=lambda g: (-exp[g[0].id], g[0].id))
    out: list[Cell] = []
    ahead, k = 0.0, 0
    for c in rest:
        while k < len(groups) and ahead >= total * k / len(groups):
            out.append(groups[k][0])
            k += 1
        out.append(c)
        ahead += exp[c.id]
    out += [g[0] for g in groups[k:]]
    return out + takers + [c for g in groups for c in g[1:]] + timing


def workers() -> int:
    """What `-n auto` gives: one worker per CPU this process may use (xdist counts the affinity set)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not Linux
        return max(os.cpu_count() or 1, 1)


def wall(expected: dict[str, float], timing: set[str], n_workers: int) -> float:
    """Timing cells run alone (runner.slot), one after another; the rest share n_workers."""
    alone = sum(sec for cid, sec in expected.items() if cid in timing)
    rest = [sec for cid, sec in expected.items() if cid not in timing]
    return alone + max(sum(rest) / max(n_workers, 1), max(rest, default=0.0))


def estimate(cells: Sequence[Cell], durations: Durations, n_workers: int, *, unit: float | None = None,
             pullable: bool = False) -> tuple[float, str]:
    """(expected wall seconds, where the figure comes from) for the cells on n_workers workers.

    unit: seconds per cost unit for the cells not measured here; by default the median of `cells`' own measured
    ones. A part of a plan (a shard, one cell) must pass its whole plan's: a shard's few measured cells are no
    sample, and one of them set the unit for all the others (a guest cell's 270 s at cost 0.5 made a shard of
    `full` 2,077 min here, and no shard count fit). pullable: see Durations.expected."""
    from runner.plan import is_timing

    exp = durations.expected(cells, unit, pullable=pullable)
    timing = {c.id for c in cells if c.preset is None and not c.engine.is_guest and is_timing(c.scenario)}
    total = wall(exp, timing, n_workers)
    measured = sum(1 for c in cells if c.id in durations.measured)
    if durations.runs == 0:
        source = f"from matrix.toml costs at {UNIT_SEC:.0f}s a unit; no earlier run on this host"
    else:
        known = sum(1 for c in cells if c.id in durations.cells)
        source = (f"{durations.runs} earlier run{'s' if durations.runs != 1 else ''} on this host: {known} of "
                  f"{len(cells)} cells timed ({measured} that ran), the rest from their costs")
        if pullable:
            source = source.replace("), the rest", "; those that did not run, as if they pulled), the rest")
    return total, source


def fmt_minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
