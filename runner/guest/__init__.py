"""The guest lab: engine `podman-selinux`, a Debian 12 guest VM under QEMU, booted in one of its modes
(runner.guest.modes: selinux, systemd, nfs, apparmor) from one baked image.

The guest scenarios use it (their registry line names the mode): the guest runs their cases (runner.selinux.CASES
for containers, runner.lab.CASES host-level) and hands back the records; the scenarios judge them. This package
imports no scenario implementation.

    accel    host facts: QEMU, KVM or TCG (and the timeout factor), what is missing to bake, the fix
    image    the disks made once and cached by content: the baked base disk, the toolchain disks
    modes    the modes: the LSM on the kernel command line, what the boot must report
    qemu     one boot: overlay, job disk in, results disk out, hard timeouts, QEMU always killed
    job      the job tar: images/selinux-guest/job/ and make-image.sh, plus the data job.sh reads
    parse    the results tar -> per-case records, facts, AVCs and AppArmor records per case
    batch    one boot per (distro, arch, mode) for all of a run's cells and toolchains, under a lock in the run dir

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
from runner.guest.batch import CaseRecords, batch_dir, batch_for, batch_members, case_records, knows, run_batch
from runner.guest.errors import GuestError, GuestUnavailable, Progress
from runner.guest.image import IMAGE, RECIPE, Base, ensure_base, recipe_key, toolchain_disk
from runner.guest.job import Member, case_lines, go_mounts, member_budget, run_budget, write_job_tar
from runner.guest.modes import MODES, Mode, boot_of, mode_of
from runner.guest.parse import (
    compiled_packages,
    parse_apparmor_records,
    parse_avcs,
    parse_facts,
    parse_results,
    parse_run,
    read_files,
)
from runner.guest.qemu import BootResult, boot, job_dir, jobs_root, markers_in, qemu_command, sweep_stale_jobs, untar

__all__ = [
    "IMAGE", "KVM_FACTOR", "MODES", "QEMU", "RECIPE", "TCG_FACTOR", "Accel", "Base", "BootResult", "CaseRecords",
    "GuestError", "GuestUnavailable", "Member", "Mode", "Progress", "batch_dir", "batch_for", "batch_members", "boot",
    "boot_of", "case_lines", "case_records", "choose_accel", "compiled_packages", "cpu_flags", "engine_facts",
    "ensure_base", "go_mounts", "host_accel", "install_hint", "job_dir", "jobs_root", "knows", "kvm_usable",
    "markers_in", "member_budget", "missing_qemu", "missing_tools", "mode_of", "parse_apparmor_records", "parse_avcs",
    "parse_facts", "parse_results", "parse_run", "preflight_check", "qemu_binary", "qemu_command", "qemu_version",
    "read_files", "recipe_key", "run_batch", "run_budget", "sweep_stale_jobs", "toolchain_disk", "untar",
    "write_job_tar"
]
