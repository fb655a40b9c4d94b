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
    assert "--registry-mirror 'nodot'" in capsys.readouterr().err


def test_parse_registry_mirror_names_where_it_came_from() -> None:
    assert config.parse_registry_mirror(None, "--registry-mirror") is None
    assert config.parse_registry_mirror(" 127.0.0.1:5000/ ", "--registry-mirror") == "127.0.0.1:5000"
    with pytest.raises(UsageError) as e:
        config.parse_registry_mirror("https://x.example.com", "GCM_REGISTRY_MIRROR")
    assert str(e.value).startswith("GCM_REGISTRY_MIRROR: ") and e.value.fix == refs.MIRROR_FIX


# ---------------------------------------------------------------- a mirror per registry host (issue 20 item 5)
MANY = "hub.example.com:5000/hub,quay.io=m.example.com/quay,registry.access.redhat.com=m.example.com/rh"


@pytest.mark.parametrize(("ref", "want"), [
    ("docker.io/library/debian:12", "hub.example.com:5000/hub/library/debian:12"),
    (f"quay.io/centos/centos:stream9@{DIGEST}", f"m.example.com/quay/centos/centos:stream9@{DIGEST}"),
    ("registry.access.redhat.com/ubi9/ubi:9.6", "m.example.com/rh/ubi9/ubi:9.6"),
    ("ghcr.io/owner/image:1", "ghcr.io/owner/image:1"),  # no mirror named for it: left alone
])
def test_each_registry_is_pulled_through_its_own_mirror(ref: str, want: str) -> None:
    assert refs.mirror_problem(MANY) is None
    assert refs.rewrite(ref, MANY) == want


def test_a_mirror_for_another_registry_only_leaves_docker_hub_alone() -> None:
    spec = "quay.io=m.example.com/quay"
    assert refs.rewrite("docker.io/library/debian:12", spec) == "docker.io/library/debian:12"
    assert refs.mirror_for("quay.io/centos/centos:stream9", spec) == "m.example.com/quay"


def test_the_canonical_text_and_precedence_per_registry() -> None:
    # Hub's mirror first and bare (as the one-registry setting always read); aliases of Hub are docker.io
    assert refs.normalise_mirror(" quay.io=m.example.com/quay/ , index.docker.io=h.example.com ") == \
        "h.example.com,quay.io=m.example.com/quay"
    assert refs.normalise_mirror("h.example.com/") == "h.example.com"
    # file < environment < command line, registry by registry
    assert refs.merge_mirrors("file.example.com,quay.io=file.example.com/quay", "quay.io=env.example.com/quay",
                              None) == "file.example.com,quay.io=env.example.com/quay"
    assert refs.merge_mirrors(None, None) is None
    assert refs.describe_mirrors(MANY) == ("docker.io through hub.example.com:5000/hub, quay.io through "
                                           "m.example.com/quay, registry.access.redhat.com through m.example.com/rh")


@pytest.mark.parametrize(("spec", "words"), [
    ("quay=m.example.com", "'quay' before '=' is not a registry host"),
    ("quay.io=", "empty item"),
    ("h.example.com,,quay.io=m.example.com", "empty item"),
    ("quay.io=https://m.example.com", "quay.io: 'https://m.example.com' has a scheme"),
    ("quay.io=nodot", "quay.io: 'nodot' has no dot and no port"),
    ("quay.io=a.example.com,quay.io=b.example.com", "names a mirror for quay.io twice"),
    ("a.example.com,docker.io=b.example.com", "names a mirror for docker.io twice"),
])
def test_bad_mirror_settings_are_named(spec: str, words: str) -> None:
    problem = refs.mirror_problem(spec)
    assert problem is not None and words in problem, problem


def test_the_option_is_repeatable_and_a_bad_one_names_itself(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    matrix = str(_matrix(tmp_path, 'registry_mirror = "file.example.com"'))
    monkeypatch.delenv("GCM_REGISTRY_MIRROR", raising=False)
    args = ["plan", "--matrix", matrix, "--profile", "smoke", "--json"]
    assert cli.main([*args, "--registry-mirror", "quay.io=m.example.com:5000/quay",
                     "--registry-mirror", "registry.access.redhat.com=m.example.com:5000/rh"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["registry_mirror"] == ("file.example.com,quay.io=m.example.com:5000/quay,"
                                      "registry.access.redhat.com=m.example.com:5000/rh")
    assert out["pull_refs"]["debian-12"].startswith("file.example.com/library/debian:12@")
    assert cli.main([*args, "--registry-mirror", "quay.io=https://m.example.com"]) == 2
    err = capsys.readouterr().err
    assert "--registry-mirror 'quay.io=https://m.example.com'" in err and "has a scheme" in err
    assert "REGISTRY=host[:port][/prefix]" in err  # the fix names the form


def test_the_table_form_in_matrix_toml(tmp_path: Path) -> None:
    cfg = config.load(_matrix(tmp_path, 'registry_mirror = { "docker.io" = "h.example.com/hub", '
                                        '"quay.io" = "h.example.com/quay" }'))
    assert cfg.settings.registry_mirror == "h.example.com/hub,quay.io=h.example.com/quay"
    with pytest.raises(ConfigError) as e:
        config.load(_matrix(tmp_path, 'registry_mirror = { "quay" = "h.example.com/quay" }'))
    assert "settings.registry_mirror.quay" in str(e.value) and "not a registry host" in str(e.value)
    assert e.value.line is not None


def test_a_mirrors_registry_is_matched_whatever_its_case_and_a_huge_port_is_a_problem() -> None:
    from runner import refs

    assert refs.mirror_for("quay.io/centos/centos:stream9", refs.normalise_mirror("Quay.io=m.example.com:5000/q"))
    assert refs.mirror_problem("quay.io=m.example.com:" + "9" * 5000) is not None
    assert refs.mirror_problem("m.example.com:" + "9" * 5000) is not None
