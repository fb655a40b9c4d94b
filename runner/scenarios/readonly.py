"""`readonly`: a populated cache mounted read-only (a cache shipped to CI runners, a shared NFS
export). Go uses hits without writing; what it does about trimming depends on trim.txt, which holds
the Unix time of the last trim (cmd/go/internal/cache: a trim runs when that is over a day old):

    fresh    trim.txt as the populating build left it
    stale    trim.txt says the last trim was 2 days ago: Go wants to trim, on a read-only cache
    missing  no trim.txt: Go wants to trim and record it

Passes when the read-only build uses the hits (compiles 0 packages); its exit status and any
trim error are recorded exactly — a finding either way.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from runner.answer import BREAKS, DEGRADED, WORKS, Answer, AnswerFn, Outcome, by_value, judged, obs_of, pick
from runner.model import Cell, Status
from runner.results import CellResult
from runner.scenarios import (
    WORKLOADS,
    JobContext,
    MountSpec,
    Phase,
    Probes,
    Verdict,
    build_obs,
    catalogue,
    describe_failure,
    go_words,
    step,
)
from runner.scenarios.base import Rows, Scenario
from runner.scenarios.rows import lead
from runner.scenarios.storage import CACHE_ROOT, GOCACHE, SRC, build_step, prepare_steps

VARIANTS = catalogue.variants("readonly")  # the registry line lists them
TRIM_FILE = "cache/build/trim.txt"  # in the cell's data dir: the bind mount's source


def _host_actions(variant: str) -> tuple[dict[str, str], ...]:
    if variant == "stale":
        return ({"op": "write", "path": TRIM_FILE, "data": f"{int(time.time()) - 2 * 86400}\n"},)
    if variant == "missing":
        return ({"op": "remove", "path": TRIM_FILE},)
    return ()


def _readonly_rows(cells: Sequence[CellResult]) -> Rows:
    headers = ["distro", "arch", "engine", "toolchain", "trim.txt", "build exit", "compiled", "first line of stderr",
               "status"]
    rows = []
    for c in cells:
        ro = c.observations.get("readonly") or {}
        rows.append(lead(c) + [c.cell.get("variant"), ro.get("exit_code", ""), ro.get("compiled", ""),
                                 ro.get("stderr_first_line", ""), c.status.value])
    return headers, rows


class ReadOnly(Scenario):
    id = "readonly"
    title = "A populated cache mounted read-only, by the state of trim.txt"
    # Hits used or not, and what trimming does to a read-only cache, do not depend on how much is compiled:
    # the three-package `lib` decides them like a program does (runner.parity checks that it does).
    workload = "lib"

    def phases(self, cell: Cell, ctx: JobContext) -> list[Phase]:
        assert cell.variant is not None
        rw = MountSpec("bind", CACHE_ROOT, name="cache")
        ro = MountSpec("bind", CACHE_ROOT, name="cache", read_only=True)
        return [
            Phase("populate", [*prepare_steps(ctx), build_step("cold", ctx), {"name": "trim.txt", "kind": "read",
                                                                      "path": f"{GOCACHE}/trim.txt"}], mounts=(rw,)),
            Phase("readonly", [{"name": "copy-src", "kind": "copytree", "path": f"{WORKLOADS}/{ctx.workload}",
                                "dest": SRC},
                               {"name": "trim.txt", "kind": "read", "path": f"{GOCACHE}/trim.txt"},
                               build_step("build", ctx)],
                  mounts=(ro,), host=_host_actions(cell.variant)),
        ]

    @staticmethod
    def answers() -> dict[str, AnswerFn]:
        return {"Q04": answer_not_writable, "Q18": answer_readonly}

    @staticmethod
    def outcome(c: CellResult) -> Outcome:
        """A non-zero exit breaks the build even when every package came from the cache."""
        ro = c.observations.get("readonly") or {}
        if ro.get("exit_code") not in (0, None):
            said = ro.get("stderr_first_line", "")
            return Outcome(BREAKS, f"exit {ro.get('exit_code')} after using the hits: {said}")
        if ro.get("compiled"):
            return Outcome(DEGRADED, f"compiled {ro.get('compiled')} packages instead of using the cache")
        if c.status is not Status.PASS:
            return Outcome(BREAKS, c.reason)
        return Outcome(WORKS, "hits used, exit 0")

    @staticmethod
    def parity(obs: Mapping[str, Any]) -> dict[str, Any]:
        """What decides a read-only case, whatever the workload (runner.parity compares it)."""
        ro = obs.get("readonly") or {}
        seen = str(obs.get("trim_txt_seen", ""))
        return {"exit_code": ro.get("exit_code"), "go_words": ro.get("stderr_first_line"),
                "compiled_any": bool(ro.get("compiled")),
                "trim_txt": "time" if seen.isdigit() else seen}

    def evaluate(self, cell: Cell, probes: Probes, ctx: JobContext) -> Verdict:
        cold = step(probes["populate"], "cold")
        obs: dict[str, Any] = {"trim": cell.variant, "cold": build_obs(cold, GOCACHE)}
        if not (cold and cold.get("ok")):
            return Verdict(Status.FAIL, describe_failure(cold, "populating build"), obs)
        trim = step(probes["readonly"], "trim.txt") or {}
        obs["trim_txt_seen"] = (trim.get("content") or "").strip() if trim.get("ok") else "(missing)"
        build = step(probes["readonly"], "build")
        if build is None or build.get("exit_code") is None:
            return Verdict(Status.ERROR, describe_failure(build, "read-only build"), obs)
        compiled = build.get("compiled") or []
        obs["readonly"] = {"exit_code": build["exit_code"], "sec": round(float(build.get("wall_sec", 0)), 3),
                           "compiled": len(compiled), "stderr": (build.get("stderr") or "").strip()[:2000],
                           "stderr_first_line": go_words(build)}
        outcome = f"exit {build['exit_code']}" + (f": {obs['readonly']['stderr_first_line']}"
                                                  if obs["readonly"]["stderr_first_line"] else ", no stderr")
        if compiled:
            return Verdict(Status.FAIL, f"the read-only build compiled {len(compiled)} packages instead of using "
                                        f"the cache ({outcome})", obs)
        return Verdict(Status.PASS, f"hits used (0 compiled); {outcome}", obs)

    def detail_rows(self, cells: Sequence[CellResult]) -> Rows:
        return _readonly_rows(cells)


def _readonly_result(c: CellResult) -> str | None:
    code, compiled = obs_of(c, "readonly", "exit_code"), obs_of(c, "readonly", "compiled")
    if code is None:
        return None
    said = obs_of(c, "readonly", "stderr_first_line")
    return (f"trim.txt {c.cell.get('variant')}: {'hits used' if not compiled else f'{compiled} compiled'}, exit {code}"
            + (f" (`{said}`)" if said else ""))


def answer_readonly(cells: Sequence[CellResult]) -> Answer:
    """Q18: a populated cache mounted read-only, per state of trim.txt: hits used? exit status?"""
    basis = pick(cells, "readonly")
    a = by_value(basis, _readonly_result)
    if a is None:
        return Answer("value", "", tuple(basis))
    # Cases differ by construction; the answer depends only when what happened (hits, exit) differs.
    happened = {(bool(obs_of(c, "readonly", "compiled")), obs_of(c, "readonly", "exit_code")) for c in judged(basis)}
    verdict = "depends" if len(happened) > 1 else "value"
    return Answer(verdict, ("depends: " if verdict == "depends" else "") + a.text.removeprefix("depends: "),
                  tuple(basis))


def answer_not_writable(cells: Sequence[CellResult]) -> Answer:
    """Q04: GOCACHE that cannot be written: a read-only mount (readonly cells) and a location the uid cannot create
    (location:uid-home-root): does Go keep building or fail?"""
    basis = pick(cells, "readonly") + pick(cells, "location", "uid-home-root")

    def key(c: CellResult) -> str | None:
        if c.cell.get("scenario") == "location":
            code = obs_of(c, "exit_code")
            return None if code is None else ("fails" if code else "keeps building")
        code = obs_of(c, "readonly", "exit_code")
        return None if code is None else ("fails" if code else "keeps building")

    a = by_value(basis, lambda c: None if (k := key(c)) is None else f"{k} ({_case(c)})")
    if a is None:
        return Answer("value", "", tuple(basis))
    outcomes = {key(c) for c in basis} - {None}
    verdict = "depends" if len(outcomes) > 1 else "value"
    return Answer(verdict, a.text if verdict == "depends" else f"{outcomes.pop()}: {a.text}", tuple(basis),
                  limits="no in-memory fallback was looked for beyond the exit status; GOCACHE on a read-only fs "
                         "without a populated cache is not measured")


def _case(c: CellResult) -> str:
    if c.cell.get("scenario") == "location":
        return "empty GOCACHE the uid cannot create"
    return f"read-only populated cache, trim.txt {c.cell.get('variant')}"
