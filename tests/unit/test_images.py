"""The images/ family templates, rendered from matrix.toml for every distro (with and without the distro's own Go),
parsed here without an engine: the families this host cannot build (dnf, apk, pacman) are checked too."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from runner import config, images
from runner.images import TemplateError, parse_facts, render_template
from runner.model import DistroGo, Family

ROOT = Path(__file__).resolve().parents[2]
CFG = config.load(ROOT / "matrix.toml")
KNOWN = {"ARG", "FROM", "RUN", "ENV", "USER", "WORKDIR", "LABEL", "COPY", "ADD", "SHELL"}


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction: continuation lines joined, comments and blank lines dropped
    (a comment line inside a continued instruction is dropped as Docker does)."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        word, _, args = full.partition(" ")
        out.append((word.upper(), args.strip()))
    assert not pending, "the file ends inside a continued instruction"
    return out


def rendered(distro_id: str, distro_go: bool) -> str:
    return images.cell_dockerfile(ROOT / "images", CFG.distros[distro_id], distro_go=distro_go)


def test_all_four_templates_and_every_matrix_family_exist() -> None:
    for family in Family:
        assert images.template_path(ROOT / "images", family).is_file()
    assert {d.family for d in CFG.distros.values()} == set(Family)


@pytest.mark.parametrize("distro_go", [False, True], ids=["upstream", "distro-go"])
@pytest.mark.parametrize("distro_id", sorted(CFG.distros))
def test_rendered_dockerfile_parses(distro_id: str, distro_go: bool) -> None:
    text = rendered(distro_id, distro_go)
    assert "{{" not in text and not any(line.lstrip().startswith("#%") for line in text.splitlines())
    instructions = parse_dockerfile(text)
    assert instructions[0] == ("ARG", "BASE") and instructions[1] == ("FROM", "${BASE}")
    assert {i for i, _ in instructions} <= KNOWN
    runs = [a for i, a in instructions if i == "RUN"]
    assert any("gopher" in r and "1000" in r for r in runs), "the uid 1000 user every scenario relies on"
    go = CFG.distros[distro_id].go_package()
    facts_runs = [r for r in runs if images.DISTRO_GO_FACTS in r]
    if not distro_go:
        assert not facts_runs and f'package="{go.package}"' not in text
        return
    assert len(facts_runs) == 1
    body = facts_runs[0]
    assert f'package="{go.package}"' in body
    for key in ("package", "package_version", "suite", "note", "go_version", "goroot"):
        assert f'echo "{key}=' in body
    if shutil.which("sh"):  # the RUN body is valid POSIX shell
        proc = subprocess.run(["sh", "-n", "-c", body], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


def test_debian_12_takes_go_from_backports_of_its_own_mirror() -> None:
    d12 = CFG.distros["debian-12"]
    assert d12.go == DistroGo(package="golang-go", suite="bookworm-backports")
    text = rendered("debian-12", True)
    assert 'suite="bookworm-backports"' in text and '-t "$suite"' in text
    assert "http" not in text.replace("# ", ""), "the mirror comes from the image's apt sources, never from here"
    assert 'suite=""' in rendered("debian-13", True)


@pytest.mark.parametrize(("family", "words", "package"), [
    (Family.APT, "apt-get install", "golang-go"), (Family.DNF, "dnf install", "golang"),
    (Family.APK, "apk add", "go"), (Family.PACMAN, "pacman -Syu", "go")])
def test_each_family_installs_its_own_package(family: Family, words: str, package: str) -> None:
    distro = next(d for d in CFG.distros.values() if d.family is family)
    text = images.cell_dockerfile(ROOT / "images", distro, distro_go=True)
    assert words in text
    assert distro.go_package().package == package and f'package="{package}"' in text


def test_render_all_writes_every_distro_twice(tmp_path: Path) -> None:
    written = images.render_all(ROOT / "images", CFG.distros, tmp_path)
    assert len(written) == 2 * len(CFG.distros)
    assert (tmp_path / "rocky-9-distro-go.Dockerfile").read_text().count("dnf install -y") == 1


def test_template_rendering_rules() -> None:
    t = "a\n#% if on\nb {{ x }}\n#% endif\n#% if off\nc\n#% endif\n"
    assert render_template(t, {"x": "1"}, {"on": True, "off": False}) == "a\nb 1\n"
    with pytest.raises(TemplateError, match="unknown flag"):
        render_template("#% if nope\n#% endif\n", {}, {})
    with pytest.raises(TemplateError, match="unknown value"):
        render_template("{{ y }}", {}, {})
    with pytest.raises(TemplateError, match="without"):
        render_template("#% if on\n", {}, {"on": True})


def test_facts_file_parsing() -> None:
    facts = parse_facts("package=golang-go\nnote=bookworm-backports from x: E: a=b\ngo_version=go1.23.5\nnoise\n")
    assert facts == {"package": "golang-go", "note": "bookworm-backports from x: E: a=b", "go_version": "go1.23.5"}


def test_distro_go_package_defaults_per_family() -> None:
    alpine = CFG.distros["alpine-3.24"]
    assert alpine.go is None and alpine.go_package().package == "go"
    assert replace(alpine, family=Family.DNF).go_package().package == "golang"
