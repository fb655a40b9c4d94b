"""`apparmor`: does AppArmor block ~/.cache/go-build (Q29)?

In the guest lab's `apparmor` mode (AppArmor enforcing, Debian's profiles loaded by apparmor.service) each variant
builds with the default GOCACHE (images/selinux-guest/job/apparmor.sh): root's and a user's own builds; the user's
build with `go` confined by an enforced profile of ours that lists the toolchain, the sources and /tmp but not
~/.cache (the way a packaged program is confined), and the same profile with the rw rule such tables recommend;
and a podman container under its default AppArmor profile with GOCACHE bind-mounted from the user's home. The
profiles are ours: those two cells demonstrate what a profile does, they are not a finding about a distro.

pass: both builds worked (the rebuild compiling nothing); fail: a build failed (Go's message and the kernel's
DENIED lines kept); error: a record is missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from runner import lab
from runner.answer import Answer, AnswerFn, per_case, pick
from runner.model import Cell, Status
from runner.results import CellResult
from runner.scenarios import Verdict
from runner.scenarios.base import Rows, Scenario
from runner.scenarios.labcase import aa_denials, aa_text, build_of, built, kv, lab_note
from runner.scenarios.rows import lead

if TYPE_CHECKING:
    from runner.guest import CaseRecords

OURS = ("profile", "profile-rw")
NOT_A_DISTRO = "the `profile` cases run under a profile of ours: a demonstration, not a finding about a distro"


def _podman(files: Mapping[str, str]) -> dict[str, Any]:
    """case.sh's records of the two container runs (run/, run/second/) as goprobe-like build records."""
    def run(prefix: str) -> dict[str, Any] | None:
        rc = (files.get(f"{prefix}build.rc") or "").strip()
        if not rc.lstrip("-").isdigit():
            return None
        err = [ln.strip() for ln in (files.get(f"{prefix}build.err") or "").splitlines() if ln.strip()]
        pkgs = [ln for ln in err if not ln.startswith(("go:", "#")) and " " not in ln]
        out: dict[str, Any] = {"ran": True, "ok": rc == "0", "exit_code": int(rc), "compiled": len(pkgs)}
        if rc != "0":
            out["stderr"] = next((ln for ln in err if ln not in pkgs), "")
        return out

    return {"label": (files.get("run/label") or "").strip("\x00\n "), "write": (files.get("run/write") or "").strip(),
            "write_error": (files.get("run/write.err") or "").strip(), "build": run("run/"),
            "rebuild": run("run/second/"), "engine_rc": (files.get("engine.rc") or "").strip(),
            "engine_log": (files.get("engine.log") or "").strip().splitlines()[-2:]}


def verdict(variant: str, files: Mapping[str, str], records: Sequence[Mapping[str, Any]],
            guest: Mapping[str, Any] | None = None) -> Verdict:
    denied = [dict(r) for r in aa_denials(records)]
    obs: dict[str, Any] = {"variant": variant, "case": lab.WHAT["apparmor"].get(variant, ""),
                           "guest": dict(guest or {}), "denied": denied, "ls": (files.get("ls.txt") or "").strip()}
    if variant == "podman":
        p = _podman(files)
        obs.update(confinement=p["label"], build=p["build"], rebuild=p["rebuild"], write=p["write"],
                   engine_log=p["engine_log"])
    else:
        rec = kv(files.get("out.txt"))
        obs.update(confinement=rec.get("apparmor", ""), home=rec.get("home"), gocache=rec.get("go_env_gocache"),
                   build=build_of(rec, "build"), rebuild=build_of(rec, "rebuild"))
        if variant in OURS:  # go, not the shell that records: the profile attached to the toolchain's bin/go
            obs["profile_loaded"] = (files.get("loaded.txt") or "").strip()
            obs["confinement"] = obs["profile_loaded"] or "our profile did not load"
            obs["profile"] = files.get("profile.txt", "")
            if (files.get("parser.rc") or "").strip() != "0":
                return Verdict(Status.ERROR, f"apparmor_parser could not load our profile: "
                                             f"{(files.get('parser.log') or '?').strip()}", obs)
    b, rb = obs["build"], obs["rebuild"]
    if b is None:
        why = (files.get("err.txt") or files.get("engine.log") or "no record").strip().splitlines()
        return Verdict(Status.ERROR, f"output lost: no build record ({why[-1] if why else '?'})", obs)
    where = f"go confined by {obs['confinement'] or '?'}; DENIED: {aa_text(denied)}"
    if not b.get("ok"):
        return Verdict(Status.FAIL, f"{where}: the build fails: {built(b)}", obs)
    if rb is None or not rb.get("ok") or rb.get("compiled"):
        return Verdict(Status.FAIL, f"{where}: build ok, rebuild {built(rb) or 'not recorded'}", obs)
    return Verdict(Status.PASS, f"{where}: build ok ({built(b)}), rebuild 0", obs)


class Apparmor(Scenario):
    id = "apparmor"
    title = ("GOCACHE (~/.cache/go-build) under AppArmor enforcing, per case: what confines go (its AppArmor label), "
             "the build and the rebuild, and the kernel's apparmor=\"DENIED\" records (operation, path, profile). The "
             "`profile` cases confine go with a profile of ours: a demonstration of what a profile does")

    @staticmethod
    def answers() -> dict[str, AnswerFn]:
        return {"Q29": answer_apparmor}

    def precondition(self, cell: Cell) -> tuple[Status, str] | None:
        return Status.NA, "needs an AppArmor-enforcing kernel: the guest engine (podman-selinux) runs it in the guest"

    def guest_verdict(self, cell: Cell, got: CaseRecords) -> Verdict:
        return verdict(cell.variant or "", got.files, got.apparmor, got.guest)

    def detail_title(self, cells: Sequence[CellResult]) -> str:
        return self.title + lab_note(cells, "Debian's profiles are not Ubuntu's; podman applies its own default "
                                            "profile (containers-default) to every container.")

    def detail_rows(self, cells: Sequence[CellResult]) -> Rows:
        headers = ["distro", "arch", "engine", "toolchain", "case", "go confined by", "build", "rebuild",
                   "apparmor=\"DENIED\"", "status"]
        return headers, [lead(c) + [f"{c.cell.get('variant')}: {c.observations.get('case', '')}",
                                    c.observations.get("confinement", ""), built(c.observations.get("build")),
                                    built(c.observations.get("rebuild")), aa_text(c.observations.get("denied") or []),
                                    c.status.value] for c in cells]


def answer_apparmor(cells: Sequence[CellResult]) -> Answer:
    """Q29: per case, whether AppArmor let the build use ~/.cache/go-build, with the DENIED records."""
    def key(c: CellResult) -> str | None:
        o = c.observations
        b = o.get("build")
        if not b:
            return None
        what = "builds" if b.get("ok") else f"fails ({built(b)})"
        return f"{c.cell.get('variant')}: {what}; DENIED: {aa_text(o.get('denied') or [], 2)}"

    return per_case(pick(cells, "apparmor"), key, limits=f"Debian 12's AppArmor profiles, not Ubuntu's; {NOT_A_DISTRO}")
