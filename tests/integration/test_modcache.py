"""modcache for real on Debian 12 (amd64, go1.22): the module cache's modes and removal rules, and
concurrent `go mod download` in one container and across two containers on one named volume.

One CLI run drives both variants; the tests assert on the observations the cells recorded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker
import pytest

from runner.engine import LABEL_RUN

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
RUN_ID = "it-modcache"
PREFIX = "debian-12/amd64/docker/go1.22/modcache"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str], dict[str, Any]]:
    reports = tmp_path_factory.mktemp("reports-modcache")
    proc = subprocess.run([sys.executable, "-m", "runner", "run", "--reports", str(reports), "-q", "-n", "2",
                           "--run-id", RUN_ID, "--select", f"{PREFIX}:*"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    print(proc.stdout[-6000:], proc.stderr[-3000:], sep="\n")
    data = json.loads((reports / "runs" / RUN_ID / "results.json").read_text())
    return reports, proc, {c["cell"]["variant"]: c for c in data["cells"]}


def test_both_variants_ran_and_passed(run: Any) -> None:
    _, proc, cells = run
    assert set(cells) == {"download", "concurrent"}
    bad = {k: f"{c['status']}: {c['reason']}" for k, c in cells.items() if c["status"] != "pass"}
    assert not bad, bad
    assert proc.returncode == 0


def test_download_modes_and_removal(run: Any) -> None:
    o = run[2]["download"]["observations"]
    for label in ("default", "modcacherw"):
        assert o[label]["download"]["ok"] and o[label]["verify"]["verified"], o[label]
        assert o[label]["verify"]["stdout_first_line"] == "all modules verified"
    d, w = o["default"]["modes"], o["modcacherw"]["modes"]
    assert int(d["module_dir"], 8) & 0o222 == 0 and int(d["go_file"], 8) & 0o222 == 0, d
    # -modcacherw leaves new *directories* writable ("go help build"); the files stay read-only.
    assert int(w["module_dir"], 8) & 0o200 and int(w["go_file"], 8) & 0o222 == 0, w
    assert o["rm_plain"]["exit_code"] != 0 and "Permission denied" in o["rm_plain"]["stderr_first_line"]
    assert o["rm_plain"]["removed"] is False
    assert o["rm_root"]["exit_code"] == 0 and o["rm_root"]["removed"] is True
    assert o["clean_modcache"]["exit_code"] == 0 and o["clean_modcache"]["removed"] is True
    assert o["rm_rw"]["exit_code"] == 0 and o["rm_rw"]["removed"] is True
    assert any(k.startswith("d ") for k in o["default"]["mode_counts"])


def test_concurrent_downloads_are_clean(run: Any) -> None:
    o = run[2]["concurrent"]["observations"]
    assert o["in_container"]["n"] == 4 and len(o["in_container"]["runs"]) == 4
    assert o["in_container"]["failures"] == 0 and o["across_containers"]["failures"] == 0
    assert o["across_containers"]["containers"] == 2 and len(o["across_containers"]["runs"]) == 4
    assert o["across_containers"]["barrier_met"] is True
    assert all("start" in r for r in o["in_container"]["runs"] + o["across_containers"]["runs"])
    assert o["in_container"]["overlap_sec"] > 0, "4 downloads started at once in one container never overlapped"
    assert o["in_container"]["verify"]["verified"] and o["across_containers"]["verify"]["verified"]
    assert o["failures"] == 0


def test_detail_table_and_cleanup(run: Any, docker_client: docker.DockerClient) -> None:
    reports = run[0]
    md = (reports / "matrix.md").read_text()
    assert "### `modcache`" in md and "Permission denied" in md
    client = docker_client
    label = f"{LABEL_RUN}={RUN_ID}"
    assert client.containers.list(all=True, filters={"label": label}) == []
    assert client.volumes.list(filters={"label": label}) == []
