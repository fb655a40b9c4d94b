"""reports/matrix.html: the Markdown report's content as one self-contained page (inline CSS, no
scripts, no external URLs), with the distro x arch table coloured by status."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from typing import Any

from runner import findings
from runner.answer import NOT_MEASURED
from runner.model import Status
from runner.render import charts, markdown
from runner.results import CellResult, RunResults

_SEVERITY = (Status.ERROR, Status.FAIL, Status.KNOWN, Status.PASS, Status.UNAVAILABLE, Status.NA)
_NOT_MEASURED = (Status.UNAVAILABLE, Status.NA)

CSS = """
body { font: 15px/1.5 system-ui, sans-serif; margin: 2em; color: #222; max-width: 100%; }
h1 { font-size: 1.9em; } h2 { font-size: 1.5em; margin-top: 1.6em; } h3 { font-size: 1.2em; margin-top: 1.4em; }
.scroll { overflow-x: auto; max-width: 100%; margin: .5em 0 1.5em; }
table { border-collapse: collapse; }
nav.toc ul { columns: 16em; margin: .3em 0 1em; }
details { margin: .3em 0 1em; } summary { cursor: pointer; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
code { font: 12px ui-monospace, monospace; background: #f5f5f5; padding: 0 .2em; }
.compat td.s { font-weight: 600; min-width: 10em; }
.s-pass { background: #2e7d32; color: #fff; }
.s-fail { background: #d32f2f; color: #fff; }
.s-error { background: #8e2400; color: #fff; }
.s-known { background: #ffb300; color: #222; }
.s-unavailable { background: #9e9e9e; color: #fff; }
.s-na { background: #e0e0e0; color: #555; }
.emulated { font-style: italic; }
.s.emulated { background-image: repeating-linear-gradient(45deg, rgba(255,255,255,.3) 0 4px, transparent 4px 10px); }
tr.emulated { background: repeating-linear-gradient(45deg, #f2f2f2 0 4px, #fff 4px 10px); }
.s-pass code, .s-fail code, .s-error code, .s-unavailable code { background: transparent; color: inherit; }
.w-works { background: #e8f5e9; }
.w-degraded { background: #fff3cd; }
.w-breaks { background: #fde0dc; }
.findings td { max-width: 40em; }
.badge { display: inline-block; padding: 0 .5em; border-radius: .8em; margin-right: .3em; }
.legend span { display: inline-block; padding: 0 .5em; margin-right: .3em; }
figure { margin: 1em 0 2em; } figure svg { max-width: 100%; height: auto; display: block; }
"""


def status_class(status: Status) -> str:
    return "s-" + status.value.replace("/", "")


def worst(cells: Sequence[CellResult]) -> Status:
    """The most severe status among measured cells, or among all when none was measured."""
    measured = [c.status for c in cells if c.status not in _NOT_MEASURED] or [c.status for c in cells]
    return min(measured, key=_SEVERITY.index)


def _inline(text: Any) -> str:
    """Escape, then render the Markdown the shared row functions use: `code` and **bold**."""
    s = html.escape(str(text))
    s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", s)


def _classes(*names: str) -> str:
    names = tuple(n for n in names if n)
    return f' class="{" ".join(names)}"' if names else ""


def _table(headers: Sequence[str], rows: Iterable[str], cls: str = "") -> str:
    """rows are finished <tr> markup; headers are escaped here."""
    head = "".join(f"<th>{_inline(h)}</th>" for h in headers)
    body = "\n".join(rows)
    # Each table scrolls sideways in its own box: a wide one (env, concurrent) must not push the page, and its
    # last columns (status) stay reachable.
    return (f'<div class="scroll"><table{_classes(cls)}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n'
            "</tbody>\n</table></div>")


def _td(value: Any, *classes: str) -> str:
    return f"<td{_classes(*classes)}>{_inline(value)}</td>"


def _tr(cells: Iterable[str], *classes: str) -> str:
    return f"<tr{_classes(*classes)}>{''.join(cells)}</tr>"


def _compat(cells: Sequence[CellResult]) -> str:
    arches, grid = markdown.compat_grid(cells)
    rows = []
    for label, eol, groups in grid:
        row = [f"<th>{_inline(label)}</th>", _td(eol)]
        for g in groups:
            emulated = any(c.cell.get("emulated") for c in g if c.status not in _NOT_MEASURED)
            row.append(_td(markdown.compat_entry(g), "s", status_class(worst(g)), "emulated" if emulated else "")
                       if g else _td("—"))
        rows.append(_tr(row))
    return _table(["distro", "EOL", *arches], rows, "compat")


def _cell_class(i: int, v: Any, c: CellResult, status_at: int, happened_at: int) -> str:
    """The status column is coloured by status, the what-happened column by its first word."""
    if i == status_at:
        return status_class(c.status)
    return f"w-{str(v).split(':')[0]}" if i == happened_at and v else ""


def _details(cells: Sequence[CellResult]) -> list[str]:
    out = []
    for d in markdown.details(cells):
        out.append(f'<h3 id="{anchor("scenario", d.scenario)}"><code>{html.escape(d.scenario)}</code></h3>')
        if d.title:
            out.append(f"<p>{_inline(d.title)}.</p>")
        at = d.headers.index("status") if "status" in d.headers else -1
        said = d.headers.index("what happened") if "what happened" in d.headers else -1
        rows = [_tr((_td(v, _cell_class(i, v, c, at, said)) for i, v in enumerate(r)),
                    "emulated" if c.cell.get("emulated") else "").replace("<tr", f'<tr id="{anchor("cell", c.id)}"', 1)
                for r, c in zip(d.rows, d.cells, strict=True)]
        out.append(_table(d.headers, rows))
        out.append(_reproduce_details(d.cells))
        findings = [c for c in d.cells if c.status is not Status.PASS]
        if findings:
            out.append("<ul>" + "".join(
                f'<li><span class="badge {status_class(c.status)}">{c.status.value}</span> '
                f"<code>{html.escape(c.id)}</code>: {_inline(c.reason)}</li>" for c in findings) + "</ul>")
    return out


def anchor(kind: str, name: str) -> str:
    """A stable fragment id for a scenario section or a cell (ids hold `/` and `:`, kept readable)."""
    return f"{kind}-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")


def _reproduce_details(cells: Sequence[CellResult]) -> str:
    """The scenario's reproduce commands, collapsed: one line per cell would make the page endless."""
    lines = "\n".join(html.escape(c.reproduce) for c in cells if c.reproduce)
    return (f"<details><summary>Reproduce these {len(cells)} cells</summary><pre><code>{lines}</code></pre></details>"
            if lines else "")


def _charts(cells: Sequence[CellResult]) -> list[str]:
    """The Charts section (runner.render.charts): nothing at all when the run has no data for any chart."""
    drawn = charts.charts(cells)
    if not drawn:
        return []
    return ['<h2 id="charts">Charts</h2>', *(f'<figure id="{c.id}"><figcaption><strong>{html.escape(c.title)}</strong>'
                                             f" · {html.escape(c.note)}</figcaption>{c.svg}</figure>" for c in drawn)]


def _toc(cells: Sequence[CellResult]) -> str:
    """Links to every section and every scenario's table."""
    scenarios = "".join(f'<li><a href="#{anchor("scenario", d.scenario)}"><code>{html.escape(d.scenario)}</code></a>'
                        "</li>" for d in markdown.details(cells))
    return ('<nav class="toc"><h2 id="contents">Contents</h2><ul><li><a href="#findings">Findings</a></li>'
            '<li><a href="#compat">Distro × architecture</a></li>'
            f'<li><a href="#per-scenario">Per scenario</a><ul>{scenarios}</ul></li>'
            '<li><a href="#not-measured">Not measured</a></li><li><a href="#reproduce">Reproduce</a></li></ul></nav>')


def _findings(cells: Sequence[CellResult]) -> list[str]:
    found = findings.compute(cells)
    answered = sum(1 for f in found if f.verdict != NOT_MEASURED)
    rows = []
    tables = {d.scenario for d in markdown.details(cells)}  # a link only where the page has that scenario's table
    for f in found:
        links = ", ".join(f'<a href="#{anchor("scenario", s)}"><code>{html.escape(s)}</code></a>' if s in tables
                          else f"<code>{html.escape(s)}</code>" for s in f.scenarios)
        rows.append(_tr([f'<td id="{f.question.id}">{f.question.id}</td>', _td(f.question.title), _td(f.answer),
                         _td(f.figure), _td(markdown.coverage_text(f)),
                         f"<td>{links}{f' ({len(f.cells)} cells)' if f.cells else ''}</td>",
                         f"<td><code>{html.escape(f.reproduce)}</code></td>"],
                        "" if f.verdict != NOT_MEASURED else "not-measured"))
    return ['<h2 id="findings">Findings</h2>',
            f"<p>{answered} of {len(found)} questions answered from this run. {_inline(markdown.FINDINGS_NOTE)}</p>",
            _table(markdown.FINDINGS_HEADERS, rows, "findings")]


def _not_measured(cells: Sequence[CellResult]) -> str:
    rows = markdown.not_measured_rows(cells)
    if not rows:
        return "<p>Every selected cell was measured.</p>"
    return _table(markdown.NOT_MEASURED_HEADERS,
                  [_tr([_td(r[0], status_class(Status(r[0]))), *map(_td, r[1:])]) for r in rows])


def _reproduce(cells: Sequence[CellResult]) -> str:
    rows = [_tr([f"<td><code>{html.escape(c.id)}</code></td>", _td(c.status.value, status_class(c.status)),
                 f"<td><code>{html.escape(c.reproduce)}</code></td>"]) for c in cells]
    return _table(["cell", "status", "reproduce with"], rows)


def _warnings(meta: dict[str, Any]) -> list[str]:
    """The run's warnings (EOL, podman standing in for docker, ...), as the Markdown report shows them."""
    return [f'<p class="warning"><strong>Warning:</strong> {_inline(w)}</p>' for w in meta.get("warnings", [])]


def render(run: RunResults) -> str:
    cells = sorted(run.cells, key=lambda c: c.id)
    run_id = html.escape(str(run.meta.get("run_id", run.run_dir.name)))
    counts = [(s, sum(1 for c in cells if c.status is s)) for s in Status]
    summary = " ".join(f'<span class="badge {status_class(s)}">{n} {s.value}</span>' for s, n in counts if n)
    legend = " ".join(f'<span class="{status_class(s)}">{s.value}</span>' for s in _SEVERITY)
    drawn = _charts(cells)
    toc = _toc(cells)
    if drawn:
        toc = toc.replace('<li><a href="#compat">', '<li><a href="#charts">Charts</a></li><li><a href="#compat">', 1)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        f'<head>\n<meta charset="utf-8">\n<title>go-cache-matrix results · {run_id}</title>\n'
        f"<style>{CSS}</style>\n</head>",
        "<body>",
        "<h1>go-cache-matrix results</h1>",
        f"<p>{_inline(markdown.run_line(run))}</p>",
        *(f"<p>{_inline(line)}</p>" for line in markdown.host_lines(run.meta)),
        *(f"<p>{_inline(line)}</p>" for line in [markdown.toolchains_line(cells)] if line),
        *_warnings(run.meta),
        f"<p>Cells: {summary or 'no cells'}</p>",
        toc,
        *_findings(cells),
        *drawn,
        '<h2 id="compat">Distro × architecture</h2>',
        f"<p>{html.escape(markdown.LEGEND)}</p>",
        f'<p class="legend">{legend} <span class="s s-pass emulated">emulated (QEMU)</span></p>',
        _compat(cells),
        '<h2 id="per-scenario">Per scenario</h2>',
        *_details(cells),
        '<h2 id="not-measured">Not measured</h2>',
        _not_measured(cells),
    ]
    if run.problems:
        parts += ["<h2>Problems reading this run</h2>",
                  "<ul>" + "".join(f"<li>{html.escape(p)}</li>" for p in run.problems) + "</ul>"]
    parts += ['<h2 id="reproduce">Reproduce</h2>',
              f"<details><summary>Every cell's command ({len(cells)})</summary>{_reproduce(cells)}</details>",
              "</body>", "</html>", ""]
    return "\n".join(parts)
