"""What runs whose controller process is gone left behind on an engine and this host, and removing it.

A resource names its run (LABEL_RUN) and its owner (LABEL_OWNER, runner.resources.owner_token); a run is stale when
its owner is certainly gone (resources.owner_gone). Its containers, volumes and committed images go by label, its
loop filesystems are unmounted, its build records and build dirs removed (runner.buildrun). A live run, on this
host or another, keeps everything.
"""

from __future__ import annotations

import contextlib

from runner import buildrun, resources
from runner.engine import LABEL_RUN, Driver
from runner.resources import LABEL_OWNER, owner_gone, owner_token


def _labelled_runs(driver: Driver) -> set[tuple[str, str]]:
    """(run id, owner) of every container, volume and image carrying both labels."""
    return {(str(labels[LABEL_RUN]), str(labels[LABEL_OWNER])) for labels in driver.labelled([LABEL_OWNER, LABEL_RUN])
            if labels.get(LABEL_OWNER) and labels.get(LABEL_RUN)}


def live_runs(driver: Driver) -> list[str]:
    """Run ids with resources on this engine whose owner process is alive (or on another host)."""
    return sorted({run_id for run_id, owner in _labelled_runs(driver) if not owner_gone(owner)})


def sweep_stale_runs(driver: Driver, current_run: str | None = None) -> list[tuple[str, str, dict[str, int]]]:
    """Remove the containers, volumes and images of runs whose owner process is gone: [(run id, owner, removed)].
    Only resources carrying both the dead owner and its run id are removed, so a live run that reuses a
    run id keeps its own; loop filesystems of such a run are unmounted when no live owner shares its id."""
    found = _labelled_runs(driver)
    swept = []
    for run_id, owner in sorted(found):
        if (run_id == current_run and owner == owner_token()) or not owner_gone(owner):
            continue
        removed = driver.sweep({LABEL_RUN: run_id, LABEL_OWNER: owner})
        if all(owner_gone(o) for r, o in found if r == run_id):
            removed["loop mounts"] = resources.unmount_leftovers(run_id)
            # Best effort: a build leftover that cannot go now goes with `clean`; it never stops the sweep.
            with contextlib.suppress(Exception):
                removed["build records"] = buildrun.prune_build_records(driver, run_id)
            with contextlib.suppress(OSError):
                removed["build dirs"] = buildrun.sweep_host_dirs(run_id)
        swept.append((run_id, owner, removed))
    return swept
