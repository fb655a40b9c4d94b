"""matrix.toml: the shipped file loads; every kind of bad input is one ConfigError naming file + key + fix."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest

from runner import config
from runner.errors import ConfigError
from runner.model import Arch, Family, ImageSource

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return tomllib.loads((Path(__file__).resolve().parents[2] / "matrix.toml").read_text())


def test_shipped_matrix_names_all_five_families(project_root: Path) -> None:
    cfg = config.load(project_root / "matrix.toml")
    families = {d.family for d in cfg.distros.values()}
    assert families == set(Family)
    assert {"ubuntu-22.04", "ubuntu-24.04", "debian-12", "debian-13", "rocky-9", "arch"} <= set(cfg.distros)
    assert sum(1 for d in cfg.distros if d.startswith("alpine-")) == 2
    assert cfg.distros["arch"].unsupported_reason(Arch.ARM64)
    assert ImageSource.ROOTFS in cfg.distros["debian-12"].sources
    assert {"go1.22"} <= set(cfg.toolchains)
    assert {"default", "smoke"} <= set(cfg.profiles)
    for d in cfg.distros.values():
        assert d.eol


def _mutate(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(raw)
    *parents, last = path.split("|")
    node = data
    for p in parents:
        node = node[p]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return data


class _Delete:
    def __repr__(self) -> str:  # stable test ids across xdist workers
        return "<deleted>"


DELETE = _Delete()

BAD = [
    # (mutation path, value, words the message must contain)
    ("distros|debian-12|famly", "apt", ["distros.debian-12.famly", "did you mean 'family'"]),
    ("distros|debian-12|family", "yum", ["distros.debian-12.family", "unknown value 'yum'", "apt"]),
    ("distros|debian-12|arches", ["amd64", "riscv"], ["distros.debian-12.arches", "riscv"]),
    ("distros|debian-12|arches", [], ["distros.debian-12.arches", "empty list"]),
    ("distros|debian-12|digest", "sha256:abc", ["distros.debian-12.digest", "not a digest"]),
    ("distros|debian-12|eol", "soon", ["distros.debian-12.eol", "YYYY-MM-DD"]),
    ("distros|debian-12|release", 12, ["distros.debian-12.release", "expected str, found int"]),
    ("distros|debian-12|image", DELETE, ["distros.debian-12.image", "missing required key"]),
    ("distros|debian-12|rootfs", DELETE, ["distros.debian-12.sources", "[rootfs]"]),
    ("distros|rocky-9|rootfs", {"suite": "x"}, ["distros.rocky-9.rootfs", "apt family"]),
    ("settings|engines", ["dokcer"], ["settings.engines", "did you mean 'docker'"]),
    ("settings|default_profile", "nightly", ["settings.default_profile", "nightly"]),
    ("toolchains|go1.22|version", "1.21.13", ["toolchains.go1.22.version", "minimum 1.22"]),
    ("toolchains|go1.22|version", "latest", ["toolchains.go1.22.version", "not a Go version"]),
    ("profiles|smoke|distros", ["debain-12"], ["profiles.smoke.distros", "did you mean 'debian-12'"]),
    ("profiles|smoke|distros", ["!debian-12"], ["profiles.smoke.distros", "only leaves names out"]),
    ("profiles|smoke|scenarios", ["cold-warm:huge"], ["profiles.smoke.scenarios", "no variant 'huge'"]),
    ("profiles|smoke|scenarios", ["tmpfs-goroot@go1.99"], ["profiles.smoke.scenarios", "unknown toolchain 'go1.99'"]),
    ("profiles|smoke|scenarios", ["tmpfs-goroot@"], ["profiles.smoke.scenarios", "no toolchain after @"]),
    ("profiles|default|scenarios", ["tmpfs-goroot@debain-12@go1.27"],
     ["profiles.default.scenarios", "unknown distro 'debain-12'", "did you mean 'debian-12'"]),
    ("profiles|default|scenarios", ["tmpfs-goroot@rhel-9@go1.27"],
     ["profiles.default.scenarios", "leave 'rhel-9' out", "drop '!rhel-9' from the profile's distros"]),
    ("profiles|smoke|scenarios", ["tmpfs-goroot@debian-13@go1.27"],
     ["profiles.smoke.scenarios", "leave 'debian-13' out", "add 'debian-13' to the profile's distros"]),
    ("profiles|default|scenarios", ["tmpfs-goroot@@go1.27"],
     ["profiles.default.scenarios", "<distro>@", "e.g. \"tmpfs-goroot@ubuntu-22.04@go1.22\""]),
    ("profiles|default|scenarios", ["tmpfs-goroot@debian-12@"],
     ["profiles.default.scenarios", "no toolchain after @", "\"tmpfs-goroot@debian-12@go1.22\""]),
    ("profiles|default|scenarios", ["tmpfs-goroot@go1.27@debian-12"],
     ["profiles.default.scenarios", "unknown distro 'go1.27'", "the row comes first"]),
    ("profiles|default|scenarios", ["tmpfs-goroot@a@b@go1.27"], ["profiles.default.scenarios", "<distro>@"]),
    ("profiles|default|scenarios", ["tmpfs-goroot@distro"],
     ["profiles.default.scenarios", "toolchains.distro runs only"]),
    ("profiles|default|scenarios", ["tmpfs-goroot@go1.24"],
     ["profiles.default.scenarios", "leave 'go1.24' out", "add 'go1.24' to the profile's toolchains"]),
    ("scenarios|cold-wram", {}, ["scenarios.cold-wram", "did you mean 'cold-warm'"]),
    ("profiles|default|emulated_timing", ["debain-12"],
     ["profiles.default.emulated_timing", "did you mean 'debian-12'"]),
    ("profiles|default|emulated_timing", ["debian-12@go1.72"],
     ["profiles.default.emulated_timing", "unknown toolchain 'go1.72'", "[toolchains.*]"]),
    ("profiles|full|emulate_all", "yes", ["profiles.full.emulate_all", "expected bool"]),
    ("schema_version", 7, ["schema_version", "unsupported"]),
    ("exclude", {"cells": "*"}, ["exclude", "[[exclude]]"]),
    ("known", [{"cells": "*", "because": "x"}], ["known[0].recheck", "recheck date"]),
]


@pytest.mark.parametrize(("path", "value", "words"), BAD, ids=[f"{p}={v!r}" for p, v, _ in BAD])
def test_bad_input_gives_one_clear_error(raw: dict[str, Any], path: str, value: Any, words: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        config.parse(_mutate(raw, path, value), "matrix.toml")
    text = str(info.value)
    assert text.startswith("matrix.toml: ")
    assert "fix:" in text
    for w in words:
        assert w in text


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    p = tmp_path / "matrix.toml"
    p.write_text("schema_version = 1\n[settings\nengines = []\n")
    with pytest.raises(ConfigError, match=r"matrix.toml:2: TOML syntax error: .*line 2"):
        config.load(p)


def test_missing_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--matrix"):
        config.load(tmp_path / "nope.toml")


def test_env_list() -> None:
    assert config.env_list("X", {"X": " a, b,,c "}) == ("a", "b", "c")
    assert config.env_list("X", {}) == ()


@pytest.mark.parametrize("value", ["arm", "amd64,x86_64", "AMD64", "native"])
def test_bad_gcm_arches_is_one_usage_error(value: str) -> None:
    from runner.errors import UsageError

    with pytest.raises(UsageError) as e:
        config.env_arches({"GCM_ARCHES": value})
    text = str(e.value)
    assert e.value.exit_code == 2 and "GCM_ARCHES" in text and repr(value) in text and "amd64, arm64" in text
    assert config.env_arches({"GCM_ARCHES": " arm64, amd64 "}) == (Arch.ARM64, Arch.AMD64)
    assert config.env_arches({}) == ()
