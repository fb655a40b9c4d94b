"""Per-arch preflight, at the start of every run and in `doctor`: can this arch's cells run, and how slowly?

    arch == host arch ─────────> native
    routed to an endpoint ─────> the endpoint answers, its engine reports that arch, and it is on this
                                 machine (cells bind-mount the toolchain and job files from here)
    otherwise (emulated) ──────> binfmt entry (host.emulation) ─> a one-shot FROM-scratch container of that
                                 arch runs `probe --preflight`: the machine it sees (uname -m) and a fixed
                                 CPU workload, timed against the same workload run natively here

A failed check makes the arch's cells `unavailable` with the reason and the fix; it never stops the run.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import docker.errors
import requests.exceptions

from runner import host
from runner.engine import LABEL_CACHE, LABEL_MANAGED, Driver, forgetting_contexts
from runner.errors import EngineUnavailable
from runner.model import Arch, Engine

PREFLIGHT_TIMEOUT = 120.0


@dataclass(frozen=True)
class ArchCheck:
    arch: str
    ok: bool
    mode: str  # "native", "emulated" or "endpoint"
    detail: str  # what was found
    fix: str | None = None
    machine: str | None = None  # uname -m inside a container of this arch
    factor: float | None = None  # preflight workload: emulated time / native time
    endpoint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ArchCheck:
        return cls(**d)

    def line(self) -> str:
        factor = f", workload {self.factor:.1f}× slower than native" if self.factor else ""
        text = f"{self.arch}: {'ok' if self.ok else 'unavailable'} ({self.mode}): {self.detail}{factor}"
        return text + (f"\n  fix: {self.fix}" if self.fix else "")


def is_local(url: str) -> bool:
    """Does this endpoint's engine see this machine's files (bind mounts of paths here)?"""
    parts = urlsplit(url)
    if parts.scheme in ("unix", "npipe"):
        return True
    return parts.scheme == "tcp" and (parts.hostname or "") in ("localhost", "127.0.0.1", "::1")


def resolve_endpoint(url: str, engine: Engine = Engine.DOCKER) -> str:
    """`context:NAME` -> the docker context's host URL; other URLs unchanged.

    A context that does not resolve (unknown, no docker endpoint, no CLI to ask) is EngineUnavailable,
    which the arch's preflight reports as a failed check (_check_endpoint), never a crash."""
    if not url.startswith("context:"):
        return url
    name = url.partition(":")[2]
    fix = (f"create it with `docker context create {name} --docker host=...` (`docker context ls` lists them), "
           "or give the engine as unix:// or tcp://")
    try:
        proc = subprocess.run([engine.value, "context", "inspect", name, "--format", "{{.Endpoints.docker.Host}}"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as e:
        raise EngineUnavailable(f"docker context {name!r} could not be resolved: {e}", fix=fix) from None
    if proc.returncode != 0 or not proc.stdout.strip():
        raise EngineUnavailable(f"docker context {name!r}: {proc.stderr.strip() or 'no docker endpoint'}", fix=fix)
    return proc.stdout.strip()


def _run_native(probe: Path) -> float:
    times = []
    for _ in range(2):
        out = subprocess.run([str(probe), "--preflight"], capture_output=True, text=True, timeout=PREFLIGHT_TIMEOUT)
        times.append(float(json.loads(out.stdout)["spin_sec"]))
    return min(times)


def _image(driver: Driver, arch: Arch, probe: Path) -> str:
    """A FROM-scratch image holding only the static probe: no registry, no base image, seconds to build."""
    tag = f"gcm-preflight/probe:{arch.value}-{probe.parent.name}"
    if driver.image_attrs(tag) is not None:
        return tag
    with tempfile.TemporaryDirectory(prefix="gcm-preflight-") as tmp:
        (Path(tmp) / "probe").write_bytes(probe.read_bytes())
        (Path(tmp) / "probe").chmod(0o755)
        (Path(tmp) / "Dockerfile").write_text("FROM scratch\nCOPY probe /probe\nENTRYPOINT [\"/probe\"]\n")
        with forgetting_contexts(driver):
            proc = driver.build(context=tmp, dockerfile=str(Path(tmp) / "Dockerfile"), tag=tag, platform=arch,
                                labels={LABEL_MANAGED: "1", LABEL_CACHE: "1"}, build_args={},
                                timeout=PREFLIGHT_TIMEOUT)
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-4:])
        raise RuntimeError(f"building the preflight image failed: {tail}")
    return tag


def _in_container(driver: Driver, arch: Arch, probe: Path, labels: dict[str, str]) -> dict[str, Any]:
    tag = _image(driver, arch, probe)
    with driver.container(image=tag, command=["--preflight"], mounts=[], env={}, labels=labels, platform=arch) as c:
        code, timed_out = driver.wait(c, PREFLIGHT_TIMEOUT)
        logs = driver.logs(c).strip()
    if timed_out or code != 0:
        what = f"timed out after {PREFLIGHT_TIMEOUT:.0f}s" if timed_out else f"exited {code}"
        raise RuntimeError(f"the {arch.value} preflight container {what}: {logs[-300:] or 'no output'}")
    try:
        return dict(json.loads(logs.splitlines()[-1]))
    except (ValueError, IndexError):
        raise RuntimeError(f"the {arch.value} preflight container printed no result: {logs[-300:]!r}") from None


def check(arch: Arch, host_arch: Arch, *, driver: Driver | None, endpoint: str | None,
          probes: dict[Arch, Path] | None, labels: dict[str, str]) -> ArchCheck:
    """driver/probes None: only the host-side checks (binfmt), e.g. when no engine answers."""
    if endpoint:
        return _check_endpoint(arch, endpoint, driver)
    if arch is host_arch:
        return ArchCheck(arch.value, True, "native", f"native on this {host_arch.value} host")
    emu = host.emulation(arch, host_arch)
    if not emu.ok:
        return ArchCheck(arch.value, False, "emulated", f"no emulator: {emu.detail}", emu.fix)
    if driver is None or probes is None:
        return ArchCheck(arch.value, True, "emulated", f"{emu.detail}; container not tried (no engine)")
    try:
        native = _run_native(probes[host_arch])
        t0 = time.monotonic()
        got = _in_container(driver, arch, probes[arch], labels)
        wall = time.monotonic() - t0
    except (RuntimeError, OSError, ValueError, subprocess.SubprocessError, docker.errors.DockerException,
            requests.exceptions.RequestException) as e:
        return ArchCheck(arch.value, False, "emulated", f"a one-shot {arch.value} container failed: {e}",
                         host.emulation_fix(arch))
    machine = str(got.get("machine"))
    if machine != arch.to_uname():
        return ArchCheck(arch.value, False, "emulated",
                         f"a {arch.to_oci()} container reports machine {machine!r}, expected {arch.to_uname()!r}: "
                         "the engine ignored --platform or the emulator is wrong", host.emulation_fix(arch),
                         machine=machine)
    factor = round(float(got["spin_sec"]) / native, 2) if native > 0 else None
    return ArchCheck(arch.value, True, "emulated",
                     f"{emu.detail}; uname -m in a container: {machine} ({wall:.1f}s incl. start)",
                     machine=machine, factor=factor)


def _check_endpoint(arch: Arch, endpoint: str, driver: Driver | None) -> ArchCheck:
    # Locality is a property of the URL the engine is reached at: a context:NAME is judged by its host.
    try:
        url = (driver.base_url if driver is not None else None) or resolve_endpoint(endpoint)
    except EngineUnavailable as e:
        return ArchCheck(arch.value, False, "endpoint", e.message, e.fix, endpoint=endpoint)
    if not is_local(url):
        where = endpoint if url == endpoint else f"{endpoint} ({url})"
        return ArchCheck(
            arch.value, False, "endpoint",
            f"endpoint {where} is on another machine; cells bind-mount the Go toolchain and job files from "
            "this one, which a remote engine cannot see", endpoint=endpoint,
            fix=f"run this arch's shard on that machine (`go-cache-matrix run --arch {arch.value}`) and join the "
                "result directories with `go-cache-matrix merge`")
    if driver is None:
        return ArchCheck(arch.value, False, "endpoint", f"endpoint {endpoint} not checked", endpoint=endpoint)
    try:
        facts = driver.check()
    except EngineUnavailable as e:
        return ArchCheck(arch.value, False, "endpoint", e.message, e.fix, endpoint=endpoint)
    if facts.get("arch") != arch.value:
        return ArchCheck(arch.value, False, "endpoint",
                         f"the engine at {endpoint} runs {facts.get('arch')!r}, not {arch.value}: it cannot run "
                         f"{arch.value} cells natively", endpoint=endpoint,
                         fix=f"route {arch.value} to an engine on a {arch.value} machine, or drop the endpoint to "
                             "emulate it here")
    return ArchCheck(arch.value, True, "endpoint",
                     f"native on the engine at {endpoint} ({facts['engine']} {facts['version']})", endpoint=endpoint)
