"""What a run takes from the command line and the environment (GCM_*), checked; and the id, digest and
endpoint rules matrix.toml shares with them.

runner.config reads matrix.toml and re-exports these for its callers: the precedence file < environment <
command line is applied where the options are resolved (runner.cli, runner.pytest_plugin).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace

from runner import refs
from runner.errors import UsageError, did_you_mean
from runner.model import Arch, Distro, Family, ImageSource, Rootfs
from runner.scenarios import WORKLOAD_CHOICES

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
ID = re.compile(r"^[a-z0-9][a-z0-9.\-]*$")  # distro, toolchain and workload ids

FAMILY_BY_PREFIX = {"ubuntu": Family.APT, "debian": Family.APT, "rocky": Family.DNF, "rhel": Family.DNF,
                    "alma": Family.DNF, "fedora": Family.DNF, "centos": Family.DNF, "alpine": Family.APK,
                    "arch": Family.PACMAN}


ROOTFS_PREFIX = "rootfs:"  # --distro NAME=rootfs:SUITE: a debootstrap rootfs instead of an image reference
_SUITE = re.compile(r"[a-z][a-z0-9.\-]*\Z")
ROOTFS_FIX = "e.g. --distro debian-14=rootfs:forky (NAME: debian-<release>, or an apt-family row of the matrix; " \
             "SUITE: a suite or codename the Debian mirror serves, such as testing, sid, forky)"


def rootfs_spec_problem(spec: str, known: Mapping[str, Distro]) -> str | None:
    """Why `--distro NAME=rootfs:SUITE` cannot be built, or None. Its own rule, beside the image reference's:
    the suite is one debootstrap word, and the row must be of the apt family (debootstrap builds Debian trees)."""
    name, _, value = spec.partition("=")
    suite = value.removeprefix(ROOTFS_PREFIX)
    if not ID.match(name):
        return f"--distro {spec!r}: {name!r} is not a distro id (lower-case letters, digits, '.', '-')"
    if not _SUITE.match(suite):
        return f"--distro {name}: {suite!r} is not a suite name (one lower-case word, e.g. forky, testing, sid)"
    family = known[name].family if name in known else FAMILY_BY_PREFIX.get(name.partition("-")[0])
    if family is not Family.APT:
        what = f"{name} is of the {family.value} family" if family else f"cannot tell the family of {name!r}"
        return f"--distro {name}: a rootfs is built with debootstrap, for the apt family only; {what}"
    return None


def adhoc_rootfs_distro(spec: str, known: Mapping[str, Distro]) -> Distro:
    """`--distro NAME=rootfs:SUITE`: the row built from a debootstrap rootfs of SUITE, no registry needed (a new
    Debian release before its image exists, or a host without registry access). An existing NAME keeps its
    name, release, EOL, arches, Go package and rootfs mirror; a new one is named from NAME (debian-14 -> Debian 14)."""
    if problem := rootfs_spec_problem(spec, known):
        raise UsageError(problem, fix=ROOTFS_FIX)
    name, _, value = spec.partition("=")
    suite = value.removeprefix(ROOTFS_PREFIX)
    old = known.get(name)
    mirror = old.rootfs.mirror if old and old.rootfs else None
    rootfs = Rootfs(suite=suite, variant=old.rootfs.variant if old and old.rootfs else "minbase", mirror=mirror)
    if old is not None:
        return replace(old, image=value, digest=None, sources=(ImageSource.ROOTFS,), rootfs=rootfs)
    prefix, _, release = name.partition("-")
    return Distro(id=name, name=prefix.title(), release=release or "?", family=Family.APT, image=value, digest=None,
                  eol="unknown", sources=(ImageSource.ROOTFS,), arches=tuple(Arch), rootfs=rootfs)


def adhoc_distro(spec: str, known: Mapping[str, Distro]) -> Distro:
    """`--distro NAME=IMAGE_REF`: a row for an image that matrix.toml does not list (a new release, a
    candidate digest). An existing NAME keeps its name, release, EOL and family and takes the new image.
    `--distro NAME=rootfs:SUITE` builds the row from a debootstrap rootfs instead (adhoc_rootfs_distro)."""
    if spec.partition("=")[2].startswith(ROOTFS_PREFIX):
        return adhoc_rootfs_distro(spec, known)
    name, sep, ref = spec.partition("=")
    if not sep or not ID.match(name):  # the reference itself: refs.image_ref_problem below
        raise UsageError(f"--distro {spec!r} is not NAME=IMAGE_REF",
                         fix="e.g. --distro ubuntu-26.04=docker.io/library/ubuntu:26.04 (NAME: lower-case id)")
    image, _, digest = ref.partition("@")
    if digest and not DIGEST.match(digest):
        raise UsageError(f"--distro {name}: {digest!r} is not a digest", fix="IMAGE@sha256:<64 hex digits>")
    if problem := refs.image_ref_problem(ref):
        raise UsageError(f"--distro {name}: {problem}", fix=refs.IMAGE_REF_FIX)
    if name in known:
        old = known[name]
        return Distro(id=name, name=old.name, release=old.release, family=old.family, image=image,
                      digest=digest or None, eol=old.eol, sources=(ImageSource.REGISTRY,), arches=old.arches,
                      unsupported=old.unsupported)
    prefix, _, release = name.partition("-")
    family = FAMILY_BY_PREFIX.get(prefix)
    if family is None:
        raise UsageError(f"--distro {name}: cannot tell the package family from the name {prefix!r}",
                         fix=f"start the name with one of {', '.join(FAMILY_BY_PREFIX)}, e.g. rocky-10=IMAGE")
    return Distro(id=name, name=prefix.title(), release=release or "?", family=family, image=image,
                  digest=digest or None, eol="unknown", sources=(ImageSource.REGISTRY,), arches=tuple(Arch))


ENDPOINT_SCHEMES = ("unix://", "tcp://", "ssh://", "npipe://", "context:")
ENDPOINT_FIX = "write unix:///path/docker.sock, tcp://host:2376, ssh://user@host or context:NAME"


def endpoint_problem(url: str) -> str | None:
    return None if url.startswith(ENDPOINT_SCHEMES) and url.partition(":")[2].strip("/") else \
        f"{url!r} is not an engine endpoint"


def parse_endpoint_args(items: Sequence[str], where: str) -> dict[Arch, str]:
    """`ARCH=URL` items (CLI --endpoint, GCM_ENDPOINTS) -> {arch: url}."""
    out: dict[Arch, str] = {}
    for item in items:
        name, sep, url = item.partition("=")
        if not sep or name not in {a.value for a in Arch}:
            raise UsageError(f"{where}: {item!r} is not ARCH=URL",
                             fix=f"e.g. arm64=ssh://me@arm-box; ARCH is one of {', '.join(a.value for a in Arch)}")
        problem = endpoint_problem(url)
        if problem:
            raise UsageError(f"{where} {name}: {problem}", fix=ENDPOINT_FIX)
        out[Arch(name)] = url
    return out


def env_list(name: str, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """A comma-separated GCM_* variable as a tuple ('' and unset give ())."""
    raw = (environ if environ is not None else os.environ).get(name, "")
    return tuple(x.strip() for x in raw.split(",") if x.strip())


def env_workload(environ: Mapping[str, str] | None = None) -> str | None:
    """GCM_WORKLOAD: build this workload in every scenario that declares a cheap one (a parity check, runner.parity);
    None: each scenario's own. A bad name is one UsageError (exit 2)."""
    value = (environ if environ is not None else os.environ).get("GCM_WORKLOAD", "").strip() or None
    if value is not None and value not in WORKLOAD_CHOICES:
        raise UsageError(f"GCM_WORKLOAD={value!r}: not a workload{did_you_mean(value, WORKLOAD_CHOICES)}",
                         fix=f"use one of: {', '.join(WORKLOAD_CHOICES)}, or unset GCM_WORKLOAD")
    return value


def env_share(environ: Mapping[str, str] | None = None) -> bool:
    """GCM_SHARE_CONTAINERS: "0" runs every cell in its own container (the shared-vs-alone check, runner.share);
    "1" or unset lets a scenario's variants share one. Anything else is one UsageError (exit 2)."""
    value = (environ if environ is not None else os.environ).get("GCM_SHARE_CONTAINERS", "").strip()
    if value not in ("", "0", "1"):
        raise UsageError(f"GCM_SHARE_CONTAINERS={value!r}: expected 0 or 1",
                         fix="set GCM_SHARE_CONTAINERS=0 to run every cell in its own container, or unset it")
    return value != "0"


def env_arches(environ: Mapping[str, str] | None = None) -> tuple[Arch, ...]:
    """GCM_ARCHES (comma-separated arch names) -> arches; a bad name is one UsageError (exit 2), no traceback."""
    names = [a.value for a in Arch]
    out: list[Arch] = []
    for item in env_list("GCM_ARCHES", environ):
        if item not in names:
            raw = (environ if environ is not None else os.environ).get("GCM_ARCHES", "")
            raise UsageError(f"GCM_ARCHES={raw!r}: unknown arch {item!r}{did_you_mean(item, names)}",
                             fix=f"use one of: {', '.join(names)} (comma-separated), or unset GCM_ARCHES")
        out.append(Arch(item))
    return tuple(out)


def parse_registry_mirror(value: str | None, where: str) -> str | None:
    """The --registry-mirror / GCM_REGISTRY_MIRROR value, checked and normalised (None: not given)."""
    if value is None or not value.strip():
        return None
    if problem := refs.mirror_problem(value):
        raise UsageError(f"{where}: {problem}", fix=refs.MIRROR_FIX)
    return refs.normalise_mirror(value)
