"""Variants sharing one container: fewer container lifecycles for cells whose in-container work is a fraction
of a second.

Every cell's phases normally get their own containers; create, start, wait and remove cost about 0.45 s a
container here, more than a `location` or `toolchain` variant spends inside it. A scenario that declares
`shares_container` lets the cells of one row (distro, arch, engine, endpoint, toolchain) and scenario that
this run plans, each with one phase of the same shape (name, mounts, image, options), run in one container:

    sh -c '<reset paths absent, else exit 99>; probe job-1.json result-1.json; rm -rf <reset>;
           probe job-2.json result-2.json; rm -rf <reset>; ...'

Each variant is its own probe job, so its steps keep their own env, dirs and uid, and its own result file is
its own probe: the scenario judges it exactly as if it had run alone. Between variants the container is put
back as the image had it: the scenario names every path its variants may create (`shared_reset`), and the
script removes them all; a path that the image itself has stops the group before anything runs (exit 99), so
a reset never removes what a later variant should have found, and those cells run alone.

The first cell of the group that runs (any xdist worker) takes the group's flock and runs the container for
all of them; each cell's probe is kept under the run's work dir; the others take theirs. A cell whose probe
is missing (the group failed, the container was killed, an engine error) runs alone. Each cell still gets
its own result, status and reproduce command: run alone (a selection of one cell), it is a group of one. The
shared-vs-alone check (`nox -s parity -- --alone`, runner.parity) runs a selection both ways and compares the
statuses and decisive observations. GCM_SHARE_CONTAINERS=0 turns sharing off.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from runner.model import Cell, cell_slug
from runner.paths import locked
from runner.results import write_json_atomic
from runner.scenarios import PROBE, Phase

ENV = "GCM_SHARE_CONTAINERS"
NOT_SHAREABLE = 99  # the script's exit when a reset path is in the image: every member runs alone
RESET_FAILED = 98  # a reset path survived its removal: the members after it run alone


def enabled() -> bool:
    return os.environ.get(ENV, "").strip() != "0"  # any other value was refused when the run started (options)


def shape(phase: Phase) -> tuple[Any, ...]:
    """What cells must have in common to share a container: everything of the phase but its steps."""
    return (phase.name, phase.mounts, phase.container, phase.commit, phase.image, phase.host, phase.replicas,
            phase.distro, phase.security_opt, phase.once)


def shareable(phase: Phase) -> bool:
    """One new container on the image, no image made, no mount of its own, nothing done on the host first: its
    steps are all it is."""
    return phase.container == "new" and phase.replicas == 1 and not phase.commit and not phase.image \
        and not phase.host and not phase.distro and not phase.once and not phase.mounts and not phase.security_opt


def group_of(cell: Cell, planned: Sequence[Cell], phases_of: Callable[[Cell], list[Phase] | None]) -> list[Cell]:
    """The cells of this run that share `cell`'s container, in id order (cell included), or [] when it runs
    alone. phases_of(c): c's phases, or None when c does not run (a precondition decides it)."""
    if not enabled():
        return []
    own = phases_of(cell)
    if own is None or len(own) != 1 or not shareable(own[0]):
        return []
    members = []
    for c in planned:
        if (c.scenario, c.distro.id, c.arch, c.engine, c.endpoint, c.toolchain.id) != \
                (cell.scenario, cell.distro.id, cell.arch, cell.engine, cell.endpoint, cell.toolchain.id) or c.preset:
            continue
        theirs = phases_of(c) if c.id != cell.id else own
        if theirs is not None and len(theirs) == 1 and shape(theirs[0]) == shape(own[0]):
            members.append(c)
    members = sorted({c.id: c for c in members}.values(), key=lambda c: c.id)
    return members if len(members) > 1 else []


def _absent(paths: str, then: str) -> str:
    return f'for p in {paths}; do if [ -e "$p" ] || [ -L "$p" ]; then echo "gcm-share: $p {then}" >&2; '


def script(jobs: Sequence[tuple[str, str]], reset: Sequence[str]) -> str:
    """The container's command (sh is its pid 1): each (job file, result file) run by the probe; after each, every
    other process of the container killed (as when a cell's own container stops: a `go` may leave a child, such
    as telemetry's, behind) and the reset paths removed. None of them may exist at the start (exit 99: every
    cell runs alone); one that a reset could not remove stops the container there (exit 98: the jobs not yet run
    have no result, and their cells run alone)."""
    paths = " ".join(shlex.quote(p) for p in sorted(set(reset)))
    lines = [_absent(paths, "is in the image: each cell runs alone") + f"exit {NOT_SHAREABLE}; fi; done"
             if paths else ":"]
    for job, result in jobs:
        lines.append(f"{shlex.quote(PROBE)} {shlex.quote(job)} {shlex.quote(result)}")
        # Only as the container's pid 1 (its command): anywhere else `kill -1` would reach far more than a container.
        lines.append('if [ "$$" = 1 ]; then kill -KILL -1 2>/dev/null; wait; fi')
        if paths:
            lines.append(f"rm -rf {paths}")
            lines.append(_absent(paths, "is still there after the reset") + f"exit {RESET_FAILED}; fi; done")
    return "\n".join(lines)


def run_or_take(work_dir: Path, cell: Cell, members: Sequence[Cell],
                run_group: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
    """The cell's record from its group's one container: {"probe", "leader", "members", "timing"}, taken from
    the store, or made by running the group now (run_group: {"probes": {cell id: probe}, "timing"} or without
    "probes" when it could not run). None: the cell runs alone (the group ran without a probe of it)."""
    ids = [c.id for c in members]
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:20]
    store = work_dir / "shared" / digest
    t0 = time.monotonic()
    with locked(digest, lock_dir=work_dir / "shared" / "locks"):
        mine = store / f"{cell.slug}.json"
        if mine.exists():
            try:
                record: dict[str, Any] = json.loads(mine.read_text())
            except (OSError, ValueError):
                return None
            return {**record, "waited_sec": round(time.monotonic() - t0, 3)}  # how long this member waited for it
        if (store / "ran").exists():
            return None
        store.mkdir(parents=True, exist_ok=True)
        try:
            got = run_group()
        finally:  # whatever happened, the group ran once: a member without a record runs alone
            (store / "ran").write_text(cell.id)
        probes = got.get("probes") or {}
        group_sec = round(sum(float(p.get("wall_sec", 0.0)) for p in probes.values()), 3)
        own = None
        for cid, probe in probes.items():
            record = {"probe": probe, "leader": cell.id, "members": ids, "timing": got.get("timing", {}),
                      "group_in_container_sec": group_sec}
            write_json_atomic(store / f"{cell_slug(cid)}.json", record)
            if cid == cell.id:
                own = {**record, "ran_it": True}
        return own
