"""Pure planning: matrix config + choices -> ordered cells. No engine, no I/O.

    profile axes ──expand──> cells ──excludes──> ──select/skip globs──> ──order (costly first)──> plan

`host_arch` is an input (not read here) so the plan is reproducible for any host in tests.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import heapq
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from runner.config import MatrixConfig, Profile, adhoc_distro, item_distro, picks, split_item
from runner.errors import NothingSelected, UsageError, did_you_mean
from runner.model import GUEST_ARCHES, GUEST_DISTROS, Arch, Cell, Engine, Status
from runner.scenarios import catalogue, registry


@dataclass(frozen=True, kw_only=True)
class Choices:
    """What the user picked on top of matrix.toml (already merged env < CLI)."""

    profile: str | None = None
    select: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    engines: tuple[Engine, ...] = ()
    arches: tuple[Arch, ...] = ()
    endpoints: Mapping[Arch, str] = field(default_factory=dict)  # override settings.endpoints per arch
    shard: tuple[int, int] | None = None  # (index from 1, count)
    distros: tuple[str, ...] = ()  # ad-hoc rows, NAME=IMAGE_REF (config.adhoc_distro)
    registry_mirror: str | None = None  # overrides settings.registry_mirror (refs.rewrite)


def _pick(names: Sequence[str], patterns: Sequence[str]) -> list[str]:
    """The names some pattern matches and no "!pattern" does (a profile's `distros = ["*", "!rhel-9"]`)."""
    return [n for n in names if picks(patterns, n)]


def _profile_arches(profile: Profile, host_arch: Arch) -> list[Arch]:
    out: list[Arch] = []
    for a in profile.arches:
        arch = host_arch if a == "native" else Arch(a)
        if arch not in out:
            out.append(arch)
    return out


def is_timing(scenario_id: str) -> bool:
    """Timing scenarios (runner.slot) measure alone; under QEMU a profile may keep them to a few rows."""
    return scenario_id in _timing_ids()


@functools.cache
def _timing_ids() -> frozenset[str]:
    """`timing` is a class attribute: read once, not per cell (estimates over large profiles ask per cell)."""
    return frozenset(sid for sid, impl in registry().items() if impl.timing)


def expand(cfg: MatrixConfig, profile: Profile, *, host_arch: Arch, engines: Sequence[Engine],
           endpoints: Mapping[Arch, str] | None = None) -> list[Cell]:
    """endpoints: arches routed to another engine, whose machine runs them natively (checked at run time)."""
    cells: list[Cell] = []
    endpoints = endpoints or {}
    factor = cfg.settings.emulation_factor
    for distro_id in _pick(list(cfg.distros), profile.distros):
        distro = cfg.distros[distro_id]
        for arch in _profile_arches(profile, host_arch):
            if arch not in distro.arches and distro.unsupported_reason(arch) is None:
                continue
            emulated = arch is not host_arch and arch not in endpoints
            for engine in engines:
                for tc_id in _pick(list(cfg.toolchains), profile.toolchains):
                    for item in profile.scenarios:
                        sid, only_variant, only_tc = split_item(item)
                        if only_tc and tc_id != only_tc:
                            continue  # the profile keeps this item to one toolchain ("<scenario>@<toolchain>")
                        if (only_distro := item_distro(item)) and distro_id != only_distro:
                            continue  # ... and to one row ("<scenario>@<distro>@<toolchain>")
                        scenario = cfg.scenarios[sid]
                        if cfg.toolchains[tc_id].scenarios and sid not in cfg.toolchains[tc_id].scenarios:
                            continue  # not run with this toolchain (toolchains.*.scenarios in matrix.toml)
                        if engine.is_guest and not (catalogue.runs_in_guest(sid) and distro_id in GUEST_DISTROS
                                                    and arch in GUEST_ARCHES):
                            continue  # the SELinux guest VM runs only what needs it (guest_modes, model.GUEST_*)
                        if not engine.is_guest and catalogue.guest_only(sid):
                            continue  # needs the guest's kernel or init (catalogue: guest_only)
                        if emulated and not scenario.emulated and not profile.emulate_all:
                            continue  # too slow or meaningless under QEMU by default (scenarios.*.emulated)
                        if emulated and is_timing(sid) and not profile.times_emulated(distro_id, tc_id):
                            continue  # one row measures the QEMU factor (profiles.*.emulated_timing)
                        variants: Sequence[str | None] = scenario.variants or [None]
                        for variant in variants:
                            if only_variant and variant != only_variant:
                                continue
                            workload = cfg.workloads.get(variant) if variant else None
                            if emulated and workload is not None and not workload.emulated and not profile.emulate_all:
                                continue  # too slow under QEMU by default (matrix.toml workloads.*.emulated)
                            reason = distro.unsupported_reason(arch)
                            cost = scenario.cost * (workload.cost if workload else 1.0) * (factor if emulated else 1.0)
                            cells.append(Cell(
                                distro=distro, arch=arch, engine=engine, toolchain=cfg.toolchains[tc_id],
                                scenario=sid, variant=variant, emulated=emulated,
                                preset=(Status.NA, reason) if reason else None,
                                cost=0.0 if reason else cost, endpoint=endpoints.get(arch),
                            ))
    # A profile may name "cold-warm" and "cold-warm:small": keep one of each id, first wins.
    seen: dict[str, Cell] = {}
    for c in cells:
        seen.setdefault(c.id, c)
    return list(seen.values())


def apply_excludes(cfg: MatrixConfig, cells: Sequence[Cell]) -> list[Cell]:
    return [c for c in cells if not any(fnmatch.fnmatchcase(c.id, r.cells) for r in cfg.excludes)]


def select(cells: Sequence[Cell], patterns: Sequence[str], skip: Sequence[str]) -> list[Cell]:
    for p in (*patterns, *skip):
        if not p or p.count("[") != p.count("]"):
            raise UsageError(f"bad cell glob {p!r}", fix="use * ? and [..] like 'debian-12/amd64/*'")
    out = list(cells)
    if patterns:
        for p in patterns:
            if not any(fnmatch.fnmatchcase(c.id, p) for c in out):
                hint = _segment_hint(p, out)
                raise NothingSelected(
                    f"--select {p!r} matches no cell of the plan{hint}",
                    fix="list the cell ids with `go-cache-matrix plan`; ids look like "
                        "'debian-12/amd64/docker/go1.22/cold-warm:small'",
                )
        out = [c for c in out if any(fnmatch.fnmatchcase(c.id, p) for p in patterns)]
    out = [c for c in out if not any(fnmatch.fnmatchcase(c.id, p) for p in skip)]
    if not out:
        raise NothingSelected("the selection leaves no cell to run",
                              fix="loosen --select/--skip; `go-cache-matrix plan` lists the cells")
    return out


def _segment_hint(pattern: str, cells: Sequence[Cell]) -> str:
    """Point at the first literal id segment that no cell has: 'debain-12/*' -> did you mean 'debian-12'?"""
    for i, seg in enumerate(pattern.split("/")):
        if any(ch in seg for ch in "*?["):
            continue
        values = {c.id.split("/")[i] for c in cells if len(c.id.split("/")) > i}
        if seg not in values:
            return f" (no cell has {seg!r} there{did_you_mean(seg, values).replace(' (', '; ').rstrip(')')})"
    return ""


_SHARD = re.compile(r"([0-9]+)/([0-9]+)\Z")


def order(cells: Sequence[Cell]) -> list[Cell]:
    """Costly cells first so parallel workers do not end on one long emulated cell; ties by id."""
    return sorted(cells, key=lambda c: (-c.cost, c.id))


MAX_SHARDS = 1000  # more shards than any matrix has cells; shard() keeps one load per shard


def parse_shard(text: str) -> tuple[int, int]:
    m = _SHARD.match(text)  # ASCII digits only: str.isdigit() also takes '²', which int() refuses
    # Digits are counted before int(): a 5000-digit number is a ValueError of int() itself, a huge N a huge list.
    digits = [g.lstrip("0") or "0" for g in m.groups()] if m else []
    if digits and len(digits[1]) <= len(str(MAX_SHARDS)) < len(digits[0]):
        digits[0] = str(MAX_SHARDS + 1)  # I has more digits than N can have: I > N, said as such below
    if digits and (len(digits[1]) > len(str(MAX_SHARDS)) or int(digits[1]) > MAX_SHARDS):
        text = text if len(text) <= 40 else text[:37] + "..."
        raise UsageError(f"--shard {text!r}: N is more than {MAX_SHARDS} shards",
                         fix=f"split into at most {MAX_SHARDS} shards, e.g. --shard 1/3")
    index, count = (int(digits[0]), int(digits[1])) if digits else (0, 0)
    text = text if len(text) <= 40 else text[:37] + "..."
    if not (m and 1 <= index <= count):
        raise UsageError(f"--shard {text!r} is not I/N with 1 <= I <= N",
                         fix="e.g. --shard 1/3, --shard 2/3, --shard 3/3")
    return index, count


def shards(cells: Sequence[Cell], count: int) -> list[list[Cell]]:
    """All `count` shards in one pass: greedy by expected cost (largest first onto the lightest shard, the lower
    index on a tie), with a heap of (load, shard) so that `plan --fit-minutes` over a large profile does not
    repeat the split once per shard.

    Deterministic for the same plan, so N runners given the same inputs split it without talking.
    """
    out: list[list[Cell]] = [[] for _ in range(count)]
    heap = [(0.0, j) for j in range(count)]  # sorted, so already a heap
    for c in sorted(cells, key=lambda c: (-c.cost, c.id)):
        load, k = heapq.heappop(heap)
        out[k].append(c)
        heapq.heappush(heap, (load + (c.cost if c.cost > 0 else 0.01), k))  # preset cells are cheap, not free
    return out


def shard(cells: Sequence[Cell], index: int, count: int) -> list[Cell]:
    """Shard `index` (from 1) of `count` (see shards)."""
    return shards(cells, count)[index - 1]


def build_plan(cfg: MatrixConfig, choices: Choices, *, host_arch: Arch) -> list[Cell]:
    cells = _unsharded(cfg, choices, host_arch=host_arch)
    if choices.shard:
        i, n = choices.shard
        cells = shard(cells, i, n)
        if not cells:
            raise NothingSelected(f"shard {i}/{n} gets no cell: the selection has fewer cells than shards",
                                  fix="use fewer shards, or select more cells")
    return order(cells)


def unit_basis(cfg: MatrixConfig, choices: Choices, cells: Sequence[Cell], *, host_arch: Arch) -> Sequence[Cell]:
    """The cells whose measured times give this selection's seconds per cost unit (durations.estimate): `cells`
    themselves, or for a shard of a plan the whole plan, so that `plan --shard` and the shard's run agree."""
    return _unsharded(cfg, choices, host_arch=host_arch) if choices.shard else cells


def plan_hash(cfg: MatrixConfig, choices: Choices, *, host_arch: Arch) -> str:
    """What a shard split depends on: the whole ordered plan before sharding (ids and expected costs, which the
    host arch changes through the emulation factor) and the shard count. Shards of one split share it."""
    cells = order(_unsharded(cfg, choices, host_arch=host_arch))
    spec = {"cells": [[c.id, round(c.cost, 6)] for c in cells],
            "shards": choices.shard[1] if choices.shard else None}
    return hashlib.sha256(json.dumps(spec, separators=(",", ":")).encode()).hexdigest()[:16]


def _unsharded(cfg: MatrixConfig, choices: Choices, *, host_arch: Arch) -> list[Cell]:
    name = choices.profile or cfg.settings.default_profile
    if name not in cfg.profiles:
        raise UsageError(f"unknown profile {name!r}{did_you_mean(name, cfg.profiles)}",
                         fix=f"profiles in {cfg.path}: {', '.join(cfg.profiles)}")
    if choices.distros:
        extra = {d.id: d for d in (adhoc_distro(s, cfg.distros) for s in choices.distros)}
        profile = cfg.profiles[name]
        # --distro NAME=… asks for that row: a "!pattern" of the profile that leaves it out does not apply.
        kept = tuple(p for p in profile.distros
                     if not (p.startswith("!") and any(fnmatch.fnmatchcase(i, p[1:]) for i in extra)))
        adhoc = tuple(i for i in extra if not _pick([i], kept))
        cfg = replace(cfg, distros={**cfg.distros, **extra},
                      profiles={**cfg.profiles, name: replace(profile, distros=kept + adhoc)})
    engines = choices.engines or cfg.profiles[name].engines or cfg.settings.engines
    endpoints = {**cfg.settings.endpoints, **choices.endpoints}
    cells = expand(cfg, cfg.profiles[name], host_arch=host_arch, engines=engines, endpoints=endpoints)
    if choices.arches:
        cells = [c for c in cells if c.arch in choices.arches]
    return select(apply_excludes(cfg, cells), choices.select, choices.skip)


def left_out_under_qemu(cfg: MatrixConfig, profile_name: str, cells: Sequence[Cell]) -> dict[str, str]:
    """What this plan's emulated arch does not run, with matrix.toml's reason: {"scenario filesystem": "..."}.
    Empty when no cell is emulated or the profile emulates everything."""
    profile = cfg.profiles.get(profile_name)
    if profile is None or profile.emulate_all or not any(c.emulated for c in cells):
        return {}
    out: dict[str, str] = {}
    for item in profile.scenarios:
        sid, variant, _ = split_item(item)
        sc = cfg.scenarios[sid]
        if not sc.emulated:
            out[f"scenario {sid}"] = sc.native_because or "scenarios.*.emulated = false"
            continue
        for v in (variant,) if variant else sc.variants:
            w = cfg.workloads.get(v)
            if w is not None and not w.emulated:
                out[f"workload {v}"] = w.native_because or "workloads.*.emulated = false"
    if profile.emulated_timing is not None:
        rows = ", ".join(profile.emulated_timing) or "no row"
        out["timing cells"] = f"under QEMU only on {rows} (profiles.{profile_name}.emulated_timing): the QEMU factor " \
                              "needs one emulated cold build per arch and toolchain measured; `full` measures every " \
                              "row's"
    return out


def kept_to(cfg: MatrixConfig, profile_name: str, cells: Sequence[Cell]) -> dict[str, str]:
    """The profile's items kept to a row or a toolchain ("tmpfs-goroot@debian-12@go1.27") that gave a cell of this
    plan, and where they ran: {"tmpfs-goroot": "on debian-12 with go1.27"}. The table's rows would otherwise differ
    by a cell with nothing to say why."""
    profile = cfg.profiles.get(profile_name)
    if profile is None:
        return {}
    planned = {(c.scenario, c.variant or "") for c in cells if c.preset is None}
    items = [split_item(i) + (item_distro(i),) for i in profile.scenarios]
    # An item with no @ runs everywhere what it names: a restricted item it covers keeps nothing to one row.
    free = {(sid, variant) for sid, variant, only_tc, _ in items if not only_tc}
    out: dict[str, list[str]] = {}
    for sid, variant, only_tc, row in items:
        if not only_tc or (sid, "") in free or (sid, variant) in free:
            continue
        if not any(s == sid and variant in ("", v) for s, v in planned):
            continue
        out.setdefault(f"{sid}:{variant}" if variant else sid, []).append((f"on {row} " if row else "")
                                                                          + f"with {only_tc}")
    return {k: "; ".join(v) for k, v in out.items()}


def plan_to_dict(cells: Sequence[Cell], *, host_arch: Arch, profile: str,
                 plan_hash: str | None = None) -> dict[str, object]:
    """plan_hash: from plan_hash(); merge warns when shards' hashes differ (they were split differently)."""
    out: dict[str, object] = {"host_arch": host_arch.value, "profile": profile, "count": len(cells),
                              "cells": [c.to_dict() for c in cells]}
    if plan_hash is not None:
        out["hash"] = plan_hash
    return out
