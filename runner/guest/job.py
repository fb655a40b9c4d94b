"""What one boot runs: the job tar, made of images/selinux-guest/job/ (job.sh, case.sh, the Containerfile, the
workload), make-image.sh, and two data files the host writes: `params` (the containers' image tag) and `cases`
(one line per container run). job.sh reads them; no shell is written here. Their format: job.sh's header.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Sequence
from pathlib import Path

from runner.guest.image import IMAGE
from runner.selinux import CASES, Run

# Native seconds for one container run, without / with a go build: generous, these are hang guards, and a loaded
# 2-core host slows TCG far beyond its usual factor.
RUN_BUDGET = {False: 15.0, True: 90.0}
MOUNTS = ("bind", "volume", "build")


def run_budget(run: Run, factor: float) -> float:
    """Seconds one container run may take in the guest."""
    return RUN_BUDGET["build" in run.steps] * factor + 30.0


def _field(text: str) -> str:
    if any(c in text for c in "|\n"):
        raise ValueError(f"{text!r}: a field of the guest's cases file may not hold '|' or a newline")
    return text


def case_lines(variants: Sequence[str], factor: float) -> list[str]:
    """The `cases` file: variant|run|mount|relabel|security opts|budget|steps, one line per run of each variant
    (order kept); the first run's mount decides where the case's cache is."""
    lines = []
    for variant in variants:
        for run in CASES[variant]:
            if run.mount not in MOUNTS:
                raise ValueError(f"{variant}/{run.name}: mount {run.mount!r}, expected one of {', '.join(MOUNTS)}")
            fields = (variant, run.name, run.mount, run.relabel, " ".join(run.security_opt),
                      f"{run_budget(run, factor):.0f}", " ".join(run.steps))
            lines.append("|".join(_field(f) for f in fields))
    return lines


def _add_text(t: tarfile.TarFile, name: str, text: str, mode: int = 0o644) -> None:
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    t.addfile(info, io.BytesIO(data))


def write_job_tar(path: Path, recipe: Path, variants: Sequence[str], factor: float) -> None:
    """The job disk: a tar gcm-guest-job unpacks and runs job.sh in. ro/ is what every container mounts
    read-only at /opt/gcm (case.sh, the workload, the Containerfile, an empty build context)."""
    job = recipe / "job"
    with tarfile.open(path, "w") as t:
        t.add(job / "job.sh", "job.sh")
        t.add(recipe / "make-image.sh", "make-image.sh")
        _add_text(t, "params", f"IMAGE={IMAGE}\n")
        _add_text(t, "cases", "".join(f"{line}\n" for line in case_lines(variants, factor)))
        t.add(job / "case.sh", "ro/case.sh")
        t.add(job / "src", "ro/src")
        t.add(job / "Containerfile", "ro/Containerfile")
        info = tarfile.TarInfo("ro/ctx")
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        t.addfile(info)
