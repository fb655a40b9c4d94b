"""Provision the image a cell runs in: base image (registry | rootfs) + family Dockerfile.

    distro.sources, in order ──> first one already in the engine's store (by content tag) is used;
                                 else the first that can be obtained (pull / debootstrap) is used;
                                 else ImageUnavailable with every source's reason.
    base ──(images/<family>.Dockerfile, BuildKit)──> gcm-cell/<distro>:<arch>-<content key>

Tags are content-addressed, so a second run finds everything and downloads nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker.errors
import requests.exceptions

from runner.engine import LABEL_CACHE, LABEL_MANAGED, Driver
from runner.model import Arch, Distro, ImageSource
from runner.paths import cache_dir, locked

ROOTFS_RECIPE = "1"  # bump when the debootstrap recipe below changes: old images stop matching
DEBOOTSTRAP_TIMEOUT = 900.0


class ImageUnavailable(Exception):
    """No source could provide the base image here; the message carries each source's reason."""


class ImageBuildError(Exception):
    """The family Dockerfile failed to build: a recipe or host problem, not a missing image."""


@dataclass
class CellImage:
    tag: str
    image_id: str
    source: str
    base: str  # the reference it came from (image@digest, or debootstrap suite)
    base_id: str
    reused: bool  # everything was already provisioned
    seconds: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"tag": self.tag, "id": self.image_id, "source": self.source, "base": self.base,
                "base_id": self.base_id, "reused": self.reused, "provision_sec": round(self.seconds, 3),
                "notes": self.notes}


def _key(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def registry_ref(distro: Distro) -> str:
    return f"{distro.image}@{distro.digest}" if distro.digest else distro.image


def base_tag(distro: Distro, arch: Arch, source: ImageSource) -> str:
    if source is ImageSource.REGISTRY:
        key = _key(registry_ref(distro), arch.value)
    else:
        assert distro.rootfs is not None
        r = distro.rootfs
        key = _key(ROOTFS_RECIPE, r.suite, r.variant, r.mirror or "", arch.value)
    return f"gcm-base/{distro.id}:{arch.value}-{source.value}-{key}"


def platform_mismatch(attrs: dict[str, Any], arch: Arch) -> str | None:
    got = f"{attrs.get('Os', '?')}/{attrs.get('Architecture', '?')}"
    return None if got == arch.to_oci() else f"image config says {got}, wanted {arch.to_oci()}"


def _pull(driver: Driver, distro: Distro, arch: Arch, tag: str) -> tuple[str, dict[str, Any]]:
    ref = registry_ref(distro)
    try:
        attrs = driver.pull(ref, arch)
    except (docker.errors.APIError, requests.exceptions.RequestException) as e:
        text = getattr(e, "explanation", None) or str(e)
        raise ImageUnavailable(f"pull {ref} for {arch.to_oci()} failed: {text}") from None
    mismatch = platform_mismatch(attrs, arch)
    if mismatch:
        raise ImageUnavailable(f"pulled {ref} but {mismatch}")
    repo, _, t = tag.partition(":")
    driver.client.images.get(ref).tag(repo, t)
    return ref, attrs


def _unmount_below(root: Path) -> None:
    """debootstrap mounts /proc and /sys inside the target; an interrupted run can leave them."""
    with open("/proc/self/mounts") as fh:
        points = [line.split()[1] for line in fh]
    for p in sorted((p for p in points if p.startswith(str(root) + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", p], capture_output=True)


def _debootstrap(driver: Driver, distro: Distro, arch: Arch, tag: str, emulated: bool) -> str:
    r = distro.rootfs
    assert r is not None
    if not shutil.which("debootstrap"):
        raise ImageUnavailable("rootfs: debootstrap is not installed (fix: `apt-get install debootstrap`)")
    if os.geteuid() != 0:
        raise ImageUnavailable("rootfs: debootstrap needs root (run as root, or use the registry source)")
    work = cache_dir() / "rootfs"
    work.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=work, prefix=f"{distro.id}-{arch.value}-"))
    root = tmp / "root"
    cmd = ["debootstrap", f"--variant={r.variant}", f"--arch={arch.to_go()}", r.suite, str(root)]
    if r.mirror:
        cmd.append(r.mirror)
    timeout = DEBOOTSTRAP_TIMEOUT * (3 if emulated else 1)
    try:
        with open(tmp / "debootstrap.log", "w") as log:
            try:
                proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
            except subprocess.TimeoutExpired:
                raise ImageUnavailable(f"rootfs: `{' '.join(cmd)}` timed out after {timeout:.0f}s") from None
        if proc.returncode != 0:
            tail = (tmp / "debootstrap.log").read_text(errors="replace").strip().splitlines()[-3:]
            raise ImageUnavailable(f"rootfs: `{' '.join(cmd)}` exited {proc.returncode}: {' | '.join(tail)}")
        _unmount_below(tmp)
        driver.import_rootfs(rootfs_dir=str(root), tag=tag, platform=arch,
                             labels={LABEL_MANAGED: "1", LABEL_CACHE: "1"}, timeout=600)
    finally:
        _unmount_below(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    mirror = f" from {r.mirror}" if r.mirror else ""
    return f"debootstrap --variant={r.variant} --arch={arch.to_go()} {r.suite}{mirror}"


def _base(driver: Driver, distro: Distro, arch: Arch, emulated: bool) -> tuple[str, ImageSource, str, bool]:
    """(local tag, source, origin, reused) of the base image."""
    for source in distro.sources:
        tag = base_tag(distro, arch, source)
        attrs = driver.image_attrs(tag)
        if attrs and platform_mismatch(attrs, arch) is None:
            origin = registry_ref(distro) if source is ImageSource.REGISTRY else f"debootstrap {distro.rootfs.suite}"  # type: ignore[union-attr]
            return tag, source, origin, True
    reasons = []
    for source in distro.sources:
        tag = base_tag(distro, arch, source)
        try:
            if source is ImageSource.REGISTRY:
                origin, _ = _pull(driver, distro, arch, tag)
            else:
                origin = _debootstrap(driver, distro, arch, tag, emulated)
            return tag, source, origin, False
        except ImageUnavailable as e:
            reasons.append(str(e))
    raise ImageUnavailable("; ".join(reasons))


def provision(driver: Driver, distro: Distro, arch: Arch, images_dir: Path, *, emulated: bool) -> CellImage:
    start = time.monotonic()
    dockerfile = images_dir / f"{distro.family.value}.Dockerfile"
    if not dockerfile.is_file():
        raise ImageBuildError(f"no recipe {dockerfile} for family {distro.family.value}")
    with locked(f"image-{driver.engine.value}-{distro.id}-{arch.value}"):
        base, source, origin, reused = _base(driver, distro, arch, emulated)
        base_attrs = driver.image_attrs(base) or {}
        base_id = str(base_attrs.get("Id", ""))
        tag = f"gcm-cell/{distro.id}:{arch.value}-{_key(dockerfile.read_text(), base_id, arch.value)}"
        attrs = driver.image_attrs(tag)
        if attrs is None:
            reused = False
            with tempfile.TemporaryDirectory(prefix="gcm-ctx-") as ctx:
                proc = driver.build(context=ctx, dockerfile=str(dockerfile), tag=tag, platform=arch,
                                    labels={LABEL_MANAGED: "1", LABEL_CACHE: "1"}, build_args={"BASE": base},
                                    timeout=1800 if emulated else 600)
            if proc.returncode != 0:
                tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-4:])
                raise ImageBuildError(f"building {tag} from {dockerfile.name} failed: {tail}")
            attrs = driver.image_attrs(tag)
            if attrs is None:
                raise ImageBuildError(f"{tag} is missing after a successful build")
        mismatch = platform_mismatch(attrs, arch)
        if mismatch:
            raise ImageBuildError(f"{tag}: {mismatch}")
    return CellImage(tag=tag, image_id=str(attrs["Id"]), source=source.value, base=origin, base_id=base_id,
                     reused=reused, seconds=time.monotonic() - start)


def remove_cached(driver: Driver) -> int:
    """Remove every cached base and cell image (`clean --images`)."""
    n = 0
    for ref in ("gcm-base/*", "gcm-cell/*"):
        for img in driver.client.images.list(filters={"reference": ref}):
            with contextlib.suppress(docker.errors.APIError):
                driver.client.images.remove(img.id, force=True)
                n += 1
    return n
