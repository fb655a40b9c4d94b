"""The timing slot: while a timing cell measures, no other cell of the run does anything.

A timing figure (cold-warm, tmpfs-goroot) measured beside another cell's build measures the neighbour.
Every cell holds the run's slot *shared* while it provisions and runs; a timing cell provisions holding it
shared too, lets go, then takes it *exclusive* for its containers only. Two flock(2) files in the run's
work directory make it work across xdist workers:

    other cells:  turnstile EX ─> slot SH ─> turnstile unlocked ─> ... cell ... ─> slot unlocked
    timing cell:  (as above while provisioning) ─> slot unlocked ─> turnstile EX ─> slot EX (waits for the SH
                  holders to finish) ─> turnstile unlocked ─> ... phases ... ─> slot unlocked

The turnstile gives the waiting timing cell priority: a cell that starts after it queues behind it,
so it cannot be starved by cells that keep the slot shared one after another. The slot is per run: a
second run on the same host is not held back. So a timing cell also records what else ran on the host:
the containers of other runs of this tool it saw when it got the slot and when it let go, and the
1-minute load average (a slow average: read it as a hint, the containers as the fact).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runner.paths import locked


@contextlib.contextmanager
def hold(work_dir: Path, *, exclusive: bool) -> Iterator[dict[str, Any]]:
    """Hold the run's slot (work_dir: the run's work directory); yields a record the caller may store: how long
    the wait took and, for an exclusive hold, the 1-minute load average before and after."""
    record: dict[str, Any] = {"exclusive": exclusive}
    t0 = time.monotonic()
    locks = work_dir / "locks"
    with contextlib.ExitStack() as stack:
        with locked("turnstile", lock_dir=locks):
            stack.enter_context(locked("slot", shared=not exclusive, lock_dir=locks))
        record["waited_sec"] = round(time.monotonic() - t0, 3)
        if exclusive:
            record["loadavg_before"] = round(os.getloadavg()[0], 2)
        try:
            yield record
        finally:
            if exclusive:
                record["loadavg_after"] = round(os.getloadavg()[0], 2)
