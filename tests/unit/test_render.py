"""Rendering reads only results: synthetic results in, Markdown out, no engine."""

from __future__ import annotations

from pathlib import Path

from runner.model import Status
from runner.render import rollup
from runner.render.markdown import render
from runner.results import RunResults
from tests.unit.test_results import make

COLD = {"cold": {"sec": 11.5, "compiled": 56}, "warm": {"sec": 0.08, "compiled": 0},
        "touch": {"sec": 0.08, "compiled": 0}, "edit": {"sec": 0.1, "compiled": 1, "cache_bytes_after": 30_300_000}}


def test_rollup_strings() -> None:
    p = make()
    assert rollup([p, p]) == "✓ 2/2"
    assert rollup([p, make(status=Status.FAIL)]) == "✗ 1/2 (1 fail)"
    assert rollup([p, make(status=Status.UNAVAILABLE)]) == "✓ 1/1 [+1 unavailable]"
    assert rollup([make(status=Status.UNAVAILABLE)]) == "unavailable"
    assert rollup([make(status=Status.NA), make(status=Status.UNAVAILABLE)]) == "n/a + unavailable"
    assert rollup([make("debian-12/arm64/docker/go1.22/env")]) == "✓ 1/1 (emulated)"
    assert rollup([p, make(status=Status.KNOWN)]) == "≈ 1/2 (1 known)"


def test_render_has_table_details_reasons_and_reproduce(tmp_path: Path) -> None:
    cells = [
        make("debian-12/amd64/docker/go1.22/cold-warm:small", **COLD),
        make("debian-12/arm64/docker/go1.22/cold-warm:small", Status.FAIL, **COLD),
        make("ubuntu-24.04/amd64/docker/go1.22/env", Status.UNAVAILABLE),
    ]
    text = render(RunResults(run_dir=tmp_path, meta={"run_id": "r1", "profile": "default"}, cells=cells, problems=[]))
    assert "| Debian 12" in text and "| Ubuntu 24.04" in text
    assert "✓ 1/1" in text and "✗ 0/1 (1 fail) (emulated)" in text
    assert "11.50 (56)" in text and "0.08 (0)" in text and "30.3" in text
    assert "**fail** `debian-12/arm64/docker/go1.22/cold-warm:small`" in text
    assert "unavailable because" in text  # the reason is shown, grouped under "Not measured"
    assert "`go-cache-matrix run --select ubuntu-24.04/amd64/docker/go1.22/env`" in text


def test_render_marks_interrupted_and_problems(tmp_path: Path) -> None:
    run = RunResults(run_dir=tmp_path, meta={"interrupted": True}, cells=[], problems=["x.json: bad"])
    text = render(run)
    assert "interrupted: partial results" in text and "x.json: bad" in text


def test_distro_rows_sort_with_named_releases() -> None:
    from runner.render import distro_order

    cells = [make("debian-12/amd64/docker/go1.22/env"), make("debian-sid/amd64/docker/go1.22/env")]
    assert distro_order(cells) == ["debian-12", "debian-sid"]


def test_two_engines_give_one_row_per_distro_and_engine(tmp_path: Path) -> None:
    from runner.render.markdown import compat_table, host_line

    cells = [make("debian-12/amd64/docker/go1.22/env"), make("debian-12/amd64/podman/go1.22/env", Status.FAIL),
             make("debian-13/amd64/docker/go1.22/env")]
    table = compat_table(cells)
    rows = [ln for ln in table.splitlines() if ln.startswith("| Debian")]
    assert [r.split("|")[1].strip() for r in rows] == ["Debian 12 · docker", "Debian 12 · podman",
                                                       "Debian 13 · docker"]
    assert "✓ 1/1" in rows[0] and "✗ 0/1" in rows[1]
    assert "·" not in compat_table(cells[:1])  # one engine: the rows stay plain
    line = host_line({"engines": [{"engine": "docker", "version": "20.10", "rootless": False},
                                  {"engine": "podman", "version": "4.3.1", "rootless": False,
                                   "rootless_users": []}]})
    assert "engines docker 20.10" in line and "rootful" in line
    assert "rootless not tried: no non-root user with subuid/subgid ranges" in line


def test_buildkit_detail_names_the_builder(tmp_path: Path) -> None:
    builds = {"first": {"go_build_ok": True, "go_sec": 11.0, "compiled": 56, "mount_empty": True},
              "rebuild": {"go_build_ok": True, "go_sec": 0.3, "compiled": 1, "mount_empty": False,
                          "cache_files_before": 398}}
    cells = [make("debian-12/amd64/podman/go1.22/buildkit:rebuild", builds=builds, variant="rebuild",
                  cache_dir="/var/tmp/buildah-cache"),
             make("debian-12/amd64/podman/go1.22/buildkit:private", Status.FAIL, variant="private",
                  builds={"a": {"error": 'unrecognized value "private" for field `sharing`'}, "b": {}})]
    text = render(RunResults(run_dir=tmp_path, meta={}, cells=cells, problems=[]))
    assert "podman (buildah)" in text and "first: 11.0s (56) · mount empty" in text
    assert "rebuild: 0.3s (1) · mount 398 files" in text and "/var/tmp/buildah-cache" in text
    assert 'a: ✗ unrecognized value "private"' in text
