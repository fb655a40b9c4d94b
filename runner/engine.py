"""One driver for docker and podman: the engine is a value, not a code path.

Containers and volumes go through the docker SDK (podman serves the same API on its socket);
container lifecycle uses testcontainers' DockerContainer (create, start, always remove). Image
builds and `import` go through the engine's CLI, because BuildKit lives there.

Every resource the tool creates carries LABEL_MANAGED plus run/cell labels, so `clean` and the
per-cell sweep can find whatever a crash left behind.
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import requests.exceptions
from testcontainers.core.config import testcontainers_config
from testcontainers.core.container import DockerContainer

from runner.errors import EngineUnavailable
from runner.model import Arch, Engine

# Ryuk (testcontainers' reaper) is itself a registry image; our own label sweep replaces it.
testcontainers_config.ryuk_disabled = True

LABEL_PREFIX = "io.go-cache-matrix"
LABEL_MANAGED = f"{LABEL_PREFIX}.managed"
LABEL_RUN = f"{LABEL_PREFIX}.run"
LABEL_CELL = f"{LABEL_PREFIX}.cell"
LABEL_CACHE = f"{LABEL_PREFIX}.cache"  # cached images (rootfs base + cell images), kept across runs

MIN_VERSION = {Engine.DOCKER: (20, 10), Engine.PODMAN: (4, 3)}
API_TIMEOUT = 120  # seconds for one engine API call; waits on containers pass their own


@dataclass(frozen=True, kw_only=True)
class Mount:
    source: str  # host path, or volume name when volume=True; unused for tmpfs
    target: str
    read_only: bool = True
    volume: bool = False
    tmpfs: str = ""  # tmpfs mount options, e.g. "size=1g": a tmpfs mount
    relabel: str = ""  # SELinux: "z" (shared label) or "Z" (private); only ever on paths the run created


def _version_tuple(v: str) -> tuple[int, int]:
    parts = [int("".join(ch for ch in p if ch.isdigit()) or 0) for p in v.split(".")[:2]]
    return (parts + [0, 0])[0], (parts + [0, 0])[1]


# RLIMIT_NPROC ceiling for podman containers: plenty for parallel `go build`s (root is exempt anyway).
PODMAN_NPROC_CAP = 16384


def podman_ulimits() -> list[docker.types.Ulimit]:
    """Explicit rlimits for podman containers.

    Why podman only: rootful podman asks the runtime for RLIMIT_NOFILE=1048576 and RLIMIT_NPROC at the
    host's maximum when none are given; where the engine may not raise limits that far (containers in
    VMs, sandboxes) every start fails with "error setting rlimit type 7: operation not permitted".
    Docker passes its own limits down and never trips on this. So ask for what this process already
    has, which the engine started from the same session can grant.
    """
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)

    def cap(v: int, limit: int) -> int:
        return limit if v == resource.RLIM_INFINITY or v > limit else v

    return [docker.types.Ulimit(name="nofile", soft=cap(nofile[0], 65536), hard=cap(nofile[1], 65536)),
            docker.types.Ulimit(name="nproc", soft=cap(nproc[0], PODMAN_NPROC_CAP),
                                hard=cap(nproc[1], PODMAN_NPROC_CAP))]


def _default_url(engine: Engine) -> str | None:
    if engine is Engine.DOCKER:
        return os.environ.get("DOCKER_HOST")
    # podman: rootful socket; rootless users export CONTAINER_HOST/DOCKER_HOST to their own.
    return os.environ.get("CONTAINER_HOST") or "unix:///run/podman/podman.sock"


class Driver:
    def __init__(self, engine: Engine, base_url: str | None = None) -> None:
        self.engine = engine
        self.routed = base_url is not None  # an endpoint the user chose for some cells
        self.base_url = base_url or _default_url(engine)
        self._client: docker.DockerClient | None = None
        self._cli: list[str] | None = None
        self._build_mode: str | None = None

    # ------------------------------------------------------------------ connection
    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            kw: dict[str, Any] = {"timeout": API_TIMEOUT}
            if self.base_url:
                kw["base_url"] = self.base_url
            try:
                self._client = docker.DockerClient(**kw) if self.base_url else docker.from_env(**kw)
            except docker.errors.DockerException as e:
                raise EngineUnavailable(
                    f"{self.engine}: cannot connect ({self.base_url or 'default socket'}): {e}",
                    fix=self.start_hint()) from None
        return self._client

    def start_hint(self) -> str:
        if self.routed:
            return (f"start the engine that serves {self.base_url}, or correct the endpoint "
                    "(--endpoint, GCM_ENDPOINTS or settings.endpoints in matrix.toml)")
        if self.engine is Engine.DOCKER:
            return ("install and start Docker (Debian/Ubuntu: `apt-get install docker.io` then `dockerd &` "
                    "or `systemctl start docker`), or set DOCKER_HOST")
        return "install podman and start its API socket: `podman system service --time=0 &`"

    def check(self) -> dict[str, str]:
        """Engine facts; raises EngineUnavailable when unreachable or too old."""
        try:
            v = self.client.version()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise EngineUnavailable(f"{self.engine} does not answer at {self.base_url or 'default socket'}: {e}",
                                    fix=self.start_hint()) from None
        version = str(v.get("Version", "0"))
        if _version_tuple(version) < MIN_VERSION[self.engine]:
            want = ".".join(map(str, MIN_VERSION[self.engine]))
            raise EngineUnavailable(f"{self.engine} {version} is older than the supported {want}",
                                    fix=f"upgrade {self.engine} to {want} or newer")
        return {"engine": self.engine.value, "version": version, "api_version": str(v.get("ApiVersion", "")),
                "os": str(v.get("Os", "")), "arch": str(v.get("Arch", ""))}

    # ------------------------------------------------------------------ CLI (builds, import)
    def cli(self) -> list[str]:
        """The engine CLI, pointed at the same endpoint as the SDK client."""
        if self._cli is None:
            name = self.engine.value
            candidates = [os.path.join(d, name) for d in os.environ.get("PATH", "").split(os.pathsep)]
            candidates.append(f"/usr/bin/{name}")
            found = [c for c in dict.fromkeys(candidates) if os.access(c, os.X_OK)]
            if not found:
                raise EngineUnavailable(f"no `{name}` command on PATH", fix=self.start_hint())
            self._cli = [found[0]]
            if self.engine is Engine.DOCKER:
                self._cli = [self._pick_docker_cli(found)]
        host = ["-H", self.base_url] if self.base_url and self.engine is Engine.DOCKER else []
        if self.engine is Engine.PODMAN and self.base_url and os.environ.get("CONTAINER_HOST"):
            host = ["--remote", "--url", self.base_url]
        return [*self._cli, *host]

    def _pick_docker_cli(self, found: Sequence[str]) -> str:
        # A docker CLI >= 23 needs the buildx plugin for BuildKit; an older one has BuildKit built in
        # (DOCKER_BUILDKIT=1). Hosts can carry both (e.g. a newer client without buildx on PATH).
        for exe in found:
            if subprocess.run([exe, "buildx", "version"], capture_output=True).returncode == 0:
                self._build_mode = "buildx"
                return exe
        for exe in found:
            env = {**os.environ, "DOCKER_BUILDKIT": "1"}
            if subprocess.run([exe, "build", "--help"], capture_output=True, env=env).returncode == 0:
                self._build_mode = "buildkit-legacy"
                return exe
        raise EngineUnavailable(
            f"none of {', '.join(found)} can build with BuildKit (no buildx plugin, and the client is too new "
            "for DOCKER_BUILDKIT=1 without it)",
            fix="install the buildx plugin (Debian/Ubuntu: `apt-get install docker-buildx`, or docker-buildx-plugin "
                "from Docker's repository)")

    def build(self, *, context: str, dockerfile: str, tag: str, platform: Arch, labels: Mapping[str, str],
              build_args: Mapping[str, str], timeout: float,
              extra: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
        cli = self.cli()
        env = dict(os.environ)
        if self.engine is Engine.DOCKER:
            if self._build_mode == "buildx":
                cmd = [*cli, "buildx", "build", "--load"]
            else:
                env["DOCKER_BUILDKIT"] = "1"
                cmd = [*cli, "build"]
            cmd += ["--progress", "plain"]
        else:
            cmd = [*cli, "build"]
        cmd += ["--platform", platform.to_oci(), "-f", dockerfile, "-t", tag]
        for k, v in labels.items():
            cmd += ["--label", f"{k}={v}"]
        for k, v in build_args.items():
            cmd += ["--build-arg", f"{k}={v}"]
        cmd += [*extra, context]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)

    # ------------------------------------------------------------------ images
    def image_attrs(self, ref: str) -> dict[str, Any] | None:
        try:
            return dict(self.client.images.get(ref).attrs)
        except docker.errors.ImageNotFound:
            return None

    def pull(self, ref: str, platform: Arch) -> tuple[dict[str, Any], str | None]:
        """Pull ref for platform: (attrs of the image ref now names, the digest the engine reported: of the
        manifest or multi-arch index ref resolved to). Raises docker.errors.APIError / requests errors with the
        engine's text, also for an error the engine reports in the middle of the pull."""
        digest = None
        events = list(self.client.api.pull(ref, platform=platform.to_oci(), stream=True, decode=True))  # to the end
        for event in events:
            if event.get("error"):
                raise docker.errors.APIError(str(event["error"]), explanation=str(event["error"]))
            status = str(event.get("status", ""))
            if status.startswith("Digest: "):
                digest = status.removeprefix("Digest: ").strip()
        attrs = self.image_attrs(ref)
        if attrs is None:  # pragma: no cover - the engine said it pulled
            raise docker.errors.ImageNotFound(f"{ref} not present after pull")
        return attrs, digest

    # ------------------------------------------------------------------ containers
    @contextlib.contextmanager
    def container(self, *, image: str, command: Sequence[str], mounts: Sequence[Mount],
                  env: Mapping[str, str], labels: Mapping[str, str], platform: Arch,
                  extra: Mapping[str, Any] | None = None) -> Iterator[DockerContainer]:
        """A started container, removed (with its anonymous volumes) on exit, whatever happened."""
        kw: dict[str, Any] = {"labels": dict(labels), "platform": platform.to_oci(), **(extra or {})}
        if self.engine is Engine.PODMAN and "ulimits" not in kw:
            kw["ulimits"] = podman_ulimits()
        binds = [m for m in mounts if not m.volume and not m.tmpfs]
        vols = [m for m in mounts if m.volume]
        if vols:
            kw["mounts"] = [docker.types.Mount(m.target, m.source, type="volume", read_only=m.read_only)
                            for m in vols]
        # testcontainers builds its client with docker.from_env(): point it at this driver's endpoint.
        client_kw = {"environment": {**os.environ, "DOCKER_HOST": self.base_url}} if self.base_url else None
        c = DockerContainer(image, docker_client_kw=client_kw, env=dict(env), **kw).with_command(list(command))
        for m in binds:
            mode = "ro" if m.read_only else "rw"
            c.with_volume_mapping(m.source, m.target, f"{mode},{m.relabel}" if m.relabel else mode)
        for m in mounts:
            if m.tmpfs:
                c.with_tmpfs_mount(m.target, m.tmpfs)
        # DockerContainer removes the container on exit, also when start() fails after create().
        with c:
            yield c

    def restart(self, c: DockerContainer) -> None:
        """Start an exited container again: same writable layer, same command."""
        c.get_wrapped_container().start()

    def commit(self, c: DockerContainer, tag: str, labels: Mapping[str, str]) -> str:
        """Save the container's filesystem as an image (a cache baked into a layer); returns its id."""
        repo, _, t = tag.partition(":")
        changes = [f"LABEL {k}={v}" for k, v in labels.items()]
        image = c.get_wrapped_container().commit(repository=repo, tag=t, changes=changes)
        return str(image.id)

    def remove_image(self, ref: str) -> None:
        with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.APIError):
            self.client.images.remove(ref, force=True)

    def wait(self, c: DockerContainer, timeout: float) -> tuple[int | None, bool]:
        wrapped = c.get_wrapped_container()
        try:
            res = wrapped.wait(timeout=timeout)
            return int(res.get("StatusCode", -1)), False
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            with contextlib.suppress(docker.errors.APIError):
                wrapped.kill()
            return None, True

    def logs(self, c: DockerContainer, tail: int = 200) -> str:
        try:
            raw = c.get_wrapped_container().logs(tail=tail)
            return bytes(raw).decode(errors="replace")
        except docker.errors.APIError as e:
            return f"(logs unavailable: {e})"

    # ------------------------------------------------------------------ clean-up
    def sweep(self, match: Mapping[str, str]) -> dict[str, int]:
        """Remove containers and volumes whose labels include all of `match` (empty values: key only)."""
        filters = [f"{k}={v}" if v else k for k, v in match.items()]
        removed = {"containers": 0, "volumes": 0}
        for ctr in self.client.containers.list(all=True, filters={"label": filters}, ignore_removed=True):
            # NotFound / 409 "removal already in progress": someone else (the cell itself) is removing it.
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                ctr.remove(force=True, v=True)
                removed["containers"] += 1
        for vol in self.client.volumes.list(filters={"label": filters}):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                vol.remove(force=True)
                removed["volumes"] += 1
        # Images committed by a cell (baked caches) carry the run labels; cached images do not.
        for img in self.client.images.list(filters={"label": [*filters, LABEL_RUN]}):
            with contextlib.suppress(docker.errors.APIError):
                self.client.images.remove(img.id, force=True)
                removed["images"] = removed.get("images", 0) + 1
        return removed

    def storage_facts(self) -> dict[str, Any]:
        info = self.client.info()
        return {"storage_driver": info.get("Driver"), "cgroup_version": info.get("CgroupVersion"),
                "cgroup_driver": info.get("CgroupDriver"), "security_options": info.get("SecurityOptions", []),
                "rootless": any("rootless" in str(o) for o in info.get("SecurityOptions", [])),
                "docker_root_dir": info.get("DockerRootDir"), "kernel": info.get("KernelVersion")}

