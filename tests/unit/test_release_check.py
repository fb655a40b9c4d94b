"""Issue 23, a maintainer's release check, without an engine: recipes come from the project wherever the matrix file
is, reproduce commands carry every option of the plan, and the terminal lists fail/error cells in the tool's own
format (one line, the fix, the cell's JSON)."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest

from runner import config, images, paths
from runner.errors import UsageError
from runner.execute import RunContext
from runner.model import Arch, Engine, ImageSource, Rootfs, Status
from runner.plan import Choices, build_plan
from runner.pytest_plugin import CATEGORY, failure_lines, split_fix
from runner.results import CellResult

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """matrix.toml copied to a directory with no images/ beside it."""
    d = tmp_path / "elsewhere"
    d.mkdir()
    shutil.copy(ROOT / "matrix.toml", d / "matrix.toml")
    return d / "matrix.toml"


def test_recipes_come_from_the_project_not_the_matrix_files_folder(outside: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GCM_IMAGES_DIR", raising=False)
    monkeypatch.chdir(outside.parent)
    assert paths.images_dir() == ROOT / "images"
    assert not (outside.parent / "images").exists()
    monkeypatch.setenv("GCM_IMAGES_DIR", str(outside.parent))
    with pytest.raises(UsageError) as e:
        paths.images_dir()
    assert "GCM_IMAGES_DIR" in str(e.value) and "images/apt.Dockerfile is missing" in str(e.value)
    assert e.value.fix and "pip install -e ." in e.value.fix


def _ctx(cfg: config.MatrixConfig, tmp_path: Path, **kw: object) -> RunContext:
    return RunContext(run_id="t", run_dir=tmp_path, cfg=cfg, images_dir=ROOT / "images", host_arch=Arch.AMD64,
                      **kw)  # type: ignore[arg-type]


def test_reproduce_carries_the_matrix_file_and_every_option(outside: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a relative --matrix must still work from any directory: it is made absolute
    rel = Path("elsewhere") / "matrix.toml"
    cfg = config.load(rel)
    spec = "debian-13=docker.io/library/debian:13.9"
    choices = Choices(profile="smoke", select=("debian-13/*",), engines=(Engine.PODMAN,), distros=(spec,),
                      endpoints={Arch.AMD64: "unix:///run/other.sock"}, registry_mirror="mirror.invalid:5000")
    cell = build_plan(cfg, choices, host_arch=Arch.AMD64)[0]
    ctx = _ctx(cfg, tmp_path, profile="smoke", default_matrix=False, adhoc={"debian-13": spec},
               registry_mirror="mirror.invalid:5000")
    argv = shlex.split(ctx.reproduce(cell))
    assert argv[:4] == ["go-cache-matrix", "run", "--select", cell.id]
    opts = dict(zip(argv[4::2], argv[5::2], strict=True))
    assert opts == {"--profile": "smoke", "--matrix": str((tmp_path / rel).resolve()), "--distro": spec,
                    "--engine": "podman", "--endpoint": "amd64=unix:///run/other.sock",
                    "--registry-mirror": "mirror.invalid:5000"}
    default = _ctx(cfg, tmp_path, profile=cfg.settings.default_profile)
    plain = build_plan(cfg, Choices(select=("debian-12/amd64/docker/go1.22/env",)), host_arch=Arch.AMD64)[0]
    assert default.reproduce(plain) == "go-cache-matrix run --select debian-12/amd64/docker/go1.22/env"


def _result(cell_id: str, status: Status, reason: str) -> CellResult:
    return CellResult(cell={"id": cell_id}, status=status, reason=reason,
                      reproduce=f"go-cache-matrix run --select {cell_id} --matrix /m/matrix.toml")


def test_failed_cells_are_one_line_and_the_fix(tmp_path: Path) -> None:
    cells = [
        _result("debian-14/amd64/docker/distro/env", Status.ERROR,
                "gcm-cell/debian-14:amd64-x: reading failed\n(exit 1); fix: `go-cache-matrix clean --images`"),
        _result("debian-14/amd64/docker/go1.27/cold-warm:small", Status.FAIL, "warm rebuild compiled 3 packages"),
        _result("debian-14/amd64/docker/go1.27/env", Status.PASS, "ok"),
        _result("debian-14/amd64/docker/go1.22/env", Status.UNAVAILABLE, "image: no"),
    ]
    lines = failure_lines(cells, tmp_path / "runs" / "r1")
    assert lines == [
        "ERROR debian-14/amd64/docker/distro/env: gcm-cell/debian-14:amd64-x: reading failed (exit 1)",
        "  fix: `go-cache-matrix clean --images`",
        f"  detail: {tmp_path}/runs/r1/cells/debian-14__amd64__docker__distro__env.json  rerun: "
        "go-cache-matrix run --select debian-14/amd64/docker/distro/env --matrix /m/matrix.toml",
        "FAIL debian-14/amd64/docker/go1.27/cold-warm:small: warm rebuild compiled 3 packages",
        "  fix: see the detail, then rerun: go-cache-matrix run --select debian-14/amd64/docker/go1.27/cold-warm:small "
        "--matrix /m/matrix.toml",
        f"  detail: {tmp_path}/runs/r1/cells/debian-14__amd64__docker__go1.27__cold-warm--small.json",
    ]
    assert split_fix("a\n  fix: b") == ("a", "b") and split_fix("no fix here") == ("no fix here", None)


def test_fail_and_error_cells_stay_out_of_pytests_failures_layout() -> None:
    # pytest prints its FAILURES/ERRORS sections for the "failed"/"error" categories only.
    assert {CATEGORY[s][0] for s in Status}.isdisjoint({"failed", "error"})


def test_distro_rootfs_form_names_a_suite_with_its_own_rule() -> None:
    cfg = config.load(ROOT / "matrix.toml")
    d14 = config.adhoc_distro("debian-14=rootfs:forky", cfg.distros)
    assert (d14.name, d14.release, d14.family.value, d14.eol) == ("Debian", "14", "apt", "unknown")
    assert d14.sources == (ImageSource.ROOTFS,) and d14.rootfs == Rootfs(suite="forky")
    d13 = config.adhoc_distro("debian-13=rootfs:testing", cfg.distros)  # a listed row keeps its facts
    assert d13.eol == cfg.distros["debian-13"].eol and d13.rootfs and d13.rootfs.suite == "testing"
    assert d13.sources == (ImageSource.ROOTFS,) and d13.digest is None
    for spec, words in (("debian-14=rootfs:", "is not a suite name"), ("debian-14=rootfs:Forky", "not a suite"),
                        ("debian-14=rootfs:forky main", "not a suite name"), ("alpine-4=rootfs:edge", "apk family"),
                        ("rocky-9=rootfs:forky", "dnf family"), ("mint-22=rootfs:forky", "cannot tell the family"),
                        ("Debian=rootfs:forky", "not a distro id")):
        with pytest.raises(UsageError) as e:
            config.adhoc_distro(spec, cfg.distros)
        assert words in e.value.message and e.value.fix == config.ROOTFS_FIX, (spec, e.value.message)
    cells = build_plan(cfg, Choices(profile="smoke", distros=("debian-14=rootfs:forky",)), host_arch=Arch.AMD64)
    assert {c.distro.id for c in cells} == {"debian-12", "debian-14"}


def test_a_suite_newer_than_the_hosts_debootstrap_uses_sids_script(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "sid").write_text("")
    (scripts / "trixie").write_text("")
    assert images.debootstrap_script("trixie", scripts) is None
    assert images.debootstrap_script("forky", scripts) == str(scripts / "sid")
    assert images.debootstrap_script("forky", tmp_path / "absent") is None
    program = tmp_path / "debootstrap"
    program.write_text('#!/bin/sh\nDEF_MIRROR="http://mirror.invalid/debian"\n')
    assert images.debootstrap_default_mirror(program) == "http://mirror.invalid/debian"
    monkeypatch.setattr(images, "DEBOOTSTRAP_SCRIPTS", scripts)
    monkeypatch.setattr(images, "DEBOOTSTRAP", program)
    cfg = config.load(ROOT / "matrix.toml")
    d14 = config.adhoc_distro("debian-14=rootfs:forky", cfg.distros)
    assert images._debootstrap_command(d14, Arch.AMD64, "DIR") == [
        "debootstrap", "--variant=minbase", "--arch=amd64", "forky", "DIR", "http://mirror.invalid/debian",
        str(scripts / "sid")]
    d13 = cfg.distros["debian-13"]
    assert images._debootstrap_command(d13, Arch.AMD64, "DIR")[-2:] == ["trixie", "DIR"]
    key = images.rootfs_key(d14, Arch.AMD64)
    (scripts / "forky").write_text("")  # a newer debootstrap: its own script, another tarball
    assert images.rootfs_key(d14, Arch.AMD64) != key


def test_an_adhoc_row_without_eol_is_told_where_a_date_can_go() -> None:
    import datetime

    cfg = config.load(ROOT / "matrix.toml")
    d14 = config.adhoc_distro("debian-14=rootfs:forky", cfg.distros)
    (w,) = config.release_warnings([d14], datetime.date(2026, 12, 6), "m.toml", adhoc=["debian-14"])
    assert w.startswith("debian-14: Debian 14 comes from --distro and has no eol date") and "copy of m.toml" in w


def test_the_report_says_where_each_rows_base_image_came_from() -> None:
    from runner.render import markdown

    c = _result("debian-14/amd64/docker/go1.27/env", Status.PASS, "ok")
    c.cell.update({"distro_name": "Debian", "release": "14", "arch": "amd64"})
    c.image = {"source": "rootfs", "base": "debootstrap --variant=minbase --arch=amd64 forky DIR M S/sid"}
    text = markdown.image_sources([c, c])
    assert text.count("| Debian 14 ") == 1 and "| rootfs " in text and "forky DIR M S/sid" in text
