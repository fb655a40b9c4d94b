"""The two families of problems: FatalError (the tool, its input or the host) and CellProblem (one cell).

A FatalError ends the command with one message, its fix and an exit code; a CellProblem becomes that cell's
result, with the status its class carries (`outcome`, the one mapping). A cell never turns a FatalError into
a status: where a tool-level error means "this cell cannot run" (its engine does not answer), the code that
knows it raises the CellProblem instead (runner.execute.RunContext.engine_facts: EngineNotAnswering).

Exit codes (documented in the README and `go-cache-matrix --help`):
  0  every selected cell ran and none is fail/error
  1  at least one cell is fail or error (a finding, or a broken cell)
  2  bad input: matrix.toml, environment variable or command-line argument
  3  nothing selected: the filters matched no cell
  4  the host cannot run anything: no engine, engine too old
  130 interrupted (SIGINT)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, ClassVar

from runner.model import Status


class FatalError(Exception):
    exit_code = 1

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return self.message if not self.fix else f"{self.message}\n  fix: {self.fix}"


class ConfigError(FatalError):
    exit_code = 2

    def __init__(self, file: str, key: str | None, message: str, *, fix: str | None = None,
                 line: int | None = None, path: tuple[str | int, ...] = ()) -> None:
        """`file:line: key: message`. path: the key as TOML path parts (dots inside names stay
        unambiguous), so config.load can add the line of a key that parse() found wrong."""
        at = f"{file}:{line}" if line else file
        where = f"{at}: {key}" if key else at
        super().__init__(f"{where}: {message}", fix=fix)
        self.file = file
        self.key = key
        self.line = line
        self.detail = message
        self.path = path


class UsageError(FatalError):
    exit_code = 2


class NothingSelected(FatalError):
    exit_code = 3


class EngineUnavailable(FatalError):
    exit_code = 4


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' or '' — for messages about unknown names."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class CellProblem(Exception):
    """One cell cannot be measured, or measured a broken Go: its result says so and the run goes on.

    Subclasses (in the modules that raise them) set `status`, what the cell's result becomes, and `what`, the
    word its reason starts with (`image: ...`; "" for a message that says it itself):

        class                               status       what
        errors.EngineNotAnswering           unavailable  engine
        resources.CellUnavailable           unavailable
        images.ImageUnavailable             unavailable  image
        images.ImageBuildError              error
          images.DistroGoBroken             fail         (observations: distro_go_broken)
        toolchains.ToolchainUnavailable     unavailable  toolchain
          toolchains.ToolchainMismatch      error        toolchain
        probe.ProbeBuildError               error
        guest.GuestUnavailable              unavailable  SELinux guest
        guest.GuestError                    error        SELinux guest
    """

    status: ClassVar[Status] = Status.ERROR
    what: ClassVar[str] = ""

    def observations(self) -> dict[str, Any]:
        """What the result records besides the reason (e.g. the broken distro Go's words)."""
        return {}


class EngineNotAnswering(CellProblem):
    """The cell's engine does not answer (EngineUnavailable of a run that started): the cell is unavailable."""

    status = Status.UNAVAILABLE
    what = "engine"


def outcome(problem: CellProblem, where: str | None = None) -> tuple[Status, str, dict[str, Any]]:
    """(status, reason, observations) of a cell that met `problem`: the one place a cell problem becomes a result.
    where: what the cell was doing, instead of the problem's own `what` (e.g. the image of a phase's distro)."""
    label = problem.what if where is None else where
    return problem.status, f"{label}: {problem}" if label else str(problem), problem.observations()
