"""`selinux`: a bind-mounted GOCACHE on an SELinux-enforcing host, without a label, with `:z`, with `:Z`,
and an image build with a cache mount under the cell's builder.

Containers run as `container_t`; a host directory keeps its own type (e.g. `user_home_t`,
`default_t`) unless the engine relabels it: `:z` gives it the shared `container_file_t` label (every
container may use it), `:Z` a private one with this container's MCS categories (only this
container). Without either, a write from the container is denied and an AVC is logged. Phases:

    first   process label; write a file into the mount; `go build` with GOCACHE on the mount
    second  a new container on the same directory: the same build again (warm: 0 packages expected)

Relabel options are applied only to directories the cell created in its data directory
(runner.selinux.relabel_option). AVC records come from the host's audit log when it is readable.
On a host that is not enforcing every cell is `n/a` with the mode found: nothing here could show
what SELinux does.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from runner import host
from runner.model import Cell, Status
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
    describe_failure,
    exec_step,
    first_line,
    step,
)
from runner.scenarios import buildkit as bk
from runner.selinux import avcs_since

VARIANTS = ("bind", "bind-z", "bind-Z", "build-cache-mount")
MOUNT = "/gocache"
SRC = f"{SCRATCH}/src"
ENV = {**OFFLINE_GO, "GOCACHE": MOUNT, "GOMODCACHE": f"{SCRATCH}/mod"}
ADVICE = (":z labels the directory container_file_t for every container (shared caches); :Z gives it this "
          "container's private categories (a second container with other categories is denied)")


def relabel(variant: str | None) -> str:
    return {"bind-z": "z", "bind-Z": "Z"}.get(variant or "", "")


class Selinux:
    id = "selinux"

    def precondition(self, cell: Cell) -> tuple[Status, str] | None:
        mode = host.selinux_mode()
        if mode != "enforcing":
            return Status.NA, f"SELinux is not enforcing on this host (mode: {mode}): nothing here shows what it does"
        return None

    def host_driven(self, cell: Cell) -> bool:
        return cell.variant == "build-cache-mount"

    # build-cache-mount: the buildkit scenario's first build + rebuild, on an enforcing host.
    def builds(self, cell: Cell) -> list[bk.Build]:
        return bk.builds(replace(cell, variant="rebuild"))

    def job(self, ctx: JobContext) -> list[dict[str, Any]]:
        return bk.job(ctx)

    def phases(self, cell: Cell, ctx: JobContext) -> list[Phase]:
        mount = (MountSpec("bind", MOUNT, name="gocache", relabel=relabel(cell.variant)),)
        build = ["go", "build", "-v", "-o", f"{SCRATCH}/app", "."]
        base = {"env": ENV, "dir": SRC, "timeout_sec": ctx.build_timeout}
        setup = [{"name": "copy-src", "kind": "copytree", "path": f"{WORKLOADS}/small", "dest": SRC,
                  "stop_on_error": True},
                 exec_step("mod-download", ["go", "mod", "download"], **base, stop_on_error=True)]
        return [
            Phase("first", [{"name": "label", "kind": "read", "path": "/proc/self/attr/current"},
                            {"name": "write", "kind": "write", "path": f"{MOUNT}/gcm-write-test", "data": "x"},
                            *setup, exec_step("build", build, count_compiled=True, **base)], mounts=mount),
            Phase("second", [*setup, exec_step("build", build, count_compiled=True, **base)], mounts=mount),
        ]

    def host_observations(self, cell: Cell, since: float) -> dict[str, Any]:
        avcs = avcs_since(since)
        if avcs is None:
            return {"avc": "audit log not readable here"}
        return {"avc": [a for a in avcs if "container" in str(a.get("scontext", ""))]}

    def evaluate(self, cell: Cell, probes: Probes, ctx: JobContext) -> Verdict:
        if self.host_driven(cell):
            v = bk.Buildkit().evaluate(replace(cell, variant="rebuild"), probes, ctx)
            return Verdict(v.status, v.reason, {**v.observations, "variant": cell.variant})
        first, second = dict(probes.get("first") or {}), dict(probes.get("second") or {})
        label = (step(first, "label") or {}).get("content") or ""
        write = step(first, "write")
        obs: dict[str, Any] = {
            "variant": cell.variant, "relabel": relabel(cell.variant) or "none",
            "process_label": label.strip("\x00\n "),
            "write": "ok" if write and write.get("ok") else f"denied: {first_line((write or {}).get('error'))}",
            "first": build_obs(step(first, "build")), "second": build_obs(step(second, "build")),
        }
        if write is None:  # lost output must never read as "denied"
            return Verdict(Status.ERROR, "the first container's result has no write step: its output was lost", obs)
        wrote = bool(write.get("ok"))
        if not relabel(cell.variant):
            if wrote:
                return Verdict(Status.FAIL, "the container wrote to an unlabelled bind mount on an enforcing host: "
                                            "the container is not confined (label=disable or an unconfined runtime?)",
                               obs)
            return Verdict(Status.PASS, f"write denied as SELinux documents ({obs['write']}); fix: {ADVICE}", obs)
        if not wrote:
            return Verdict(Status.FAIL, f"write with :{relabel(cell.variant)} denied: {obs['write']}", obs)
        for name, probe in (("first", first), ("second", second)):
            s = step(probe, "build")
            if s is None or not s.get("ok"):
                return Verdict(Status.FAIL, describe_failure(s, f"{name} build"), obs)
        if obs["second"]["compiled"]:
            return Verdict(Status.FAIL, f"the warm rebuild in a new container compiled {obs['second']['compiled']} "
                                        "packages, expected 0", obs)
        return Verdict(Status.PASS, f":{relabel(cell.variant)}: write ok, cold {obs['first']['compiled']} pkgs, "
                                    "warm rebuild in a new container 0", obs)
