"""Emulation preflight from a binfmt_misc directory (a temp dir stands in for /proc here)."""

from __future__ import annotations

from pathlib import Path

from runner import host
from runner.model import Arch

ENTRY = "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: {flags}\noffset 0\nmagic 7f45\n"


def test_native_needs_no_emulator(tmp_path: Path) -> None:
    e = host.emulation(Arch.AMD64, Arch.AMD64, tmp_path)
    assert e.ok and e.native


def test_missing_entry_gives_the_install_command(tmp_path: Path) -> None:
    e = host.emulation(Arch.ARM64, Arch.AMD64, tmp_path)
    assert not e.ok
    assert "qemu-aarch64" in e.detail
    assert e.fix and "update-binfmts --enable qemu-aarch64" in e.fix and "apt-get install qemu-user-static" in e.fix


def test_entry_without_f_flag_is_not_usable(tmp_path: Path) -> None:
    (tmp_path / "qemu-aarch64").write_text(ENTRY.format(flags="P"))
    e = host.emulation(Arch.ARM64, Arch.AMD64, tmp_path)
    assert not e.ok and "F flag" in e.detail


def test_disabled_entry(tmp_path: Path) -> None:
    (tmp_path / "qemu-aarch64").write_text(ENTRY.format(flags="PF").replace("enabled", "disabled"))
    e = host.emulation(Arch.ARM64, Arch.AMD64, tmp_path)
    assert not e.ok and e.fix == "update-binfmts --enable qemu-aarch64"


def test_usable_entry(tmp_path: Path) -> None:
    (tmp_path / "qemu-aarch64").write_text(ENTRY.format(flags="PF"))
    e = host.emulation(Arch.ARM64, Arch.AMD64, tmp_path)
    assert e.ok and not e.native and "flags PF" in e.detail
    assert host.binfmt_entry(Arch.ARM64, tmp_path) == {
        "enabled": True, "interpreter": "/usr/libexec/qemu-binfmt/aarch64-binfmt-P", "flags": "PF"}
