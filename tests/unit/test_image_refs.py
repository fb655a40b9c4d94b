"""Image references checked at load time against the engines' reference grammar (issue 19, item 4), through the
real CLI entry: matrix.toml `image` values and `--distro NAME=REF`."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.cli import main
from runner.refs import image_ref_problem
from tests.unit.test_bad_input import BASE

GOOD = ["docker.io/library/debian:12", "debian:12", "debian", "localhost:5000/x/y:t", "[::1]:5000/x",
        "ghcr.io/o/n_a__b-c.d:v1.2-3", "Registry.Example.com/x", "quay.io/a/b@sha256:" + "a" * 64]
BAD = {  # reference: words of the rule the message must name
    "": "empty",
    "debian:12;ls": "';'",
    "$(id)": "'$'",
    "debian\nx": "'\\n'",
    "debian:12 ": "' '",
    "Debian:12": "lower-case",
    "docker.io/Library/debian": "lower-case",
    "a//b": "[domain[:port]/]path",
    "debian:": "tag ''",
    "debian:" + "t" * 200: "tag",
    "debian@sha256:zz": "not a digest",
    "-x": "[domain[:port]/]path",
    "debian:12`id`": "'`'",
}


@pytest.mark.parametrize("ref", GOOD)
def test_good_references(ref: str) -> None:
    assert image_ref_problem(ref) is None


@pytest.mark.parametrize("ref", list(BAD))
def test_bad_distro_reference_is_exit_2_naming_the_rule(ref: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", f"--distro=debian-13={ref}"]) == 2
    err = capsys.readouterr().err
    assert "error: --distro" in err and "fix:" in err and BAD[ref] in err and "Traceback" not in err, err


@pytest.mark.parametrize("ref", ["debian:12;ls", "$(id)", "Debian:12", ""])
def test_bad_matrix_image_is_exit_2_naming_the_key(ref: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.toml"
    path.write_text(BASE.replace('image = "docker.io/library/debian:12"', f"image = {ref!r}".replace("'", '"')))
    assert main(["plan", "--matrix", str(path)]) == 2
    err = capsys.readouterr().err
    assert "distros.debian-12.image" in err and "fix:" in err and BAD[ref] in err, err
