"""Cells as pytest items, so pytest-xdist (-n), -k, --lf and --junitxml work on the matrix.

Loaded explicitly (`-p runner.pytest_plugin`, which `go-cache-matrix run` does) and inert unless
--gcm-matrix is given. The controller (the only process when not distributed) writes run.json and
renders the report at the end; xdist workers only run cells and write their cell files.

    controller: configure -> run.json(started) ─┐             ┌─> sessionfinish: results.json, matrix.md
    workers:    collect matrix.toml -> CellItem ┴─> runtest ──┘   (each writes cells/<slug>.json)
"""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
from pathlib import Path
from typing import Any

import docker.errors
import pytest
import requests.exceptions

from runner import buildrun, host, plan
from runner import config as config_mod
from runner.engine import LABEL_RUN
from runner.errors import FatalError
from runner.execute import RunContext, run_cell
from runner.model import Arch, Cell, Engine, Status
from runner.paths import remove_tree, run_id_problem, runs_root
from runner.preflight import ArchCheck
from runner.render import markdown, publish
from runner.resources import LABEL_OWNER, sweep_stale_runs, unmount_leftovers
from runner.results import CellResult, cell_path, load_run, new_run_id, now_iso, write_json_atomic

STATE = pytest.StashKey["MatrixState"]()

# pytest report categories: custom ones appear as their own counts in pytest's final line.
CATEGORY = {
    Status.PASS: ("passed", ".", "PASS"),
    Status.FAIL: ("failed", "F", "FAIL"),
    Status.ERROR: ("failed", "E", "ERROR"),
    Status.UNAVAILABLE: ("unavailable", "u", "UNAVAILABLE"),
    Status.NA: ("n/a", "n", "N/A"),
    Status.KNOWN: ("known", "k", "KNOWN"),
}


class MatrixState:
    def __init__(self, ctx: RunContext, cells: list[Cell], controller: bool, reports: Path,
                 planned: list[Cell] | None = None) -> None:
        """cells: the cells this session runs; planned: all cells of the run (more than cells when resuming)."""
        self.ctx, self.cells, self.controller, self.reports = ctx, cells, controller, reports
        self.planned = planned if planned is not None else cells
        self.meta: dict[str, Any] = {}
        self.resumed_from: dict[str, Any] | None = None  # the run.json of the run being resumed


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("go-cache-matrix")
    g.addoption("--gcm-matrix", default=None, help="matrix.toml to run (activates the plugin)")
    g.addoption("--gcm-profile", default=None)
    g.addoption("--gcm-select", action="append", default=[], help="cell-id glob; repeatable")
    g.addoption("--gcm-skip", action="append", default=[], help="cell-id glob to leave out; repeatable")
    g.addoption("--gcm-engine", action="append", default=[])
    g.addoption("--gcm-arch", action="append", default=[])
    g.addoption("--gcm-endpoint", action="append", default=[], help="ARCH=URL: run that arch on another engine")
    g.addoption("--gcm-shard", default=None, help="I/N: only shard I of N")
    g.addoption("--gcm-distro", action="append", default=[], help="NAME=IMAGE_REF: an ad-hoc distro row")
    g.addoption("--gcm-registry-mirror", default=None, help="HOST[:PORT][/PREFIX] to pull docker.io images through")
    g.addoption("--gcm-run-id", default=None)
    g.addoption("--gcm-resume", action="store_true", help="run only the missing and errored cells of --gcm-run-id")
    g.addoption("--gcm-reports", default="reports")


def _choices(config: pytest.Config) -> plan.Choices:
    # The command line wins over GCM_* variables, which win over matrix.toml.
    def pick(opt: str, env: str) -> tuple[str, ...]:
        return tuple(config.getoption(opt)) or config_mod.env_list(env)

    return plan.Choices(
        profile=config.getoption("gcm_profile") or os.environ.get("GCM_PROFILE") or None,
        select=pick("gcm_select", "GCM_SELECT"),
        skip=pick("gcm_skip", "GCM_SKIP"),
        engines=tuple(Engine(e) for e in pick("gcm_engine", "GCM_ENGINES")),
        arches=tuple(Arch(a) for a in config.getoption("gcm_arch")) or config_mod.env_arches(),
        endpoints=config_mod.parse_endpoint_args(pick("gcm_endpoint", "GCM_ENDPOINTS"), "--endpoint/GCM_ENDPOINTS"),
        shard=plan.parse_shard(shard) if (shard := config.getoption("gcm_shard") or os.environ.get("GCM_SHARD"))
        else None,
        distros=tuple(config.getoption("gcm_distro")),
        registry_mirror=config_mod.parse_registry_mirror(
            config.getoption("gcm_registry_mirror") or os.environ.get("GCM_REGISTRY_MIRROR"),
            "--registry-mirror/GCM_REGISTRY_MIRROR"),
    )


def pytest_configure(config: pytest.Config) -> None:
    matrix = config.getoption("gcm_matrix")
    if not matrix:
        return
    config.addinivalue_line("markers", "emulated: the cell runs under QEMU user-mode emulation")
    worker = getattr(config, "workerinput", None)
    reports = Path(config.getoption("gcm_reports")).resolve()
    run_id = worker["gcm_run_id"] if worker else (config.getoption("gcm_run_id") or new_run_id())
    if problem := run_id_problem(run_id):  # `go-cache-matrix run` checked it; this is pytest used directly
        raise pytest.UsageError(f"--gcm-run-id {problem}")
    cfg = config_mod.load(matrix)
    choices = _choices(config)
    host_arch = Arch.host()
    cells = plan.build_plan(cfg, choices, host_arch=host_arch)
    profile = choices.profile or cfg.settings.default_profile
    run_dir = reports / "runs" / run_id
    ctx = RunContext(run_id=run_id, run_dir=run_dir, cfg=cfg, images_dir=Path(matrix).resolve().parent / "images",
                     host_arch=host_arch, profile=profile,
                     default_matrix=Path(matrix).resolve() == (Path.cwd() / "matrix.toml").resolve(),
                     adhoc={s.partition("=")[0]: s for s in choices.distros}, planned=tuple(cells),
                     registry_mirror=choices.registry_mirror or cfg.settings.registry_mirror)
    if worker:
        # Ctrl-C reaches every process of the terminal's group. A worker interrupted mid-cell would print
        # tracebacks and pluggy's "cannot send" while the controller shuts down; the controller alone handles it:
        # it stops the workers (xdist kills one still in a cell) and sweeps the run's resources by label.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        ctx.arch_checks = {(k[0], k[1], k[2]): ArchCheck.from_dict(v) for k, v in worker["gcm_arch_checks"]}
        ctx.owner = worker.get("gcm_owner", ctx.owner)  # resources are the controller's: it is the run
    done: set[str] = set(worker.get("gcm_done", ())) if worker else set()
    resumed = None
    if not worker and config.getoption("gcm_resume"):
        previous = load_run(run_dir)
        resumed = previous.meta
        done = {c.id for c in previous.cells if c.status is not Status.ERROR}
    state = MatrixState(ctx, [c for c in cells if c.id not in done], controller=worker is None, reports=reports,
                        planned=cells)
    state.resumed_from = resumed
    state.meta = {
        "schema_version": 1, "run_id": run_id, "profile": profile, "matrix": str(matrix),
        "choices": {"select": choices.select, "skip": choices.skip, "arches": [a.value for a in choices.arches],
                    "endpoints": {a.value: u for a, u in choices.endpoints.items()},
                    "shard": "/".join(map(str, choices.shard)) if choices.shard else None,
                    "distros": list(choices.distros), "registry_mirror": choices.registry_mirror},
        "plan": plan.plan_to_dict(cells, host_arch=host_arch, profile=profile,
                                  plan_hash=plan.plan_hash(cfg, choices, host_arch=host_arch)),
        "warnings": config_mod.release_warnings({c.distro.id: c.distro for c in cells}.values(),
                                                datetime.date.today(), cfg.path),
    }
    config.stash[STATE] = state


def pytest_sessionstart(session: pytest.Session) -> None:
    """Controller: the per-arch preflight, then run.json. Runs before xdist starts its workers."""
    state = session.config.stash.get(STATE, None)
    if state is None or not state.controller:
        return
    ctx = state.ctx
    (ctx.run_dir / "cells").mkdir(parents=True, exist_ok=True)
    tw = session.config.get_terminal_writer()
    for warning in state.meta["warnings"]:
        tw.line(f"warning: {warning}", yellow=True)
    state.meta["stale_swept"] = _sweep_stale(state, tw)
    for key in sorted({(c.arch, c.engine, c.endpoint) for c in state.cells if c.preset is None},
                      key=lambda k: (k[0].value, k[1].value, k[2] or "")):
        check = ctx.arch_check(*key)
        tw.line(f"preflight {key[1].value}: {check.line()}", red=not check.ok)
    engines = sorted({c.engine for c in state.cells if c.preset is None}, key=lambda e: e.value) \
        or [ctx.cfg.settings.engines[0]]
    per_engine: list[dict[str, Any]] = []
    for engine in engines:
        try:
            per_engine.append(ctx.engine_facts(engine))
        except FatalError as e:
            per_engine.append({"engine": str(engine), "error": str(e)})
    facts: dict[str, Any] = host.fingerprint(per_engine[0])
    facts["engines"] = per_engine
    facts["registry_mirror"] = ctx.registry_mirror
    facts["preflight"] = [{"engine": k[1], **v.to_dict()} for k, v in ctx.arch_checks.items()]
    meta = {**state.meta, "owner": ctx.owner, "started": now_iso(), "finished": None, "interrupted": False,
            "host": facts}
    if state.resumed_from is not None:  # one run: its first start, and when it was resumed with how many cells
        old = state.resumed_from
        meta["started"] = old.get("started") or meta["started"]
        meta["resumed"] = [*(old.get("resumed") or []), {"at": now_iso(), "cells": len(state.cells),
                                                         "kept": len(state.planned) - len(state.cells)}]
        tw.line(f"resuming run {ctx.run_id}: {len(state.cells)} of {len(state.planned)} cells to run "
                "(the missing and errored ones)")
        if (old.get("plan") or {}).get("hash") not in (None, state.meta["plan"].get("hash")):
            tw.line("warning: this selection plans other cells than the run being resumed; pass the same "
                    "--profile/--select/--skip/--arch/--shard", yellow=True)
    write_json_atomic(ctx.run_dir / "run.json", meta)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: every worker joins the controller's run."""
    state = node.config.stash.get(STATE, None)
    if state is not None:
        node.workerinput["gcm_run_id"] = state.ctx.run_id
        node.workerinput["gcm_owner"] = state.ctx.owner
        node.workerinput["gcm_done"] = sorted({c.id for c in state.planned} - {c.id for c in state.cells})
        node.workerinput["gcm_arch_checks"] = [[list(k), v.to_dict()] for k, v in state.ctx.arch_checks.items()]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    state = parent.config.stash.get(STATE, None)
    if state is not None and file_path.resolve() == Path(parent.config.getoption("gcm_matrix")).resolve():
        return MatrixFile.from_parent(parent, path=file_path)
    return None


class MatrixFile(pytest.File):
    def collect(self) -> list[CellItem]:
        state = self.config.stash[STATE]
        return [CellItem.from_parent(self, name=c.id, cell=c) for c in state.cells]


class CellOutcome(Exception):
    def __init__(self, status: Status, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class CellItem(pytest.Item):
    def __init__(self, *, cell: Cell, **kw: Any) -> None:
        super().__init__(**kw)
        self.cell = cell
        if cell.emulated:
            self.add_marker("emulated")

    def runtest(self) -> None:
        state = self.config.stash[STATE]
        result = run_cell(self.cell, state.ctx)
        try:
            write_json_atomic(cell_path(state.ctx.run_dir, self.cell.slug), result.to_dict())
        except OSError as e:  # DiskFull names the path; the cell is lost, the run goes on and says why
            raise CellOutcome(Status.ERROR, f"result not saved ({result.status.value}: {result.reason}): "
                                            f"{e.strerror}: {e.filename}") from None
        self.user_properties.append(("gcm_status", result.status.value))
        self.user_properties.append(("gcm_reason", result.reason))
        if result.status is Status.PASS:
            return
        if result.status in (Status.UNAVAILABLE, Status.NA):
            pytest.skip(f"{result.status.value}: {result.reason}")
        if result.status is Status.KNOWN:
            pytest.xfail(result.reason)
        raise CellOutcome(result.status, result.reason)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CellOutcome):
            value = excinfo.value
            return f"{value.status.value}: {value.reason}\nreproduce: go-cache-matrix run --select '{self.cell.id}'"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        # An empty domain: pytest would otherwise print the id's dots as '::' (go1.22 -> go1::22).
        return self.path, None, ""


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, str] | None:
    if report.when != "call" or STATE not in config.stash:
        return None
    status = dict(report.user_properties).get("gcm_status")
    return CATEGORY[Status(status)] if status else None


def _engines(state: MatrixState) -> list[tuple[Engine, str | None]]:
    return sorted({(c.engine, c.endpoint) for c in state.cells if c.preset is None and not c.engine.is_guest},
                  key=lambda k: (k[0].value, k[1] or ""))


ENGINE_ERRORS = (FatalError, docker.errors.DockerException, requests.exceptions.RequestException)


def _sweep_stale(state: MatrixState, tw: Any) -> list[dict[str, Any]]:
    """Start-up: remove what runs whose runner process is gone (SIGKILL, OOM, a lost CI job) left on this run's
    engines. Live runs, also this host's concurrent ones, are never touched (runner.resources.owner_gone)."""
    out = []
    for engine, endpoint in _engines(state):
        try:
            swept = sweep_stale_runs(state.ctx.driver(engine, endpoint), state.ctx.run_id)
        except ENGINE_ERRORS:
            continue  # an engine that does not answer: the preflight and the cells say so
        for run_id, owner, removed in swept:
            what = ", ".join(f"{n} {k}" for k, n in removed.items() if n) or "nothing"
            where = f"{engine.value}" + (f" at {endpoint}" if endpoint else "")
            tw.line(f"swept stale run {run_id} on {where} (its runner {owner} is gone): removed {what}")
            out.append({"run_id": run_id, "owner": owner, "engine": where, "removed": removed})
    return out


def _sweep_own(state: MatrixState, cells: list[CellResult]) -> dict[str, int]:
    """End of the run, also an interrupted one: nothing labelled with this run and owner stays behind."""
    total: dict[str, int] = {}
    # An engine that stopped answering (here, or in an xdist worker: its cells say so) is not asked again.
    lost = set(state.ctx.lost) | {(Engine(c.cell["engine"]), c.cell.get("endpoint")) for c in cells
                                  if c.observations.get("engine_lost")}
    for engine, endpoint in _engines(state):
        if (engine, endpoint) in lost:
            continue  # `go-cache-matrix clean --run` once it is back
        try:
            removed = state.ctx.driver(engine, endpoint).sweep({LABEL_RUN: state.ctx.run_id,
                                                                LABEL_OWNER: state.ctx.owner})
        except ENGINE_ERRORS:
            continue
        for k, n in removed.items():
            total[k] = total.get(k, 0) + n
    return {k: n for k, n in total.items() if n}


def _finish(state: MatrixState, interrupted: bool, exitstatus: int) -> Path:
    run_dir = state.ctx.run_dir
    run = load_run(run_dir)
    leftovers = _sweep_own(state, run.cells)
    # A worker stopped mid-cell could not unmount its loop filesystems or remove its build dirs.
    if unmounted := unmount_leftovers(state.ctx.run_id):
        leftovers["loop mounts"] = unmounted
    with contextlib.suppress(OSError):
        if swept := buildrun.sweep_host_dirs(state.ctx.run_id):
            leftovers["build dirs"] = swept
    meta = {**run.meta, "finished": now_iso(), "interrupted": interrupted, "pytest_exitstatus": exitstatus}
    if leftovers:
        meta["leftovers_removed"] = leftovers
    planned = {c.id for c in state.planned}
    meta["missing_cells"] = sorted(planned - {c.id for c in run.cells})
    write_json_atomic(run_dir / "run.json", meta)
    run.meta = meta
    publish.publish(run, state.reports)
    remove_tree(run_dir / "work", runs_root(run_dir))
    return run_dir


def pytest_keyboard_interrupt(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    """The first Ctrl-C or SIGTERM ends the run; a second one (a repeated Ctrl-C, nox's SIGTERM) must not cut the
    clean-up and the partial report short, so the controller ignores both from here on."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


@pytest.hookimpl(trylast=True)  # after xdist's own sessionfinish has stopped the workers: nothing starts after
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE, None)
    if state is None or not state.controller:
        return
    _finish(state, interrupted=exitstatus == pytest.ExitCode.INTERRUPTED, exitstatus=int(exitstatus))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None or not state.controller:
        return
    run = load_run(state.ctx.run_dir)
    tr = terminalreporter
    tr.section("go-cache-matrix")
    tr.write_line(markdown.compat_table(run.cells))
    tr.write_line("")
    tr.write_line(f"cells: {markdown.summary_line(run.cells)}")
    if run.meta.get("interrupted"):
        missing = run.meta.get("missing_cells") or []
        tr.write_line(f"interrupted: {len(missing)} of {len(state.planned)} cells did not finish; the results of the "
                      "finished ones are kept and reported", red=True)
        tr.write_line(f"resume: go-cache-matrix run --run-id {state.ctx.run_id} --resume (the same selection)")
    lost: dict[str, int] = {}
    for c in run.cells:
        if c.observations.get("engine_lost"):
            lost[str(c.observations["engine_lost"])] = lost.get(str(c.observations["engine_lost"]), 0) + 1
    for why, n in lost.items():
        tr.write_line(f"engine lost mid-run: {why} ({n} cells error)", red=True)
    tr.write_line(f"report: {state.reports / 'matrix.md'}  (run dir {state.ctx.run_dir})")
    tr.write_line(f"re-render without an engine: go-cache-matrix report {state.ctx.run_dir}")
