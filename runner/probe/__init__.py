"""Build the in-container probe (main.go) once per (source, Go version, arch) with the host's Go.

CGO_ENABLED=0 makes it a static binary that runs in any of the distros, glibc or musl.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from runner.errors import CellProblem
from runner.model import Arch, Status
from runner.paths import cache_dir, locked
from runner.toolchains import GoTree

SOURCE = Path(__file__).resolve().parent


class ProbeBuildError(CellProblem):
    """The probe (or cacheprog) did not cross-compile: the tool or host broke (`error`)."""

    status = Status.ERROR


def _key(host_go: GoTree, source: Path) -> str:
    h = hashlib.sha256(host_go.version.encode())
    for name in ("go.mod", "main.go"):
        h.update((source / name).read_bytes())
    return h.hexdigest()[:16]


def ensure(host_go: GoTree, arch: Arch) -> Path:
    return build_static(SOURCE, "probe", host_go, arch)


def build_static(source: Path, name: str, host_go: GoTree, arch: Arch) -> Path:
    """Build the main package in `source` (go.mod + main.go, standard library only) for linux/arch, cached."""
    out = cache_dir() / name / _key(host_go, source) / f"{name}-{arch.value}"
    if out.exists():
        return out
    with locked(f"{name}-{arch.value}"):
        if out.exists():
            return out
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + f".tmp{os.getpid()}")
        env = {
            **os.environ,
            "CGO_ENABLED": "0", "GOOS": "linux", "GOARCH": arch.to_go(),
            "GOTOOLCHAIN": "local", "GOPROXY": "off", "GOFLAGS": "-mod=mod",
            "GOCACHE": str(cache_dir() / "host-gocache"),
            "GOPATH": str(cache_dir() / "host-gopath"),
        }
        proc = subprocess.run(
            # -buildvcs=false: VCS stamping runs git in the checkout, which fails (exit 128) where the checkout is
            # another user's (git's safe.directory: a rootless run from root's clone) or has no git; the binary
            # is keyed by its source's content, not by a commit.
            [str(host_go.goroot / "bin" / "go"), "build", "-trimpath", "-buildvcs=false", "-o", str(tmp), "."],
            cwd=source, env=env, capture_output=True, text=True, timeout=600,
        )
        if proc.returncode != 0:
            raise ProbeBuildError(f"building the {name} for {arch.value} failed: {proc.stderr.strip()}")
        tmp.rename(out)
        return out
