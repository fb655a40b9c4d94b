"""Which engine a run without --engine uses: the profile's, or podman in docker's place on a podman-only host.

    profile engines (docker, podman-selinux, ...) ──docker answers──────────────> as they are
                                                 ──docker silent, podman answers──> docker's cells on podman
                                                 ──neither answers──────────────> EngineUnavailable (exit 4),
                                                                                  one message, both fixes
Pure apart from the `check` callable (driver_for(engine).check in the CLI, a fake in the unit tests).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from runner.errors import EngineUnavailable, FatalError
from runner.model import Engine

Check = Callable[[Engine], object]  # raises FatalError (EngineUnavailable) when the engine does not answer


@dataclass(frozen=True)
class Substitution:
    """docker's cells run on podman: what run.json records (`engine_substitution`) and the report says."""

    replaced: Engine
    by: Engine
    reason: str  # docker's own words

    def line(self) -> str:
        return (f"{self.replaced} does not answer ({self.reason}); podman does: this run's {self.replaced} cells run "
                f"on {self.by} (pass --engine to choose)")

    def retarget(self, patterns: Sequence[str]) -> tuple[str, ...]:
        """--select/--skip globs naming the replaced engine's cells (`debian-12/amd64/docker/*`), for their stand-ins:
        the engine is a cell id's third segment, so only a segment that is exactly the engine's name changes."""
        return tuple("/".join(self.by.value if part == self.replaced.value else part for part in p.split("/"))
                     for p in patterns)

    def to_dict(self) -> dict[str, str]:
        return {"replaced": self.replaced.value, "by": self.by.value, "reason": self.reason}


def choose(planned: Sequence[Engine], needs: Sequence[Engine], check: Check, *, user_chose: bool
           ) -> tuple[tuple[Engine, ...], Substitution | None]:
    """The engines to run (planned: the plan's engines in order, guests kept) and the substitution made, if any.
    needs: the engines whose default endpoint the run talks to (checked). Raises EngineUnavailable when one does
    not answer and nothing can stand in for it."""
    engines = tuple(dict.fromkeys(planned))
    failures: dict[Engine, FatalError] = {}
    for engine in dict.fromkeys(needs):
        try:
            check(engine)
        except FatalError as e:
            failures[engine] = e
    if not failures:
        return engines, None
    docker = failures.get(Engine.DOCKER)
    if user_chose or docker is None:
        raise next(iter(failures.values()))  # the engine asked for (or podman itself): its own message and fix
    podman = failures.get(Engine.PODMAN)
    if podman is None and Engine.PODMAN not in needs:
        try:
            check(Engine.PODMAN)
        except FatalError as e:
            podman = e
    if podman is not None:
        raise EngineUnavailable(
            f"no container engine answers: {docker.message}; and {podman.message}",
            fix=f"start docker ({docker.fix}), or podman's API socket ({podman.fix})") from None
    swapped = tuple(dict.fromkeys(Engine.PODMAN if e is Engine.DOCKER else e for e in engines))
    return swapped, Substitution(Engine.DOCKER, Engine.PODMAN, docker.message)
