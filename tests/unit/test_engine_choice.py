"""runner.engine_choice: a run without --engine on a podman-only host runs docker's cells on podman (fake checks)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from runner.engine_choice import choose
from runner.errors import EngineUnavailable
from runner.model import Engine

D, P, G = Engine.DOCKER, Engine.PODMAN, Engine.PODMAN_SELINUX


def checker(answering: set[Engine]) -> tuple[list[Engine], Callable[[Engine], None]]:
    asked: list[Engine] = []

    def check(engine: Engine) -> None:
        asked.append(engine)
        if engine not in answering:
            raise EngineUnavailable(f"{engine} does not answer at its socket", fix=f"start {engine}")

    return asked, check


def test_docker_answering_keeps_the_plan() -> None:
    asked, check = checker({D})
    assert choose([D, D, G], [D], check, user_chose=False) == ((D, G), None)
    assert asked == [D]  # podman is not asked when docker answers


def test_podman_only_host_runs_dockers_cells_on_podman() -> None:
    _, check = checker({P})
    engines, sub = choose([D, G, D], [D], check, user_chose=False)
    assert engines == (P, G)  # the guest engine (its own VM) stays
    assert sub is not None and sub.to_dict() == {"replaced": "docker", "by": "podman",
                                                 "reason": "docker does not answer at its socket"}
    assert "podman does" in sub.line() and "--engine" in sub.line()


def test_profile_with_both_engines_on_a_podman_only_host() -> None:
    _, check = checker({P})
    engines, sub = choose([D, P], [D, P], check, user_chose=False)
    assert engines == (P,) and sub is not None


def test_none_answering_is_one_error_naming_both_fixes() -> None:
    _, check = checker(set())
    with pytest.raises(EngineUnavailable) as e:
        choose([D], [D], check, user_chose=False)
    assert "docker does not answer" in e.value.message and "podman does not answer" in e.value.message
    assert e.value.fix is not None and "start docker" in e.value.fix and "start podman" in e.value.fix
    assert e.value.exit_code == 4


def test_an_engine_the_user_chose_is_not_swapped() -> None:
    _, check = checker({P})
    with pytest.raises(EngineUnavailable, match="docker does not answer"):
        choose([D], [D], check, user_chose=True)


def test_podman_silent_with_docker_up_is_podmans_own_error() -> None:
    _, check = checker({D})
    with pytest.raises(EngineUnavailable, match="podman does not answer"):
        choose([D, P], [D, P], check, user_chose=False)


def test_selections_naming_docker_follow_its_cells_to_podman() -> None:
    _, check = checker({P})
    _, sub = choose([D], [D], check, user_chose=False)
    assert sub is not None
    assert sub.retarget(("debian-12/amd64/docker/go1.22/env", "*/docker/*", "docker-ish/*")) == (
        "debian-12/amd64/podman/go1.22/env", "*/podman/*", "docker-ish/*")
