"""The guest lab's modes: one boot each, from the one baked image; the kernel command line picks the LSM.

A scenario names the mode it runs in (its registry line's guest_modes, runner/scenarios/catalogue.py); every guest
cell of a run in one mode shares that mode's boot, whatever its toolchain (each toolchain is a disk of its own).

    selinux    SELinux enforcing (Debian's reference policy, MCS): containers under podman, and host-level builds
               of root and of users mapped to confined SELinux users
    systemd    Debian's default LSM (AppArmor, Debian's profiles): transient systemd units
    nfs        Debian's default LSM: an NFS server on loopback, GOCACHE/GOMODCACHE on its mounts
    apparmor   AppArmor enforcing with Debian's profiles, plus profiles of ours and podman's default profile

Why systemd and nfs boot with AppArmor, not SELinux: their questions are about systemd's and NFS's semantics as a
stock Debian 12 host has them, and a stock Debian 12 boots with AppArmor. Under the reference policy a transient
unit's `go` would run in init_t, and nfsd's files get nfs_t: denials that belong to SELinux's question (Q28), not
to Q06 or Q17.

Modes whose kernel command line is the same share one boot (Mode.boot): systemd, nfs and apparmor run one after
the other in the `apparmor` boot, in that order (the apparmor cases load profiles of ours last and remove them).
Under TCG a boot costs about a minute before the job starts; the lab's time budget has no room for three of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.scenarios import catalogue

APPARMOR_CMDLINE = "security=apparmor apparmor=1"


@dataclass(frozen=True)
class Mode:
    name: str
    lsm: str  # the major LSM the boot must report: "selinux" | "apparmor"
    cmdline: str  # the LSM part of the kernel command line
    what: str  # for the report
    boot: str  # the boot it runs in: modes with the same command line share one (see the module's note)
    caveat: str = ""  # what the mode does not stand for (the report's preamble)


MODES: dict[str, Mode] = {m.name: m for m in (
    Mode("selinux", "selinux", "security=selinux selinux=1 enforcing=1",
         "SELinux enforcing (Debian's reference policy with MCS)", "selinux",
         "Debian's reference policy (with the refpolicy `container` module built in the bake) is not Fedora/RHEL's "
         "targeted policy or `container-selinux`: an answer from it is Debian's, and RHEL stays not measured"),
    Mode("systemd", "apparmor", APPARMOR_CMDLINE, "Debian's default LSM (AppArmor) and systemd as PID 1", "apparmor",
         "booted with Debian's default LSM (AppArmor): the question is systemd's, and SELinux's reference policy "
         "would run a transient unit's go in init_t, a different question (Q28); no D-Bus broker in the guest"),
    Mode("nfs", "apparmor", APPARMOR_CMDLINE, "Debian's default LSM (AppArmor), nfsd on loopback", "apparmor",
         "server and client in one kernel over loopback: no network latency, no second client machine; the server "
         "exports an ext4 directory"),
    Mode("apparmor", "apparmor", APPARMOR_CMDLINE, "AppArmor enforcing with Debian's profiles loaded", "apparmor",
         "Debian's AppArmor profiles are not Ubuntu's (Ubuntu ships and enforces more of them); the profiles named "
         "`gcm-*` are ours, a demonstration of what a profile does, not a finding about a distro"),
)}
ORDER = tuple(MODES)


def boot_of(scenario_id: str) -> Mode:
    """The boot a guest scenario's cases run in: the mode named like the scenario's mode's boot."""
    return MODES[mode_of(scenario_id).boot]


def mode_of(scenario_id: str) -> Mode:
    """The mode a guest scenario runs in (the first of its registry line's guest_modes)."""
    modes = catalogue.entry(scenario_id).guest_modes if scenario_id in catalogue.BY_ID else ()
    if not modes or modes[0] not in MODES:
        raise KeyError(f"scenario {scenario_id!r} runs in no guest mode")
    return MODES[modes[0]]
