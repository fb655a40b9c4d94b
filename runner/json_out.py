"""What `doctor --json`, `report --json` and `merge --json` print: one JSON object on stdout, for scripts and CI.

    doctor  {"exit_code", "essentials_ok", "host": {...}, "engines": {name: facts}, "caches": {"dir", "bytes",
             "kinds": [{"kind", "what", "paths", "bytes", "files"}]}, "lines": [the text report, line by line]}
    report  {"run_id", "run_dir", "cells", "counts": {status: n}, "answered", "questions", "written": [paths],
             "changed": n | null, "problems": [...]}
    merge   the same as report, plus "shards": [{"run_id", "cells", "source", "host_arch"}] and "report"

Key names are stable; new keys may be added. Counts name every status, zeros included.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runner import findings
from runner.answer import NOT_MEASURED
from runner.model import Status
from runner.results import RunResults


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=str)


def doctor(matrix: str, *, debug: bool = False) -> tuple[int, dict[str, Any]]:
    from runner import doctor as doctor_mod

    lines: list[str] = []
    facts: dict[str, Any] = {}
    code = doctor_mod.run(matrix, debug=debug, out=lines.append, facts=facts)
    return code, {"exit_code": code, "essentials_ok": code == 0, **facts, "lines": lines}


def run_summary(run: RunResults, *, written: Sequence[Path] = (), changed: int | None = None) -> dict[str, Any]:
    found = findings.compute(run.cells)
    return {"run_id": str(run.meta.get("run_id", run.run_dir.name)), "run_dir": str(run.run_dir),
            "cells": len(run.cells), "counts": {s.value: sum(1 for c in run.cells if c.status is s) for s in Status},
            "answered": sum(1 for f in found if f.verdict != NOT_MEASURED), "questions": len(found),
            "written": [str(p) for p in written], "changed": changed, "problems": list(run.problems)}


def merge_summary(run: RunResults, reports: Path) -> dict[str, Any]:
    shards = [{"run_id": s.get("run_id"), "cells": s.get("cells"), "source": s.get("source"),
               "host_arch": (s.get("host") or {}).get("arch")} for s in run.meta.get("shards", [])]
    return {**run_summary(run), "shards": shards, "report": str(reports / "matrix.md")}
