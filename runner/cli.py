"""go-cache-matrix: plan | run | report | clean | doctor.

Every tool or input problem is a FatalError, caught once here: one message, the fix, an exit code
(see runner.errors). --debug shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import docker.errors
import requests.exceptions

from runner import config as config_mod
from runner import host, plan
from runner.engine import LABEL_MANAGED, LABEL_RUN, Driver
from runner.errors import EngineUnavailable, FatalError, UsageError
from runner.model import Arch, Engine
from runner.render import markdown
from runner.results import latest_run, load_run

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
    p.add_argument("--engine", action="append", default=[], choices=[e.value for e in Engine])
    p.add_argument("--arch", action="append", default=[], choices=[a.value for a in Arch],
                   help="only this arch; repeatable ($GCM_ARCHES)")
    p.add_argument("--endpoint", action="append", default=[], metavar="ARCH=URL",
                   help="run ARCH's cells natively on the engine at URL (unix://, tcp://, context:NAME); repeatable "
                        "($GCM_ENDPOINTS, comma-separated; overrides settings.endpoints)")
    p.add_argument("--distro", action="append", default=[], metavar="NAME=IMAGE_REF",
                   help="add a row for an image matrix.toml does not list, or try a new image for a listed NAME; "
                        "repeatable")
    p.add_argument("--shard", metavar="I/N", help="only shard I of N, balanced by expected cost ($GCM_SHARD); "
                                                 "join the shards' results with `merge`")


def _choices(args: argparse.Namespace) -> plan.Choices:
    return plan.Choices(
        profile=args.profile or os.environ.get("GCM_PROFILE") or None,
        select=tuple(args.select) or config_mod.env_list("GCM_SELECT"),
        skip=tuple(args.skip) or config_mod.env_list("GCM_SKIP"),
        engines=tuple(Engine(e) for e in args.engine),
        arches=tuple(Arch(a) for a in args.arch) or tuple(Arch(a) for a in config_mod.env_list("GCM_ARCHES")),
        endpoints=config_mod.parse_endpoint_args(tuple(args.endpoint) or config_mod.env_list("GCM_ENDPOINTS"),
                                                 "--endpoint/GCM_ENDPOINTS"),
        shard=plan.parse_shard(shard) if (shard := args.shard or os.environ.get("GCM_SHARD")) else None,
        distros=tuple(args.distro),
    )


def cmd_plan(args: argparse.Namespace) -> int:
    cfg = config_mod.load(_matrix_path(args))
    choices = _choices(args)
    cells = plan.build_plan(cfg, choices, host_arch=Arch.host())
    profile = choices.profile or cfg.settings.default_profile
    if args.json:
        print(json.dumps(plan.plan_to_dict(cells, host_arch=Arch.host(), profile=profile), indent=2))
        return 0
    for c in cells:
        note = f"  [{c.preset[0].value}: {c.preset[1]}]" if c.preset else ("  (emulated)" if c.emulated else "")
        print(f"{c.id}{note}" + (f"  (on {c.endpoint})" if c.endpoint else ""))
    shard = f", shard {choices.shard[0]}/{choices.shard[1]}" if choices.shard else ""
    print(f"# {len(cells)} cells, profile {profile}{shard}, host arch {Arch.host().value}", file=sys.stderr)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    import pytest

    matrix = _matrix_path(args)
    cfg = config_mod.load(matrix)
    choices = _choices(args)
    cells = plan.build_plan(cfg, choices, host_arch=Arch.host())  # bad input fails here, before pytest
    engines = {c.engine for c in cells if c.preset is None and c.endpoint is None}
    for engine in sorted(engines):
        Driver(engine).check()  # no engine at all: one clear error (exit 4), not N error cells
    workers = str(args.workers) if args.workers is not None else ("auto" if len(cells) > 1 else "0")
    pytest_args = [
        matrix, "-p", "runner.pytest_plugin", "-p", "no:cacheprovider",
        "-c", os.devnull, "--rootdir", str(Path(matrix).resolve().parent),
        "--gcm-matrix", matrix, "--gcm-reports", args.reports, "-n", str(workers), "-rfE",
        "-o", "console_output_style=classic",
    ]
    for flag, values in (("--gcm-select", choices.select), ("--gcm-skip", choices.skip),
                         ("--gcm-engine", [e.value for e in choices.engines]),
                         ("--gcm-arch", [a.value for a in choices.arches]),
                         ("--gcm-endpoint", [f"{a.value}={u}" for a, u in choices.endpoints.items()]),
                         ("--gcm-shard", ["/".join(map(str, choices.shard))] if choices.shard else []),
                         ("--gcm-distro", choices.distros)):
        for v in values:
            pytest_args += [flag, v]
    if choices.profile:
        pytest_args += ["--gcm-profile", choices.profile]
    if args.run_id:
        pytest_args += ["--gcm-run-id", args.run_id]
    pytest_args += ["-v"] if not args.quiet else ["-q"]
    if args.junitxml:
        pytest_args += ["--junitxml", args.junitxml]
    code = pytest.main(pytest_args)
    if code == pytest.ExitCode.INTERRUPTED:
        return 130
    return 0 if code == pytest.ExitCode.OK else 1


def _run_dir(arg: str | None, reports: str) -> Path:
    if arg:
        p = Path(arg)
        if (p / "run.json").exists() or (p / "cells").is_dir():
            return p
        if (Path(reports) / "runs" / arg).is_dir():
            return Path(reports) / "runs" / arg
        raise UsageError(f"{arg} is not a run directory (no run.json or cells/ inside)",
                         fix=f"pass a directory under {reports}/runs/, or a run id")
    latest = latest_run(Path(reports))
    if latest is None:
        raise UsageError(f"no runs under {reports}/runs", fix="run `go-cache-matrix run` (or `nox -s matrix`) first")
    return latest


def cmd_report(args: argparse.Namespace) -> int:
    from runner.render import baseline, html, junit

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
    out.write_text(text)
    written = [out]
    for path, render in ((args.html, html.render), (args.junit, junit.render)):
        if path:
            Path(path).write_text(render(run))
            written.append(Path(path))
    if args.github_summary == "$GITHUB_STEP_SUMMARY":
        args.github_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if not args.github_summary:
            raise UsageError("--github-summary without a PATH, and $GITHUB_STEP_SUMMARY is not set",
                             fix="pass a path: --github-summary summary.md")
    if args.github_summary:
        # Appended, as GitHub Actions expects for $GITHUB_STEP_SUMMARY.
        with open(args.github_summary, "a", encoding="utf-8") as fh:
            fh.write(markdown.github_summary(run) + ("\n" + changes_md if changes_md else "") + "\n")
        written.append(Path(args.github_summary))
    print(text if args.print else f"wrote {', '.join(map(str, written))} ({len(run.cells)} cells)")
    if changes_md is not None:
        print(changes_md if not args.print else "", end="")
    for p in run.problems:
        print(f"warning: {p}", file=sys.stderr)
    return 1 if changed and args.fail_on_change else 0


def cmd_merge(args: argparse.Namespace) -> int:
    from runner import merge
    from runner.render import publish

    run = merge.merge(args.dirs, Path(args.reports), args.run_id)
    publish.publish(run, Path(args.reports))
    print(markdown.compat_table(run.cells))
    print(f"\nmerged {len(run.meta['shards'])} runs: {markdown.summary_line(run.cells)}")
    for s in run.meta["shards"]:
        print(f"  {s['run_id']}: {s['cells']} cells from {s['source']} ({s['host'].get('arch', '?')} host)")
    for p in run.problems:
        print(f"warning: {p}", file=sys.stderr)
    print(f"report: {Path(args.reports) / 'matrix.md'}  (run dir {run.run_dir})")
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    from runner import images

    for engine in args.engine or [Engine.DOCKER.value]:
        try:
            d = Driver(Engine(engine))
            d.check()
        except EngineUnavailable as e:
            print(f"{engine}: skipped ({e.message})")
            continue
        match = {LABEL_MANAGED: "1"} if not args.run else {LABEL_RUN: args.run}
        try:
            removed = d.sweep(match)
            if args.images:
                removed["images"] = images.remove_cached(d)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise EngineUnavailable(f"{engine}: clean failed: {e}", fix="check the engine, then run clean again") from e
        print(f"{engine}: removed " + ", ".join(f"{n} {k}" for k, n in removed.items()))
    from runner.resources import unmount_leftovers

    print(f"host: unmounted {unmount_leftovers(args.run)} loop filesystems left by killed runs")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    host_arch = Arch.host()
    facts = host.fingerprint()
    print(f"host: {facts['os']}, kernel {facts['kernel']}, {host_arch.value}, {facts['cpus']} CPUs, "
          f"SELinux {facts['selinux']}, AppArmor {facts['apparmor']}")
    problems = 0
    for engine in Engine:
        try:
            d = Driver(engine)
            info = {**d.check(), **d.storage_facts()}
            print(f"{engine}: {info['version']} (API {info['api_version']}), storage {info['storage_driver']}, "
                  f"cgroup v{info['cgroup_version']}")
        except EngineUnavailable as e:
            print(f"{engine}: unavailable: {e.message}\n  fix: {e.fix}")
            problems += engine is Engine.DOCKER
    from runner.execute import RunContext

    ctx = RunContext(run_id=f"doctor-{os.getpid()}", run_dir=Path(os.devnull), cfg=config_mod.load(_matrix_path(args)),
                     images_dir=Path("images"), host_arch=host_arch, profile="")
    for arch in Arch:
        print(ctx.arch_check(arch, Engine.DOCKER, None).line())
    for arch, url in ctx.cfg.settings.endpoints.items():
        print(f"endpoint {ctx.arch_check(arch, Engine.DOCKER, url).line()}")
    return 1 if problems else 0


def cmd_bench(args: argparse.Namespace) -> int:
    from runner import bench

    Driver(Engine.DOCKER).check()
    return bench.main(_matrix_path(args), args.reports, args.reps, args.skip_qemu)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="go-cache-matrix", description=__doc__.splitlines()[0], epilog=EPILOG)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("plan", help="print the expanded matrix (no engine needed)")
    _add_selection(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("run", help="run the selected cells and render reports/matrix.md")
    _add_selection(p)
    p.add_argument("--reports", default="reports", help="output directory (default: reports)")
    p.add_argument("-n", "--workers", default=None, help="pytest-xdist workers (default: auto; 0 = in-process)")
    p.add_argument("--run-id")
    p.add_argument("--junitxml")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("report", help="re-render a run's report from its result files (no engine needed)")
    p.set_defaults(github_summary=None)
    p.add_argument("run_dir", nargs="?", help="run directory or run id (default: the newest run)")
    p.add_argument("--reports", default="reports")
    p.add_argument("-o", "--output")
    p.add_argument("--print", action="store_true", help="print the Markdown")
    p.add_argument("--html", metavar="PATH", help="also write the self-contained HTML report here")
    p.add_argument("--junit", metavar="PATH", help="also write JUnit XML (one testcase per cell) here")
    p.add_argument("--github-summary", metavar="PATH", nargs="?", const="$GITHUB_STEP_SUMMARY",
                   help="append a compact summary (default path: $GITHUB_STEP_SUMMARY)")
    p.add_argument("--baseline", metavar="OLD_RUN", help="list exactly the cells whose status changed since OLD_RUN")
    p.add_argument("--fail-on-change", action="store_true", help="with --baseline: exit 1 when a cell changed")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("merge", help="join result directories of several runs (shards, runners) into one run")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="run directories, or directories holding them")
    p.add_argument("--reports", default="reports", help="writes REPORTS/runs/RUN_ID and REPORTS/matrix.md")
    p.add_argument("--run-id", default="merged")
    p.set_defaults(func=cmd_merge)

    p = sub.add_parser("clean", help="remove containers and volumes labelled by this tool")
    p.add_argument("--run", help="only this run id")
    p.add_argument("--images", action="store_true", help="also remove cached base and cell images")
    p.add_argument("--engine", action="append", choices=[e.value for e in Engine])
    p.set_defaults(func=cmd_clean)

    p = sub.add_parser("bench", help="the runner against a bare `docker run` loop and the host, as ratios")
    p.add_argument("--matrix", help="matrix file (default: $GCM_MATRIX or ./matrix.toml)")
    p.add_argument("--reports", default="reports", help="writes bench.md and bench.json here")
    p.add_argument("--reps", type=int, default=5, help="interleaved repetitions (default 5)")
    p.add_argument("--skip-qemu", action="store_true", help="do not measure the QEMU factor (minutes per run)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("doctor", help="host fingerprint, engines, and a preflight per arch, with the fix")
    p.add_argument("--matrix", help="matrix file (default: $GCM_MATRIX or ./matrix.toml)")
    p.set_defaults(func=cmd_doctor)
    return parser


def _sigterm_as_interrupt(signum: int, frame: object) -> None:
    # A CI cancel or `kill` should clean up like Ctrl-C: containers removed, partial report written.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except FatalError as e:
        if args.debug:
            raise
        print(f"go-cache-matrix: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("go-cache-matrix: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `plan | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
