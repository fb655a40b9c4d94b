"""Driving `python -m runner` as a user would, and counting what a run left on an engine. Every wait is bounded."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import docker

from runner.engine import LABEL_RUN

ROOT = Path(__file__).resolve().parents[2]
# The cheapest cells (see `python -m runner plan --profile smoke`): env ~1 s; location:home-unset ~3 s;
# cold-warm:small and storage:volume keep a container busy for tens of seconds: a cell "in flight". (storage
# builds the three-package `lib` by default, a second or two: Run sets GCM_WORKLOAD=small so it stays in flight.)
PREFIX = "debian-12/amd64/docker/go1.22"
ENV = f"{PREFIX}/env"
LOCATION = f"{PREFIX}/location:home-unset"
COLD_WARM = f"{PREFIX}/cold-warm:small"
VOLUME = f"{PREFIX}/storage:volume"
FULL = f"{PREFIX}/storage:full"
# For interrupt tests with xdist workers: a worker runs to the end every cell the controller has handed it (2 a
# worker at first), and cheap cells end in seconds, so only more cells than the first hand-out leave some missing
# at the signal.
MORE_THAN_A_HAND_OUT = [COLD_WARM, ENV, LOCATION, VOLUME,
                        *(f"{PREFIX}/{s}" for s in ("storage:bind", "readonly:stale", "multiuser:umask-002"))]

T = TypeVar("T")


def run_id(what: str) -> str:
    """Unique per test run: two people running the suite on one host never share a run id."""
    return f"flt-{what}-{os.getpid()}-{secrets.token_hex(2)}"


class Run:
    """A `python -m runner run` in its own process group (as a terminal's foreground job), output to a file."""

    def __init__(self, reports: Path, rid: str, cells: list[str], *extra: str, workers: str = "0",
                 env: Mapping[str, str] | None = None) -> None:
        self.reports, self.rid = reports, rid
        self.run_dir = reports / "runs" / rid
        self.log = reports / f"{rid}.log"
        reports.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "runner", "run", "--reports", str(reports), "--run-id", rid, "-q",
                "-n", workers, *extra]
        for c in cells:
            args += ["--select", c]
        self.t0 = time.monotonic()
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                         env={**os.environ, "GCM_WORKLOAD": "small", **(env or {})})

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
            raise AssertionError(f"run {self.rid} did not end within {timeout:.0f}s:\n{self.output()[-3000:]}") \
                from None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def cell_files(self) -> list[Path]:
        return sorted((self.run_dir / "cells").glob("*.json"))

    def results(self) -> dict[str, Any]:
        return dict(json.loads((self.run_dir / "results.json").read_text()))

    def kill(self) -> None:
        """Teardown: whatever state the test left the process in."""
        if self.proc.poll() is None:
            self.signal(signal.SIGKILL)
            self.proc.wait(timeout=30)


def wait_for(what: str, pred: Callable[[], T | None], timeout: float, run: Run | None = None) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        if run is not None and run.proc.poll() is not None:
            raise AssertionError(f"run {run.rid} ended (exit {run.proc.returncode}) before {what}:\n"
                                 f"{run.output()[-3000:]}")
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}" +
                         (f":\n{run.output()[-3000:]}" if run else ""))


def cli(*args: str, timeout: float = 120, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "runner", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})
    print(f"$ go-cache-matrix {' '.join(args)}  -> exit {proc.returncode}\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
    return proc


@contextlib.contextmanager
def engine(url: str | None = None) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=url) if url else docker.from_env()
    try:
        yield client
    finally:
        client.close()


def labelled(client: docker.DockerClient, rid: str) -> dict[str, list[str]]:
    """Containers, volumes, networks and images carrying this run's label."""
    label = {"label": f"{LABEL_RUN}={rid}"}
    return {"containers": [c.id for c in client.containers.list(all=True, filters=label, ignore_removed=True)],
            "volumes": [v.name for v in client.volumes.list(filters=label)],
            "networks": [n.name for n in client.networks.list(filters=label)],
            "images": [i["Id"] for i in client.api.images(filters=label)]}


def count(found: Mapping[str, list[str]]) -> int:
    return sum(len(v) for v in found.values())


def valid_json(path: Path) -> bool:
    try:
        json.loads(path.read_text())
        return True
    except (OSError, ValueError):
        return False
