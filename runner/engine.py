"""The engine driver: what the runner asks of a container engine, and the docker-SDK code docker and podman share.

    Driver      the protocol callers use (a test double or a third engine implements it)
    SdkDriver   the shared implementation: containers, volumes and images through the docker SDK (podman serves the
                same API on its socket); container lifecycle through testcontainers' DockerContainer (create, start,
                always remove); image builds through the engine's CLI, because BuildKit and buildah live there
    runner.drivers   DockerDriver and PodmanDriver: each engine's own facts, and driver_for(engine)

Every resource the tool creates carries LABEL_MANAGED plus run/cell labels, so `clean` and the
per-cell sweep can find whatever a crash left behind.
"""

from __future__ import annotations

import abc
import contextlib
import io
import json
import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

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


@dataclass(frozen=True)
class BuildRecord:
    """One record of the builder's cache as the engine lists it (BuildKit's `docker system df -v` rows)."""

    id: str
    type: str  # e.g. "exec.cachemount" (a RUN --mount=type=cache), "regular" (a step's layer)
    description: str  # for a RUN step: its command text


@contextlib.contextmanager
def forgetting_contexts(driver: Driver) -> Iterator[None]:
    """Around builds: remove the context records (driver.context_records) that appeared meanwhile.

    BuildKit keeps the context of every build the CLI sends as a `source.local` record and never drops it by itself:
    one for each build's context and Dockerfile, as big as the context (a cell image's context is its rootfs tar).
    Before this, a host that ran the matrix for a day held 2,313 of them, 36.5 GB. Only a copy of what was sent is
    lost: the next build sends its context in full, and its steps' cache keys come from the content, so a COPY or a
    RUN that was cached stays cached (checked on docker 20.10 by removing a build's records between two builds).
    A record another build made in the same window (anyone's, on that engine) is removed too once that build is
    done; one in use stays. Where the engine did not list them before, none is removed: never every one."""
    before = known_contexts(driver)
    try:
        yield
    finally:
        if before is not None:
            with contextlib.suppress(docker.errors.DockerException, requests.exceptions.RequestException):
                driver.remove_build_records(sorted(driver.context_records() - before))


def known_contexts(driver: Driver) -> set[str] | None:
    """driver.context_records(), or None where the engine did not answer (the caller then removes none)."""
    try:
        return driver.context_records()
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        return None


# A started container as its driver's container() yields it: callers only hand it back to the same driver (restart,
# commit, wait, logs), so its type is the driver's own (SdkDriver: testcontainers' DockerContainer).
ContainerHandle = Any


class Driver(Protocol):
    """What the runner needs from a container engine. Engine-specific behaviour lives behind it (runner.drivers);
    callers get one with runner.drivers.driver_for(engine) and never branch on the engine's name."""

    base_url: str | None
    routed: bool  # an endpoint the user chose for some cells

    @property
    def engine(self) -> Engine: ...

    # connection and facts
    def check(self) -> dict[str, str]: ...
    def storage_facts(self) -> dict[str, Any]: ...
    def host_facts(self) -> dict[str, Any]: ...
    def start_hint(self) -> str: ...
    def cli(self) -> list[str]: ...

    # images
    def build(self, *, context: str, dockerfile: str, tag: str, platform: Arch, labels: Mapping[str, str],
              build_args: Mapping[str, str], timeout: float,
              extra: Sequence[str] = ()) -> subprocess.CompletedProcess[str]: ...
    def image_attrs(self, ref: str) -> dict[str, Any] | None: ...
    def pull(self, ref: str, platform: Arch) -> tuple[dict[str, Any], str | None]: ...
    def tag_image(self, image_id: str, tag: str) -> None: ...
    def untag(self, name: str) -> None: ...
    def image_ids(self, reference: str) -> list[str]: ...
    def remove_image(self, ref: str) -> bool: ...
    def local_ref(self, tag: str) -> str: ...
    def scratch_image(self, tag: str, labels: Mapping[str, str]) -> str: ...

    # containers and volumes
    def container(self, *, image: str, command: Sequence[str], mounts: Sequence[Mount],
                  env: Mapping[str, str], labels: Mapping[str, str], platform: Arch | None,
                  extra: Mapping[str, Any] | None = None) -> contextlib.AbstractContextManager[ContainerHandle]: ...
    def restart(self, c: ContainerHandle) -> None: ...
    def commit(self, c: ContainerHandle, tag: str, labels: Mapping[str, str]) -> str: ...
    def wait(self, c: ContainerHandle, timeout: float) -> tuple[int | None, bool]: ...
    def logs(self, c: ContainerHandle, tail: int = 200) -> str: ...
    def create_volume(self, labels: Mapping[str, str]) -> str: ...
    def remove_volume(self, name: str) -> None: ...

    # clean-up
    def labelled(self, keys: Sequence[str]) -> list[dict[str, str]]: ...
    def running_labels(self, key: str) -> list[dict[str, str]]: ...
    def sweep(self, match: Mapping[str, str]) -> dict[str, int]: ...

    # the builder's cache (RUN --mount=type=cache and step layers)
    @property
    def builds_foreign_arch_from_local_image(self) -> bool: ...
    def build_records(self, types: Sequence[str] = ()) -> list[BuildRecord]: ...
    def remove_build_records(self, ids: Sequence[str]) -> None: ...
    def context_records(self) -> set[str]: ...
    def prune_cell_builds(self, *, marker: str, labels: Mapping[str, str]) -> None: ...
    def cache_mount_dir(self, mount_id: str) -> str | None: ...


class SdkDriver(abc.ABC):
    """The docker-SDK implementation of Driver both engines share; subclasses supply the engine's own facts."""

    engine: ClassVar[Engine]
    min_version: ClassVar[tuple[int, int]]
    builds_foreign_arch_from_local_image: ClassVar[bool]

    def __init__(self, base_url: str | None = None) -> None:
        self.routed = base_url is not None  # an endpoint the user chose for some cells
        self.base_url = base_url or self.default_url()
        self._client: docker.DockerClient | None = None
        self._cli: list[str] | None = None

    # ------------------------------------------------------------------ what each engine says for itself
    @classmethod
    @abc.abstractmethod
    def default_url(cls) -> str | None:
        """The endpoint used when the user names none (None: the SDK's own default)."""

    @abc.abstractmethod
    def local_start_hint(self) -> str:
        """How to get this engine answering on this host."""

    @abc.abstractmethod
    def _pick_cli(self, found: Sequence[str]) -> str:
        """Of the engine's CLIs on PATH, the one to build with."""

    @abc.abstractmethod
    def _endpoint_args(self) -> list[str]:
        """CLI arguments that point the CLI at base_url."""

    @abc.abstractmethod
    def _build_command(self, cli: list[str]) -> tuple[list[str], dict[str, str]]:
        """(the build command up to its options, extra environment)."""

    def host_facts(self) -> dict[str, Any]:
        """What this host says about the engine beyond its API (recorded with the engine's facts)."""
        return {}

    def container_defaults(self) -> dict[str, Any]:
        """Container options this engine needs unless the caller gives them.

        No network: no cell needs one (modules come from the offline file:// proxy, and a request Go still makes
        fails at once either way), and a container with only lo starts and stops faster, since the engine sets
        up no veth pair or bridge rules for it (docker 20.10 here: about 60 ms of 0.3 s per container)."""
        return {"network_mode": "none"}

    def local_ref(self, tag: str) -> str:
        """How the engine names a locally built tag in a FROM line or a removal."""
        return tag

    def build_records(self, types: Sequence[str] = ()) -> list[BuildRecord]:
        """The builder's cache records (of these types, or all); none where the builder keeps none in the API."""
        return []

    def remove_build_records(self, ids: Sequence[str]) -> None:
        """Remove records build_records listed (one in use by a running build stays)."""
        if ids:
            raise LookupError(f"{self.engine} lists no build records, so none named {', '.join(ids)}")

    def context_records(self) -> set[str]:
        """Ids of the records in which the builder keeps a copy of each build's context (what the CLI sent), where
        it keeps such records; see forgetting_contexts."""
        return set()

    @abc.abstractmethod
    def prune_cell_builds(self, *, marker: str, labels: Mapping[str, str]) -> None:
        """What a user's `<engine> builder prune` does to the build cache, limited to one cell's builds: those whose
        RUN command holds `marker`, or whose images carry `labels`."""

    def cache_mount_dir(self, mount_id: str) -> str | None:
        """The host directory that holds the cache mount `mount_id` (its parent), when the builder keeps cache mounts
        as plain host directories; None otherwise."""
        return None

    @classmethod
    def host_cache_roots(cls) -> list[Path]:
        """Host directories where this engine's builder keeps cache mounts (for sweeping what killed runs left)."""
        return []

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
        return self.local_start_hint()

    def check(self) -> dict[str, str]:
        """Engine facts; raises EngineUnavailable when unreachable or too old."""
        try:
            v = self.client.version()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise EngineUnavailable(f"{self.engine} does not answer at {self.base_url or 'default socket'}: {e}",
                                    fix=self.start_hint()) from None
        version = str(v.get("Version", "0"))
        if _version_tuple(version) < self.min_version:
            want = ".".join(map(str, self.min_version))
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
            self._cli = [self._pick_cli(found)]
        return [*self._cli, *self._endpoint_args()]

    def build(self, *, context: str, dockerfile: str, tag: str, platform: Arch, labels: Mapping[str, str],
              build_args: Mapping[str, str], timeout: float,
              extra: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
        cmd, env_extra = self._build_command(self.cli())
        cmd += ["--platform", platform.to_oci(), "-f", dockerfile, "-t", tag]
        for k, v in labels.items():
            cmd += ["--label", f"{k}={v}"]
        for k, v in build_args.items():
            cmd += ["--build-arg", f"{k}={v}"]
        cmd += [*extra, context]
        return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env_extra}, timeout=timeout)

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

    def tag_image(self, image_id: str, tag: str) -> None:
        repo, _, t = tag.partition(":")
        self.client.images.get(image_id).tag(repo, t)

    def untag(self, name: str) -> None:
        """Drop one name; the image stays when other names hold it (noprune: its parents stay too)."""
        with contextlib.suppress(docker.errors.APIError):
            self.client.images.remove(name, noprune=True)

    def image_ids(self, reference: str) -> list[str]:
        """Ids of the images whose name matches `reference` (a pattern such as gcm-cell/*)."""
        return [str(img.id) for img in self.client.images.list(filters={"reference": reference})]

    def remove_image(self, ref: str) -> bool:
        """Remove ref (forced); False when it is gone already or the engine refused."""
        try:
            self.client.images.remove(ref, force=True)
        except (docker.errors.ImageNotFound, docker.errors.APIError):
            return False
        return True

    def scratch_image(self, tag: str, labels: Mapping[str, str]) -> str:
        """An image built `FROM scratch` by the engine (no layers, nothing in its root), labelled; its id. Its
        config names the engine's own arch: a container of another arch is created without a platform."""
        dockerfile = "FROM scratch\n" + "".join(f"LABEL {json.dumps(k)}={json.dumps(v)}\n" for k, v in labels.items())
        image, _ = self.client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, labels=dict(labels),
                                            rm=True, forcerm=True)
        return str(image.id)

    # ------------------------------------------------------------------ containers
    @contextlib.contextmanager
    def container(self, *, image: str, command: Sequence[str], mounts: Sequence[Mount],
                  env: Mapping[str, str], labels: Mapping[str, str], platform: Arch | None,
                  extra: Mapping[str, Any] | None = None) -> Iterator[DockerContainer]:
        """A started container, removed (with its anonymous volumes) on exit, whatever happened."""
        kw: dict[str, Any] = {"labels": dict(labels), **({"platform": platform.to_oci()} if platform else {}),
                              **(extra or {})}
        for k, v in self.container_defaults().items():
            if k == "network_mode" and "network" in kw:
                continue  # the SDK refuses network and network_mode together: the caller's network wins
            kw.setdefault(k, v)
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

    def create_volume(self, labels: Mapping[str, str]) -> str:
        """A new named volume carrying labels; its name."""
        return str(self.client.volumes.create(labels=dict(labels)).name)

    def remove_volume(self, name: str) -> None:
        with contextlib.suppress(docker.errors.APIError):
            self.client.api.remove_volume(name, force=True)

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

    def labelled(self, keys: Sequence[str]) -> list[dict[str, str]]:
        """The labels of every container, volume and image carrying all of `keys`."""
        api = self.client.api  # the low-level lists: no per-object inspect that a concurrent removal could fail
        want = {"label": list(keys)}
        listed = [*api.containers(all=True, filters=want), *(api.volumes(filters=want).get("Volumes") or []),
                  *api.images(filters=want)]
        return [dict(obj.get("Labels") or {}) for obj in listed]

    def running_labels(self, key: str) -> list[dict[str, str]]:
        """The labels of the running containers that carry `key`."""
        return [dict(c.labels or {}) for c in self.client.containers.list(filters={"label": key})]

    def storage_facts(self) -> dict[str, Any]:
        info = self.client.info()
        return {"storage_driver": info.get("Driver"), "cgroup_version": info.get("CgroupVersion"),
                "cgroup_driver": info.get("CgroupDriver"), "security_options": info.get("SecurityOptions", []),
                # docker lists "name=rootless" among its security options; podman's compat API says Rootless: true.
                "rootless": bool(info.get("Rootless"))
                or any("rootless" in str(o) for o in info.get("SecurityOptions", [])),
                "docker_root_dir": info.get("DockerRootDir"), "kernel": info.get("KernelVersion")}

