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
import json
import re
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import docker.errors
import pytest
import requests.exceptions

from runner import buildrun, durations, host, options, paths, plan
from runner import config as config_mod
from runner.engine import LABEL_RUN
from runner.errors import CellProblem, FatalError
from runner.execute import RunContext, run_cell
from runner.model import Arch, Cell, Engine, Status, cell_slug
from runner.options import Options
from runner.paths import remove_tree, run_id_problem, runs_root
from runner.preflight import ArchCheck
from runner.render import markdown, publish
from runner.resources import LABEL_OWNER, unmount_leftovers
from runner.results import CellResult, cell_path, load_run, new_run_id, now_iso, write_json_atomic
from runner.sweep import sweep_stale_runs

STATE = pytest.StashKey["MatrixState"]()

# pytest report categories: custom ones appear as their own counts in pytest's final line. A fail or error cell
# is not in pytest's own "failed"/"error" categories, so pytest prints no FAILURES/ERRORS layout for it (`test
# session`, `[gw0] linux -- Python ...`): the go-cache-matrix section lists it as one line and its fix. A cell
# whose runner raised (a tool bug) has no status and stays "failed", traceback included.
CATEGORY = {
    Status.PASS: ("passed", ".", "PASS"),
    Status.FAIL: ("fail", "F", "FAIL"),
    Status.ERROR: ("errored", "E", "ERROR"),
    Status.UNAVAILABLE: ("unavailable", "u", "UNAVAILABLE"),
    Status.NA: ("n/a", "n", "N/A"),
    Status.KNOWN: ("known", "k", "KNOWN"),
}


class MatrixState:
    def __init__(self, ctx: RunContext, cells: list[Cell], controller: bool, reports: Path, options: Options,
                 planned: list[Cell] | None = None) -> None:
        """cells: the cells this session runs; planned: all cells of the run (more than cells when resuming);
        options: what the cells were planned with (runner.options), handed on to the workers."""
        self.ctx, self.cells, self.controller, self.reports = ctx, cells, controller, reports
        self.options = options
        self.planned = planned if planned is not None else cells
        self.meta: dict[str, Any] = {}
        # Progress (controller): expected seconds per cell (runner.durations), the timing cells (they run alone),
        # finished ids, the start.
        self.expected: dict[str, float] = {}
        self.timing: set[str] = set()
        self.done: set[str] = set()
        self.t0 = time.monotonic()
        self.resumed_from: dict[str, Any] | None = None  # the run.json of the run being resumed


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("go-cache-matrix")
    g.addoption("--gcm-matrix", default=None, help="matrix.toml to run (activates the plugin)")
    g.addoption("--gcm-options", default=None,
                help="JSON: the options `go-cache-matrix run` resolved (runner.options; default: GCM_* variables)")
    g.addoption("--gcm-run-id", default=None)
    g.addoption("--gcm-resume", action="store_true", help="run only the missing and errored cells of --gcm-run-id")
    g.addoption("--gcm-engine-substitution", default=None,
                help="JSON {replaced, by, reason}: the CLI ran docker's cells on podman (runner.engine_choice)")
    g.addoption("--gcm-reports", default="reports")
    g.addoption("--gcm-progress", action="store_true",
                help="one line per finished cell with its time, the count and the time left (instead of pytest's)")


def _options(config: pytest.Config, cfg: config_mod.MatrixConfig, worker: dict[str, Any] | None) -> Options:
    """The run's options as `go-cache-matrix run` resolved them; a worker takes its controller's. Only pytest used
    directly (no --gcm-options) resolves them here, from the GCM_* variables: by the same code (runner.options)."""
    if worker and "gcm_options" in worker:
        return Options.from_json(worker["gcm_options"], "workerinput gcm_options")
    if given := config.getoption("gcm_options"):
        return Options.from_json(given)
    return options.resolve(options.Given(matrix=config.getoption("gcm_matrix")), cfg)


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
    opts = _options(config, cfg, worker)
    choices = opts.choices
    host_arch = Arch.host()
    cells = plan.build_plan(cfg, choices, host_arch=host_arch)
    measured = durations.load()
    unit = measured.unit_sec(plan.unit_basis(cfg, choices, cells, host_arch=host_arch))  # the order's and the ETA's
    if worker:  # the controller's order: every worker must collect the same items in the same order
        index = {cid: i for i, cid in enumerate(worker["gcm_order"])}
        cells = sorted(cells, key=lambda c: index.get(c.id, len(index)))
    else:  # longest measured first on this host; shards were split by cost above (runner.durations)
        cells = durations.order(cells, measured, unit)
    profile = opts.profile
    run_dir = reports / "runs" / run_id
    ctx = RunContext(run_id=run_id, run_dir=run_dir, cfg=cfg, images_dir=paths.images_dir(),
                     host_arch=host_arch, profile=profile,
                     default_matrix=Path(matrix).resolve() == (Path.cwd() / "matrix.toml").resolve(),
                     adhoc={s.partition("=")[0]: s for s in choices.distros}, planned=tuple(cells),
                     registry_mirror=opts.registry_mirror, workload=opts.workload)
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
                        options=opts, planned=cells)
    state.resumed_from = resumed
    state.expected = measured.expected(state.cells, unit)
    state.timing = {c.id for c in state.cells if c.preset is None and not c.engine.is_guest
                    and plan.is_timing(c.scenario)}
    if worker is None and config.getoption("gcm_progress"):
        config.pluginmanager.register(Progress(config, state), "gcm-progress")
    state.meta = {
        "schema_version": 1, "run_id": run_id, "profile": profile, "matrix": str(matrix),
        "choices": {"select": choices.select, "skip": choices.skip, "arches": [a.value for a in choices.arches],
                    "endpoints": {a.value: u for a, u in choices.endpoints.items()},
                    "shard": "/".join(map(str, choices.shard)) if choices.shard else None,
                    "distros": list(choices.distros), "registry_mirror": choices.registry_mirror,
                    "workload": ctx.workload},
        "plan": plan.plan_to_dict(cells, host_arch=host_arch, profile=profile,
                                  plan_hash=plan.plan_hash(cfg, choices, host_arch=host_arch)),
        "warnings": config_mod.release_warnings({c.distro.id: c.distro for c in cells}.values(),
                                                datetime.date.today(), cfg.path,
                                                adhoc=[spec.partition("=")[0] for spec in choices.distros]),
    }
    state.meta["left_out_under_qemu"] = plan.left_out_under_qemu(cfg, profile, cells)
    state.meta["kept_to"] = plan.kept_to(cfg, profile, cells)
    if substitution := config.getoption("gcm_engine_substitution"):  # podman stood in for docker: say it first
        sub = json.loads(substitution)
        state.meta["engine_substitution"] = sub
        state.meta["warnings"].insert(0, f"{sub['replaced']} does not answer ({sub['reason']}); podman does: this "
                                         f"run's {sub['replaced']} cells ran on {sub['by']}")
    if measured.warning:  # printed at the start with the other warnings
        state.meta["warnings"].append(measured.warning)
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
        except (CellProblem, FatalError) as e:  # EngineNotAnswering: its cells say so too
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
        node.workerinput["gcm_options"] = state.options.to_json()  # the worker plans with these, not its env
        node.workerinput["gcm_order"] = [c.id for c in state.cells]
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
    def __init__(self, status: Status, reason: str, reproduce: str = "") -> None:
        super().__init__(reason)
        self.status, self.reason, self.reproduce = status, reason, reproduce


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
        self.user_properties.append(("gcm_wall", result.timings.get("cell_wall_sec")))
        if result.status is Status.PASS:
            return
        if result.status in (Status.UNAVAILABLE, Status.NA):
            pytest.skip(f"{result.status.value}: {result.reason}")
        if result.status is Status.KNOWN:
            pytest.xfail(result.reason)
        raise CellOutcome(result.status, result.reason, result.reproduce)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        """What JUnit XML and `--tb` show for a fail/error cell: the reason and the cell's own reproduce command
        (with every option of the run, --matrix included)."""
        if isinstance(excinfo.value, CellOutcome):
            value = excinfo.value
            return f"{value.status.value}: {value.reason}\nreproduce: {value.reproduce}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        # An empty domain: pytest would otherwise print the id's dots as '::' (go1.22 -> go1::22).
        return self.path, None, ""


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, str] | None:
    if report.when != "call" or STATE not in config.stash:
        return None
    status = dict(report.user_properties).get("gcm_status")
    if not status:
        return None
    category, letter, word = CATEGORY[Status(status)]
    return category, "" if config.getoption("gcm_progress") else letter, word


class Progress:
    """Controller, --gcm-progress: `[57/274] 12:03 elapsed, ≈ 6 min left · <cell> <status> <sec>s[ — reason]`."""

    def __init__(self, config: pytest.Config, state: MatrixState) -> None:
        self.config, self.state = config, state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        state = self.state
        cell_id = report.nodeid.rsplit("::", 1)[-1]
        state.done.add(cell_id)
        props = dict(report.user_properties)
        status = str(props.get("gcm_status", "error" if report.failed else "?"))
        elapsed = time.monotonic() - state.t0
        left = durations.wall({cid: sec for cid, sec in state.expected.items() if cid not in state.done},
                              state.timing, _workers(self.config))
        why = f" — {str(props.get('gcm_reason', ''))[:100]}" if status in ("unavailable", "n/a") else ""
        # The cell's own time (runner.execute: without its wait for the slot); pytest's includes the wait.
        took = props.get("gcm_wall")
        took_s = float(took) if isinstance(took, (int, float)) else report.duration
        self.config.get_terminal_writer().line(
            f"[{len(state.done)}/{len(state.cells)}] {int(elapsed // 60)}:{int(elapsed % 60):02d} elapsed, "
            f"≈ {durations.fmt_minutes(left)} left · {cell_id} {status} {took_s:.1f}s{why}")


def _workers(config: pytest.Config) -> int:
    n = getattr(config.option, "numprocesses", None)
    return n if isinstance(n, int) and n > 0 else 1


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
    if not state.ctx.workload:  # a parity run (GCM_WORKLOAD) builds other workloads: its times are not the cells'
        with contextlib.suppress(OSError):  # the estimate is a convenience: a read-only cache dir loses nothing
            durations.record(run.cells)
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


def split_fix(reason: str) -> tuple[str, str | None]:
    """(what happened, the fix) of a reason that carries one after `fix:` (`...; fix: ...` or `...\n  fix: ...`)."""
    m = re.search(r"(?:;|\n)\s*fix:\s*", reason)
    if not m:
        return reason.strip(), None
    return reason[:m.start()].strip(), reason[m.end():].strip()


def failure_lines(cells: Sequence[CellResult], run_dir: Path, width: int = 400) -> list[str]:
    """The terminal's list of fail and error cells: per cell one line with the reason, then its fix (the reason's
    own, else the command that reruns the cell) and the cell's JSON file, where the detail is."""
    out = []
    for c in sorted(cells, key=lambda c: (c.status.value, c.id)):
        if c.status not in (Status.FAIL, Status.ERROR):
            continue
        what, fix = split_fix(c.reason)
        what = " ".join(what.split())
        if len(what) > width:
            what = what[:width - 1] + "…"
        out.append(f"{c.status.value.upper()} {c.id}: {what}")
        out.append(f"  fix: {fix or 'see the detail, then rerun: ' + c.reproduce}")
        out.append(f"  detail: {cell_path(run_dir, cell_slug(c.id))}" + (f"  rerun: {c.reproduce}" if fix else ""))
    return out


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
    failed = failure_lines(run.cells, state.ctx.run_dir)
    if failed:
        tr.write_line("")
        for line in failed:
            tr.write_line(line, red=not line.startswith(" "))
    tr.write_line(f"report: {state.reports / 'matrix.md'}  (run dir {state.ctx.run_dir})")
    tr.write_line(f"re-render without an engine: go-cache-matrix report {state.ctx.run_dir}")
