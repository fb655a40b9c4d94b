"""The scenario registry: one line per scenario, and the only place that lists them.

Each `Entry` names the scenario, the class that implements it ("module:Class" under runner.scenarios, imported
only when a run or a report needs it) and what matrix.toml is checked against without importing that class:
its variants, whether it runs with a release's own Go package, and the guest modes it runs in. runner.config
reads this catalogue; runner.scenarios.registry() loads the implementations from it; the Markdown and HTML
reports ask those implementations for their detail tables.

Adding a scenario: its module (a runner.scenarios.base.Scenario subclass), one ENTRIES line here, and its
[scenarios.<id>] table in matrix.toml. tests/unit/test_scenario_registry.py checks that they agree.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

# Where a scenario's variants come from when it does not list them itself.
VariantsFrom = Literal["", "workloads", "distros"]


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One scenario as the registry knows it.

    variants: the variants the implementation knows; with variants_from = "workloads" they are the
    [workloads.*] of matrix.toml (cold-warm), with "distros" they are "binary" and "from-<distro id>"
    (portability). distro_go: it can run with toolchain = "distro". guest_modes: the guest VMs it runs in
    (runner.guest), e.g. ("selinux",); () runs on the host's engines only. guest_only: it runs on the guest
    engine alone (it needs the guest's kernel or init), so the plan gives it no cell on a host engine. matrix:
    False for a scenario that only `bench` runs, which matrix.toml does not list.
    """

    id: str
    impl: str
    variants: tuple[str, ...] = ()
    variants_from: VariantsFrom = ""
    distro_go: bool = False
    guest_modes: tuple[str, ...] = ()
    guest_only: bool = False
    matrix: bool = True

    def load(self) -> Any:
        """A fresh instance of the implementation (a runner.scenarios.base.Scenario)."""
        module, _, cls = self.impl.partition(":")
        return getattr(importlib.import_module(f"runner.scenarios.{module}"), cls)()

    def knows_variant(self, variant: str, workloads: Collection[str], distros: Collection[str]) -> bool:
        if self.variants_from == "workloads":
            return variant in workloads
        if self.variants_from == "distros":
            return variant == "binary" or (variant.startswith("from-") and variant[5:] in distros)
        return variant in self.variants


ENTRIES: tuple[Entry, ...] = (
    Entry(id="env", impl="env:Env", distro_go=True),
    Entry(id="cold-warm", impl="coldwarm:ColdWarm", variants_from="workloads", distro_go=True),
    Entry(id="location", impl="location:Location",
          variants=("home-unset", "home-unset-xdg", "xdg-relative", "gocache-relative", "gocache-off",
                    "uid-home-root", "gocache-absolute")),
    Entry(id="storage", impl="storage:Storage",
          variants=("overlay", "bind", "volume", "tmpfs", "baked", "baked-aged", "full")),
    Entry(id="filesystem", impl="storage:Filesystem", variants=("ext4", "xfs", "btrfs")),
    Entry(id="readonly", impl="readonly:ReadOnly", variants=("fresh", "stale", "missing")),
    Entry(id="tmpfs-goroot", impl="tmpfs:TmpfsGoroot"),
    Entry(id="portability", impl="portability:Portability", variants_from="distros"),
    Entry(id="remote", impl="remote:Remote"),
    Entry(id="multiuser", impl="multiuser:MultiUser", variants=("umask-002", "umask-022")),
    Entry(id="concurrent", impl="concurrent:Concurrent",
          variants=("same", "mixed", "containers", "clean-during", "many-ext4", "many-xfs", "many-btrfs", "many-tmpfs",
                    "many-overlay")),
    Entry(id="modcache", impl="modcache:ModCache", variants=("download", "concurrent")),
    Entry(id="buildkit", impl="buildkit:Buildkit",
          variants=("rebuild", "shared", "locked", "private", "nonroot", "cross-arch", "prune", "no-cache")),
    Entry(id="selinux", impl="selinux:Selinux", guest_modes=("selinux",),
          variants=("bind", "bind-z", "bind-Z", "bind-Z-reused", "bind-z-reused", "label-disable", "volume",
                    "build-cache-mount")),
    Entry(id="systemd", impl="systemd:Systemd", guest_modes=("systemd",), guest_only=True,
          variants=("root", "user-nohome", "dynamic", "dynamic-cachedir")),
    Entry(id="se-host", impl="sehost:SeHost", guest_modes=("selinux",), guest_only=True,
          variants=("root", "user_u", "staff_u", "user_u-fcontext")),
    Entry(id="nfs", impl="nfs:Nfs", guest_modes=("nfs",), guest_only=True, variants=("v4.2", "v3", "v3-nolock")),
    Entry(id="apparmor", impl="apparmor:Apparmor", guest_modes=("apparmor",), guest_only=True,
          variants=("root", "user", "profile", "profile-rw", "podman")),
    Entry(id="bench-steps", impl="bench:BenchSteps", matrix=False),
    Entry(id="toolchain", impl="toolchain:Toolchain", distro_go=True,
          variants=("default", "local", "auto", "auto-unserved", "path", "path-found")),
    Entry(id="keying", impl="keying:Keying"),
    Entry(id="mixed-go", impl="mixedgo:MixedGo"),
    Entry(id="static-binary", impl="binary:StaticBinary", variants_from="distros"),
    Entry(id="ci-restore", impl="restore:CiRestore"),
    Entry(id="offline-proxy", impl="proxy:OfflineProxy"),
)

BY_ID: dict[str, Entry] = {e.id: e for e in ENTRIES}


def entry(scenario_id: str) -> Entry:
    return BY_ID[scenario_id]


def variants(scenario_id: str) -> tuple[str, ...]:
    """The variants a scenario lists here (modules with a variant table of their own are checked against it)."""
    return BY_ID[scenario_id].variants


def matrix_ids() -> tuple[str, ...]:
    """The scenarios matrix.toml may name, in registry order."""
    return tuple(e.id for e in ENTRIES if e.matrix)


def distro_go_ids() -> tuple[str, ...]:
    """The scenarios that can run with toolchain = "distro" (the release's own Go package)."""
    return tuple(e.id for e in ENTRIES if e.matrix and e.distro_go)


def runs_in_guest(scenario_id: str) -> bool:
    """Whether a guest VM engine (runner.guest) runs this scenario at all."""
    return scenario_id in BY_ID and bool(BY_ID[scenario_id].guest_modes)


def guest_only(scenario_id: str) -> bool:
    """Whether only the guest engine runs this scenario (no cell on docker or podman)."""
    return scenario_id in BY_ID and BY_ID[scenario_id].guest_only
