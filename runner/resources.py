"""Per-cell resources behind a scenario's MountSpecs: bind dirs, named volumes, loop filesystems.

Everything is created on first use, labelled with the run and cell, and released when the cell's
ExitStack closes — also when the cell fails half-way. Loop filesystems are images in the cell's
data dir, mounted with `mount -o loop` (autoclear: the loop device goes with the unmount).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import docker.errors

from runner.engine import Driver, Mount
from runner.scenarios import MountSpec
from runner.selinux import relabel_option

MKFS = {
    "ext4": (["mkfs.ext4", "-q", "-F"], "e2fsprogs"),
    "xfs": (["mkfs.xfs", "-q", "-f"], "xfsprogs"),
    "btrfs": (["mkfs.btrfs", "-q", "-f"], "btrfs-progs"),
}
LOOP_SIZE = 512 * 1024 * 1024  # xfs needs >= 300 MiB; sparse, so cheap


class CellUnavailable(Exception):
    """A capability this cell needs is missing on this host; the message says which and the fix."""


class CellResources:
    def __init__(self, driver: Driver, data_dir: Path, labels: dict[str, str], stack: contextlib.ExitStack) -> None:
        self.driver, self.data, self.labels, self.stack = driver, data_dir, labels, stack
        self._volumes: dict[str, str] = {}
        self._loops: dict[str, Path] = {}
        self.facts: dict[str, str] = {}  # what was created, for the result

    def mount(self, spec: MountSpec) -> Mount:
        if spec.kind == "bind":
            path = self.data / spec.name
            path.mkdir(parents=True, exist_ok=True)
            relabel = relabel_option(path, self.data, spec.relabel) if spec.relabel else ""
            return Mount(source=str(path), target=spec.target, read_only=spec.read_only, relabel=relabel)
        if spec.kind == "volume":
            return Mount(source=self.volume(spec.name), target=spec.target, read_only=spec.read_only, volume=True)
        if spec.kind == "tmpfs":
            return Mount(source="", target=spec.target, tmpfs=spec.options or "size=1g")
        if spec.kind == "loop":
            return Mount(source=str(self.loop(spec.name)), target=spec.target, read_only=spec.read_only)
        raise ValueError(f"unknown mount kind {spec.kind!r}")

    def volume(self, name: str) -> str:
        if name not in self._volumes:
            vol = self.driver.client.volumes.create(labels=self.labels)
            self._volumes[name] = str(vol.name)

            def remove(v: object = vol) -> None:
                with contextlib.suppress(docker.errors.APIError):
                    v.remove(force=True)  # type: ignore[attr-defined]

            self.stack.callback(remove)
        return self._volumes[name]

    def loop(self, fs: str) -> Path:
        if fs in self._loops:
            return self._loops[fs]
        if fs not in MKFS:
            raise ValueError(f"unknown filesystem {fs!r}")
        cmd, package = MKFS[fs]
        if shutil.which(cmd[0]) is None:
            raise CellUnavailable(f"{cmd[0]} is not installed (fix: `apt-get install {package}`)")
        if os.geteuid() != 0:
            raise CellUnavailable("loop-mounting a filesystem image needs root")
        self.data.mkdir(parents=True, exist_ok=True)
        image, mnt = self.data / f"{fs}.img", self.data / f"{fs}-mnt"
        with open(image, "wb") as fh:
            fh.truncate(LOOP_SIZE)
        self.stack.callback(image.unlink, missing_ok=True)
        made = subprocess.run([*cmd, str(image)], capture_output=True, text=True)
        if made.returncode != 0:
            raise CellUnavailable(f"`{' '.join(cmd)}` failed: {made.stderr.strip()}")
        mnt.mkdir()
        mounted = subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], capture_output=True, text=True)
        if mounted.returncode != 0:
            raise CellUnavailable(f"cannot loop-mount a {fs} image here: {mounted.stderr.strip()} "
                                  "(needs root and free /dev/loop* devices)")
        self.stack.callback(_umount, mnt)
        self._loops[fs] = mnt
        self.facts[f"loop_{fs}"] = f"{LOOP_SIZE >> 20} MiB image, mounted with -o loop"
        return mnt


def _umount(mnt: Path) -> None:
    if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def leftover_loop_mounts(run_id: str | None = None, mounts: str | None = None) -> list[str]:
    """Loop filesystems a killed run left mounted: <reports>/runs/<run>/work/<cell>/data/<fs>-mnt."""
    found = []
    if mounts is None:
        mounts = Path("/proc/self/mounts").read_text()
    for line in mounts.splitlines():
        if line.strip():
            point = Path(line.split()[1])
            parts = point.parts
            if (len(parts) >= 7 and parts[-1].endswith("-mnt") and parts[-1][:-4] in MKFS and parts[-2] == "data"
                    and parts[-4] == "work" and parts[-6] == "runs" and (run_id is None or parts[-5] == run_id)):
                found.append(str(point))
    return found


def unmount_leftovers(run_id: str | None = None) -> int:
    points = leftover_loop_mounts(run_id)
    for p in points:
        _umount(Path(p))
    return len(points)


def apply_host_actions(data: Path, actions: tuple[dict[str, str], ...]) -> None:
    """Scenario-declared changes to the cell's data dir between phases (never outside it)."""
    for a in actions:
        target = (data / a["path"]).resolve()
        if data.resolve() not in target.parents:
            raise ValueError(f"host action outside the cell's data dir: {a}")
        if a["op"] == "remove":
            target.unlink(missing_ok=True)
        elif a["op"] == "write":
            target.write_text(a["data"])
        else:
            raise ValueError(f"unknown host action {a}")
