"""portability for real: a cache made in Debian 12's container, copied into Debian 13's (and the control
row within Debian 13), and the -trimpath binary's sha256 in both."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RUN_ID = "it-portability"
CELLS = ["debian-13/amd64/docker/go1.22/portability:from-debian-12",
         "debian-13/amd64/docker/go1.22/portability:from-debian-13",
         "debian-12/amd64/docker/go1.22/portability:binary", "debian-13/amd64/docker/go1.22/portability:binary"]


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    reports = tmp_path_factory.mktemp("reports-portability")
    selects = [a for c in CELLS for a in ("--select", c)]
    proc = subprocess.run([sys.executable, "-m", "runner", "run", "--reports", str(reports), "-q", "-n", "2",
                           "--run-id", RUN_ID, *selects], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    print(proc.stdout[-4000:], proc.stderr[-2000:], sep="\n")
    data = json.loads((reports / "runs" / RUN_ID / "results.json").read_text())
    return reports, {c["id"]: c for c in data["cells"]}


@pytest.mark.parametrize("source", ["debian-12", "debian-13"])
def test_copied_cache_serves_the_other_distro(port: Any, source: str) -> None:
    cell = port[1][f"debian-13/amd64/docker/go1.22/portability:from-{source}"]
    assert cell["status"] == "pass", cell["reason"]
    obs = cell["observations"]
    assert obs["source_os"].startswith(f"Debian GNU/Linux {source.split('-')[1]}")
    assert obs["target_os"].startswith("Debian GNU/Linux 13")
    assert obs["populate_plain"]["compiled"] > 10, "the source container built from an empty cache"
    assert obs["same-path"]["compiled"] == 0 and obs["other-path-trimpath"]["compiled"] == 0
    assert obs["other-path"]["packages"], "a new checkout path without -trimpath should recompile the main module"
    assert all(p.startswith("gcm.example/small") for p in obs["other-path"]["packages"])


def test_trimpath_binaries_are_compared_across_distros(port: Any) -> None:
    reports, cells = port
    shas = {c: cells[c]["observations"]["sha256"] for c in CELLS if c.endswith(":binary")}
    assert all(len(s) == 64 for s in shas.values())
    md = (reports / "matrix.md").read_text()
    if len(set(shas.values())) == 1:
        assert "all 2 distros" in md
    else:
        assert "1 of 2: debian-12" in md
    print("binary sha256 per distro:", shas)
