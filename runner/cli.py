"""go-cache-matrix: plan | run | report | compare | merge | clean | doctor.

Every tool or input problem is a FatalError, caught once here: one message, the fix, an exit code
(see runner.errors). --debug also prints the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
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
from runner import durations, engine_choice, findings, plan, refs
from runner.engine import LABEL_MANAGED, LABEL_RUN, Driver
from runner.errors import EngineUnavailable, FatalError, UsageError, did_you_mean
from runner.model import Arch, Engine
from runner.paths import check_run_id, run_id_problem
from runner.render import markdown
from runner.results import RunResults, latest_run, load_run

MAX_REPS = 100
EPILOG = """exit codes: 0 ok · 1 a cell failed or errored · 2 bad input · 3 nothing selected ·
4 no usable engine · 130 interrupted"""


def _matrix_path(args: argparse.Namespace) -> str:
    return str(args.matrix or os.environ.get("GCM_MATRIX") or "matrix.toml")


def _add_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--matrix", help="matrix file (default: $GCM_MATRIX or ./matrix.toml)")
    p.add_argument("--profile", help="profile from matrix.toml (default: settings.default_profile; $GCM_PROFILE)")
    p.add_argument("--select", action="append", default=[], metavar="GLOB",
                   help="cell-id glob, e.g. 'debian-12/amd64/*'; repeatable ($GCM_SELECT, comma-separated)")
    p.add_argument("--skip", action="append", default=[], metavar="GLOB", help="cell-id glob to leave out")
    p.add_argument("--engine", action="append", default=[], choices=[e.value for e in Engine],
                   help="only this engine's cells; repeatable ($GCM_ENGINES; default: the profile's engines, with "
                        "podman standing in for docker when only podman answers)")
    p.add_argument("--arch", action="append", default=[], choices=[a.value for a in Arch],
                   help="only this arch; repeatable ($GCM_ARCHES)")
    p.add_argument("--endpoint", action="append", default=[], metavar="ARCH=URL",
                   help="run ARCH's cells natively on the engine at URL (unix://, tcp://, context:NAME); repeatable "
                        "($GCM_ENDPOINTS, comma-separated; overrides settings.endpoints)")
    p.add_argument("--distro", action="append", default=[], metavar="NAME=IMAGE_REF|NAME=rootfs:SUITE",
                   help="add a row for an image matrix.toml does not list, or try a new image for a listed NAME; "
                        "rootfs:SUITE builds the row from a debootstrap rootfs of that Debian suite instead (no "
                        "registry; e.g. debian-14=rootfs:forky); repeatable")
    p.add_argument("--registry-mirror", action="append", default=[], metavar="[REGISTRY=]HOST[:PORT][/PREFIX]",
                   help="pull docker.io images through this registry: docker.io/library/debian:12 becomes "
                        "HOST[:PORT][/PREFIX]/library/debian:12; REGISTRY=… does the same for another registry, e.g. "
                        "quay.io=HOST/quay; repeatable ($GCM_REGISTRY_MIRROR, comma-separated; each registry's "
                        "mirror overrides settings.registry_mirror's)")
    p.add_argument("--shard", metavar="I/N", help="only shard I of N, balanced by expected cost ($GCM_SHARD); "
                                                 "join the shards' results with `merge`")


def _choices(args: argparse.Namespace, cfg: config_mod.MatrixConfig) -> plan.Choices:
    """The selection (env < CLI), checked against cfg: every bad value is one UsageError naming its option."""
    config_mod.env_workload()  # GCM_WORKLOAD (a parity check's override): checked here, read by the cells
    profile = args.profile or os.environ.get("GCM_PROFILE") or None
    if profile is not None and profile not in cfg.profiles:
        where = "--profile" if args.profile else "GCM_PROFILE"
        raise UsageError(f"{where} {profile!r}: no such profile in {cfg.path}{did_you_mean(profile, cfg.profiles)}",
                         fix=f"use one of: {', '.join(cfg.profiles)}")
    select = tuple(args.select) or config_mod.env_list("GCM_SELECT")
    skip = tuple(args.skip) or config_mod.env_list("GCM_SKIP")
    for where, patterns in (("--select" if args.select else "GCM_SELECT", select),
                            ("--skip" if args.skip else "GCM_SKIP", skip)):
        for pattern in patterns:
            if problem := config_mod.glob_problem(pattern):
                raise UsageError(f"{where} {pattern!r}: {problem}", fix=config_mod.GLOB_FIX)
    arch_names = tuple(args.arch) or config_mod.env_list("GCM_ARCHES")
    for a in arch_names:
        if a not in {x.value for x in Arch}:  # --arch is checked by argparse; this is GCM_ARCHES
            raise UsageError(f"GCM_ARCHES: unknown arch {a!r}{did_you_mean(a, [x.value for x in Arch])}",
                             fix=f"use one of: {', '.join(x.value for x in Arch)} (comma-separated)")
    seen: dict[str, str] = {}
    for spec in args.distro:
        config_mod.adhoc_distro(spec, cfg.distros)  # one clear message for a malformed spec
        name, _, ref = spec.partition("=")
        if seen.get(name, ref) != ref:
            raise UsageError(f"--distro {name}: given twice, as {seen[name]!r} and {ref!r}",
                             fix=f"pass one --distro {name}=IMAGE_REF (or {name}=rootfs:SUITE) per run")
        seen[name] = ref
    shard = args.shard if args.shard is not None else (os.environ.get("GCM_SHARD") or None)  # --shard= is bad
    return plan.Choices(
        profile=profile,
        select=select,
        skip=skip,
        engines=tuple(Engine(e) for e in args.engine),
        arches=tuple(Arch(a) for a in arch_names),
        endpoints=config_mod.parse_endpoint_args(tuple(args.endpoint) or config_mod.env_list("GCM_ENDPOINTS"),
                                                 "--endpoint/GCM_ENDPOINTS"),
        shard=plan.parse_shard(shard) if shard is not None else None,
        distros=tuple(args.distro),
        registry_mirror=refs.merge_mirrors(
            config_mod.parse_registry_mirror(os.environ.get("GCM_REGISTRY_MIRROR"), "GCM_REGISTRY_MIRROR"),
            *(config_mod.parse_registry_mirror(m, f"--registry-mirror {m!r}") for m in args.registry_mirror)),
    )


def _fit_shards(cfg: config_mod.MatrixConfig, choices: plan.Choices, host_arch: Arch, minutes: float,
                workers: int) -> tuple[int, float]:
    """The fewest shards whose every estimate (matrix.toml costs and this host's measured durations) is within
    `minutes` on `workers` workers, and the longest shard's estimate; (0, longest) when no count up to
    plan.MAX_SHARDS does it (one timing cell, or one cell, alone longer than that)."""
    measured = durations.load()
    whole = plan.build_plan(cfg, dataclasses.replace(choices, shard=None), host_arch=host_arch)
    limit = minutes * 60
    one = max(durations.estimate([c], measured, workers)[0] for c in whole)
    if one > limit:  # a shard holds at least one cell
        return 0, one
    # No fewer shards than the whole estimate over the limit; count up from there (usually a step or two).
    start = max(1, math.ceil(durations.estimate(whole, measured, workers)[0] / limit))
    longest = one
    for n in range(start, min(plan.MAX_SHARDS, len(whole)) + 1):
        longest = max(durations.estimate(part, measured, workers)[0] for part in plan.shards(whole, n))
        if longest <= limit:
            return n, longest
    return 0, longest


def cmd_plan(args: argparse.Namespace) -> int:
    cfg = config_mod.load(_matrix_path(args))
    choices = _choices(args, cfg)
    host_arch = Arch(args.host_arch) if args.host_arch else Arch.host()
    cells = plan.build_plan(cfg, choices, host_arch=host_arch)
    profile = choices.profile or cfg.settings.default_profile
    mirror = refs.merge_mirrors(cfg.settings.registry_mirror, choices.registry_mirror)
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
    wall, source = durations.estimate(cells, measured, workers)
    print(f"# ≈ {durations.fmt_minutes(wall)} on this host with {workers} workers ({source})",
          file=sys.stderr)
    if measured.warning:
        print(f"# warning: {measured.warning}", file=sys.stderr)
    if mirror:
        print(f"# registry mirrors: {refs.describe_mirrors(mirror)}", file=sys.stderr)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    import pytest

    matrix = _matrix_path(args)
    cfg = config_mod.load(matrix)
    choices = _choices(args, cfg)
    cells = plan.build_plan(cfg, choices, host_arch=Arch.host())  # bad input fails here, before pytest
    _check_run_dir(args)
    needs = sorted({c.engine for c in cells if c.preset is None and c.endpoint is None and not c.engine.is_guest})
    # No engine at all: one clear error (exit 4), not N error cells. Docker silent and podman answering (a
    # podman-only host) and no --engine given: docker's cells run on podman, said at the start and in the report.
    engines, substitution = engine_choice.choose([c.engine for c in cells], needs, lambda e: Driver(e).check(),
                                                 user_chose=bool(choices.engines or os.environ.get("GCM_ENGINES")))
    if substitution is not None:
        choices = dataclasses.replace(choices, engines=engines, select=substitution.retarget(choices.select),
                                      skip=substitution.retarget(choices.skip))
    workers = str(args.workers) if args.workers is not None else ("auto" if len(cells) > 1 else "0")
    pytest_args = [
        matrix, "-p", "runner.pytest_plugin", "-p", "no:cacheprovider",
        "-c", os.devnull, "--rootdir", str(Path(matrix).resolve().parent),
        "--gcm-matrix", matrix, "--gcm-reports", args.reports, "-n", str(workers), "-rfE", "--no-header",
        "-o", "console_output_style=classic",
    ]
    for flag, values in (("--gcm-select", choices.select), ("--gcm-skip", choices.skip),
                         ("--gcm-engine", [e.value for e in choices.engines]),
                         ("--gcm-arch", [a.value for a in choices.arches]),
                         ("--gcm-endpoint", [f"{a.value}={u}" for a, u in choices.endpoints.items()]),
                         ("--gcm-shard", ["/".join(map(str, choices.shard))] if choices.shard else []),
                         ("--gcm-distro", choices.distros),
                         ("--gcm-registry-mirror", [choices.registry_mirror] if choices.registry_mirror else [])):
        for v in values:
            pytest_args += [flag, v]
    if choices.profile:
        pytest_args += ["--gcm-profile", choices.profile]
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


def _run_dir(arg: str | None, reports: str) -> Path:
    if arg:
        p = Path(arg)
        if (p / "run.json").exists() or (p / "cells").is_dir():
            return p
        if run_id_problem(arg) is None and (Path(reports) / "runs" / arg).is_dir():  # never "/" or "../x"
            return Path(reports) / "runs" / arg
        raise UsageError(f"{arg} is not a run directory (no run.json or cells/ inside)",
                         fix=f"pass a directory under {reports}/runs/, or a run id")
    latest = latest_run(Path(reports))
    if latest is None:
        raise UsageError(f"no runs under {reports}/runs", fix="run `go-cache-matrix run` (or `nox -s matrix`) first")
    return latest


def _write_output(path: Path, text: str, *, append: bool = False) -> Path:
    """Write (or append to) one output file; an unwritable path is one UsageError naming it, not a traceback."""
    try:
        with open(path, "a" if append else "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise UsageError(f"disk full: cannot write {path}", fix="free space on that filesystem, or write "
                             "elsewhere (-o/--html/--junit)") from e
        raise UsageError(f"cannot write {path}: {e.strerror or e}",
                         fix="pass a path in an existing, writable directory") from e
    return path


def cmd_report(args: argparse.Namespace) -> int:
    from runner.render import baseline, html, junit

    if args.fail_on_change and not args.baseline:
        raise UsageError("--fail-on-change needs --baseline OLD_RUN",
                         fix="go-cache-matrix report RUN --baseline OLD_RUN --fail-on-change")
    summary_path: str | None = args.github_summary_file
    if args.github_summary:
        summary_path = os.environ.get("GITHUB_STEP_SUMMARY")
        if not summary_path:
            raise UsageError("--github-summary appends to $GITHUB_STEP_SUMMARY, and $GITHUB_STEP_SUMMARY is not set",
                             fix="outside GitHub Actions, pass a path: --github-summary-file summary.md")
    run_dir = _run_dir(args.run_dir, args.reports)
    run = load_run(run_dir)
    changes_md, changed = None, 0
    if args.baseline:
        old_dir = _run_dir(args.baseline, args.reports)
        old = load_run(old_dir)
        if not old.cells:
            raise UsageError(f"baseline {old_dir} has no cell results", fix="pass the run directory of an earlier run")
        changes = baseline.compare(old.cells, run.cells)
        changed = len(changes)
        changes_md = baseline.markdown_section(changes, f"`{old.meta.get('run_id', old_dir.name)}`")
    text = markdown.render(run, changes_section=changes_md)
    out = Path(args.output) if args.output else run_dir / "matrix.md"
    written = [_write_output(out, text)]
    # Findings as data, beside the Markdown (a run dir elsewhere may be read-only: -o puts both where it points).
    written.append(_write_output(out.with_name("findings.json"), json.dumps(findings.to_json(run), indent=2) + "\n"))
    for path, render in ((args.html, html.render), (args.junit, junit.render)):
        if path:
            written.append(_write_output(Path(path), render(run)))
    if summary_path:  # appended, as GitHub Actions expects for $GITHUB_STEP_SUMMARY
        written.append(_write_output(Path(summary_path), markdown.github_summary(run)
                                     + ("\n" + changes_md if changes_md else "") + "\n", append=True))
    print(text if args.print else f"wrote {', '.join(map(str, written))} ({len(run.cells)} cells)")
    if changes_md is not None:
        print(changes_md if not args.print else "", end="")
    for p in run.problems:
        print(f"warning: {p}", file=sys.stderr)
    return 1 if changed and args.fail_on_change else 0


def _compare_inputs(args: argparse.Namespace) -> tuple[RunResults, RunResults, str]:
    """(row run, reference run, reference distro id), or one UsageError naming the option and the fix."""
    from runner import compare

    run = load_run(_run_dir(args.run_dir, args.reports))
    ref_run = load_run(_run_dir(args.reference, args.reports)) if args.reference else run
    distros = {str(c.cell.get("distro")) for c in run.cells}
    if args.row not in distros:
        raise UsageError(f"compare: {run.run_dir} has no cell of the row {args.row!r}"
                         f"{did_you_mean(args.row, distros)}",
                         fix=f"name a distro of that run ({', '.join(sorted(distros)) or 'it has no cells'}), or pass "
                             f"the run that measured {args.row}")
    reference = args.against
    if reference is None:
        known = {str(c.cell.get("distro")): (str(c.cell.get("distro_name")), str(c.cell.get("release")))
                 for c in [*ref_run.cells, *run.cells]}
        with contextlib.suppress(FatalError):  # matrix.toml names releases no result holds yet: it is optional
            cfg = config_mod.load(_matrix_path(args))
            known = {**{d.id: (d.name, d.release) for d in cfg.distros.values()}, **known}
        reference = compare.previous_release(args.row, known)
        if reference is None:
            raise UsageError(f"compare: no earlier release of {known[args.row][0]} than {args.row} in "
                             f"{_matrix_path(args)} or the results", fix="name the reference row: --against DISTRO")
    if not any(c.cell.get("distro") == reference for c in ref_run.cells):
        where = "--reference " + str(ref_run.run_dir) if args.reference else f"the run {run.run_dir}"
        raise UsageError(f"compare: {where} has no cell of the reference row {reference!r}",
                         fix=f"run its cells (--select '{reference}/...'), pass a results directory that has them "
                             f"with --reference DIR, or name another row with --against")
    return run, ref_run, reference


def cmd_compare(args: argparse.Namespace) -> int:
    from runner import compare

    run, ref_run, reference = _compare_inputs(args)
    result = compare.compare(args.row, run.cells, reference, ref_run.cells,
                             row_source=f"run {run.meta.get('run_id', run.run_dir.name)} ({run.run_dir})",
                             reference_source=f"run {ref_run.meta.get('run_id', ref_run.run_dir.name)} "
                                              f"({ref_run.run_dir})")
    text = json.dumps(result.to_dict(), indent=2) if args.json else compare.markdown(result)
    if args.output:
        _write_output(Path(args.output), text + "\n")
    if args.html:
        _write_output(Path(args.html), compare.html_page(result))
    print(text)
    for p in [*run.problems, *(ref_run.problems if ref_run is not run else [])]:
        print(f"warning: {p}", file=sys.stderr)
    return 1 if args.fail_on_difference and result.counted else 0


def cmd_merge(args: argparse.Namespace) -> int:
    from runner import merge
    from runner.render import publish

    run = merge.merge(args.dirs, Path(args.reports), args.run_id)  # an unwritable output: UsageError
    try:
        publish.publish(run, Path(args.reports))
    except OSError as e:
        raise UsageError(f"cannot write the merged reports to {e.filename or args.reports}: {e.strerror or e}",
                         fix="pass a writable --reports directory") from e
    print(markdown.compat_table(run.cells))
    print(f"\nmerged {len(run.meta['shards'])} runs: {markdown.summary_line(run.cells)}")
    for s in run.meta["shards"]:
        print(f"  {s['run_id']}: {s['cells']} cells from {s['source']} ({s['host'].get('arch', '?')} host)")
    for p in run.problems:
        print(f"warning: {p}", file=sys.stderr)
    print(f"report: {Path(args.reports) / 'matrix.md'}  (run dir {run.run_dir})")
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    from runner import buildrun, images

    if args.run is not None:
        check_run_id(args.run, "--run")
    for engine in args.engine or [Engine.DOCKER.value]:
        if Engine(engine).is_guest:  # a guest boot leaves only its job directory (overlay) if it was killed
            from runner import guest

            print(f"{engine}: removed {guest.sweep_stale_jobs()} job directories (overlays) of runs that are gone")
            continue
        try:
            d = Driver(Engine(engine))
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
    return 0


def _clean_engine(d: Driver, args: argparse.Namespace) -> dict[str, int]:
    """--run ID: that run's resources. --all: every run's, live ones too (said so). Neither: only runs whose
    runner process is gone; a live run, on this host or another, keeps everything."""
    from runner import buildrun
    from runner.resources import live_runs, sweep_stale_runs

    if args.run or args.all:
        live = [] if args.run else live_runs(d)
        removed = d.sweep({LABEL_RUN: args.run} if args.run else {LABEL_MANAGED: "1"})
        if d.engine is Engine.DOCKER:
            removed["build records"] = buildrun.prune_build_records(d, args.run)
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

    return doctor.run(_matrix_path(args), debug=args.debug)


def cmd_bench(args: argparse.Namespace) -> int:
    from runner import bench

    if not 1 <= args.reps <= MAX_REPS:  # each rep is minutes of builds: a typo of 5000 would run for days
        raise UsageError(f"--reps {args.reps}: not between 1 and {MAX_REPS}", fix="e.g. --reps 5 (the default)")
    config_mod.load(_matrix_path(args))  # a bad matrix is exit 2 before any engine work
    Driver(Engine.DOCKER).check()
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
    _add_selection(p)
    p.add_argument("--json", action="store_true",
                   help="print the plan as JSON (schema: runner/schemas/plan.schema.json)")
    p.add_argument("--workers", type=_positive_workers, metavar="N",
                   help="estimate the wall for N workers (e.g. a CI runner's cores; default: this host's CPUs)")
    p.add_argument("--host-arch", choices=[a.value for a in Arch],
                   help="plan as if on a host of this arch (which arch is emulated; a CI runner of another arch)")
    p.add_argument("--fit-minutes", type=_positive_minutes, metavar="M",
                   help="print only the fewest --shard count whose every shard is estimated within M minutes")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("run", help="run the selected cells and render reports/matrix.md")
    _add_selection(p)
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
    p.set_defaults(func=cmd_merge)

    p = sub.add_parser("clean", help="remove what runs that are gone left behind (containers, volumes, mounts)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--run", help="only this run id's resources (other runs, also live ones, are untouched)")
    which.add_argument("--all", action="store_true",
                       help="every run's resources, also those of runs still going (without --run or --all: only "
                            "runs whose runner process is gone)")
    p.add_argument("--images", action="store_true", help="also remove cached base and cell images")
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
