"""runner.share: which cells share a container, the container's script, and one run per group across workers
(no engine: the group's run is a function returning what the container's probes would)."""

from __future__ import annotations

import multiprocessing
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from runner import share
from runner.model import Cell
from runner.scenarios import PROBE, JobContext, MountSpec, Phase
from runner.scenarios.location import Location
from runner.scenarios.toolchain import Toolchain
from tests.unit.test_scenarios import cell

ROW = "debian-12/amd64/docker/go1.22"
LOC = [cell(f"{ROW}/location:{v}") for v in ("home-unset", "gocache-off", "uid-home-root")]
CTX = JobContext(build_timeout=60, workload="lib")


def phases_of(c: Cell) -> list[Phase] | None:
    return Location().phases(c, CTX)


def test_a_rows_variants_of_one_scenario_share_and_nothing_else() -> None:
    planned = [*LOC, cell("debian-13/amd64/docker/go1.22/location:home-unset"),
               cell("debian-12/amd64/docker/go1.27/location:home-unset"), cell(f"{ROW}/env")]
    group = share.group_of(LOC[1], planned, lambda c: phases_of(c) if c.scenario == "location" else [Phase("x", [])])
    assert [c.id for c in group] == sorted(c.id for c in LOC), "same distro, arch, engine, toolchain, scenario"
    assert share.group_of(LOC[0], [LOC[0]], phases_of) == [], "a cell run alone (its reproduce command) is alone"


def test_a_cell_decided_before_any_container_or_of_another_shape_is_left_out() -> None:
    settled = {LOC[2].id}
    group = share.group_of(LOC[0], LOC, lambda c: None if c.id in settled else phases_of(c))
    assert [c.id for c in group] == sorted([LOC[0].id, LOC[1].id])
    mounted = Phase("main", [], mounts=(MountSpec("bind", "/x", name="x"),))
    assert share.group_of(LOC[0], LOC, lambda c: [mounted]) == [], "a phase with mounts of its own runs alone"
    assert share.group_of(LOC[0], LOC, lambda c: [Phase("a", []), Phase("b", [])]) == [], "one phase only"


def test_sharing_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(share.ENV, "0")
    assert share.group_of(LOC[0], LOC, phases_of) == []


def test_the_script_runs_each_job_and_resets_between_them(tmp_path: Path) -> None:
    """The script for real, in sh, with a stand-in probe: each job runs, what it made is gone before the next,
    and a reset path already there stops it before any job (exit 99)."""
    probe = tmp_path / "probe"
    made = tmp_path / "made"
    probe.write_text(f'#!/bin/sh\n[ -e {made} ] && echo "leaked into $1" >> {tmp_path}/log; '
                     f'touch {made}; echo "ran $1" >> {tmp_path}/log\n')
    probe.chmod(0o755)
    text = share.script([("job-1.json", "r1"), ("job-2.json", "r2")], [str(made)]).replace(PROBE, str(probe))
    assert subprocess.run(["sh", "-c", text]).returncode == 0
    assert (tmp_path / "log").read_text() == "ran job-1.json\nran job-2.json\n"
    assert not made.exists()
    made.touch()
    done = subprocess.run(["sh", "-c", text], capture_output=True, text=True)
    assert done.returncode == share.NOT_SHAREABLE and "is in the image" in done.stderr
    assert (tmp_path / "log").read_text().count("ran") == 2, "nothing ran"
    assert shlex.quote(PROBE) in share.script([("a", "b")], [])
    assert '[ "$$" = 1 ]' in text, "stray processes are killed only as the container's pid 1, never here"


def probes_for(members: list[Cell], skip: str = "") -> dict[str, Any]:
    return {"probes": {c.id: {"steps": [{"name": "build", "ok": True}], "wall_sec": 0.2, "who": c.id}
                       for c in members if c.id != skip}, "timing": {"container_sec": 1.5}}


def test_one_container_per_group_each_cell_takes_its_own_probe(tmp_path: Path) -> None:
    calls: list[str] = []

    def run() -> dict[str, Any]:
        calls.append("ran")
        return probes_for(LOC)

    first = share.run_or_take(tmp_path, LOC[1], LOC, run)
    assert first is not None and first["ran_it"] and first["probe"]["who"] == LOC[1].id
    assert first["group_in_container_sec"] == pytest.approx(0.6)
    for c in (LOC[0], LOC[2]):
        rec = share.run_or_take(tmp_path, c, LOC, run)
        assert rec is not None and rec["probe"]["who"] == c.id and rec["leader"] == LOC[1].id
        assert "ran_it" not in rec
    assert calls == ["ran"]


def test_a_member_without_a_probe_runs_alone_and_a_failed_group_runs_nobody(tmp_path: Path) -> None:
    assert share.run_or_take(tmp_path / "a", LOC[0], LOC, lambda: probes_for(LOC, skip=LOC[2].id)) is not None
    assert share.run_or_take(tmp_path / "a", LOC[2], LOC, lambda: pytest.fail("the group ran once")) is None
    assert share.run_or_take(tmp_path / "b", LOC[0], LOC, lambda: {"timing": {"exit_code": 99}}) is None
    assert share.run_or_take(tmp_path / "b", LOC[1], LOC, lambda: pytest.fail("the group ran once")) is None

    def broken() -> dict[str, Any]:
        raise OSError("engine gone")

    with pytest.raises(OSError):
        share.run_or_take(tmp_path / "c", LOC[0], LOC, broken)
    assert share.run_or_take(tmp_path / "c", LOC[1], LOC, lambda: pytest.fail("ran again")) is None


def test_location_and_toolchain_name_what_their_variants_create() -> None:
    """Every directory a variant's `go` may create: the scratch tree, root's GOPATH (GOMODCACHE, a switched
    toolchain), root's and HOME=/'s default GOCACHE, root's config dir (telemetry); path-found's goV."""
    home = {"/tmp/gcm", "/root/go", "/root/.cache", "/root/.config"}
    assert set(Location().shared_reset(LOC[0], CTX)) == home | {"/.cache"}
    assert Location.shares_container and Toolchain.shares_container
    ctx = JobContext(build_timeout=60, switch={"version": "1.27.1", "goroot": "/x", "proxy": "/p"})
    assert set(Toolchain().shared_reset(cell(f"{ROW}/toolchain:path-found"), ctx)) == home | {"/usr/local/bin/go1.27.1"}


def _take(work: str, leader_started: Any, got: Any) -> None:
    """A second worker: asks for its record while the first runs the group; must not run it again."""
    leader_started.wait(10)
    got.put(share.run_or_take(Path(work), LOC[2], LOC, lambda: {"probes": {}, "timing": {"ran": "again"}}))


def test_a_member_asking_while_the_leader_runs_waits_and_takes_its_record(tmp_path: Path) -> None:
    """Two processes, as two xdist workers: the flock makes the second wait for the first's container."""
    ctx = multiprocessing.get_context("fork")
    started, got = ctx.Event(), ctx.Queue()
    other = ctx.Process(target=_take, args=(str(tmp_path), started, got))
    other.start()

    def run() -> dict[str, Any]:
        started.set()
        time.sleep(1.0)  # the other process asks now, and must wait
        return probes_for(LOC)

    assert share.run_or_take(tmp_path, LOC[0], LOC, run) is not None
    record = got.get(timeout=20)
    other.join(10)
    assert record is not None and record["probe"]["who"] == LOC[2].id and record["leader"] == LOC[0].id
    assert record["waited_sec"] > 0.5, "it waited for the leader's container"
