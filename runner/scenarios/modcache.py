"""`modcache`: the module cache's own rules (GOMODCACHE), as `go help modules` / `go help clean` document them.

Go extracts each downloaded module into GOMODCACHE and makes its files and directories read-only, so
that nothing edits a module's source in place; `go clean -modcache` is the documented way to remove
the cache, and `-modcacherw` leaves new directories writable (files stay read-only) so that
ordinary tools (rm -rf) can delete it. Module downloads are checked against go.sum and `go mod
verify` re-hashes what is on disk.
Variants:

    download    one container, as uid 1000 (gopher) on a bind mount it owns: `go mod download` into an
                empty GOMODCACHE; the modes of the extracted module; `go mod verify`; plain `rm -rf`
                of that cache (and, for comparison, root's `rm -rf` of a second cache uid 1000
                populated); `go clean -modcache`; a fresh download with GOFLAGS="-mod=readonly
                -modcacherw", its modes and verify, then plain `rm -rf` again
    concurrent  4 `go mod download` at once into one empty GOMODCACHE in one container (bind mount),
                then `go mod verify`; then 2 containers at once (Phase replicas, meeting at a barrier
                on the shared mount) each running 2 `go mod download` at once into one empty named
                volume, and a third container's `go mod verify` on that volume. Each download runs
                between two `date +%s.%N` lines, so the overlap of two downloads is measured, not assumed

Pass (download): the downloads verify, the default cache's module dir and files carry no write bit,
its non-root owner's plain `rm -rf` fails with "Permission denied", `go clean -modcache` exits 0 and
removes the cache, and the -modcacherw cache's module dir is writable and plain `rm -rf` removes it.
Pass (concurrent): no download fails and both caches verify. Exit codes, Go's first stderr lines and
the modes are recorded as they are.

(Over 500 lines: the two variants' steps, their judgement, the answers to Q20 and Q22 and the detail table all read
the same per-removal records, which stay in one place.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runner.answer import (
    BREAKS,
    WORKS,
    Answer,
    AnswerFn,
    Outcome,
    Tally,
    by_value,
    default_outcome,
    judged,
    obs_of,
    pick,
    yes_no,
)
from runner.answer import where as row_of
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
    barrier_missed,
    barrier_step,
    catalogue,
    describe_failure,
    exec_step,
    first_line,
    setup_failure,
    step,
)
from runner.scenarios.base import Rows, Scenario
from runner.scenarios.rows import lead
from runner.stats import rate_text

VARIANTS = catalogue.variants("modcache")  # the registry line lists them
MOUNT_ROOT = "/modcache"  # the mount; each GOMODCACHE is a directory below it (a mount point cannot be removed)
GOMODCACHE = f"{MOUNT_ROOT}/mod"
ROOT_RM_CACHE = f"{MOUNT_ROOT}/mod-root"  # populated by uid 1000, removed by root
SRC = f"{SCRATCH}/src"
UID = GID = 1000  # gopher, created in every image
USER_ENV = {"HOME": "/home/gopher"}
RW_FLAGS = "-mod=readonly -modcacherw"
N = 4  # concurrent downloads in one container
REPLICAS = 2
PER_REPLICA = 2  # downloads at once in each replica container
VERIFIED = "all modules verified"
# Paths below a GOMODCACHE whose modes are recorded: the extracted module, one of its files, their
# parent, and the downloaded zip.
MODE_PATHS = {
    "module_dir": "gcm.example/greet@v1.1.0",
    "go_file": "gcm.example/greet@v1.1.0/greet.go",
    "parent_dir": "gcm.example",
    "zip": "cache/download/gcm.example/greet/@v/v1.1.0.zip",
}


def env(cache: str, flags: str | None = None) -> dict[str, str]:
    out = {**OFFLINE_GO, "GOMODCACHE": cache}
    if flags is not None:
        out["GOFLAGS"] = flags
    return out


def go_step(name: str, argv: list[str], ctx: JobContext, cache: str, *, user: bool = True,
            flags: str | None = None) -> dict[str, Any]:
    kw: dict[str, Any] = {"uid": UID, "gid": GID} if user else {}
    e = {**env(cache, flags), **(USER_ENV if user else {})}
    return exec_step(name, argv, dir=SRC, env=e, timeout_sec=ctx.build_timeout, **kw)


def timed_download(name: str, ctx: JobContext) -> dict[str, Any]:
    """`go mod download` as root between two `date` lines on stdout: when it ran, comparable across containers."""
    script = 'date +%s.%N; go mod download; rc=$?; date +%s.%N; exit "$rc"'
    return exec_step(name, ["sh", "-c", script], dir=SRC, env=env(GOMODCACHE), timeout_sec=ctx.build_timeout)


def rm_step(name: str, cache: str, *, user: bool = True) -> dict[str, Any]:
    kw: dict[str, Any] = {"uid": UID, "gid": GID} if user else {}
    return exec_step(name, ["rm", "-rf", cache], timeout_sec=120, **kw)


def modes_step(name: str, cache: str) -> dict[str, Any]:
    # stat prints what exists and complains about the rest; exit 1 then, which is recorded, not fatal.
    return exec_step(name, ["stat", "-c", "%a %F %n", *(f"{cache}/{p}" for p in MODE_PATHS.values())],
                     timeout_sec=30)


def counts_step(name: str, cache: str) -> dict[str, Any]:
    """`<count> <mode> <type>` lines: the modes of everything in the cache, per type (stat, not GNU find's
    -printf: busybox has no -printf)."""
    return exec_step(name, ["sh", "-c", "find \"$1\" -exec stat -c '%a %F' {} + | sort | uniq -c", "sh", cache],
                     timeout_sec=60)


def exists_step(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "kind": "du", "path": path}


def copy_src() -> dict[str, Any]:
    return {"name": "copy-src", "kind": "copytree", "path": f"{WORKLOADS}/small", "dest": SRC, "stop_on_error": True}


def download_steps(ctx: JobContext) -> list[dict[str, Any]]:
    return [
        copy_src(),
        exec_step("chown", ["chown", f"{UID}:{GID}", MOUNT_ROOT], stop_on_error=True),
        # The default cache: read-only module dirs.
        go_step("download", ["go", "mod", "download"], ctx, GOMODCACHE),
        modes_step("modes", GOMODCACHE),
        counts_step("mode-counts", GOMODCACHE),
        go_step("verify", ["go", "mod", "verify"], ctx, GOMODCACHE),
        rm_step("rm-plain", GOMODCACHE),
        exists_step("after-rm-plain", GOMODCACHE),
        # For comparison: root's plain rm of a second default cache uid 1000 populated.
        go_step("download-root-rm", ["go", "mod", "download"], ctx, ROOT_RM_CACHE),
        rm_step("rm-root", ROOT_RM_CACHE, user=False),
        exists_step("after-rm-root", ROOT_RM_CACHE),
        go_step("clean-modcache", ["go", "clean", "-modcache"], ctx, GOMODCACHE),
        exists_step("after-clean", GOMODCACHE),
        # -modcacherw: writable module dirs.
        go_step("download-rw", ["go", "mod", "download"], ctx, GOMODCACHE, flags=RW_FLAGS),
        modes_step("modes-rw", GOMODCACHE),
        counts_step("mode-counts-rw", GOMODCACHE),
        go_step("verify-rw", ["go", "mod", "verify"], ctx, GOMODCACHE, flags=RW_FLAGS),
        rm_step("rm-rw", GOMODCACHE),
        exists_step("after-rm-rw", GOMODCACHE),
    ]


def parse_modes(stdout: str | None, cache: str) -> dict[str, str]:
    """{MODE_PATHS key: octal mode} from `stat -c '%a %F %n'` lines."""
    by_path = {f"{cache}/{p}": k for k, p in MODE_PATHS.items()}
    out: dict[str, str] = {}
    for line in (stdout or "").splitlines():
        parts = line.split(" ", 1)
        if len(parts) != 2:
            continue
        mode, rest = parts
        for path, key in by_path.items():
            if rest.endswith(" " + path):
                out[key] = mode
    return out


def parse_counts(stdout: str | None) -> dict[str, int]:
    """{"d 555": 4, "f 444": 9, ...} from `uniq -c` of `stat -c '%a %F'` (type by its first letter)."""
    out: dict[str, int] = {}
    for line in (stdout or "").splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[0].isdigit() and parts[1].isdigit():
            kind = "f" if parts[2].startswith("regular") else "l" if parts[2] == "symbolic link" else parts[2][0]
            key = f"{kind} {parts[1]}"
            out[key] = out.get(key, 0) + int(parts[0])
    return out


def writable(mode: str | None) -> bool | None:
    try:
        return bool(int(mode or "", 8) & 0o222)
    except ValueError:
        return None


def run_obs(s: Mapping[str, Any] | None) -> dict[str, Any]:
    if s is None:
        return {"ran": False}
    out: dict[str, Any] = {"ran": True, "ok": bool(s.get("ok")), "exit_code": s.get("exit_code"),
                           "sec": round(float(s.get("wall_sec", 0.0)), 3),
                           "stderr_first_line": first_line(s.get("stderr")) or s.get("error", "")}
    if s.get("timed_out"):
        out["timed_out"] = True
    return out


def verify_obs(s: Mapping[str, Any] | None) -> dict[str, Any]:
    out = run_obs(s)
    if s is not None:
        out["stdout_first_line"] = first_line(s.get("stdout"))
        out["verified"] = bool(s.get("ok")) and VERIFIED in (s.get("stdout") or "")
    return out


def gone(probe: Mapping[str, Any], name: str) -> bool | None:
    s = step(probe, name)
    if s is None or "usage" not in s:
        return None
    return not (s.get("usage") or {}).get("exists", False)


def timed_obs(s: Mapping[str, Any], where: str) -> dict[str, Any]:
    """run_obs of a timed_download, with its start/end (Unix seconds) from the `date` lines it printed."""
    out = {"name": f"{where}/{s.get('name', '?')}" if where else s.get("name", "?"), **run_obs(s)}
    stamps = []
    for line in (s.get("stdout") or "").splitlines():
        try:
            stamps.append(float(line.strip()))
        except ValueError:
            continue
    if len(stamps) >= 2:
        out["start"], out["end"] = stamps[0], stamps[-1]
    return out


def overlap(runs: list[dict[str, Any]], *, across: bool = False) -> float | None:
    """The longest time two runs were running at once (only pairs from different containers with across)."""
    timed = [r for r in runs if "start" in r]
    best: float | None = None
    for i, a in enumerate(timed):
        for b in timed[i + 1:]:
            if across and a["name"].split("/")[0] == b["name"].split("/")[0]:
                continue
            o = max(0.0, min(a["end"], b["end"]) - max(a["start"], b["start"]))
            best = o if best is None else max(best, o)
    return None if best is None else round(best, 4)


def _modcache_rows(cells: Sequence[CellResult]) -> Rows:
    headers = ["distro", "arch", "engine", "toolchain", "variant", "modes (module dir / .go)",
               "plain rm -rf (uid 1000)", "rm -rf as root", "go clean -modcache", "rm -rf of -modcacherw cache",
               "concurrent failures in container", "across containers", "go mod verify", "status"]

    def run(r: Any) -> str:
        if not isinstance(r, dict) or not r.get("ran"):
            return ""
        removed = r.get("removed")
        gone = ", removed" if removed is True else ", still there" if removed is False else ""
        line = r.get("stderr_first_line") or ""
        return f"exit {r.get('exit_code')}{gone}" + (f": {line}" if line else "")

    def verified(*vs: Any) -> str:
        return " / ".join("ok" if v.get("verified") else f"exit {v.get('exit_code')}: "
                          f"{v.get('stderr_first_line') or v.get('stdout_first_line') or '?'}"
                          for v in vs if isinstance(v, dict) and v.get("ran"))

    def fails(o: Any) -> str:
        if not isinstance(o, dict) or "runs" not in o:
            return ""
        bad = sorted({r.get("stderr_first_line", "") for r in o["runs"] if not r.get("ok")} - {""})
        ov = o.get("overlap_sec")
        return f"{o.get('failures')} of {len(o['runs'])}" + (f" (overlap {ov * 1000:.0f} ms)" if isinstance(
            ov, (int, float)) else "") + (f": {bad[0]}" if bad else "")

    rows = []
    for c in cells:
        o = c.observations
        modes = "; ".join(f"{label}: {m.get('module_dir', '?')} / {m.get('go_file', '?')}"
                          for label, key in (("default", "default"), ("-modcacherw", "modcacherw"))
                          if (m := (o.get(key) or {}).get("modes")))
        rows.append(lead(c) + [c.cell.get("variant"), modes, run(o.get("rm_plain")), run(o.get("rm_root")),
                                 run(o.get("clean_modcache")), run(o.get("rm_rw")), fails(o.get("in_container")),
                                 fails(o.get("across_containers")),
                                 verified(*((o.get(k) or {}).get("verify") for k in ("default", "modcacherw",
                                                                                     "in_container",
                                                                                     "across_containers"))),
                                 c.status.value])
    return headers, rows


class ModCache(Scenario):
    id = "modcache"
    title = ("GOMODCACHE as Go documents it: octal modes of an extracted module, removal by plain `rm -rf`, `go "
             "clean -modcache` and of a `-modcacherw` cache (exit, whether it is gone, first stderr line); `go "
             "mod download` at once: 4 in one container, 2 in each of 2 containers on one volume (failures, "
             "longest overlap of two downloads); `go mod verify` after each")

    @staticmethod
    def answers() -> dict[str, AnswerFn]:
        return {"Q20": answer_downloads, "Q22": answer_modes}

    @staticmethod
    def outcome(c: CellResult) -> Outcome | None:
        """A failed download or verify breaks; a plain `rm -rf` refused is how Go protects the cache, not a break."""
        o = c.observations
        if o.get("failures"):
            return Outcome(BREAKS, c.reason)
        if c.status is Status.PASS and c.cell.get("variant") == "download":
            rm = o.get("rm_plain") or {}
            plain = "fails" if rm.get("ok") is False else "works"
            return Outcome(WORKS, f"verified; plain rm -rf of the cache {plain}")
        return default_outcome(c)

    def phases(self, cell: Cell, ctx: JobContext) -> list[Phase]:
        assert cell.variant is not None
        if cell.variant == "download":
            return [Phase("main", download_steps(ctx), mounts=(MountSpec("bind", MOUNT_ROOT, name="modcache"),))]
        a = MountSpec("bind", MOUNT_ROOT, name="modcache-a")
        b = MountSpec("volume", MOUNT_ROOT, name="modcache-b")
        downloads = [timed_download(f"download-{i}", ctx) for i in range(1, N + 1)]
        per_replica = [timed_download(f"download-{i}", ctx) for i in range(1, PER_REPLICA + 1)]
        return [
            Phase("inproc", [copy_src(), {"name": "parallel", "kind": "parallel", "steps": downloads},
                             go_step("verify", ["go", "mod", "verify"], ctx, GOMODCACHE, user=False),
                             counts_step("mode-counts", GOMODCACHE)], mounts=(a,)),
            Phase("across", [copy_src(), barrier_step(MOUNT_ROOT, REPLICAS),
                             {"name": "parallel", "kind": "parallel", "steps": per_replica}],
                  mounts=(b,), replicas=REPLICAS),
            Phase("verify", [copy_src(), go_step("verify", ["go", "mod", "verify"], ctx, GOMODCACHE, user=False),
                             counts_step("mode-counts", GOMODCACHE)], mounts=(b,)),
        ]

    def evaluate(self, cell: Cell, probes: Probes, ctx: JobContext) -> Verdict:
        assert cell.variant is not None
        if cell.variant == "download":
            return self._download(probes.get("main", {}))
        return self._concurrent(probes)

    @staticmethod
    def _download(p: Mapping[str, Any]) -> Verdict:
        obs: dict[str, Any] = {"variant": "download"}
        if problem := setup_failure(p, ("copy-src", "chown")):
            return Verdict(Status.ERROR, problem, obs)
        for suffix, label in (("", "default"), ("-rw", "modcacherw")):
            o: dict[str, Any] = {"download": run_obs(step(p, f"download{suffix}")),
                                 "verify": verify_obs(step(p, f"verify{suffix}")),
                                 "modes": parse_modes((step(p, f"modes{suffix}") or {}).get("stdout"), GOMODCACHE),
                                 "mode_counts": parse_counts((step(p, f"mode-counts{suffix}") or {}).get("stdout"))}
            obs[label] = o
        obs["rm_plain"] = {**run_obs(step(p, "rm-plain")), "removed": gone(p, "after-rm-plain")}
        obs["rm_root"] = {**run_obs(step(p, "rm-root")), "removed": gone(p, "after-rm-root"),
                          "populated": run_obs(step(p, "download-root-rm"))}
        obs["clean_modcache"] = {**run_obs(step(p, "clean-modcache")), "removed": gone(p, "after-clean")}
        obs["rm_rw"] = {**run_obs(step(p, "rm-rw")), "removed": gone(p, "after-rm-rw")}

        problems: list[str] = []
        for label, suffix in (("default", ""), ("modcacherw", "-rw")):
            o = obs[label]
            if not o["download"].get("ran"):
                return Verdict(Status.ERROR, describe_failure(None, f"download{suffix}"), obs)
            if not o["download"]["ok"]:
                return Verdict(Status.FAIL, describe_failure(step(p, f"download{suffix}"), f"{label} download"), obs)
            if not o["verify"].get("verified"):
                s = step(p, f"verify{suffix}")
                what = describe_failure(s, f"{label} go mod verify") if not (s and s.get("ok")) else \
                    f"{label} go mod verify printed {o['verify'].get('stdout_first_line')!r}, not {VERIFIED!r}"
                problems.append(what)
            for key in ("module_dir", "go_file"):
                if key not in o["modes"]:
                    return Verdict(Status.ERROR, f"{label}: no mode recorded for {MODE_PATHS[key]} "
                                                 f"({first_line((step(p, f'modes{suffix}') or {}).get('stderr'))})",
                                   obs)
        for key in ("module_dir", "go_file"):
            mode = obs["default"]["modes"][key]
            if writable(mode):
                problems.append(f"the default cache's {MODE_PATHS[key]} is {mode}: writable, not read-only")
        rw_dir = obs["modcacherw"]["modes"]["module_dir"]
        if not int(rw_dir, 8) & 0o200:
            problems.append(f"with -modcacherw {MODE_PATHS['module_dir']} is {rw_dir}: not writable by its owner")
        rp = obs["rm_plain"]
        if rp.get("exit_code") == 0:
            problems.append("plain rm -rf of a default module cache succeeded for its non-root owner (uid 1000)")
        elif "permission denied" not in rp.get("stderr_first_line", "").lower():
            problems.append(f"plain rm -rf by uid 1000 failed without 'Permission denied': "
                            f"exit {rp.get('exit_code')}: {rp.get('stderr_first_line') or '(no stderr)'}")
        rr = obs["rm_root"]
        if rr.get("ran") and (rr.get("exit_code") != 0 or rr.get("removed") is not True):
            problems.append(f"root's plain rm -rf of a default cache: exit {rr.get('exit_code')}: "
                            f"{rr.get('stderr_first_line') or '(no stderr)'}")
        cm = obs["clean_modcache"]
        if cm.get("exit_code") != 0:
            problems.append(describe_failure(step(p, "clean-modcache"), "go clean -modcache"))
        elif cm.get("removed") is not True:
            problems.append("go clean -modcache exited 0 but the cache is still there")
        rw = obs["rm_rw"]
        if rw.get("exit_code") != 0:
            problems.append(f"plain rm -rf of a -modcacherw cache by uid 1000: exit {rw.get('exit_code')}: "
                            f"{rw.get('stderr_first_line') or '(no stderr)'}")
        elif rw.get("removed") is not True:
            problems.append("plain rm -rf of a -modcacherw cache exited 0 but the cache is still there")
        if problems:
            return Verdict(Status.FAIL, "; ".join(problems), obs)
        d, w = obs["default"]["modes"], obs["modcacherw"]["modes"]
        return Verdict(Status.PASS, f"verified; default module dir {d['module_dir']}, .go {d['go_file']}: uid 1000's "
                                    f"rm -rf fails ({rp.get('stderr_first_line')}); go clean -modcache exit 0; "
                                    f"-modcacherw dir {w['module_dir']}, .go {w['go_file']}: rm -rf exit 0", obs)

    @staticmethod
    def _concurrent(probes: Probes) -> Verdict:
        obs: dict[str, Any] = {"variant": "concurrent"}
        names = ["inproc", *(f"across.{i}" for i in range(1, REPLICAS + 1)), "verify"]
        for name in names:
            s = step(probes.get(name, {}), "copy-src")
            if s is None or not s.get("ok"):
                return Verdict(Status.ERROR, f"{name}: setup: {describe_failure(s, 'copy-src')}", obs)
        inproc = probes["inproc"]
        par = step(inproc, "parallel")
        if par is None or len(par.get("parallel") or []) != N:
            return Verdict(Status.ERROR, "inproc: the parallel step did not run all downloads", obs)
        runs = [timed_obs(r, "") for r in par["parallel"]]
        obs["in_container"] = {"n": N, "runs": runs, "failures": sum(1 for r in runs if not r["ok"]),
                               "sec": round(float(par.get("wall_sec", 0.0)), 3), "overlap_sec": overlap(runs),
                               "verify": verify_obs(step(inproc, "verify")),
                               "mode_counts": parse_counts((step(inproc, "mode-counts") or {}).get("stdout"))}
        across: list[dict[str, Any]] = []
        for i in range(1, REPLICAS + 1):
            par = step(probes[f"across.{i}"], "parallel")
            if par is None or len(par.get("parallel") or []) != PER_REPLICA:
                return Verdict(Status.ERROR, f"across.{i}: the parallel step did not run all downloads", obs)
            across += [timed_obs(r, f"across.{i}") for r in par["parallel"]]
        barrier_lines, missed = barrier_missed({f"across.{i}": probes[f"across.{i}"] for i in range(1, REPLICAS + 1)},
                                               "the downloads across containers")
        vp = probes["verify"]
        starts = [r["start"] for r in across if "start" in r]
        obs["across_containers"] = {"n": REPLICAS * PER_REPLICA, "containers": REPLICAS, "runs": across,
                                    "failures": sum(1 for r in across if not r["ok"]), "barrier_met": missed is None,
                                    "barrier": barrier_lines,
                                    "start_spread_sec": round(max(starts) - min(starts), 4) if starts else None,
                                    "overlap_sec": overlap(across, across=True),
                                    "verify": verify_obs(step(vp, "verify")),
                                    "mode_counts": parse_counts((step(vp, "mode-counts") or {}).get("stdout"))}
        obs["failures"] = obs["in_container"]["failures"] + obs["across_containers"]["failures"]

        problems: list[str] = []
        for where in ("in_container", "across_containers"):
            o = obs[where]
            failed = [r for r in o["runs"] if not r["ok"]]
            if failed:
                problems.append(f"{len(failed)} of {len(o['runs'])} concurrent downloads ({where.replace('_', ' ')}) "
                                "failed: " + "; ".join(f"{r['name']}: exit {r.get('exit_code')}: "
                                                       f"{r.get('stderr_first_line') or '(no stderr)'}"
                                                       for r in failed))
            v = o["verify"]
            if not v.get("verified"):
                problems.append(f"go mod verify after the downloads ({where.replace('_', ' ')}): exit "
                                f"{v.get('exit_code')}: {v.get('stderr_first_line') or v.get('stdout_first_line')}")
        if problems:  # a failed download or verify is a finding, whether or not the containers overlapped
            return Verdict(Status.FAIL, "; ".join(problems) + (f" (and {missed})" if missed else ""), obs)
        if missed is not None:  # as concurrent:containers: 0 failures of downloads that did not overlap decide nothing
            return Verdict(Status.ERROR, missed, obs)
        ac, ic = obs["across_containers"], obs["in_container"]
        ov = ", ".join(f"{label} {o['overlap_sec'] * 1000:.0f} ms" for label, o in (("in container", ic),
                                                                                  ("across containers", ac))
                       if o.get("overlap_sec") is not None)
        return Verdict(Status.PASS, f"{N} downloads in one container, {PER_REPLICA} in each of {REPLICAS} containers"
                                    f": 0 failures, both caches "
                                    f"verified (longest overlap of two downloads: {ov or 'not measured'})", obs)

    def detail_rows(self, cells: Sequence[CellResult]) -> Rows:
        return _modcache_rows(cells)


def answer_downloads(cells: Sequence[CellResult]) -> Answer:
    """Q20: concurrent `go mod download`s into one GOMODCACHE (one container; two containers on a volume; 16 at once
    per filesystem in the concurrent:many-<fs> cells)."""
    many = [c for c in pick(cells, "concurrent") if str(c.cell.get("variant") or "").startswith("many-")]
    basis = pick(cells, "modcache", "concurrent") + many
    t = Tally()
    for c in judged(basis):
        for part in ("in_container", "across_containers", "downloads"):
            runs = obs_of(c, part, "runs")
            if isinstance(runs, list):
                t.add(sum(1 for r in runs if not r.get("ok")), len(runs), row_of(c))

    def clean(c: CellResult) -> bool | None:
        if c.cell.get("scenario") == "concurrent":
            runs = obs_of(c, "downloads", "runs")
            if not isinstance(runs, list):
                return None
            return all(r.get("ok") for r in runs) and obs_of(c, "downloads", "verify", "verified") is True
        return not c.observations.get("failures") and obs_of(c, "in_container", "verify", "verified") is not False \
            and obs_of(c, "across_containers", "verify", "verified") is not False

    fs = sorted({str(c.cell.get("variant")).removeprefix("many-") for c in judged(many)})
    also = "also " if judged(pick(cells, "modcache", "concurrent")) else ""
    a = yes_no(basis, clean, "no download failed and `go mod verify` passed" + (f" ({also}on {', '.join(fs)})"
                                                                                if fs else ""),
               "downloads failed or verify did not pass",
               figure=rate_text(t.k, t.n, "concurrent downloads failed") if t.n else "",
               limits="4 downloads at once on a bind mount and a named volume, 16 per filesystem in many-<fs>; "
                      "one- and two-module workloads; overlap of the downloads is recorded, not forced"
               if fs else "4 downloads at once of a two-module workload, on a bind mount and a named volume; other "
                          "filesystems need the concurrent:many-<fs> cells; overlap is recorded, not forced")
    return a or Answer("value", "", tuple(basis))


def _modes(c: CellResult) -> str | None:
    d, w = obs_of(c, "default", "modes"), obs_of(c, "modcacherw", "modes")
    if not isinstance(d, dict) or not isinstance(w, dict):
        return None
    rm = "fails" if obs_of(c, "rm_plain", "ok") is False else "works"
    return (f"module dir {d.get('module_dir')}, .go files {d.get('go_file')} (plain `rm -rf` by the owner {rm}); "
            f"with -modcacherw: dir {w.get('module_dir')}, .go {w.get('go_file')}")


def answer_modes(cells: Sequence[CellResult]) -> Answer:
    """Q22: the modes of an extracted module, with and without -modcacherw, and what removing it takes."""
    basis = pick(cells, "modcache", "download")
    return by_value(basis, _modes) or Answer("value", "", tuple(basis))
