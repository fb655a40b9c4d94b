"""The options of `plan` and `run`, resolved once: matrix.toml < GCM_* environment < command line.

`resolve` is the only reader of the GCM_* selection variables. `plan`, `run` (its plan and its engine pre-check)
and the pytest plugin use the one Options value it returns; `run` hands it to pytest as JSON (`--gcm-options`) and
the plugin's controller hands it on to its xdist workers (workerinput), so no process reads the environment or the
command line a second time and every one of them plans the same cells on the same engines.

    argparse Namespace ──Given.from_args──┐
    os.environ (GCM_*) ───────────────────┼─ resolve(given, cfg) ─> Options ─to_json─> --gcm-options ─> plugin
    matrix.toml (settings, profiles) ─────┘                            │                                  │
                                                                     plan, run                workers (workerinput)
Every bad value is one UsageError (exit 2) naming the option or variable, with the fix.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runner import config as config_mod
from runner import plan, refs
from runner.errors import UsageError, did_you_mean
from runner.model import Arch, Engine

# The environment variables `resolve` reads (the command line's options win over them).
ENV = ("GCM_MATRIX", "GCM_PROFILE", "GCM_SELECT", "GCM_SKIP", "GCM_ENGINES", "GCM_ARCHES", "GCM_ENDPOINTS",
       "GCM_SHARD", "GCM_REGISTRY_MIRROR", "GCM_WORKLOAD")


def add_selection(p: argparse.ArgumentParser) -> None:
    """The options that choose cells, shared by `plan` and `run` (Given.from_args reads them back)."""
    p.add_argument("--matrix", help="matrix file (default: $GCM_MATRIX or ./matrix.toml)")
    p.add_argument("--profile", help="profile from matrix.toml (default: settings.default_profile; $GCM_PROFILE)")
    p.add_argument("--select", action="append", default=[], metavar="GLOB",
                   help="cell-id glob, e.g. 'debian-12/amd64/*'; repeatable ($GCM_SELECT, comma-separated)")
    p.add_argument("--skip", action="append", default=[], metavar="GLOB", help="cell-id glob to leave out")
    p.add_argument("--engine", action="append", default=[], choices=[e.value for e in Engine],
                   help="only this engine's cells; repeatable ($GCM_ENGINES; default: the profile's engines, with "
                        "podman standing in for docker when only podman answers)")
    p.add_argument("--arch", action="append", default=[], choices=[a.value for a in Arch],
                   help="only this arch; repeatable ($GCM_ARCHES)")
    p.add_argument("--endpoint", action="append", default=[], metavar="ARCH=URL",
                   help="run ARCH's cells natively on the engine at URL (unix://, tcp://, context:NAME); repeatable "
                        "($GCM_ENDPOINTS, comma-separated; overrides settings.endpoints)")
    p.add_argument("--distro", action="append", default=[], metavar="NAME=IMAGE_REF|NAME=rootfs:SUITE",
                   help="add a row for an image matrix.toml does not list, or try a new image for a listed NAME; "
                        "rootfs:SUITE builds the row from a debootstrap rootfs of that Debian suite instead (no "
                        "registry; e.g. debian-14=rootfs:forky); repeatable")
    p.add_argument("--registry-mirror", action="append", default=[], metavar="[REGISTRY=]HOST[:PORT][/PREFIX]",
                   help="pull docker.io images through this registry: docker.io/library/debian:12 becomes "
                        "HOST[:PORT][/PREFIX]/library/debian:12; REGISTRY=… does the same for another registry, e.g. "
                        "quay.io=HOST/quay; repeatable ($GCM_REGISTRY_MIRROR, comma-separated; each registry's "
                        "mirror overrides settings.registry_mirror's)")
    p.add_argument("--shard", metavar="I/N", help="only shard I of N, balanced by expected cost ($GCM_SHARD); "
                                                 "join the shards' results with `merge`")


@dataclass(frozen=True, kw_only=True)
class Given:
    """What the command line gave; empty or None: not given (the environment, then matrix.toml, decide)."""

    matrix: str | None = None
    profile: str | None = None
    select: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    engines: tuple[str, ...] = ()
    arches: tuple[str, ...] = ()
    endpoints: tuple[str, ...] = ()
    shard: str | None = None  # "" is a mistake (--shard=), not "not given"
    distros: tuple[str, ...] = ()
    registry_mirror: tuple[str, ...] = ()  # one --registry-mirror each: [REGISTRY=]HOST[:PORT][/PREFIX]

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Given:
        return cls(matrix=args.matrix, profile=args.profile, select=tuple(args.select), skip=tuple(args.skip),
                   engines=tuple(args.engine), arches=tuple(args.arch), endpoints=tuple(args.endpoint),
                   shard=args.shard, distros=tuple(args.distro),
                   registry_mirror=tuple(args.registry_mirror))


@dataclass(frozen=True, kw_only=True)
class Options:
    """One run's (or plan's) options, every layer applied. choices: what the user picked on top of matrix.toml
    (plan.Choices, None/empty where matrix.toml decides); profile and registry_mirror: the values in effect."""

    matrix: str
    choices: plan.Choices = field(default_factory=plan.Choices)
    profile: str
    registry_mirror: str | None = None
    workload: str | None = None  # GCM_WORKLOAD: a parity check's workload override (runner.parity)
    engines_named: bool = False  # --engine or GCM_ENGINES named the engines: no podman stand-in (engine_choice)

    def to_dict(self) -> dict[str, Any]:
        c = self.choices
        return {"matrix": self.matrix, "profile": self.profile, "registry_mirror": self.registry_mirror,
                "workload": self.workload, "engines_named": self.engines_named,
                "choices": {"profile": c.profile, "select": list(c.select), "skip": list(c.skip),
                            "engines": [e.value for e in c.engines], "arches": [a.value for a in c.arches],
                            "endpoints": {a.value: u for a, u in c.endpoints.items()},
                            "shard": list(c.shard) if c.shard else None, "distros": list(c.distros),
                            "registry_mirror": c.registry_mirror}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Options:
        c = d["choices"]
        shard = c.get("shard")
        return cls(matrix=str(d["matrix"]), profile=str(d["profile"]), registry_mirror=d.get("registry_mirror"),
                   workload=d.get("workload"), engines_named=bool(d.get("engines_named")),
                   choices=plan.Choices(
                       profile=c.get("profile"), select=tuple(c.get("select", ())), skip=tuple(c.get("skip", ())),
                       engines=tuple(Engine(e) for e in c.get("engines", ())),
                       arches=tuple(Arch(a) for a in c.get("arches", ())),
                       endpoints={Arch(a): str(u) for a, u in (c.get("endpoints") or {}).items()},
                       shard=(int(shard[0]), int(shard[1])) if shard else None, distros=tuple(c.get("distros", ())),
                       registry_mirror=c.get("registry_mirror")))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str, where: str = "--gcm-options") -> Options:
        try:
            return cls.from_dict(json.loads(text))
        except (ValueError, TypeError, KeyError, IndexError) as e:
            raise UsageError(f"{where}: not the options of `go-cache-matrix run` ({type(e).__name__}: {e})",
                             fix="run the cells with `go-cache-matrix run`, which passes them") from None


def matrix_path(given: str | None, environ: Mapping[str, str] | None = None) -> str:
    """--matrix, else $GCM_MATRIX, else ./matrix.toml."""
    env = os.environ if environ is None else environ
    return str(given or env.get("GCM_MATRIX") or "matrix.toml")


def env_engines(environ: Mapping[str, str] | None = None) -> tuple[Engine, ...]:
    """GCM_ENGINES (comma-separated engine names) -> engines; a bad name is one UsageError (exit 2)."""
    names = [e.value for e in Engine]
    out: list[Engine] = []
    for item in config_mod.env_list("GCM_ENGINES", environ):
        if item not in names:
            raw = (os.environ if environ is None else environ).get("GCM_ENGINES", "")
            raise UsageError(f"GCM_ENGINES={raw!r}: unknown engine {item!r}{did_you_mean(item, names)}",
                             fix=f"use one of: {', '.join(names)} (comma-separated), or unset GCM_ENGINES")
        out.append(Engine(item))
    return tuple(out)


def resolve(given: Given, cfg: config_mod.MatrixConfig, environ: Mapping[str, str] | None = None) -> Options:
    """The options in effect (file < env < CLI), checked against cfg: every bad value is one UsageError naming its
    option or variable."""
    env = os.environ if environ is None else environ
    workload = config_mod.env_workload(env)
    config_mod.env_share(env)  # checked here, once, with the other options; runner.share reads it per cell
    profile = given.profile or env.get("GCM_PROFILE") or None
    if profile is not None and profile not in cfg.profiles:
        where = "--profile" if given.profile else "GCM_PROFILE"
        raise UsageError(f"{where} {profile!r}: no such profile in {cfg.path}{did_you_mean(profile, cfg.profiles)}",
                         fix=f"use one of: {', '.join(cfg.profiles)}")
    select = given.select or config_mod.env_list("GCM_SELECT", env)
    skip = given.skip or config_mod.env_list("GCM_SKIP", env)
    for where, patterns in (("--select" if given.select else "GCM_SELECT", select),
                            ("--skip" if given.skip else "GCM_SKIP", skip)):
        for pattern in patterns:
            if problem := config_mod.glob_problem(pattern):
                raise UsageError(f"{where} {pattern!r}: {problem}", fix=config_mod.GLOB_FIX)
    # --arch and --engine are checked by argparse; the variables here.
    arches = tuple(Arch(a) for a in given.arches) or config_mod.env_arches(env)
    engines = tuple(Engine(e) for e in given.engines) or env_engines(env)
    seen: dict[str, str] = {}
    for spec in given.distros:
        config_mod.adhoc_distro(spec, cfg.distros)  # one clear message for a malformed spec
        name, _, ref = spec.partition("=")
        if seen.get(name, ref) != ref:
            raise UsageError(f"--distro {name}: given twice, as {seen[name]!r} and {ref!r}",
                             fix=f"pass one --distro {name}=IMAGE_REF (or {name}=rootfs:SUITE) per run")
        seen[name] = ref
    shard = given.shard if given.shard is not None else (env.get("GCM_SHARD") or None)
    # Per registry: the environment's mirrors, then each --registry-mirror (a later one for the same registry wins).
    mirror = refs.merge_mirrors(
        config_mod.parse_registry_mirror(env.get("GCM_REGISTRY_MIRROR"), "GCM_REGISTRY_MIRROR"),
        *(config_mod.parse_registry_mirror(m, f"--registry-mirror {m!r}") for m in given.registry_mirror))
    choices = plan.Choices(
        profile=profile,
        select=select,
        skip=skip,
        engines=engines,
        arches=arches,
        endpoints=config_mod.parse_endpoint_args(given.endpoints or config_mod.env_list("GCM_ENDPOINTS", env),
                                                 "--endpoint/GCM_ENDPOINTS"),
        shard=plan.parse_shard(shard) if shard is not None else None,
        distros=given.distros,
        registry_mirror=mirror,
    )
    return Options(matrix=matrix_path(given.matrix, env), choices=choices,
                   profile=profile or cfg.settings.default_profile,
                   registry_mirror=refs.merge_mirrors(cfg.settings.registry_mirror, mirror), workload=workload,
                   engines_named=bool(engines))
