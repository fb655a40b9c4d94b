"""The guest's results tar -> records: per case (and run), what the case wrote; the guest's facts; its SELinux
AVC and AppArmor records (audit.log, dmesg, the kernel's journal), each case given the ones of its time window. A
record that is missing stays None: the scenario reads that as lost output, never as a pass.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runner.guest.job import Member
from runner.lab import parse_apparmor
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


def read_files(d: Path, limit: int = 8192) -> dict[str, str]:
    """A host-level case's records as they are: {relative file name: text (its last `limit` characters)}."""
    out: dict[str, str] = {}
    if not d.is_dir():
        return out
    for p in sorted(d.rglob("*")):
        if p.is_file():
            text = _read(p) or ""
            out[p.relative_to(d).as_posix()] = text[-limit:]
    return out


def _window(starts: Sequence[float | None], ends: Sequence[float | None]) -> tuple[float, float] | None:
    s = [x for x in starts if x is not None]
    e = [x for x in ends if x is not None]
    return (min(s), max(e) + 1.0) if s and e else None


def _floaty(text: str | None) -> float | None:
    with contextlib.suppress(ValueError, TypeError):
        return float((text or "").strip())
    return None


def _within(records: Sequence[dict[str, Any]], window: tuple[float, float] | None) -> list[dict[str, Any]]:
    return [r for r in records if window and window[0] <= float(r["time"]) <= window[1]]


def parse_apparmor_records(*texts: str) -> list[dict[str, Any]]:
    """AppArmor records (DENIED, ALLOWED, AUDIT, STATUS...) of the kernel log and audit.log, deduplicated."""
    seen: set[str] = set()
    out = []
    for text in texts:
        for line in text.splitlines():
            rec = parse_apparmor(line)
            if rec is None:
                continue
            key = json.dumps(rec, sort_keys=True)
            if key not in seen:
                seen.add(key)
                out.append(rec)
    return sorted(out, key=lambda r: float(r["time"]))


def parse_results(root: Path, members: Sequence[Member]) -> dict[str, Any]:
    """The results tar of a job -> {"facts", "cases": {member key: {...}}, "job_log_tail"}. A `selinux` case:
    {"runs", "window", "avc"}; a host-level case: {"files", "window", "avc", "apparmor"}. Each case gets the
    denials of its time window."""
    logs = (_read(root / "audit.log") or "", _read(root / "dmesg.txt") or "", _read(root / "journal-kernel.txt") or "")
    avcs = parse_avcs(*logs)
    aa = parse_apparmor_records(*logs)
    cases: dict[str, Any] = {}
    for m in members:
        d = root / "cases" / m.scenario / m.toolchain / m.variant
        if m.scenario == "selinux":
            runs = {run.name: parse_run(d / run.name) for run in CASES[m.variant]}
            window = _window([r["t_start"] for r in runs.values()], [r["t_end"] for r in runs.values()])
            case: dict[str, Any] = {"runs": runs}
        else:
            files = read_files(d)
            window = _window([_floaty(files.get("t_start"))], [_floaty(files.get("t_end"))])
            case = {"files": files}
        case.update(window=window, avc=_within(avcs, window), apparmor=_within(aa, window))
        cases[m.key] = case
    facts = parse_facts((_read(root / "facts.txt") or "") + "\n" + (_read(root / "lab-facts.txt") or ""))
    if modules := (_read(root / "modules") or "").strip():
        facts["container_module"] = modules.replace(",", ", ")
    elif facts.get("container_module"):  # the job ended before listing them: the runner's "<priority> <kind>"
        facts["container_module"] = f"container ({facts['container_module']})"
    if source := (_read(root / "image-source") or "").strip():
        facts["image_source"] = source  # "baked": imported at bake time; "boot": made in this boot
    return {"facts": facts, "cases": cases,
            "job_log_tail": (_read(root / "job.log") or "").strip().splitlines()[-5:]}
