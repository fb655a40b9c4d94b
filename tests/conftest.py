from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

ROOT = Path(__file__).resolve().parent.parent

# The reliability summary line (faults injected/survived, bad inputs tried, leaked, lost) at the end of a session.
pytest_plugins = ["tests.faults.tally"]


@pytest.fixture
def project_root() -> Path:
    return ROOT


@pytest.fixture
def docker_client() -> Iterator[docker.DockerClient]:
    """The default engine's client, closed after the test: an unclosed socket is a ResourceWarning, which
    filterwarnings=error turns into a failure of whichever later test the garbage collector runs in."""
    client = docker.from_env()
    try:
        yield client
    finally:
        client.close()
