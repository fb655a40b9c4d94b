"""Results are data: one versioned JSON file per cell, one run.json per run, one results.json roll-up.

    reports/runs/<run-id>/
        run.json                 run metadata: plan, choices, host, started/finished, interrupted
        cells/<cell slug>.json   CellResult.to_dict(), written atomically (temp file + rename)
        results.json             {"schema_version", "run", "cells": [...]} written by the controller
        matrix.md                rendered; reports/matrix.md is a copy of the newest run's

Renderers read only these files, so a run can be re-rendered without an engine.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner import schemas
from runner.model import Status

SCHEMA_VERSION = 1


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def new_run_id() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class ResultFormatError(Exception):
    pass


@dataclass
class CellResult:
    cell: dict[str, Any]
    status: Status
    reason: str
    observations: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    image: dict[str, Any] = field(default_factory=dict)
    toolchain: dict[str, Any] = field(default_factory=dict)
    host: dict[str, Any] = field(default_factory=dict)
    reproduce: str = ""
    run_id: str = ""
    started: str = ""
    finished: str = ""

    @property
    def id(self) -> str:
        return str(self.cell["id"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "id": self.id,
            "cell": self.cell,
            "status": self.status.value,
            "reason": self.reason,
            "observations": self.observations,
            "timings": self.timings,
            "image": self.image,
            "toolchain": self.toolchain,
            "host": self.host,
            "reproduce": self.reproduce,
            "run_id": self.run_id,
            "started": self.started,
            "finished": self.finished,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "<dict>") -> CellResult:
        version = d.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ResultFormatError(f"{source}: schema_version {version!r}, this tool reads {SCHEMA_VERSION}")
        try:
            return cls(
                cell=d["cell"], status=Status(d["status"]), reason=d["reason"],
                observations=d.get("observations", {}), timings=d.get("timings", {}), image=d.get("image", {}),
                toolchain=d.get("toolchain", {}), host=d.get("host", {}), reproduce=d.get("reproduce", ""),
                run_id=d.get("run_id", ""), started=d.get("started", ""), finished=d.get("finished", ""),
            )
        except (KeyError, ValueError) as e:
            raise ResultFormatError(f"{source}: not a cell result ({e})") from None


def cell_path(run_dir: Path, slug: str) -> Path:
    return run_dir / "cells" / f"{slug}.json"


@dataclass
class RunResults:
    run_dir: Path
    meta: dict[str, Any]
    cells: list[CellResult]
    problems: list[str]  # unreadable or leftover temp files, reported instead of crashing


def load_run(run_dir: Path) -> RunResults:
    meta: dict[str, Any] = {}
    problems: list[str] = []
    try:
        meta = json.loads((run_dir / "run.json").read_text())
    except FileNotFoundError:
        problems.append(f"{run_dir / 'run.json'} is missing (run metadata lost)")
    except ValueError as e:
        problems.append(f"{run_dir / 'run.json'} is not valid JSON: {e}")
    if meta:  # a run.json of another shape is named here; its other fields are still used
        found, bad = schemas.check("run", meta, str(run_dir / "run.json"))
        problems += found
        meta = {k: v for k, v in meta.items() if k not in bad or k in ("schema_version", "run_id")}
    # A merged run carries the clashes and read problems of its inputs (runner.merge).
    problems += [str(p) for key in ("conflicts", "problems") for p in meta.get(key, [])]
    cells: list[CellResult] = []
    cell_dir = run_dir / "cells"
    for p in sorted(cell_dir.glob(".*.tmp*")) if cell_dir.is_dir() else []:
        problems.append(f"{p} is an unfinished write (the writer was killed); ignored")
    for p in sorted(cell_dir.glob("*.json")) if cell_dir.is_dir() else []:
        try:
            data = json.loads(p.read_text())
            result = CellResult.from_dict(data, str(p))
            found = schemas.validate("cell", data, str(p))  # readable, yet not of the documented shape: left out
            problems += found
            if not found:
                cells.append(result)
        except ValueError as e:  # JSONDecodeError and ResultFormatError
            problems.append(f"{p}: {e}")
        except ResultFormatError as e:
            problems.append(str(e))
    return RunResults(run_dir=run_dir, meta=meta, cells=cells, problems=problems)


def latest_run(reports: Path) -> Path | None:
    runs = sorted((reports / "runs").glob("*/run.json"))
    return runs[-1].parent if runs else None
