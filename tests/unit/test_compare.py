"""`go-cache-matrix compare`: a row against its previous release, on synthetic results (pure logic, no engine):
pairing, what is shown, what is counted, the noise floor, the default reference, and bad input (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runner import cli, compare
from runner.model import Status
from runner.results import CellResult, cell_path, write_json_atomic

ROOT = Path(__file__).resolve().parents[2]


def cell(distro: str, release: str, rest: str, status: Status = Status.PASS, reason: str = "ok",
         **parts: Any) -> CellResult:
    arch, engine, toolchain, scenario = rest.split("/")
    sid, _, variant = scenario.partition(":")
    ident = {"id": f"{distro}/{rest}", "distro": distro, "arch": arch, "engine": engine, "toolchain": toolchain,
             "scenario": sid, "variant": variant or None}
    return CellResult(cell={**ident, "distro_name": "Debian", "release": release},
                      status=status, reason=reason, observations=parts.get("observations", {}),
                      toolchain=parts.get("toolchain", {}), image=parts.get("image", {}),
                      timings=parts.get("timings", {}))


def rows() -> tuple[list[CellResult], list[CellResult]]:
    env = "amd64/docker/distro/env"
    cw = "amd64/docker/go1.27/cold-warm:small"
    ref = [
        cell("debian-13", "13", env, toolchain={"go_version": "go1.24.4", "goroot": "/usr/lib/go-1.24"},
             observations={"env_root": {"GOCACHE": "/root/.cache/go-build", "GOTOOLCHAIN": "auto"},
                           "go.env": {"GOTOOLCHAIN": "local"}},
             image={"source": "rootfs", "base": "debootstrap trixie DIR"}),
        cell("debian-13", "13", cw, observations={"cold": {"sec": 10.0, "compiled": 40}, "warm": {"sec": 0.2,
                                                                                                   "compiled": 0}}),
        cell("debian-13", "13", "amd64/docker/go1.22/env"),
    ]
    row = [
        cell("debian-14", "14", env, toolchain={"go_version": "go1.27.1", "goroot": "/usr/lib/go-1.27"},
             observations={"env_root": {"GOCACHE": "/root/.cache/go-build", "GOTOOLCHAIN": "auto"},
                           "go.env": {"GOTOOLCHAIN": "auto"}},
             image={"source": "rootfs", "base": "debootstrap forky DIR http://mirror.invalid/debian /scripts/sid"}),
        cell("debian-14", "14", cw, Status.FAIL, "warm rebuild compiled 3 packages",
             observations={"cold": {"sec": 10.3, "compiled": 40}, "warm": {"sec": 4.0, "compiled": 3}}),
        cell("debian-14", "14", "amd64/docker/go1.27/env"),
    ]
    return row, ref


def test_pairs_show_every_difference_and_count_only_status() -> None:
    row, ref = rows()
    c = compare.compare("debian-14", row, "debian-13", ref)
    by = {p.key: p for p in c.pairs}
    assert list(by) == ["amd64/docker/distro/env", "amd64/docker/go1.22/env", "amd64/docker/go1.27/cold-warm:small",
                        "amd64/docker/go1.27/env"]
    env = by["amd64/docker/distro/env"]
    assert not env.counted and env.verdict == "same status (pass); 4 observations differ (value, version)"
    assert {d.key: (d.reference, d.row, d.kind) for d in env.differences} == {
        "toolchain.go_version": ("go1.24.4", "go1.27.1", "version"),
        "toolchain.goroot": ("/usr/lib/go-1.24", "/usr/lib/go-1.27", "value"),
        "observations.go.env.GOTOOLCHAIN": ("local", "auto", "value"),
        "image.base": ("debootstrap trixie DIR", "debootstrap forky DIR http://mirror.invalid/debian /scripts/sid",
                       "value")}
    same = compare.compare("debian-14", [*row, cell("debian-14", "14", "amd64/docker/go1.22/env")], "debian-13", ref)
    assert {p.key: p.verdict for p in same.pairs}["amd64/docker/go1.22/env"] == "same (pass)"
    cw = by["amd64/docker/go1.27/cold-warm:small"]
    assert cw.counted and cw.verdict.startswith("status pass -> fail")
    keys = {d.key for d in cw.differences}
    assert {"status", "reason", "observations.warm.compiled", "observations.warm.sec"} <= keys
    assert "observations.cold.sec" not in keys and cw.within_noise == 1  # 10.0 -> 10.3 s: within the floor
    assert by["amd64/docker/go1.22/env"].verdict == "only in the reference (pass): not measured in the row"
    assert by["amd64/docker/go1.22/env"].counted
    assert by["amd64/docker/go1.27/env"].verdict == "only in the row (pass)"
    assert c.counted == 3


def test_outputs_markdown_html_json() -> None:
    row, ref = rows()
    c = compare.compare("debian-14", row, "debian-13", ref, "run a", "run b")
    md = compare.markdown(c)
    assert md.startswith("# debian-14 compared with debian-13") and "| scenario" in md
    assert "## amd64/docker/go1.27/cold-warm:small" in md and "differences in status (counted" in md
    page = compare.html_page(c)
    assert page.startswith("<!DOCTYPE html>") and "<h2>amd64/docker/distro/env</h2>" in page and "http" not in \
        page.replace("http://mirror.invalid", "")
    data = json.loads(json.dumps(c.to_dict()))
    assert data["counted"] == 3 and data["scenarios"][2]["verdict"].startswith("status pass -> fail")


def test_previous_release_is_the_nearest_older_one_of_the_same_distro() -> None:
    known = {"debian-12": ("Debian", "12"), "debian-13": ("Debian", "13"), "debian-14": ("Debian", "14"),
             "ubuntu-22.04": ("Ubuntu", "22.04"), "ubuntu-24.04": ("Ubuntu", "24.04"), "arch": ("Arch", "rolling")}
    assert compare.previous_release("debian-14", known) == "debian-13"
    assert compare.previous_release("debian-12", known) is None
    assert compare.previous_release("ubuntu-24.04", known) == "ubuntu-22.04"
    assert compare.previous_release("arch", known) is None and compare.previous_release("nope", known) is None


def _write_run(reports: Path, run_id: str, cells: list[CellResult]) -> Path:
    run_dir = reports / "runs" / run_id
    for c in cells:
        write_json_atomic(cell_path(run_dir, c.id.replace("/", "__").replace(":", "--")), c.to_dict())
    write_json_atomic(run_dir / "run.json", {"run_id": run_id})
    return run_dir


def test_cli_compare_writes_all_three_and_fails_on_difference(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # matrix.toml lists debian-13 as the release before... nothing: 14 is from results
    row, ref = rows()
    reports = tmp_path / "reports"
    _write_run(reports, "new", row)
    _write_run(reports, "old", ref)
    out, page = tmp_path / "c.md", tmp_path / "c.html"
    code = cli.main(["compare", "debian-14", "new", "--reference", "old", "--reports", str(reports), "-o", str(out),
                     "--html", str(page)])
    assert code == 0 and out.read_text().startswith("# debian-14 compared with debian-13")
    assert page.read_text().startswith("<!DOCTYPE html>")
    assert cli.main(["compare", "debian-14", "new", "--reference", "old", "--reports", str(reports),
                     "--fail-on-difference"]) == 1
    capsys.readouterr()
    assert cli.main(["compare", "debian-14", "new", "--reference", "old", "--reports", str(reports), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["reference"] == "debian-13"


@pytest.mark.parametrize(("argv", "words", "fix"), [
    (["compare", "debain-14", "new"], "has no cell of the row 'debain-14' (did you mean 'debian-14'?)",
     "name a distro of that run"),
    (["compare", "debian-14", "new"], "has no cell of the reference row 'debian-13'", "--reference DIR"),
    (["compare", "debian-14", "new", "--reference", "nowhere"], "nowhere is not a run directory", "run id"),
    (["compare", "debian-14", "new", "--reference", "old", "--against", "debian-11"],
     "has no cell of the reference row 'debian-11'", "--against"),
])
def test_cli_compare_bad_input_is_one_error_and_a_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch, argv: list[str], words: str,
                                                      fix: str) -> None:
    monkeypatch.chdir(ROOT)
    row, ref = rows()
    reports = tmp_path / "reports"
    _write_run(reports, "new", row)
    _write_run(reports, "old", ref)
    assert cli.main([*argv, "--reports", str(reports)]) == 2
    err = capsys.readouterr().err
    assert words in err and "fix:" in err and fix in err.split("fix:", 1)[1], err
    assert "Traceback" not in err
