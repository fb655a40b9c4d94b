"""What scenarios' detail rows share: where a cell ran, and the short forms of its figures.

A scenario's `detail_rows(cells)` (runner.scenarios.base) returns (headers, rows), one row per cell; the
Markdown and HTML reports lay them out. Rows start with lead(c): distro, arch, engine, toolchain.
"""

from __future__ import annotations

from typing import Any

from runner import stats
from runner.results import CellResult


def label(c: CellResult) -> str:
    """'Debian 12': the cell's distro as people name it."""
    return f"{c.cell.get('distro_name', '')} {c.cell.get('release', '')}".strip()


def lead(c: CellResult) -> list[str]:
    """The columns every detail row starts with: where the cell ran."""
    arch = c.cell["arch"] + (" (emulated)" if c.cell.get("emulated") else "")
    return [label(c), arch, c.cell["engine"], c.cell["toolchain"]]


def mb(n: Any) -> str:
    return f"{n / 1e6:.1f}" if isinstance(n, (int, float)) else ""


def secs(o: Any) -> str:
    """'1.23 (0)': seconds and packages compiled of a build record, or its failure."""
    if not isinstance(o, dict) or not o.get("ran", True):
        return ""
    if o.get("ok") is False:
        return f"exit {o.get('exit_code')}"
    return f"{o['sec']:.2f} ({o['compiled']})" if "sec" in o else ""


def kept(o: Any) -> str:
    """'kept · 0.41 (0)': whether a cache survived, and the rebuild after."""
    if not isinstance(o, dict) or "survived" not in o:
        return secs(o)
    return f"{'kept' if o['survived'] else 'lost'} · {secs(o)}"


def ratio(r: Any) -> str:
    """A median ratio of times in words, with the min-max of its per-rep ratios: '1.29x slower (0.88-1.80x)'."""
    return f"{stats.direction(r['median'])} ({r['min']:.2f}–{r['max']:.2f}×)" if isinstance(r, dict) else ""
