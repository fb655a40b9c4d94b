"""Per-cell resources behind a scenario's MountSpecs: bind dirs, named volumes, loop filesystems.

Everything is created on first use, labelled with the run and cell, and released when the cell's
ExitStack closes — also when the cell fails half-way. Loop filesystems are images in the cell's
data dir, mounted with `mount -o loop` (autoclear: the loop device goes with the unmount).

Every labelled resource also names its owner (LABEL_OWNER: host, pid and start time of the run's controller
process). A run's start-up sweep removes what runs whose owner process is gone left behind (a SIGKILL, an
OOM kill, a lost CI runner), and never touches a live run's resources: see runner.sweep.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

from runner.engine import LABEL_PREFIX, Driver, Mount
from runner.errors import CellProblem
from runner.model import Status
from runner.scenarios import MountSpec
from runner.selinux import relabel_option

MKFS = {
    "ext4": (["mkfs.ext4", "-q", "-F"], "e2fsprogs"),
    "xfs": (["mkfs.xfs", "-q", "-f"], "xfsprogs"),
    "btrfs": (["mkfs.btrfs", "-q", "-f"], "btrfs-progs"),
}
LOOP_SIZE = 512 * 1024 * 1024  # xfs needs >= 300 MiB; sparse, so cheap


class CellUnavailable(CellProblem):
    """A capability this cell needs is missing on this host; the message says which and the fix."""

    status = Status.UNAVAILABLE


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
            self._volumes[name] = self.driver.create_volume(self.labels)
            self.stack.callback(self.driver.remove_volume, self._volumes[name])
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


def run_is_live(run_dir: Path) -> bool:
    """The run's controller (run.json's owner) is a live process on this host. A run without a readable owner
    (killed before it wrote run.json, an older version, a damaged file) is not."""
    try:
        owner = json.loads((run_dir / "run.json").read_text()).get("owner")
    except (OSError, ValueError, AttributeError, RecursionError):
        return False
    return isinstance(owner, str) and not owner_gone(owner)


def unmount_leftovers(run_id: str | None = None, *, spare_live: bool = False) -> int:
    """Unmount the loop filesystems runs left (one run's, or every run's); spare_live: not those of a run whose
    controller is alive (its cells are using them)."""
    points = [p for p in leftover_loop_mounts(run_id) if not (spare_live and run_is_live(Path(p).parents[3]))]
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


# ---------------------------------------------------------------- owners: which run's resources are stale
LABEL_OWNER = f"{LABEL_PREFIX}.owner"  # "<hostname>/<pid>/<start time>" of the run's controller process


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot, /proc/<pid>/stat field 22); None if it is gone or a
    zombie. Together with the pid it names one process: a reused pid has another start time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) ": state is field 3, starttime field 22
    if not fields or fields[0] in ("Z", "X"):
        return None
    return fields[19] if len(fields) > 19 else None


def owner_token(pid: int | None = None) -> str:
    """This process (or pid) as the owner of a run's resources."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}/{pid}/{_start_time(pid) or '?'}"


def owner_gone(token: str) -> bool:
    """True only when the owner certainly is gone: same host, and no process with that pid and start time.
    An owner on another host (an engine shared over tcp, a runner in another container) or a malformed token
    counts as alive: those resources are left to `clean`."""
    host, _, rest = token.partition("/")
    pid, _, started = rest.partition("/")
    if host != socket.gethostname() or not pid.isdigit() or not started or started == "?":
        return False
    return _start_time(int(pid)) != started
