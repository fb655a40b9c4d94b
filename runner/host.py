"""Host fingerprint and the emulation preflight. Reads files and asks the engine; changes nothing."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.model import Arch

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")


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
    if text is None:
        return None
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
