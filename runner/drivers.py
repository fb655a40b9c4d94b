"""The engines: DockerDriver and PodmanDriver, and driver_for(engine) to get one.

Everything that differs between docker and podman is here, each with the engine fact behind it; the rest of the
runner talks to runner.engine.Driver and never branches on an engine's name. Both share runner.engine.SdkDriver
(the docker SDK: podman serves the same API on its socket).
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import resource
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import docker

from runner import host
from runner.engine import BuildRecord, Driver, SdkDriver
from runner.errors import EngineUnavailable
from runner.model import Engine
from runner.paths import locked


class DockerDriver(SdkDriver):
    engine: ClassVar[Engine] = Engine.DOCKER
    min_version: ClassVar[tuple[int, int]] = (20, 10)
    # docker's image store holds one platform per name, so BuildKit resolves `FROM <local tag>` of a foreign
    # platform through the registry (seen with docker 20.10; https://github.com/docker/for-win/issues/12302):
    # foreign-arch builds start from the rootfs (or the pulled base) instead.
    builds_foreign_arch_from_local_image: ClassVar[bool] = False

    def __init__(self, base_url: str | None = None) -> None:
        super().__init__(base_url)
        self._build_mode: str | None = None  # "buildx" | "buildkit-legacy", set by _pick_cli

    @classmethod
    def default_url(cls) -> str | None:
        return os.environ.get("DOCKER_HOST")  # None: the SDK's default socket

    def local_start_hint(self) -> str:
        return ("install and start Docker (Debian/Ubuntu: `apt-get install docker.io` then `dockerd &` "
                "or `systemctl start docker`), or set DOCKER_HOST")

    def _pick_cli(self, found: Sequence[str]) -> str:
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

    def _endpoint_args(self) -> list[str]:
        return ["-H", self.base_url] if self.base_url else []

    def _build_command(self, cli: list[str]) -> tuple[list[str], dict[str, str]]:
        # BuildKit's default progress display hides a finished step's output; plain passes it through (each line
        # prefixed "#N <seconds> "), which is how a RUN step's result comes back in the build log.
        if self._build_mode == "buildx":
            return [*cli, "buildx", "build", "--load", "--progress", "plain"], {}
        return [*cli, "build", "--progress", "plain"], {"DOCKER_BUILDKIT": "1"}

    # BuildKit keeps its cache (cache mounts, step layers) as records in the engine, listed by `docker system df`
    # and removed with the build-prune API's id filter.
    def build_records(self, types: Sequence[str] = ()) -> list[BuildRecord]:
        rows = self._disk_usage().get("BuildCache") or []
        return [BuildRecord(str(r["ID"]), str(r.get("Type")), str(r.get("Description"))) for r in rows
                if not types or r.get("Type") in types]

    def _disk_usage(self) -> dict[str, Any]:
        """`docker system df`'s answer. Engines before API 1.42 (docker 23) refuse a second one while one runs
        ("a disk usage operation is already running", HTTP 500): this tool's workers take turns through a lock, and
        a call that collides with someone else's is tried again."""
        key = re.sub(r"[^A-Za-z0-9]+", "_", self.base_url or "default")
        for attempt in range(DF_TRIES):
            try:
                with locked(f"docker-df-{key}"):
                    return dict(self.client.df())
            except docker.errors.APIError as e:
                if "already running" not in str(e) or attempt == DF_TRIES - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    def remove_build_records(self, ids: Sequence[str]) -> None:
        # The build-prune API takes one value per filter key, and the engine hands "id" to BuildKit as a regular
        # expression (`id~=<value>`): one call removes a batch. Where a batch removed nothing (an engine that reads
        # the value literally, or one that refused the pattern), each id is asked for alone, as it is: read as a
        # pattern, a record id (25 random letters and digits) matches no other. One in use stays either way.
        for start in range(0, len(ids), PRUNE_BATCH):
            batch = ids[start:start + PRUNE_BATCH]
            pattern = "^(" + "|".join(re.escape(i) for i in batch) + ")$"
            try:
                gone = self.client.api.prune_builds(filters={"id": pattern}, all=True).get("CachesDeleted")
            except docker.errors.APIError:
                gone = None
            if not gone:
                for rid in batch:
                    with contextlib.suppress(docker.errors.APIError):
                        self.client.api.prune_builds(filters={"id": rid}, all=True)

    def context_records(self) -> set[str]:
        return {r.id for r in self.build_records(("source.local",))}

    def prune_cell_builds(self, *, marker: str, labels: Mapping[str, str]) -> None:
        # `docker builder prune` removes BuildKit's records, cache mounts among them; the cell's are those whose
        # RUN command names its marker.
        self.remove_build_records([r.id for r in self.build_records(("exec.cachemount",)) if marker in r.description])


DF_TRIES = 5  # `docker system df` refused as "already running" (an engine before docker 23)
PRUNE_BATCH = 200  # build records removed per call: `clean` on a host with thousands stays within the API timeout


# RLIMIT_NPROC ceiling for podman containers: plenty for parallel `go build`s (root is exempt anyway).
PODMAN_NPROC_CAP = 16384


def podman_ulimits() -> list[docker.types.Ulimit]:
    """Explicit rlimits for podman containers.

    Why podman only: rootful podman asks the runtime for RLIMIT_NOFILE=1048576 and RLIMIT_NPROC at the
    host's maximum when none are given; where the engine may not raise limits that far (containers in
    VMs, sandboxes) every start fails with "error setting rlimit type 7: operation not permitted"
    (https://github.com/podman-container-tools/podman/issues/6668, /issues/17358). Docker passes its own limits
    down and never trips on this. So ask for what this process already has, which the engine started from the same
    session can grant.
    """
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)

    def cap(v: int, limit: int) -> int:
        return limit if v == resource.RLIM_INFINITY or v > limit else v

    return [docker.types.Ulimit(name="nofile", soft=cap(nofile[0], 65536), hard=cap(nofile[1], 65536)),
            docker.types.Ulimit(name="nproc", soft=cap(nproc[0], PODMAN_NPROC_CAP),
                                hard=cap(nproc[1], PODMAN_NPROC_CAP))]


def buildah_roots() -> list[Path]:
    """Where buildah keeps cache mounts on this host: $TMPDIR (default /var/tmp)/buildah-cache[-<uid>]
    (https://github.com/podman-container-tools/buildah/issues/6554)."""
    tmps = dict.fromkeys([os.environ.get("TMPDIR") or "/var/tmp", "/var/tmp"])
    return [Path(d) for tmp in tmps for d in glob.glob(os.path.join(tmp, "buildah-cache*"))]


class PodmanDriver(SdkDriver):
    engine: ClassVar[Engine] = Engine.PODMAN
    min_version: ClassVar[tuple[int, int]] = (4, 3)
    # buildah looks a FROM name up in local storage before any registry, whatever the platform.
    builds_foreign_arch_from_local_image: ClassVar[bool] = True

    @classmethod
    def default_url(cls) -> str | None:
        # The rootful socket; rootless users export CONTAINER_HOST/DOCKER_HOST to their own.
        return os.environ.get("CONTAINER_HOST") or "unix:///run/podman/podman.sock"

    def local_start_hint(self) -> str:
        return "install podman and start its API socket: `podman system service --time=0 &`"

    def _pick_cli(self, found: Sequence[str]) -> str:
        return found[0]

    def _endpoint_args(self) -> list[str]:
        # The podman CLI works on the same local storage its socket serves; only an exported CONTAINER_HOST means
        # a service elsewhere, which the CLI reaches with --remote.
        return ["--remote", "--url", self.base_url] if self.base_url and os.environ.get("CONTAINER_HOST") else []

    def _build_command(self, cli: list[str]) -> tuple[list[str], dict[str, str]]:
        return [*cli, "build"], {}  # buildah prints a RUN step's output as it is

    def host_facts(self) -> dict[str, Any]:
        # Rootful here; any user with subuid and subgid ranges could run podman rootless (no daemon of their own,
        # unlike rootless docker), so the report says who.
        return {"rootless_users": host.subid_users()}

    def container_defaults(self) -> dict[str, Any]:
        # Rootless podman's default network is slirp4netns, which needs /dev/net/tun open to the user; where it is
        # root's alone (0600), no container with a network could start (`open("/dev/net/tun"): Permission denied`).
        # The base's "none" covers that too: the compat API honours HostConfig.NetworkMode "none" (only lo).
        return {**super().container_defaults(), "ulimits": podman_ulimits()}

    def local_ref(self, tag: str) -> str:
        # podman stores names without a registry under localhost/
        # (https://github.com/podman-container-tools/buildah/issues/1034); naming it so never asks a registry.
        return f"localhost/{tag}" if "." not in tag.split("/")[0] else tag

    # buildah keeps cache mounts as host directories, not engine records: build_records() is empty.
    def prune_cell_builds(self, *, marker: str, labels: Mapping[str, str]) -> None:
        # `podman builder prune` is image prune (it removes build images, not cache mounts); filtered to the cell's.
        filters = [a for k, v in labels.items() for a in ("--filter", f"label={k}={v}")]
        subprocess.run([*self.cli(), "image", "prune", "-a", "-f", *filters], capture_output=True, timeout=120)

    def cache_mount_dir(self, mount_id: str) -> str | None:
        for root in buildah_roots():
            if (root / mount_id).exists():
                return str(root)
        return None

    @classmethod
    def host_cache_roots(cls) -> list[Path]:
        return buildah_roots()


DRIVERS: dict[Engine, type[SdkDriver]] = {Engine.DOCKER: DockerDriver, Engine.PODMAN: PodmanDriver}


def driver_for(engine: Engine, base_url: str | None = None) -> Driver:
    """The driver of `engine` at base_url (None: the engine's default endpoint on this host)."""
    try:
        cls = DRIVERS[engine]
    except KeyError:
        raise ValueError(f"{engine} has no engine API on this host (it is a guest VM: runner.guest)") from None
    return cls(base_url)


def host_cache_roots() -> list[Path]:
    """Directories on this host where some engine's builder keeps cache mounts (for sweeping killed runs')."""
    return [root for cls in DRIVERS.values() for root in cls.host_cache_roots()]
