"""The distro_go block of the family templates, run by a real `sh` against stand-in package managers: every step
that fails stops the build with the package manager's own words (`gcm-distro-go: unavailable|fail: ...`), never
an empty facts file. The stand-ins print what apt/dnf/apk/pacman print; the shell logic under test is the
recipe's own. (A real build against Debian's mirror: tests/integration/test_release_check.py.)"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from runner import config, images
from runner.model import Distro, DistroGo, Family
from tests.unit.test_images import parse_dockerfile

ROOT = Path(__file__).resolve().parents[2]
CFG = config.load(ROOT / "matrix.toml")
EXPIRED = "E: Release file for http://deb.example/debian/dists/forky/InRelease is expired (invalid since 2d)."
# Paths the recipe touches, moved into the test's directory.
MOVED = ("/etc/os-release", "/etc/apt/sources.list.d", "/etc/apt/sources.list", "/usr/share/go-cache-matrix",
         "/var/lib/apt/lists", "/tmp/gcm-home", "/tmp/gcm-apt.log", "/tmp/gcm-pm.log")

pytestmark = pytest.mark.skipif(shutil.which("sh") is None or shutil.which("awk") is None, reason="needs sh and awk")


def _stub(bindir: Path, name: str, script: str) -> None:
    path = bindir / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def _run(tmp_path: Path, distro: Distro, stubs: dict[str, str], *, os_release: str = "VERSION_ID=\"13\"\n"
         ) -> tuple[subprocess.CompletedProcess[str], Path]:
    text = images.cell_dockerfile(ROOT / "images", distro, distro_go=True)
    body = next(a for i, a in parse_dockerfile(text) if i == "RUN" and images.DISTRO_GO_FACTS in a)
    root = tmp_path / "root"
    # One pass, longest first: sources.list must not match inside an already moved sources.list.d.
    body = re.sub("|".join(map(re.escape, sorted(MOVED, key=len, reverse=True))), lambda m: f"{root}{m.group(0)}",
                  body)
    (root / "etc/apt/sources.list.d").mkdir(parents=True)
    (root / "etc/os-release").write_text(os_release)
    (root / "etc/apt/sources.list").write_text("deb http://deb.example/debian forky main\n")
    (root / "tmp").mkdir()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, script in stubs.items():
        _stub(bindir, name, script)
    for tool in ("sh", "awk", "grep", "rm", "mkdir", "cat"):
        if (found := shutil.which(tool)) and not (bindir / tool).exists():
            (bindir / tool).symlink_to(found)
    proc = subprocess.run(["sh", "-c", body], capture_output=True, text=True, env={"PATH": str(bindir)},
                          timeout=60)
    return proc, root / "usr/share/go-cache-matrix/distro-go"


GO_OK = 'case "$*" in *GOVERSION*) echo go1.27.1;; *GOROOT*) echo /usr/lib/go-1.27;; esac\n'
DPKG_OK = "echo 2:1.27~1\n"


def test_expired_release_of_a_stable_release_is_unavailable_with_apts_words(tmp_path: Path) -> None:
    proc, facts = _run(tmp_path, CFG.distros["debian-13"], {
        "apt-get": f'case "$*" in update*) echo "{EXPIRED}"; exit 100;; esac\n', "dpkg-query": DPKG_OK, "go": GO_OK})
    assert proc.returncode == 1 and not facts.exists()
    assert images.distro_go_stop(proc.stdout) == ("unavailable", f"apt-get update failed: {EXPIRED}")


def test_testing_retries_an_expired_release_without_the_check_and_says_so(tmp_path: Path) -> None:
    apt = (f'case "$*" in *Check-Valid-Until=false*) exit 0;; update*) echo "{EXPIRED}"; exit 100;; esac\n'
           'exit 0\n')
    proc, facts = _run(tmp_path, CFG.distros["debian-13"], {"apt-get": apt, "dpkg-query": DPKG_OK, "go": GO_OK},
                       os_release='PRETTY_NAME="Debian GNU/Linux forky/sid"\nVERSION_CODENAME=forky\n')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = images.parse_facts(facts.read_text())
    assert got["go_version"] == "go1.27.1" and got["goroot"] == "/usr/lib/go-1.27"
    assert got["package_version"] == "2:1.27~1"
    assert "Acquire::Check-Valid-Until=false (testing/unstable only)" in got["note"] and EXPIRED in got["note"]


def test_a_package_apt_cannot_find_is_unavailable(tmp_path: Path) -> None:
    apt = 'case "$*" in install*) echo "E: Unable to locate package golang-go"; exit 100;; esac\n'
    proc, facts = _run(tmp_path, CFG.distros["debian-13"], {"apt-get": apt, "dpkg-query": DPKG_OK, "go": GO_OK})
    assert proc.returncode == 1 and not facts.exists()
    assert images.distro_go_stop(proc.stdout) == (
        "unavailable", "apt-get install golang-go failed: E: Unable to locate package golang-go")


def test_a_backports_suite_that_fails_falls_back_to_the_release_with_the_reason(tmp_path: Path) -> None:
    apt = ('[ -f "$GCM_LIST" ] && case "$*" in update*) echo "E: The repository bookworm-backports Release '
           'does not have a Release file."; exit 100;; esac\nexit 0\n')
    d12 = CFG.distros["debian-12"]
    proc, facts = _run(tmp_path, d12, {"apt-get": apt.replace("$GCM_LIST", str(tmp_path / "root/etc/apt/"
                                                                                "sources.list.d/gcm-go.list")),
                                       "dpkg-query": DPKG_OK, "go": GO_OK})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = images.parse_facts(facts.read_text())
    assert got["suite"] == "" and got["note"].startswith("bookworm-backports from http://deb.example/debian could "
                                                         "not be used: E: The repository")


def test_a_package_without_a_working_go_is_a_fail(tmp_path: Path) -> None:
    go = 'echo "go: cannot find GOROOT directory: /usr/lib/go-1.27" >&2; exit 2\n'
    proc, facts = _run(tmp_path, CFG.distros["debian-13"], {"apt-get": "exit 0\n", "dpkg-query": DPKG_OK, "go": go})
    assert proc.returncode == 1 and not facts.exists()
    kind, message = images.distro_go_stop(proc.stdout) or ("", "")
    assert kind == "fail" and "go env GOVERSION failed: go: cannot find GOROOT directory" in message


def test_no_go_on_path_is_a_fail(tmp_path: Path) -> None:
    proc, _ = _run(tmp_path, CFG.distros["debian-13"], {"apt-get": "exit 0\n", "dpkg-query": DPKG_OK})
    assert images.distro_go_stop(proc.stdout) == ("fail", "golang-go 2:1.27~1 installed no go on PATH")


@pytest.mark.parametrize(("family", "tool", "words"), [
    (Family.DNF, "dnf", "Error: Unable to find a match: golang"),
    (Family.APK, "apk", "ERROR: unable to select packages:"),
    (Family.PACMAN, "pacman", "error: target not found: go"),
])
def test_other_families_report_their_package_managers_words(tmp_path: Path, family: Family, tool: str,
                                                            words: str) -> None:
    distro = next(d for d in CFG.distros.values() if d.family is family)
    proc, facts = _run(tmp_path, distro, {tool: f'echo "{words}"; exit 1\n'})
    assert proc.returncode == 1 and not facts.exists()
    kind, message = images.distro_go_stop(proc.stdout) or ("", "")
    assert kind == "unavailable" and words in message, proc.stdout


def test_buildkit_output_is_parsed_and_the_echoed_recipe_is_not(tmp_path: Path) -> None:
    out = ('#8 [2/2] RUN set -eu; stop() { echo "gcm-distro-go: $1: $2"; exit 1; }; ...\n'
           f"#8 2.345 gcm-distro-go: unavailable: apt-get update failed: {EXPIRED}\n"
           "#8 ERROR: process \"/bin/sh -c set -eu\" did not complete successfully: exit code: 1\n")
    assert images.distro_go_stop(out) == ("unavailable", f"apt-get update failed: {EXPIRED}")
    assert images.distro_go_stop("#8 [2/2] RUN stop() { echo \"gcm-distro-go: $1: $2\"; }") is None
    d = replace(CFG.distros["debian-13"], go=DistroGo(package="golang-go"))
    with pytest.raises(images.ImageUnavailable, match=r"Debian 13's Go package \(golang-go\) cannot be installed: "
                                                      r"apt-get update failed: E: Release file"):
        images._raise_distro_go_stop(d, out)
    with pytest.raises(images.DistroGoBroken, match="no go on PATH"):
        images._raise_distro_go_stop(d, "gcm-distro-go: fail: golang-go 2 installed no go on PATH\n")
    assert os.sep == "/"
