"""`location`: where GOCACHE ends up (or why the build stops) in the environments a systemd unit, a
CI job or `docker run -u 1234` produce.

The documented outcome of each case comes from the toolchain's own source (cmd/go/internal/cache
default.go: DefaultDir/initDefaultCache, and os.UserCacheDir), read on the host from the very tree
the cell mounts, so the expectation follows the Go version under test:

  GOCACHE absolute           -> used as is
  GOCACHE=off                -> "build cache is disabled by GOCACHE=off, but required as of Go 1.12"
  GOCACHE relative           -> "build cache is required, but could not be located: GOCACHE is not an absolute path"
  no HOME, no XDG_CACHE_HOME -> "... could not be located: GOCACHE is not defined and neither $XDG_CACHE_HOME nor
                                $HOME are defined"
  XDG_CACHE_HOME absolute    -> $XDG_CACHE_HOME/go-build
  XDG_CACHE_HOME relative    -> rejected ("path in $XDG_CACHE_HOME is relative") where os.UserCacheDir checks it,
                                else used relative to the working directory
  uid without a home, HOME=/ -> /.cache/go-build, which that uid cannot create: "failed to initialize build cache"

GOMODCACHE is set explicitly in every case so only the build cache decides the outcome.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.answer import BREAKS, WORKS, Answer, AnswerFn, Outcome, by_value, obs_of, pick
from runner.model import Cell, Status
from runner.results import CellResult
from runner.scenarios import (
    OFFLINE_GO,
    SCRATCH,
    WORKLOADS,
    JobContext,
    Phase,
    Probes,
    Verdict,
    build_argv,
    exec_step,
    go_words,
    step,
)
from runner.scenarios.base import Rows, Scenario
from runner.scenarios.rows import lead

SRC = f"{SCRATCH}/src"
MODCACHE = f"{SCRATCH}/modcache"
OTHER_UID = 1234


@dataclass(frozen=True)
class Case:
    env: dict[str, str]
    unset: tuple[str, ...] = ()
    uid: int | None = None
    what: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


CASES: dict[str, Case] = {
    "home-unset": Case({}, ("HOME", "XDG_CACHE_HOME", "GOCACHE"), what="HOME and XDG_CACHE_HOME unset (systemd unit)"),
    "home-unset-xdg": Case({"XDG_CACHE_HOME": f"{SCRATCH}/xdg"}, ("HOME", "GOCACHE"),
                           what="HOME unset, XDG_CACHE_HOME=/tmp/gcm/xdg"),
    "xdg-relative": Case({"XDG_CACHE_HOME": "relcache"}, ("GOCACHE",), what="XDG_CACHE_HOME=relcache (relative)"),
    "gocache-relative": Case({"GOCACHE": "relgocache"}, what="GOCACHE=relgocache (relative)"),
    "gocache-off": Case({"GOCACHE": "off"}, what="GOCACHE=off"),
    "uid-home-root": Case({"HOME": "/"}, ("GOCACHE", "XDG_CACHE_HOME"), uid=OTHER_UID,
                          what="docker run -u 1234: uid without passwd entry, HOME=/"),
    "gocache-absolute": Case({"GOCACHE": f"{SCRATCH}/abs-cache", "HOME": "/"}, ("XDG_CACHE_HOME",), uid=OTHER_UID,
                             what="uid 1234, HOME=/, GOCACHE=/tmp/gcm/abs-cache (explicit absolute)"),
}

NOT_LOCATED = "build cache is required, but could not be located: "


def expected(case: str, goroot_src: Path | None) -> dict[str, Any]:
    """What Go's source says this case does: {"ok": bool, "stderr": substring, "gocache": value}."""
    if case == "home-unset":
        return {"ok": False, "stderr": NOT_LOCATED + "GOCACHE is not defined and neither $XDG_CACHE_HOME nor $HOME "
                "are defined"}
    if case == "home-unset-xdg":
        return {"ok": True, "gocache": f"{SCRATCH}/xdg/go-build"}
    if case == "xdg-relative":
        os_src = (goroot_src / "os" / "file.go").read_text() if goroot_src else ""
        if "path in $XDG_CACHE_HOME is relative" in os_src:
            return {"ok": False, "stderr": NOT_LOCATED + "GOCACHE is not defined and path in $XDG_CACHE_HOME is "
                    "relative"}
        return {"ok": True, "gocache": "relcache/go-build"}
    if case == "gocache-relative":
        return {"ok": False, "stderr": NOT_LOCATED + "GOCACHE is not an absolute path"}
    if case == "gocache-off":
        return {"ok": False, "stderr": "build cache is disabled by GOCACHE=off, but required as of Go 1.12"}
    if case == "uid-home-root":
        return {"ok": False, "stderr": "failed to initialize build cache at /.cache/go-build: mkdir /.cache: "
                "permission denied", "gocache": "/.cache/go-build"}
    if case == "gocache-absolute":
        return {"ok": True, "gocache": f"{SCRATCH}/abs-cache"}
    raise ValueError(f"location has no case {case!r}")


def _location_rows(cells: Sequence[CellResult]) -> Rows:
    headers = ["distro", "arch", "engine", "toolchain", "case", "exit", "`go env GOCACHE`", "first line of stderr",
               "status"]
    rows = [lead(c) + [c.observations.get("case", c.cell.get("variant")), c.observations.get("exit_code", ""),
                         c.observations.get("go_env_gocache", ""), c.observations.get("stderr_first_line", ""),
                         c.status.value] for c in cells]
    return headers, rows


class Location(Scenario):
    id = "location"
    title = "Where GOCACHE goes, or why the build stops, per environment: the exit code and Go's own words"
    # Where GOCACHE is, or Go's refusal, is decided when the cache is opened, before anything compiles: the
    # three-package `lib` meets the same code path as a program (runner.parity checks that it does).
    workload = "lib"
    # Its variants differ only in env and uid: one container runs a row's variants one after another, each
    # starting from the image's state (runner.share; `nox -s parity -- --alone` checks they decide as alone).
    shares_container = True

    def shared_reset(self, cell: Cell, ctx: JobContext) -> tuple[str, ...]:
        # The scratch tree (source, module cache, the XDG and absolute caches, relative ones under the source),
        # the default caches of root and of HOME=/, and Go's own dirs under root's HOME (telemetry, GOPATH).
        return SCRATCH, "/root/.cache", "/.cache", "/root/.config", "/root/go"

    def phases(self, cell: Cell, ctx: JobContext) -> list[Phase]:
        assert cell.variant is not None
        case = CASES[cell.variant]
        env = {**OFFLINE_GO, "GOMODCACHE": MODCACHE, **case.env}
        who: dict[str, Any] = {"uid": case.uid, "gid": case.uid} if case.uid is not None else {}
        # The source and module cache are prepared as root, readable by everyone.
        steps = [
            {"name": "copy-src", "kind": "copytree", "path": f"{WORKLOADS}/{ctx.workload}", "dest": SRC,
             "stop_on_error": True},
            exec_step("mod-download", ["go", "mod", "download"], dir=SRC, timeout_sec=ctx.build_timeout,
                      env={**OFFLINE_GO, "GOMODCACHE": MODCACHE}, stop_on_error=True),
            exec_step("chmod", ["chmod", "-R", "a+rwX", SCRATCH], stop_on_error=True),
            exec_step("go-env", ["go", "env", "GOCACHE"], dir=SRC, env=env, unset=list(case.unset),
                      timeout_sec=ctx.build_timeout, **who),
            exec_step("build", build_argv(ctx.workload, f"{SCRATCH}/bin-{cell.variant}"), dir=SRC, env=env,
                      unset=list(case.unset), count_compiled=True, timeout_sec=ctx.build_timeout, **who),
        ]
        return [Phase("main", steps)]

    @staticmethod
    def answers() -> dict[str, AnswerFn]:
        return {"Q02": answer_no_home, "Q03": answer_uid_without_home}

    @staticmethod
    def outcome(c: CellResult) -> Outcome:
        """A build Go refused breaks, whatever the documentation says about the refusal."""
        if c.observations.get("exit_code") == 0:
            return Outcome(WORKS, f"GOCACHE={c.observations.get('go_env_gocache', '')}")
        return Outcome(BREAKS, f"exit {c.observations.get('exit_code')}: {c.observations.get('stderr_first_line', '')}")

    @staticmethod
    def parity(obs: Mapping[str, Any]) -> dict[str, Any]:
        """What decides a location case, whatever the workload (runner.parity compares it)."""
        return {"exit_code": obs.get("exit_code"), "go_words": obs.get("stderr_first_line"),
                "go_env_gocache": obs.get("go_env_gocache"), "compiled_any": bool(obs.get("compiled"))}

    def evaluate(self, cell: Cell, probes: Probes, ctx: JobContext) -> Verdict:
        assert cell.variant is not None
        probe = probes["main"]
        want = expected(cell.variant, ctx.goroot_src)
        env_step, build = step(probe, "go-env"), step(probe, "build")
        if build is None or build.get("exit_code") is None:
            return Verdict(Status.ERROR, f"the build step did not run: {(build or {}).get('error', 'missing')}")
        obs: dict[str, Any] = {
            "case": CASES[cell.variant].what,
            "exit_code": build["exit_code"],
            "stderr_first_line": go_words(build) if not build.get("ok") else "",
            "go_env_gocache": (env_step or {}).get("stdout", "").strip(),
            "go_env_exit_code": (env_step or {}).get("exit_code"),
            "compiled": len(build.get("compiled") or []) if build.get("ok") else 0,
        }
        problems = []
        if want["ok"] != bool(build.get("ok")):
            problems.append(f"build {'succeeded' if build.get('ok') else 'failed'} (exit {build['exit_code']}), "
                            f"Go's source says it should {'succeed' if want['ok'] else 'fail'}")
        if "stderr" in want and want["stderr"] not in (build.get("stderr") or ""):
            problems.append(f"stderr is {obs['stderr_first_line']!r}, Go's source prints {want['stderr']!r}")
        if "gocache" in want and obs["go_env_gocache"] != want["gocache"]:
            problems.append(f"go env GOCACHE is {obs['go_env_gocache']!r}, expected {want['gocache']!r}")
        if problems:
            return Verdict(Status.FAIL, "; ".join(problems), obs)
        outcome = f"exit 0, GOCACHE={obs['go_env_gocache']}" if build.get("ok") else \
            f"exit {build['exit_code']}: {obs['stderr_first_line']}"
        return Verdict(Status.PASS, outcome, obs)

    def detail_rows(self, cells: Sequence[CellResult]) -> Rows:
        return _location_rows(cells)


def _result(c: CellResult) -> str | None:
    """What the build did in one case: where the cache went, or Go's refusal."""
    code = obs_of(c, "exit_code")
    if code is None:
        return None
    if code == 0:
        return f"builds, GOCACHE=`{obs_of(c, 'go_env_gocache')}`"
    return f"fails (exit {code}): `{obs_of(c, 'stderr_first_line')}`"


def answer_no_home(cells: Sequence[CellResult]) -> Answer:
    """Q02: HOME and XDG_CACHE_HOME unset (as in a systemd unit): a fallback directory, or a refusal."""
    basis = pick(cells, "location", "home-unset")
    return by_value(basis, lambda c: None if (r := _result(c)) is None else
                    ("falls back: " if r.startswith("builds") else "no fallback: ") + r,
                    limits="a bare container's environment; a systemd unit itself is Q06") or Answer(
        "value", "", tuple(basis))


def answer_uid_without_home(cells: Sequence[CellResult]) -> Answer:
    """Q03: a uid without a passwd entry, HOME=/ (docker run -u 1234): what the first build does."""
    basis = pick(cells, "location", "uid-home-root")
    return by_value(basis, _result, limits="HOME=/ only; a HOME that does not exist is not measured") or Answer(
        "value", "", tuple(basis))
