"""Scenarios: each turns a cell into probe steps, and the probe's observations into a verdict.

A scenario never writes an expected outcome into a result: `evaluate` compares what the probe saw
with what Go's documentation says should happen, and the observations go into the result as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from runner.model import Cell, Status

# Fixed paths inside every cell container.
GOROOT = "/usr/local/go"
OPT = "/opt/gcm"
PROBE = f"{OPT}/probe"
JOB_DIR = f"{OPT}/job"
OUT_DIR = f"{OPT}/out"
WORKLOADS = f"{OPT}/workloads"
PROXY = f"{OPT}/proxy"
SCRATCH = "/tmp/gcm"
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CONTAINER_ENV = {"PATH": f"{GOROOT}/bin:{BASE_PATH}", "HOME": "/root"}

# What every build step adds: modules come only from the offline proxy, verified against go.sum.
OFFLINE_GO = {"GOPROXY": f"file://{PROXY}", "GOSUMDB": "off", "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly"}


@dataclass(frozen=True)
class JobContext:
    build_timeout: float  # seconds for one build step, already scaled for emulation


@dataclass
class Verdict:
    status: Status
    reason: str
    observations: dict[str, Any] = field(default_factory=dict)


class ScenarioImpl(Protocol):
    id: str

    def steps(self, cell: Cell, ctx: JobContext) -> list[dict[str, Any]]: ...

    def evaluate(self, cell: Cell, probe: Mapping[str, Any]) -> Verdict: ...


def exec_step(name: str, argv: list[str], **kw: Any) -> dict[str, Any]:
    return {"name": name, "kind": "exec", "argv": argv, **kw}


def step(probe: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    for s in probe.get("steps", []):
        if s.get("name") == name:
            return dict(s)
    return None


def first_line(text: str | None) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def describe_failure(s: Mapping[str, Any] | None, name: str) -> str:
    """One line: what a failed (or missing) step did."""
    if s is None:
        return f"step {name!r} did not run"
    if s.get("timed_out"):
        return f"{name}: timed out after {s.get('wall_sec', 0):.0f}s"
    if s.get("error"):
        return f"{name}: {s['error']}"
    return f"{name}: exit {s.get('exit_code')}: {first_line(s.get('stderr')) or '(no stderr)'}"


def registry() -> dict[str, ScenarioImpl]:
    from runner.scenarios.coldwarm import ColdWarm
    from runner.scenarios.env import Env

    impls: list[ScenarioImpl] = [Env(), ColdWarm()]
    return {s.id: s for s in impls}
