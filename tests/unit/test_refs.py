"""The registry mirror setting: reference parsing, the rewrite, and where the setting comes from (no engine)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from runner import cli, config, images, refs
from runner.errors import ConfigError, UsageError
from runner.model import Arch

ROOT = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "ab" * 32
M = "mirror.example.com:5000/dockerhub"


@pytest.mark.parametrize(("ref", "want"), [
    ("docker.io/library/debian:12", f"{M}/library/debian:12"),
    (f"docker.io/library/debian:12@{DIGEST}", f"{M}/library/debian:12@{DIGEST}"),
    (f"docker.io/library/debian@{DIGEST}", f"{M}/library/debian@{DIGEST}"),
    ("docker.io/library/alpine", f"{M}/library/alpine"),
    ("docker.io/rockylinux/rockylinux:9", f"{M}/rockylinux/rockylinux:9"),
    ("debian:12", f"{M}/library/debian:12"),  # docker's defaults: Docker Hub, library/
    ("archlinux/archlinux:latest", f"{M}/archlinux/archlinux:latest"),
    ("index.docker.io/library/ubuntu:24.04", f"{M}/library/ubuntu:24.04"),
    ("registry-1.docker.io/library/ubuntu:24.04", f"{M}/library/ubuntu:24.04"),
    # other registries are not Docker Hub: left alone
    ("quay.io/centos/centos:stream9", "quay.io/centos/centos:stream9"),
    ("localhost:5000/library/debian:12", "localhost:5000/library/debian:12"),
    (f"127.0.0.1:5000/library/debian@{DIGEST}", f"127.0.0.1:5000/library/debian@{DIGEST}"),
])
def test_rewrite_moves_docker_hub_references_and_keeps_tag_and_digest(ref: str, want: str) -> None:
    assert refs.rewrite(ref, M) == want


@pytest.mark.parametrize("mirror", [None, "", "  "])
def test_no_mirror_leaves_the_reference_alone(mirror: str | None) -> None:
    assert refs.rewrite("docker.io/library/debian:12", mirror) == "docker.io/library/debian:12"


@pytest.mark.parametrize(("mirror", "want"), [
    ("127.0.0.1:5000", "127.0.0.1:5000/library/debian:12"),
    ("127.0.0.1:5000/", "127.0.0.1:5000/library/debian:12"),
    ("localhost:5000/a/b", "localhost:5000/a/b/library/debian:12"),
    ("mirror.internal", "mirror.internal/library/debian:12"),
    ("[::1]:5000/hub", "[::1]:5000/hub/library/debian:12"),
])
def test_mirror_forms(mirror: str, want: str) -> None:
    assert refs.mirror_problem(mirror) is None
    assert refs.rewrite("docker.io/library/debian:12", mirror) == want


@pytest.mark.parametrize(("mirror", "words"), [
    ("https://mirror.example.com", "scheme"),
    ("mirror", "no dot and no port"),  # docker would read mirror/library/debian as a Docker Hub repository
    ("mirror.example.com:99999", "not a registry host"),
    ("mirror.example.com/Upper", "path component"),
    ("mirror.example.com/a b", "not host[:port][/prefix]"),
    ("mirror.example.com/x@sha256:00", "not host[:port][/prefix]"),
    ("", "empty"),
])
def test_bad_mirrors_are_named(mirror: str, words: str) -> None:
    problem = refs.mirror_problem(mirror)
    assert problem is not None and words in problem


def test_parse_and_repo_digest() -> None:
    r = refs.parse(f"debian:12@{DIGEST}")
    assert (r.domain, r.path, r.tag, r.digest) == ("docker.io", "library/debian", "12", DIGEST)
    assert refs.parse("127.0.0.1:5000/library/debian").tag is None
    # docker lists Hub images by their short name; a mirror's by its full one
    assert refs.repo_digest([f"debian@{DIGEST}"], "docker.io/library/debian:12") == DIGEST
    assert refs.repo_digest([f"{M}/library/debian@{DIGEST}"], f"{M}/library/debian:12") == DIGEST
    assert refs.repo_digest([f"debian@{DIGEST}"], f"{M}/library/debian:12") is None


def test_pulled_ref_and_base_tag_follow_the_mirror() -> None:
    debian = config.load(ROOT / "matrix.toml").distros["debian-12"]
    assert images.pull_ref(debian) == images.registry_ref(debian)
    assert images.pull_ref(debian, M) == f"{M}/library/debian:12@{debian.digest}"
    # a mirror's image is cached under its own tag; without a mirror the tag is what it always was
    assert images.base_tag(debian, Arch.AMD64, M) != images.base_tag(debian, Arch.AMD64)
    assert images.base_tag(debian, Arch.AMD64, None) == images.base_tag(debian, Arch.AMD64)


def _matrix(tmp_path: Path, settings: str) -> Path:
    text = (ROOT / "matrix.toml").read_text().replace("[settings]\n", f"[settings]\n{settings}\n", 1)
    path = tmp_path / "matrix.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_the_setting_in_matrix_toml(tmp_path: Path) -> None:
    cfg = config.load(_matrix(tmp_path, 'registry_mirror = "127.0.0.1:5000/hub/"'))
    assert cfg.settings.registry_mirror == "127.0.0.1:5000/hub"
    assert config.load(ROOT / "matrix.toml").settings.registry_mirror is None
    with pytest.raises(ConfigError) as e:
        config.load(_matrix(tmp_path, 'registry_mirror = "http://127.0.0.1:5000"'))
    assert "registry_mirror" in str(e.value) and "scheme" in str(e.value) and e.value.line is not None


def test_cli_and_environment_win_over_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    matrix = str(_matrix(tmp_path, 'registry_mirror = "file.example.com"'))
    monkeypatch.delenv("GCM_REGISTRY_MIRROR", raising=False)

    def pulled(*args: str) -> str:
        assert cli.main(["plan", "--matrix", matrix, "--profile", "smoke", "--json", *args]) == 0
        return str(json.loads(capsys.readouterr().out)["pull_refs"]["debian-12"])

    assert pulled().startswith("file.example.com/library/debian:12@")
    monkeypatch.setenv("GCM_REGISTRY_MIRROR", "env.example.com:5000")
    assert pulled().startswith("env.example.com:5000/library/debian:12@")
    assert pulled("--registry-mirror", "cli.example.com/p").startswith("cli.example.com/p/library/debian:12@")
    assert cli.main(["plan", "--matrix", matrix, "--registry-mirror", "nodot"]) == 2
    assert "--registry-mirror/GCM_REGISTRY_MIRROR" in capsys.readouterr().err


def test_parse_registry_mirror_names_where_it_came_from() -> None:
    assert config.parse_registry_mirror(None, "--registry-mirror") is None
    assert config.parse_registry_mirror(" 127.0.0.1:5000/ ", "--registry-mirror") == "127.0.0.1:5000"
    with pytest.raises(UsageError) as e:
        config.parse_registry_mirror("https://x.example.com", "GCM_REGISTRY_MIRROR")
    assert str(e.value).startswith("GCM_REGISTRY_MIRROR: ") and e.value.fix == refs.MIRROR_FIX
