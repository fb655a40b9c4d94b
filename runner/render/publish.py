"""Write every rendering of a run next to its results, and the newest copies under reports/.

    <run dir>/results.json  findings.json  matrix.md  matrix.html  junit.xml
    <reports>/matrix.md  matrix.html  junit.xml        (copies: what a user or CI job opens)
"""

from __future__ import annotations

import shutil
from pathlib import Path

from runner import findings
from runner.render import html, junit, markdown
from runner.results import RunResults, write_json_atomic

OUTPUTS = {"matrix.md": markdown.render, "matrix.html": html.render, "junit.xml": junit.render}


def publish(run: RunResults, reports: Path) -> None:
    write_json_atomic(run.run_dir / "results.json", {"schema_version": 1, "run": run.meta,
                                                     "cells": [c.to_dict() for c in run.cells]})
    findings.write(run)
    reports.mkdir(parents=True, exist_ok=True)
    for name, render in OUTPUTS.items():
        (run.run_dir / name).write_text(render(run))
        shutil.copyfile(run.run_dir / name, reports / name)
