"""`nfs`: GOCACHE and GOMODCACHE on NFS (Q17): NFSv4.2, NFSv3 and NFSv3 with `nolock`.

In the guest lab's `nfs` mode the guest serves an export over loopback (nfs-kernel-server) and mounts each case's
directory twice, the second with `nosharecache` (a separate client view, as a second machine has); Go runs as a
user with both caches on the mount (images/selinux-guest/job/nfs.sh): flock through each view while another holds
it, `go mod download`, a cold and a warm build, a build through the other view on the cache the first filled, a
`go mod download` + cold build through both views at the same time on fresh caches, `go clean -cache` and a build
after it.

pass: every go command worked and the warm builds compiled nothing; fail: one failed (Go's message kept) or a warm
build compiled; error: a mount failed or a record is missing. Whether flock excludes across the two views is
recorded beside it (Go's module cache locks with flock).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from runner import lab
from runner.answer import BREAKS, DEGRADED, WORKS, Answer, AnswerFn, Outcome, brief, per_case, pick
from runner.model import Cell, Status
from runner.results import CellResult
from runner.scenarios import Verdict
from runner.scenarios.base import Rows, Scenario
from runner.scenarios.labcase import build_of, built, kv, lab_note
from runner.scenarios.rows import lead

if TYPE_CHECKING:
    from runner.guest import CaseRecords

STEPS = (("go-a.out", "modd", "go mod download"), ("go-a.out", "cold", "cold build"),
         ("go-a.out", "warm", "warm build"), ("go-b.out", "other", "build through the other mount"),
         ("conc-a.out", "modd", "concurrent go mod download (a)"), ("conc-a.out", "build", "concurrent build (a)"),
         ("conc-b.out", "modd", "concurrent go mod download (b)"), ("conc-b.out", "build", "concurrent build (b)"),
         ("clean.out", "clean", "go clean -cache"), ("clean.out", "after", "build after go clean -cache"))


def _mount_opts(mounts: str) -> dict[str, str]:
    """The first mount's options as the kernel shows them: vers, local_lock, ..."""
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) > 3 and parts[1].endswith("-a"):
            return {k: v for k, _, v in (o.partition("=") for o in parts[3].split(","))}
    return {}


def _flock(text: str) -> dict[str, bool | None]:
    rec = kv(text)
    def excluded(key: str) -> bool | None:
        v = rec.get(key, "")
        return None if not v.isdigit() else v != "0"
    return {"cross": excluded("cross"), "same": excluded("same")}


def verdict(variant: str, files: Mapping[str, str], guest: Mapping[str, Any] | None = None) -> Verdict:
    obs: dict[str, Any] = {"variant": variant, "case": lab.WHAT["nfs"].get(variant, ""), "guest": dict(guest or {})}
    rcs = {m: (files.get(f"mount-{m}.rc") or "").strip() for m in ("a", "b")}
    opts = _mount_opts(files.get("mounts.txt", ""))
    obs.update(mount={"rc": rcs, "vers": opts.get("vers", ""), "local_lock": opts.get("local_lock", ""),
                      "lock": "nolock" if "nolock" in opts else "lock"},
               flock=_flock(files.get("flock.txt", "")))
    if rcs["a"] != "0" or rcs["b"] != "0":
        why = (files.get("mount-a.log") or files.get("mount-b.log") or "").strip().splitlines()
        return Verdict(Status.ERROR, f"mount failed (exit {rcs['a'] or '?'}/{rcs['b'] or '?'}): "
                                     f"{why[-1] if why else 'no message'}", obs)
    steps: dict[str, Any] = {}
    for f, name, what in STEPS:
        steps[f"{f.split('.')[0]}:{name}"] = {"what": what, **(build_of(kv(files.get(f)), name) or {"ran": False})}
    obs["steps"] = steps
    missing = [s["what"] for s in steps.values() if not s.get("ran")]
    if missing:
        err = (files.get("go-a.err") or files.get("conc-a.err") or "").strip().splitlines()
        return Verdict(Status.ERROR, f"output lost: no record of {', '.join(missing)}"
                                     + (f" ({err[-1]})" if err else ""), obs)
    lock = obs["flock"]
    lock_note = ("flock through the other mount: " + ("excluded" if lock["cross"] else "NOT excluded")
                 if lock["cross"] is not None else "flock: not recorded")
    failed = [f"{s['what']}: {built(s)}" for s in steps.values() if not s.get("ok")]
    if failed:
        return Verdict(Status.FAIL, f"{'; '.join(failed)}; {lock_note}", obs)
    warm = [s["what"] for k, s in steps.items() if k in ("go-a:warm", "go-b:other") and s.get("compiled")]
    if warm:
        return Verdict(Status.FAIL, f"{' and '.join(warm)} compiled again: the cache on NFS was not reused; "
                                    f"{lock_note}", obs)
    cold = steps["go-a:cold"].get("compiled")
    return Verdict(Status.PASS, f"vers={opts.get('vers', '?')}: go mod download, cold ({cold} pkgs), warm (0), the "
                                f"other mount hits (0), two at once and go clean -cache all work; {lock_note}", obs)


class Nfs(Scenario):
    id = "nfs"
    title = ("GOCACHE and GOMODCACHE on NFS (an export of the guest itself, over loopback), per mount: the version and "
             "lock mode the kernel shows, flock through a second view of the export while a first holds it, and each"
             " go command: go mod download, cold and warm build, a build through the second view, both views at once "
             "on fresh caches, go clean -cache")

    @staticmethod
    def answers() -> dict[str, AnswerFn]:
        return {"Q17": answer_nfs}

    @staticmethod
    def outcome(c: CellResult) -> Outcome | None:
        if c.status not in (Status.PASS, Status.FAIL, Status.KNOWN):
            return None
        if c.status is not Status.PASS:
            return Outcome(BREAKS, c.reason)
        if (c.observations.get("flock") or {}).get("cross") is False:
            return Outcome(DEGRADED, "go commands work, but flock does not exclude across mounts: Go's module-cache "
                                     "locks do not protect two clients")
        return Outcome(WORKS, "")

    def precondition(self, cell: Cell) -> tuple[Status, str] | None:
        return Status.NA, "needs the guest VM's NFS server: the guest engine (podman-selinux) runs it"

    def guest_verdict(self, cell: Cell, got: CaseRecords) -> Verdict:
        return verdict(cell.variant or "", got.files, got.guest)

    def detail_title(self, cells: Sequence[CellResult]) -> str:
        return self.title + lab_note(cells, "Server and clients share one kernel over loopback: no latency and no "
                                            "second machine; the second view is a `nosharecache` mount.")

    def detail_rows(self, cells: Sequence[CellResult]) -> Rows:
        headers = ["distro", "arch", "engine", "toolchain", "mount", "flock: other view / same view",
                   "go mod download", "cold", "warm", "other view", "two at once", "go clean -cache, build after",
                   "status"]
        rows = []
        for c in cells:
            o = c.observations
            m, f, st = o.get("mount") or {}, o.get("flock") or {}, o.get("steps") or {}

            def ex(v: Any) -> str:
                return "" if v is None else ("excluded" if v else "not excluded")

            s = {k: built(v) for k, v in st.items()}
            rows.append(lead(c) + [f"{c.cell.get('variant')}: vers={m.get('vers', '')} {m.get('lock', '')} "
                                   f"local_lock={m.get('local_lock', '')}",
                                   f"{ex(f.get('cross'))} / {ex(f.get('same'))}",
                                   s.get("go-a:modd", ""), s.get("go-a:cold", ""), s.get("go-a:warm", ""),
                                   s.get("go-b:other", ""),
                                   f"a: {s.get('conc-a:build', '')}; b: {s.get('conc-b:build', '')}",
                                   f"{s.get('clean:clean', '')}; {s.get('clean:after', '')}", c.status.value])
        return headers, rows


def answer_nfs(cells: Sequence[CellResult]) -> Answer:
    """Q17: per mount kind, whether the go commands work on NFS and whether flock excludes across clients."""
    def key(c: CellResult) -> str | None:
        o = c.observations
        if not o.get("steps"):
            return None
        failed = [f"{s['what']} fails ({brief(str(s.get('stderr') or ''), 80)})" for s in o["steps"].values()
                  if s.get("ran") and not s.get("ok")]
        cross = (o.get("flock") or {}).get("cross")
        lock = "" if cross is None else ("; flock excludes across mounts" if cross else
                                         "; flock does NOT exclude across mounts")
        return f"{c.cell.get('variant')}: {'; '.join(failed) if failed else 'every go command works'}{lock}"

    basis = pick(cells, "nfs")
    return per_case(basis, key, limits="one kernel as server and client over loopback (no latency, no second "
                                       "machine); the export is ext4 on the guest's disk")
