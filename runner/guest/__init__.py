"""The SELinux-enforcing guest VM target: engine `podman-selinux`, podman inside a Debian guest under QEMU.

The `selinux` scenario uses it: the guest runs the scenario's cases (runner.selinux.CASES) and hands back their
records; the scenario judges them. This package imports no scenario.

    accel    host facts: QEMU, KVM or TCG (and the timeout factor), what is missing to bake, the fix
    image    the disks made once and cached by content: the baked base disk, the toolchain disk
    qemu     one boot: overlay, job disk in, results disk out, hard timeouts, QEMU always killed
    job      the job tar: images/selinux-guest/job/ and make-image.sh, plus the data job.sh reads
    parse    the results tar -> per-run records, facts, AVCs per case
    batch    one boot per (distro, arch, toolchain) for all of a run's cells, under a lock in the run dir

What the guest relies on (the policy module, stdio at level s0, cgroupfs, PVM /dev/kvm, ...):
images/selinux-guest/README.md.
"""

from __future__ import annotations

from runner.guest.accel import (
    KVM_FACTOR,
    QEMU,
    TCG_FACTOR,
    Accel,
    choose_accel,
    cpu_flags,
    engine_facts,
    host_accel,
    install_hint,
    kvm_usable,
    missing_qemu,
    missing_tools,
    preflight_check,
    qemu_binary,
    qemu_version,
)
from runner.guest.batch import CaseRecords, batch_for, batch_variants, case_records, run_batch
from runner.guest.errors import GuestError, GuestUnavailable, Progress
from runner.guest.image import IMAGE, RECIPE, Base, ensure_base, recipe_key, toolchain_disk
from runner.guest.job import case_lines, run_budget, write_job_tar
from runner.guest.parse import compiled_packages, parse_avcs, parse_facts, parse_results, parse_run
from runner.guest.qemu import BootResult, boot, job_dir, jobs_root, markers_in, qemu_command, sweep_stale_jobs, untar

__all__ = [
    "IMAGE", "KVM_FACTOR", "QEMU", "RECIPE", "TCG_FACTOR", "Accel", "Base", "BootResult", "CaseRecords",
    "GuestError", "GuestUnavailable", "Progress", "batch_for", "batch_variants", "boot", "case_lines",
    "case_records", "choose_accel", "compiled_packages", "cpu_flags", "engine_facts", "ensure_base", "host_accel",
    "install_hint", "job_dir", "jobs_root", "kvm_usable", "markers_in", "missing_qemu", "missing_tools",
    "parse_avcs", "parse_facts", "parse_results", "parse_run", "preflight_check", "qemu_binary", "qemu_command",
    "qemu_version", "recipe_key", "run_batch", "run_budget", "sweep_stale_jobs", "toolchain_disk", "untar",
    "write_job_tar",
]
