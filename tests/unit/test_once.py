"""runner.once: a phase made by the run's first cell that needs it, copied by the others (no engine: the
phase's run is a function that writes what a container would)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runner import once
from runner.engine import Mount
from runner.scenarios import JOB_DIR, OUT_DIR, MountSpec, Phase
from runner.scenarios.binary import StaticBinary
from runner.scenarios.portability import Portability
from tests.unit.test_scenario_portability import CTX
from tests.unit.test_scenarios import cell

PHASE = Phase("populate", [{"name": "build", "kind": "exec", "argv": ["go", "build"]}],
              mounts=(MountSpec("bind", "/populated", name="populated"),), distro="debian-12", once="populate")
BASE = [Mount(source="/cache/go1.27", target="/usr/local/go"), Mount(source="/w/cell-a/job", target=JOB_DIR),
        Mount(source="/w/cell-a/out", target=OUT_DIR, read_only=False)]


def digest(phase: Phase = PHASE, tag: str = "gcm/debian-12:abc", base: list[Mount] = BASE) -> str:
    return once.key(phase, image_tag=tag, base_mounts=base, arch="amd64", engine="docker", endpoint=None,
                    env={"HOME": "/root"})


class Maker:
    """Stands in for run_phase: writes the bind mount's files and returns probes, counting its calls."""

    def __init__(self, data: Path, ok: bool = True) -> None:
        self.data, self.ok, self.calls = data, ok, 0

    def __call__(self) -> dict[str, Any]:
        self.calls += 1
        (self.data / "populated" / "cache").mkdir(parents=True, exist_ok=True)
        (self.data / "populated" / "cache" / "entry-d").write_text(f"made by call {self.calls}")
        step = {"name": "build", "ok": self.ok, "exit_code": 0 if self.ok else 1, "wall_sec": 12.5}
        return {"probes": {"populate": {"steps": [step], "wall_sec": 12.5}}, "timing": {"container_sec": 13.0}}


def test_the_first_cell_makes_the_phase_and_the_next_copies_it(tmp_path: Path) -> None:
    work = tmp_path / "work"
    a, b = Maker(tmp_path / "a" / "data"), Maker(tmp_path / "b" / "data")
    first = once.made_once(work, PHASE, digest(), "debian-12/amd64/docker/go1.27/portability:from-debian-12",
                           a.data, a)
    assert a.calls == 1 and "reused" not in first["timing"]
    second = once.made_once(work, PHASE, digest(), "debian-13/amd64/docker/go1.27/portability:from-debian-12",
                            b.data, b)
    assert b.calls == 0, "the second cell builds nothing"
    assert second["probes"] == first["probes"]
    assert second["timing"]["reused"]["from"] == "debian-12/amd64/docker/go1.27/portability:from-debian-12"
    assert (b.data / "populated" / "cache" / "entry-d").read_text() == "made by call 1", "the files are copied"
    (b.data / "populated" / "cache" / "entry-d").write_text("changed by cell b")
    c = Maker(tmp_path / "c" / "data")
    once.made_once(work, PHASE, digest(), "c", c.data, c)
    assert (c.data / "populated" / "cache" / "entry-d").read_text() == "made by call 1", "a copy, not shared live"


def test_a_failed_step_is_never_copied_each_cell_measures_it(tmp_path: Path) -> None:
    work = tmp_path / "work"
    a, b = Maker(tmp_path / "a" / "data", ok=False), Maker(tmp_path / "b" / "data")
    once.made_once(work, PHASE, digest(), "a", a.data, a)
    assert once.made_once(work, PHASE, digest(), "b", b.data, b)["probes"]["populate"]["steps"][0]["ok"]
    assert b.calls == 1, "the failure was not kept: b ran the phase itself"


def test_an_engine_error_is_not_kept_and_a_damaged_record_is_made_again(tmp_path: Path) -> None:
    work = tmp_path / "work"
    assert once.made_once(work, PHASE, digest(), "a", tmp_path / "a", lambda: {"error": "x", "timing": {}}) == \
        {"error": "x", "timing": {}}
    b = Maker(tmp_path / "b" / "data")
    once.made_once(work, PHASE, digest(), "b", b.data, b)
    (work / "once" / digest() / once.DONE).write_text("{not json")
    c = Maker(tmp_path / "c" / "data")
    assert "reused" not in once.made_once(work, PHASE, digest(), "c", c.data, c)["timing"] and c.calls == 1
    assert json.loads((work / "once" / digest() / once.DONE).read_text())["cell"] == "c"


def test_the_key_follows_the_inputs_not_the_cell(tmp_path: Path) -> None:
    other_cell = [BASE[0], Mount(source="/w/cell-b/job", target=JOB_DIR),
                  Mount(source="/w/cell-b/out", target=OUT_DIR, read_only=False)]
    assert digest(base=other_cell) == digest(), "each cell's job and out dirs carry nothing in"
    assert digest(tag="gcm/debian-12:def") != digest(), "another image"
    assert digest(base=[Mount(source="/cache/go1.22", target="/usr/local/go"), *BASE[1:]]) != digest()
    assert digest(Phase(PHASE.name, [{"name": "build", "kind": "exec", "argv": ["go", "build", "-a"]}],
                        mounts=PHASE.mounts, distro="debian-12", once="populate")) != digest()
    assert once.key(PHASE, image_tag="t", base_mounts=BASE, arch="arm64", engine="docker", endpoint=None,
                    env={}) != once.key(PHASE, image_tag="t", base_mounts=BASE, arch="amd64", engine="docker",
                                        endpoint=None, env={})


def test_only_a_phase_that_can_be_copied_is_made_once() -> None:
    assert once.usable(PHASE)
    assert not once.usable(Phase("p", [], once=""))
    assert not once.usable(Phase("p", [], mounts=(MountSpec("volume", "/v", name="v"),), once="k"))
    assert not once.usable(Phase("p", [], replicas=2, once="k"))
    assert not once.usable(Phase("p", [], commit="img", once="k"))
    assert not once.usable(Phase("p", [], container="restart", once="k"))


def test_portability_and_static_binary_make_their_source_builds_once() -> None:
    populate = Portability().phases(cell("debian-13/amd64/docker/go1.27/portability:from-debian-12"), CTX)[0]
    assert populate.name == "populate" and once.usable(populate) and populate.distro == "debian-12"
    assert not any(p.once for p in Portability().phases(cell("debian-13/amd64/docker/go1.27/portability:binary"), CTX))
    build = StaticBinary().phases(cell("debian-13/amd64/docker/go1.27/static-binary:from-debian-12"), CTX)[0]
    assert build.name == "build" and once.usable(build) and build.distro == "debian-12"
