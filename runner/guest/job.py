"""What one boot runs: the job tar, made of images/selinux-guest/job/ (job.sh, one script per guest scenario,
case.sh, the Containerfile, the workload), make-image.sh, and two data files the host writes: `params` (the mode,
the containers' image tag, the toolchain disks and where to mount them) and `cases` (one line per case or
container run). job.sh reads them; no shell is written here. Their format: job.sh's header.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from runner import lab
from runner.guest.image import IMAGE
from runner.guest.modes import Mode
from runner.paths import cache_dir
from runner.selinux import CASES, Run
from runner.workloads import proxy

WORKLOADS = Path(proxy.__file__).resolve().parent
# Native seconds for one container run, without / with a go build: generous, these are hang guards, and a loaded
# 2-core host slows TCG far beyond its usual factor.
RUN_BUDGET = {False: 15.0, True: 90.0}
MOUNTS = ("bind", "volume", "build")
FIRST_TOOLCHAIN_DISK = "vdd"  # vda system (overlay), vdb results, vdc job, then the toolchain disks in order
GO_MOUNT = "/opt/gcm-go"  # <GO_MOUNT>/<toolchain>: what containers mount at /usr/local/go
GO_HOST_MOUNT = "/opt/gcm-go-host"  # <GO_HOST_MOUNT>/<toolchain>: the same tree for host-level builds
# SELinux labels of the toolchain mounts: containers may read and execute container_ro_file_t (an image layer's);
# a user domain runs programs labelled bin_t (as in /usr/bin). The same image is attached twice in that mode: one
# superblock takes one context= option.
CONTAINER_GO_CONTEXT = "system_u:object_r:container_ro_file_t:s0"
HOST_GO_CONTEXT = "system_u:object_r:bin_t:s0"


@dataclass(frozen=True)
class Member:
    """One cell's case in a boot: scenario, toolchain id, variant."""

    scenario: str
    toolchain: str
    variant: str

    @property
    def key(self) -> str:
        return f"{self.scenario}/{self.toolchain}/{self.variant}"


@dataclass(frozen=True)
class GoMount:
    toolchain: str
    device: str  # /dev/vdX
    mountpoint: str
    context: str  # "" : no context= option


def go_mounts(mode: Mode, toolchains: Sequence[str]) -> list[GoMount]:
    """Where each toolchain disk is mounted in the guest, in the order the disks are attached (go_drives)."""
    out = [GoMount(t, "", f"{GO_MOUNT}/{t}", CONTAINER_GO_CONTEXT if mode.lsm == "selinux" else "")
           for t in toolchains]
    if mode.lsm == "selinux":
        out += [GoMount(t, "", f"{GO_HOST_MOUNT}/{t}", HOST_GO_CONTEXT) for t in toolchains]
    first = ord(FIRST_TOOLCHAIN_DISK[-1])
    return [GoMount(m.toolchain, f"/dev/vd{chr(first + i)}", m.mountpoint, m.context) for i, m in enumerate(out)]


def run_budget(run: Run, factor: float) -> float:
    """Seconds one container run may take in the guest."""
    return RUN_BUDGET["build" in run.steps] * factor + 30.0


def member_budget(m: Member, factor: float) -> float:
    if m.scenario == "selinux":
        return sum(run_budget(r, factor) for r in CASES[m.variant])
    return lab.case_budget(m.scenario, m.variant, factor)


def _field(text: str) -> str:
    if any(c in text for c in "|\n"):
        raise ValueError(f"{text!r}: a field of the guest's cases file may not hold '|' or a newline")
    return text


def case_lines(members: Sequence[Member], factor: float) -> list[str]:
    """The `cases` file: scenario|toolchain|variant|budget|..., one line per case (order kept). A `selinux` case
    has one line per container run, with run|mount|relabel|security opts|steps after the budget (the first run's
    mount decides where the case's cache is)."""
    lines = []
    for m in members:
        if m.scenario == "selinux":
            for run in CASES[m.variant]:
                if run.mount not in MOUNTS:
                    raise ValueError(f"{m.variant}/{run.name}: mount {run.mount!r}, expected one of "
                                     f"{', '.join(MOUNTS)}")
                fields = [m.scenario, m.toolchain, m.variant, f"{run_budget(run, factor):.0f}", run.name, run.mount,
                          run.relabel, " ".join(run.security_opt), " ".join(run.steps)]
                lines.append("|".join(_field(f) for f in fields))
        else:
            lab.case(m.scenario, m.variant)  # a KeyError for a variant the lab does not know
            fields = [m.scenario, m.toolchain, m.variant, f"{lab.case_budget(m.scenario, m.variant, factor):.0f}"]
            lines.append("|".join(_field(f) for f in fields))
    return lines


def params_text(mode: Mode, mounts: Sequence[GoMount]) -> str:
    lines = [f"MODE={mode.name}", f"LSM={mode.lsm}", f"IMAGE={IMAGE}"]
    lines += [f"GO={_field(m.toolchain)}|{m.device}|{m.mountpoint}|{m.context}" for m in mounts]
    return "".join(f"{line}\n" for line in lines)


def _no_pycache(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if "__pycache__" in info.name else info


def _add_text(t: tarfile.TarFile, name: str, text: str, mode: int = 0o644) -> None:
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    t.addfile(info, io.BytesIO(data))


def write_job_tar(path: Path, recipe: Path, mode: Mode, members: Sequence[Member], toolchains: Sequence[str],
                  factor: float) -> None:
    """The job disk: a tar gcm-guest-job unpacks and runs job.sh in. ro/ is what every container mounts
    read-only at /opt/gcm (case.sh, the workload, the Containerfile, an empty build context)."""
    job = recipe / "job"
    with tarfile.open(path, "w") as t:
        t.add(job / "job.sh", "job.sh")
        t.add(job / "goprobe.sh", "goprobe.sh")
        for script in sorted({m.scenario for m in members}):
            t.add(job / f"{script}.sh", f"{script}.sh")
        t.add(recipe / "make-image.sh", "make-image.sh")
        _add_text(t, "params", params_text(mode, go_mounts(mode, toolchains)))
        _add_text(t, "cases", "".join(f"{line}\n" for line in case_lines(members, factor)))
        t.add(job / "case.sh", "ro/case.sh")
        t.add(job / "src", "ro/src")
        if any(m.scenario == "nfs" for m in members):  # the `lib` workload and its offline module proxy
            t.add(WORKLOADS / "lib", "ro/lib", filter=_no_pycache)
            t.add(proxy.build(cache_dir() / "proxy" / proxy.content_key()), "ro/proxy")
        t.add(job / "Containerfile", "ro/Containerfile")
        info = tarfile.TarInfo("ro/ctx")
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        t.addfile(info)
