"""`portability`: does a Go build cache made in one distro's container serve another's, and are the
binaries the same?

portability:from-<distro>  (the cell's distro is the target; matrix.toml lists the sources)
    populate  in <distro>'s image: `go mod download`, a plain build and a `-trimpath` build of the small
              workload at /tmp/gcm/src, caches on a bind mount; made once per run (runner.once): the other
              target rows of the run copy the first one's
    reuse     in the cell's image, same toolchain and arch: copy both caches into the container (a copy,
              not shared live), then build at the same path, at another checkout path, and at the other
              path with `-trimpath`; record the packages each compiles

    Go's cache keys hash the toolchain, the build flags, the environment that matters and, without
    -trimpath, the source directory; nothing about the distro. So the rule: the same path and the
    -trimpath build at another path compile 0 packages; at another path without -trimpath only the
    packages of the workload's own module are recompiled (dependencies come from the module cache,
    whose path is unchanged). `from-<own distro>` is the control row.

portability:binary  `CGO_ENABLED=0 go build -trimpath -buildvcs=false` of the small workload; the
    binary's sha256. The detail table says whether the binaries of one Go version and arch are
    identical across distros, and which differ.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from runner.answer import BREAKS, DEGRADED, DEPENDS, WORKS, Answer, AnswerFn, Outcome, judged, obs_of, per_case, pick
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
    describe_failure,
    exec_step,
    first_line,
    step,
)
from runner.scenarios.base import Rows, Scenario
from runner.scenarios.rows import lead

MODULE = "gcm.example/small"
SHARED = "/populated"  # bind mount: the caches the populate phase made
SRC = f"{SCRATCH}/src"
OTHER_SRC = f"{SCRATCH}/elsewhere/checkout"
CACHE = f"{SCRATCH}/cache"  # where each phase's caches live inside its container
ENV = {**OFFLINE_GO, "GOCACHE": f"{CACHE}/build", "GOMODCACHE": f"{CACHE}/mod", "CGO_ENABLED": "0"}
BINARY_FLAGS = ["-trimpath", "-buildvcs=false"]


def _build(name: str, ctx: JobContext, src: str, *flags: str) -> dict[str, Any]:
    return exec_step(name, ["go", "build", "-v", *flags, "-o", f"{SCRATCH}/bin/{name}", "."], dir=src, env=ENV,
                     count_compiled=True, timeout_sec=ctx.build_timeout)


def _copy_src(dest: str) -> dict[str, Any]:
    return {"name": f"copy-src-{dest.rsplit('/', 2)[-2]}", "kind": "copytree", "path": f"{WORKLOADS}/small",
            "dest": dest, "stop_on_error": True}


def _portability_rows(cells: Sequence[CellResult]) -> Rows:
    headers = ["distro", "arch", "engine", "toolchain", "case", "same path", "other path", "other path, -trimpath",
               "binary sha256", "same binary in", "status"]
    # Binaries of one Go version and arch, by digest: which distros built identical bytes.
    by_digest: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for c in cells:
        if sha := c.observations.get("sha256"):
            by_digest[(c.cell["toolchain"], c.cell["arch"])][sha].append(c.cell["distro"])

    def pk(o: Any) -> str:
        if not isinstance(o, dict) or not o.get("ran", True):
            return ""
        if o.get("ok") is False:
            return f"exit {o.get('exit_code')}"
        return f"{o.get('compiled')} compiled" + (f" ({', '.join(o['packages'])})" if o.get("packages") else "")

    rows = []
    for c in cells:
        o = c.observations
        sha = o.get("sha256")
        same = ""
        if sha:
            groups = by_digest[(c.cell["toolchain"], c.cell["arch"])]
            total = sum(len(v) for v in groups.values())
            same = f"all {total} distros" if len(groups) == 1 else f"{len(groups[sha])} of {total}: " + \
                ", ".join(groups[sha])
        case = c.cell.get("variant") or ""
        if o.get("source"):
            case = f"{o['source']} → {o.get('target', '')}"
        rows.append(lead(c) + [case, pk(o.get("same-path")), pk(o.get("other-path")),
                                 pk(o.get("other-path-trimpath")), f"`{sha[:16]}…`" if sha else "", same,
                                 c.status.value])
    return headers, rows


class Portability(Scenario):
    id = "portability"
    title = ("A cache made in one distro's container, copied into another's (same toolchain and arch): packages "
             "each rebuild compiled; and the sha256 of a `CGO_ENABLED=0 -trimpath -buildvcs=false` build per "
             "cell, compared across distros")

    @staticmethod
    def answers() -> dict[str, AnswerFn]:
        return {"Q12": answer_portability}

    @staticmethod
    def outcome(c: CellResult) -> Outcome:
        o = c.observations
        failed = [n for n in ("same-path", "other-path", "other-path-trimpath", "build")
                  if (o.get(n) or {}).get("ok") is False]
        if failed or (c.status is not Status.PASS and not any(k in o for k in ("same-path", "sha256"))):
            return Outcome(BREAKS, c.reason)
        missed = [n for n in ("same-path", "other-path-trimpath") if (o.get(n) or {}).get("compiled")]
        if missed:
            return Outcome(DEGRADED, "the copied cache missed: " + ", ".join(f"{n} {o[n]['compiled']} compiled"
                                                                             for n in missed))
        if c.status is not Status.PASS:
            return Outcome(DEGRADED, c.reason)
        return Outcome(WORKS, "")

    def phases(self, cell: Cell, ctx: JobContext) -> list[Phase]:
        assert cell.variant is not None
        if cell.variant == "binary":
            return [Phase("binary", [
                _copy_src(SRC),
                exec_step("mod-download", ["go", "mod", "download"], dir=SRC, env=ENV, timeout_sec=ctx.build_timeout,
                          stop_on_error=True),
                exec_step("build", ["go", "build", *BINARY_FLAGS, "-o", f"{SCRATCH}/bin/app", "."], dir=SRC, env=ENV,
                          timeout_sec=ctx.build_timeout, stop_on_error=True),
                exec_step("sha256", ["sha256sum", f"{SCRATCH}/bin/app"]),
            ])]
        source = cell.variant.removeprefix("from-")
        shared = MountSpec("bind", SHARED, name="populated")
        return [
            Phase("populate", [
                _copy_src(SRC),
                exec_step("mod-download", ["go", "mod", "download"], dir=SRC, env=ENV, timeout_sec=ctx.build_timeout,
                          stop_on_error=True),
                _build("plain", ctx, SRC),
                _build("trimpath", ctx, SRC, "-trimpath"),
                exec_step("export", ["cp", "-a", CACHE, f"{SHARED}/cache"], stop_on_error=True),
                {"name": "os", "kind": "read", "path": "/etc/os-release"},
            # The populated cache is the source distro's, whatever the cell's: made once per run (runner.once),
            # every target row copies it, as the "a populated cache made once ... never rebuilt per cell".
            ], mounts=(shared,), distro=source, once="portability-populate"),
            Phase("reuse", [
                exec_step("mkdir", ["mkdir", "-p", SCRATCH], stop_on_error=True),
                exec_step("import", ["cp", "-a", f"{SHARED}/cache", CACHE], stop_on_error=True),
                {"name": "os", "kind": "read", "path": "/etc/os-release"},
                _copy_src(SRC),
                _build("same-path", ctx, SRC),
                _copy_src(OTHER_SRC),
                _build("other-path", ctx, OTHER_SRC),
                _build("other-path-trimpath", ctx, OTHER_SRC, "-trimpath"),
            ], mounts=(shared,)),
        ]

    def evaluate(self, cell: Cell, probes: Probes, ctx: JobContext) -> Verdict:
        assert cell.variant is not None
        if cell.variant == "binary":
            return self._binary(probes["binary"])
        populate, reuse = probes["populate"], probes["reuse"]
        obs: dict[str, Any] = {"source": cell.variant.removeprefix("from-"), "target": cell.distro.id,
                               "source_os": _pretty(step(populate, "os")), "target_os": _pretty(step(reuse, "os"))}
        for name in ("plain", "trimpath"):
            s = step(populate, name)
            obs[f"populate_{name}"] = build_obs(s)
            if not (s and s.get("ok")):
                return Verdict(Status.FAIL, f"populating in {obs['source']}: {describe_failure(s, name)}", obs)
        for name in ("import", "export"):
            s = step(reuse if name == "import" else populate, name)
            if not (s and s.get("ok")):
                return Verdict(Status.ERROR, describe_failure(s, f"cache {name}"), obs)
        builds = {}
        for name in ("same-path", "other-path", "other-path-trimpath"):
            s = step(reuse, name)
            obs[name] = {**build_obs(s), "packages": sorted(s.get("compiled") or []) if s else []}
            if not (s and s.get("ok")):
                return Verdict(Status.FAIL, f"in {cell.distro.id}: {describe_failure(s, name)}", obs)
            builds[name] = obs[name]["packages"]
        foreign = [p for p in builds["other-path"] if not (p == MODULE or p.startswith(MODULE + "/"))]
        summary = (f"{obs['source']} → {cell.distro.id}: same path {len(builds['same-path'])} compiled, other path "
                   f"{len(builds['other-path'])}, other path + -trimpath {len(builds['other-path-trimpath'])}")
        if builds["same-path"] or builds["other-path-trimpath"]:
            return Verdict(Status.FAIL, f"the copied cache missed: {summary}", obs)
        if foreign:
            return Verdict(Status.FAIL, f"another checkout path also recompiled {', '.join(foreign)}: {summary}", obs)
        return Verdict(Status.PASS, summary, obs)

    @staticmethod
    def _binary(probe: Any) -> Verdict:
        build, sha = step(probe, "build"), step(probe, "sha256")
        obs: dict[str, Any] = {"flags": ["CGO_ENABLED=0", *BINARY_FLAGS], "build": build_obs(build)}
        if not (build and build.get("ok")):
            return Verdict(Status.FAIL, describe_failure(build, "build"), obs)
        if not (sha and sha.get("ok")):
            return Verdict(Status.ERROR, describe_failure(sha, "sha256sum"), obs)
        obs["sha256"] = first_line(sha.get("stdout")).split()[0]
        return Verdict(Status.PASS, f"sha256 {obs['sha256'][:16]}…", obs)

    def detail_rows(self, cells: Sequence[CellResult]) -> Rows:
        return _portability_rows(cells)


def _pretty(s: dict[str, Any] | None) -> str:
    for line in ((s or {}).get("content") or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return ""


def _reuse(c: CellResult) -> str | None:
    if c.cell.get("variant") == "binary" or obs_of(c, "same-path", "compiled") is None:
        return None
    same, other, trim = (obs_of(c, n, "compiled") for n in ("same-path", "other-path", "other-path-trimpath"))
    src = str(c.cell.get("variant", "")).removeprefix("from-")
    return (f"cache from {'its own distro' if src == c.cell.get('distro') else 'another distro'}: same path {same} "
            f"compiled, another checkout path {other}, there with -trimpath {trim}")


def answer_portability(cells: Sequence[CellResult]) -> Answer:
    """Q12: a cache populated in one distro's container, copied into another's: hits at the same path, at another
    path, with -trimpath; and whether the -trimpath binaries of one Go version and arch are identical."""
    basis = pick(cells, "portability")
    a = per_case([c for c in basis if c.cell.get("variant") != "binary"], _reuse)
    sums: dict[str, dict[str, list[str]]] = {}
    for c in judged(basis):
        if sha := c.observations.get("sha256"):
            sums.setdefault(f"{c.cell['toolchain']}/{c.cell['arch']}", {}).setdefault(sha, []).append(
                str(c.cell["distro"]))
    binaries = "; ".join(
        f"{k}: identical on {', '.join(v[next(iter(v))])}" if len(v) == 1 else
        f"{k}: {len(v)} different binaries ({'; '.join(', '.join(d) for d in v.values())})"
        for k, v in sorted(sums.items()))
    verdict = DEPENDS if a.verdict == DEPENDS or any(len(v) > 1 for v in sums.values()) else a.verdict
    if not a.text and not binaries:
        return Answer(a.verdict, "", tuple(basis))
    text = "; ".join(t for t in (a.text.removeprefix("depends: "), f"-trimpath binaries: {binaries}" if binaries
                                 else "") if t)
    return Answer(verdict if a.text else "value", ("depends: " if verdict == DEPENDS else "") + text, tuple(basis),
                  limits="the `small` workload, caches copied (not shared live); CGO_ENABLED=0 binaries only")
