"""`selinux`: a GOCACHE mount under SELinux enforcing, without a label, with `:z`, with `:Z`, reused by a new
container, with labelling disabled, on a named volume, and an image build with a cache mount.

Containers run as `container_t`; a host directory keeps its own type (e.g. `user_home_t`,
`default_t`) unless the engine relabels it: `:z` gives it the shared `container_file_t` label (every
container may use it), `:Z` a private one with this container's MCS categories (only this
container). Without either, a write from the container is denied and an AVC is logged.

Each variant is a CASE: one or more container runs on the same cache, each doing some of

    label   the process label (/proc/self/attr/current)
    write   create a file in the cache (gcm-write-<run>)
    reuse   read, then write, the file the first run's container created (files carry their creator's
            MCS categories: a container with other categories may not use them unless the tree is relabelled)
    build   `go build` with GOCACHE on the cache (a later run's build is the warm rebuild: 0 packages)

Where it runs:
- on a host that is itself enforcing (Fedora/RHEL/Rocky with podman or docker), on the cell's engine:
  the cases become phases (runner.execute); AVC records come from the host's audit log when readable.
  Relabel options are applied only to directories the cell created (runner.selinux.relabel_option).
- on the `podman-selinux` engine, in an SELinux-enforcing Debian guest VM (runner.guest): the cases of
  all variants run in one boot, and the guest's audit log gives each case its AVC records.
On a host that is not enforcing the host-engine cells are `n/a` with the mode found.

A case whose output is lost (a record missing) is an `error`, never a pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from runner import guest, host
from runner.answer import BREAKS, WORKS, Answer, AnswerFn, Outcome, brief, per_case, pick
from runner.model import Cell, Status
from runner.results import CellResult
from runner.scenarios import (
    OFFLINE_GO,
    SCRATCH,
    WORKLOADS,
    JobContext,
    MountSpec,
    Phase,
    Probes,
    Verdict,
    build_obs,
    exec_step,
    first_line,
    step,
)
from runner.scenarios import buildkit as bk
from runner.scenarios.base import Rows, Scenario
from runner.scenarios.rows import lead
from runner.selinux import CASES as CASES
from runner.selinux import VARIANTS as VARIANTS
from runner.selinux import WHAT as WHAT
from runner.selinux import Run as Run
from runner.selinux import avcs_since, relabel
from runner.selinux import clean_label as clean_label

MOUNT = "/gocache"
SRC = f"{SCRATCH}/src"
ENV = {**OFFLINE_GO, "GOCACHE": MOUNT, "GOMODCACHE": f"{SCRATCH}/mod"}
ADVICE = (":z labels the directory container_file_t for every container (shared caches); :Z gives it this "
          "container's private categories (a second container with other categories is denied)")


def _selinux_rows(cells: Sequence[CellResult]) -> Rows:
    headers = ["distro", "arch", "engine", "toolchain", "case", "process label", "cache dir label: before → after",
               "write", "go build (cold)", "warm rebuild, new container", "AVC (container_t)", "for users", "status"]
    return headers, [lead(c) + selinux_row(c.cell.get("variant"), c.observations) + [c.status.value] for c in cells]


class Selinux(Scenario):
    id = "selinux"
    title = ("GOCACHE under SELinux enforcing, per case: the container's process label, the cache directory's "
             "label before → after the runs, the write, Go's build (pkgs compiled, or exit: Go's first line) and"
             " the warm rebuild in a new container, and the container_t denial the audit log holds. `:z` labels "
             "the directory `container_file_t` for every container (a shared cache); `:Z` with one container's "
             "MCS categories (private: another container is denied, often without an AVC)")

    @staticmethod
    def answers() -> dict[str, AnswerFn]:
        return {"Q27": answer_selinux}

    @staticmethod
    def outcome(c: CellResult) -> Outcome:
        """A denied write or a failed build breaks, also where SELinux documents the denial."""
        o = c.observations
        if not str(o.get("write", "ok")).startswith("ok"):
            return Outcome(BREAKS, f"write {o.get('write')}")
        for name in ("first", "second"):
            b = o.get(name) or {}
            if b.get("ran") and not b.get("ok"):
                return Outcome(BREAKS, f"{name} build: {b.get('stderr', '')}")
        if c.status is not Status.PASS:
            return Outcome(BREAKS, c.reason)
        return Outcome(WORKS, "")

    def precondition(self, cell: Cell) -> tuple[Status, str] | None:
        """Host engines only: the guest engine (runner.guest) is enforcing by construction."""
        mode = host.selinux_mode()
        if mode != "enforcing":
            return Status.NA, (f"SELinux is not enforcing on this host (mode: {mode}): nothing here shows what it "
                               "does; the podman-selinux engine measures it in an enforcing guest VM")
        return None

    def host_driven(self, cell: Cell) -> bool:
        return cell.variant == "build-cache-mount"

    # build-cache-mount on an enforcing host: the buildkit scenario's first build + rebuild.
    def builds(self, cell: Cell) -> list[bk.Build]:
        return bk.builds(replace(cell, variant="rebuild"))

    def job(self, cell: Cell, ctx: JobContext) -> list[dict[str, Any]]:
        return bk.job(ctx)

    def phases(self, cell: Cell, ctx: JobContext) -> list[Phase]:
        """The case's runs as phases on the host engine, all on one cache directory (or volume)."""
        build = ["go", "build", "-v", "-o", f"{SCRATCH}/app", "."]
        base = {"env": ENV, "dir": SRC, "timeout_sec": ctx.build_timeout}
        steps = {
            "label": [{"name": "label", "kind": "read", "path": "/proc/self/attr/current"}],
            "write": [{"name": "write", "kind": "write", "path": f"{MOUNT}/gcm-write-RUN", "data": "x"}],
            "reuse": [{"name": "reuse-read", "kind": "read", "path": f"{MOUNT}/gcm-write-first"},
                      {"name": "reuse-write", "kind": "write", "path": f"{MOUNT}/gcm-write-first", "data": "y"}],
            "build": [{"name": "copy-src", "kind": "copytree", "path": f"{WORKLOADS}/small", "dest": SRC,
                       "stop_on_error": True},
                      exec_step("mod-download", ["go", "mod", "download"], **base, stop_on_error=True),
                      exec_step("build", build, count_compiled=True, **base)],
        }
        def named(step: dict[str, Any], run: str) -> dict[str, Any]:
            return {**step, "path": step["path"].replace("RUN", run)} if "path" in step else step

        return [Phase(run.name, [named(s, run.name) for name in run.steps for s in steps[name]],
                      mounts=(MountSpec(run.mount, MOUNT, name="gocache", relabel=run.relabel),),
                      security_opt=run.security_opt)
                for run in CASES[cell.variant or ""]]

    def host_observations(self, cell: Cell, since: float) -> dict[str, Any]:
        avcs = avcs_since(since)
        if avcs is None:
            return {"avc": "audit log not readable here"}
        return {"avc": [a for a in avcs if "container" in str(a.get("scontext", ""))]}

    def evaluate(self, cell: Cell, probes: Probes, ctx: JobContext) -> Verdict:
        """Host engine: the probe's records -> the case's records -> judge (AVCs are added afterwards)."""
        if self.host_driven(cell):
            v = bk.Buildkit().evaluate(replace(cell, variant="rebuild"), probes, ctx)
            return Verdict(v.status, v.reason, {**v.observations, "variant": cell.variant})
        runs = {run.name: runs_from_probe(probes.get(run.name)) for run in CASES[cell.variant or ""]}
        return verdict(cell.variant or "", runs, avcs=None)

    def guest_verdict(self, cell: Cell, got: guest.CaseRecords) -> Verdict:
        """The podman-selinux engine: the guest ran the case (one boot shared by the run's selinux-mode cells)."""
        v = verdict(cell.variant or "", got.runs, got.avc, {"guest": got.guest})
        if v.status is Status.ERROR and (logs := got.engine_log()):
            return Verdict(v.status, f"{v.reason}; engine: {logs[-1]}", v.observations)
        return v

    def detail_title(self, cells: Sequence[CellResult]) -> str:
        """Where it was measured: the guest's kernel and policy, from the cells themselves."""
        return self.title + guest_note([c.observations.get("guest") for c in cells])

    def detail_rows(self, cells: Sequence[CellResult]) -> Rows:
        return _selinux_rows(cells)


def runs_from_probe(probe: Mapping[str, Any] | None) -> dict[str, Any]:
    """One phase's probe result as a run record: {"label", "write", "build"}, None where a step is missing."""
    probe = probe or {}
    label, write, build = step(probe, "label"), step(probe, "write"), step(probe, "build")
    read_back, write_back = step(probe, "reuse-read"), step(probe, "reuse-write")
    return {
        "label": clean_label(label.get("content")) if label is not None else None,
        "write": None if write is None else {"ok": bool(write.get("ok")), "error": first_line(write.get("error"))},
        "reuse": None if read_back is None or write_back is None else {
            "read": bool(read_back.get("ok")), "write": bool(write_back.get("ok")),
            "error": first_line(read_back.get("error") or write_back.get("error"))},
        "build": build_obs(build) if build is not None else None,
    }


def context_type(context: str | None) -> str:
    """'system_u:system_r:container_t:s0:c1,c2' -> 'container_t'."""
    parts = (context or "").split(":")
    return parts[2] if len(parts) > 2 else ""


def container_avcs(avcs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Denials of a container process on a file or directory."""
    return [a for a in avcs if a.get("result") == "denied" and context_type(a.get("scontext")) == "container_t"
            and a.get("tclass") in ("dir", "file")]


def avc_text(a: Mapping[str, Any]) -> str:
    return (f"denied {{ {' '.join(a.get('permissions') or [])} }} {context_type(a.get('scontext'))} → "
            f"{context_type(a.get('tcontext'))} ({a.get('tcontext')}) tclass={a.get('tclass')}")


def _write(run: Mapping[str, Any] | None) -> str:
    w = (run or {}).get("write")
    if not w:
        return ""
    return "ok" if w.get("ok") else f"denied: {w.get('error') or '?'}"


def _reuse(run: Mapping[str, Any] | None) -> str:
    r = (run or {}).get("reuse")
    if not r:
        return ""
    if r.get("read") and r.get("write"):
        return "ok"
    return f"read {'ok' if r.get('read') else 'denied'}, write {'ok' if r.get('write') else 'denied'}"


SHARE_FIX = ("files keep the MCS categories of the container that created them: use :z on every container (podman "
             "relabels the whole tree each time) or run the containers at one level (--security-opt label=level:s0)")


def _built(b: Mapping[str, Any] | None) -> str:
    if not b:
        return ""
    if b.get("ok"):
        return f"ok, {b.get('compiled')} pkgs"
    return f"exit {b.get('exit_code')}: {b.get('stderr') or '?'}"


def verdict(variant: str, runs: Mapping[str, Mapping[str, Any]], avcs: Sequence[Mapping[str, Any]] | None,
            extra: Mapping[str, Any] | None = None) -> Verdict:
    """Status from the case's records. avcs: the container denials logged during the case, or None when the
    audit log is not part of the judgement (host engine: it is read after the verdict)."""
    case = CASES[variant]
    first, second = dict(runs.get("first") or {}), dict(runs.get("second") or {})
    obs: dict[str, Any] = {
        "variant": variant, "case": WHAT[variant], "relabel": relabel(variant) or "none",
        "process_label": first.get("label") or second.get("label") or "",
        "write": _write(first), "first": first.get("build") or {"ran": False},
        "second": second.get("build") or {"ran": False}, "runs": {k: dict(v) for k, v in runs.items()},
        **(extra or {}),
    }
    if avcs is not None:
        obs["avc"] = [dict(a) for a in avcs]
    missing = [f"{run.name}.{s}" for run in case for s in run.steps if (runs.get(run.name) or {}).get(s) is None]
    if missing:
        return Verdict(Status.ERROR, f"output lost: no record of {', '.join(missing)} (a case whose output is "
                                     "lost never passes)", obs)
    denials = container_avcs(avcs or [])
    avc_note = f"AVC {avc_text(denials[0])}" if denials else (
        "no AVC logged" if avcs is not None else "AVCs: see the audit log records")

    def wrote(run: Mapping[str, Any]) -> bool:
        return bool(run["write"]["ok"])

    def reused(run: Mapping[str, Any]) -> bool:
        r = run.get("reuse")
        return r is None or bool(r["read"] and r["write"])

    mcs = next((a for a in denials if len(str(a.get("tcontext", "")).split(":")) > 4), None)
    mcs_note = f"AVC {avc_text(mcs)}" if mcs else ("no AVC logged (an unaudited MCS denial)" if avcs is not None
                                                   else "AVCs: see the audit log records")

    def builds_ok() -> Verdict | None:
        for name, run in (("first", first), ("second", second)):
            b = run.get("build")
            if b is not None and not b.get("ok"):
                return Verdict(Status.FAIL, f"{name} build failed: {_built(b)}", obs)
        if second.get("build") and second["build"].get("compiled"):
            return Verdict(Status.FAIL, f"the warm rebuild in a new container compiled {second['build']['compiled']} "
                                        "packages, expected 0", obs)
        return None

    if variant == "bind":
        if wrote(first):
            return Verdict(Status.FAIL, "the container wrote to an unlabelled bind mount on an enforcing host: the "
                                        "container is not confined (label=disable or an unconfined runtime?)", obs)
        if avcs is not None and not denials:
            return Verdict(Status.FAIL, f"write denied ({obs['write']}) but no container_t AVC was logged: the "
                                        "denial is not SELinux's as far as this run can tell", obs)
        go = f"; Go: {_built(first['build'])}" if first.get("build") else ""
        return Verdict(Status.PASS, f"write denied as SELinux documents ({obs['write']}; {avc_note}){go}; "
                                    f"fix: {ADVICE}", obs)
    if variant in ("bind-z", "bind-Z", "volume", "build-cache-mount"):
        what = {"volume": "named volume", "build-cache-mount": "cache mount"}.get(variant, f":{relabel(variant)}")
        if not wrote(first):
            return Verdict(Status.FAIL, f"write with {what} denied: {obs['write']} ({avc_note})", obs)
        if not reused(second):
            go = f"; its build: {_built(second['build'])}" if second.get("build") else ""
            return Verdict(Status.FAIL, f"{what}: a second container may not use the files the first created "
                                        f"({_reuse(second)}; {mcs_note}){go}; {SHARE_FIX}", obs)
        bad = builds_ok()
        if bad:
            return bad
        return Verdict(Status.PASS, f"{what}: write ok, cold {first['build']['compiled']} pkgs, warm rebuild in a "
                                    "new container 0", obs)
    if variant == "bind-Z-reused":
        if not wrote(first):
            return Verdict(Status.FAIL, f"write with :Z denied: {obs['write']}", obs)
        if wrote(second):
            return Verdict(Status.FAIL, "a new container wrote to a directory another container labelled with :Z: "
                                        "MCS separation is not enforced here", obs)
        note = avc_note if denials or avcs is None else \
            "no AVC logged: the policy does not audit this MCS denial (dontaudit; `semodule -DB` shows it)"
        go = f"; Go: {_built(second['build'])}" if second.get("build") else ""
        return Verdict(Status.PASS, f":Z is private to the container that mounted it: a new container without :Z is "
                                    f"denied ({_write(second)}; {note}){go}; fix: :Z again on every run (relabels "
                                    "each time) or :z for a cache shared by containers", obs)
    if variant == "bind-z-reused":
        if not (wrote(first) and wrote(second)):
            return Verdict(Status.FAIL, f"a :z directory: first {_write(first)}, new container {_write(second)}",
                           obs)
        if not reused(second):
            return Verdict(Status.FAIL, ":z labels the directory for every container, so a new one without an option "
                                        "creates files there, but may not use the first container's files "
                                        f"({_reuse(second)}; {mcs_note}): a shared Go cache breaks this way; "
                                        f"{SHARE_FIX}", obs)
        return Verdict(Status.PASS, ":z labels the directory once for all containers: a new container without an "
                                    "option writes there and uses the first container's files", obs)
    if variant == "label-disable":
        if not wrote(first):
            return Verdict(Status.FAIL, f"write with label=disable denied: {obs['write']} ({avc_note})", obs)
        return Verdict(Status.PASS, f"label=disable: the process runs as {context_type(obs['process_label']) or '?'} "
                                    "and writes without relabelling, with SELinux confinement off for that "
                                    "container", obs)
    raise ValueError(f"unknown selinux variant {variant!r}")


# ---------------------------------------------------------------- the report's row and title note
USER_NOTE = {
    "bind": "add :z (shared) or :Z (private)",
    "bind-z": "works; every container may use the dir",
    "bind-Z": "works; private to this container",
    "bind-Z-reused": ":Z on every run, or :z to share",
    "bind-z-reused": ":z on every run: files keep their creator's categories",
    "label-disable": "works, without SELinux confinement",
    "volume": "share across containers: :z on the volume, or label=level:s0",
    "build-cache-mount": "works: the cache mount is labelled for the build",
}
REUSED = ("bind-Z-reused", "bind-z-reused")


def _type_level(context: str) -> str:
    """'unconfined_u:object_r:user_home_t:s0 /path' -> 'user_home_t:s0'."""
    parts = (context or "").split()[0].split(":") if context else []
    return ":".join(parts[2:]) if len(parts) > 2 else (context or "")


def selinux_row(variant: str | None, o: Mapping[str, Any]) -> list[str]:
    """The detail table's columns for one cell: case, label, dir label, write, cold, warm, AVC, for users."""
    variant = variant or ""
    runs = o.get("runs") or {}
    first, second = dict(runs.get("first") or {}), dict(runs.get("second") or {})
    labels = list(dict.fromkeys(x for x in (first.get("label"), second.get("label")) if x))
    def label_of(text: Any) -> str:  # "" when the guest could not stat it (e.g. no buildah cache dir there)
        text = str(text or "")
        return "" if text.startswith("stat:") else _type_level(text)

    before = label_of(first.get("dir_label_before"))
    after = label_of((second or first).get("dir_label_after"))
    dir_label = f"{before} → {after}" if before and after and before != after else before or after
    write = _write(first)
    if variant in REUSED:
        write = f"{write} · new container: {_write(second)}"
    if second.get("reuse"):
        write += f" · 2nd container on the 1st's file: {_reuse(second)}"
    cold, warm = first.get("build"), second.get("build")
    if variant in REUSED:
        cold, warm = warm, None
    avc = o.get("avc")
    if isinstance(avc, list):
        denials = container_avcs(avc)
        avc_col = "; ".join(dict.fromkeys(
            f"{{ {' '.join(a.get('permissions') or [])} }} → {context_type(a.get('tcontext'))} {a.get('tclass')}"
            for a in denials)) or "none logged"
    else:
        avc_col = str(avc or "")
    case = f"{variant}: {WHAT.get(variant, '')}"
    return [case, " / ".join(labels) or str(o.get("process_label") or ""), dir_label, write, _built(cold),
            _built(warm), avc_col, USER_NOTE.get(variant, "")]


CAVEAT = ("Debian's reference policy with its container module is not Fedora/RHEL `container-selinux`: the `:z`/`:Z` "
          "behaviour and the container_t vs unlabelled-directory denial match what users see there; the labels of "
          "the engine and conmon, and the lost container output (fixed in the guest by a one-rule local module and "
          "podman at level s0), do not")


def guest_note(guests: Sequence[Mapping[str, Any] | None]) -> str:
    """Where the podman-selinux rows were measured, named in the table's title, with the caveat."""
    seen = []
    for g in guests:
        if not g:
            continue
        accel = str(g.get("accel", "?"))
        speed = "near native" if accel == "KVM" else f"software emulation, timeouts ×{g.get('duration_factor', '?')}"
        text = (f"a Debian 12 guest VM under QEMU {g.get('qemu', '?')} with {accel} ({speed}), kernel "
                f"{g.get('kernel', '?')}, {g.get('policy', '?')} + its container module "
                f"(`{g.get('container_module', '?')}`), podman {g.get('podman', '?')}, SELinux {g.get('enforce', '?')}"
                f" with MCS")
        if text not in seen:
            seen.append(text)
    if not seen:
        return ""
    return f". The `podman-selinux` rows ran in {'; and in '.join(seen)}. {CAVEAT}"


def answer_selinux(cells: Sequence[CellResult]) -> Answer:
    """Q27: per mount and relabel case, what works and what SELinux denies (with the container's Go build)."""
    from runner.findings import outcome_of

    def key(c: CellResult) -> str | None:
        o = outcome_of(c)
        said = f" ({brief(o.message)})" if o is not None and o.message else ""
        return None if o is None else f"{c.cell.get('variant')}: {o.word}{said}"

    basis = pick(cells, "selinux")
    guest = any(c.cell.get("engine") == "podman-selinux" for c in basis)
    return per_case(basis, key, limits="measured in a Debian guest with the reference policy, not Fedora/RHEL "
                                       "container-selinux" if guest else "")
