"""The scenario registry is the one place scenarios are listed, and every scenario keeps its contract.

Adding a scenario is its module, one line in runner/scenarios/catalogue.py and its [scenarios.<id>] table in
matrix.toml; these tests say what else would have to agree, so nothing is left to remember.
"""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args

import pytest

from runner import config
from runner.model import Status
from runner.results import CellResult
from runner.scenarios import WORKLOAD_CHOICES, catalogue, registry
from runner.scenarios.base import Needs, Scenario

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "runner"
MATRIX = ROOT / "matrix.toml"
IMPLS = registry()
IN_MATRIX = [e.id for e in catalogue.ENTRIES if e.matrix]
# Hooks the runner reads: a getattr/hasattr on any of these names means a scenario's hook is read around the
# base class (runner.scenarios.base), where its default lives.
HOOKS = {name for name in vars(Scenario) if not name.startswith("_")} | {"id"}
# Literal lists of scenario ids that are data, not a registry: (path, function) -> why.
NOT_A_REGISTRY = {
    ("runner/host.py", "fingerprint"): "the host's LSM modes (selinux, apparmor), named like two scenarios",
    ("runner/bench.py", "synthetic_config"): "a matrix.toml written as a dict (10,000 cells for the plan benchmark): "
                                             "its scenarios are picked, like a profile's, and the registry checks them",
}


def test_each_entry_loads_a_scenario_with_its_own_id() -> None:
    assert list(IMPLS) == [e.id for e in catalogue.ENTRIES]
    assert len(set(IMPLS)) == len(catalogue.ENTRIES), "an id is registered twice"
    for sid, impl in IMPLS.items():
        assert isinstance(impl, Scenario), f"{sid}: {type(impl).__name__} is not a runner.scenarios.base.Scenario"
        assert impl.id == sid


@pytest.mark.parametrize("sid", list(IMPLS))
def test_every_scenario_implements_the_protocol(sid: str) -> None:
    impl, cls = IMPLS[sid], type(IMPLS[sid])
    if impl.guest_modes:
        assert cls.guest_verdict is not Scenario.guest_verdict, f"{sid}: runs in a guest mode, no guest_verdict()"
    if not catalogue.guest_only(sid):
        assert cls.evaluate is not Scenario.evaluate, f"{sid}: no evaluate()"
        assert cls.phases is not Scenario.phases, f"{sid}: no phases()"
    for name, base in vars(Scenario).items():
        if name.startswith("_") or not callable(base) or isinstance(base, property):
            continue
        own = getattr(cls, name)
        want = [p for p in inspect.signature(base).parameters if p != "self"]
        got = [p for p in inspect.signature(own).parameters if p != "self"]
        assert got == want, f"{sid}.{name}{tuple(got)}: the base class declares {name}{tuple(want)}"
    for flag in ("compares_upstream", "needs_switch", "timing", "shares_container"):
        assert isinstance(getattr(impl, flag), bool), f"{sid}.{flag} is not a bool"
    assert impl.workload is None or impl.workload in WORKLOAD_CHOICES
    assert impl.needs in get_args(Needs)
    assert isinstance(impl.guest_modes, tuple) and all(isinstance(m, str) for m in impl.guest_modes)
    assert isinstance(impl.variants, tuple) and isinstance(impl.distro_go, bool)
    if impl.workload is not None:
        assert cls.parity is not Scenario.parity, f"{sid} declares a cheap workload but no parity() to check it by"


def _result(sid: str, status: Status = Status.PASS, observations: dict[str, Any] | None = None) -> CellResult:
    cell = {"id": f"debian-12/amd64/docker/go1.22/{sid}", "distro": "debian-12", "distro_name": "Debian",
            "release": "12", "arch": "amd64", "engine": "docker", "toolchain": "go1.22", "scenario": sid,
            "variant": None}
    return CellResult(cell=cell, status=status, reason="why", observations=observations or {})


@pytest.mark.parametrize("sid", IN_MATRIX)
def test_every_scenario_has_its_detail_table(sid: str) -> None:
    impl = IMPLS[sid]
    assert type(impl).detail_rows is not Scenario.detail_rows, f"{sid}: no detail_rows(); the report needs them"
    assert impl.title and not impl.title.endswith("."), f"{sid}: a title, one sentence without its full stop"
    # A cell that recorded nothing (an error before the first step) still gets a row, as wide as the headers.
    for status in (Status.PASS, Status.ERROR):
        headers, rows = impl.detail_rows([_result(sid, status)])
        assert headers[:4] == ["distro", "arch", "builder" if sid == "buildkit" else "engine", "toolchain"]
        assert headers[-1] == "status" and len(rows) == 1 and len(rows[0]) == len(headers)
    assert impl.detail_title([]).startswith(impl.title)


def test_every_variant_in_matrix_toml_is_known() -> None:
    cfg = config.load(MATRIX)  # config checks variants against the catalogue; check its answer independently
    assert set(cfg.scenarios) == set(IN_MATRIX), "matrix.toml and the registry list different scenarios"
    for sid, declared in cfg.scenarios.items():
        e = catalogue.entry(sid)
        unknown = [v for v in declared.variants if not e.knows_variant(v, cfg.workloads, cfg.distros)]
        assert not unknown, f"matrix.toml [scenarios.{sid}] names variants {sid} does not know: {unknown}"
    for name, profile in cfg.profiles.items():
        for item in profile.scenarios:
            sid, variant, toolchain = config.split_item(item)
            assert sid in IN_MATRIX, f"profile {name}: {sid}"
            assert not toolchain or toolchain in cfg.toolchains, f"profile {name}: {item}"
            assert not variant or variant in cfg.scenarios[sid].variants, f"profile {name}: {item}"


def test_variant_tables_in_modules_agree_with_the_registry() -> None:
    """Modules whose variants are the keys of a table of cases keep that table; the registry line must match it."""
    from runner.scenarios import (
        buildkit,
        concurrent,
        location,
        modcache,
        multiuser,
        readonly,
        selinux,
        storage,
        toolchain,
    )

    assert tuple(location.CASES) == catalogue.variants("location")
    assert tuple(storage.BACKENDS) == catalogue.variants("storage")
    assert catalogue.variants("filesystem") == storage.FILESYSTEMS
    assert tuple(selinux.CASES) == selinux.VARIANTS == catalogue.variants("selinux")
    for sid, module in (("buildkit", buildkit), ("concurrent", concurrent), ("modcache", modcache),
                        ("multiuser", multiuser), ("readonly", readonly), ("toolchain", toolchain)):
        assert catalogue.variants(sid) == module.VARIANTS
    for e in catalogue.ENTRIES:
        assert not (e.variants and e.variants_from), f"{e.id}: variants listed and taken from {e.variants_from}"


def test_guest_and_distro_go_come_from_the_registry() -> None:
    assert tuple(e.id for e in catalogue.ENTRIES if e.matrix and e.distro_go) == config.DISTRO_GO_SCENARIOS
    assert tuple(IN_MATRIX) == config.KNOWN_SCENARIOS
    from runner import lab
    from runner.guest import MODES, mode_of

    guest = [sid for sid in IMPLS if catalogue.runs_in_guest(sid)]
    assert guest[0] == "selinux" and set(guest[1:]) <= set(lab.CASES)
    for sid in guest:
        assert mode_of(sid).name in MODES
        if sid != "selinux":
            assert catalogue.guest_only(sid) and catalogue.variants(sid) == tuple(c.variant for c in lab.CASES[sid])


def test_config_imports_no_scenario_implementation() -> None:
    """config reads the catalogue only: no cycle config -> scenarios -> ... -> config, and a fast `plan`."""
    code = ("import sys, runner.config; print(' '.join(sorted(m for m in sys.modules "
            "if m.startswith('runner.scenarios'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["runner.scenarios", "runner.scenarios.catalogue"]


def _literal_strings(node: ast.AST) -> list[str]:
    items: list[ast.expr | None] = []
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        items = list(node.elts)
    elif isinstance(node, ast.Dict):
        items = list(node.keys)
    return [i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)]


def test_no_module_but_the_registry_lists_scenarios() -> None:
    """A literal tuple, list, set or dict naming two or more scenario ids outside the catalogue is a second
    registry that would have to be kept in step; and a getattr/hasattr of a hook reads around its default."""
    ids = set(IMPLS)
    found = []
    for path in sorted(RUNNER.rglob("*.py")):
        if path == RUNNER / "scenarios" / "catalogue.py":
            continue
        rel = path.relative_to(ROOT)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        exempt = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
                  and (str(rel), f.name) in NOT_A_REGISTRY for n in ast.walk(f)}
        for node in ast.walk(tree):
            named = sorted(set(_literal_strings(node)) & ids)
            if len(named) >= 2 and id(node) not in exempt:
                found.append(f"{rel}:{node.lineno}: lists scenarios {named}")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("getattr", "hasattr") and len(node.args) >= 2
                    and isinstance(node.args[1], ast.Constant) and node.args[1].value in HOOKS):
                found.append(f"{rel}:{node.lineno}: {node.func.id}(…, {node.args[1].value!r}): use the hook")
    assert not found, "\n".join(found)
