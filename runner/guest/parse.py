"""The guest's results tar -> records: per case and run, what case.sh and job.sh wrote; the guest's facts;
its AVC records (audit.log, and dmesg for those logged before auditd started), each case given the ones of its
time window. A record that is missing stays None: the scenario reads that as lost output, never as a pass.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runner.selinux import CASES, clean_label, parse_avc

_PACKAGE = re.compile(r"^[A-Za-z0-9_.~-]+(/[A-Za-z0-9_.~+-]+)*$")


def first_line(text: str | None) -> str:
    """The first line with something on it, stripped (as the scenarios' helper: a target imports no scenario)."""
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def compiled_packages(stderr: str) -> list[str]:
    """Package paths `go build -v` printed (one per compiled package), not Go's messages."""
    return [line.strip() for line in stderr.splitlines()
            if _PACKAGE.match(line.strip()) and not line.startswith(("go:", "#"))]


def parse_run(d: Path) -> dict[str, Any]:
    """One run's files -> {"label", "write", "reuse", "build", "engine_rc", ...}; None for a missing record."""
    label = _read(d / "label")
    write = _read(d / "write")
    rc_text = _read(d / "build.rc")
    build: dict[str, Any] | None = None
    if rc_text is not None and rc_text.strip().lstrip("-").isdigit():
        rc = int(rc_text.strip())
        err = _read(d / "build.err") or ""
        times = (_read(d / "build.time") or "").split()
        sec = float(times[1]) - float(times[0]) if len(times) == 2 else 0.0
        build = {"ran": True, "ok": rc == 0, "exit_code": rc, "sec": round(sec, 2),
                 "compiled": len(compiled_packages(err))}
        if rc != 0:
            words = [ln for ln in err.splitlines() if ln.strip() and not _PACKAGE.match(ln.strip())
                     and not ln.startswith(("go: downloading", "go: finding", "go: extracting"))]
            build["stderr"] = first_line("\n".join(words))
            build["stderr_tail"] = words[-3:]
    engine_log = (_read(d / "engine.log") or "").strip().splitlines()
    engine_rc = (_read(d / "engine.rc") or "").strip()

    def floaty(name: str) -> float | None:
        with contextlib.suppress(ValueError):
            return float((_read(d / name) or "").strip())
        return None

    read_back, write_back = _read(d / "reuse-read"), _read(d / "reuse-write")
    return {
        "label": clean_label(label) if label is not None else None,
        "write": None if write is None else {"ok": write.strip() == "ok",
                                             "error": first_line(_read(d / "write.err"))},
        "reuse": None if read_back is None or write_back is None else {
            "read": read_back.strip() == "ok", "write": write_back.strip() == "ok",
            "error": first_line((_read(d / "reuse-read.err") or "") + (_read(d / "reuse-write.err") or ""))},
        "build": build,
        "engine_rc": int(engine_rc) if engine_rc.lstrip("-").isdigit() else None,
        "engine_log": engine_log[-3:],
        "dir_label_before": first_line(_read(d / "dir_label_before")),
        "dir_label_after": first_line(_read(d / "dir_label_after")),
        "t_start": floaty("t_start"), "t_end": floaty("t_end"),
    }


def parse_facts(text: str) -> dict[str, str]:
    return {k.strip(): v.strip() for k, _, v in (ln.partition("=") for ln in text.splitlines()) if k.strip()}


def parse_avcs(*texts: str) -> list[dict[str, Any]]:
    """AVC records of audit.log and dmesg (before auditd starts they go to the kernel log), deduplicated."""
    seen: set[str] = set()
    out = []
    for text in texts:
        for line in text.splitlines():
            rec = parse_avc(line)
            if rec is None:
                continue
            key = json.dumps(rec, sort_keys=True)
            if key not in seen:
                seen.add(key)
                out.append(rec)
    return sorted(out, key=lambda r: float(r["time"]))


def parse_results(root: Path, variants: Sequence[str]) -> dict[str, Any]:
    """The results tar of a job -> {"facts", "cases": {variant: {"runs", "window", "avc"}}, "job_log_tail"}."""
    avcs = parse_avcs(_read(root / "audit.log") or "", _read(root / "dmesg.txt") or "")
    cases: dict[str, Any] = {}
    for variant in variants:
        runs = {run.name: parse_run(root / "cases" / variant / run.name) for run in CASES[variant]}
        starts = [r["t_start"] for r in runs.values() if r["t_start"] is not None]
        ends = [r["t_end"] for r in runs.values() if r["t_end"] is not None]
        window = (min(starts), max(ends) + 1.0) if starts and ends else None
        cases[variant] = {"runs": runs, "window": window,
                          "avc": [a for a in avcs if window and window[0] <= float(a["time"]) <= window[1]]}
    facts = parse_facts(_read(root / "facts.txt") or "")
    if modules := (_read(root / "modules") or "").strip():
        facts["container_module"] = modules.replace(",", ", ")
    elif facts.get("container_module"):  # the job ended before listing them: the runner's "<priority> <kind>"
        facts["container_module"] = f"container ({facts['container_module']})"
    if source := (_read(root / "image-source") or "").strip():
        facts["image_source"] = source  # "baked": imported at bake time; "boot": made in this boot
    return {"facts": facts, "cases": cases,
            "job_log_tail": (_read(root / "job.log") or "").strip().splitlines()[-5:]}
