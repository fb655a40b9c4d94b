"""reports/junit.xml: one testcase per cell, so CI test views show the matrix without custom tooling."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from runner.model import Status
from runner.results import CellResult, RunResults

# XML 1.0 forbids most control characters; reasons can quote raw stderr, which may contain them.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(s: Any) -> str:
    return _NOT_XML.sub("\ufffd", str(s))


def _seconds(c: CellResult) -> float:
    sec = c.timings.get("cell_wall_sec")
    return float(sec) if isinstance(sec, (int, float)) else 0.0


def _testcase(c: CellResult) -> ET.Element:
    d = c.cell
    name = d["scenario"] + (f":{d['variant']}" if d.get("variant") else "")
    case = ET.Element("testcase", classname=f"{d['distro']}/{d['arch']}/{d['engine']}/{d['toolchain']}",
                      name=name, time=f"{_seconds(c):.3f}")
    if c.status is Status.FAIL:
        ET.SubElement(case, "failure", message=_text(c.reason))
    elif c.status is Status.ERROR:
        ET.SubElement(case, "error", message=_text(c.reason))
    elif c.status is not Status.PASS:  # unavailable, n/a, known
        ET.SubElement(case, "skipped", message=_text(f"{c.status.value}: {c.reason}"))
    ET.SubElement(case, "system-out").text = _text(f"reproduce: {c.reproduce}")
    return case


def render(run: RunResults) -> str:
    cells = sorted(run.cells, key=lambda c: c.id)
    n = {s: sum(1 for c in cells if c.status is s) for s in Status}
    suite = ET.Element("testsuite", name="go-cache-matrix", tests=str(len(cells)), failures=str(n[Status.FAIL]),
                       errors=str(n[Status.ERROR]),
                       skipped=str(n[Status.UNAVAILABLE] + n[Status.NA] + n[Status.KNOWN]),
                       time=f"{sum(map(_seconds, cells)):.3f}")
    if run.meta.get("started"):
        suite.set("timestamp", str(run.meta["started"]))
    suite.extend(_testcase(c) for c in cells)
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
