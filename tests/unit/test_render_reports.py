"""HTML, JUnit, baseline diff, GitHub summary and the Markdown additions: synthetic results in, text out."""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from runner.model import Status
from runner.render import baseline, junit, markdown
from runner.render import html as html_report
from runner.results import CellResult, RunResults
from tests.unit.test_render import COLD
from tests.unit.test_results import make

HOST = {"os": "Ubuntu 24.04.1 LTS", "kernel": "6.8.0-45-generic", "arch": "amd64", "cpus": 4, "selinux": "disabled",
        "engine": {"engine": "docker", "version": "27.3.1", "storage_driver": "overlay2", "cgroup_version": 2}}


def cell(cell_id: str, status: Status = Status.PASS, *, reason: str | None = None, inside: float | None = None,
         wall: float = 3.5, obs: dict[str, Any] | None = None) -> CellResult:
    """A cell as the runner writes it; arm64 cells are emulated (the host is amd64)."""
    c = make(cell_id, status, **(obs or {}))
    c.reason = reason if reason is not None else c.reason
    c.timings = {"cell_wall_sec": wall} | ({"in_container_sec": inside} if inside is not None else {})
    c.run_id, c.host = "20250101T000000Z-abc123", HOST
    return c


def cells() -> list[CellResult]:
    return [
        cell("debian-12/amd64/docker/go1.22/cold-warm:small", inside=12.0, wall=14.2, obs=COLD),
        cell("debian-12/arm64/docker/go1.22/cold-warm:small", inside=124.8, wall=131.0, obs=COLD),
        cell("debian-12/amd64/docker/go1.22/env", Status.FAIL, reason='GOCACHE is <unset> & "off"'),
        cell("debian-12/arm64/docker/go1.22/env", Status.ERROR, reason="probe exited 139 (SIGSEGV under QEMU)"),
        cell("ubuntu-24.04/amd64/docker/go1.22/location:home-unset", Status.KNOWN, reason="golang/go#29267"),
        cell("ubuntu-24.04/arm64/docker/go1.22/env", Status.UNAVAILABLE, reason="image not pulled (offline)"),
        cell("arch/arm64/docker/go1.22/env", Status.NA, reason="Arch Linux publishes no arm64 image"),
    ]


def run_of(cs: list[CellResult], **meta: Any) -> RunResults:
    return RunResults(run_dir=Path("/tmp/r1"), meta={"run_id": "r1", "profile": "default", "host": HOST, **meta},
                      cells=cs, problems=[])


def section(text: str, scenario: str) -> str:
    """The Markdown of one scenario's detail table, up to the next heading."""
    return text.split(f"### `{scenario}`")[1].split("\n#")[0]


def md_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row in text, stripped; separator rows dropped."""
    rows = [[v.strip() for v in line.strip().strip("|").split("|")] for line in text.splitlines()
            if line.startswith("|")]
    return [r for r in rows if not all(set(v) <= set("-:") for v in r)]


class StrictParser(HTMLParser):
    """Fails on mismatched tags; collects every src/href."""

    VOID = frozenset({"meta", "br", "hr", "img", "link", "input"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links += [v or "" for k, v in attrs if k in ("src", "href")]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()


def test_html_is_well_formed_and_self_contained() -> None:
    page = html_report.render(run_of(cells()))
    parser = StrictParser()
    parser.feed(page)
    parser.close()
    assert parser.stack == []
    assert not [link for link in parser.links if "http" in link]
    assert "://" not in page and "<script" not in page


def test_html_colours_escapes_and_reproduces() -> None:
    cs = cells()
    page = html_report.render(run_of(cs))
    for c in cs:
        assert f"<code>{html.escape(c.reproduce)}</code>" in page
    # compat cells: what happened first, then the status roll-up; worst measured status decides the colour;
    # emulated cells are marked; a cell that did not run (error) has no what-happened word
    assert '<td class="s s-fail">works 1 · breaks 1 — ✗ 1/2 (1 fail)</td>' in page
    assert '<td class="s s-error emulated">works 1 — ✗ 1/2 (1 error) (emulated)</td>' in page
    assert '<td class="s s-known">breaks 1 — ≈ 0/1 (1 known)</td>' in page
    assert '<td class="s s-unavailable">unavailable</td>' in page
    assert '<td class="s s-na">n/a</td>' in page
    assert "GOCACHE is &lt;unset&gt; &amp; &quot;off&quot;" in page and "<unset>" not in page
    assert "10.4×" in page and "cold s (pkgs)" in page  # detail content shared with the Markdown
    assert "Arch Linux publishes no arm64 image" in page  # not-measured table


def test_junit_counts_and_cases() -> None:
    cs = cells()
    cs[2].reason += " \x1b[31mred\x1b[0m"  # raw stderr: control characters are not XML
    suite = ET.fromstring(junit.render(run_of(cs)))
    assert suite.tag == "testsuite" and suite.get("name") == "go-cache-matrix"
    assert [suite.get(k) for k in ("tests", "failures", "errors", "skipped")] == ["7", "1", "1", "3"]
    cases = {f"{t.get('classname')}/{t.get('name')}": t for t in suite.iter("testcase")}
    assert set(cases) == {c.id for c in cs}
    # child element (failure/error/skipped) -> message, per cell; a pass has none
    outcome = {i: {e.tag: e.get("message") for e in t if e.tag != "system-out"} for i, t in cases.items()}
    assert outcome == {
        cs[0].id: {}, cs[1].id: {},
        cs[2].id: {"failure": 'GOCACHE is <unset> & "off" \ufffd[31mred\ufffd[0m'},
        cs[3].id: {"error": "probe exited 139 (SIGSEGV under QEMU)"},
        cs[4].id: {"skipped": "known: golang/go#29267"},
        cs[5].id: {"skipped": "unavailable: image not pulled (offline)"},
        cs[6].id: {"skipped": "n/a: Arch Linux publishes no arm64 image"},
    }
    cold = cases[cs[1].id]
    assert cold.get("classname") == "debian-12/arm64/docker/go1.22" and cold.get("name") == "cold-warm:small"
    assert cold.get("time") == "131.000" and cold.findtext("system-out") == f"reproduce: {cs[1].reproduce}"


def test_baseline_reports_status_changes_and_added_and_removed_cells() -> None:
    old = cells()
    new = [cell(c.id, c.status, reason=c.reason + " (re-run)") for c in old[:5]]  # reason-only changes
    new[2] = cell(old[2].id, Status.PASS, reason="fixed")
    added = cell("fedora-41/amd64/docker/go1.22/env", Status.FAIL, reason="GOFLAGS=-mod=vendor")
    changes = baseline.compare(old, [*new, added])
    assert changes == [
        baseline.Change("arch/arm64/docker/go1.22/env", "n/a", None, ""),
        baseline.Change("debian-12/amd64/docker/go1.22/env", "fail", "pass", "fixed"),
        baseline.Change("fedora-41/amd64/docker/go1.22/env", None, "fail", "GOFLAGS=-mod=vendor"),
        baseline.Change("ubuntu-24.04/arm64/docker/go1.22/env", "unavailable", None, ""),
    ]
    text = baseline.markdown_section(changes, "20241201T000000Z-ffeedd")
    assert text.startswith("## Changes since baseline 20241201T000000Z-ffeedd\n")
    assert md_rows(text) == [
        ["cell", "was", "now", "reason"],
        ["`arch/arm64/docker/go1.22/env`", "n/a", "— (gone)", "not in this run"],
        ["`debian-12/amd64/docker/go1.22/env`", "fail", "pass", "fixed"],
        ["`fedora-41/amd64/docker/go1.22/env`", "— (new cell)", "fail", "GOFLAGS=-mod=vendor"],
        ["`ubuntu-24.04/arm64/docker/go1.22/env`", "unavailable", "— (gone)", "not in this run"],
    ]
    assert baseline.compare(old, old) == []
    assert "No cell changed status." in baseline.markdown_section([], "main")


def test_changes_section_follows_the_compat_table() -> None:
    text = markdown.render(run_of(cells()), changes_section="## Changes since baseline x\n\nNo cell changed status.\n")
    assert text.index("| Debian 12") < text.index("## Changes since baseline x") < text.index("## Per scenario")


def test_qemu_slowdown_column_only_with_a_native_twin() -> None:
    text = markdown.render(run_of(cells()))
    header, amd64, arm64 = md_rows(section(text, "cold-warm"))
    assert (header[-1], amd64[1], amd64[-1], arm64[1], arm64[-1]) == (
        "QEMU slowdown", "amd64", "", "arm64 (emulated)", "10.4×")
    assert "QEMU slowdown" not in section(text, "env")  # the twin has no timings: no column
    lone = [cell("debian-12/arm64/docker/go1.22/cold-warm:small", inside=124.8, obs=COLD),
            cell("debian-12/amd64/docker/go1.22/cold-warm:large", inside=12.0, obs=COLD),  # other variant: no twin
            cell("ubuntu-24.04/amd64/docker/go1.22/cold-warm:small", inside=12.0, obs=COLD)]  # other distro
    assert "QEMU slowdown" not in markdown.render(run_of(lone))


def test_merged_run_shows_one_host_line_per_shard() -> None:
    arm = HOST | {"arch": "arm64", "kernel": "6.8.0-1018-azure"}
    shards = [{"run_id": "r-amd64", "host": HOST, "source": "shards/amd64"},
              {"run_id": "r-arm64", "host": arm, "source": "shards/arm64"}]
    run = run_of(cells(), shards=shards)
    text = markdown.render(run)
    assert "\nShard r-amd64: Host: Ubuntu 24.04.1 LTS, kernel 6.8.0-45-generic, amd64, 4 CPUs; engine docker" in text
    assert "\nShard r-arm64: Host: Ubuntu 24.04.1 LTS, kernel 6.8.0-1018-azure, arm64" in text
    assert "\nHost:" not in text
    assert "Shard r-arm64: Host:" in html_report.render(run)
    assert markdown.host_lines({"host": HOST}) == [markdown.host_line(HOST)]


def test_github_summary_is_compact() -> None:
    cs = cells()
    text = markdown.github_summary(run_of(cs))
    assert markdown.compat_table(sorted(cs, key=lambda c: c.id)) in text
    assert "Cells: 2 pass, 1 fail, 1 error, 1 unavailable, 1 n/a, 1 known." in text
    assert "| unavailable | image not pulled (offline)" in text
    assert "- **error** `debian-12/arm64/docker/go1.22/env`: probe exited 139" in text
    assert "reproduce: `go-cache-matrix run --select debian-12/arm64/docker/go1.22/env`" in text
    assert "### `cold-warm`" not in text and "cold s (pkgs)" not in text and "**pass**" not in text
    assert "Every measured cell passed." in markdown.github_summary(run_of(cs[:2]))
