"""Host fingerprint and the emulation preflight. Reads files and asks the engine; changes nothing."""

from __future__ import annotations

import os
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.model import Arch

# GCM_BINFMT_DIR: read another directory as binfmt_misc (the fault tests point it at an empty one to see what a
# host without QEMU gets). Read once, at import.
BINFMT_DIR = Path(os.environ.get("GCM_BINFMT_DIR") or "/proc/sys/fs/binfmt_misc")


@dataclass(frozen=True)
class Emulation:
    ok: bool
    native: bool
    detail: str  # what was found
    fix: str | None = None


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def binfmt_entry(arch: Arch, root: Path = BINFMT_DIR) -> dict[str, Any] | None:
    """Parse /proc/sys/fs/binfmt_misc/qemu-<arch>: {'enabled': bool, 'interpreter': str, 'flags': str}."""
    text = _read(root / f"qemu-{arch.to_qemu()}")
    return None if text is None else parse_binfmt(text)


def parse_binfmt(text: str) -> dict[str, Any]:
    """One binfmt_misc entry file -> {'enabled': bool, 'interpreter': str, 'flags': str}."""
    entry: dict[str, Any] = {"enabled": False, "interpreter": "", "flags": ""}
    for line in text.splitlines():
        if line.strip() == "enabled":
            entry["enabled"] = True
        key, _, value = line.partition(" ")
        if key == "interpreter":
            entry["interpreter"] = value.strip()
        elif key == "flags:":
            entry["flags"] = value.strip()
    return entry


def emulation_fix(arch: Arch) -> str:
    return (f"Debian/Ubuntu: `apt-get install qemu-user-static binfmt-support && "
            f"update-binfmts --enable qemu-{arch.to_qemu()}`; other docker hosts: "
            f"`docker run --privileged --rm tonistiigi/binfmt --install {arch.value}`")


def emulation(arch: Arch, host_arch: Arch, root: Path = BINFMT_DIR) -> Emulation:
    if arch is host_arch:
        return Emulation(True, True, "native")
    entry = binfmt_entry(arch, root)
    if entry is None:
        where = root if (root / "status").exists() else f"{root} (binfmt_misc not mounted)"
        return Emulation(False, False, f"no qemu-{arch.to_qemu()} entry in {where}", emulation_fix(arch))
    if not entry["enabled"]:
        return Emulation(False, False, f"qemu-{arch.to_qemu()} binfmt entry is disabled",
                         f"update-binfmts --enable qemu-{arch.to_qemu()}")
    if "F" not in entry["flags"]:
        # Without F (fix-binary) the interpreter path is resolved inside the container, where it is missing.
        return Emulation(False, False,
                         f"qemu-{arch.to_qemu()} binfmt entry lacks the F flag (flags: {entry['flags'] or 'none'})",
                         "install qemu-user-static (its entries carry F), then re-register: "
                         f"`update-binfmts --disable qemu-{arch.to_qemu()} && "
                         f"update-binfmts --enable qemu-{arch.to_qemu()}`")
    return Emulation(True, False, f"qemu-user via binfmt ({entry['interpreter']}, flags {entry['flags']})")


def subid_users(root: Path = Path("/etc")) -> list[str]:
    """Non-root users with both a subuid and a subgid range: who could run podman rootless here."""

    def names(f: str) -> set[str]:
        text = _read(root / f) or ""
        return {ln.split(":", 1)[0] for ln in text.splitlines() if ln.count(":") == 2 and not ln.startswith("#")}

    return sorted((names("subuid") & names("subgid")) - {"root", "0"})


def selinux_mode() -> str:
    enforce = _read(Path("/sys/fs/selinux/enforce"))
    if enforce is None:
        return "disabled"
    return "enforcing" if enforce.strip() == "1" else "permissive"


def apparmor_mode() -> str:
    enabled = _read(Path("/sys/module/apparmor/parameters/enabled"))
    return "enabled" if enabled and enabled.strip().upper().startswith("Y") else "disabled"


def os_release() -> str:
    text = _read(Path("/etc/os-release")) or ""
    for line in text.splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return platform.system()


def fingerprint(engine_facts: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a reader needs to know about the machine that produced a result."""
    host_arch = Arch.host()
    facts: dict[str, Any] = {
        "arch": host_arch.value,
        "os": os_release(),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "selinux": selinux_mode(),
        "apparmor": apparmor_mode(),
        "binfmt": {a.value: binfmt_entry(a) for a in Arch if a is not host_arch},
    }
    if engine_facts:
        facts["engine"] = engine_facts
    return facts


# ---------------------------------------------------------------- `doctor`: more facts, and the fix per kind of host
OS_RELEASE = Path("/etc/os-release")
CGROUP_ROOT = Path("/sys/fs/cgroup")

# Package manager per os-release ID / ID_LIKE word; its install command; the packages per need.
PKG_MANAGER = {"debian": "apt", "ubuntu": "apt", "fedora": "dnf", "rhel": "dnf", "centos": "dnf", "rocky": "dnf",
               "almalinux": "dnf", "ol": "dnf", "arch": "pacman", "archlinux": "pacman", "alpine": "apk"}
INSTALL = {"apt": "apt-get install", "dnf": "dnf install", "pacman": "pacman -S", "apk": "apk add"}
PACKAGES: dict[str, dict[str, str]] = {
    "docker": {"apt": "docker.io", "dnf": "moby-engine", "pacman": "docker", "apk": "docker"},
    "podman": {"apt": "podman", "dnf": "podman", "pacman": "podman", "apk": "podman"},
    # the SELinux guest VM (runner.guest): QEMU's x86-64 system emulator and qemu-img
    "qemu-system": {"apt": "qemu-system-x86 qemu-utils", "dnf": "qemu-system-x86-core qemu-img",
                    "pacman": "qemu-system-x86 qemu-img", "apk": "qemu-system-x86_64 qemu-img"},
    "debootstrap": {"apt": "debootstrap", "dnf": "debootstrap", "pacman": "debootstrap", "apk": "debootstrap"},
    "qemu": {"apt": "qemu-user-static binfmt-support", "dnf": "qemu-user-static",
             "pacman": "qemu-user-static qemu-user-static-binfmt", "apk": "qemu-aarch64 qemu-x86_64 qemu-openrc"},
    "mkfs.ext4": {"apt": "e2fsprogs", "dnf": "e2fsprogs", "pacman": "e2fsprogs", "apk": "e2fsprogs"},
    "mkfs.xfs": {"apt": "xfsprogs", "dnf": "xfsprogs", "pacman": "xfsprogs", "apk": "xfsprogs"},
    "mkfs.btrfs": {"apt": "btrfs-progs", "dnf": "btrfs-progs", "pacman": "btrfs-progs", "apk": "btrfs-progs"},
}


def parse_os_release(text: str) -> dict[str, str]:
    """os-release(5): KEY=value lines, values optionally quoted."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            out[key] = value
    return out


def os_release_fields(path: Path = OS_RELEASE) -> dict[str, str]:
    return parse_os_release(_read(path) or "")


def package_manager(fields: dict[str, str]) -> str | None:
    """apt, dnf, pacman or apk from ID, then ID_LIKE (rocky: "rhel centos fedora"); None if unknown."""
    for word in [fields.get("ID", ""), *fields.get("ID_LIKE", "").split()]:
        if word.lower() in PKG_MANAGER:
            return PKG_MANAGER[word.lower()]
    return None


def install_command(need: str, fields: dict[str, str]) -> str:
    """The command that installs `need` (a PACKAGES key) on this kind of host."""
    pm = package_manager(fields)
    if pm is None:
        return ("install " + need + " with this host's package manager (Debian/Ubuntu: `apt-get install "
                f"{PACKAGES[need]['apt']}`, Fedora/RHEL: `dnf install {PACKAGES[need]['dnf']}`)")
    return f"{INSTALL[pm]} {PACKAGES[need][pm]}"


def emulation_fix_for(arch: Arch, fields: dict[str, str]) -> str:
    """emulation_fix for this kind of host: install QEMU user-mode with F-flag binfmt entries."""
    q = arch.to_qemu()
    pm = package_manager(fields)
    then = {"apt": f" && update-binfmts --enable qemu-{q}", "dnf": " && systemctl restart systemd-binfmt",
            "pacman": " && systemctl restart systemd-binfmt", "apk": " && rc-service qemu-binfmt start"}
    return (f"{install_command('qemu', fields)}{then.get(pm or '', '')}; or on any docker host: "
            f"`docker run --privileged --rm tonistiigi/binfmt --install {arch.value}`")


def cgroup_version(root: Path = CGROUP_ROOT) -> str:
    """'v2', 'v1', 'v1 (hybrid: v2 at unified/)' or 'unknown (...)', from the cgroup mount tree."""
    if (root / "cgroup.controllers").exists():
        return "v2"
    try:
        names = {p.name for p in root.iterdir()}
    except OSError:
        return f"unknown ({root} not readable)"
    if names & {"memory", "cpu", "cpuacct", "pids", "blkio", "devices", "freezer"}:
        return "v1 (hybrid: v2 at unified/)" if (root / "unified" / "cgroup.controllers").exists() or \
            "unified" in names else "v1"
    return f"unknown (no cgroup hierarchy under {root})"


def binfmt_status(root: Path = BINFMT_DIR) -> str:
    """'enabled', 'disabled' (echo 0 > status) or 'not mounted'."""
    status = _read(root / "status")
    if status is None:
        return "not mounted"
    return "enabled" if status.strip() == "enabled" else "disabled"


def binfmt_entries(root: Path = BINFMT_DIR) -> dict[str, dict[str, Any]]:
    """Every qemu-* entry of binfmt_misc, by name: {'enabled', 'interpreter', 'flags'}."""
    try:
        names = sorted(p.name for p in root.iterdir() if p.name.startswith("qemu-"))
    except OSError:
        return {}
    return {n: parse_binfmt(text) for n in names if (text := _read(root / n)) is not None}


def apparmor_detail() -> str:
    """apparmor_mode plus the loaded profile count where securityfs lets us read it."""
    mode = apparmor_mode()
    profiles = _read(Path("/sys/kernel/security/apparmor/profiles"))
    if mode == "enabled" and profiles is not None:
        enforce = sum(1 for ln in profiles.splitlines() if ln.endswith("(enforce)"))
        return f"enabled ({len(profiles.splitlines())} profiles, {enforce} enforcing)"
    return mode


def free_space(path: Path) -> tuple[Path, int, int] | None:
    """(the nearest existing directory, free bytes, total bytes) for where `path` is or will be."""
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        usage = shutil.disk_usage(p)
    except OSError:
        return None
    return p, usage.free, usage.total


def registry_host(image_ref: str) -> str:
    """The registry of an image reference, as the engine resolves it: 'debian:12' -> docker.io."""
    first, sep, _ = image_ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def registry_api_host(registry: str) -> str:
    """Docker Hub's API is not served at docker.io itself."""
    return "registry-1.docker.io" if registry in ("docker.io", "index.docker.io") else registry
