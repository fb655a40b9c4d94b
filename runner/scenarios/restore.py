"""`ci-restore`: a cache saved as an archive days ago and restored into a fresh container, as CI caches are.

    populate  a build of the cheap `lib` workload, and a `-trimpath` build of it (entries the later build will not
              use); every file of GOCACHE and GOMODCACHE aged 6 days and trim.txt set to 6 days ago, then both caches
              tarred to a bind mount (tar keeps mtimes, as CI cache actions do)
    restore   a new container: the archive extracted into an empty /gocache; the plain build (hits?), a second one,
              then the `-trimpath` build again (were its restored entries trimmed?). Files, and files older than
              4 days, are counted before and after.

Go (cmd/go/internal/cache, Trim): a build trims when trim.txt is over a day old, deleting entries not used for
5 days (plus an hour); an entry a build uses gets its mtime set to now (at most once an hour). So the restored plain
build should hit, its own entries survive, the `-trimpath` entries go: the cell fails when the restored build
misses or fails; what was trimmed is recorded.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from runner.answer import (
    BREAKS,
    DEGRADED,
    NOT_MEASURED,
    WORKS,
    Answer,
    AnswerFn,
    Outcome,
    by_value,
    judged,
    obs_of,
    pick,
    where,
    yes_no,
)
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
    describe_failure,
    exec_step,
    step,
)
from runner.scenarios.base import Rows, Scenario
from runner.scenarios.rows import lead, secs
from runner.scenarios.storage import AGE_DAYS, CACHE_ROOT, GOCACHE, SRC, build_step, prepare_steps

ARCHIVE = "/archive"
COUNT = f"echo files=$(find {GOCACHE} -type f | wc -l) old=$(find {GOCACHE} -type f -mtime +4 | wc -l)"


def _count(name: str) -> dict[str, Any]:
    return exec_step(name, ["sh", "-c", COUNT])


def parse_count(s: Mapping[str, Any] | None) -> dict[str, int] | None:
    if not (s and s.get("ok")):
        return None
    out = {k: int(v) for k, _, v in (w.partition("=") for w in str(s.get("stdout") or "").split()) if v.isdigit()}
    return out if {"files", "old"} <= set(out) else None


class CiRestore(Scenario):
    id = "ci-restore"
    title = ("A cache archived 6 days ago and restored into a new container: the first build's hits, files (and "
             "files older than 4 days) before and after it, and a build whose entries it did not use")
    # Hits and what trimming removes depend on entry ages and use, not on how much is compiled: `lib` decides it.
    workload = "lib"

    def phases(self, cell: Cell, ctx: JobContext) -> list[Phase]:
        archive = MountSpec("bind", ARCHIVE, name="archive")
        stale = str(int(time.time()) - AGE_DAYS * 86400)
        return [
            Phase("populate", [
                *prepare_steps(ctx), build_step("cold", ctx, stop_on_error=True),
                _trimpath("cold-trimpath", ctx),
                {"name": "age", "kind": "age", "path": CACHE_ROOT, "days": AGE_DAYS, "stop_on_error": True},
                {"name": "age-trim", "kind": "write", "path": f"{GOCACHE}/trim.txt", "data": stale + "\n"},
                _count("count-saved"),
                exec_step("save", ["tar", "-C", CACHE_ROOT, "-cf", f"{ARCHIVE}/cache.tar", "build", "mod"],
                          stop_on_error=True),
            ], mounts=(archive,)),
            Phase("restore", [
                exec_step("mkdir", ["mkdir", "-p", CACHE_ROOT], stop_on_error=True),
                exec_step("extract", ["tar", "-C", CACHE_ROOT, "-xf", f"{ARCHIVE}/cache.tar"], stop_on_error=True),
                {"name": "copy-src", "kind": "copytree", "path": f"{WORKLOADS}/{ctx.workload}", "dest": SRC,
                 "stop_on_error": True},
                _count("count-restored"),
                build_step("restored", ctx),
                _count("count-after"),
                {"name": "trim.txt", "kind": "read", "path": f"{GOCACHE}/trim.txt"},
                build_step("again", ctx),
                _trimpath("trimpath-after", ctx),
            ], mounts=(archive,)),
        ]

    def evaluate(self, cell: Cell, probes: Probes, ctx: JobContext) -> Verdict:
        pop, res = probes["populate"], probes["restore"]
        obs: dict[str, Any] = {"workload": ctx.workload, "age_days": AGE_DAYS}
        for probe, name in ((pop, "copy-src"), (pop, "mod-download"), (pop, "cold"), (pop, "cold-trimpath"),
                            (pop, "age"), (pop, "save"), (res, "extract"), (res, "copy-src")):
            s = step(probe, name)
            if s is None or not s.get("ok"):
                return Verdict(Status.ERROR, f"setup: {describe_failure(s, name)}", obs)
        obs["saved"] = parse_count(step(pop, "count-saved"))
        obs["restored_files"] = parse_count(step(res, "count-restored"))
        obs["after_first"] = parse_count(step(res, "count-after"))
        trim = step(res, "trim.txt") or {}
        obs["trim_txt_after"] = (trim.get("content") or "").strip()
        for name in ("restored", "again", "trimpath-after"):
            obs[name] = build_obs(step(res, name), GOCACHE)
        obs["cold_trimpath_compiled"] = build_obs(step(pop, "cold-trimpath"))["compiled"]
        r = obs["restored"]
        if not r.get("ok"):
            return Verdict(Status.FAIL, describe_failure(step(res, "restored"), "restored build"), obs)
        problems = []
        if r["compiled"]:
            problems.append(f"the restored build compiled {r['compiled']} packages: the archive's entries missed")
        if obs["again"].get("ok") and obs["again"]["compiled"]:
            problems.append(f"the build after it compiled {obs['again']['compiled']}: the trim removed used entries")
        if problems:
            return Verdict(Status.FAIL, "; ".join(problems), obs)
        before, after = obs["restored_files"] or {}, obs["after_first"] or {}
        return Verdict(Status.PASS, f"restored build 0 compiled; files {before.get('files')} → {after.get('files')} "
                                    f"(older than 4 days: {before.get('old')} → {after.get('old')}); the unused "
                                    f"-trimpath build then compiled {obs['trimpath-after'].get('compiled')}", obs)

    @staticmethod
    def answers() -> dict[str, AnswerFn]:
        return {"Q07": answer_ci}  # with storage:baked-aged (an aged image layer) beside the tar restore

    @staticmethod
    def outcome(c: CellResult) -> Outcome | None:
        r = c.observations.get("restored") or {}
        if not r:
            return None
        if not r.get("ok"):
            return Outcome(BREAKS, c.reason)
        if r.get("compiled"):
            return Outcome(DEGRADED, f"restored build compiled {r['compiled']}")
        return Outcome(WORKS, "the restored entries hit")

    @staticmethod
    def parity(obs: Mapping[str, Any]) -> dict[str, Any]:
        return {"restored_hit": (obs.get("restored") or {}).get("compiled") == 0,
                "trimmed_any": bool(trimmed(obs)),
                "unused_rebuilt": bool((obs.get("trimpath-after") or {}).get("compiled"))}

    def detail_rows(self, cells: Sequence[CellResult]) -> Rows:
        headers = ["distro", "arch", "engine", "toolchain", "restored build s (pkgs)", "files before → after",
                   "older than 4 days before → after", "next build s (pkgs)", "unused -trimpath build s (pkgs)",
                   "status"]
        out = []
        for c in cells:
            o = c.observations
            b, a = o.get("restored_files") or {}, o.get("after_first") or {}
            out.append(lead(c) + [secs(o.get("restored")), f"{b.get('files')} → {a.get('files')}" if b and a else "",
                                  f"{b.get('old')} → {a.get('old')}" if b and a else "", secs(o.get("again")),
                                  secs(o.get("trimpath-after")), c.status.value])
        return headers, out


def _trimpath(name: str, ctx: JobContext) -> dict[str, Any]:
    s = build_step(name, ctx)
    s["argv"] = [*s["argv"][:2], "-trimpath", *s["argv"][2:]]
    return s


def trimmed(obs: Mapping[str, Any]) -> int | None:
    before, after = obs.get("restored_files"), obs.get("after_first")
    if not isinstance(before, Mapping) or not isinstance(after, Mapping):
        return None
    return int(before.get("files", 0)) - int(after.get("files", 0))


def restored_result(c: CellResult) -> str | None:
    """What a restored archive did on the first build: hits, and whether the trim removed entries it did not use."""
    compiled, unused = obs_of(c, "restored", "compiled"), obs_of(c, "trimpath-after", "compiled")
    n = trimmed(c.observations)
    if compiled is None or n is None:
        return None
    hit = "hit (0 compiled)" if not compiled else f"missed ({compiled} compiled)"
    gone = ("the first build's trim removed the entries it did not use (a build needing them compiled again)"
            if n > 0 and unused else "the first build's trim removed nothing it later needed" if n > 0
            else "nothing was trimmed")
    return f"restored entries {hit}; {gone}"


def _hit(c: CellResult) -> bool | None:
    """baked-aged: its first build in the aged layer; ci-restore: the restored build. 0 compiled is a hit."""
    n = obs_of(c, "warm", "compiled") if c.cell.get("scenario") == "storage" else obs_of(c, "restored", "compiled")
    return None if n is None else n == 0


def answer_ci(cells: Sequence[CellResult]) -> Answer:
    """Q07: a cache whose entries are days old (an aged image layer: storage:baked-aged; a tar archive restored into a
    new container: ci-restore): does it hit, and what does Go's trim then remove?"""
    aged, restored = pick(cells, "storage", "baked-aged"), pick(cells, "ci-restore")
    basis = aged + restored
    trims = [f"{where(c)} (image layer): {obs_of(c, 'baked_files_before')} → {obs_of(c, 'baked_files_after')} files"
             for c in judged(aged) if obs_of(c, "baked_files_before") is not None]
    trims += [f"{where(c)} (tar restore): {obs_of(c, 'restored_files', 'files')} → "
              f"{obs_of(c, 'after_first', 'files')} files" for c in judged(restored)
              if trimmed(c.observations) is not None]
    hits = yes_no(basis, _hit, f"entries {AGE_DAYS} days old hit on the first build",
                  f"entries {AGE_DAYS} days old missed")
    if hits is None:
        return Answer(NOT_MEASURED, "", tuple(basis))
    trim = by_value(restored, restored_result)
    text = hits.text + (f"; {trim.text.removeprefix('depends: ')}" if trim else "")
    verdict = "depends" if trim is not None and trim.verdict == "depends" else hits.verdict
    limits = "HOME at a workspace's parent is not measured" + (
        "" if judged(restored) else "; a tar restore into a new container needs a ci-restore cell")
    return Answer(verdict, text if verdict != "depends" or text.startswith("depends") else "depends: " + text,
                  tuple(basis), figure="cache files before → after the first build: " + "; ".join(trims)
                  if trims else "", limits=limits)
