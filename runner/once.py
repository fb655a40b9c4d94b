"""Phases made once per run: a populated cache several cells start from, built by the first of them.

A scenario marks a phase `once` (runner.scenarios.Phase) when what it makes depends on its inputs only, not on
the cell: portability's populate in the source distro's image, static-binary's build there. Its inputs are
hashed: the once key, the steps, the image tag (content-addressed), the mounts the runner adds (toolchain,
probe, workloads, proxy: their host paths are content-addressed too), the phase's own mounts, the arch, the
engine and the container env. The first cell with a key runs the phase and keeps what its bind mounts hold and
its probes under the run's work dir; a later cell of the same run with the same key copies those into its own
data dir and reads the probes, instead of building the same thing again. A flock(2) per key makes it one maker
across xdist workers: a cell that asks while another makes waits for it (the maker's time, which it would have
spent itself).

Only a phase whose steps all succeeded is kept: a failure is measured by every cell on its own, never copied.
Run alone (its reproduce command), a cell makes the phase itself: the same steps, in a fresh container.
The work dir goes with the run (runner.pytest_plugin removes it), so nothing outlives the run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from runner.engine import Mount
from runner.paths import locked
from runner.results import write_json_atomic
from runner.scenarios import JOB_DIR, OUT_DIR, Phase

DONE = "done.json"


def usable(phase: Phase) -> bool:
    """A phase whose outcome can be kept and copied: one new container, no image made, nothing but binds and
    tmpfs (a volume's or a loop fs's contents are not a directory the runner can copy)."""
    return bool(phase.once) and phase.container == "new" and phase.replicas == 1 and not phase.commit \
        and not phase.host and all(m.kind in ("bind", "tmpfs") for m in phase.mounts)


def key(phase: Phase, *, image_tag: str, base_mounts: Sequence[Mount], arch: str, engine: str,
        endpoint: str | None, env: Mapping[str, str]) -> str:
    """The hash of everything the phase's outcome depends on. The job and out dirs are each cell's own and
    carry nothing in: they are left out."""
    inputs = {
        "once": phase.once, "steps": phase.steps, "image": image_tag, "arch": arch, "engine": engine,
        "endpoint": endpoint, "env": dict(sorted(env.items())), "distro": phase.distro,
        "security_opt": list(phase.security_opt),
        "base_mounts": sorted((m.source, m.target, m.read_only) for m in base_mounts
                              if m.target not in (JOB_DIR, OUT_DIR)),
        "mounts": [(m.kind, m.target, m.name, m.read_only, m.options, m.relabel) for m in phase.mounts],
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _all_ok(probes: Mapping[str, Any]) -> bool:
    return bool(probes) and all(s.get("ok", True) for p in probes.values() for s in p.get("steps", []))


def made_once(work_dir: Path, phase: Phase, digest: str, cell_id: str, data_dir: Path,
              run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """run_phase's result for this phase: made by `run` (and kept, when every step succeeded), or copied from the
    cell of this run that made it. A copy adds "reused": {"from": <cell id>, "copy_sec": ...} to the timing."""
    store = work_dir / "once" / digest
    binds = [m.name for m in phase.mounts if m.kind == "bind"]
    with locked(digest, lock_dir=work_dir / "once" / "locks"):
        done = store / DONE
        if done.exists():
            try:
                record = json.loads(done.read_text())
                t0 = time.monotonic()
                for name in binds:
                    shutil.copytree(store / "data" / name, data_dir / name, symlinks=True, dirs_exist_ok=True)
                timing = {"reused": {"from": record["cell"], "copy_sec": round(time.monotonic() - t0, 3)}}
                return {"probes": record["probes"], "timing": timing}
            except (OSError, ValueError, KeyError):
                # Unreadable or half-copied: this cell makes the phase itself (its data dir is overwritten).
                for name in binds:
                    shutil.rmtree(data_dir / name, ignore_errors=True)
        ran = run()
        if "probes" in ran and _all_ok(ran["probes"]):
            try:
                shutil.rmtree(store, ignore_errors=True)
                for name in binds:
                    shutil.copytree(data_dir / name, store / "data" / name, symlinks=True)
                write_json_atomic(done, {"cell": cell_id, "probes": ran["probes"]})
            except OSError:
                shutil.rmtree(store, ignore_errors=True)  # not kept: later cells make it themselves
        return ran
