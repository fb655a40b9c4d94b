"""Which cells changed status since a baseline run: the part of a re-run worth reading first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from runner.render.markdown import table
from runner.results import CellResult


@dataclass(frozen=True)
class Change:
    id: str
    old_status: str | None  # None: the cell is new
    new_status: str | None  # None: the cell is gone
    new_reason: str


def compare(old: Sequence[CellResult], new: Sequence[CellResult]) -> list[Change]:
    """Cells whose status differs, plus cells in only one run; a changed reason alone is not a change."""
    before = {c.id: c for c in old}
    after = {c.id: c for c in new}
    changes = []
    for cid in sorted(before.keys() | after.keys()):
        was, now = before.get(cid), after.get(cid)
        old_status = was.status.value if was else None
        new_status = now.status.value if now else None
        if old_status != new_status:
            changes.append(Change(cid, old_status, new_status, now.reason if now else ""))
    return changes


def markdown_section(changes: Sequence[Change], baseline_label: str) -> str:
    head = f"## Changes since baseline {baseline_label}\n\n"
    if not changes:
        return head + "No cell changed status.\n"
    rows = [[f"`{c.id}`", c.old_status or "— (new cell)", c.new_status or "— (gone)",
             c.new_reason if c.new_status else "not in this run"] for c in changes]
    return head + table(rows, ["cell", "was", "now", "reason"]) + "\n"
