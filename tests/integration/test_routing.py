"""Routing an arch's cells to another engine: a second, throw-away dockerd on its own socket.

The second daemon gets its own data-root, exec-root, pidfile, containerd namespace and bridge, so the
main dockerd (and the rest of the suite) is unaffected. amd64 is routed to it; the cells must have run
there (its data-root in the recorded engine facts, its image store holding the cell image) and have
left nothing behind on it. A dead endpoint gives `unavailable` with the reason, not a crash.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from runner.engine import LABEL_RUN
from tests.dockerd import throwaway_dockerd

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CELL = "debian-12/amd64/docker/go1.22/env"


@pytest.fixture(scope="module")
def second_dockerd() -> Iterator[tuple[str, Path]]:
    with throwaway_dockerd("it", "10.213.77.1/24") as d:
        yield d.sock, d.data_root


def run_cli(reports: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    proc = subprocess.run([sys.executable, "-m", "runner", "run", "--reports", str(reports), "-q", "-n", "0", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=1800)
    print(proc.stdout[-4000:], proc.stderr[-2000:], sep="\n")
    run_id = args[args.index("--run-id") + 1]
    data = json.loads((reports / "runs" / run_id / "results.json").read_text())
    return proc, {c["id"]: c for c in data["cells"]}


def test_cells_run_on_the_routed_engine(second_dockerd: tuple[str, Path], tmp_path: Path) -> None:
    sock, data_root = second_dockerd
    proc, cells = run_cli(tmp_path, "--select", CELL, "--endpoint", f"amd64={sock}", "--run-id", "it-routed")
    assert proc.returncode == 0, proc.stdout[-3000:]
    cell = cells[CELL]
    assert cell["status"] == "pass", cell["reason"]
    assert cell["cell"]["endpoint"] == sock and cell["cell"]["emulated"] is False
    engine = cell["host"]["engine"]
    assert engine["endpoint"] == sock
    assert engine["docker_root_dir"] == str(data_root), "the cell ran on the main dockerd, not the routed one"
    assert cell["host"]["arch_check"]["mode"] == "endpoint" and cell["host"]["arch_check"]["ok"]
    with contextlib.closing(docker.DockerClient(base_url=sock)) as second:
        assert second.images.list(filters={"reference": "gcm-cell/debian-12"}), "no cell image on the 2nd dockerd"
        assert second.containers.list(all=True, filters={"label": f"{LABEL_RUN}=it-routed"}) == []
        assert second.volumes.list(filters={"label": f"{LABEL_RUN}=it-routed"}) == []


def test_a_dead_endpoint_makes_its_cells_unavailable(tmp_path: Path) -> None:
    dead = "unix:///tmp/gcm-it-no-such-daemon.sock"
    proc, cells = run_cli(tmp_path, "--select", CELL, "--endpoint", f"amd64={dead}", "--run-id", "it-dead")
    cell = cells[CELL]
    assert cell["status"] == "unavailable", cell
    assert dead in cell["reason"] and "correct the endpoint" in cell["reason"], cell["reason"]
    assert proc.returncode == 0, "an unavailable cell is not a failure of the run"
