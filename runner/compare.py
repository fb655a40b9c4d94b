"""`compare`: one distro row against a reference row (by default the previous release of the same distro), from
results alone: what a maintainer asks of a new release, "what changed from Debian 13 to 14?".

    row cells        debian-14/amd64/docker/go1.27/env ──┐ paired by the rest of the id
    reference cells  debian-13/amd64/docker/go1.27/env ──┘ (arch/engine/toolchain/scenario)
        -> per pair: status, verdict, and every observation that differs (paths, Go's messages, hits,
           versions, the distro Go's facts and go.env, the image source), timings only beyond the noise floor

Counted (`--fail-on-difference`): a different status, or a scenario only one row has. Everything else is shown,
not counted: a newer package version or a moved path is what a new release is expected to bring.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runner.config import version_key
from runner.render.markdown import table
from runner.results import CellResult

NOISE_SEC = 0.5  # a timing within this many seconds ...
NOISE_RATIO = 0.25  # ... or within this fraction of the reference is noise: one run each, shared cores
MAX_VALUE = 160  # characters of a value shown in a table
# Volatile parts of a value that are not a difference: Go's temporary build dirs, the run's own ids.
_VOLATILE = (re.compile(r"/tmp/go-build\d+"), re.compile(r"gcm-(?:commit|cell|base)/[^\s:]+:[^\s]+"))
# Observations that are the raw material of others (each step's record is summarised by the scenario).
_SKIP = ("steps", "made_once", "shared_container")  # which cell of the run made a phase or ran the container


@dataclass(frozen=True)
class Difference:
    key: str  # dotted path, e.g. "observations.env_root.GOCACHE"
    reference: str
    row: str
    kind: str  # "status" | "timing" | "version" | "value"


@dataclass
class Pair:
    key: str  # the cell id without its distro: amd64/docker/go1.27/env
    row_status: str | None  # None: the row has no such cell
    reference_status: str | None
    differences: list[Difference] = field(default_factory=list)
    within_noise: int = 0  # timings that differ by less than the noise floor

    @property
    def counted(self) -> bool:
        return self.row_status != self.reference_status

    @property
    def verdict(self) -> str:
        """One line per scenario."""
        if self.reference_status is None:
            return f"only in the row ({self.row_status})"
        if self.row_status is None:
            return f"only in the reference ({self.reference_status}): not measured in the row"
        shown = len(self.differences)
        if self.counted:
            return f"status {self.reference_status} -> {self.row_status}" + (f"; {shown - 1} more differences"
                                                                              if shown > 1 else "")
        if not shown:
            return f"same ({self.row_status})" + (f"; {self.within_noise} timings within the noise floor"
                                                  if self.within_noise else "")
        kinds = sorted({d.kind for d in self.differences})
        what = "observation differs" if shown == 1 else "observations differ"
        return f"same status ({self.row_status}); {shown} {what} ({', '.join(kinds)})"


@dataclass
class Comparison:
    row: str
    reference: str
    row_source: str  # run id (dir)
    reference_source: str
    pairs: list[Pair]

    @property
    def counted(self) -> int:
        return sum(1 for p in self.pairs if p.counted)

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "reference": self.reference, "row_source": self.row_source,
                "reference_source": self.reference_source, "counted": self.counted,
                "noise_floor": {"seconds": NOISE_SEC, "ratio": NOISE_RATIO},
                "scenarios": [{"scenario": p.key, "row_status": p.row_status, "reference_status": p.reference_status,
                               "verdict": p.verdict, "counted": p.counted, "within_noise": p.within_noise,
                               "differences": [d.__dict__ for d in p.differences]} for p in self.pairs]}


def previous_release(row: str, known: Mapping[str, tuple[str, str]]) -> str | None:
    """The distro id of the release before `row` of the same distro name, from {id: (name, release)}; None when
    there is none. Releases compare as versions (13 < 14, 22.04 < 24.04); rolling/unnumbered ones have none."""
    if row not in known:
        return None
    name, release = known[row]
    mine = version_key(release + ".0") if "." not in release else version_key(release)
    older = [(version_key(r + ".0") if "." not in r else version_key(r), i) for i, (n, r) in known.items()
             if n == name and i != row]
    older = [(k, i) for k, i in older if k and mine and k < mine]
    return max(older)[1] if older else None


def pair_key(c: CellResult) -> str:
    return c.id.split("/", 1)[1]


def compare(row: str, row_cells: Sequence[CellResult], reference: str, reference_cells: Sequence[CellResult],
            row_source: str = "", reference_source: str = "") -> Comparison:
    mine = {pair_key(c): c for c in row_cells if c.cell.get("distro") == row}
    theirs = {pair_key(c): c for c in reference_cells if c.cell.get("distro") == reference}
    pairs = []
    for key in sorted(mine.keys() | theirs.keys()):
        a, b = theirs.get(key), mine.get(key)
        pair = Pair(key, b.status.value if b else None, a.status.value if a else None)
        if a and b:
            pair.differences, pair.within_noise = _differences(a, b)
        pairs.append(pair)
    return Comparison(row, reference, row_source, reference_source, pairs)


def _differences(ref: CellResult, row: CellResult) -> tuple[list[Difference], int]:
    out = []
    ids = (str(ref.cell.get("distro", "")), str(row.cell.get("distro", "")))
    if ref.status != row.status:
        out.append(Difference("status", ref.status.value, row.status.value, "status"))
    # A pass reason is a summary with timings (those are compared one by one below); other reasons are words.
    reasons = _normalise(ref.reason, ids), _normalise(row.reason, ids)
    if ref.status != row.status or (row.status.value != "pass" and reasons[0] != reasons[1]):
        out.append(Difference("reason", _short(ref.reason), _short(row.reason), "value"))
    a, b = _facts(ref, ids), _facts(row, ids)
    noise = 0
    for k in sorted(a.keys() | b.keys()):
        va, vb = a.get(k), b.get(k)
        if va == vb:
            continue
        if _is_timing(k) and isinstance(va, (int, float)) and isinstance(vb, (int, float)):
            if abs(vb - va) <= max(NOISE_SEC, NOISE_RATIO * abs(va)):
                noise += 1
                continue
            out.append(Difference(k, f"{va:g}", f"{vb:g}", "timing"))
            continue
        kind = "version" if re.search(r"version|GOVERSION|go_version", k) else "value"
        out.append(Difference(k, _short(va), _short(vb), kind))
    return out, noise


def _facts(c: CellResult, ids: Sequence[str]) -> dict[str, Any]:
    """The comparable facts of a cell, flattened to dotted keys: observations, Go's words of each failed step,
    the toolchain (distro Go's package, version, GOROOT), the image source."""
    flat: dict[str, Any] = {}
    _flatten("observations", {k: v for k, v in c.observations.items() if k not in _SKIP}, flat)
    for s in c.observations.get("steps", []) if isinstance(c.observations.get("steps"), list) else []:
        if isinstance(s, dict) and s.get("name"):  # Go's words per step: messages, exit codes
            for k in ("ok", "exit_code", "error"):
                if k in s:
                    flat[f"steps.{s['name']}.{k}"] = s[k]
            if s.get("stderr") and not s.get("ok"):  # a passing `go build -v` prints package names, not words
                flat[f"steps.{s['name']}.stderr"] = _first_line(str(s["stderr"]))
    _flatten("toolchain", {k: v for k, v in c.toolchain.items() if k not in ("wheel_sha256", "path")}, flat)
    flat["image.source"] = c.image.get("source")
    flat["image.base"] = c.image.get("base")
    # The runner's own timings (provisioning: cached or not; sums of the steps) are not observations of Go.
    return {k: _normalise(v, ids) for k, v in flat.items() if v is not None}


def _flatten(prefix: str, value: Any, out: dict[str, Any], depth: int = 0) -> None:
    if isinstance(value, dict) and depth < 4:
        for k, v in value.items():
            _flatten(f"{prefix}.{k}", v, out, depth + 1)
    elif isinstance(value, (list, dict)):
        out[prefix] = json.dumps(value, sort_keys=True)
    else:
        out[prefix] = value


def _normalise(v: Any, ids: Sequence[str] = ()) -> Any:
    """A value as compared: volatile parts and the two rows' own distro ids (in image tags, paths) blanked."""
    if isinstance(v, str):
        for pattern in _VOLATILE:
            v = pattern.sub("*", v)
        for distro_id in ids:
            if distro_id:
                v = v.replace(distro_id, "<distro>")
    return v


def _is_timing(key: str) -> bool:
    last = key.rsplit(".", 1)[-1]
    return last == "sec" or last.endswith("_sec") or last.startswith("sec_")


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _short(v: Any) -> str:
    text = "—" if v is None else str(v)
    text = " ".join(text.split())
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE - 1] + "…"


# ---------------------------------------------------------------- renderers
def _head(c: Comparison) -> list[str]:
    return [f"{c.row} compared with {c.reference}",
            f"row: {c.row_source} · reference: {c.reference_source} · timings within {NOISE_SEC:g} s or "
            f"{NOISE_RATIO:.0%} of the reference are noise (tallied per scenario, not shown)",
            f"differences in status (counted by --fail-on-difference): {c.counted}"]


def _summary_rows(c: Comparison) -> list[list[str]]:
    return [[p.key, p.reference_status or "—", p.row_status or "—", p.verdict] for p in c.pairs]


def _detail_rows(p: Pair) -> list[list[str]]:
    return [[d.key, d.reference, d.row, d.kind] for d in p.differences]


def markdown(c: Comparison) -> str:
    title, sources, counted = _head(c)
    lines = [f"# {title}", "", sources + "  ", counted, "",
             table(_summary_rows(c), ["scenario", c.reference, c.row, "verdict"]), ""]
    for p in c.pairs:
        if p.differences:
            lines += [f"## {p.key}", "", table(_md_escape(_detail_rows(p)), ["observation", c.reference, c.row,
                                                                            "kind"]), ""]
    return "\n".join(lines)


def _md_escape(rows: Iterable[list[str]]) -> list[list[str]]:
    return [[cell.replace("|", "\\|") for cell in r] for r in rows]


def html_page(c: Comparison) -> str:
    from runner.render.html import CSS

    title, sources, counted = _head(c)

    def tab(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(x)}</td>" for x in r) + "</tr>" for r in rows)
        return f"<table><tr>{head}</tr>{body}</table>"

    parts = ["<!DOCTYPE html>", "<html><head><meta charset=\"utf-8\">", f"<title>{html.escape(title)}</title>",
             f"<style>{CSS}</style></head><body>", f"<h1>{html.escape(title)}</h1>",
             f"<p>{html.escape(sources)}<br>{html.escape(counted)}</p>",
             tab(["scenario", c.reference, c.row, "verdict"], _summary_rows(c))]
    for p in c.pairs:
        if p.differences:
            parts += [f"<h2>{html.escape(p.key)}</h2>", tab(["observation", c.reference, c.row, "kind"],
                                                            _detail_rows(p))]
    return "\n".join([*parts, "</body></html>", ""])
