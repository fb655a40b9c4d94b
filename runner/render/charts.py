"""Charts for the HTML report, as inline SVG (matplotlib's SVG backend; nothing is fetched when the page is viewed).

    cells ──extract──> [Bar] / [Spread] per chart   (pure, unit-tested: tests/unit/test_charts.py)
                 └───> svg(...) ──> <figure><svg …></figure>   (only for charts whose data the run has)

Four charts, each drawn only when the run holds its data:

  cold-warm   per row, the cold and the warm build in seconds (log scale: minutes against tenths)
  qemu        per emulated cold-warm row, its cold build against the native twin's (same distro, engine,
              toolchain and workload on the other arch), and a merged run's cells also run under QEMU
  tmpfs       per row and placement, the median ratio against all-on-disk with its min-max spread
  concurrent  builds sharing one cache: each concurrent build's wall time (min-median-max) beside the same
              cold build alone (filesystem cells). Go's own lock waits are not recorded per build (Q16's
              limits), so this shows what waiting on the shared cache costs in wall time, not the waits.
"""

from __future__ import annotations

import io
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runner.answer import judged, obs_of
from runner.results import CellResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class Bar:
    """One labelled row of a chart: a value per series (None: not measured for that series)."""

    label: str
    values: tuple[float | None, ...]


@dataclass(frozen=True)
class Spread:
    """A median with its min-max spread, for one label."""

    label: str
    median: float
    low: float
    high: float


def row_label(c: CellResult) -> str:
    """distro/arch/engine/toolchain, plus the variant when it is not the only thing on the row; QEMU marked."""
    parts = c.id.split("/")
    label = "/".join(parts[:4])
    return label + (" (QEMU)" if c.cell.get("emulated") else "")


def _num(v: object) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def cold_warm(cells: Sequence[CellResult]) -> list[Bar]:
    """(cold sec, warm sec) per judged cold-warm cell that recorded both."""
    out = []
    for c in sorted(judged(cells), key=lambda c: c.id):
        if c.cell.get("scenario") != "cold-warm":
            continue
        cold, warm = _num(obs_of(c, "cold", "sec")), _num(obs_of(c, "warm", "sec"))
        if cold is not None and warm is not None:
            out.append(Bar(row_label(c), (cold, warm)))
    return out


def _twin_key(c: CellResult) -> tuple[str, ...]:
    distro, _arch, *rest = c.id.split("/")
    return (distro, *rest)


def qemu_slowdown(cells: Sequence[CellResult]) -> list[Bar]:
    """Emulated cold build / native twin's cold build, per emulated cold-warm cell with a twin; and for a merged
    run, a native cell's recorded emulated twin (whole in-container time, as the Markdown column computes it)."""
    done = [c for c in sorted(judged(cells), key=lambda c: c.id) if c.cell.get("scenario") == "cold-warm"]
    native = {_twin_key(c): c for c in done if not c.cell.get("emulated")}
    out = []
    for c in done:
        if c.cell.get("emulated") and (twin := native.get(_twin_key(c))) is not None:
            e, n = _num(obs_of(c, "cold", "sec")), _num(obs_of(twin, "cold", "sec"))
            if e is not None and n:
                out.append(Bar(f"{row_label(c)} vs {twin.cell.get('arch')}", (e / n,)))
        emu = _num((c.timings.get("emulated_twin") or {}).get("in_container_sec"))
        own = _num(c.timings.get("in_container_sec"))
        if emu is not None and own:
            out.append(Bar(f"{row_label(c)} run natively and under QEMU", (emu / own,)))
    return out


def tmpfs_ratios(cells: Sequence[CellResult]) -> list[Spread]:
    """Per native tmpfs-goroot cell and placement: ratio against all-on-disk (median, min, max) as recorded.
    Emulated cells are left out, as Q15 leaves them out: QEMU's times are not Go's."""
    out = []
    for c in sorted(judged(cells), key=lambda c: c.id):
        if c.cell.get("scenario") != "tmpfs-goroot" or c.cell.get("emulated"):
            continue
        ratios = obs_of(c, "ratio_vs_disk")
        if not isinstance(ratios, dict):
            continue
        for placement, r in sorted(ratios.items()):
            if not isinstance(r, dict):
                continue
            med, low, high = _num(r.get("median")), _num(r.get("min")), _num(r.get("max"))
            if med is not None and low is not None and high is not None:
                out.append(Spread(f"{row_label(c)} {placement}", med, min(low, med), max(high, med)))
    return out


def concurrent(cells: Sequence[CellResult]) -> tuple[list[Spread], list[Bar]]:
    """Builds sharing one cache. Spreads: per cell, the wall seconds of its concurrent builds (each build's for
    `concurrent`; the wall of all of them for `filesystem`, which records only that). Bars: the same row's cold
    build alone (filesystem cells only; None elsewhere), one per spread, in the same order."""
    spreads, alone = [], []
    for c in sorted(judged(cells), key=lambda c: c.id):
        scenario = c.cell.get("scenario")
        label = f"{row_label(c)} {scenario}:{c.cell.get('variant') or ''}".rstrip(":")
        if isinstance(built := c.observations.get("workload"), str) and built:
            label += f" [{built}]"  # wide, lib and the program share the axis: say which one each bar built
        if scenario == "concurrent":
            builds = obs_of(c, "builds")
            secs = [s for b in (builds if isinstance(builds, list) else []) if isinstance(b, dict) and b.get("ran")
                    and (s := _num(b.get("sec"))) is not None]
            if secs:
                spreads.append(Spread(f"{label} ({len(secs)} builds)", statistics.median(secs), min(secs), max(secs)))
                alone.append(Bar(label, (None,)))
        elif scenario == "filesystem":
            wall, n = _num(obs_of(c, "concurrent", "sec")), _num(obs_of(c, "concurrent", "builds"))
            if wall is not None:
                spreads.append(Spread(f"{label} ({int(n or 0)} builds, wall of all)", wall, wall, wall))
                alone.append(Bar(label, (_num(obs_of(c, "cold", "sec")),)))
    return spreads, alone


# --- drawing ---------------------------------------------------------------------------------------------------

COLOURS = ("#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a")
ROW_INCH = 0.28  # height per label row; the width is fixed and the page scales it down on narrow windows


def _figure(name: str, rows: int) -> tuple[Figure, Axes]:
    import matplotlib

    matplotlib.use("svg", force=True)
    import matplotlib.pyplot as plt

    # Text stays text (selectable, small); ids are salted per chart so two charts on one page never share one.
    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": f"gcm-{name}", "font.size": 9,
                         "font.family": "sans-serif"})
    fig, ax = plt.subplots(figsize=(8.5, 0.9 + ROW_INCH * max(rows, 2)), layout="constrained")
    return fig, ax


def _svg(fig: Figure, name: str) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None,
                                              "Type": None})
    plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    # Inline in HTML5 the namespaces are implied; dropping them keeps the page free of URLs.
    text = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", text)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S).strip()
    # matplotlib numbers its groups (figure_1, patch_1, ...) per figure: prefix them so ids stay unique on the page.
    text = re.sub(r'(\sid="|href="#|url\(#)', rf"\g<1>{name}-", text)
    return text


def _labels(ax: Axes, labels: Sequence[str]) -> None:
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)


def svg_cold_warm(bars: Sequence[Bar]) -> str:
    fig, ax = _figure("cold-warm", len(bars))
    h = 0.4
    for i, name in enumerate(("cold build", "warm build")):
        ax.barh([k + (i - 0.5) * h for k in range(len(bars))], [b.values[i] or 0 for b in bars], h,
                label=name, color=COLOURS[i])
    ax.set_xscale("log")
    ax.set_xlabel("seconds (log scale)")
    _labels(ax, [b.label for b in bars])
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1), ncols=2, frameon=False)
    return _svg(fig, "cold-warm")


def svg_ratios(bars: Sequence[Bar], name: str, xlabel: str) -> str:
    fig, ax = _figure(name, len(bars))
    ax.barh(range(len(bars)), [b.values[0] or 0 for b in bars], 0.6, color=COLOURS[3])
    ax.axvline(1.0, color="#555", lw=1)
    for k, b in enumerate(bars):
        ax.annotate(f"{b.values[0]:.1f}×", (b.values[0] or 0, k), xytext=(3, 0), textcoords="offset points",
                    va="center")
    ax.set_xlabel(xlabel)
    _labels(ax, [b.label for b in bars])
    return _svg(fig, name)


def svg_spreads(spreads: Sequence[Spread], name: str, xlabel: str, *, one: bool = False,
                alone: Sequence[Bar] = ()) -> str:
    fig, ax = _figure(name, len(spreads))
    ys = range(len(spreads))
    ax.errorbar([s.median for s in spreads], ys,
                xerr=[[s.median - s.low for s in spreads], [s.high - s.median for s in spreads]],
                fmt="o", color=COLOURS[0], ecolor=COLOURS[0], capsize=3, label="median, min–max")
    points = [(b.values[0], k) for k, b in enumerate(alone) if b.values[0] is not None]
    if points:
        ax.plot([p[0] for p in points], [p[1] for p in points], "D", color=COLOURS[1],
                label="the same cold build alone")
    if one:
        ax.axvline(1.0, color="#555", lw=1)
    ax.set_xlabel(xlabel)
    _labels(ax, [s.label for s in spreads])
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1), ncols=2, frameon=False)
    return _svg(fig, name)


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    note: str
    svg: str


def charts(cells: Sequence[CellResult]) -> list[Chart]:
    """The charts this run has data for, drawn (an empty list when it has none)."""
    out = []
    if bars := cold_warm(cells):
        out.append(Chart("chart-cold-warm", "Cold and warm build per row",
                         "cold-warm cells: the first build into an empty cache, then the same build again.",
                         svg_cold_warm(bars)))
    if bars := qemu_slowdown(cells):
        out.append(Chart("chart-qemu", "QEMU slowdown",
                         "An emulated cold build against its native twin: QEMU's cost on this host, not Go's on "
                         "that arch.", svg_ratios(bars, "qemu", "emulated ÷ native (×)")))
    if spreads := tmpfs_ratios(cells):
        out.append(Chart("chart-tmpfs", "tmpfs against disk",
                         "tmpfs-goroot cells: each placement's cold build time ÷ all-on-disk, median with the "
                         "min–max over reps; below 1 is faster. Emulated cells left out.",
                         svg_spreads(spreads, "tmpfs", "time ÷ all-on-disk", one=True)))
    spreads, alone = concurrent(cells)
    if spreads:
        out.append(Chart("chart-concurrent", "Concurrent builds on one cache",
                         "Wall seconds of builds sharing one cache (what waiting on its locks costs in time; Go's "
                         "lock waits themselves are not recorded), beside the same cold build alone where the cell "
                         "has it.", svg_spreads(spreads, "concurrent", "seconds", alone=alone)))
    return out
