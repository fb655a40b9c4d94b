"""The timing slot: while a timing cell measures, no other cell of the run does anything.

A timing figure (cold-warm, tmpfs-goroot) measured beside another cell's build measures the neighbour.
Every cell holds the run's slot *shared* for its whole life; a timing cell provisions first (not
measured), then takes the slot *exclusive* for its containers only. Two flock(2) files in the run
directory make it work across xdist workers:

    other cells:  turnstile EX ─> slot SH ─> turnstile unlocked ─> ... cell ... ─> slot unlocked
    timing cell:  turnstile EX ─> slot EX (waits for the SH holders to finish) ─> turnstile unlocked
                  ─> ... phases ... ─> slot unlocked

The turnstile gives the waiting timing cell priority: a cell that starts after it queues behind it,
so it cannot be starved by cells that keep the slot shared one after another. The slot is per run: a
second run on the same host is not held back, which is why a timing cell also records the host's load
average before and after (a busy host shows there).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def _flock(path: Path, mode: int) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, mode)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def hold(run_dir: Path, *, exclusive: bool) -> Iterator[dict[str, Any]]:
    """Hold the run's slot; yields a record that the caller may store: how long the wait took, and for an
    exclusive hold the 1-minute load average before and after."""
    record: dict[str, Any] = {"exclusive": exclusive}
    t0 = time.monotonic()
    locks = run_dir / "locks"
    with contextlib.ExitStack() as stack:
        with _flock(locks / "turnstile.lock", fcntl.LOCK_EX):
            stack.enter_context(_flock(locks / "slot.lock", fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH))
        record["waited_sec"] = round(time.monotonic() - t0, 3)
        if exclusive:
            record["loadavg_before"] = round(os.getloadavg()[0], 2)
        yield record
        if exclusive:
            record["loadavg_after"] = round(os.getloadavg()[0], 2)
