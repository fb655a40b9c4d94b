"""`keying`: what the build cache keys on, and how a hit reaches its output.

One container, GOCACHE on its writable layer. After a cold and a warm build, the source of the package scenarios
edit (internal/format/format.go) gets one metadata-only change at a time, each followed by a build:

    touch      every source file's mtime set to now
    chmod      the file's mode changed to 0600
    new-inode  the file copied to a new inode with the same content and mtime (cp -p, mv over it)
    hard-link  a second name for the file (ln), so its link count is 2

`stat` before and after each change records that it happened (inode, mode, links, mtime). Go's documentation
says the cache is keyed by content (`go help cache`: "The go command ... decides whether a cached result is
valid from the content of the inputs"), so every rebuild here should compile 0 packages; the cell fails when
one compiles. Then, after a hit, the link counts of the cache's files and of the `go build -o` output, and
whether that output shares an inode with a cache file (Q10): cmd/go copies outputs out of the cache
(cmd/go/internal/work, moveOrCopyFile: a cached file is never moved or linked); that is recorded, not judged.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from runner.answer import (
    BREAKS,
    DEGRADED,
    DEPENDS,
    NO,
    NOT_MEASURED,
    WORKS,
    YES,
    Answer,
    AnswerFn,
    Outcome,
    by_value,
    judged,
    listing,
    obs_of,
    pick,
    rows,
    split,
)
from runner.model import Cell, Status
from runner.results import CellResult
from runner.scenarios import (
    SCRATCH,
    JobContext,
    Phase,
    Probes,
    Verdict,
    build_obs,
    describe_failure,
    exec_step,
    setup_failure,
    step,
)
from runner.scenarios.base import Rows, Scenario
from runner.scenarios.rows import lead, secs
from runner.scenarios.storage import ENV, GOCACHE, SRC, prepare_steps

OUT = f"{SCRATCH}/out"
FILE = f"{SRC}/internal/format/format.go"
ALIAS = f"{SCRATCH}/format-alias.go"  # the hard link's second name, outside the module
STAT = ["stat", "-c", "%i %a %h %Y", FILE]  # inode, mode, links, mtime
CHANGES = ("touch", "chmod", "new-inode", "hard-link")
WORDS = {"touch": "touch", "chmod": "chmod", "new-inode": "a copy to a new inode", "hard-link": "a hard link"}

# After the warm build (a hit): every cache file's link count, and the -o output's against the cache.
LINKS_SCRIPT = f"""set -e
out={OUT}/warm
echo files=$(find {GOCACHE} -type f | wc -l)
echo multi_linked=$(find {GOCACHE} -type f -links +1 | wc -l)
echo output_links=$(stat -c %h "$out")
echo output_in_cache=$(find {GOCACHE} -samefile "$out" | wc -l)
"""


def _change(name: str) -> list[dict[str, Any]]:
    if name == "touch":
        return [{"name": "change-touch", "kind": "touch", "path": SRC, "stop_on_error": True}]
    argv = {"chmod": ["chmod", "0600", FILE],
            "new-inode": ["sh", "-c", f"cp -p {FILE} {FILE}.tmp && mv {FILE}.tmp {FILE}"],
            "hard-link": ["ln", FILE, ALIAS]}[name]
    return [exec_step(f"change-{name}", argv, stop_on_error=True)]


def build(name: str, ctx: JobContext) -> dict[str, Any]:
    return exec_step(name, ["go", "build", "-v", "-o", f"{OUT}/{name}", "."], dir=SRC, env=ENV, count_compiled=True,
                     measure=[GOCACHE], timeout_sec=ctx.build_timeout, stop_on_error=True)


def parse_stat(s: Mapping[str, Any] | None) -> dict[str, Any] | None:
    words = str((s or {}).get("stdout") or "").split()
    if not (s and s.get("ok")) or len(words) != 4:
        return None
    return {"inode": int(words[0]), "mode": words[1], "links": int(words[2]), "mtime": int(words[3])}


def parse_links(s: Mapping[str, Any] | None) -> dict[str, int] | None:
    if not (s and s.get("ok")):
        return None
    out = {}
    for line in str(s.get("stdout") or "").splitlines():
        k, _, v = line.partition("=")
        if v.strip().isdigit():
            out[k.strip()] = int(v)
    return out if {"files", "multi_linked", "output_links", "output_in_cache"} <= set(out) else None


def _what_changed(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> str:
    if before is None or after is None:
        return "(not recorded)"
    diff = [f"{k} {before[k]}→{after[k]}" for k in ("inode", "mode", "links", "mtime") if before[k] != after[k]]
    return ", ".join(diff) or "nothing"


def _links_cell(o: Mapping[str, Any]) -> str:
    ln = o.get("links")
    if not isinstance(ln, dict):
        return ""
    return (f"{ln['multi_linked']} of {ln['files']} · output links {ln['output_links']}, "
            f"{'shares' if ln['output_in_cache'] else 'no'} inode with the cache")


class Keying(Scenario):
    id = "keying"
    title = ("What the cache keys on: a build after each metadata-only change of one source (packages compiled), "
             "and link counts after a hit")
    # Whether a metadata change recompiles, and whether a hit links or copies, do not depend on how much is
    # compiled: the three-package `lib` decides it as the program does (runner.parity).
    workload = "lib"

    def phases(self, cell: Cell, ctx: JobContext) -> list[Phase]:
        steps = [*prepare_steps(ctx), exec_step("mkdir-out", ["mkdir", "-p", OUT], stop_on_error=True),
                 build("cold", ctx), build("warm", ctx),
                 exec_step("links", ["sh", "-c", LINKS_SCRIPT])]
        for name in CHANGES:
            steps += [exec_step(f"stat-before-{name}", STAT), *_change(name), exec_step(f"stat-after-{name}", STAT),
                      build(f"after-{name}", ctx)]
        return [Phase("main", steps)]

    def evaluate(self, cell: Cell, probes: Probes, ctx: JobContext) -> Verdict:
        probe = probes["main"]
        obs: dict[str, Any] = {"workload": ctx.workload}
        if problem := setup_failure(probe, ("copy-src", "mkdir", "mod-download", "mkdir-out")):
            return Verdict(Status.ERROR, problem, obs)
        for name in ("cold", "warm"):
            obs[name] = build_obs(step(probe, name), GOCACHE)
            if not obs[name].get("ok"):
                return Verdict(Status.FAIL, describe_failure(step(probe, name), f"{name} build"), obs)
        obs["links"] = parse_links(step(probe, "links"))
        obs["changes"] = {}
        problems = []
        for name in CHANGES:
            before = parse_stat(step(probe, f"stat-before-{name}"))
            after = parse_stat(step(probe, f"stat-after-{name}"))
            changed = step(probe, f"change-{name}")
            if changed is None or not changed.get("ok"):
                return Verdict(Status.ERROR, f"could not make the change: {describe_failure(changed, name)}", obs)
            b = build_obs(step(probe, f"after-{name}"))
            obs["changes"][name] = {**b, "stat_before": before, "stat_after": after,
                                    "changed": _what_changed(before, after)}
            if not b.get("ok"):
                problems.append(describe_failure(step(probe, f"after-{name}"), f"build after {name}"))
            elif b["compiled"]:
                problems.append(f"{WORDS[name]} alone recompiled {b['compiled']} packages")
        if obs["warm"]["compiled"]:
            problems.insert(0, f"the warm build compiled {obs['warm']['compiled']} packages")
        if obs["links"] is None:
            problems.append(describe_failure(step(probe, "links"), "link count listing"))
        if problems:
            return Verdict(Status.FAIL, "; ".join(problems), obs)
        ln = obs["links"]
        return Verdict(Status.PASS, f"touch, chmod, new inode, hard link: 0 compiled each; after a hit "
                                    f"{ln['multi_linked']} of {ln['files']} cache files have links > 1, the output "
                                    f"has {ln['output_links']}", obs)

    @staticmethod
    def answers() -> dict[str, AnswerFn]:
        return {"Q10": answer_links}  # Q08 is cold-warm's (its touch rebuild) with these cells' changes (answer_keyed)

    @staticmethod
    def outcome(c: CellResult) -> Outcome:
        """A failed build breaks; a metadata-only change that recompiled degrades (a miss, not an error)."""
        changes = c.observations.get("changes") or {}
        failed = [n for n, o in changes.items() if o.get("ok") is False]
        if failed or "changes" not in c.observations:
            return Outcome(BREAKS, c.reason)
        missed = [f"{WORDS.get(n, n)}: {o['compiled']} compiled" for n, o in changes.items() if o.get("compiled")]
        if missed:
            return Outcome(DEGRADED, ", ".join(missed))
        return Outcome(WORKS, "every metadata-only change: 0 compiled")

    @staticmethod
    def parity(obs: Mapping[str, Any]) -> dict[str, Any]:
        changes = obs.get("changes") or {}
        ln = obs.get("links") or {}
        return {"recompiled": sorted(n for n, o in changes.items() if o.get("compiled") or o.get("ok") is False),
                "cache_multi_linked": bool(ln.get("multi_linked")), "output_in_cache": bool(ln.get("output_in_cache"))}

    def detail_rows(self, cells: Sequence[CellResult]) -> Rows:
        headers = ["distro", "arch", "engine", "toolchain", "cold s (pkgs)", "warm s (pkgs)",
                   *(f"after {WORDS[n]} s (pkgs)" for n in CHANGES), "cache files with links > 1 · -o output",
                   "status"]
        out = []
        for c in cells:
            o = c.observations
            ch = o.get("changes") or {}
            out.append(lead(c) + [secs(o.get("cold")), secs(o.get("warm")), *(secs(ch.get(n)) for n in CHANGES),
                                  _links_cell(o), c.status.value])
        return headers, out


def _recompiled(c: CellResult) -> dict[str, bool]:
    """change -> whether the build after it compiled anything; cold-warm cells measured `touch` only."""
    if c.cell.get("scenario") == "cold-warm":
        n = obs_of(c, "touch", "compiled")
        return {} if n is None else {"touch": bool(n)}
    out = {}
    for name in CHANGES:
        n, ok = obs_of(c, "changes", name, "compiled"), obs_of(c, "changes", name, "ok")
        if n is not None and ok is not False:
            out[name] = bool(n)
    return out


def _said(c: CellResult, change: str) -> str | None:
    r = _recompiled(c)
    return None if change not in r else (YES if r[change] else NO)


def answer_keyed(cells: Sequence[CellResult]) -> Answer:
    """Q08: does a metadata-only change (touch, chmod, new inode, hard link) make the next build compile? Each change
    on its own: `depends` when rows disagree on one change; yes when some change recompiles on every row."""
    basis = pick(cells, "cold-warm") + pick(cells, "keying")
    per: dict[str, dict[str, list[str]]] = {}
    for name in CHANGES:
        groups = split(judged(basis), functools.partial(_said, change=name))
        if groups:
            per[name] = groups
    if not per:
        return Answer(NO, "", tuple(basis))
    limits = "" if "keying" in {c.cell.get("scenario") for c in judged(basis)} else \
        "touch only (cold-warm): chmod, a copy to a new inode and hard links need a keying cell"
    mixed = {n: g for n, g in per.items() if len(g) > 1}
    if mixed:
        text = "; ".join(f"{WORDS[n]} recompiles on {listing(g[YES])}, not on {listing(g[NO])}"
                         for n, g in mixed.items())
        return Answer(DEPENDS, f"depends: {text}", tuple(basis), limits=limits)
    yes = [n for n, g in per.items() if YES in g]
    every = max(len(next(iter(g.values()))) for g in per.values())
    if yes:
        return Answer(YES, f"yes: {listing([WORDS[n] for n in yes])} alone recompiles; "
                           f"{listing([WORDS[n] for n in per if n not in yes]) or 'nothing else measured'} does not "
                           f"({rows(every)})", tuple(basis), limits=limits)
    return Answer(NO, f"no: {listing([WORDS[n] for n in per])} alone recompile nothing: the key is the content, not "
                      f"the file's metadata ({rows(every)})", tuple(basis), limits=limits)


def _linking(c: CellResult) -> str | None:
    multi, out_in = obs_of(c, "links", "multi_linked"), obs_of(c, "links", "output_in_cache")
    if not isinstance(multi, int) or not isinstance(out_in, int):
        return None
    if out_in:
        return "hard-linked: the -o output of a hit is a cache file's inode"
    return "copied: the -o output of a hit is its own inode" + (
        "" if not multi else f" (yet {multi} cache files have more than one link)")


def answer_links(cells: Sequence[CellResult]) -> Answer:
    """Q10: after a hit, does the output share an inode with the cache entry (a hard link), and do cache files carry
    more than one link?"""
    basis = pick(cells, "keying")
    figures = [f"{where_}: {v}" for c in judged(basis) if (v := _figure(c)) for where_ in [c.id.split('/')[0]]]
    a = by_value(basis, _linking, figure="; ".join(figures[:4]),
                 limits="`go build -o` of the cheap workload after a hit; `go install` and test binaries not measured")
    return a or Answer(NOT_MEASURED, "", tuple(basis))


def _figure(c: CellResult) -> str:
    ln = c.observations.get("links")
    if not isinstance(ln, dict):
        return ""
    return (f"{ln.get('multi_linked')} of {ln.get('files')} cache files with links > 1, "
            f"output links {ln.get('output_links')}")

