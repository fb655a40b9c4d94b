"""A cell of the guest lab (runner.guest): the guest runs the case in the scenario's mode, one boot shared by the
run's cells of that mode, and the scenario judges the records (Scenario.guest_verdict)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runner import guest
from runner.model import Cell, Status
from runner.scenarios import registry


def guest_outcome(cell: Cell, run_dir: Path, images_dir: Path,
                  planned: Sequence[Cell]) -> tuple[Status, str, dict[str, Any], dict[str, Any]]:
    """(status, reason, observations, extra) of a cell on the guest engine. extra: host, image, toolchain,
    timings."""
    got = guest.case_records(cell, run_dir, images_dir, planned)
    if isinstance(got, tuple):
        return got[0], got[1], {}, {}
    v = registry()[cell.scenario].guest_verdict(cell, got)
    return v.status, v.reason, v.observations, got.extra
