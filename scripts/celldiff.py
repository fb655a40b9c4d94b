#!/usr/bin/env python3
"""Behaviour check for refactors: run one selection of cells at two commits and compare their cell JSON.

    python scripts/celldiff.py check --before main~3 --after HEAD -- --select 'debian-12/amd64/docker/go1.22/*'
    python scripts/celldiff.py compare reports/celldiff/<before-sha> reports/celldiff/<after-sha>

`check` checks each commit out into a temporary git worktree, runs `go-cache-matrix run` from it (its own
`runner` package first on PYTHONPATH, this checkout's installed dependencies) into reports/celldiff/<sha>/, and
then compares. Arguments after `--` go to `run` for both commits. `compare` takes two run directories (or two
reports dirs holding one run each).

What may differ between two runs of the same behaviour is ignored (IGNORED below, extendable with --ignore):
timings and timestamps, run ids, labels, image, container and volume ids, the guest image's content key and
build notes, host facts. Measured figures inside `reason` texts (decimals, numbers with a unit) are masked;
Go versions, exit codes and counts are compared.
Race outcomes of cells that start builds at once on purpose (RACES: which build compiled what) are left out,
their status kept. Strings are compared with SELinux MCS categories and hex ids (images, layers, cache
entries) masked. Measured floats in observations (seconds, ratios) are compared by type only; `go build -v`
output by its set of lines (parallel compiles end in any order). Everything else must match: status,
observations, the cell's coordinates, the reproduce command.
Exit 0 when the runs agree, 1 when a cell differs or is missing on one side, 2 on bad input.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "reports" / "celldiff"

# Dotted paths (fnmatch globs, matched against the whole path; list items appear as [i]) left out of the
# comparison, with why.
IGNORED: dict[str, str] = {
    "timings": "wall clocks differ run to run",
    "timings.*": "wall clocks differ run to run",
    "started": "timestamp",
    "finished": "timestamp",
    "run_id": "each run has its own",
    "host": "host facts (engine version, load) are the machine's, not the cell's behaviour",
    "host.*": "as above",
    "image.id": "image ids change with each build",
    "image.tag": "tags carry content keys",
    "image.reused": "whether the image cache was warm",
    "image.provision_sec": "timing",
    "image.notes": "build notes (e.g. a cache miss) depend on what was cached",
    "image.notes.*": "as above",
    "*.sec": "a step's duration",
    "*_sec": "durations",
    "*.wall_sec": "a step's duration",
    "*.started": "timestamp",
    "*.finished": "timestamp",
    "*container_id*": "engine ids",
    "*volume_name*": "run-labelled names",
    "*.labels": "run-labelled",
    "*.labels.*": "run-labelled",
    "*.content_key": "the guest image's content key follows its files",
    "*.guest.image*": "the baked guest image's path and key",
    "*.boot_sec": "timing",
    "*.loadavg*": "host load",
    "*.alone*": "who else was running",
    "*.waited_sec": "timing",
    "*base_key": "the guest image's content key (and a rootfs's) follows its recipe files",
    "*.trim_txt_seen": "trim.txt holds the time of the last trim: a timestamp",
    "*.barrier": "the start time a barrier waits for: a timestamp (barrier_met is compared)",
    "*.GOGCCFLAGS": "holds a random temporary directory",
}

# Race outcomes: in cells that start builds at the same time on purpose, which build compiles what (and, for
# `go clean -cache` during builds, which one fails and how) differs between two runs of the same code. The
# status is still compared. Cell-id glob -> dotted path globs.
RACES: dict[str, tuple[str, ...]] = {
    "*/concurrent:*": ("observations.builds*", "observations.failures", "observations.concurrent.failed",
                       "observations.cache_files_before*", "observations.steps.error", "reason"),
    "*/buildkit:shared": ("observations.builds.*_before", "observations.builds.*.mount_empty",
                          "observations.mounts_started_empty", "reason"),
}

_MCS = re.compile(r"(s0):c\d+,c\d+")  # SELinux: each container gets random MCS categories
_HEX = re.compile(r"\b[0-9a-f]{11,}\b")  # image, layer and cache-entry ids
_ENTRY = re.compile(r"/[0-9a-f]{2}/<id>-[ad]\b")  # a GOCACHE entry's path (a sample of entries: any of them)

# Measured figures in a reason: decimals and numbers with a unit. Go versions, exit codes and counts stay.
_NUMBER = re.compile(r"\b\d+\.\d+(?:\s*(?:s|ms|×|x|%|[KMG]i?B)\b)?|\b\d+\s*(?:s|ms|%|[KMG]i?B|B)\b")


def _flatten(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        if not value and path:
            yield path, {}
        for k, v in value.items():
            yield from _flatten(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        if not value:
            yield path, []
        for i, v in enumerate(value):
            yield from _flatten(v, f"{path}[{i}]")
    else:
        yield path, value


def _ignored(path: str, patterns: Mapping[str, str] | tuple[str, ...]) -> bool:
    bare = re.sub(r"\[\d+\]", "", path)  # list positions do not change what a field is
    return any(fnmatch.fnmatchcase(bare, p) for p in patterns)


def _fields(cid: str, cell: Mapping[str, Any], patterns: Mapping[str, str]) -> dict[str, Any]:
    races = tuple(p for glob, paths in RACES.items() if fnmatch.fnmatchcase(cid, glob) for p in paths)
    out: dict[str, Any] = {}
    for path, value in _flatten(cell):
        if _ignored(path, patterns) or _ignored(path, races):
            continue
        # `go build -v` lists packages in the order parallel compiles end: compare a list of them as a set.
        key = re.sub(r"\[\d+\]$", "[]", path) if re.search(r"packages\[\d+\]$", path) else path
        value = _normal(path, value)
        if key != path:
            out.setdefault(key, []).append(value)
            out[key].sort(key=str)
        else:
            out[key] = value
    return out


def _normal(path: str, value: Any) -> Any:
    if isinstance(value, str):
        value = _ENTRY.sub("/<entry>", _HEX.sub("<id>", _MCS.sub(r"\1:c#,c#", value)))
    if path == "reason" and isinstance(value, str):
        return _NUMBER.sub("#", value)
    if path.startswith("observations.") and isinstance(value, float):
        return "<a measured number>"  # seconds, ratios, medians; counts (compiled, files, bytes) are ints and compared
    if path.endswith(("stderr", "stdout")) and isinstance(value, str):
        return sorted(value.splitlines())  # `go build -v` prints packages in the order parallel compiles end
    return value


def load_cells(run: Path) -> dict[str, dict[str, Any]]:
    """Cell JSON of a run directory (or of the single run under a reports dir), by cell id."""
    cells_dir = run / "cells"
    if not cells_dir.is_dir():
        runs = sorted(p for p in (run / "runs").glob("*") if (p / "cells").is_dir()) if (run / "runs").is_dir() else []
        if len(runs) != 1:
            raise SystemExit(f"celldiff: error: {run} is not a run directory (no cells/) and holds "
                             f"{len(runs)} runs under runs/\n  fix: pass reports/runs/<run-id>")
        cells_dir = runs[0] / "cells"
    out: dict[str, dict[str, Any]] = {}
    for p in sorted(cells_dir.glob("*.json")):
        try:
            data = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise SystemExit(f"celldiff: error: {p}: not readable JSON ({e})") from None
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            out[data["id"]] = data
    return out


def compare(before: Mapping[str, Mapping[str, Any]], after: Mapping[str, Mapping[str, Any]],
            patterns: Mapping[str, str] = IGNORED) -> list[tuple[str, str, Any, Any]]:
    """(cell id, dotted path, before, after) for every difference outside the ignored paths."""
    diffs: list[tuple[str, str, Any, Any]] = []
    for cid in sorted(set(before) | set(after)):
        if cid not in before or cid not in after:
            diffs.append((cid, "(cell)", "present" if cid in before else "missing",
                          "present" if cid in after else "missing"))
            continue
        a, b = _fields(cid, before[cid], patterns), _fields(cid, after[cid], patterns)
        for path in sorted(set(a) | set(b)):
            if a.get(path, "<absent>") != b.get(path, "<absent>"):
                diffs.append((cid, path, a.get(path, "<absent>"), b.get(path, "<absent>")))
    return diffs


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, text=True, capture_output=True).stdout.strip()


def run_at(ref: str, run_args: list[str]) -> Path:
    """Run the selection with the code of `ref`; its run directory."""
    try:
        sha = _git("rev-parse", "--verify", f"{ref}^{{commit}}")
    except subprocess.CalledProcessError:
        raise SystemExit(f"celldiff: error: --before/--after {ref!r} is not a commit of this repository\n"
                         f"  fix: a branch, tag or sha that `git rev-parse` knows") from None
    reports = OUT / sha[:12]
    # One run per call: a second check of the same commit (or --before X --after X, a noise check) gets its own.
    n = 1 + sum(1 for _ in (reports / "runs").glob(f"celldiff-{sha[:12]}*")) if (reports / "runs").is_dir() else 1
    run_id = f"celldiff-{sha[:12]}" + (f"-{n}" if n > 1 else "")
    with tempfile.TemporaryDirectory(prefix="gcm-celldiff-") as tmp:
        tree = Path(tmp) / "src"
        _git("worktree", "add", "--detach", str(tree), sha)
        try:
            env = {**os.environ, "PYTHONPATH": str(tree)}
            cmd = [sys.executable, "-m", "runner", "run", "--reports", str(reports), "--run-id", run_id, *run_args]
            print(f"celldiff: {ref} ({sha[:12]}): {' '.join(cmd[1:])}", flush=True)
            code = subprocess.run(cmd, cwd=tree, env=env).returncode
            if code not in (0, 1):  # 1: some cell failed, which is behaviour too
                raise SystemExit(f"celldiff: error: the run at {ref} exited {code}")
        finally:
            _git("worktree", "remove", "--force", str(tree))
    return reports / "runs" / run_id


def report(diffs: list[tuple[str, str, Any, Any]], n_before: int, n_after: int,
           patterns: Mapping[str, str]) -> int:
    print(f"celldiff: {n_before} cells before, {n_after} after; ignored: {', '.join(sorted(patterns))}")
    if not diffs:
        print("celldiff: no difference outside the ignored fields")
        return 0
    cells = sorted({d[0] for d in diffs})
    print(f"celldiff: {len(diffs)} difference(s) in {len(cells)} cell(s):")
    for cid, path, a, b in diffs:
        print(f"  {cid}  {path}: {json.dumps(a, default=str)[:200]} -> {json.dumps(b, default=str)[:200]}")
    return 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="celldiff", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="verb", required=True)
    c = sub.add_parser("compare", help="compare two run directories")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    k = sub.add_parser("check", help="run the selection at two commits, then compare")
    k.add_argument("--before", required=True, help="commit before the change (e.g. main~3)")
    k.add_argument("--after", default="HEAD", help="commit after it (default: HEAD)")
    k.add_argument("run_args", nargs=argparse.REMAINDER, help="-- then arguments for `go-cache-matrix run`")
    for sp in (c, k):
        sp.add_argument("--ignore", action="append", default=[], metavar="GLOB",
                        help="one more dotted path glob to leave out, e.g. 'observations.guest.*'")
    a = p.parse_args(argv)
    patterns = {**IGNORED, **{g: "--ignore" for g in a.ignore}}
    if a.verb == "check":
        run_args = a.run_args[1:] if a.run_args[:1] == ["--"] else a.run_args
        before_dir, after_dir = run_at(a.before, run_args), run_at(a.after, run_args)
    else:
        before_dir, after_dir = a.before, a.after
        for d in (before_dir, after_dir):
            if not d.is_dir():
                p.error(f"{d}: no such directory (fix: a run directory, reports/runs/<run-id>)")
    before, after = load_cells(before_dir), load_cells(after_dir)
    return report(compare(before, after, patterns), len(before), len(after), patterns)


if __name__ == "__main__":
    sys.exit(main())
