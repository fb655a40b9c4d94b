"""Run one cell: provision, one container with the probe, evaluate, always clean up.

A cell problem never raises: it becomes a CellResult with status unavailable/error/fail and a
reason that says what was expected, what was found and the fix. Only programming errors escape.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import shlex
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker.errors
import requests.exceptions

from runner import host, images, toolchains
from runner import probe as probe_build
from runner.config import MatrixConfig
from runner.engine import LABEL_CELL, LABEL_MANAGED, LABEL_RUN, Driver, Mount
from runner.errors import EngineUnavailable
from runner.model import Arch, Cell, Engine, Status
from runner.paths import cache_dir
from runner.results import CellResult, now_iso
from runner.scenarios import (
    CONTAINER_ENV,
    GOROOT,
    JOB_DIR,
    OUT_DIR,
    PROBE,
    PROXY,
    WORKLOADS,
    JobContext,
    Verdict,
    registry,
)
from runner.workloads import proxy

WORKLOADS_SRC = Path(proxy.__file__).resolve().parent
CONTAINER_MARGIN = 120.0  # seconds on top of the sum of step timeouts


@dataclass
class RunContext:
    run_id: str
    run_dir: Path
    cfg: MatrixConfig
    images_dir: Path
    host_arch: Arch
    profile: str
    default_matrix: bool = True
    _drivers: dict[Engine, Driver] = field(default_factory=dict)
    _engine_facts: dict[Engine, dict[str, Any] | EngineUnavailable] = field(default_factory=dict)

    def driver(self, engine: Engine) -> Driver:
        if engine not in self._drivers:
            self._drivers[engine] = Driver(engine)
        return self._drivers[engine]

    def engine_facts(self, engine: Engine) -> dict[str, Any]:
        """Checked once per process; an unreachable engine is remembered, not re-probed per cell."""
        if engine not in self._engine_facts:
            try:
                d = self.driver(engine)
                self._engine_facts[engine] = {**d.check(), **d.storage_facts()}
            except EngineUnavailable as e:
                self._engine_facts[engine] = e
        facts = self._engine_facts[engine]
        if isinstance(facts, EngineUnavailable):
            raise facts
        return facts

    def reproduce(self, cell: Cell) -> str:
        cmd = ["go-cache-matrix", "run", "--select", cell.id]
        if self.profile != self.cfg.settings.default_profile:
            cmd += ["--profile", self.profile]
        if not self.default_matrix:
            cmd += ["--matrix", self.cfg.path]
        return shlex.join(cmd)


def _summarise_steps(probe: dict[str, Any]) -> list[dict[str, Any]]:
    """Each step's outcome, with the start of its stderr: the exact words Go printed."""
    out = []
    for s in probe.get("steps", []):
        row = {k: s[k] for k in ("name", "ok", "exit_code", "timed_out", "error", "wall_sec") if k in s}
        if s.get("stderr"):
            row["stderr"] = s["stderr"][:2000]
        out.append(row)
    return out


def _known(ctx: RunContext, cell: Cell, verdict: Verdict) -> Verdict:
    if verdict.status not in (Status.FAIL, Status.ERROR):
        return verdict
    for rule in ctx.cfg.known:
        if fnmatch.fnmatchcase(cell.id, rule.cells):
            return Verdict(Status.KNOWN, f"{rule.because} (recheck {rule.recheck}); observed: {verdict.reason}",
                           verdict.observations)
    return verdict


def _emulator_crash(cell: Cell, probe: dict[str, Any]) -> str | None:
    if not cell.emulated:
        return None
    for s in probe.get("steps", []):
        if "signal:" in (s.get("error") or ""):
            return f"step {s.get('name')} was killed by {s['error']} under QEMU emulation"
    return None


def run_cell(cell: Cell, ctx: RunContext) -> CellResult:
    started, t0 = now_iso(), time.monotonic()
    result = CellResult(cell=cell.to_dict(), status=Status.ERROR, reason="", reproduce=ctx.reproduce(cell),
                        run_id=ctx.run_id, started=started)
    timings: dict[str, Any] = {}

    def finish(status: Status, reason: str, observations: dict[str, Any] | None = None) -> CellResult:
        result.status, result.reason = status, reason
        result.observations = observations or {}
        timings["cell_wall_sec"] = round(time.monotonic() - t0, 3)
        if "in_container_sec" in timings:
            timings["overhead_sec"] = round(timings["cell_wall_sec"] - timings["in_container_sec"], 3)
        result.timings, result.finished = timings, now_iso()
        return result

    if cell.preset:
        return finish(cell.preset[0], cell.preset[1])
    try:
        result.host = host.fingerprint(ctx.engine_facts(cell.engine))
    except EngineUnavailable as e:
        return finish(Status.UNAVAILABLE, f"engine: {e}")
    emu = host.emulation(cell.arch, ctx.host_arch)
    result.host["emulation"] = emu.detail
    if not emu.ok:
        return finish(Status.UNAVAILABLE, f"no emulator for {cell.arch}: {emu.detail}; fix: {emu.fix}")
    driver = ctx.driver(cell.engine)

    # ---------------------------------------------------------------- provision (cached)
    t_prov = time.monotonic()
    try:
        image = images.provision(driver, cell.distro, cell.arch, ctx.images_dir, emulated=cell.emulated)
        result.image = image.to_dict()
        tree = toolchains.ensure(cell.toolchain, cell.arch)
        result.toolchain = tree.to_dict()
        host_tree = toolchains.ensure(next(iter(ctx.cfg.toolchains.values())), ctx.host_arch)
        probe_bin = probe_build.ensure(host_tree, cell.arch)
        proxy_dir = proxy.build(cache_dir() / "proxy" / proxy.content_key())
    except images.ImageUnavailable as e:
        return finish(Status.UNAVAILABLE, f"image: {e}")
    except toolchains.ToolchainUnavailable as e:
        return finish(Status.UNAVAILABLE, f"toolchain: {e}")
    except (images.ImageBuildError, probe_build.ProbeBuildError) as e:
        return finish(Status.ERROR, str(e))
    except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
        return finish(Status.ERROR, f"engine error while provisioning: {e}")
    timings["provision_sec"] = round(time.monotonic() - t_prov, 3)

    # ---------------------------------------------------------------- one container, steps inside
    scenario = registry()[cell.scenario]
    factor = ctx.cfg.settings.emulation_factor if cell.emulated else 1.0
    steps = scenario.steps(cell, JobContext(build_timeout=ctx.cfg.settings.build_timeout * factor))
    work = ctx.run_dir / "work" / cell.slug
    shutil.rmtree(work, ignore_errors=True)
    (work / "job").mkdir(parents=True)
    (work / "out").mkdir()
    (work / "job" / "job.json").write_text(json.dumps({"steps": steps}, indent=1))
    mounts = [
        Mount(source=str(tree.goroot), target=GOROOT),
        Mount(source=str(probe_bin), target=PROBE),
        Mount(source=str(work / "job"), target=JOB_DIR),
        Mount(source=str(work / "out"), target=OUT_DIR, read_only=False),
        Mount(source=str(WORKLOADS_SRC), target=WORKLOADS),
        Mount(source=str(proxy_dir), target=PROXY),
    ]
    labels = {LABEL_MANAGED: "1", LABEL_RUN: ctx.run_id, LABEL_CELL: cell.id}
    budget = sum(float(s.get("timeout_sec", 60)) for s in steps) + CONTAINER_MARGIN * factor
    t_ctr = time.monotonic()
    try:
        with driver.container(image=image.tag, command=[PROBE, f"{JOB_DIR}/job.json", f"{OUT_DIR}/result.json"],
                              mounts=mounts, env=CONTAINER_ENV, labels=labels, platform=cell.arch) as c:
            timings["container_start_sec"] = round(time.monotonic() - t_ctr, 3)
            exit_code, timed_out = driver.wait(c, budget)
            logs = driver.logs(c)
    except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
        return finish(Status.ERROR, f"{cell.engine}: container failed: {e}")
    finally:
        timings["container_sec"] = round(time.monotonic() - t_ctr, 3)
        # If the engine is gone, `go-cache-matrix clean` sweeps by label later.
        with contextlib.suppress(docker.errors.DockerException, requests.exceptions.RequestException):
            driver.sweep({LABEL_RUN: ctx.run_id, LABEL_CELL: cell.id})
    try:
        probe = json.loads((work / "out" / "result.json").read_text())
    except (OSError, ValueError) as e:
        tail = " | ".join(logs.strip().splitlines()[-5:])
        what = f"timed out after {budget:.0f}s" if timed_out else f"exited {exit_code}"
        return finish(Status.ERROR, f"the probe wrote no readable result ({e}); container {what}; logs: {tail}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    timings["in_container_sec"] = round(float(probe.get("wall_sec", 0.0)), 3)
    timings["steps"] = {s["name"]: round(float(s.get("wall_sec", 0.0)), 3) for s in probe.get("steps", [])}
    if probe.get("machine") != cell.arch.to_uname():
        return finish(Status.ERROR, f"the container reports machine {probe.get('machine')!r}, expected "
                                    f"{cell.arch.to_uname()!r}: the image or the emulator is wrong")
    if timed_out:
        return finish(Status.ERROR, f"container exceeded its {budget:.0f}s budget and was killed")

    crash = _emulator_crash(cell, probe)
    verdict = Verdict(Status.ERROR, crash) if crash else scenario.evaluate(cell, probe)
    verdict = _known(ctx, cell, verdict)
    obs = dict(verdict.observations)
    obs["steps"] = _summarise_steps(probe)
    obs["machine"] = probe.get("machine")
    return finish(verdict.status, verdict.reason, obs)
