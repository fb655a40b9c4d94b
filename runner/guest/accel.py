"""Host facts for the guest: QEMU present, which accelerator (KVM or TCG), what is missing to bake, and the fix.

Accelerator: KVM when /dev/kvm opens read-write and the CPU flags show vmx/svm, else TCG: a /dev/kvm without
either flag (e.g. PVM) hangs stock guest kernels (images/selinux-guest/README.md). The cell records which,
with the duration factor its timeouts use. Install commands come from runner.host, per kind of host.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import host, preflight
from runner.model import Arch

QEMU = "qemu-system-x86_64"
TCG_FACTOR = 13.0  # guest compute time / native under TCG: about 13x on 2 cores (images/selinux-guest/README.md)
KVM_FACTOR = 1.3


@dataclass(frozen=True)
class Accel:
    name: str  # "kvm" | "tcg"
    args: tuple[str, ...]
    factor: float  # guest time / native time: scales the timeouts; recorded in every cell
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {"accel": self.name.upper(), "duration_factor": self.factor, "why": self.why}


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The CPU feature flags of /proc/cpuinfo (the first `flags` line)."""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def choose_accel(kvm_usable: bool, flags: frozenset[str]) -> Accel:
    """KVM only when /dev/kvm is usable AND the CPU shows vmx/svm; a PVM /dev/kvm has neither flag."""
    virt = sorted({"vmx", "svm"} & flags)
    if kvm_usable and virt:
        return Accel("kvm", ("-accel", "kvm", "-cpu", "host"), KVM_FACTOR, f"/dev/kvm usable, CPU flag {virt[0]}")
    why = ("/dev/kvm is missing or not usable by this user" if not kvm_usable else
           "/dev/kvm exists but the CPU shows no vmx/svm (e.g. PVM or a nested host: stock guest kernels hang there)")
    return Accel("tcg", ("-accel", "tcg,thread=multi", "-cpu", "max"), TCG_FACTOR, f"software emulation: {why}")


def kvm_usable(path: Path = Path("/dev/kvm")) -> bool:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


def host_accel() -> Accel:
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        info = ""
    return choose_accel(kvm_usable(), cpu_flags(info))


def qemu_binary() -> str | None:
    return shutil.which(QEMU)


def qemu_version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    m = re.search(r"version (\S+)", out)
    return m.group(1) if m else "?"


def _host_kind(os_release: str | None) -> dict[str, str]:
    return host.os_release_fields() if os_release is None else host.parse_os_release(os_release)


def install_hint(os_release: str | None = None) -> str:
    """The command that installs QEMU's x86-64 system emulator and qemu-img on this kind of host (os_release:
    the text of /etc/os-release; None reads this host's)."""
    return host.install_command("qemu-system", _host_kind(os_release))


def missing_qemu() -> str | None:
    """Why the guest cannot boot here (no QEMU), with the fix; None when it can."""
    if qemu_binary() is None or shutil.which("qemu-img") is None:
        return f"no {QEMU}/qemu-img here (fix: `{install_hint()}`)"
    return None


def missing_tools() -> list[str]:
    """What this host lacks to bake (once) and boot the guest, each with its fix."""
    out = [m] if (m := missing_qemu()) else []
    kind = _host_kind(None)
    if shutil.which("debootstrap") is None:
        out.append(f"no debootstrap to bake the guest image (fix: `{host.install_command('debootstrap', kind)}`)")
    if shutil.which("mkfs.ext4") is None:
        out.append(f"no mkfs.ext4 to bake the guest image (fix: `{host.install_command('mkfs.ext4', kind)}`)")
    if os.geteuid() != 0:
        out.append("baking the guest image needs root (debootstrap, chroot, security xattrs)")
    return out


def preflight_check(arch: Arch) -> preflight.ArchCheck:
    """The guest engine's line in a run's preflight: QEMU present, and which accelerator."""
    if arch is not Arch.AMD64:
        return preflight.ArchCheck(arch=arch.value, ok=False, mode="guest", detail="the guest VM is amd64 only")
    no_qemu = missing_qemu()
    if no_qemu:
        return preflight.ArchCheck(arch=arch.value, ok=False, mode="guest", detail=no_qemu, fix=install_hint())
    binary = qemu_binary()
    assert binary is not None
    accel = host_accel()
    bake = [p for p in missing_tools() if p != no_qemu]
    return preflight.ArchCheck(arch=arch.value, ok=True, mode="guest",
                               detail=f"{QEMU} {qemu_version(binary)}, {accel.name.upper()} ({accel.why})"
                               + (f"; if the image is not baked yet: {'; '.join(bake)}" if bake else ""),
                               factor=accel.factor)


def engine_facts() -> dict[str, Any]:
    """What a run records for the guest engine (run.json, the report header)."""
    binary = qemu_binary()
    accel = host_accel()
    return {"engine": "podman-selinux", "guest": True, "qemu": qemu_version(binary) if binary else None,
            **accel.to_dict(), "missing": missing_tools()}
