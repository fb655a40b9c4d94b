"""Write every rendering of a run next to its results, and the newest copies under reports/.

    <run dir>/results.json  findings.json  matrix.md  matrix.html  junit.xml
    <reports>/matrix.md  matrix.html  junit.xml        (copies: what a user or CI job opens)

Every file is written atomically (runner.results.write_text_atomic).
"""

from __future__ import annotations

from pathlib import Path

from runner import findings
from runner.render import html, junit, markdown
from runner.results import RunResults, write_json_atomic, write_text_atomic

OUTPUTS = {"matrix.md": markdown.render, "matrix.html": html.render, "junit.xml": junit.render}


def publish(run: RunResults, reports: Path) -> None:
    write_json_atomic(run.run_dir / "results.json", {"schema_version": 1, "run": run.meta,
                                                     "cells": [c.to_dict() for c in run.cells]})
    findings.write(run)
    reports.mkdir(parents=True, exist_ok=True)
    for name, render in OUTPUTS.items():
        # Temp file + rename for both copies: two runs finishing at once each leave a whole file, never a mix.
        text = render(run)
        write_text_atomic(run.run_dir / name, text)
        write_text_atomic(reports / name, text)
