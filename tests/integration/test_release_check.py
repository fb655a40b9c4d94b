"""Issue 23, a maintainer's release check, for real: Debian 14 (forky, testing today: newer than this host's
debootstrap) built as a rootfs with no registry, run both ways — from a copy of matrix.toml in another directory
and from `--distro debian-14=rootfs:forky` with the project's file unchanged — then `compare`d with Debian 13,
and a failing cell printed in the tool's own format. Kept cheap for CI: go1.27 `env` and `cold-warm:small` on
debian-14/amd64 and `env` on debian-13 (the forky debootstrap is the cost, about 1-2 minutes, once per host).

When the mirror cannot serve forky, its cells must be `unavailable` with debootstrap's (the mirror's) words: the
tests check that message instead of failing."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker
import pytest

from runner.engine import LABEL_RUN
from tests.integration.test_cells import results

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
D14 = ["debian-14/amd64/docker/go1.27/env", "debian-14/amd64/docker/go1.27/cold-warm:small"]
D13 = "debian-13/amd64/docker/go1.27/env"
ENTRY = """
[distros."debian-14"]
name = "Debian"
release = "14"
family = "apt"
image = "docker.io/library/debian:forky"
eol = "rolling"  # testing: no release date yet
sources = ["rootfs"]
rootfs = { suite = "forky" }
"""


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 1800
        ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "runner", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})
    print(proc.stdout[-4000:], proc.stderr[-3000:], sep="\n")
    return proc


def select(*cells: str) -> list[str]:
    return [a for c in cells for a in ("--select", c)]


def measured_or_unavailable(cell: dict[str, Any]) -> bool:
    """True when the cell measured; else it must be `unavailable` with debootstrap's own words about forky."""
    if cell["status"] != "unavailable":
        return True
    assert re.search(r"rootfs: `debootstrap --variant=minbase --arch=amd64 forky \S+ \S+ \S+/scripts/sid` "
                     r"(exited \d+: .+|timed out)", cell["reason"]), cell["reason"]
    return False


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """A copy of matrix.toml plus a debian-14 entry, in a directory without images/ or anything of the project."""
    home = tmp_path_factory.mktemp("maintainer")
    (home / "matrix.toml").write_text((ROOT / "matrix.toml").read_text() + ENTRY)
    (home / "work").mkdir()  # run from elsewhere, naming the file relatively: the reproduce must still work
    proc = cli("run", "--matrix", "../matrix.toml", "--reports", str(home / "reports"), "--run-id", "it-d14-file",
               "-n", "2", *select(*D14, D13), cwd=home / "work")
    return home, proc


def test_a_matrix_file_in_another_directory_builds_a_suite_debootstrap_does_not_know(elsewhere: Any) -> None:
    home, proc = elsewhere
    assert not (home / "images").exists()
    cells = results(home / "reports", "it-d14-file")
    assert set(cells) == {*D14, D13}
    assert cells[D13]["status"] == "pass", cells[D13]["reason"]
    for cid in D14:
        c = cells[cid]
        assert "no recipe" not in c["reason"]
        if measured_or_unavailable(c):
            assert c["status"] == "pass", c["reason"]
            assert c["image"]["source"] == "rootfs" and " forky DIR " in c["image"]["base"]
            assert c["image"]["base"].endswith("/scripts/sid"), "the host's debootstrap has no forky script"
        # Reproducible from anywhere: the matrix file by its absolute path.
        assert c["reproduce"] == f"go-cache-matrix run --select {cid} --matrix {home / 'matrix.toml'}"
    assert proc.returncode == (0 if all(cells[c]["status"] != "fail" for c in D14) else 1)


def test_distro_alone_needs_no_file_edit(elsewhere: Any, tmp_path: Path) -> None:
    proc = cli("run", "--reports", str(tmp_path), "--run-id", "it-d14-cli", "-n", "0",
               "--distro", "debian-14=rootfs:forky", *select(D14[0]), cwd=ROOT)
    cell = results(tmp_path, "it-d14-cli")[D14[0]]
    assert cell["reproduce"] == f"go-cache-matrix run --select {D14[0]} --distro debian-14=rootfs:forky"
    if measured_or_unavailable(cell):
        assert proc.returncode == 0 and cell["status"] == "pass", cell["reason"]
        assert cell["image"]["source"] == "rootfs" and cell["image"]["reused"] is True  # the same tree as above
        assert cell["cell"]["distro_name"] == "Debian" and cell["cell"]["release"] == "14"


def test_compare_debian_14_with_debian_13(elsewhere: Any, tmp_path: Path) -> None:
    home, _ = elsewhere
    page, md = tmp_path / "compare.html", tmp_path / "compare.md"
    proc = cli("compare", "debian-14", "it-d14-file", "--reports", str(home / "reports"), "--html", str(page),
               "-o", str(md), cwd=home, timeout=120)  # ./matrix.toml names debian-13 as the release before
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# debian-14 compared with debian-13")
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| amd64/docker/go1.27/env "))
    cell = results(home / "reports", "it-d14-file")[D14[0]]
    if cell["status"] == "pass":
        assert "| pass " in row and ("same" in row or "observations differ" in row), row
        assert "image.base" in proc.stdout  # trixie's tree vs forky's
    assert "amd64/docker/go1.27/cold-warm:small" in proc.stdout and "only in the row" in proc.stdout
    assert md.read_text() == proc.stdout and page.read_text().startswith("<!DOCTYPE html>")
    data = json.loads(cli("compare", "debian-14", "it-d14-file", "--reports", str(home / "reports"), "--json",
                          cwd=home, timeout=120).stdout)
    assert data["reference"] == "debian-13" and data["counted"] >= 1  # cold-warm:small is only in the row
    strict = cli("compare", "debian-14", "it-d14-file", "--reports", str(home / "reports"), "--fail-on-difference",
                 cwd=home, timeout=120)
    assert strict.returncode == 1


def test_failed_cells_print_in_the_tools_format(elsewhere: Any, tmp_path: Path) -> None:
    """A recipe that cannot build (a copy of images/ with a failing step, through GCM_IMAGES_DIR): each cell is
    `error`, printed as one line, its fix and its JSON file, without pytest's FAILURES layout."""
    broken = tmp_path / "images"
    shutil.copytree(ROOT / "images", broken, ignore=shutil.ignore_patterns("selinux-guest"))
    with open(broken / "apt.Dockerfile", "a") as fh:
        fh.write('RUN echo "broken on purpose" >&2; false\n')
    proc = cli("run", "--reports", str(tmp_path / "reports"), "--run-id", "it-errfmt", "-n", "2",
               *select(D13, "debian-12/amd64/docker/go1.27/env"), cwd=ROOT, env={"GCM_IMAGES_DIR": str(broken)},
               timeout=900)
    assert proc.returncode == 1
    out = proc.stdout
    for cid in (D13, "debian-12/amd64/docker/go1.27/env"):
        line = next(x for x in out.splitlines() if x.startswith(f"ERROR {cid}: "))
        assert "building gcm-cell/" in line and "failed" in line
        fix, detail = out.splitlines()[out.splitlines().index(line) + 1:][:2]
        assert fix.startswith("  fix: see the detail, then rerun: go-cache-matrix run --select " + cid)
        slug = cid.replace("/", "__").replace(":", "--")
        assert detail == f"  detail: {tmp_path / 'reports' / 'runs' / 'it-errfmt' / 'cells' / slug}.json"
    for pytest_internal in ("_ test session _", "FAILURES", "linux -- Python", "configfile:", "Traceback"):
        assert pytest_internal not in out, pytest_internal
    assert "2 errored" in out


def test_nothing_left_behind(elsewhere: Any, docker_client: docker.DockerClient) -> None:
    for run_id in ("it-d14-file", "it-d14-cli", "it-errfmt"):
        assert docker_client.containers.list(all=True, filters={"label": f"{LABEL_RUN}={run_id}"}) == []
        assert docker_client.volumes.list(filters={"label": f"{LABEL_RUN}={run_id}"}) == []
