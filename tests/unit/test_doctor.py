"""`doctor`'s pure parts (os-release -> install command, cgroup and binfmt from fake trees, registry hosts), and a
doctor run on a host where everything is missing: facts and fixes, exit 4, never a traceback."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import requests

from runner import doctor, host
from runner.errors import EngineUnavailable, FatalError
from runner.model import Arch, Engine

OS_RELEASES = {
    "debian": ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n', "apt"),
    "ubuntu": ('NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\n', "apt"),
    "rocky": ('NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\n', "dnf"),
    "fedora": ("NAME=Fedora\nID=fedora\n", "dnf"),
    "almalinux": ('ID="almalinux"\nID_LIKE="rhel centos fedora"\n', "dnf"),
    "arch": ("NAME=\"Arch Linux\"\nID=arch\n", "pacman"),
    "alpine": ("NAME=\"Alpine Linux\"\nID=alpine\n", "apk"),
    "mint": ('ID=linuxmint\nID_LIKE="ubuntu debian"\n', "apt"),
    "nixos": ("ID=nixos\n", None),
}


@pytest.mark.parametrize(("text", "pm"), OS_RELEASES.values(), ids=list(OS_RELEASES))
def test_package_manager_from_os_release(text: str, pm: str | None) -> None:
    assert host.package_manager(host.parse_os_release(text)) == pm


def test_parse_os_release_unquotes_and_skips_comments() -> None:
    fields = host.parse_os_release('# comment\nPRETTY_NAME="Debian GNU/Linux 12"\nID=debian\n\nVERSION=\'12\'\n')
    assert fields == {"PRETTY_NAME": "Debian GNU/Linux 12", "ID": "debian", "VERSION": "12"}


@pytest.mark.parametrize(("distro", "command"), [
    ("debian", "apt-get install podman"), ("ubuntu", "apt-get install podman"), ("rocky", "dnf install podman"),
    ("fedora", "dnf install podman"), ("arch", "pacman -S podman"), ("alpine", "apk add podman"),
])
def test_install_command_per_kind_of_host(distro: str, command: str) -> None:
    assert host.install_command("podman", host.parse_os_release(OS_RELEASES[distro][0])) == command


def test_install_commands_for_the_other_needs() -> None:
    debian = host.parse_os_release(OS_RELEASES["debian"][0])
    rocky = host.parse_os_release(OS_RELEASES["rocky"][0])
    assert host.install_command("docker", debian) == "apt-get install docker.io"
    assert host.install_command("debootstrap", rocky) == "dnf install debootstrap"
    assert host.install_command("mkfs.btrfs", debian) == "apt-get install btrfs-progs"
    fix = host.emulation_fix_for(Arch.ARM64, debian)
    assert fix.startswith("apt-get install qemu-user-static binfmt-support && update-binfmts --enable qemu-aarch64")
    assert host.emulation_fix_for(Arch.ARM64, rocky).startswith(
        "dnf install qemu-user-static && systemctl restart systemd-binfmt")
    unknown = host.install_command("podman", host.parse_os_release("ID=nixos\n"))
    assert "apt-get install podman" in unknown and "dnf install podman" in unknown


def test_cgroup_version_from_a_fake_tree(tmp_path: Path) -> None:
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    assert host.cgroup_version(v2) == "v2"
    v1 = tmp_path / "v1"
    for d in ("memory", "cpu", "pids", "systemd"):
        (v1 / d).mkdir(parents=True)
    assert host.cgroup_version(v1) == "v1"
    (v1 / "unified").mkdir()
    (v1 / "unified" / "cgroup.controllers").write_text("")
    assert host.cgroup_version(v1) == "v1 (hybrid: v2 at unified/)"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert host.cgroup_version(empty).startswith("unknown")
    assert host.cgroup_version(tmp_path / "absent").startswith("unknown")


ENTRY = "{state}\ninterpreter {interp}\nflags: {flags}\noffset 0\nmagic 7f454c46\nmask ffffffff\n"


def test_binfmt_parsing(tmp_path: Path) -> None:
    assert host.binfmt_status(tmp_path) == "not mounted"
    assert host.binfmt_entries(tmp_path) == {}
    (tmp_path / "status").write_text("enabled\n")
    (tmp_path / "register").write_text("")
    (tmp_path / "python3.11").write_text(ENTRY.format(state="enabled", interp="/usr/bin/python3.11", flags=""))
    (tmp_path / "qemu-aarch64").write_text(
        ENTRY.format(state="enabled", interp="/usr/libexec/qemu-binfmt/aarch64-binfmt-P", flags="PF"))
    (tmp_path / "qemu-riscv64").write_text(ENTRY.format(state="disabled", interp="/usr/bin/qemu-riscv64", flags="OCF"))
    assert host.binfmt_status(tmp_path) == "enabled"
    assert host.binfmt_entries(tmp_path) == {
        "qemu-aarch64": {"enabled": True, "interpreter": "/usr/libexec/qemu-binfmt/aarch64-binfmt-P", "flags": "PF"},
        "qemu-riscv64": {"enabled": False, "interpreter": "/usr/bin/qemu-riscv64", "flags": "OCF"},
    }
    (tmp_path / "status").write_text("disabled\n")
    assert host.binfmt_status(tmp_path) == "disabled"


@pytest.mark.parametrize(("ref", "registry"), [
    ("docker.io/library/debian:12", "docker.io"), ("debian:12", "docker.io"),
    ("rockylinux/rockylinux:9", "docker.io"), ("quay.io/centos/centos:stream9", "quay.io"),
    ("localhost:5000/debian:12", "localhost:5000"), ("127.0.0.1:5000/x@sha256:ab", "127.0.0.1:5000"),
])
def test_registry_host(ref: str, registry: str) -> None:
    assert host.registry_host(ref) == registry


def test_registry_api_host_and_the_matrix_registries(project_root: Path) -> None:
    from runner import config

    assert host.registry_api_host("docker.io") == "registry-1.docker.io"
    assert host.registry_api_host("quay.io") == "quay.io"
    # Docker Hub, and the rows from Red Hat's registry (UBI) and quay.io (CentOS Stream)
    assert sorted(doctor.registries(config.load(project_root / "matrix.toml"))) == [
        "docker.io", "quay.io", "registry.access.redhat.com"]
    assert doctor.registries(None) == ["docker.io"]


def test_doctor_checks_the_mirror_a_run_would_use(project_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runner import config

    cfg = config.load(project_root / "matrix.toml")
    # a Docker Hub mirror leaves the other registries as they are; a mirror per registry host moves each
    assert sorted(doctor.registries(cfg, "mirror.example.com:5000/hub")) == [
        "mirror.example.com:5000", "quay.io", "registry.access.redhat.com"]
    every = "m.example.com:5000/hub,quay.io=m.example.com:5000/quay,registry.access.redhat.com=m.example.com:5000/rh"
    assert doctor.registries(cfg, every) == ["m.example.com:5000"]
    assert doctor.registries(None, "mirror.example.com") == ["mirror.example.com"]
    monkeypatch.setenv("GCM_REGISTRY_MIRROR", "127.0.0.1:5000/")
    assert doctor.mirror_setting(cfg) == "127.0.0.1:5000"
    monkeypatch.setenv("GCM_REGISTRY_MIRROR", "https://127.0.0.1:5000")
    with pytest.raises(FatalError, match="GCM_REGISTRY_MIRROR"):
        doctor.mirror_setting(cfg)


def test_request_problem_is_short() -> None:
    e = requests.exceptions.ConnectionError(
        "HTTPSConnectionPool(host='registry-1.docker.io', port=443): Max retries exceeded with url: /v2/ (Caused by "
        "NameResolutionError(\"<urllib3.connection.HTTPSConnection object>: Failed to resolve "
        "'registry-1.docker.io'\"))")
    assert doctor._request_problem(e, "registry-1.docker.io") == "DNS cannot resolve registry-1.docker.io"
    assert "within 3s" in doctor._request_problem(requests.exceptions.ConnectTimeout("x"), "r.example")


def test_free_space_of_a_path_not_created_yet(tmp_path: Path) -> None:
    got = host.free_space(tmp_path / "a" / "b")
    assert got is not None and got[0] == tmp_path and got[1] <= got[2]


class _DeadDriver:
    def __init__(self, engine: Engine, base_url: str | None = None) -> None:
        self.engine = engine
        self.base_url = "unix:///nonexistent/podman.sock" if engine is Engine.PODMAN else None

    def check(self) -> dict[str, str]:
        raise EngineUnavailable(f"{self.engine} does not answer at the default socket", fix="start it")


class _LiveDriver(_DeadDriver):
    def check(self) -> dict[str, str]:
        return {"engine": self.engine.value, "version": "27.0.1", "api_version": "1.46", "os": "linux",
                "arch": "amd64"}

    def storage_facts(self) -> dict[str, Any]:
        return {"storage_driver": "overlay2", "cgroup_version": "2", "cgroup_driver": "systemd",
                "security_options": ["name=seccomp,profile=builtin", "name=rootless"], "rootless": True,
                "docker_root_dir": "/nonexistent/docker"}


@pytest.fixture
def bare_fedora(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Fedora host with nothing installed: no engine, no podman, binfmt_misc not mounted, no tools, no network."""
    (tmp_path / "os-release").write_text('NAME="Fedora Linux"\nID=fedora\nPRETTY_NAME="Fedora Linux 41"\n')
    (tmp_path / "cgroup").mkdir()
    (tmp_path / "cgroup" / "cgroup.controllers").write_text("cpu memory\n")
    (tmp_path / "binfmt").mkdir()
    monkeypatch.setattr(host, "OS_RELEASE", tmp_path / "os-release")
    monkeypatch.setattr(host, "CGROUP_ROOT", tmp_path / "cgroup")
    monkeypatch.setattr(host, "BINFMT_DIR", tmp_path / "binfmt")
    monkeypatch.setattr(doctor, "driver_for", _DeadDriver)
    monkeypatch.setattr(doctor, "_which", lambda name: None)
    monkeypatch.setattr(doctor, "probe_registry", lambda r: (False, f"DNS cannot resolve {host.registry_api_host(r)}"))
    monkeypatch.setattr(Arch, "host", classmethod(lambda cls: Arch.AMD64))
    monkeypatch.setenv("GCM_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def test_doctor_on_a_bare_host_prints_facts_and_fixes_and_exits_4(bare_fedora: Path) -> None:
    lines: list[str] = []
    code = doctor.run(str(bare_fedora / "no-matrix.toml"), out=lines.append)
    text = "\n".join(lines)
    assert code == 4, text
    assert "could not check" not in text and "Traceback" not in text, text
    assert "Fedora Linux 41 (ID fedora; packages: dnf)" in text and "cgroup v2" in text
    assert "fix: dnf install moby-engine && " in text, "docker: install, then start"
    assert "podman: not installed" in text and "fix: dnf install podman && " in text
    assert "binfmt_misc" in text and f"fix: mount -t binfmt_misc binfmt_misc {bare_fedora / 'binfmt'}" in text
    assert "fix: dnf install qemu-user-static && systemctl restart systemd-binfmt" in text
    assert "fix: dnf install debootstrap" in text and "fix: dnf install xfsprogs" in text
    assert "docker.io: unreachable: DNS cannot resolve registry-1.docker.io" in text
    assert "matrix: " in text and "file not found" in text
    assert "arm64: unavailable (emulated)" in text or "arm64: ok" in text, "the host-side preflight still runs"
    assert text.splitlines()[-1].startswith("essentials: no container engine answers")


def test_doctor_exits_0_when_an_engine_answers(bare_fedora: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "driver_for", _LiveDriver)
    lines: list[str] = []
    assert doctor.run(str(bare_fedora / "no-matrix.toml"), out=lines.append) == 0
    text = "\n".join(lines)
    assert "docker: 27.0.1 (API 1.46)" in text and "rootless" in text and "storage driver overlay2" in text
    # The nearest existing parent is "/" on a clean host; a host where something made /nonexistent says that.
    assert re.search(r"images \(docker root dir\): /nonexistent/docker \(not created yet; on /[^)]*\)", text), text
    assert "podman: not installed" in text, "no podman CLI and no socket: not asked"
    assert text.splitlines()[-1] == "essentials: ok (docker 27.0.1 answers)"


def test_a_section_that_breaks_is_reported_not_raised(bare_fedora: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a: object) -> None:
        raise OSError("disk vanished")

    monkeypatch.setattr(doctor, "check_disk", boom)
    lines: list[str] = []
    assert doctor.run(str(bare_fedora / "no-matrix.toml"), out=lines.append) == 4
    assert "  could not check: OSError: disk vanished (rerun with --debug for the traceback)" in lines
    with pytest.raises(OSError):
        doctor.run(str(bare_fedora / "no-matrix.toml"), debug=True, out=lines.append)
