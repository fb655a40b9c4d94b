"""A second, throw-away dockerd for tests that route cells to another engine or kill the engine on purpose.

It gets its own socket, data-root, exec-root, pidfile, containerd namespace and bridge, so the main dockerd (and
the rest of the suite, which may run at the same time under xdist) is unaffected. `name` keeps two of them apart:
it names the base dir, the bridge (at most 15 characters) and the containerd namespaces.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest


@dataclass
class Dockerd:
    sock: str  # unix://... URL
    base: Path
    data_root: Path
    proc: subprocess.Popen[bytes]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        """Stop the daemon (SIGTERM: it stops its containers and exits); idempotent."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)

    def log_tail(self, n: int = 2000) -> str:
        with contextlib.suppress(OSError):
            return (self.base / "dockerd.log").read_text(errors="replace")[-n:]
        return ""


@contextlib.contextmanager
def throwaway_dockerd(name: str, subnet: str) -> Iterator[Dockerd]:
    """name: short, e.g. "it" (bridge gcm-<name>-br0); subnet: the bridge's address, e.g. "10.213.77.1/24"."""
    if os.geteuid() != 0 or not shutil.which("dockerd"):
        pytest.skip("needs root and dockerd to start a second daemon")
    bridge = f"gcm-{name}-br0"
    assert len(bridge) <= 15, bridge
    # Not under pytest's tmp dir: a unix socket path must stay under 108 bytes.
    base = Path(f"/tmp/gcm-{name}-d2-{os.getpid()}")
    base.mkdir()
    sock = f"unix://{base}/docker.sock"
    # Its own bridge: with --bridge=none, a second daemon deletes the first one's docker0.
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    subprocess.run(["ip", "addr", "add", subnet, "dev", bridge], check=True)
    subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
    log = open(base / "dockerd.log", "wb")  # noqa: SIM115 - closed in the teardown below
    proc = subprocess.Popen(
        ["dockerd", "--host", sock, "--data-root", str(base / "data"), "--exec-root", str(base / "exec"),
         "--pidfile", str(base / "docker.pid"), "--bridge", bridge, "--iptables=false", "--ip-masq=false",
         "--containerd-namespace", f"gcm-{name}", "--containerd-plugins-namespace", f"gcm-{name}-plugins"],
        stdout=log, stderr=subprocess.STDOUT)
    d = Dockerd(sock=sock, base=base, data_root=base / "data", proc=proc)
    try:
        # Poll the socket with a plain socket that is always closed: a docker client whose first request
        # fails leaks its socket, and the ResourceWarning would fail a later, unrelated test.
        for _ in range(60):
            with socket.socket(socket.AF_UNIX) as probe, contextlib.suppress(OSError):
                probe.connect(str(base / "docker.sock"))
                break
            time.sleep(1)
        else:
            pytest.fail(f"the second dockerd did not answer: {d.log_tail()}")
        with contextlib.closing(docker.DockerClient(base_url=sock)) as client:
            assert client.ping()
        yield d
    finally:
        d.stop()
        log.close()
        subprocess.run(["ip", "link", "delete", bridge], check=False)
        # Whatever it left mounted (exec-root, and overlays of containers a killed daemon did not stop).
        with open("/proc/self/mounts") as fh:
            points = [line.split()[1] for line in fh if line.split()[1].startswith(f"{base}/")]
        for point in sorted(points, key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        shutil.rmtree(base, ignore_errors=True)
