"""Build the in-container probe (main.go) once per (source, Go version, arch) with the host's Go.

CGO_ENABLED=0 makes it a static binary that runs in any of the distros, glibc or musl.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from runner.model import Arch
from runner.paths import cache_dir, locked
from runner.toolchains import GoTree

SOURCE = Path(__file__).resolve().parent


class ProbeBuildError(Exception):
    pass


def _key(host_go: GoTree) -> str:
    h = hashlib.sha256(host_go.version.encode())
    for name in ("go.mod", "main.go"):
        h.update((SOURCE / name).read_bytes())
    return h.hexdigest()[:16]


def ensure(host_go: GoTree, arch: Arch) -> Path:
    out = cache_dir() / "probe" / _key(host_go) / f"probe-{arch.value}"
    if out.exists():
        return out
    with locked(f"probe-{arch.value}"):
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
            [str(host_go.goroot / "bin" / "go"), "build", "-trimpath", "-o", str(tmp), "."],
            cwd=SOURCE, env=env, capture_output=True, text=True, timeout=600,
        )
        if proc.returncode != 0:
            raise ProbeBuildError(f"building the probe for {arch.value} failed: {proc.stderr.strip()}")
        tmp.rename(out)
        return out
