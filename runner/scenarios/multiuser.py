"""`multiuser`: two uids of one group share GOCACHE and GOMODCACHE through a setgid directory.

One container, as root: /shared/cache and /shared/mod owned root:4242, mode 2775 (setgid). Users A
(uid 1001) and B (uid 1002) both run with primary gid 4242 (the probe's exec sets uid/gid without
touching supplementary groups, so the children keep root's list: recorded by `id`), HOME in a dir of
their own, GOCACHE=/shared/cache, GOMODCACHE=/shared/mod, and the umask of the variant (002 or 022).
Each builds its own checkout (/tmp/gcm/src-a, src-b) with `-trimpath`, so the checkout path is not in
the cache keys (see `portability`) and only ownership and modes can make B miss A's entries:

    A   go mod download; go build            (cold: creates the caches' directories and entries)
    B   go build of its copy                 (warm: reads A's entries)
    B   one-line edit of internal/format, go build  (must store new entries)
    B   go build again, unchanged            (were those entries stored?)
    B   the same with GODEBUG=goindex=0      (no module index: is the index what fails?)
    A   go build again                       (still warm after B?)

The rule, from the toolchain's source (cmd/go/internal/cache, modindex, load, work/buildid.go):
  * the first `go` to use a cache creates all 256 subdirectories at once (cache.Open: os.MkdirAll(name,
    0777)) and writes entries with os.OpenFile(name, ..., 0666): dirs 0777&^umask, files 0666&^umask;
    the setgid parent gives them group 4242 (and, by the kernel's rule, the setgid bit to dirs). Under
    umask 002 A's dirs are 2775 and B can add entries to them; under 022 they are 2755 and B can add
    entries to none of them (every entry lands in one of those 256 dirs).
  * before building, the go command reads each package directory outside GOROOT and the module cache
    through the module index, a cache entry keyed by the directory's path and its files' names, sizes
    and mtimes (modindex.dirHash; dirs with a file modified in the last 2 s are not indexed). On a miss
    it writes the entry, and a failed write is fatal (modindex.openIndexPackage returns it; load calls
    base.Fatal). B's checkout is at another path than A's, so B always misses and must write.
    (Failed writes of compiled packages, by contrast, are ignored: buildid.go drops c.Put's error.)
So: under 002 every build exits 0, B's first build and all repeat builds compile 0 packages, and B
owns entries in GOCACHE. Under 022 every build of B with the module index exits non-zero with
"permission denied" on a file under GOCACHE and B owns no entry; with GODEBUG=goindex=0 B's build
exits 0 but compiles its edited package again (it was never stored); A's own builds are unaffected
(exit 0, A's repeat build compiles 0). The umask's group-write bit chooses the rule; the cell passes
when the observations follow it, and Go's first line of stderr is recorded either way. The module
cache is only recorded (Go makes extracted module trees read-only, 2555/0444 here, whatever the umask).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from runner.answer import BREAKS, DEGRADED, WORKS, Answer, AnswerFn, Outcome, brief, per_case, pick
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
    build_obs,
    catalogue,
    describe_failure,
    exec_step,
    first_line,
    step,
)
from runner.scenarios.base import Rows, Scenario
from runner.scenarios.rows import lead

VARIANTS = catalogue.variants("multiuser")  # the registry line lists them
SHARED = "/shared"
GOCACHE = f"{SHARED}/cache"
GOMODCACHE = f"{SHARED}/mod"
GID = 4242
USERS = {"a": 1001, "b": 1002}
EDIT_FILE = "internal/format/format.go"
BUILDS = ("a-cold", "b-warm", "b-edit", "b-again", "b-noindex", "a-again")  # in the order they run
NOINDEX = {"GODEBUG": "goindex=0"}  # cmd/go/internal/modindex: `enabled` is false: no index entries
# Every entry of both caches, counted by (area, type, mode, uid, gid): one line each, so it never clips.
MODES_SH = (f"for d in cache mod; do find {SHARED}/$d -printf \"$d %y %m %U %G\\n\"; done | sort | uniq -c")
SETUP_SH = "\n".join([
    "set -e",
    f"mkdir -p {GOCACHE} {GOMODCACHE} /tmp/home-a /tmp/home-b",
    f"chown 0:{GID} {GOCACHE} {GOMODCACHE}",
    f"chmod 2775 {GOCACHE} {GOMODCACHE}",
    f"chown {USERS['a']}:{GID} /tmp/home-a",
    f"chown {USERS['b']}:{GID} /tmp/home-b",
])
_MODE_LINE = re.compile(r"^\s*(\d+)\s+(cache|mod)\s+(\S)\s+([0-7]+)\s+(\d+)\s+(\d+)\s*$")


def umask_of(variant: str) -> int:
    return int(variant.removeprefix("umask-"), 8)


def _src(user: str) -> str:
    return f"{SCRATCH}/src-{user}"


def _as(user: str, variant: str) -> dict[str, Any]:
    return {"uid": USERS[user], "gid": GID, "umask": umask_of(variant),
            "env": {**OFFLINE_GO, "GOCACHE": GOCACHE, "GOMODCACHE": GOMODCACHE, "HOME": f"/tmp/home-{user}"}}


def _build(name: str, user: str, variant: str, ctx: JobContext, env: dict[str, str] | None = None) -> dict[str, Any]:
    kw = _as(user, variant)
    kw["env"] = {**kw["env"], **(env or {})}
    argv = build_argv(ctx.workload, "app")
    return exec_step(name, [*argv[:3], "-trimpath", *argv[3:]], dir=_src(user),
                     count_compiled=True, timeout_sec=ctx.build_timeout, **kw)


def parse_modes(stdout: str | None) -> dict[str, dict[str, dict[str, dict[str, int]]]]:
    """`uniq -c` lines -> {area: {uid: {"d"|"f"|...: {mode: count}}}} (gid kept in the mode key when not 4242)."""
    out: dict[str, dict[str, dict[str, dict[str, int]]]] = {}
    for line in (stdout or "").splitlines():
        m = _MODE_LINE.match(line)
        if not m:
            continue
        count, area, kind, mode, uid, gid = m.groups()
        key = mode if int(gid) == GID else f"{mode}:g{gid}"
        slot = out.setdefault(area, {}).setdefault(uid, {}).setdefault(kind, {})
        slot[key] = slot.get(key, 0) + int(count)
    return out


def modes_summary(area: dict[str, dict[str, dict[str, int]]] | None) -> str:
    """'1001: d 2755 (256), f 644 (310); 1002: f 664 (4)'."""
    parts = []
    for uid, kinds in sorted((area or {}).items()):
        seen = [f"{kind} {mode} ({n})" for kind, modes in sorted(kinds.items()) for mode, n in sorted(modes.items())]
        parts.append(f"{uid}: {', '.join(seen)}")
    return "; ".join(parts)


def _group_writable(mode: str) -> bool:
    return bool(int(mode.split(":")[0], 8) & 0o020)


def _multiuser_rows(cells: Sequence[CellResult]) -> Rows:
    headers = ["distro", "arch", "engine", "toolchain", "umask", "A cold", "B warm", "B edit", "B again",
               "B goindex=0", "A again", "GOCACHE modes by uid", "GOMODCACHE modes by uid", "first error line",
               "status"]
    rows = []
    for c in cells:
        o = c.observations
        builds = o.get("builds") or {}
        end = o.get("modes_end") or {}
        cols = [f"{b.get('exit_code')} ({b.get('compiled')})" if (b := builds.get(n)) else "" for n in BUILDS]
        rows.append(lead(c) + [o.get("umask", c.cell.get("variant")), *cols, modes_summary(end.get("cache")),
                                 modes_summary(end.get("mod")), o.get("first_error", ""), c.status.value])
    return headers, rows


class MultiUser(Scenario):
    id = "multiuser"
    title = ("Two uids (1001, 1002) of group 4242 sharing GOCACHE and GOMODCACHE through setgid dirs, per umask:"
             " each build as 'exit (packages compiled)'; modes as 'type mode (count)' per owner uid")
    # Who may write which entry (A's dirs' modes, B's module-index and edited-package entries) does not depend
    # on how much is compiled: the three-package `lib` has a checkout outside GOROOT and an edited package like
    # the program (runner.parity checks that it decides alike).
    workload = "lib"

    @staticmethod
    def answers() -> dict[str, AnswerFn]:
        return {"Q21": answer_shared}

    @staticmethod
    def outcome(c: CellResult) -> Outcome:
        """A build that fails for one of the users breaks sharing, also where Go's source predicts it."""
        builds = c.observations.get("builds") or {}
        failed = [n for n, b in builds.items() if not b.get("ok")]
        if failed or (c.status is not Status.PASS and not builds):
            return Outcome(BREAKS, f"{', '.join(failed)} failed: {c.observations.get('first_error', '')}" if failed
                           else c.reason)
        if c.status is not Status.PASS:
            return Outcome(DEGRADED, c.reason)
        return Outcome(WORKS, "both uids build and reuse each other's entries")

    @staticmethod
    def parity(obs: Mapping[str, Any]) -> dict[str, Any]:
        """What decides multiuser, whatever the workload (runner.parity compares it)."""
        builds = obs.get("builds") or {}
        # Go's words name the entry it could not write, a hash of what was built: the entry differs by workload.
        error = re.sub(r"/[0-9a-f]{2}/[0-9a-f]{64}-([ad])\b", r"/<entry>-\1", str(obs.get("first_error") or ""))
        return {"builds": {n: (b.get("exit_code"), bool(b.get("compiled"))) for n, b in sorted(builds.items())},
                "first_error": error,
                "a_dirs_group_writable": obs.get("a_cache_dirs_group_writable"),
                "b_owns_entries": bool(obs.get("b_cache_entries"))}

    def phases(self, cell: Cell, ctx: JobContext) -> list[Phase]:
        assert cell.variant is not None
        v = cell.variant
        setup: list[dict[str, Any]] = [exec_step("setup", ["sh", "-c", SETUP_SH], stop_on_error=True)]
        for user, uid in USERS.items():
            setup += [{"name": f"copy-{user}", "kind": "copytree", "path": f"{WORKLOADS}/{ctx.workload}",
                       "dest": _src(user),
                       "stop_on_error": True},
                      exec_step(f"chown-{user}", ["chown", "-R", f"{uid}:{GID}", _src(user)], stop_on_error=True),
                      exec_step(f"id-{user}", ["id"], **_as(user, v))]
        return [Phase("share", [
            *setup,
            exec_step("a-mod-download", ["go", "mod", "download"], dir=_src("a"), timeout_sec=ctx.build_timeout,
                      **_as("a", v)),
            _build("a-cold", "a", v, ctx),
            exec_step("modes-after-a", ["sh", "-c", MODES_SH]),
            _build("b-warm", "b", v, ctx),
            {"name": "edit-b", "kind": "edit", "path": f"{_src('b')}/{EDIT_FILE}", "data": "\n// edited by B\n",
             "stop_on_error": True},
            _build("b-edit", "b", v, ctx),
            _build("b-again", "b", v, ctx),
            _build("b-noindex", "b", v, ctx, NOINDEX),
            _build("a-again", "a", v, ctx),
            exec_step("modes-end", ["sh", "-c", MODES_SH]),
            exec_step("b-sample", ["sh", "-c", f"find {SHARED} -maxdepth 3 -user {USERS['b']} "
                                               "-printf '%m %U %G %p\\n' | head -10"]),
        ])]

    def evaluate(self, cell: Cell, probes: Probes, ctx: JobContext) -> Verdict:
        assert cell.variant is not None
        umask = umask_of(cell.variant)
        group_w = not umask & 0o020
        probe = probes["share"]
        obs: dict[str, Any] = {"umask": f"{umask:03o}", "gid": GID, "uids": {u: str(uid) for u, uid in USERS.items()},
                               "expect_group_writable": group_w}
        for name in ("setup", "copy-a", "chown-a", "copy-b", "chown-b", "modes-after-a", "edit-b", "modes-end"):
            s = step(probe, name)
            if not (s and s.get("ok")):
                return Verdict(Status.ERROR, describe_failure(s, name), obs)
        obs["id"] = {u: ((step(probe, f"id-{u}") or {}).get("stdout") or "").strip() for u in USERS}
        dl = step(probe, "a-mod-download")
        obs["a-mod-download"] = build_obs(dl)
        builds: dict[str, dict[str, Any]] = {}
        for name in BUILDS:
            s = step(probe, name)
            if s is None or (s.get("exit_code") is None and not s.get("timed_out")):
                return Verdict(Status.ERROR, describe_failure(s, name), obs)
            builds[name] = {**build_obs(s), "uid": USERS[name[0]], "packages": sorted(s.get("compiled") or [])}
            if not s.get("ok"):
                builds[name]["stderr_first_line"] = first_line(s.get("stderr"))
        obs["builds"] = builds
        after_a = parse_modes((step(probe, "modes-after-a") or {}).get("stdout"))
        end = parse_modes((step(probe, "modes-end") or {}).get("stdout"))
        obs["modes_after_a"], obs["modes_end"] = after_a, end
        a_dirs = (after_a.get("cache") or {}).get(str(USERS["a"]), {}).get("d", {})
        obs["a_cache_dirs"] = sum(a_dirs.values())
        obs["a_cache_dirs_group_writable"] = bool(a_dirs) and all(_group_writable(m) for m in a_dirs)
        b_cache = (end.get("cache") or {}).get(str(USERS["b"]), {})
        obs["b_cache_entries"] = sum(n for modes in b_cache.values() for n in modes.values())
        obs["b_sample"] = ((step(probe, "b-sample") or {}).get("stdout") or "").splitlines()
        errors = [f"{n}: {b['stderr_first_line']}" for n, b in builds.items() if b.get("stderr_first_line")]
        if dl and not dl.get("ok"):
            errors.insert(0, f"a-mod-download: {first_line(dl.get('stderr'))}")
        obs["first_error"] = errors[0] if errors else ""

        problems = [describe_failure(dl, "A's go mod download")] if not (dl and dl.get("ok")) else []
        if not a_dirs:
            problems.append("A's cold build created no directories in GOCACHE")
        elif obs["a_cache_dirs_group_writable"] != group_w:
            problems.append(f"A's GOCACHE dirs are {'' if obs['a_cache_dirs_group_writable'] else 'not '}"
                            f"group-writable ({', '.join(sorted(a_dirs))}) under umask {umask:03o}")
        for name, b in builds.items():
            # A always builds, and B without the module index; B with it iff it can write into A's dirs.
            if name.startswith("a") or name == "b-noindex" or group_w:
                # Without group write B's edited package is never stored: b-noindex compiles it again.
                must_compile = name in ("a-cold", "b-edit") or (name == "b-noindex" and not group_w)
                if not b.get("ok"):
                    problems.append(describe_failure(step(probe, name), f"{name} (uid {b['uid']})"))
                elif must_compile and not b["compiled"]:
                    problems.append(f"{name} compiled nothing: "
                                    + ("the edit" if name == "b-edit" else "expected a miss"))
                elif not must_compile and b["compiled"]:
                    problems.append(f"{name} compiled {b['compiled']} packages ({', '.join(b['packages'])}), "
                                    "expected 0 (cache hits)")
            elif b.get("ok"):
                problems.append(f"{name} (uid {b['uid']}) exited 0 ({b['compiled']} compiled), but B cannot "
                                f"write into A's {', '.join(sorted(a_dirs))} dirs")
            elif not ("permission denied" in b.get("stderr_first_line", "") and GOCACHE in b["stderr_first_line"]):
                problems.append(f"{name} failed, but not on a GOCACHE write: "
                                f"{describe_failure(step(probe, name), name)}")
        if (obs["b_cache_entries"] > 0) != group_w:
            problems.append(f"B owns {obs['b_cache_entries']} entries in GOCACHE under umask {umask:03o}")

        summary = (f"umask {umask:03o}: A's cache dirs {', '.join(sorted(a_dirs)) or '-'}; "
                   + ", ".join(f"{n} {_fmt(b)}" for n, b in builds.items())
                   + f"; B owns {obs['b_cache_entries']} GOCACHE entries")
        if problems:
            return Verdict(Status.FAIL, "; ".join(problems) + f" — {summary}", obs)
        how = ("shared: B reads A's entries and adds its own" if group_w else
               f"sharing breaks as Go's source says: B cannot store its module-index entry ({obs['first_error']}); "
               f"with GODEBUG=goindex=0 B builds but stores nothing")
        return Verdict(Status.PASS, f"{how} — {summary}", obs)

    def detail_rows(self, cells: Sequence[CellResult]) -> Rows:
        return _multiuser_rows(cells)


def _fmt(b: dict[str, Any]) -> str:
    if not b.get("ran", True):
        return "not run"
    return f"exit {b.get('exit_code')} ({b.get('compiled')})"


def answer_shared(cells: Sequence[CellResult]) -> Answer:
    """Q21: two uids of one group on one GOCACHE/GOMODCACHE with setgid dirs, per umask: who can build?"""
    from runner.findings import outcome_of

    def key(c: CellResult) -> str | None:
        o = outcome_of(c)
        return None if o is None else f"umask {c.cell.get('variant', '').removeprefix('umask-')}: {o.word}" + (
            f" ({brief(o.message)})" if o.word != WORKS else "")

    return per_case(pick(cells, "multiuser"), key,
                    limits="two uids, setgid group dirs, umask 002 and 022; ACLs and a shared uid are not measured")
