"""Issue 17 item 5: options resolved once (matrix.toml < GCM_* < command line) into one value that `plan`, `run`'s
engine pre-check and the pytest plugin (its workers too) share."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from runner import cli, config, options, plan, pytest_plugin
from runner.engine import SdkDriver
from runner.errors import EngineUnavailable, UsageError
from runner.model import Arch, Engine
from runner.options import Given, Options

ROOT = Path(__file__).resolve().parents[2]
MATRIX = str(ROOT / "matrix.toml")
SELECT = "debian-12/amd64/*/go1.22/env"


@pytest.fixture(scope="module")
def cfg() -> config.MatrixConfig:
    return config.load(MATRIX)


@pytest.fixture(autouse=True)
def _no_gcm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in options.ENV:
        monkeypatch.delenv(var, raising=False)


def _mirrored(cfg: config.MatrixConfig, mirror: str | None) -> config.MatrixConfig:
    return dataclasses.replace(cfg, settings=dataclasses.replace(cfg.settings, registry_mirror=mirror))


def test_the_file_decides_what_nothing_else_names(cfg: config.MatrixConfig) -> None:
    got = options.resolve(Given(), _mirrored(cfg, "file.example:5000"), {})
    assert (got.matrix, got.profile, got.registry_mirror) == ("matrix.toml", cfg.settings.default_profile,
                                                              "file.example:5000")
    assert got.choices == plan.Choices() and not got.engines_named and got.workload is None


def test_the_environment_wins_over_the_file(cfg: config.MatrixConfig) -> None:
    env = {"GCM_MATRIX": "m.toml", "GCM_PROFILE": "smoke", "GCM_SELECT": "a/*, b/*", "GCM_SKIP": "c/*",
           "GCM_ENGINES": "podman", "GCM_ARCHES": "arm64", "GCM_ENDPOINTS": "arm64=unix:///a.sock",
           "GCM_SHARD": "2/3", "GCM_REGISTRY_MIRROR": "env.example:5000", "GCM_WORKLOAD": "small"}
    got = options.resolve(Given(), _mirrored(cfg, "file.example:5000"), env)
    assert (got.matrix, got.profile, got.registry_mirror, got.workload) == ("m.toml", "smoke", "env.example:5000",
                                                                            "small")
    assert got.choices == plan.Choices(profile="smoke", select=("a/*", "b/*"), skip=("c/*",), engines=(Engine.PODMAN,),
                                       arches=(Arch.ARM64,), endpoints={Arch.ARM64: "unix:///a.sock"}, shard=(2, 3),
                                       registry_mirror="env.example:5000")
    assert got.engines_named


def test_the_command_line_wins_over_the_environment(cfg: config.MatrixConfig) -> None:
    env = {"GCM_MATRIX": "m.toml", "GCM_PROFILE": "smoke", "GCM_SELECT": "a/*", "GCM_SKIP": "c/*",
           "GCM_ENGINES": "podman", "GCM_ARCHES": "arm64", "GCM_ENDPOINTS": "arm64=unix:///a.sock",
           "GCM_SHARD": "2/3", "GCM_REGISTRY_MIRROR": "env.example:5000"}
    given = Given(matrix="cli.toml", profile="full", select=("x/*",), skip=("y/*",), engines=("docker",),
                  arches=("amd64",), endpoints=("amd64=unix:///b.sock",), shard="1/2",
                  registry_mirror=("cli.example:5000",))
    got = options.resolve(given, _mirrored(cfg, "file.example:5000"), env)
    assert (got.matrix, got.profile, got.registry_mirror) == ("cli.toml", "full", "cli.example:5000")
    assert got.choices == plan.Choices(profile="full", select=("x/*",), skip=("y/*",), engines=(Engine.DOCKER,),
                                       arches=(Arch.AMD64,), endpoints={Arch.AMD64: "unix:///b.sock"}, shard=(1, 2),
                                       registry_mirror="cli.example:5000")


@pytest.mark.parametrize("env, named", [({"GCM_ENGINES": "podmn"}, "GCM_ENGINES='podmn': unknown engine 'podmn' "
                                                                   "(did you mean 'podman'?)"),
                                        ({"GCM_PROFILE": "nightly"}, "GCM_PROFILE 'nightly'"),
                                        ({"GCM_WORKLOAD": "huge"}, "GCM_WORKLOAD='huge'"),
                                        ({"GCM_SHARE_CONTAINERS": "no"}, "GCM_SHARE_CONTAINERS='no': expected 0 or 1"),
                                        ({"GCM_SHARD": "0/2"}, "--shard '0/2'")])
def test_a_bad_variable_is_one_usage_error_naming_it(cfg: config.MatrixConfig, env: dict[str, str],
                                                     named: str) -> None:
    with pytest.raises(UsageError) as e:
        options.resolve(Given(), cfg, env)
    assert named in str(e.value) and e.value.fix and e.value.exit_code == 2


def test_options_survive_json(cfg: config.MatrixConfig) -> None:
    got = options.resolve(Given(select=("x/*",), engines=("podman",), arches=("arm64",), shard="2/5",
                                endpoints=("arm64=unix:///a.sock",), distros=("debian-14=rootfs:forky",),
                                registry_mirror=("cli.example:5000",)), cfg, {"GCM_WORKLOAD": "small"})
    assert Options.from_json(got.to_json()) == got
    with pytest.raises(UsageError) as e:
        Options.from_json('{"matrix": "m.toml"}')
    assert "--gcm-options" in str(e.value)


class _Config:
    """What the plugin's _options reads of a pytest.Config."""

    def __init__(self, **opts: Any) -> None:
        self.opts = {"gcm_options": None, "gcm_matrix": MATRIX, **opts}

    def getoption(self, name: str) -> Any:
        return self.opts[name]


def _planned(cfg: config.MatrixConfig, opts: Options) -> list[str]:
    return [c.id for c in plan.build_plan(cfg, opts.choices, host_arch=Arch.AMD64)]


def test_plan_run_and_the_plugin_see_the_same_engines_for_gcm_engines_podman(
        cfg: config.MatrixConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: `plan` and `run`'s engine pre-check read --engine only (docker), the plugin GCM_ENGINES (podman)."""
    monkeypatch.setenv("GCM_ENGINES", "podman")
    assert cli.main(["plan", "--matrix", MATRIX, "--select", SELECT, "--host-arch", "amd64"]) == 0
    planned = capsys.readouterr().out.split()
    assert planned == ["debian-12/amd64/podman/go1.22/env"]

    checked: list[Engine] = []

    def check(self: SdkDriver) -> dict[str, str]:
        checked.append(self.engine)
        if self.engine is not Engine.PODMAN:
            raise EngineUnavailable(f"{self.engine} is not asked for", fix="-")
        return {}

    handed: list[list[str]] = []
    monkeypatch.setattr(SdkDriver, "check", check)
    monkeypatch.setattr(pytest, "main", lambda args: handed.append(list(args)) or pytest.ExitCode.OK)
    monkeypatch.setattr(Arch, "host", staticmethod(lambda: Arch.AMD64))
    assert cli.main(["run", "--matrix", MATRIX, "--select", SELECT, "-n", "0"]) == 0
    assert checked == [Engine.PODMAN], "run's pre-check asks the engine the plugin will use"
    args = handed[0]
    given = args[args.index("--gcm-options") + 1]

    # The controller, and a worker whose own environment says otherwise: both plan podman's cell.
    controller = pytest_plugin._options(_Config(gcm_options=given), cfg, None)  # type: ignore[arg-type]
    monkeypatch.setenv("GCM_ENGINES", "docker")
    worker = pytest_plugin._options(_Config(), cfg, {"gcm_options": controller.to_json()})  # type: ignore[arg-type]
    assert _planned(cfg, controller) == _planned(cfg, worker) == planned
    # pytest used directly (no --gcm-options) resolves the variables by the same code.
    monkeypatch.setenv("GCM_ENGINES", "podman")
    direct = pytest_plugin._options(_Config(), cfg, None)  # type: ignore[arg-type]
    assert direct.choices.engines == (Engine.PODMAN,) and direct.matrix == MATRIX


def test_run_hands_the_podman_stand_in_to_the_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """No engine named, docker silent, podman answering: the options pytest gets plan podman's cells."""
    def check(self: SdkDriver) -> dict[str, str]:
        if self.engine is Engine.DOCKER:
            raise EngineUnavailable("docker does not answer", fix="start dockerd")
        return {}

    handed: list[list[str]] = []
    monkeypatch.setattr(SdkDriver, "check", check)
    monkeypatch.setattr(pytest, "main", lambda args: handed.append(list(args)) or pytest.ExitCode.OK)
    assert cli.main(["run", "--matrix", MATRIX, "--select", "debian-12/amd64/docker/go1.22/env", "-n", "0"]) == 0
    args = handed[0]
    got = Options.from_json(args[args.index("--gcm-options") + 1])
    assert got.choices.engines[0] is Engine.PODMAN and got.choices.select == ("debian-12/amd64/podman/go1.22/env",)
    assert json.loads(args[args.index("--gcm-engine-substitution") + 1])["by"] == "podman"
