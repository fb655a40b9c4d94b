"""go-cache-matrix: plan | run | report | compare | merge | clean | doctor.

Every tool or input problem is a FatalError, caught once here: one message, the fix, an exit code
(see runner.errors). --debug also prints the traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import math
import os
import re
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn, cast

import docker.errors
import requests.exceptions

from runner import config as config_mod
from runner import durations, engine_choice, options, plan, refs
from runner.cli_results import cmd_compare, cmd_merge, cmd_report
from runner.drivers import driver_for
from runner.engine import LABEL_MANAGED, LABEL_RUN, Driver
from runner.errors import EngineUnavailable, FatalError, UsageError, did_you_mean
from runner.model import Arch, Cell, Engine
from runner.paths import check_run_id
from runner.results import load_run

MAX_REPS = 100
EPILOG = """exit codes: 0 ok · 1 a cell failed or errored · 2 bad input · 3 nothing selected ·
4 no usable engine · 130 interrupted"""


def _matrix_path(args: argparse.Namespace) -> str:
    return options.matrix_path(args.matrix)


def _options(args: argparse.Namespace) -> tuple[config_mod.MatrixConfig, options.Options]:
    """matrix.toml and the options in effect, resolved once (runner.options): plan and run see the same."""
    cfg = config_mod.load(_matrix_path(args))
    return cfg, options.resolve(options.Given.from_args(args), cfg)


def _fit_shards(cfg: config_mod.MatrixConfig, choices: plan.Choices, host_arch: Arch, minutes: float,
                workers: int) -> tuple[int, float]:
    """The fewest shards whose every estimate (matrix.toml costs and this host's measured durations) is within
    `minutes` on `workers` workers, and the longest shard's estimate; (0, longest) when no count up to
    plan.MAX_SHARDS does it (one timing cell, or one cell, alone longer than that)."""
    measured = durations.load()
    whole = plan.build_plan(cfg, dataclasses.replace(choices, shard=None), host_arch=host_arch)
    limit = minutes * 60
    # Every part is estimated with the whole plan's unit, and a cell that did not run here (no registry) at its
    # cost: the count is for runners where every row pulls.
    unit = measured.unit_sec(whole)

    def est(cells: list[Cell]) -> float:
        return durations.estimate(cells, measured, workers, unit=unit, pullable=True)[0]

    one = max(est([c]) for c in whole)
    if one > limit:  # a shard holds at least one cell
        return 0, one
    # No fewer shards than the whole estimate over the limit; count up from there (usually a step or two).
    start = max(1, math.ceil(est(whole) / limit))
    longest = one
    for n in range(start, min(plan.MAX_SHARDS, len(whole)) + 1):
        longest = max(est(part) for part in plan.shards(whole, n))
        if longest <= limit:
            return n, longest
    return 0, longest


def cmd_plan(args: argparse.Namespace) -> int:
    cfg, opts = _options(args)
    choices = opts.choices
    host_arch = Arch(args.host_arch) if args.host_arch else Arch.host()
    cells = plan.build_plan(cfg, choices, host_arch=host_arch)
    profile, mirror = opts.profile, opts.registry_mirror
    workers = args.workers or durations.workers()
    if args.fit_minutes is not None:
        n, longest = _fit_shards(cfg, choices, host_arch, args.fit_minutes, workers)
        print(f"# the longest of {n or 'any'} shards: ≈ {durations.fmt_minutes(longest)} with {workers} workers"
              + ("" if n else f"; no shard count fits {args.fit_minutes:g} min"), file=sys.stderr)
        if not n:
            raise UsageError(f"--fit-minutes {args.fit_minutes:g}: no shard count up to {plan.MAX_SHARDS} fits",
                             fix="allow more minutes, more --workers, or select fewer cells")
        print(n)
        return 0
    if args.json:
        out = {"schema_version": 1, **plan.plan_to_dict(cells, host_arch=host_arch, profile=profile)}
        if mirror:
            from runner import images

            out["registry_mirror"] = mirror
            out["pull_refs"] = {c.distro.id: images.pull_ref(c.distro, mirror) for c in cells}
        print(json.dumps(out, indent=2))
        return 0
    for c in cells:
        note = f"  [{c.preset[0].value}: {c.preset[1]}]" if c.preset else ("  (emulated)" if c.emulated else "")
        print(f"{c.id}{note}" + (f"  (on {c.endpoint})" if c.endpoint else ""))
    shard = f", shard {choices.shard[0]}/{choices.shard[1]}" if choices.shard else ""
    print(f"# {len(cells)} cells, profile {profile}{shard}, host arch {host_arch.value}", file=sys.stderr)
    measured = durations.load()
    unit = measured.unit_sec(plan.unit_basis(cfg, choices, cells, host_arch=host_arch))
    wall, source = durations.estimate(cells, measured, workers, unit=unit)
    print(f"# ≈ {durations.fmt_minutes(wall)} on this host with {workers} workers ({source})",
          file=sys.stderr)
    pulled, _ = durations.estimate(cells, measured, workers, unit=unit, pullable=True)
    if pulled > wall + 30:
        print(f"# ≈ {durations.fmt_minutes(pulled)} where every row's image pulls (the cells that were unavailable "
              "here at their cost)", file=sys.stderr)
    if measured.warning:
        print(f"# warning: {measured.warning}", file=sys.stderr)
    if mirror:
        print(f"# registry mirrors: {refs.describe_mirrors(mirror)}", file=sys.stderr)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    import pytest

    cfg, opts = _options(args)
    matrix, choices = opts.matrix, opts.choices
    cells = plan.build_plan(cfg, choices, host_arch=Arch.host())  # bad input fails here, before pytest
    _check_run_dir(args)
    needs = sorted({c.engine for c in cells if c.preset is None and c.endpoint is None and not c.engine.is_guest})
    # No engine at all: one clear error (exit 4), not N error cells. Docker silent and podman answering (a
    # podman-only host) and no --engine given: docker's cells run on podman, said at the start and in the report.
    engines, substitution = engine_choice.choose([c.engine for c in cells], needs, lambda e: driver_for(e).check(),
                                                 user_chose=opts.engines_named)
    if substitution is not None:
        opts = dataclasses.replace(opts, choices=dataclasses.replace(
            choices, engines=engines, select=substitution.retarget(choices.select),
            skip=substitution.retarget(choices.skip)))
    workers = str(args.workers) if args.workers is not None else ("auto" if len(cells) > 1 else "0")
    pytest_args = [
        matrix, "-p", "runner.pytest_plugin", "-p", "no:cacheprovider",
        "-c", os.devnull, "--rootdir", str(Path(matrix).resolve().parent),
        "--gcm-matrix", matrix, "--gcm-reports", args.reports, "-n", str(workers), "-rfE", "--no-header",
        "-o", "console_output_style=classic", "--gcm-options", opts.to_json(),
    ]
    if workers != "0":
        # Hand cells out one at a time (each worker keeps two queued): xdist's default chunks of hundreds left
        # one worker with the last 12 minutes of a default run alone while the other had nothing to do.
        pytest_args += ["--maxschedchunk", "1"]
    if args.run_id is not None:
        pytest_args += ["--gcm-run-id", args.run_id]
    if args.resume:
        pytest_args += ["--gcm-resume"]
    if substitution is not None:
        pytest_args += ["--gcm-engine-substitution", json.dumps(substitution.to_dict())]
    pytest_args += ["--gcm-progress"] if not args.quiet else ["-q"]
    if args.junitxml:
        pytest_args += ["--junitxml", args.junitxml]
    code = pytest.main(pytest_args)
    if code == pytest.ExitCode.INTERRUPTED:
        return 130
    if args.resume:  # the exit code of the whole run, not of the cells this session re-ran (maybe none)
        run = load_run(Path(args.reports) / "runs" / args.run_id)
        return 1 if any(c.status.value in ("fail", "error") for c in run.cells) else 0
    return 0 if code == pytest.ExitCode.OK else 1


def _check_run_dir(args: argparse.Namespace) -> None:
    """--run-id follows the run-id grammar; an existing run's id only with --resume (two runs never mix)."""
    if args.resume and args.run_id is None:
        raise UsageError("--resume needs the --run-id of the run to resume",
                         fix=f"go-cache-matrix run --run-id ID --resume (IDs: ls {args.reports}/runs)")
    if args.run_id is None:
        return
    check_run_id(args.run_id)  # also "": an empty --run-id is a mistake, not "generate one"
    run_dir = Path(args.reports) / "runs" / args.run_id
    exists = run_dir.is_symlink() or run_dir.exists()
    if exists and not args.resume:
        raise UsageError(f"--run-id {args.run_id}: {run_dir} already exists (a run of that id)",
                         fix="pass a new --run-id, or add --resume to run only its missing and errored cells")
    if args.resume and not (run_dir / "run.json").is_file():
        raise UsageError(f"--resume: {run_dir} is not a run (no run.json inside)",
                         fix="pass the --run-id of an earlier run under --reports, or leave out --resume")


def cmd_clean(args: argparse.Namespace) -> int:
    from runner import buildrun, images

    if args.run is not None:
        check_run_id(args.run, "--run")
    pruned = _prune_caches_first(args) if args.prune_caches else None
    for engine in args.engine or [Engine.DOCKER.value]:
        if Engine(engine).is_guest:  # a guest boot leaves only its job directory (overlay) if it was killed
            from runner import guest

            print(f"{engine}: removed {guest.sweep_stale_jobs()} job directories (overlays) of runs that are gone")
            continue
        try:
            d = driver_for(Engine(engine))
            d.check()
        except EngineUnavailable as e:
            print(f"{engine}: skipped ({e.message})")
            continue
        try:
            removed = _clean_engine(d, args)
            if args.images:
                removed["images"] = images.remove_cached(d)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise EngineUnavailable(f"{engine}: clean failed: {e}", fix="check the engine, then run clean again") from e
        print(f"{engine}: removed " + (", ".join(f"{n} {k}" for k, n in removed.items() if n) or "nothing"))
    from runner.resources import unmount_leftovers

    print(f"host: unmounted {unmount_leftovers(args.run, spare_live=not (args.all or args.run))} loop filesystems "
          f"and removed {buildrun.sweep_host_dirs(args.run)} build directories left by killed runs")
    if pruned is not None:
        _print_pruned(pruned)
    return 0


def _prune_caches_first(args: argparse.Namespace) -> list[tuple[str, int, str]]:
    """clean --prune-caches: refused (nothing deleted, not even the sweep) while any run is live, as seen from
    its run.json under --reports and from the labelled resources of every engine that answers (runner.caches)."""
    from runner import caches
    from runner.sweep import live_runs

    kinds = caches.parse_kinds(args.prune_caches)
    live = caches.live_runs(Path(args.reports))
    # Every engine that answers, not only docker: a live podman run mounts the same toolchains. (A guest run's
    # resources are not an engine's; its run.json under --reports is what shows it.)
    for engine in args.engine or [e.value for e in Engine if not e.is_guest]:
        if Engine(engine).is_guest:
            continue
        try:
            d = driver_for(Engine(engine))
            d.check()
            live += live_runs(d)
        except (EngineUnavailable, docker.errors.DockerException, requests.exceptions.RequestException):
            continue  # an engine that does not answer runs nothing here
    return caches.prune(kinds, live)


def _print_pruned(pruned: list[tuple[str, int, str]]) -> None:
    from runner import caches

    freed = sum(n for _, n, why in pruned if not why)
    for path, n, why in pruned:
        print(f"caches: {'left ' + path + ': ' + why if why else f'removed {path} ({caches.human(n)})'}")
    print(f"caches: freed {caches.human(freed)}" if pruned else "caches: nothing to prune")


def _clean_engine(d: Driver, args: argparse.Namespace) -> dict[str, int]:
    """--run ID: that run's resources. --all: every run's, live ones too (said so). Neither: only runs whose
    runner process is gone; a live run, on this host or another, keeps everything."""
    from runner import buildrun
    from runner.sweep import live_runs, sweep_stale_runs

    if args.run or args.all:
        live = [] if args.run else live_runs(d)
        removed = d.sweep({LABEL_RUN: args.run} if args.run else {LABEL_MANAGED: "1"})
        removed["build records"] = buildrun.prune_build_records(d, args.run)  # none where the builder keeps none
        if live:
            print(f"{d.engine}: --all removed the resources of {len(live)} live run(s) too: {', '.join(live)} "
                  "(their cells in flight will error)")
        return removed
    total: dict[str, int] = {}
    for run_id, owner, removed in sweep_stale_runs(d):
        print(f"{d.engine}: run {run_id} (runner {owner} is gone): removed "
              + (", ".join(f"{n} {k}" for k, n in removed.items() if n) or "nothing"))
        for k, n in removed.items():
            total[k] = total.get(k, 0) + n
    if spared := live_runs(d):
        print(f"{d.engine}: left {len(spared)} live run(s) alone: {', '.join(spared)} (clean --all removes them too)")
    return total


def cmd_doctor(args: argparse.Namespace) -> int:
    from runner import doctor

    if args.json:
        from runner import json_out

        code, data = json_out.doctor(_matrix_path(args), debug=args.debug)
        print(json_out.dumps(data))
        return code
    return doctor.run(_matrix_path(args), debug=args.debug)


def cmd_bench(args: argparse.Namespace) -> int:
    from runner import bench

    if not 1 <= args.reps <= MAX_REPS:  # each rep is minutes of builds: a typo of 5000 would run for days
        raise UsageError(f"--reps {args.reps}: not between 1 and {MAX_REPS}", fix="e.g. --reps 5 (the default)")
    config_mod.load(_matrix_path(args))  # a bad matrix is exit 2 before any engine work
    driver_for(Engine.DOCKER).check()
    return bench.main(_matrix_path(args), args.reports, args.reps, args.skip_qemu, args.skip_row, args.with_default)


def _version() -> str:
    """The installed package's version (its metadata), so it cannot drift from pyproject.toml."""
    from importlib import metadata

    try:
        return metadata.version("go-cache-matrix")
    except metadata.PackageNotFoundError:  # a source tree on PYTHONPATH, not installed
        return "unknown (not installed)"


def _positive_minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 100_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of minutes above 0")
    return value


def _positive_workers(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 1024:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of workers from 1 to 1024")
    return int(text)


class _Parser(argparse.ArgumentParser):
    """argparse with this tool's error shape: usage, one `error:` line naming the option, a `fix:` line; exit 2.
    Sub-command parsers are of this class too (add_subparsers uses the parent's class)."""

    def error(self, message: str) -> NoReturn:
        fix = f"see `{self.prog} --help`"
        bad = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if bad:
            choices = re.findall(r"'([^']*)'", bad.group(2)) or [c.strip() for c in bad.group(2).split(",")]
            message += did_you_mean(bad.group(1), choices)
            fix = f"use one of: {', '.join(choices)}"
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n  fix: {fix}\n")

    def unknown(self, extra: Sequence[str]) -> NoReturn:
        word = extra[0].partition("=")[0]
        options = [o for a in self._actions for o in a.option_strings]
        self.error(f"unrecognized arguments: {' '.join(extra)}"
                   + (did_you_mean(word, options) if word.startswith("-") else ""))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="go-cache-matrix", description=__doc__.splitlines()[0], epilog=EPILOG)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}",
                        help="print the installed version and exit")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("plan", help="print the expanded matrix (no engine needed)")
    options.add_selection(p)
    p.add_argument("--json", action="store_true",
                   help="print the plan as JSON (schema: runner/schemas/plan.schema.json)")
    p.add_argument("--workers", type=_positive_workers, metavar="N",
                   help="estimate the wall for N workers (e.g. a CI runner's cores; default: this host's CPUs)")
    p.add_argument("--host-arch", choices=[a.value for a in Arch],
                   help="plan as if on a host of this arch (which arch is emulated; a CI runner of another arch)")
    p.add_argument("--fit-minutes", type=_positive_minutes, metavar="M",
                   help="print only the fewest --shard count whose every shard is estimated within M minutes, "
                        "counting the cells unavailable here as if every row's image pulled (a CI runner's count)")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("run", help="run the selected cells and render reports/matrix.md")
    options.add_selection(p)
    p.add_argument("--reports", default="reports", help="output directory (default: reports)")
    p.add_argument("-n", "--workers", default=None, help="pytest-xdist workers (default: auto; 0 = in-process)")
    p.add_argument("--run-id", help="name of the run directory under REPORTS/runs (letters, digits, . _ -; "
                                    "default: a new time-stamped id); an existing one only with --resume")
    p.add_argument("--resume", action="store_true",
                   help="with --run-id of an earlier (interrupted) run: run only its missing and errored cells, "
                        "then render one report over all of them")
    p.add_argument("--junit", "--junitxml", dest="junitxml", metavar="PATH",
                   help="also write JUnit XML (one testcase per cell) here")
    p.add_argument("-q", "--quiet", action="store_true", help="pytest's quiet output instead of a line per cell")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("report", help="re-render a run's report from its result files (no engine needed)")
    p.add_argument("run_dir", nargs="?", help="run directory or run id (default: the newest run)")
    p.add_argument("--reports", default="reports", help="where runs are looked up by id (default: reports)")
    p.add_argument("-o", "--output", metavar="PATH", help="write the Markdown here (default: RUN/matrix.md)")
    p.add_argument("--print", action="store_true", help="print the Markdown")
    p.add_argument("--html", metavar="PATH", help="also write the self-contained HTML report here")
    p.add_argument("--junit", "--junitxml", dest="junit", metavar="PATH",
                   help="also write JUnit XML (one testcase per cell) here")
    summary = p.add_mutually_exclusive_group()
    summary.add_argument("--github-summary", action="store_true",
                         help="append a compact summary to $GITHUB_STEP_SUMMARY (GitHub Actions' job summary)")
    summary.add_argument("--github-summary-file", metavar="PATH", help="append that compact summary to PATH")
    p.add_argument("--baseline", metavar="OLD_RUN", help="list exactly the cells whose status changed since OLD_RUN")
    p.add_argument("--fail-on-change", action="store_true", help="with --baseline: exit 1 when a cell changed")
    p.add_argument("--json", action="store_true", help="print a JSON summary (counts, findings answered, files "
                                                         "written) instead of the text")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("compare", help="a distro row against a reference row (default: its previous release), "
                                       "from results alone: per scenario what differs, and a verdict")
    p.add_argument("row", metavar="ROW", help="distro id of the row, e.g. debian-14")
    p.add_argument("run_dir", nargs="?", metavar="RUN", help="run directory or id holding the row (default: newest)")
    p.add_argument("--against", metavar="DISTRO", help="the reference row (default: the previous release of the "
                                                       "same distro in matrix.toml or the results)")
    p.add_argument("--reference", metavar="DIR", help="take the reference row from this run directory or id "
                                                      "(default: the row's own run)")
    p.add_argument("--reports", default="reports", help="where runs are looked up by id (default: reports)")
    p.add_argument("--matrix", help="matrix file naming the releases (default: $GCM_MATRIX or ./matrix.toml)")
    p.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    p.add_argument("-o", "--output", metavar="PATH", help="also write what is printed to PATH")
    p.add_argument("--html", metavar="PATH", help="also write a self-contained HTML page here")
    p.add_argument("--fail-on-difference", action="store_true",
                   help="exit 1 when a scenario's status differs or only one row has it (for CI)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("merge", help="join result directories of several runs (shards, runners) into one run")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="run directories, or directories holding them")
    p.add_argument("--reports", default="reports", help="writes REPORTS/runs/RUN_ID and REPORTS/matrix.md")
    p.add_argument("--run-id", default="merged", help="id of the merged run (default: merged)")
    p.add_argument("--json", action="store_true", help="print a JSON summary instead of the table")
    p.set_defaults(func=cmd_merge)

    p = sub.add_parser("clean", help="remove what runs that are gone left behind (containers, volumes, mounts)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--run", help="only this run id's resources (other runs, also live ones, are untouched)")
    which.add_argument("--all", action="store_true",
                       help="every run's resources, also those of runs still going (without --run or --all: only "
                            "runs whose runner process is gone)")
    p.add_argument("--images", action="store_true", help="also remove cached base and cell images")
    p.add_argument("--prune-caches", nargs="?", const="all", metavar="KIND,...",
                   help="also delete the tool's host caches (toolchains, probe, proxy, rootfs, guest, buildctx, "
                        "records, durations; default all); refused while a run is live")
    p.add_argument("--reports", default="reports", help="where live runs are looked for (default: reports)")
    p.add_argument("--engine", action="append", choices=[e.value for e in Engine],
                   help="clean this engine only; repeatable (default: docker)")
    p.set_defaults(func=cmd_clean)

    p = sub.add_parser("bench", help="the runner against a bare `docker run` loop and the host, as ratios")
    p.add_argument("--matrix", help="matrix file (default: $GCM_MATRIX or ./matrix.toml)")
    p.add_argument("--reports", default="reports", help="writes bench.md and bench.json here")
    p.add_argument("--reps", type=int, default=5, help="interleaved repetitions (default 5)")
    p.add_argument("--skip-qemu", action="store_true", help="do not measure the QEMU factor (minutes per run)")
    p.add_argument("--skip-row", action="store_true",
                   help="do not measure one row in cold-build units nor tmpfs-goroot's spread (minutes)")
    p.add_argument("--with-default", action="store_true",
                   help="also run the default profile and report its wall (tens of minutes)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("doctor", help="host fingerprint, engines, and a preflight per arch, with the fix")
    p.add_argument("--matrix", help="matrix file (default: $GCM_MATRIX or ./matrix.toml)")
    p.add_argument("--json", action="store_true", help="print one JSON object (facts, caches, the report's lines)")
    p.set_defaults(func=cmd_doctor)
    for p in sub.choices.values():  # `go-cache-matrix plan --debug` works as well as `--debug plan`
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    return parser


def _os_error(e: OSError) -> str:
    if e.errno == errno.ENOSPC:
        return f"disk full: cannot write {e.filename or 'a file'}"
    where = f"{e.filename}: " if e.filename else ""
    return f"{where}{e.strerror or e}"[:500]


def _no_nul(args: argparse.Namespace) -> None:
    """A NUL byte cannot be in a path, a glob or a reference; the OS calls would raise ValueError deep inside."""
    for name, value in vars(args).items():
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, str) and "\0" in v:
                option = name if name == "dirs" or name == "run_dir" else "--" + name.replace("_", "-")
                raise UsageError(f"{option}: {v!r} contains a NUL byte", fix="pass it without the NUL character")


def _sigterm_as_interrupt(signum: int, frame: object) -> None:
    # A CI cancel or `kill` should clean up like Ctrl-C: containers removed, partial report written.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    # A shell starts background jobs (`cmd &` in a script) with SIGINT ignored, and Python then leaves it ignored:
    # Ctrl-C or `kill -INT` must stop a run the same way however it was started.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # name the sub-command's own options in the did-you-mean
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        cast(_Parser, sub.choices[args.command]).unknown(extra)
    try:
        _no_nul(args)
        return int(args.func(args))
    except FatalError as e:
        if args.debug:  # the traceback, and still the error's own exit code
            traceback.print_exc()
        print(f"go-cache-matrix: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("go-cache-matrix: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # a path from the command line the OS refuses (too long, a loop, no permission, disk full)
        if args.debug:
            traceback.print_exc()
        print(f"go-cache-matrix: error: {_os_error(e)}\n  fix: check the paths given (and free disk space), "
              "then run the command again; --debug shows where it happened", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `plan | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
