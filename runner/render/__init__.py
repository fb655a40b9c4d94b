"""Renderers read only result data (runner.results); none of them needs an engine."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from runner.model import Status
from runner.results import CellResult


def rollup(cells: Sequence[CellResult]) -> str:
    """One table entry for the cells of one (distro, arch): e.g. '✓ 5/5', '✗ 3/5 (1 fail, 1 error)'."""
    if not cells:
        return ""
    counts = Counter(c.status for c in cells)
    measured = [c for c in cells if c.status not in (Status.UNAVAILABLE, Status.NA)]
    emulated = any(c.cell.get("emulated") for c in measured)
    suffix = " (emulated)" if emulated else ""
    if not measured:
        return " + ".join(sorted({c.status.value for c in cells}))  # "unavailable", "n/a", or both
    passed = counts[Status.PASS]
    bad = [f"{counts[s]} {s.value}" for s in (Status.FAIL, Status.ERROR, Status.KNOWN) if counts[s]]
    skipped = [f"+{counts[s]} {s.value}" for s in (Status.UNAVAILABLE, Status.NA) if counts[s]]
    symbol = "✓" if passed == len(measured) else ("≈" if not (counts[Status.FAIL] or counts[Status.ERROR]) else "✗")
    text = f"{symbol} {passed}/{len(measured)}"
    if bad:
        text += f" ({', '.join(bad)})"
    if skipped:
        text += f" [{', '.join(skipped)}]"
    return text + suffix


def distro_order(cells: Iterable[CellResult]) -> list[str]:
    """Distros in first-seen order of their (name, release) so rows stay stable across runs."""
    seen: dict[str, tuple[str, str]] = {}
    for c in cells:
        seen.setdefault(c.cell["distro"], (c.cell.get("distro_name", ""), c.cell.get("release", "")))
    return sorted(seen, key=lambda d: (seen[d][0], _release_key(seen[d][1])))


def _release_key(release: str) -> tuple[tuple[int, int, str], ...]:
    # Numbers before names ("12" < "sid"), never compared with each other: no int/str TypeError.
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in release.split("."))
