"""Both engines for real on Debian 12 (amd64): cold-warm:small and buildkit:rebuild on docker (BuildKit) and
podman (buildah), the selinux cell's n/a on a host that is not enforcing, and nothing left behind.
"""

from __future__ import annotations

import glob
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker
import pytest

from runner import host
from runner.buildrun import cache_id
from runner.scenarios.buildkit import edit_package

EDIT_PACKAGE = edit_package("lib")  # buildkit builds the three-package lib workload

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RUN_ID = "it-engines"
ENGINES = ("docker", "podman")
CELLS = [f"debian-12/amd64/{e}/go1.22/{s}" for e in ENGINES for s in ("cold-warm:small", "buildkit:rebuild")]
SELINUX = "debian-12/amd64/podman/go1.27/selinux:bind-z"  # the default profile runs "selinux@go1.27"
PODMAN_SOCKET = "unix:///run/podman/podman.sock"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    reports = tmp_path_factory.mktemp("reports-engines")
    selects = [a for c in [*CELLS, SELINUX] for a in ("--select", c)]
    proc = subprocess.run([sys.executable, "-m", "runner", "run", "--reports", str(reports), "-q", "-n", "2",
                           "--run-id", RUN_ID, "--engine", "docker", "--engine", "podman", *selects],
                          cwd=ROOT, capture_output=True, text=True, timeout=1500)
    print(proc.stdout[-5000:], proc.stderr[-2000:], sep="\n")
    data = json.loads((reports / "runs" / RUN_ID / "results.json").read_text())
    return reports, {c["id"]: c for c in data["cells"]}


@pytest.mark.parametrize("engine", ENGINES)
def test_cold_warm_on_each_engine(run: Any, engine: str) -> None:
    cell = run[1][f"debian-12/amd64/{engine}/go1.22/cold-warm:small"]
    assert cell["status"] == "pass", cell["reason"]
    o = cell["observations"]
    assert o["cold"]["compiled"] > 20 and o["warm"]["compiled"] == 0 == o["touch"]["compiled"]
    assert cell["host"]["engine"]["engine"] == engine


@pytest.mark.parametrize("engine", ENGINES)
def test_rebuild_after_a_one_line_change_compiles_only_it_and_its_dependents(run: Any, engine: str) -> None:
    cell = run[1][f"debian-12/amd64/{engine}/go1.22/buildkit:rebuild"]
    assert cell["status"] == "pass", cell["reason"]
    o = cell["observations"]
    first, rebuild = o["builds"]["first"], o["builds"]["rebuild"]
    print(engine, "first:", {k: v for k, v in first.items() if k != "packages"}, "\nrebuild:", rebuild)
    assert first["mount_empty"] is True and first["compiled"] == 3 and first["cache_files_after"] > 3
    assert rebuild["mount_empty"] is False and rebuild["cache_files_before"] >= first["cache_files_after"]
    changed = set(rebuild["packages"])
    assert EDIT_PACKAGE in changed
    assert changed <= {EDIT_PACKAGE, *o["dependents_of_edited"]}
    assert "gcm.example/lib" in o["dependents_of_edited"]
    if engine == "podman":  # buildah keeps cache mounts in a host directory: recorded, then removed
        assert "buildah-cache" in o["cache_dir"]


def test_selinux_is_na_here_with_the_mode(run: Any) -> None:
    cell = run[1][SELINUX]
    mode = host.selinux_mode()
    if mode == "enforcing":
        pytest.skip("this host enforces SELinux: the cell ran for real")
    assert cell["status"] == "n/a"
    assert cell["reason"].startswith(f"SELinux is not enforcing on this host (mode: {mode})")


def test_the_table_has_a_row_per_engine(run: Any) -> None:
    md = (run[0] / "matrix.md").read_text()
    assert "Debian 12 · docker" in md and "Debian 12 · podman" in md
    assert "podman (buildah)" in md and "docker (BuildKit)" in md


def test_nothing_is_left_behind(run: Any) -> None:
    ids = {cache_id(RUN_ID, c) for c in CELLS}
    for url in (None, PODMAN_SOCKET):
        client = docker.DockerClient(base_url=url) if url else docker.from_env()
        try:
            label = "io.go-cache-matrix.run=" + RUN_ID
            assert client.containers.list(all=True, filters={"label": label}) == []
            assert client.volumes.list(filters={"label": label}) == []
            assert client.images.list(filters={"label": label}) == []
            if url is None:  # BuildKit's records of this run's cache mounts
                records = [r for r in client.df().get("BuildCache") or []
                           if any(i in str(r.get("Description")) for i in ids)]
                assert records == []
        finally:
            client.close()
    assert [p for i in ids for p in glob.glob(f"/var/tmp/buildah-cache*/{i}-*")] == []
