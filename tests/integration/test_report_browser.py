"""The HTML report in a real browser (Debian's chromium, headless): no table wider than the window unless it sits in
its own scroll box, anchors resolve, every chart's inline SVG is laid out with a non-zero box, and a screenshot is
kept as a test artifact (reports/test-artifacts/report-browser.png; its path is printed).

The report is rendered from synthetic results (one cell of each kind of table, one with an unbreakable reason that
makes its table far wider than the window). A copy gets a small script that writes its measurements into the DOM,
which `chromium --dump-dom` prints; the report itself stays script-free."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from runner.model import Status
from runner.render import html
from runner.results import CellResult, RunResults

pytestmark = pytest.mark.integration

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1280,900"]
MEASURE = """<script>
const bad = [...document.querySelectorAll('table')].filter(t => {
  if (t.getBoundingClientRect().width <= window.innerWidth) return false;
  for (let p = t.parentElement; p; p = p.parentElement) {
    const s = getComputedStyle(p);
    if (['auto', 'scroll'].includes(s.overflowX) && p.getBoundingClientRect().width <= window.innerWidth) return false;
  }
  return true;
}).length;
const links = [...document.querySelectorAll('a[href^="#"]')].map(a => a.getAttribute('href').slice(1));
const broken = links.filter(id => !document.getElementById(id));
const svgs = [...document.querySelectorAll('svg')].map(s => {
  const r = s.getBoundingClientRect(); return r.width * r.height; });
const charts = [...document.querySelectorAll('figure[id^="chart-"]')].map(f => {
  const s = f.querySelector('svg'); const r = s ? s.getBoundingClientRect() : {width: 0, height: 0};
  return [f.id, Math.round(r.width), Math.round(r.height), s ? s.querySelectorAll('path, use').length : 0]; });
const out = document.createElement('pre'); out.id = 'gcm-measure';
out.textContent = JSON.stringify({bad, links: links.length, broken, svgs, charts,
  pageWidth: document.documentElement.scrollWidth, pageHeight: document.documentElement.scrollHeight,
  viewport: window.innerWidth});
document.body.appendChild(out);
</script>"""


ARTIFACT = Path(__file__).resolve().parents[2] / "reports" / "test-artifacts" / "report-browser.png"
CHARTS = ["chart-cold-warm", "chart-qemu", "chart-tmpfs", "chart-concurrent"]


def _cell(cid: str, status: Status, reason: str, obs: dict[str, Any] | None = None) -> CellResult:
    distro, arch, engine, toolchain, scenario = cid.split("/")
    name, _, variant = scenario.partition(":")
    return CellResult(cell={"id": cid, "distro": distro, "distro_name": "Debian", "release": distro[-2:], "arch": arch,
                            "engine": engine, "toolchain": toolchain, "scenario": name,
                            "variant": variant or None, "emulated": arch == "arm64", "eol": "2028-06-30"},
                      status=status, reason=reason, reproduce=f"go-cache-matrix run --select '{cid}'",
                      observations=obs or {})


def _chart_cells() -> list[CellResult]:
    """One cell per chart's data: cold-warm on both arches (arm64 emulated: the QEMU chart), tmpfs, concurrent."""
    def build(sec: float) -> dict[str, Any]:
        return {"sec": sec, "compiled": 0}
    ratio = {"median": 0.93, "min": 0.8, "max": 1.1}
    return [
        _cell("debian-12/amd64/docker/go1.22/cold-warm:small", Status.PASS, "ok",
              {"cold": build(12.0), "warm": build(0.08)}),
        _cell("debian-12/arm64/docker/go1.22/cold-warm:small", Status.PASS, "ok",
              {"cold": build(80.0), "warm": build(0.9)}),
        _cell("debian-12/amd64/docker/go1.22/tmpfs-goroot", Status.PASS, "ok",
              {"ratio_vs_disk": {"goroot-tmpfs/gocache-disk": ratio, "goroot-disk/gocache-tmpfs": ratio}}),
        _cell("debian-12/amd64/docker/go1.22/concurrent:same", Status.PASS, "ok",
              {"builds": [{"ran": True, "sec": s} for s in (30.0, 31.5, 33.0, 29.0)]}),
    ]


def test_report_in_headless_chromium(tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("chromium is not installed (fix: `scripts/setup.sh --tests`, or `apt-get install chromium`)")
    cells = [_cell("debian-12/amd64/docker/go1.22/env", Status.PASS, "ok"),
             _cell("debian-13/amd64/docker/go1.22/env", Status.UNAVAILABLE, "pull failed: " + "x" * 600),
             _cell("debian-12/arm64/docker/go1.22/env", Status.FAIL, "go env | grep GOCACHE: wrong"), *_chart_cells()]
    page = html.render(RunResults(run_dir=tmp_path, meta={"run_id": "browser"}, cells=cells, problems=[]))
    report = tmp_path / "matrix.html"
    report.write_text(page)
    probe = tmp_path / "measure.html"
    probe.write_text(page.replace("</body>", MEASURE + "</body>"))
    profile = tmp_path / "profile"
    dom = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120)
    m = re.search(r'<pre id="gcm-measure">(.*?)</pre>', dom.stdout)
    assert m, dom.stderr[-2000:]
    facts = json.loads(m.group(1).replace("&quot;", '"'))
    print(f"browser measurements: {facts}")
    assert facts["bad"] == 0, facts  # every table fits the window or scrolls in its own box
    assert facts["pageWidth"] <= facts["viewport"], facts  # the page itself never scrolls sideways
    assert facts["links"] > 0 and facts["broken"] == [], facts
    assert all(area > 0 for area in facts["svgs"]), facts
    # every chart drew: an inline SVG laid out with a real box and marks in it
    assert [c[0] for c in facts["charts"]] == CHARTS, facts
    assert all(w > 100 and h > 50 and marks > 0 for _, w, h, marks in facts["charts"]), facts
    shot = tmp_path / "report.png"
    # The whole page, charts included (they sit below the findings; the layout checks used a 900 px window).
    height = min(int(facts["pageHeight"]) + 20, 12000)
    tall = [f for f in CHROMIUM_FLAGS if not f.startswith("--window-size")] + [f"--window-size=1280,{height}"]
    subprocess.run([chromium, *tall, f"--user-data-dir={profile}", f"--screenshot={shot}", report.as_uri()],
                   capture_output=True, text=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 0
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)  # reports/ is ignored by git; CI may upload it
    shutil.copyfile(shot, ARTIFACT)
    print(f"screenshot: {ARTIFACT}")
