"""One phase of a cell: its containers started with the probe on the cell's mounts, waited for within the
phase's budget, their probe results read back. Split from runner.execute, which provisions the cell and turns
what the phases found into its result.

    phase (runner.scenarios.Phase) ─> job.json ─> container(s) run the probe ─> result[-<phase>.N].json ─> probes
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner import share
from runner.engine import Driver, Mount
from runner.model import Cell
from runner.resources import CellResources, apply_host_actions
from runner.scenarios import CONTAINER_ENV, JOB_DIR, OUT_DIR, PROBE, SCRATCH_IMAGE, Phase, probe_started

if TYPE_CHECKING:
    from runner.execute import RunContext

CONTAINER_MARGIN = 120.0  # seconds on top of the sum of step timeouts


def busy_sec(probes: Iterable[dict[str, Any]]) -> float:
    """Seconds during which at least one of these probes was running: the union of their [started, started +
    wall_sec]. Probes that ran side by side (a phase's replicas, a cell's concurrent builds) overlap, and adding
    their walls would count those seconds twice, leaving a cell's runner overhead (wall - this) negative. A probe
    without a readable start counts its whole wall."""
    spans, loose = [], 0.0
    for p in probes:
        wall = max(float(p.get("wall_sec") or 0.0), 0.0)
        start = probe_started(p)
        if start is None:
            loose += wall
        else:
            spans.append((start, start + wall))
    total, reached = loose, float("-inf")
    for start, end in sorted(spans):
        if end > reached:
            total += end - max(start, reached)
            reached = end
    return round(total, 3)


def summarise_steps(probe: dict[str, Any]) -> list[dict[str, Any]]:
    """Each step's outcome, with the start of its stderr: the exact words Go printed."""
    out = []
    for s in probe.get("steps", []):
        row = {k: s[k] for k in ("name", "ok", "exit_code", "timed_out", "error", "wall_sec") if k in s}
        if s.get("stderr"):
            row["stderr"] = s["stderr"][:2000]
        out.append(row)
    return out


def emulator_crash(cell: Cell, probe: dict[str, Any]) -> str | None:
    if not cell.emulated:
        return None
    for s in probe.get("steps", []):
        if "signal:" in (s.get("error") or ""):
            return f"step {s.get('name')} was killed by {s['error']} under QEMU emulation"
    return None


def run_phase(ctx: RunContext, cell: Cell, driver: Driver, phase: Phase, image_tag: str, base_mounts: list[Mount],
              res: CellResources, stack: contextlib.ExitStack, containers: list[Any], images_made: dict[str, str],
              labels: dict[str, str], work: Path, factor: float,
              container_env: dict[str, str] = CONTAINER_ENV) -> dict[str, Any]:
    """Run one phase: {"probes": {name: probe}, "timing": ...} or {"error": ..., "timing": ...}.

    With replicas > 1, that many containers start together on the same mounts and run the same job;
    their results are probes "<phase>.1" .. "<phase>.N".
    containers: (container, its result file) of the cell so far: a restarted container runs its original
    command again, so it writes the result file it was started with, e.g. a replica's "result-<phase>.N.json".
    """
    apply_host_actions(work / "data", phase.host)
    # The job and result paths are fixed: a restarted container runs its original command again.
    (work / "job" / "job.json").write_text(json.dumps({"steps": phase.steps}, indent=1))
    names = [phase.name] if phase.replicas == 1 else [f"{phase.name}.{i}" for i in range(1, phase.replicas + 1)]
    results = {n: f"result-{n}.json" if phase.replicas > 1 else "result.json" for n in names}
    if phase.container == "restart":
        results = {names[0]: containers[-1][1]}
    for f in results.values():
        (work / "out" / f).unlink(missing_ok=True)
    budget = step_budget(phase.steps) + CONTAINER_MARGIN * factor
    t0 = time.monotonic()
    timing: dict[str, float] = {}
    started: dict[str, Any] = {}
    if phase.container == "restart":
        started[names[0]] = containers[-1][0]
        driver.restart(started[names[0]])
    else:
        # A FROM scratch phase gets only what starts the probe and reads its job back: no toolchain, no workloads.
        base = [m for m in base_mounts if m.target in (PROBE, JOB_DIR, OUT_DIR)] if phase.image == SCRATCH_IMAGE \
            else base_mounts
        mounts = base + [res.mount(m) for m in phase.mounts]
        tag = images_made[phase.image] if phase.image else images_made.get(f"distro:{phase.distro}", image_tag)
        for i, name in enumerate(names, 1):
            env = {**container_env, "GCM_REPLICA": str(i)} if phase.replicas > 1 else container_env
            started[name] = stack.enter_context(driver.container(
                image=tag, command=[PROBE, f"{JOB_DIR}/job.json", f"{OUT_DIR}/{results[name]}"], mounts=mounts,
                # A FROM scratch image's config names the engine's arch; nothing in it runs, the mounts do.
                env=env, labels=labels, platform=None if phase.image == SCRATCH_IMAGE else cell.arch,
                extra={"security_opt": list(phase.security_opt)} if phase.security_opt else None))
            containers.append((started[name], results[name]))
    timing["start_sec"] = round(time.monotonic() - t0, 3)
    waited = {name: driver.wait(c, max(budget - (time.monotonic() - t0), 1.0)) for name, c in started.items()}
    timing["container_sec"] = round(time.monotonic() - t0, 3)
    if phase.commit:
        tag = f"gcm-commit/{cell.slug.lower()[:100]}:{phase.commit}-{ctx.run_id.lower()}"
        images_made[phase.commit] = driver.commit(started[names[0]], tag, labels)
        stack.callback(driver.remove_image, images_made[phase.commit])
    probes: dict[str, Any] = {}
    for name, c in started.items():
        exit_code, timed_out = waited[name]
        try:
            probes[name] = json.loads((work / "out" / results[name]).read_text())
        except (OSError, ValueError) as e:
            tail = " | ".join(driver.logs(c).strip().splitlines()[-5:])
            what = f"timed out after {budget:.0f}s" if timed_out else f"exited {exit_code}"
            return {"error": f"{name}: the probe wrote no readable result ({e}); container {what}; logs: {tail}",
                    "timing": timing}
        if timed_out:
            return {"error": f"{name}: container exceeded its {budget:.0f}s budget and was killed", "timing": timing}
    return {"probes": probes, "timing": timing}


def step_budget(steps: list[dict[str, Any]]) -> float:
    total = 0.0
    for s in steps:
        total += step_budget(s["steps"]) if s.get("kind") == "parallel" else float(s.get("timeout_sec", 60))
    return total


def run_shared(cell: Cell, driver: Driver, jobs: dict[str, list[dict[str, Any]]], reset: list[str], image_tag: str,
               base_mounts: list[Mount], labels: dict[str, str], work: Path, factor: float,
               stack: contextlib.ExitStack, container_env: dict[str, str] = CONTAINER_ENV) -> dict[str, Any]:
    """Several cells' single phases in one container (runner.share): jobs is {cell id: steps}. Returns
    {"probes": {cell id: probe}, "timing": ...}; a cell whose result is missing is left out (it runs alone), and
    all of them when a reset path is in the image."""
    files = {}
    for i, (cid, steps) in enumerate(jobs.items(), 1):
        (work / "job" / f"job-{i}.json").write_text(json.dumps({"steps": steps}, indent=1))
        (work / "out" / f"result-{i}.json").unlink(missing_ok=True)
        files[cid] = (f"{JOB_DIR}/job-{i}.json", f"{OUT_DIR}/result-{i}.json")
    command = ["sh", "-c", share.script(list(files.values()), reset)]
    budget = sum(step_budget(s) for s in jobs.values()) + CONTAINER_MARGIN * factor
    t0 = time.monotonic()
    timing: dict[str, Any] = {"shared_by": len(jobs)}
    c = stack.enter_context(driver.container(image=image_tag, command=command, mounts=base_mounts, env=container_env,
                                             labels=labels, platform=cell.arch))
    timing["start_sec"] = round(time.monotonic() - t0, 3)
    exit_code, timed_out = driver.wait(c, budget)
    timing["container_sec"] = round(time.monotonic() - t0, 3)
    timing["exit_code"] = exit_code
    if exit_code in (share.NOT_SHAREABLE, share.RESET_FAILED) or timed_out:
        # 99: nothing ran; 98: the jobs before the failed reset ran from a clean start and keep their results.
        timing["alone_because"] = "container exceeded its budget" if timed_out else \
            " | ".join(driver.logs(c).strip().splitlines()[-2:])
        if exit_code == share.NOT_SHAREABLE or timed_out:
            return {"timing": timing}
    probes = {}
    for cid, (_, result) in files.items():
        with contextlib.suppress(OSError, ValueError):
            probes[cid] = json.loads((work / "out" / Path(result).name).read_text())
    return {"probes": probes, "timing": timing}
