"""Findings: one answer per question id (runner/questions.toml), computed from a run's cells.

    questions.toml ──ids, titles──┐
    scenario.answers() ──{qid: fn}┼──> compute(cells) -> [Finding]  (Q01..Q32, in order)
    the run's cells ──────────────┘        │
                                           ├── coverage: rows measured / under QEMU / unavailable / n/a / error
                                           ├── reproduce: go-cache-matrix run --select '*/<scenario>:<variant>' …
                                           └── a question no scenario answers: "not measured here: <missing>"

Everything is computed when rendering, from result files only, so `report` and `merge` recompute it.
Findings never change a cell's status (a fail stays a fail; `known` comes only from matrix.toml).
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.answer import NOT_MEASURED, VERDICTS, Answer, AnswerFn, Outcome, default_outcome, judged
from runner.model import Status
from runner.results import CellResult, RunResults, now_iso, write_json_atomic

if TYPE_CHECKING:
    from runner.scenarios.base import Scenario

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SCHEMA_VERSION = 1
QUESTIONS_FILE = Path(__file__).with_name("questions.toml")
SCHEMA_FILE = Path(__file__).parent / "schemas" / "findings.schema.json"


@dataclass(frozen=True)
class Question:
    id: str
    title: str
    needs: str
    missing: str = ""  # what a run would need, for a question no scenario answers


@cache
def questions() -> tuple[Question, ...]:
    data = tomllib.loads(QUESTIONS_FILE.read_text(encoding="utf-8"))
    return tuple(Question(qid, str(q["title"]), str(q["needs"]), str(q.get("missing", ""))) for qid, q in
                 sorted(data.items()))


@cache
def _scenarios() -> dict[str, Scenario]:
    from runner.scenarios import registry

    return dict(registry())


def answer_functions() -> dict[str, tuple[str, AnswerFn]]:
    """qid -> (the scenario that answers it, its function); a question answered twice is a bug."""
    out: dict[str, tuple[str, AnswerFn]] = {}
    for sid, impl in sorted(_scenarios().items()):
        fns: Mapping[str, AnswerFn] = impl.answers()
        for qid, fn in fns.items():
            if qid in out:
                raise ValueError(f"{qid} is answered by both {out[qid][0]} and {sid}")
            out[qid] = (sid, fn)
    return out


def outcome_of(c: CellResult) -> Outcome | None:
    """What happened in a cell, for people; None when nothing ran (unavailable, n/a, error)."""
    if c.status not in (Status.PASS, Status.FAIL, Status.KNOWN):
        return None
    impl = _scenarios().get(str(c.cell.get("scenario")))
    found = impl.outcome(c) if impl is not None else None
    return found if found is not None else default_outcome(c)


@dataclass(frozen=True)
class Coverage:
    measured: list[str]  # rows (distro/arch) judged natively
    emulated: list[str]  # rows judged under QEMU
    unavailable: list[str]  # rows with an unavailable cell (the first reason in `why`)
    not_applicable: list[str]
    errors: list[str]
    engines: list[str]
    toolchains: list[str]
    why: str = ""

    def text(self) -> str:
        if not (self.measured or self.emulated):
            return "nothing measured" + (f" ({self.why})" if self.why else "")
        parts = [f"measured: {', '.join(self.measured) or 'none natively'}"]
        if self.emulated:
            parts.append(f"under QEMU: {', '.join(self.emulated)}")
        parts.append(f"engines {', '.join(self.engines)}; toolchains {', '.join(self.toolchains)}")
        for label, rows in (("unavailable", self.unavailable), ("n/a", self.not_applicable),
                            ("error", self.errors)):
            if rows:
                more = f" and {len(rows) - 6} more" if len(rows) > 6 else ""
                parts.append(f"{label}: {', '.join(rows[:6])}{more}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"measured": self.measured, "emulated": self.emulated, "unavailable": self.unavailable,
                "not_applicable": self.not_applicable, "errors": self.errors, "engines": self.engines,
                "toolchains": self.toolchains, "text": self.text()}


PAST_SUPPORT = "past end of support"


def past_support(c: CellResult) -> str | None:
    """The day Go stopped supporting the cell's toolchain (matrix.toml toolchains.*.eol) when that was before the
    cell ran (else today), or None: supported then, a distro package, or a result from before toolchains had it."""
    eol = c.cell.get("toolchain_eol")
    if not isinstance(eol, str) or not eol:
        return None
    day = c.started[:10] or now_iso()[:10]
    return eol if eol < day else None


def toolchain_label(c: CellResult) -> str:
    """'go1.22 (past end of support)' or 'go1.27': a toolchain as the report lists it."""
    return str(c.cell.get("toolchain")) + (f" ({PAST_SUPPORT})" if past_support(c) else "")


def _rows(cells: Sequence[CellResult]) -> list[str]:
    return sorted({"/".join(c.id.split("/")[:2]) for c in cells})


def coverage(basis: Sequence[CellResult]) -> Coverage:
    done = judged(basis)
    not_done = {s: [c for c in basis if c.status is s] for s in (Status.UNAVAILABLE, Status.NA, Status.ERROR)}
    first = next((c.reason for cs in not_done.values() for c in cs), "")
    return Coverage(measured=_rows([c for c in done if not c.cell.get("emulated")]),
                    emulated=_rows([c for c in done if c.cell.get("emulated")]),
                    unavailable=_rows(not_done[Status.UNAVAILABLE]), not_applicable=_rows(not_done[Status.NA]),
                    errors=_rows(not_done[Status.ERROR]), engines=sorted({str(c.cell.get("engine")) for c in done}),
                    toolchains=sorted({toolchain_label(c) for c in done}), why=first)


def _patterns(basis: Sequence[CellResult], scenario: str) -> list[str]:
    """--select globs for the cells behind an answer: one per scenario:variant, `scenario:*` for many."""
    by: dict[str, set[str]] = {}
    for c in basis:
        by.setdefault(str(c.cell["scenario"]), set()).add(str(c.cell.get("variant") or ""))
    if not by:
        return [f"*/{scenario}*"]
    out = []
    for s, variants in sorted(by.items()):
        if variants == {""}:
            out.append(f"*/{s}")
        elif len(variants) > 3:
            out.append(f"*/{s}:*")
        else:
            out += [f"*/{s}:{v}" for v in sorted(variants)]
    return out


def _options(basis: Sequence[CellResult]) -> list[str]:
    """The options besides --select that the cells' own reproduce commands carry (matrix, profile, engine…)."""
    opts: list[str] = []
    for c in basis:
        try:
            words = shlex.split(c.reproduce)
        except ValueError:
            continue
        if "run" not in words:
            continue
        words = words[words.index("run") + 1:]
        i = 0
        while i < len(words) - 1:
            pair = words[i:i + 2]
            if pair[0] != "--select" and pair[0].startswith("--") and not _has(opts, pair):
                opts += pair
            i += 2
    return opts


def _has(opts: list[str], pair: list[str]) -> bool:
    return any(opts[i:i + 2] == pair for i in range(0, len(opts), 2))


def reproduce(basis: Sequence[CellResult], scenario: str) -> str:
    cmd = ["go-cache-matrix", "run"]
    for p in _patterns(basis, scenario):
        cmd += ["--select", p]
    return shlex.join(cmd + _options(basis))


@dataclass(frozen=True)
class Finding:
    question: Question
    verdict: str
    answer: str
    figure: str
    limits: str
    coverage: Coverage | None
    cells: list[str]
    scenarios: list[str]
    reproduce: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.question.id, "title": self.question.title, "needs": self.question.needs,
                "verdict": self.verdict, "answer": self.answer, "figure": self.figure, "limits": self.limits,
                "coverage": self.coverage.to_dict() if self.coverage else None, "cells": self.cells,
                "scenarios": self.scenarios, "reproduce": self.reproduce}


def _finding(q: Question, scenario: str, a: Answer) -> Finding:
    basis = sorted(a.basis, key=lambda c: c.id)
    cov = coverage(basis)
    text = a.text
    if a.verdict == NOT_MEASURED or not judged(basis) or not a.text:
        # Judged cells but no answer: they ran, yet none holds what decides the question (e.g. older results).
        why = (cov.why or f"no {scenario} cell was selected in this run") if not judged(basis) else \
            "the cells that ran do not record what decides it"
        text = f"not measured here: {why}"
    scenarios = sorted({str(c.cell["scenario"]) for c in basis} or {scenario})
    verdict = a.verdict if judged(basis) and a.text else NOT_MEASURED
    return Finding(q, verdict, text, a.figure, a.limits, cov,
                   [c.id for c in basis], scenarios, reproduce(basis, scenario))


def compute(cells: Sequence[CellResult]) -> list[Finding]:
    fns = answer_functions()
    out = []
    for q in questions():
        if q.id not in fns:
            out.append(Finding(q, NOT_MEASURED, f"not measured here: {q.missing or 'no scenario answers it yet'}",
                               "", "", None, [], [], ""))
            continue
        scenario, fn = fns[q.id]
        a = fn(cells)
        if a.verdict not in VERDICTS:
            raise ValueError(f"{q.id}: verdict {a.verdict!r} is not one of {VERDICTS}")
        out.append(_finding(q, scenario, a))
    return out


def to_json(run: RunResults, findings: Sequence[Finding] | None = None) -> dict[str, Any]:
    found = list(findings) if findings is not None else compute(run.cells)
    outcomes = {c.id: {"what_happened": o.word, "message": o.message} for c in sorted(run.cells, key=lambda c: c.id)
                if (o := outcome_of(c)) is not None}
    return {"schema_version": SCHEMA_VERSION, "run_id": str(run.meta.get("run_id", run.run_dir.name)),
            "generated": now_iso(), "answered": sum(1 for f in found if f.verdict != NOT_MEASURED),
            "questions": [f.to_dict() for f in found], "cells": outcomes}


def write(run: RunResults, findings: Sequence[Finding] | None = None) -> Path:
    path = run.run_dir / "findings.json"
    write_json_atomic(path, to_json(run, findings))
    return path
