"""Build the GOCACHEPROG program (main.go) once per (source, Go version, arch) with the host's Go.

Like the probe it is static (CGO_ENABLED=0); the cell mounts it at /opt/gcm/cacheprog.
"""

from __future__ import annotations

from pathlib import Path

from runner.model import Arch
from runner.probe import build_static
from runner.toolchains import GoTree

SOURCE = Path(__file__).resolve().parent
TARGET = "/opt/gcm/cacheprog"  # where every cell container has it


def ensure(host_go: GoTree, arch: Arch) -> Path:
    """Raises runner.probe.ProbeBuildError when the build fails."""
    return build_static(SOURCE, "cacheprog", host_go, arch)
