"""The engine drivers without an engine: which driver an engine gets, and each engine-specific decision.

Everything here is pure logic (commands, names, choices) or runs against a stand-in for the SDK client; what talks
to a real engine is tested in tests/integration/test_drivers.py.
"""

from __future__ import annotations

import re
import resource
import subprocess
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from runner import buildrun, drivers, engine
from runner.buildrun import BuildEnv, Builds, marker, prune_build_records
from runner.drivers import DRIVERS, PODMAN_NPROC_CAP, DockerDriver, PodmanDriver, driver_for, podman_ulimits
from runner.engine import BuildRecord, Driver, SdkDriver
from runner.errors import EngineUnavailable
from runner.model import Arch, Engine

MEMBERS = sorted({n for n in (*vars(Driver), *Driver.__annotations__) if not n.startswith("_")})


@pytest.fixture(autouse=True)
def _no_engine_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("DOCKER_HOST", "CONTAINER_HOST", "TMPDIR"):
        monkeypatch.delenv(var, raising=False)


# ---------------------------------------------------------------- selection
@pytest.mark.parametrize(("eng", "cls"), [(Engine.DOCKER, DockerDriver), (Engine.PODMAN, PodmanDriver)])
def test_each_engine_gets_its_own_driver(eng: Engine, cls: type[SdkDriver]) -> None:
    d = driver_for(eng)
    assert type(d) is cls and d.engine is eng and not d.routed
    routed = driver_for(eng, "unix:///run/elsewhere.sock")
    assert routed.routed and routed.base_url == "unix:///run/elsewhere.sock"


def test_every_engine_with_an_api_has_a_driver_and_the_guest_has_none() -> None:
    assert set(DRIVERS) == {e for e in Engine if not e.is_guest}
    with pytest.raises(ValueError, match="guest VM"):
        driver_for(Engine.PODMAN_SELINUX)


@pytest.mark.parametrize("cls", [DockerDriver, PodmanDriver])
def test_both_drivers_have_every_member_of_the_protocol(cls: type[SdkDriver]) -> None:
    d = cls()
    assert "build_records" in MEMBERS and "engine" in MEMBERS and len(MEMBERS) > 25
    assert [m for m in MEMBERS if not hasattr(d, m)] == []


def test_default_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    assert DockerDriver().base_url is None, "the SDK's own default (DOCKER_HOST or the docker socket)"
    assert PodmanDriver().base_url == "unix:///run/podman/podman.sock", "the rootful API socket"
    monkeypatch.setenv("DOCKER_HOST", "tcp://box:2375")
    monkeypatch.setenv("CONTAINER_HOST", "unix:///run/user/1000/podman/podman.sock")
    assert DockerDriver().base_url == "tcp://box:2375"
    assert PodmanDriver().base_url == "unix:///run/user/1000/podman/podman.sock"


def test_the_fix_names_the_engine_or_the_chosen_endpoint() -> None:
    assert "dockerd" in DockerDriver().start_hint() and "podman system service" in PodmanDriver().start_hint()
    assert "tcp://arm-box:2376" in DockerDriver("tcp://arm-box:2376").start_hint()


# ---------------------------------------------------------------- version check (a stand-in client)
class _Client:
    def __init__(self, version: str) -> None:
        self._version = version

    def version(self) -> dict[str, str]:
        return {"Version": self._version, "ApiVersion": "1.41", "Os": "linux", "Arch": "amd64"}


@pytest.mark.parametrize(("cls", "old", "new"),
                         [(DockerDriver, "20.9.1", "20.10.24"), (PodmanDriver, "4.2.0", "4.3.1")])
def test_each_engine_has_its_own_minimum_version(cls: type[SdkDriver], old: str, new: str) -> None:
    d = cls()
    d._client = _Client(new)  # type: ignore[assignment]
    assert d.check()["version"] == new and d.check()["engine"] == cls.engine.value
    d._client = _Client(old)  # type: ignore[assignment]
    with pytest.raises(EngineUnavailable, match=f"{old} is older than the supported"):
        d.check()


# ---------------------------------------------------------------- CLI and build commands
def test_docker_cli_is_pointed_at_the_endpoint_podman_only_when_remote(monkeypatch: pytest.MonkeyPatch) -> None:
    assert DockerDriver("unix:///x.sock")._endpoint_args() == ["-H", "unix:///x.sock"]
    assert DockerDriver()._endpoint_args() == []
    assert PodmanDriver()._endpoint_args() == [], "the CLI works on the storage its rootful socket serves"
    monkeypatch.setenv("CONTAINER_HOST", "ssh://me@box/run/podman/podman.sock")
    assert PodmanDriver()._endpoint_args() == ["--remote", "--url", "ssh://me@box/run/podman/podman.sock"]


def test_build_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    d = DockerDriver()
    d._build_mode = "buildx"
    assert d._build_command(["docker"]) == (["docker", "buildx", "build", "--load", "--progress", "plain"], {})
    d._build_mode = "buildkit-legacy"
    assert d._build_command(["docker"]) == (["docker", "build", "--progress", "plain"], {"DOCKER_BUILDKIT": "1"})
    assert PodmanDriver()._build_command(["podman"]) == (["podman", "build"], {})

    seen: dict[str, Any] = {}

    def run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        seen.update(cmd=cmd, env=kw["env"])
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(engine.subprocess, "run", run)
    d._cli = ["/usr/bin/docker"]
    d.build(context="ctx", dockerfile="ctx/Dockerfile", tag="t:1", platform=Arch.ARM64, labels={"a": "b"},
            build_args={"X": "1"}, timeout=5, extra=["--no-cache"])
    assert seen["cmd"] == ["/usr/bin/docker", "build", "--progress", "plain", "--platform", "linux/arm64", "-f",
                           "ctx/Dockerfile", "-t", "t:1", "--label", "a=b", "--build-arg", "X=1", "--no-cache", "ctx"]
    assert seen["env"]["DOCKER_BUILDKIT"] == "1"


def test_docker_picks_a_cli_that_can_build_with_buildkit(monkeypatch: pytest.MonkeyPatch) -> None:
    def run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        ok = (cmd[0] == "/new/docker" and cmd[1] == "buildx") or (cmd[0] == "/old/docker" and cmd[1] == "build")
        return subprocess.CompletedProcess(cmd, 0 if ok else 1)

    monkeypatch.setattr(drivers.subprocess, "run", run)
    d = DockerDriver()
    assert d._pick_cli(["/old/docker", "/new/docker"]) == "/new/docker" and d._build_mode == "buildx"
    assert d._pick_cli(["/old/docker"]) == "/old/docker" and d._build_mode == "buildkit-legacy"
    with pytest.raises(EngineUnavailable, match="can build with BuildKit"):
        d._pick_cli(["/broken/docker"])
    assert PodmanDriver()._pick_cli(["/a/podman", "/b/podman"]) == "/a/podman"


# ---------------------------------------------------------------- containers
def test_only_podman_containers_get_explicit_rlimits() -> None:
    assert "ulimits" not in DockerDriver().container_defaults()
    limits = {u["Name"]: u for u in PodmanDriver().container_defaults()["ulimits"]}
    assert set(limits) == {"nofile", "nproc"}
    assert limits["nproc"]["Soft"] <= limits["nproc"]["Hard"] <= PODMAN_NPROC_CAP
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert limits["nofile"]["Hard"] <= 65536 and (nofile[1] == resource.RLIM_INFINITY
                                                  or limits["nofile"]["Hard"] <= nofile[1]), "never above ours"


def test_containers_get_no_network_on_either_engine() -> None:
    """No cell needs a network (the offline file:// proxy), and rootless podman's slirp4netns needs /dev/net/tun
    open to the user: every cell container gets only lo."""
    assert DockerDriver().container_defaults()["network_mode"] == "none"
    assert PodmanDriver().container_defaults()["network_mode"] == "none"


def test_podman_rlimits_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(drivers.resource, "getrlimit", lambda r: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    got = {u["Name"]: (u["Soft"], u["Hard"]) for u in podman_ulimits()}
    assert got == {"nofile": (65536, 65536), "nproc": (PODMAN_NPROC_CAP, PODMAN_NPROC_CAP)}


# ---------------------------------------------------------------- images and the builder's cache
def test_local_names() -> None:
    p, d = PodmanDriver(), DockerDriver()
    assert p.local_ref("gcm-bk/gcm-r-abc:first") == "localhost/gcm-bk/gcm-r-abc:first"
    assert p.local_ref("quay.io/x/y:1") == "quay.io/x/y:1", "a registry name stays as it is"
    assert d.local_ref("gcm-bk/gcm-r-abc:first") == "gcm-bk/gcm-r-abc:first"


def test_which_builder_can_start_a_foreign_arch_build_from_a_local_image() -> None:
    assert PodmanDriver.builds_foreign_arch_from_local_image is True
    assert DockerDriver.builds_foreign_arch_from_local_image is False


def test_only_buildah_keeps_cache_mounts_in_host_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "buildah-cache-0"
    (root / "gcm-r-abc-gocache").mkdir(parents=True)
    monkeypatch.setattr(drivers, "buildah_roots", lambda: [root])
    assert PodmanDriver().cache_mount_dir("gcm-r-abc-gocache") == str(root)
    assert PodmanDriver().cache_mount_dir("gcm-r-other-gocache") is None
    assert DockerDriver().cache_mount_dir("gcm-r-abc-gocache") is None
    assert drivers.host_cache_roots() == [root]
    assert PodmanDriver().build_records() == [], "no engine records: nothing asked of the engine"


def test_buildah_roots_follow_tmpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "buildah-cache-1000").mkdir()
    (tmp_path / "other").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    assert tmp_path / "buildah-cache-1000" in drivers.buildah_roots()
    assert tmp_path / "other" not in drivers.buildah_roots()


class _RecordingDocker(DockerDriver):
    """DockerDriver whose engine records are a list: what the pruning logic picks, without an engine."""

    def __init__(self, records: list[BuildRecord]) -> None:
        super().__init__()
        self.records, self.removed = records, []  # type: ignore[var-annotated]

    def build_records(self, types: Any = ()) -> list[BuildRecord]:
        return [r for r in self.records if not types or r.type in types]

    def remove_build_records(self, ids: Any) -> None:
        self.removed.extend(ids)


RECORDS = [BuildRecord("m1", "exec.cachemount", f"mount / from exec /bin/sh -c {marker('gcm-r-abc0123456')} x"),
           BuildRecord("l1", "regular", f"/bin/sh -c {marker('gcm-r-abc0123456')} /opt/gcm/probe"),
           BuildRecord("m2", "exec.cachemount", f"mount / from exec /bin/sh -c {marker('gcm-r2-abc0123456')} x"),
           BuildRecord("m3", "exec.cachemount", "someone else's cache mount")]


def test_docker_prune_removes_only_the_cell_s_cache_mounts() -> None:
    d = _RecordingDocker(RECORDS)
    d.prune_cell_builds(marker=marker("gcm-r-abc0123456"), labels={"cell": "c"})
    assert d.removed == ["m1"], "cache mounts of this cell only: not its layers, not other runs' or users' mounts"


def test_podman_prune_is_image_prune_filtered_to_the_cell(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[list[str]] = []
    monkeypatch.setattr(drivers.subprocess, "run", lambda cmd, **kw: ran.append(cmd))
    p = PodmanDriver()
    p._cli = ["/usr/bin/podman"]
    p.prune_cell_builds(marker="unused", labels={"io.go-cache-matrix.cell": "debian-12/amd64/podman/x"})
    assert ran == [["/usr/bin/podman", "image", "prune", "-a", "-f", "--filter",
                    "label=io.go-cache-matrix.cell=debian-12/amd64/podman/x"]]


def test_clean_prunes_a_run_s_build_records_where_the_builder_keeps_them() -> None:
    d = _RecordingDocker(RECORDS)
    assert prune_build_records(d, "r") == 2 and d.removed == ["m1", "l1"], "run r2's and a user's records stay"
    assert prune_build_records(PodmanDriver(), "r") == 0


def test_close_removes_the_cell_s_records_and_host_cache_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cid = "gcm-r-abc0123456"
    env = BuildEnv.__new__(BuildEnv)
    env.driver = _RecordingDocker(RECORDS)
    builds = Builds.__new__(Builds)
    builds.env, builds.cid, builds.root, builds.tags = env, cid, tmp_path / "ctx", ["gcm-bk/x:first"]
    # The contexts its builds sent go too (s2, s3 appeared during the cell); s1 was there before it.
    env.driver.records = [BuildRecord("s1", "source.local", "local source for context"), *RECORDS,  # type: ignore
                          BuildRecord("s2", "source.local", "local source for context"),
                          BuildRecord("s3", "source.local", "local source for dockerfile")]
    builds.contexts_before = {"s1"}
    monkeypatch.setattr(DockerDriver, "remove_image", lambda self, ref: True)
    builds.close()
    assert env.driver.removed == ["m1", "l1", "s2", "s3"]  # type: ignore[attr-defined]
    env.driver.removed.clear()  # type: ignore[attr-defined]
    builds.contexts_before = None  # the engine did not list them when the cell began: no context goes
    builds.close()
    assert env.driver.removed == ["m1", "l1"]  # type: ignore[attr-defined]

    root = tmp_path / "buildah-cache-0"
    made = [root / f"{cid}-gocache", root / f"{cid}-uid-gomodcache", root / "gcm-r2-abc0123456-gocache"]
    for p in made:
        p.mkdir(parents=True)
    monkeypatch.setattr(drivers, "buildah_roots", lambda: [root])
    monkeypatch.setattr(PodmanDriver, "remove_image", lambda self, ref: True)
    env.driver = PodmanDriver()
    assert builds.cache_mount_dir() == str(root)
    builds.close()
    assert [p.exists() for p in made] == [False, False, True]


class _PruneApi:
    """The SDK's low-level prune_builds as an engine answers it: `literal` reads the id filter as one id, not as
    the regular expression docker 20.10's engine makes of it."""

    def __init__(self, records: set[str], literal: bool = False) -> None:
        self.records, self.literal, self.calls = records, literal, []  # type: ignore[var-annotated]

    def prune_builds(self, filters: dict[str, str], all: bool) -> dict[str, Any]:
        self.calls.append(filters["id"])
        hit = {r for r in self.records if (r == filters["id"] if self.literal else re.search(filters["id"], r))}
        self.records -= hit
        return {"CachesDeleted": sorted(hit) or None, "SpaceReclaimed": 0}


@pytest.mark.parametrize("literal", [False, True])
def test_docker_removes_build_records_in_one_call_where_the_engine_takes_a_pattern(literal: bool) -> None:
    d = DockerDriver()
    api = _PruneApi({"abc1", "abc12", "x.y", "xzy", "keep"}, literal=literal)
    d._client = type("Client", (), {"api": api})()  # type: ignore[assignment]
    d.remove_build_records(["abc1", "x.y"])
    assert api.records == {"abc12", "xzy", "keep"}, "exact ids only: no prefix, no regex metacharacter at large"
    assert api.calls[0] == r"^(abc1|x\.y)$"
    assert len(api.calls) == (3 if literal else 1), "one by one only for what the pattern did not remove"
    d.remove_build_records([])
    assert len(api.calls) == (3 if literal else 1), "nothing to remove: the engine is not asked"


def test_docker_removes_many_build_records_in_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(drivers, "PRUNE_BATCH", 2)
    d = DockerDriver()
    api = _PruneApi({f"r{i}" for i in range(5)} | {"keep"})
    d._client = type("Client", (), {"api": api})()  # type: ignore[assignment]
    d.remove_build_records([f"r{i}" for i in range(5)])
    assert api.records == {"keep"} and api.calls == ["^(r0|r1)$", "^(r2|r3)$", "^(r4)$"]


class _Busy(docker.errors.APIError):
    def __str__(self) -> str:
        return "500 Server Error: a disk usage operation is already running"


def test_docker_lists_build_records_again_when_the_engine_is_busy_listing(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Path) -> None:
    """Docker before 23 answers a second `system df` with HTTP 500 while one runs: ours take turns through a lock,
    and one that collides with someone else's is tried again; any other error is the caller's."""
    monkeypatch.setenv("GCM_CACHE_DIR", str(tmp_path))  # where the lock lives
    monkeypatch.setattr(drivers.time, "sleep", lambda s: None)
    answers: list[Any] = [_Busy("busy"), _Busy("busy"), {"BuildCache": [{"ID": "a", "Type": "source.local"}]}]

    def df() -> Any:
        got = answers.pop(0)
        if isinstance(got, Exception):
            raise got
        return got

    d = DockerDriver()
    d._client = type("Client", (), {"df": staticmethod(df)})()  # type: ignore[assignment]
    assert d.context_records() == {"a"} and answers == []
    answers[:] = [_Busy("busy")] * drivers.DF_TRIES
    with pytest.raises(docker.errors.APIError):
        d.context_records()
    answers[:] = [docker.errors.APIError("500 Server Error: something else")]
    with pytest.raises(docker.errors.APIError, match="something else"):
        d.context_records()


def test_forgetting_contexts_removes_only_the_context_records_made_meanwhile() -> None:
    d = _RecordingDocker([BuildRecord("old", "source.local", "local source for context"), *RECORDS])
    with engine.forgetting_contexts(d):
        d.records.append(BuildRecord("new", "source.local", "local source for context"))
        d.records.append(BuildRecord("layer", "regular", "a step's layer"))
    assert d.removed == ["new"], "the earlier context, and every other kind of record, stay"
    podman = PodmanDriver()
    with engine.forgetting_contexts(podman):  # buildah keeps no records: none listed, none to remove
        pass
    assert podman.context_records() == set()


def test_forgetting_contexts_removes_none_when_the_engine_did_not_list_them_first(
        monkeypatch: pytest.MonkeyPatch) -> None:
    d = _RecordingDocker([BuildRecord("old", "source.local", "local source for context")])
    listing = iter([docker.errors.APIError("engine busy")])

    def context_records() -> set[str]:
        for e in listing:
            raise e
        return {r.id for r in d.records}

    monkeypatch.setattr(d, "context_records", context_records)
    with engine.forgetting_contexts(d):
        d.records.append(BuildRecord("new", "source.local", "local source for context"))
    assert d.removed == [], "not knowing what was there before, it removes nothing rather than everything"


# ---------------------------------------------------------------- where a build starts
@pytest.mark.parametrize(("cls", "emulated", "local"), [(DockerDriver, False, True), (DockerDriver, True, False),
                                                        (PodmanDriver, False, True), (PodmanDriver, True, True)])
def test_a_build_starts_from_a_local_image_unless_the_builder_would_ask_a_registry(
        cls: type[SdkDriver], emulated: bool, local: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(buildrun.toolchains, "ensure", lambda tc, arch: object())
    monkeypatch.setattr(buildrun, "gobuild_image", lambda *a: "gcm-gobuild/debian-12:arm64-k")
    monkeypatch.setattr(buildrun, "_go_tar", lambda tree: tmp_path / "go.tar")

    class _Base:
        tar = tmp_path / "rootfs.tar"

    monkeypatch.setattr(buildrun.images, "base_for_build", lambda *a: (_Base(), True))
    monkeypatch.setattr(buildrun.images, "cell_dockerfile", lambda *a: "FROM ${BASE}\n")
    monkeypatch.setattr(buildrun.images, "render_dockerfile", lambda t, b: ("ARG BASE\n" + t, "rootfs"))
    env = BuildEnv.__new__(BuildEnv)
    env.driver, env.registry_mirror, env.images_dir = cls(), None, tmp_path
    env.cell = type("C", (), {"toolchain": None, "distro": None})()  # type: ignore[assignment]
    env.timeout, env.emulated = (lambda a: 60.0), (lambda a: emulated)
    builds = Builds.__new__(Builds)
    builds.env, builds.root, builds.from_lines = env, tmp_path, {}
    builds.prepare(Arch.ARM64, "gcm-cell/debian-12:arm64-k", "sha256:1")
    text, go_tar, rootfs = builds.from_lines[Arch.ARM64]
    if local:
        assert text == f"FROM {env.driver.local_ref('gcm-gobuild/debian-12:arm64-k')}\n" and go_tar is rootfs is None
    else:
        assert text.startswith("ARG BASE=rootfs\n") and text.endswith("ADD go.tar /usr/local/\n")
        assert go_tar == tmp_path / "go.tar" and rootfs == tmp_path / "rootfs.tar"


def test_only_podman_records_who_could_run_it_rootless(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(drivers.host, "subid_users", lambda: ["builder"])
    assert PodmanDriver().host_facts() == {"rootless_users": ["builder"]}
    assert DockerDriver().host_facts() == {}
