"""`buildkit`: Go caches in image builds, `RUN --mount=type=cache` for GOCACHE and GOMODCACHE.

The builder is the cell's engine: docker (BuildKit) or podman (buildah). Unlike the other scenarios
nothing runs in a container the runner starts: every build is an engine build (runner/buildrun.py)
of a generated Dockerfile whose one RUN step mounts the caches and runs the probe, which prints its
result into the build's plain progress output. Each variant is a sequence of builds on one cache id:

    rebuild     first build (the mount starts empty), then a rebuild after a one-line change in the
                leaf package internal/format: only it and its dependents may compile
    shared      two builds at once, each with its own one-line change, on one cache id, sharing=shared
    locked      the same with sharing=locked (the second waits for the first)
    private     the same with sharing=private (the second gets its own, empty, mount)

                "At once" is made sure of, not hoped for: each RUN step notes the kernel's uptime, leaves a
                marker in its GOCACHE mount and waits (up to AT_ONCE_WAIT s) for another build's marker
                before it builds, and notes the uptime again at its end. The finding is what each build saw
                and whether the two RUN steps overlapped; which mount happened to start empty is a race
                and is reported, not judged.
    nonroot     USER 1000 builds twice: cache mounts without uid=/gid= (owned by root), then, on fresh
                cache ids, with uid=1000,gid=1000
    cross-arch  one cache id used by an amd64 build and then an arm64 build (emulated here)
    prune       build, prune this cell's build cache (docker: its cache-mount records; podman: its
                images, as `podman builder prune` does), build again: did the mount survive?
    no-cache    build, then the same build with --no-cache: is the cache mount kept?

Observations per build: exit code, `go build` wall time measured in the build, packages compiled
(`go build -v`), files in the cache mount before the build (0 = the mount started empty), and for
buildah where its cache directory lives on the host.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner.answer import BREAKS, DEGRADED, WORKS, Answer, AnswerFn, Outcome, per_case, pick
from runner.model import Arch, Cell, Status
from runner.results import CellResult
from runner.scenarios import (
    OFFLINE_GO,
    JobContext,
    Phase,
    Probes,
    Verdict,
    build_argv,
    catalogue,
    describe_failure,
    exec_step,
    first_line,
    step,
)
from runner.scenarios.base import Rows, Scenario
from runner.scenarios.rows import lead

VARIANTS = catalogue.variants("buildkit")  # the registry line lists them
SRC = "/src"  # the workload in the image (COPY), where go runs
GOCACHE = "/cache/go-build"
GOMODCACHE = "/cache/mod"
EDIT_FILE = "internal/format/format.go"  # relative to the workload; the leaf package of `small` and of `lib`
DEPS_FORMAT = "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}"
BUILD_USER = 1000  # the family images' `gopher`
BUILD_ENV = {**OFFLINE_GO, "GOCACHE": GOCACHE, "GOMODCACHE": GOMODCACHE, "HOME": "/tmp"}
AT_ONCE = ("shared", "locked", "private")  # two builds started together on one cache id
AT_ONCE_WAIT = 5.0  # seconds a RUN step waits for the other's marker: covers the skew of two builds' starts
# POSIX sh (busybox too): the uptime (same kernel, same clock for both RUN steps), the files Go put in the mount
# (markers left out: the other build's may be there already), a marker named by the build (its GCM_BUILD build
# arg: each RUN step has its own pid namespace, so $$ alone can repeat), then a wait for another build's marker.
_MARK = ('read up _ < /proc/uptime; echo "start=$up"; '
         'echo "go_files=$(find "$GOCACHE" -type f ! -name \'gcm-at-once-*\' | wc -l)"; '
         'me="$GOCACHE/gcm-at-once-${GCM_BUILD:-x}-$$-$up"; : > "$me"; ')
_WAIT = ('saw=0; i=0; while [ "$i" -lt {n} ]; do for f in "$GOCACHE"/gcm-at-once-*; do '
         '[ -e "$f" ] && [ "$f" != "$me" ] && saw=1; done; [ "$saw" = 1 ] && break; sleep 0.1; i=$((i+1)); done; '
         'echo "saw=$saw"')
BARRIER = _MARK + _WAIT.format(n=int(AT_ONCE_WAIT * 10))
END = 'read up _ < /proc/uptime; echo "end=$up"'


@dataclass(frozen=True)
class Build:
    """One engine build of the cell's Dockerfile. Builds with the same `group` start at the same time."""

    name: str
    group: int
    sharing: str = "shared"  # BuildKit's default
    user: int | None = None  # USER for the RUN step (None: root)
    mount_uid: int | None = None  # uid=/gid= on the cache mounts
    arch: Arch | None = None  # None: the cell's
    edit: str | None = None  # a line appended to EDIT_FILE before this build (edits accumulate)
    no_cache: bool = False
    prune_before: bool = False
    cache: str = "main"  # which of the cell's cache ids the mounts use


def builds(cell: Cell) -> list[Build]:
    v = cell.variant
    if v == "rebuild":
        return [Build("first", 0), Build("rebuild", 1, edit="// one-line change")]
    if v in ("shared", "locked", "private"):
        return [Build("a", 0, sharing=v, edit="// build a"), Build("b", 0, sharing=v, edit="// build b")]
    if v == "nonroot":
        # Separate ids: buildah applies uid=/gid= only when it creates the cache directory, so an id first
        # made without them stays root's; here each build shows what its own options do from scratch.
        return [Build("no-uid", 0, user=BUILD_USER),
                Build("uid", 1, user=BUILD_USER, mount_uid=BUILD_USER, edit="// with uid=", cache="uid")]
    if v == "cross-arch":
        other = Arch.ARM64 if cell.arch is Arch.AMD64 else Arch.AMD64
        return [Build(cell.arch.value, 0), Build(other.value, 1, arch=other)]
    if v == "prune":
        return [Build("before", 0), Build("after-prune", 1, prune_before=True, edit="// after prune")]
    if v == "no-cache":
        return [Build("first", 0), Build("no-cache", 1, no_cache=True)]
    raise ValueError(f"buildkit has no variant {v!r}; known: {', '.join(VARIANTS)}")


def job(ctx: JobContext, at_once: bool = False) -> list[dict[str, Any]]:
    """The probe's job inside the RUN step; at_once: between the markers of a build started with another."""
    base = {"env": BUILD_ENV, "dir": SRC, "timeout_sec": ctx.build_timeout}
    steps = [
        {"name": "cache-before", "kind": "du", "path": GOCACHE},
        {"name": "modcache-before", "kind": "du", "path": GOMODCACHE},
        exec_step("mod-download", ["go", "mod", "download"], **base),
        exec_step("build", build_argv(ctx.workload, "/tmp/gcm-app"), count_compiled=True, **base),
        exec_step("deps", ["go", "list", "-f", DEPS_FORMAT, "./..."], **base),
        {"name": "cache-after", "kind": "du", "path": GOCACHE},
    ]
    if at_once:
        steps.insert(2, exec_step("at-once-start", ["sh", "-c", BARRIER], **base))
        steps.append(exec_step("at-once-end", ["sh", "-c", END], **base))
    return steps


def _at_once(probe: dict[str, Any]) -> dict[str, Any]:
    """What the at-once markers printed: the RUN step's start and end uptime, and whether it saw another build."""
    out: dict[str, Any] = {}
    for name in ("at-once-start", "at-once-end"):
        for line in str((step(probe, name) or {}).get("stdout") or "").splitlines():
            key, _, value = line.partition("=")
            if key in ("start", "end"):
                with contextlib.suppress(ValueError):
                    out[f"run_{key}"] = float(value)
            elif key == "saw":
                out["saw_other"] = value.strip() == "1"
            elif key == "go_files" and value.strip().isdigit():
                out["go_files_before"] = int(value)
    return out


def at_once_finding(first: dict[str, Any], second: dict[str, Any]) -> str | None:
    """What two builds started together found: one live mount, separate mounts, or one after the other;
    None when a marker is missing."""
    need = ("run_start", "run_end", "saw_other")
    if not all(k in o for o in (first, second) for k in need):
        return None
    overlapped = first["run_start"] < second["run_end"] and second["run_start"] < first["run_end"]
    saw = (first["saw_other"], second["saw_other"])
    if overlapped:
        return {(True, True): "one mount, used by both at once", (False, False): "a mount each"}.get(
            saw, "ran at once, only one saw the other's marker")
    later = second if second["run_start"] >= first["run_end"] else first
    return "one after the other, the later on the earlier's mount" if later["saw_other"] else \
        "one after the other, each on a mount of its own"


def _files(probe: dict[str, Any], name: str) -> int | None:
    s = step(probe, name)
    usage = (s or {}).get("usage") or {}
    if not usage:
        return None
    return int(usage.get("files", 0)) if usage.get("exists") else 0


def build_obs(b: Build, probe: dict[str, Any] | None, outcome: dict[str, Any]) -> dict[str, Any]:
    """What one build showed: the engine's side (outcome) and the probe's, if it ran."""
    o: dict[str, Any] = {"exit_code": outcome.get("exit_code"), "build_sec": outcome.get("build_sec"),
                         "sharing": b.sharing, "arch": (b.arch.value if b.arch else None)}
    if b.user is not None:
        o["user"], o["mount_uid"] = b.user, b.mount_uid
    for k in ("step_sec", "cache_dir", "error"):
        if outcome.get(k) is not None:
            o[k] = outcome[k]
    if probe is None:
        return o
    o["machine"] = probe.get("machine")
    o["cache_files_before"] = _files(probe, "cache-before")
    o["mount_empty"] = o["cache_files_before"] == 0
    o["modcache_files_before"] = _files(probe, "modcache-before")
    o["cache_files_after"] = _files(probe, "cache-after")
    o.update(_at_once(probe))
    if "go_files_before" in o:  # a build at once: the other's marker is no cache entry
        o["cache_files_before"] = o["go_files_before"]
        o["mount_empty"] = o["go_files_before"] == 0
    s = step(probe, "build")
    if s is not None:
        o["go_build_ok"] = bool(s.get("ok"))
        o["go_sec"] = round(float(s.get("wall_sec", 0.0)), 3)
        o["compiled"] = len(s.get("compiled") or [])
        if len(s.get("compiled") or []) <= 30:  # a cold build lists the whole standard library: count only
            o["packages"] = list(s.get("compiled") or [])
        if not s.get("ok"):
            o["go_stderr"] = first_line(s.get("stderr")) or s.get("error", "")
    return o


def edit_package(workload: str) -> str:
    """The import path of EDIT_FILE's package in that workload."""
    return f"gcm.example/{workload}/internal/format"


def dependents(probe: dict[str, Any] | None, workload: str = "small") -> list[str]:
    s = step(probe or {}, "deps")
    lines = (s or {}).get("stdout") or ""
    return sorted(w[0] for w in (ln.split() for ln in lines.splitlines()) if w and edit_package(workload) in w[1:])


BUILDERS = {"docker": "docker (BuildKit)", "podman": "podman (buildah)"}


def _build_cell(name: str, o: dict[str, Any]) -> str:
    """One build of the buildkit scenario: 'name: go s (pkgs) · mount empty|N files', or why it failed."""
    if not o.get("go_build_ok"):
        why = str(o.get("go_stderr") or o.get("error") or "no probe result in the build output")
        return f"{name}: ✗ {why if len(why) <= 100 else '…' + why[-100:]}"  # a builder's own words come last
    mount = "empty" if o.get("mount_empty") else f"{o.get('cache_files_before')} files"
    return f"{name}: {o.get('go_sec', 0):.1f}s ({o.get('compiled')}) · mount {mount}"


def _buildkit_rows(cells: Sequence[CellResult]) -> Rows:
    headers = ["distro", "arch", "builder", "toolchain", "variant", "build 1", "build 2", "finding", "cache on host",
               "status"]
    rows = []
    for c in cells:
        o = c.observations
        where = lead(c)
        where[2] = BUILDERS.get(where[2], where[2])
        built = [_build_cell(n, b) for n, b in (o.get("builds") or {}).items()]
        rows.append(where + [o.get("variant", c.cell.get("variant")), *(built + ["", ""])[:2], c.reason,
                             o.get("cache_dir", ""), c.status.value])
    return headers, rows


class Buildkit(Scenario):
    id = "buildkit"
    title = ("Image builds with `RUN --mount=type=cache` for GOCACHE and GOMODCACHE, per builder: each build as "
             "'go build s (packages compiled) · files in the cache mount when the build started'")
    # Whether a cache mount starts empty, is shared, kept or lost, and what a one-line edit recompiles, does not
    # depend on the runtime being compiled: the three-package `lib` (a leaf package to edit, a dependent, a
    # module) decides it as the program does (runner.parity checks that it does).
    workload = "lib"

    @staticmethod
    def answers() -> dict[str, AnswerFn]:
        return {"Q25": answer_cache_mounts}

    @staticmethod
    def outcome(c: CellResult) -> Outcome:
        """A go build that failed in any of the variant's image builds breaks (nonroot without uid= too)."""
        builds = c.observations.get("builds") or {}
        failed = [n for n, b in builds.items() if b.get("go_build_ok") is False]
        if failed:
            first = builds[failed[0]]
            return Outcome(BREAKS, f"{failed[0]}: {first.get('go_stderr') or first.get('error') or 'go build failed'}")
        if c.status is not Status.PASS:
            return Outcome(DEGRADED if builds else BREAKS, c.reason)
        return Outcome(WORKS, "")

    @staticmethod
    def parity(obs: Mapping[str, Any]) -> dict[str, Any]:
        """What decides a buildkit variant, whatever the workload (runner.parity compares it)."""
        at_once = "at_once" in obs  # which of two builds at once started on an empty mount is a race: left out
        builds = {n: (o.get("go_build_ok"), None if at_once else o.get("mount_empty"), bool(o.get("compiled")))
                  for n, o in sorted((obs.get("builds") or {}).items())}
        keys = ("at_once", "second_mount_empty", "survived_prune", "survived_no_cache", "without_uid")
        return {"builds": builds, **{k: obs.get(k) for k in keys if k in obs}}

    def host_driven(self, cell: Cell) -> bool:
        return True  # runner/buildrun.py runs `builds`, not container phases

    def phases(self, cell: Cell, ctx: JobContext) -> list[Phase]:
        return []

    def builds(self, cell: Cell) -> list[Build]:
        return builds(cell)

    def job(self, cell: Cell, ctx: JobContext) -> list[dict[str, Any]]:
        return job(ctx, at_once=cell.variant in AT_ONCE)

    def evaluate(self, cell: Cell, probes: Probes, ctx: JobContext) -> Verdict:
        """probes: build name -> {"outcome": engine side, "probe": probe result or None}."""
        plan = builds(cell)
        obs: dict[str, Any] = {"variant": cell.variant, "builder": cell.engine.value, "builds": {}}
        for b in plan:
            got = probes.get(b.name) or {}
            obs["builds"][b.name] = build_obs(b, got.get("probe"), dict(got.get("outcome") or {}))
        cache_dirs = {o.get("cache_dir") for o in obs["builds"].values() if o.get("cache_dir")}
        if cache_dirs:
            obs["cache_dir"] = sorted(cache_dirs)[0]
        bo = obs["builds"]
        v = cell.variant

        def failed(name: str) -> str | None:
            o = bo[name]
            if o.get("go_build_ok"):
                return None
            if "go_build_ok" in o:
                return f"{name}: go build failed: {o.get('go_stderr') or '(no stderr)'}"
            return f"{name}: the build did not run the probe: {o.get('error') or 'no result in the build output'}"

        if v == "nonroot":
            # Without uid= the mount belongs to root: Go as uid 1000 cannot write it. That is the finding,
            # not a failure; the cell passes when uid=/gid= make the same build work.
            obs["without_uid"] = "ok" if bo["no-uid"].get("go_build_ok") else (
                bo["no-uid"].get("go_stderr") or bo["no-uid"].get("error") or "failed")
            bad = failed("uid")
            if bad:
                return Verdict(Status.FAIL, bad, obs)
            return Verdict(Status.PASS, f"uid=/gid= on the mount: ok ({bo['uid']['compiled']} pkgs); "
                                        f"without: {obs['without_uid']}", obs)
        for b in plan:
            bad = failed(b.name)
            if bad:
                return Verdict(Status.FAIL, bad, obs)
        first, second = bo[plan[0].name], bo[plan[1].name]
        if first.get("machine") is None:
            return Verdict(Status.ERROR, "the first build printed no probe result", obs)
        if v == "rebuild":
            edited = edit_package(ctx.workload)
            deps = dependents(probes.get("rebuild", {}).get("probe"), ctx.workload)
            obs["dependents_of_edited"] = deps
            changed = set(second.get("packages", []))
            problems = []
            if not first.get("mount_empty"):
                problems.append("the first build's cache mount was not empty "
                                f"({first.get('cache_files_before')} files)")
            if edited not in changed:
                problems.append(f"the rebuild did not recompile {edited} (compiled: {sorted(changed)})")
            outside = changed - {edited, *deps}
            if outside:
                problems.append(f"the rebuild recompiled packages that do not depend on {edited}: "
                                f"{sorted(outside)[:8]}")
            if problems:
                return Verdict(Status.FAIL, "; ".join(problems), obs)
            return Verdict(Status.PASS, f"first {first['go_sec']:.1f}s/{first['compiled']} pkgs (empty mount), "
                                        f"rebuild {second['go_sec']:.1f}s/{second['compiled']} pkgs: "
                                        f"{', '.join(sorted(changed))}", obs)
        if v in AT_ONCE:
            a, b_ = first, second
            empties = sum(1 for o in (a, b_) if o.get("mount_empty"))
            obs["mounts_started_empty"] = empties  # which one started empty is a race: reported, not judged
            found = at_once_finding(a, b_)
            if found is None:
                return Verdict(Status.ERROR, "a build printed no at-once marker (start, saw, end): the RUN step's "
                                             "shell did not run", obs)
            obs["at_once"] = found
            if v != "locked" and found.startswith("one after the other"):
                # Started together, yet the RUN steps did not overlap: what sharing= does at once is not shown.
                return Verdict(Status.ERROR, f"sharing={v}: the two RUN steps did not overlap (more than "
                                             f"{AT_ONCE_WAIT:.0f} s apart), so this run cannot tell: {found}", obs)
            return Verdict(Status.PASS, f"sharing={v}: {found}; both builds ok, compiled {a['compiled']} + "
                                        f"{b_['compiled']} pkgs; {empties} of 2 mounts started empty", obs)
        if v == "cross-arch":
            obs["second_mount_empty"] = second.get("mount_empty")
            return Verdict(Status.PASS, f"{plan[1].name} build on the {plan[0].name} cache id: mount "
                                        f"{'empty' if second.get('mount_empty') else 'shared'} "
                                        f"({second.get('cache_files_before')} files), "
                                        f"compiled {second['compiled']} pkgs",
                           obs)
        if v == "prune":
            obs["survived_prune"] = not second.get("mount_empty")
            return Verdict(Status.PASS, f"after prune the mount {'kept' if obs['survived_prune'] else 'lost'} "
                                        f"the cache ({second.get('cache_files_before')} files); "
                                        f"compiled {second['compiled']} pkgs", obs)
        if v == "no-cache":
            obs["survived_no_cache"] = not second.get("mount_empty")
            return Verdict(Status.PASS, f"--no-cache: the mount {'kept' if obs['survived_no_cache'] else 'lost'} "
                                        f"the cache; compiled {second['compiled']} pkgs", obs)
        return Verdict(Status.ERROR, describe_failure(None, str(v)), obs)

    def detail_rows(self, cells: Sequence[CellResult]) -> Rows:
        return _buildkit_rows(cells)


def _mount_result(c: CellResult) -> str | None:
    """What decides a variant, without its timings (they differ on every row)."""
    o, v = c.observations, c.cell.get("variant")
    second = list((o.get("builds") or {}).values())[1:2]
    if v == "rebuild" and second:
        return f"rebuild: a one-line change compiled {second[0].get('compiled')} packages"
    if v in AT_ONCE and "at_once" in o:
        return f"sharing={v}: {o['at_once']}"
    if v == "cross-arch" and "second_mount_empty" in o:
        return f"cross-arch: the other arch's mount was {'empty' if o['second_mount_empty'] else 'shared'}"
    if v == "prune" and "survived_prune" in o:
        return f"prune: the cache {'survived' if o['survived_prune'] else 'was removed'}"
    if v == "no-cache" and "survived_no_cache" in o:
        return f"--no-cache: the cache mount {'was kept' if o['survived_no_cache'] else 'was not used'}"
    if v == "nonroot" and "without_uid" in o:
        return f"nonroot: without uid= {o['without_uid']}; with uid=: ok"
    return None


def answer_cache_mounts(cells: Sequence[CellResult]) -> Answer:
    """Q25: RUN --mount=type=cache per variant, per builder (docker: BuildKit, podman: buildah)."""
    return per_case(pick(cells, "buildkit"), _mount_result,
                    limits="whether the target must equal `go env GOCACHE` is not measured (the mounts are at "
                           "GOCACHE)")
