"""The guest lab's host-level cases (no container): what each variant of `systemd`, `nfs`, `se-host` and `apparmor`
runs in its guest mode, shared by the guest target (runner.guest, which ships them) and the scenarios (which judge
them). The `selinux` scenario's container cases are in runner.selinux.

Each variant is one case, done by the mode's script in images/selinux-guest/job/ (`<scenario>.sh`, a function
per variant); the host only says which cases, with which toolchain, under what time budget. A case writes its
records as files in its own directory; runner.guest.parse hands them to the scenario as they are, with the
kernel's denials (SELinux AVCs, AppArmor DENIED lines) of the case's time window.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LabCase:
    variant: str
    what: str
    builds: int  # go commands that compile (each a budget unit)


def _cases(scenario: str, *cases: LabCase) -> tuple[str, tuple[LabCase, ...]]:
    return scenario, cases


SYSTEMD = _cases(
    "systemd",
    LabCase("root", "transient unit, no User= (root)", 2),
    LabCase("user-nohome", "User= a user whose home does not exist", 2),
    LabCase("dynamic", "DynamicUser=yes", 2),
    LabCase("dynamic-cachedir", "DynamicUser=yes, CacheDirectory=go-build, GOCACHE=%C/go-build", 3),
)
NFS = _cases(
    "nfs",
    LabCase("v4.2", "NFSv4.2 mount (locks through the protocol)", 8),
    LabCase("v3", "NFSv3 mount (locks through NLM/lockd)", 8),
    LabCase("v3-nolock", "NFSv3 mount with nolock (locks local to the client)", 8),
)
SE_HOST = _cases(
    "se-host",
    LabCase("root", "root's own build (unconfined_u, unconfined_t)", 2),
    LabCase("user_u", "a user mapped to user_u, logged in through PAM (pam_selinux)", 2),
    LabCase("staff_u", "a user mapped to staff_u, logged in through PAM (pam_selinux)", 2),
    LabCase("user_u-fcontext", "user_u, after the `semanage fcontext` rule for ~/.cache/go-build", 2),
)
APPARMOR = _cases(
    "apparmor",
    LabCase("root", "root's build under Debian's loaded profiles", 2),
    LabCase("user", "a user's build under Debian's loaded profiles", 2),
    LabCase("profile", "`go` under an enforced profile of ours listing its paths, not ~/.cache", 1),
    LabCase("profile-rw", "the same profile with `owner @{HOME}/.cache/go-build/** rwk`", 2),
    LabCase("podman", "podman container under its default AppArmor profile, GOCACHE bind-mounted", 2),
)
CASES: dict[str, tuple[LabCase, ...]] = dict((SYSTEMD, NFS, SE_HOST, APPARMOR))
WHAT: dict[str, dict[str, str]] = {s: {c.variant: c.what for c in cases} for s, cases in CASES.items()}

# Native seconds: a start-up allowance plus one per compiling go command; generous (hang guards: a loaded 2-core
# host slows TCG far beyond its usual factor).
CASE_BASE_SEC, BUILD_SEC = 20.0, 45.0


def case(scenario: str, variant: str) -> LabCase:
    for c in CASES[scenario]:
        if c.variant == variant:
            return c
    raise KeyError(f"no guest case {scenario}:{variant}")


def case_budget(scenario: str, variant: str, factor: float) -> float:
    """Seconds one case may take in the guest (already scaled for the accelerator)."""
    return (CASE_BASE_SEC + BUILD_SEC * case(scenario, variant).builds) * factor + 30.0


# ---------------------------------------------------------------- AppArmor's kernel records
# audit: type=1400 audit(1795859100.250:120): apparmor="DENIED" operation="mkdir" profile="gcm-go"
#        name="/root/.cache/go-build/" pid=812 comm="go" requested_mask="c" denied_mask="c" fsuid=0 ouid=0
_AA = re.compile(r"audit\((?P<ts>\d+\.\d+):\d+\):.*?apparmor=\"(?P<result>[A-Z_]+)\"")
_AA_FIELD = re.compile(r"\b(operation|profile|name|comm|requested_mask|denied_mask|info|error|class|fsuid|ouid)="
                       r"(\"[^\"]*\"|\S+)")


def parse_apparmor(line: str) -> dict[str, Any] | None:
    """One AppArmor kernel record (audit.log, dmesg or journal): {"time", "result", "operation", "profile", ...}."""
    m = _AA.search(line)
    if not m:
        return None
    rec: dict[str, Any] = {"time": float(m["ts"]), "result": m["result"]}
    for key, value in _AA_FIELD.findall(line):
        rec[key] = value.strip('"')
    return rec


def denial_text(rec: dict[str, Any]) -> str:
    """'DENIED mkdir /root/.cache/go-build/ (profile gcm-go, comm go)'."""
    return (f"{rec.get('result', '?')} {rec.get('operation', '?')} {rec.get('name', '?')} "
            f"(profile {rec.get('profile', '?')}, comm {rec.get('comm', '?')})")
