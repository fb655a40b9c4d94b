"""Provision the image a cell runs in: a base (registry | rootfs) + the family Dockerfile.

    distro.sources, in order ──> the first one already cached here is used (pulled image, rootfs tar);
                                 else the first that can be obtained (pull / debootstrap);
                                 else ImageUnavailable with every source's reason.
    base ──(images/<family>.Dockerfile, BuildKit, --platform)──> gcm-cell/<distro>:<arch>-<content key>

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
    base_key: str  # image id of a pulled base, or the rootfs recipe key
    reused: bool  # everything was already provisioned
    seconds: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"tag": self.tag, "id": self.image_id, "source": self.source, "base": self.base,
                "base_key": self.base_key, "reused": self.reused, "provision_sec": round(self.seconds, 3),
                "notes": self.notes}


def _key(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def registry_ref(distro: Distro) -> str:
    return f"{distro.image}@{distro.digest}" if distro.digest else distro.image


def base_tag(distro: Distro, arch: Arch) -> str:
    """Local tag of a pulled registry base image."""
    return f"gcm-base/{distro.id}:{arch.value}-{_key(registry_ref(distro), arch.value)}"


def rootfs_key(distro: Distro, arch: Arch) -> str:
    assert distro.rootfs is not None
    r = distro.rootfs
    return _key(ROOTFS_RECIPE, r.suite, r.variant, r.mirror or "", arch.value)


def rootfs_tar(distro: Distro, arch: Arch) -> Path:
    """Cached debootstrap tree as a tarball: the build context of rootfs-based cell images."""
    return cache_dir() / "rootfs" / f"{distro.id}-{arch.value}-{rootfs_key(distro, arch)}" / "rootfs.tar"


def platform_mismatch(attrs: dict[str, Any], arch: Arch) -> str | None:
    got = f"{attrs.get('Os', '?')}/{attrs.get('Architecture', '?')}"
    return None if got == arch.to_oci() else f"image config says {got}, wanted {arch.to_oci()}"


@dataclass(frozen=True)
class Base:
    """Where a cell image starts: a pulled image (FROM ref) or a rootfs tarball (FROM scratch + ADD)."""

    source: ImageSource
    origin: str  # what a reader is told: image@digest, or the debootstrap command
    key: str  # content key of the base, part of the cell image tag
    from_ref: str | None = None  # registry: local tag of the pulled, platform-checked image
    tar: Path | None = None  # rootfs: the tarball


def _pull(driver: Driver, distro: Distro, arch: Arch) -> Base:
    ref, tag = registry_ref(distro), base_tag(distro, arch)
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
    return Base(ImageSource.REGISTRY, ref, str(attrs["Id"]), from_ref=tag)


def _unmount_below(root: Path) -> None:
    """debootstrap mounts /proc and /sys inside the target; an interrupted run can leave them."""
    with open("/proc/self/mounts") as fh:
        points = [line.split()[1] for line in fh]
    for p in sorted((p for p in points if p.startswith(str(root) + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", p], capture_output=True)


def _debootstrap_command(distro: Distro, arch: Arch, target: str) -> list[str]:
    r = distro.rootfs
    assert r is not None
    cmd = ["debootstrap", f"--variant={r.variant}", f"--arch={arch.to_go()}", r.suite, target]
    return [*cmd, r.mirror] if r.mirror else cmd


def _rootfs_base(distro: Distro, arch: Arch) -> Base:
    tar = rootfs_tar(distro, arch)
    origin = " ".join(_debootstrap_command(distro, arch, "DIR"))
    return Base(ImageSource.ROOTFS, origin, rootfs_key(distro, arch), tar=tar)


def _debootstrap(distro: Distro, arch: Arch, emulated: bool) -> Base:
    if not shutil.which("debootstrap"):
        raise ImageUnavailable("rootfs: debootstrap is not installed (fix: `apt-get install debootstrap`)")
    if os.geteuid() != 0:
        raise ImageUnavailable("rootfs: debootstrap needs root (run as root, or use the registry source)")
    base = _rootfs_base(distro, arch)
    assert base.tar is not None
    work = base.tar.parent.parent
    work.mkdir(parents=True, exist_ok=True)
    # We hold this (distro, arch)'s lock: temp dirs with our prefix are leftovers of a killed run.
    prefix = f".{base.tar.parent.name}."
    for stale in work.glob(prefix + "*"):
        _unmount_below(stale)
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=work, prefix=prefix))
    cmd = _debootstrap_command(distro, arch, str(tmp / "root"))
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
        (tmp / "ctx").mkdir()
        tar = subprocess.run(["tar", "-C", str(tmp / "root"), "--numeric-owner", "-cf", str(tmp / "ctx" / "rootfs.tar"),
                              "."], capture_output=True, text=True)
        if tar.returncode != 0:
            raise ImageUnavailable(f"rootfs: packing the tree failed: {tar.stderr.strip()}")
        if base.tar.parent.exists():
            shutil.rmtree(base.tar.parent)
        (tmp / "ctx").rename(base.tar.parent)
    finally:
        _unmount_below(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    return base


def _base(driver: Driver, distro: Distro, arch: Arch, emulated: bool) -> tuple[Base, bool]:
    """The base and whether it was already here. Cached sources first, then obtainable ones, in order."""
    for source in distro.sources:
        if source is ImageSource.REGISTRY:
            attrs = driver.image_attrs(base_tag(distro, arch))
            if attrs and platform_mismatch(attrs, arch) is None:
                return Base(source, registry_ref(distro), str(attrs["Id"]), from_ref=base_tag(distro, arch)), True
        elif rootfs_tar(distro, arch).is_file():
            return _rootfs_base(distro, arch), True
    reasons = []
    for source in distro.sources:
        try:
            if source is ImageSource.REGISTRY:
                return _pull(driver, distro, arch), False
            return _debootstrap(distro, arch, emulated), False
        except ImageUnavailable as e:
            reasons.append(str(e))
    raise ImageUnavailable("; ".join(reasons))


# A rootfs base becomes the first stage, so a cell image never needs a registry lookup: a
# `FROM <local tag>` for a foreign platform makes the engine's BuildKit ask the registry anyway, and
# `docker import --platform` records the host's arch (both seen with docker 20.10).
ROOTFS_STAGE = "ARG BASE\nFROM scratch AS rootfs\nADD rootfs.tar /\n\n"


def base_for_build(driver: Driver, distro: Distro, arch: Arch, emulated: bool) -> tuple[Base, bool]:
    """The base of distro/arch (cached sources first), for builds that start from it themselves."""
    with locked(f"image-{driver.engine.value}-{distro.id}-{arch.value}"):
        return _base(driver, distro, arch, emulated)


def render_dockerfile(template: str, base: Base) -> tuple[str, str]:
    """(Dockerfile text, value of the BASE build arg)."""
    if base.source is ImageSource.ROOTFS:
        return ROOTFS_STAGE + template, "rootfs"
    assert base.from_ref is not None
    return template, base.from_ref


def provision(driver: Driver, distro: Distro, arch: Arch, images_dir: Path, *, emulated: bool) -> CellImage:
    start = time.monotonic()
    template_path = images_dir / f"{distro.family.value}.Dockerfile"
    if not template_path.is_file():
        raise ImageBuildError(f"no recipe {template_path} for family {distro.family.value}")
    with locked(f"image-{driver.engine.value}-{distro.id}-{arch.value}"):
        base, reused = _base(driver, distro, arch, emulated)
        text, base_arg = render_dockerfile(template_path.read_text(), base)
        tag = f"gcm-cell/{distro.id}:{arch.value}-{_key(text, base.key, arch.value)}"
        attrs = driver.image_attrs(tag)
        if attrs is None:
            reused = False
            with tempfile.TemporaryDirectory(prefix="gcm-build-") as tmp:
                dockerfile = Path(tmp) / "Dockerfile"
                dockerfile.write_text(text)
                context = str(base.tar.parent) if base.tar else tmp
                proc = driver.build(context=context, dockerfile=str(dockerfile), tag=tag, platform=arch,
                                    labels={LABEL_MANAGED: "1", LABEL_CACHE: "1"}, build_args={"BASE": base_arg},
                                    timeout=1800 if emulated else 600)
            if proc.returncode != 0:
                tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-4:])
                raise ImageBuildError(f"building {tag} from {template_path.name} failed: {tail}")
            attrs = driver.image_attrs(tag)
            if attrs is None:
                raise ImageBuildError(f"{tag} is missing after a successful build")
        mismatch = platform_mismatch(attrs, arch)
        if mismatch:
            raise ImageBuildError(f"{tag}: {mismatch}")
    return CellImage(tag=tag, image_id=str(attrs["Id"]), source=base.source.value, base=base.origin,
                     base_key=base.key, reused=reused, seconds=time.monotonic() - start)


def remove_cached(driver: Driver) -> int:
    """Remove every cached base and cell image (`clean --images`)."""
    n = 0
    for ref in ("gcm-base/*", "gcm-cell/*", "gcm-gobuild/*"):
        for img in driver.client.images.list(filters={"reference": ref}):
            with contextlib.suppress(docker.errors.APIError):
                driver.client.images.remove(img.id, force=True)
                n += 1
    return n
