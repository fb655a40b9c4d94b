"""The CLI's commands that read results only: report, compare, merge (no engine, no matrix needed).

Split from runner.cli (which builds the parser and catches FatalError once); every problem here is a
UsageError naming the path or option and the fix.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import sys
from pathlib import Path

from runner import config as config_mod
from runner import findings, options
from runner.errors import FatalError, UsageError, did_you_mean
from runner.paths import run_id_problem
from runner.render import markdown
from runner.results import RunResults, latest_run, load_run


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
    if args.json:  # one JSON object on stdout, nothing else (runner.json_out)
        from runner import json_out

        print(json_out.dumps(json_out.run_summary(run, written=written, changed=changed if args.baseline else None)))
    else:
        print(text if args.print else f"wrote {', '.join(map(str, written))} ({len(run.cells)} cells)")
    if changes_md is not None and not args.json:
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
            cfg = config_mod.load(options.matrix_path(args.matrix))
            known = {**{d.id: (d.name, d.release) for d in cfg.distros.values()}, **known}
        reference = compare.previous_release(args.row, known)
        if reference is None:
            raise UsageError(f"compare: no earlier release of {known[args.row][0]} than {args.row} in "
                             f"{options.matrix_path(args.matrix)} or the results",
                             fix="name the reference row: --against DISTRO")
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
    if args.json:  # one JSON object on stdout; warnings stay on stderr
        from runner import json_out

        print(json_out.dumps(json_out.merge_summary(run, Path(args.reports))))
        for p in run.problems:
            print(f"warning: {p}", file=sys.stderr)
        return 0
    print(markdown.compat_table(run.cells))
    print(f"\nmerged {len(run.meta['shards'])} runs: {markdown.summary_line(run.cells)}")
    for s in run.meta["shards"]:
        print(f"  {s['run_id']}: {s['cells']} cells from {s['source']} ({s['host'].get('arch', '?')} host)")
    for p in run.problems:
        print(f"warning: {p}", file=sys.stderr)
    print(f"report: {Path(args.reports) / 'matrix.md'}  (run dir {run.run_dir})")
    return 0
