"""Safety of a real run: every container a scenario run creates is inspected while it exists.

None may be privileged or mount an engine socket; a relabel option (:z/:Z) may appear only on a path
inside the run directory; every container and volume carries the run's labels.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RUN_ID = "it-safety"
CELLS = ["debian-12/amd64/docker/go1.22/cold-warm:small", "debian-12/amd64/docker/go1.22/storage:volume",
         "debian-12/amd64/docker/go1.22/storage:bind", "debian-12/amd64/docker/go1.22/multiuser:umask-002"]
LABELS = ("io.go-cache-matrix.managed", "io.go-cache-matrix.run", "io.go-cache-matrix.cell")
SOCKETS = ("docker.sock", "podman.sock", "containerd.sock")


@pytest.fixture(scope="module")
def seen(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, Any]], dict[str, Any]]:
    reports = tmp_path_factory.mktemp("reports-safety")
    containers: dict[str, dict[str, Any]] = {}
    volumes: dict[str, Any] = {}
    stop = threading.Event()
    client = docker.from_env()

    def watch() -> None:  # inspect every container of this run while it exists
        label = f"io.go-cache-matrix.run={RUN_ID}"
        while not stop.is_set():
            try:
                for c in client.containers.list(all=True, filters={"label": label}):
                    containers.setdefault(c.id, c.attrs)
                for v in client.volumes.list():
                    if (v.attrs.get("Labels") or {}).get("io.go-cache-matrix.run") == RUN_ID or \
                            any(m.get("Name") == v.name for c in containers.values() for m in c.get("Mounts", [])):
                        volumes.setdefault(v.name, v.attrs)
            except (docker.errors.NotFound, docker.errors.APIError):
                pass  # removed between list and inspect
            time.sleep(0.2)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        selects = [a for c in CELLS for a in ("--select", c)]
        # GCM_WORKLOAD=small: storage's containers live long enough (tens of seconds) for the watcher to see them.
        proc = subprocess.run([sys.executable, "-m", "runner", "run", "--reports", str(reports), "-q", "-n", "2",
                               "--run-id", RUN_ID, *selects], cwd=ROOT, capture_output=True, text=True, timeout=900,
                              env={**os.environ, "GCM_WORKLOAD": "small"})
        print(proc.stdout[-2000:], proc.stderr[-1000:], sep="\n")
    finally:
        stop.set()
        t.join(timeout=10)
        client.close()
    return reports / "runs" / RUN_ID, containers, volumes


def test_containers_were_seen(seen: Any) -> None:
    _, containers, volumes = seen
    print(f"inspected {len(containers)} containers, {len(volumes)} volumes")
    assert len(containers) >= len(CELLS)  # every cell starts at least one
    assert volumes  # storage:volume made one


def test_no_container_is_privileged_or_holds_an_engine_socket(seen: Any) -> None:
    for cid, a in seen[1].items():
        hc = a["HostConfig"]
        assert hc.get("Privileged") is False, cid
        assert not hc.get("CapAdd"), (cid, hc.get("CapAdd"))
        assert hc.get("PidMode") in ("", None) and hc.get("NetworkMode") != "host", cid
        for m in a.get("Mounts", []):
            src = str(m.get("Source", ""))
            assert not src.endswith(SOCKETS), (cid, src)


def test_relabel_only_inside_the_run_and_binds_are_the_tools_own(seen: Any) -> None:
    run_dir = seen[0].resolve()
    for cid, a in seen[1].items():
        for m in a.get("Mounts", []):
            if m.get("Type") != "bind":
                continue
            src = Path(m["Source"]).resolve()
            if {"z", "Z"} & set(str(m.get("Mode", "")).split(",")):
                assert src.is_relative_to(run_dir), (cid, src, m.get("Mode"))
            # writable binds are the cell's own dirs in the run dir (job results, caches), never elsewhere
            if m.get("RW"):
                assert src.is_relative_to(run_dir), (cid, src)


def test_every_resource_carries_the_run_labels(seen: Any) -> None:
    for cid, a in seen[1].items():
        labels = a["Config"].get("Labels") or {}
        assert all(k in labels for k in LABELS), (cid, labels)
        assert labels["io.go-cache-matrix.run"] == RUN_ID
    for name, v in seen[2].items():
        assert (v.get("Labels") or {}).get("io.go-cache-matrix.run") == RUN_ID, name


def test_nothing_left(seen: Any, docker_client: docker.DockerClient) -> None:
    label = f"io.go-cache-matrix.run={RUN_ID}"
    assert docker_client.containers.list(all=True, filters={"label": label}) == []
    assert docker_client.volumes.list(filters={"label": label}) == []
