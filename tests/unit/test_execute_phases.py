"""runner.phase.run_phase with a fake engine: which result file each phase's probe is read from."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from runner import phase as phase_mod
from runner.model import Arch
from runner.scenarios import OUT_DIR, Phase


class FakeContainer:
    def __init__(self, command: Sequence[str], env: dict[str, str]) -> None:
        self.command, self.env, self.runs = list(command), env, 0


class FakeDriver:
    """Runs a container's command as the probe would: reads job.json, writes the result file it was given."""

    def __init__(self, work: Path) -> None:
        self.work = work

    def _run(self, c: FakeContainer) -> None:
        c.runs += 1
        steps = json.loads((self.work / "job" / "job.json").read_text())["steps"]
        out = self.work / "out" / Path(c.command[-1]).relative_to(OUT_DIR)
        out.write_text(json.dumps({"steps": steps, "replica": c.env.get("GCM_REPLICA"), "run": c.runs}))

    @contextlib.contextmanager
    def container(self, *, command: Sequence[str], env: dict[str, str], **_: Any) -> Iterator[FakeContainer]:
        c = FakeContainer(command, env)
        self._run(c)
        yield c

    def restart(self, c: FakeContainer) -> None:
        self._run(c)

    def wait(self, c: FakeContainer, timeout: float) -> tuple[int | None, bool]:
        return 0, False

    def logs(self, c: FakeContainer) -> str:
        return ""


class FakeCell:
    arch = Arch.AMD64
    slug = "fake"


def _phases(tmp_path: Path, phases: list[Phase]) -> dict[str, Any]:
    for d in ("job", "out", "data"):
        (tmp_path / d).mkdir()
    driver, containers, probes = FakeDriver(tmp_path), [], {}  # type: ignore[var-annotated]
    with contextlib.ExitStack() as stack:
        for phase in phases:
            got = phase_mod.run_phase(None, FakeCell(), driver, phase, "img", [], None, stack,  # type: ignore[arg-type]
                                     containers, {}, {}, tmp_path, 1.0)
            assert "probes" in got, got.get("error")
            probes.update(got["probes"])
    return probes


def test_restart_after_a_replicas_phase_reads_the_restarted_containers_result(tmp_path: Path) -> None:
    step = [{"name": "s", "kind": "sh"}]
    probes = _phases(tmp_path, [Phase("together", step, replicas=2),
                                Phase("again", [{"name": "t", "kind": "sh"}], container="restart")])
    assert sorted(probes) == ["again", "together.1", "together.2"]
    assert probes["again"]["steps"][0]["name"] == "t", "the restart phase's own job"
    assert probes["again"]["run"] == 2, "the restarted container's second run, not a stale file"


def test_restart_after_a_plain_phase(tmp_path: Path) -> None:
    probes = _phases(tmp_path, [Phase("cold", [{"name": "a", "kind": "sh"}]),
                                Phase("restart", [{"name": "b", "kind": "sh"}], container="restart"),
                                Phase("late", [{"name": "c", "kind": "sh"}], replicas=2)])
    assert probes["cold"]["steps"][0]["name"] == "a" and probes["cold"]["run"] == 1
    assert probes["restart"]["steps"][0]["name"] == "b" and probes["restart"]["run"] == 2
    assert [probes[f"late.{i}"]["replica"] for i in (1, 2)] == ["1", "2"]


def test_busy_sec_counts_overlapping_probes_once() -> None:
    at = "2026-12-07T02:00:{:02d}.250000000Z".format
    side_by_side = [{"started": at(0), "wall_sec": 4.0}, {"started": at(1), "wall_sec": 4.0}]  # 00.25 .. 05.25
    assert phase_mod.busy_sec(side_by_side) == 5.0
    one_after_another = [{"started": at(0), "wall_sec": 2.0}, {"started": at(10), "wall_sec": 3.0}]
    assert phase_mod.busy_sec(one_after_another) == 5.0
    inside = [{"started": at(0), "wall_sec": 9.0}, {"started": at(2), "wall_sec": 1.0}]
    assert phase_mod.busy_sec(inside) == 9.0
    # A start the probe did not write (or wrote otherwise) counts its whole wall; a fraction of any length is read.
    assert phase_mod.busy_sec([{"wall_sec": 1.5}, {"started": "yesterday", "wall_sec": 1.0},
                               {"started": "2026-12-07T02:00:00.5Z", "wall_sec": 0.5},
                               {"started": "2026-12-07T02:00:00Z", "wall_sec": 0.75}]) == 3.5
    assert phase_mod.busy_sec([]) == 0.0
