from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

ROOT = Path(__file__).resolve().parent.parent

# A suite started in the background of a non-interactive shell (`cmd &`, nohup, some CI runners) inherits
# SIGINT ignored, and so would every `go-cache-matrix run` it starts: the Ctrl-C tests would then test nothing.
# A handler here is reset to the default in those children at exec, so they handle SIGINT as a terminal would.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# The suite's runs share the cores with other tests: their cell times go to a file of the suite's own, not into the
# host's measured durations (runner.durations), where they would skew `plan`'s estimate of a real run. Set in the
# environment, so every `go-cache-matrix` the tests start inherits it.
os.environ["GCM_DURATIONS"] = str(Path(tempfile.gettempdir()) / f"gcm-test-durations-{os.getuid()}.json")

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
