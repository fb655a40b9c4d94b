"""Results are data: one versioned JSON file per cell, one run.json per run, one results.json roll-up.

    reports/runs/<run-id>/
        run.json                 run metadata: plan, choices, host, started/finished, interrupted
        cells/<cell slug>.json   CellResult.to_dict(), written atomically (temp file + rename)
        results.json             {"schema_version", "run", "cells": [...]} written by the controller
        matrix.md                rendered; reports/matrix.md is a copy of the newest run's

Renderers read only these files, so a run can be re-rendered without an engine.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import secrets
from collections.abc import Sequence
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


class DiskFull(OSError):
    """A result or report write that ran out of space: named as such, with the path (errno ENOSPC)."""

    def __init__(self, path: Path) -> None:
        super().__init__(errno.ENOSPC, "disk full (no space left on device)", str(path))


def write_text_atomic(path: Path, text: str) -> None:
    """Write to a temporary file beside path, fsync, rename over path: a reader (or a second run writing the same
    file) sees the old content or the new, never half. On failure the temporary file is removed, so `report`
    never mistakes a full disk for a killed writer; a full disk raises DiskFull naming path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if e.errno == errno.ENOSPC and not isinstance(e, DiskFull):
            raise DiskFull(path) from e
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


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
    def from_dict(cls, d: Any, source: str = "<dict>") -> CellResult:
        """A cell result from its JSON, or ResultFormatError saying which field has which wrong shape: renderers
        may then rely on the shapes this tool writes (files are edited, truncated, or come from elsewhere)."""
        if not isinstance(d, dict):
            raise ResultFormatError(f"{source}: not a cell result (a JSON {_kind(d)}, not an object)")
        version = d.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ResultFormatError(f"{source}: schema_version {version!r}, this tool reads {SCHEMA_VERSION}")
        if problem := _shape_problem(d):
            raise ResultFormatError(f"{source}: not a cell result ({problem})")
        try:
            status = Status(d["status"])
        except ValueError:
            raise ResultFormatError(f"{source}: not a cell result (status {d['status']!r} is not one of "
                                    f"{', '.join(s.value for s in Status)})") from None
        return cls(
            cell=d["cell"], status=status, reason=d["reason"],
            observations=d.get("observations", {}), timings=d.get("timings", {}), image=d.get("image", {}),
            toolchain=d.get("toolchain", {}), host=d.get("host", {}), reproduce=d.get("reproduce", ""),
            run_id=d.get("run_id", ""), started=d.get("started", ""), finished=d.get("finished", ""),
        )


# The shapes renderers rely on: (key, type, required). A cell's own fields, then the result's.
CELL_FIELDS: tuple[tuple[str, type | tuple[type, ...], bool], ...] = (
    ("id", str, True), ("distro", str, True), ("arch", str, True), ("engine", str, True),
    ("toolchain", str, True), ("scenario", str, True), ("variant", (str, type(None)), False),
    ("emulated", bool, False), ("distro_name", str, False), ("release", str, False),
    ("eol", (str, type(None)), False), ("toolchain_source", (str, type(None)), False),
    ("toolchain_eol", (str, type(None)), False),
)
RESULT_FIELDS: tuple[tuple[str, type | tuple[type, ...], bool], ...] = (
    ("cell", dict, True), ("status", str, True), ("reason", str, True), ("observations", dict, False),
    ("timings", dict, False), ("image", dict, False), ("toolchain", dict, False), ("host", dict, False),
    ("reproduce", str, False), ("run_id", str, False), ("started", str, False), ("finished", str, False),
)


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


def _fields_problem(d: dict[str, Any], fields: Sequence[tuple[str, type | tuple[type, ...], bool]],
                    where: str) -> str | None:
    for key, want, required in fields:
        if key not in d:
            if required:
                return f"{where}{key} is missing"
            continue
        if not isinstance(d[key], want):
            return f"{where}{key} is a JSON {_kind(d[key])}"
    return None


def _shape_problem(d: dict[str, Any]) -> str | None:
    return _fields_problem(d, RESULT_FIELDS, "") or _fields_problem(d["cell"], CELL_FIELDS, "cell.")


def cell_path(run_dir: Path, slug: str) -> Path:
    return run_dir / "cells" / f"{slug}.json"


@dataclass
class RunResults:
    run_dir: Path
    meta: dict[str, Any]
    cells: list[CellResult]
    problems: list[str]  # unreadable or leftover temp files, reported instead of crashing


def read_json(path: Path) -> Any:
    """A JSON file's value, or ResultFormatError saying why not: unreadable, a directory, not UTF-8, not JSON,
    nested too deep for this Python (json.loads raises RecursionError, not ValueError, there)."""
    if path.exists() and not path.is_file():  # a FIFO would block read_text; a directory cannot be read
        raise ResultFormatError(f"{path}: not a regular file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except OSError as e:
        raise ResultFormatError(f"{path}: cannot read: {e.strerror or e}") from None
    except RecursionError:
        raise ResultFormatError(f"{path}: JSON nested too deep to read") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise ResultFormatError(f"{path}: not valid JSON: {e}") from None


# run.json keys the renderers and merge read, with the shape they need; a key of another shape is dropped
# (and reported) instead of crashing them.
META_FIELDS: dict[str, type | tuple[type, ...]] = {
    "run_id": str, "profile": str, "started": (str, type(None)), "finished": (str, type(None)),
    "interrupted": bool, "host": dict, "choices": dict, "plan": dict, "warnings": list, "conflicts": list,
    "problems": list, "missing_cells": list, "shards": list, "resumed": list, "owner": str,
    "left_out_under_qemu": dict, "kept_to": dict,
}
META_LISTS_OF_STR = ("warnings", "conflicts", "problems", "missing_cells")


def _meta_problems(meta: dict[str, Any], source: Path) -> list[str]:
    """Drop run.json keys of a shape this tool never writes; one problem per dropped key."""
    problems = []
    for key, want in META_FIELDS.items():
        if key not in meta:
            continue
        value = meta[key]
        ok = isinstance(value, want)
        if ok and key in META_LISTS_OF_STR:
            ok = all(isinstance(v, str) for v in value)
        if ok and key == "shards":
            ok = all(isinstance(s, dict) and isinstance(s.get("host", {}), dict) for s in value)
        if ok and key == "host":
            engines = value.get("engines", [])
            ok = isinstance(engines, list) and all(isinstance(e, dict) for e in engines)
        if not ok:
            problems.append(f"{source}: {key} has a shape this tool does not write (a JSON {_kind(value)}); ignored")
            del meta[key]
    return problems


def _load_meta(run_dir: Path, problems: list[str]) -> dict[str, Any]:
    path = run_dir / "run.json"
    try:
        meta = read_json(path)
    except FileNotFoundError:
        problems.append(f"{path} is missing (run metadata lost)")
        return {}
    except ResultFormatError as e:
        problems.append(str(e))
        return {}
    if not isinstance(meta, dict):
        problems.append(f"{path}: not run metadata (a JSON {_kind(meta)}, not an object); ignored")
        return {}
    problems += _meta_problems(meta, path)
    # Then the documented schema (runner/schemas/run.schema.json) over the keys that survived: a key of another
    # shape is named and dropped; the others are still used.
    found, bad = schemas.check("run", meta, str(path))
    problems += found
    return {k: v for k, v in meta.items() if k not in bad or k in ("schema_version", "run_id")}


def load_run(run_dir: Path) -> RunResults:
    """Every readable cell result of a run; whatever cannot be read becomes a problem line, never an exception."""
    problems: list[str] = []
    meta = _load_meta(run_dir, problems)
    # A merged run carries the clashes and read problems of its inputs (runner.merge).
    problems += [str(p) for key in ("conflicts", "problems") for p in meta.get(key, [])]
    cells: list[CellResult] = []
    cell_dir = run_dir / "cells"
    for p in sorted(cell_dir.glob(".*.tmp*")) if cell_dir.is_dir() else []:
        problems.append(f"{p} is an unfinished write (the writer was killed); ignored")
    for p in sorted(cell_dir.glob("*.json")) if cell_dir.is_dir() else []:
        try:
            data = read_json(p)
            result = CellResult.from_dict(data, str(p))
            found = schemas.validate("cell", data, str(p))  # readable, yet not of the documented shape: left out
            problems += found
            if not found:
                cells.append(result)
        except FileNotFoundError:
            continue  # removed since the listing (a resumed cell being rewritten): not a problem
        except ResultFormatError as e:
            problems.append(str(e))
    return RunResults(run_dir=run_dir, meta=meta, cells=cells, problems=problems)


def latest_run(reports: Path) -> Path | None:
    """The run whose run.json was written last: ids are not in time order (`default-4`, `bench-…`, dated ones)."""
    def written(p: Path) -> tuple[float, str]:
        try:
            return p.stat().st_mtime, p.parent.name
        except FileNotFoundError:  # removed since the listing
            return 0.0, p.parent.name

    runs = sorted((reports / "runs").glob("*/run.json"), key=written)
    return runs[-1].parent if runs else None
