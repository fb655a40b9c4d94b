"""`se-host`: a user's own `go build` under SELinux enforcing, no container (Q28).

In the guest lab's `selinux` mode (Debian's reference policy, enforcing, MCS) each variant builds with the default
GOCACHE, ~/.cache/go-build (images/selinux-guest/job/se-host.sh): root in its own login session (unconfined), and
users mapped with `semanage login -a -s user_u|staff_u` who log in for real on a serial line (getty, login, PAM with
pam_selinux: the session runs in the confined domain `id -Z` then shows), one of them after the `semanage fcontext`
rule such compatibility tables recommend (applied with restorecon between the build and the rebuild). Each records
`id -Z`, the labels of ~/.cache and ~/.cache/go-build, the build and the rebuild, and the AVCs of the case.

pass: the session ran in the mapped context and both builds worked (the rebuild compiling nothing); fail: a build
failed (Go's message and the AVC kept) or the rebuild compiled; error: no session, or not in the mapped context.
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
from runner.scenarios.labcase import avc_text, build_of, built, kv, lab_note
from runner.scenarios.rows import lead

if TYPE_CHECKING:
    from runner.guest import CaseRecords

SEUSER = {"root": "unconfined_u", "user_u": "user_u", "staff_u": "staff_u", "user_u-fcontext": "user_u"}
GO_COMMS = ("go", "compile", "asm", "link", "cgo", "vet", "buildid")
RHEL = "RHEL's targeted policy: not measured here (this is Debian's reference policy)"


def labels(text: str | None) -> dict[str, str]:
    """`ls -Zd` lines -> {path: context}; a path ls could not stat is left out."""
    out: dict[str, str] = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].count(":") >= 3:
            out[parts[1]] = parts[0]
    return out


def _type(context: str | None) -> str:
    parts = (context or "").split(":")
    return ":".join(parts[2:4]) if len(parts) > 3 else (context or "")


def _domain(context: str | None) -> str:
    """'user_u:user_r:user_t:s0' -> 'user_t'."""
    parts = (context or "").split(":")
    return parts[2] if len(parts) > 2 else (context or "")


def _cache_label(ls: Mapping[str, str]) -> str:
    return next((c for p, c in ls.items() if p.endswith("/.cache/go-build")), "")


def verdict(variant: str, files: Mapping[str, str], avc: Sequence[Mapping[str, Any]],
            guest: Mapping[str, Any] | None = None) -> Verdict:
    rec = kv(files.get("out.txt"))
    ls1, ls2 = labels(files.get("ls1.txt")), labels(files.get("ls2.txt"))
    every = [dict(a) for a in avc if a.get("result") == "denied"]
    # the build's own denials: by the session's domain or a Go process (not getty's or restorecon's of the case)
    domain = _domain(rec.get("id_z"))
    denied = [a for a in every if _domain(a.get("scontext")) == domain or a.get("comm") in GO_COMMS]
    obs: dict[str, Any] = {"variant": variant, "case": lab.WHAT["se-host"].get(variant, ""), "guest": dict(guest or {}),
                           "context": rec.get("id_z", ""), "home": rec.get("home"),
                           "gocache": rec.get("go_env_gocache"), "labels_after_build": ls1,
                           "labels_after_rebuild": ls2, "cache_label": _cache_label(ls1),
                           "cache_label_after": _cache_label(ls2), "build": build_of(rec, "build"),
                           "rebuild": build_of(rec, "rebuild"), "avc": denied, "avc_case_window": every,
                           "home_label": (files.get("home-label.txt") or "").strip(),
                           "restorecon": [ln for ln in (files.get("restorecon.log") or "").splitlines() if ln.strip()]}
    if not rec.get("id_z"):
        why = (files.get("timeout") or files.get("err.txt") or "no record").strip().splitlines()
        return Verdict(Status.ERROR, f"output lost: the session recorded nothing ({why[-1] if why else '?'})", obs)
    want = SEUSER.get(variant, "")
    if not rec["id_z"].startswith(want + ":"):
        return Verdict(Status.ERROR, f"the session ran as {rec['id_z']}, not as the mapped SELinux user {want}: the "
                                     "login did not go through pam_selinux as intended", obs)
    b, rb = obs["build"], obs["rebuild"]
    if b is None:
        return Verdict(Status.ERROR, "output lost: no build record", obs)
    where = (f"{_domain(rec['id_z'])} builds in {obs['gocache']} (labelled {_type(obs['cache_label']) or '?'}"
             + (f", after the rule and restorecon: {_type(obs['cache_label_after'])}" if variant.endswith("fcontext")
                else "") + f"); AVC: {avc_text(denied)}")
    if not b.get("ok"):
        return Verdict(Status.FAIL, f"{where}: the build fails: {built(b)}", obs)
    if rb is None:
        return Verdict(Status.ERROR, f"{where}: build ok, no rebuild record", obs)
    if not rb.get("ok") or rb.get("compiled"):
        return Verdict(Status.FAIL, f"{where}: build ok, rebuild {built(rb)}", obs)
    return Verdict(Status.PASS, f"{where}: build ok ({built(b)}), rebuild 0", obs)


class SeHost(Scenario):
    id = "se-host"
    title = ("A user's own go build under SELinux enforcing, no container, per case: the session's context (`id -Z` "
             "after a real login through PAM), the label of ~/.cache/go-build after the build (and after the "
             "`semanage fcontext` rule and restorecon), the build and the rebuild, and the AVCs of the case")

    @staticmethod
    def answers() -> dict[str, AnswerFn]:
        return {"Q28": answer_host}

    def precondition(self, cell: Cell) -> tuple[Status, str] | None:
        return Status.NA, "needs the SELinux-enforcing guest VM: the guest engine (podman-selinux) runs it"

    def guest_verdict(self, cell: Cell, got: CaseRecords) -> Verdict:
        return verdict(cell.variant or "", got.files, got.avc, got.guest)

    def detail_title(self, cells: Sequence[CellResult]) -> str:
        return self.title + lab_note(cells, "Debian's reference policy, not RHEL's targeted policy: its user "
                                            "domains, home-directory types and rules differ.")

    def detail_rows(self, cells: Sequence[CellResult]) -> Rows:
        headers = ["distro", "arch", "engine", "toolchain", "case", "id -Z", "~/.cache/go-build label",
                   "build", "rebuild", "AVC", "status"]
        rows = []
        for c in cells:
            o = c.observations
            label = _type(o.get("cache_label"))
            if o.get("variant") == "user_u-fcontext" and o.get("cache_label_after"):
                label += f" → {_type(o.get('cache_label_after'))} (rule + restorecon)"
            rows.append(lead(c) + [f"{c.cell.get('variant')}: {o.get('case', '')}", o.get("context", ""), label,
                                   built(o.get("build")), built(o.get("rebuild")), avc_text(o.get("avc") or []),
                                   c.status.value])
        return headers, rows


def answer_host(cells: Sequence[CellResult]) -> Answer:
    """Q28: per user kind, whether Debian's policy lets the user's own build use ~/.cache/go-build."""
    def key(c: CellResult) -> str | None:
        o = c.observations
        b = o.get("build")
        if not b or not o.get("context"):
            return None
        what = "builds" if b.get("ok") else f"denied: {built(b)}"
        avc = avc_text(o.get("avc") or [], 1)
        rule = ""
        if o.get("variant") == "user_u-fcontext":
            rule = f"; with the fcontext rule the dir becomes {_type(o.get('cache_label_after')) or '?'}"
        return (f"{c.cell.get('variant')} ({_domain(o['context'])}): {what}, ~/.cache/go-build "
                f"{_type(o.get('cache_label')) or '?'}, AVC {avc}{rule}")

    basis = pick(cells, "se-host")
    a = per_case(basis, key, limits=RHEL)
    return Answer(a.verdict, f"Debian 12 refpolicy: {a.text}; {RHEL}" if a.text else a.text, a.basis, a.figure,
                  a.limits)
