"""remote for real on Debian 12 (amd64): GOCACHEPROG backed by a bind mount two containers share (go1.27),
and the n/a cell of a toolchain without GOCACHEPROG (go1.22).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RUN_ID = "it-remote"
NEW, OLD = "debian-12/amd64/docker/go1.27/remote", "debian-12/amd64/docker/go1.22/remote"


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    reports = tmp_path_factory.mktemp("reports-remote")
    proc = subprocess.run([sys.executable, "-m", "runner", "run", "--reports", str(reports), "-q", "-n", "2",
                           "--run-id", RUN_ID, "--select", NEW, "--select", OLD],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    print(proc.stdout[-4000:], proc.stderr[-2000:], sep="\n")
    data = json.loads((reports / "runs" / RUN_ID / "results.json").read_text())
    return reports, {c["id"]: c for c in data["cells"]}


def test_second_container_is_served_from_the_shared_dir(remote: Any) -> None:
    cell = remote[1][NEW]
    assert cell["status"] == "pass", cell["reason"]
    o = cell["observations"]
    assert o["go_version"].startswith("go version go1.27")
    assert o["goenv_gocacheprog"] == "/opt/gcm/cacheprog"
    first, second = o["first"], o["second"]
    # remote builds the three-package lib workload (runner/workloads/lib)
    assert first["compiled"] == 3 and first["stats"]["puts"] > 0 and first["stats"]["processes"] == 1
    assert first["shared_bytes_before"] == 0 and first["shared_bytes_after"] > 0
    assert second["compiled"] == 0
    assert second["stats"]["hits_shared"] > 0 and second["stats"]["hits_local"] == 0
    assert second["stats"]["errors"] == 0 == first["stats"]["errors"]
    print("first:", first, "\nsecond:", second)


def test_old_toolchain_is_not_applicable(remote: Any) -> None:
    cell = remote[1][OLD]
    assert cell["status"] == "n/a"
    assert cell["reason"] == "GOCACHEPROG needs Go 1.24 or newer; this toolchain is go1.22.10"
    assert cell["observations"]["go_version"].startswith("go version go1.22.10")


def test_report_has_the_remote_table(remote: Any) -> None:
    md = (remote[0] / "matrix.md").read_text()
    assert "GOCACHEPROG (Go 1.24+)" in md
    assert "/opt/gcm/cacheprog" in md
