"""Engine builds for host-driven scenarios (`buildkit`): Dockerfile, context, build, result.

Each build gets its own context directory (under the cache dir, so big files are hard links):

    src/              the `small` workload with this build's one-line edits
    gcm/probe         the static probe for the build's arch, gcm/job.json its job, gcm/proxy the
                      offline module proxy; bind-mounted (read-only) into the RUN step
    go.tar, rootfs.tar only when the build cannot start FROM a local image (see _dockerfile)

The RUN step mounts the cache ids, runs the probe and prints its result base64-encoded between two
marker lines; both builders pass a step's output through (BuildKit's plain progress prefixes each
line with "#N <seconds> "), so the result comes back in the build log, whatever the builder.
Every build is tagged, labelled with the run and cell, and removed; the cell's cache mounts are
removed afterwards (docker: its build-cache records; podman: buildah's cache directories). What differs between the
builders is the driver's (runner.drivers); this module does not ask which engine it has.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker.errors
import requests.exceptions

from runner import images, toolchains
from runner import probe as probe_build
from runner.drivers import host_cache_roots
from runner.engine import LABEL_CACHE, LABEL_CELL, LABEL_MANAGED, Driver, known_contexts
from runner.model import Arch, Cell
from runner.paths import cache_dir, locked
from runner.resources import CellUnavailable, owner_gone, owner_token
from runner.scenarios import BASE_PATH
from runner.scenarios.buildkit import EDIT_FILE, GOCACHE, GOMODCACHE, SRC, Build

BEGIN, END = "GCM-RESULT-BEGIN", "GCM-RESULT-END"
_BUILDKIT_PREFIX = re.compile(r"^#\d+ (?:\d+\.\d+ )?")
_STEP_HEADER = re.compile(r"^#(\d+) \[[^\]]*\] RUN --mount")
_STEP_DONE = re.compile(r"^#(\d+) DONE (\d+(?:\.\d+)?)s")
GOTAR_RECIPE = "1"


@dataclass
class BuildEnv:
    """What the builds of one cell need per arch, provisioned by the caller's cache."""

    cell: Cell
    driver: Driver
    run_id: str
    labels: dict[str, str]
    workload_src: Path
    proxy_dir: Path
    host_tree: toolchains.GoTree
    images_dir: Path
    timeout: Callable[[Arch], float]  # seconds for one build of that arch
    emulated: Callable[[Arch], bool]
    registry_mirror: str | None = None  # RunContext.registry_mirror
    workload: str = "small"  # runner/workloads/<workload> is COPYed into the build context (JobContext.workload)


def cache_id(run_id: str, cell_id: str) -> str:
    """One cache id per cell and run: concurrent cells and runs never share a mount by accident."""
    return f"gcm-{run_id.lower()}-{hashlib.sha256(cell_id.encode()).hexdigest()[:10]}"


def marker(cid: str) -> str:
    """What the RUN step's command holds for the builds of cache id `cid`: the builder's records name it."""
    return f"GCM_CACHE_ID={cid}"


def _owned_by(run_id: str | None) -> re.Pattern[str]:
    """Names that cache_id() gives a run's builds (every run's when None), with suffixes such as buildah's
    -gocache or the nonroot variant's -uid-gocache. Group 1: the cache id."""
    run = re.escape(run_id.lower()) if run_id else ".+"
    return re.compile(rf"(gcm-{run}-[0-9a-f]{{10}})(-[a-z]+)*")


def sweep_host_dirs(run_id: str | None = None) -> int:
    """Remove the build contexts and the host cache-mount dirs (buildah's: drivers.host_cache_roots) that killed runs
    left on this host (a finished or interrupted cell removes its own): those of `run_id`, or of every run, never a
    live run's (its build context names its owner process). The number removed."""
    owned = _owned_by(run_id)
    ctx_root = cache_dir() / "buildctx"

    def live(cid: str) -> bool:
        try:
            return not owner_gone((ctx_root / cid / "owner").read_text().strip())
        except OSError:
            return False

    removed = 0
    for root in [ctx_root, *host_cache_roots()]:
        for d in (root.iterdir() if root.is_dir() else ()):
            m = owned.fullmatch(d.name)
            if d.is_dir() and m and not live(m.group(1)):
                shutil.rmtree(d, ignore_errors=True)
                removed += 1
    return removed


def prune_build_records(driver: Driver, run_id: str | None = None) -> int:
    """Remove the builder's records (BuildKit's cache mounts, step layers) of the builds of `run_id`, or of every
    run; a builder that keeps none (buildah: host dirs, see sweep_host_dirs) has none to remove. The RUN step's
    command names its cache id (marker()), which is how the records are found."""
    owned = re.compile(marker(r"(\S+)"))
    names = _owned_by(run_id)
    ids = [r.id for r in driver.build_records()
           if (m := owned.search(r.description)) and names.fullmatch(m.group(1))]
    driver.remove_build_records(ids)
    return len(ids)


def parse_output(text: str) -> tuple[dict[str, Any] | None, float | None]:
    """(probe result, the RUN step's own time from BuildKit's progress, if shown) from a build log."""
    lines = [_BUILDKIT_PREFIX.sub("", ln.rstrip("\r")) for ln in text.splitlines()]
    payload: list[str] | None = None
    result = None
    for ln in lines:
        if ln.strip() == BEGIN:
            payload = []
        elif ln.strip() == END and payload is not None:
            try:
                result = json.loads(base64.b64decode("".join(payload)))
            except (binascii.Error, ValueError):
                result = None
            payload = None
        elif payload is not None:
            payload.append(ln.strip())
    run_vertex, step_sec = None, None
    for ln in text.splitlines():
        m = _STEP_HEADER.match(ln)
        if m:
            run_vertex = m.group(1)
        d = _STEP_DONE.match(ln)
        if d and d.group(1) == run_vertex:
            step_sec = float(d.group(2))
    return result, step_sec


def _go_tar(tree: toolchains.GoTree) -> Path:
    """The toolchain as an uncompressed tar of go/ (ADD unpacks it into /usr/local), cached."""
    out = cache_dir() / "gotar" / f"{tree.version}-{tree.arch.value}-{GOTAR_RECIPE}.tar"
    if out.exists():
        return out
    with locked(f"gotar-{tree.version}-{tree.arch.value}"):
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_suffix(".tmp")
            with tarfile.open(tmp, "w") as tf:
                tf.add(tree.goroot, arcname="go")
            tmp.rename(out)
    return out


def _link(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def gobuild_image(driver: Driver, cell_tag: str, cell_image_id: str, tree: toolchains.GoTree, arch: Arch,
                  ctx_root: Path, timeout: float) -> str:
    """The cell image plus the Go tree at /usr/local/go, baked once per (cell image, toolchain)."""
    key = hashlib.sha256(f"{cell_image_id}\0{tree.version}\0{GOTAR_RECIPE}".encode()).hexdigest()[:12]
    tag = f"gcm-gobuild/{cell_tag.split('/', 1)[-1].split(':')[0]}:{arch.value}-{key}"
    with locked(f"gobuild-{driver.engine.value}-{tag.replace('/', '_')}"):
        if driver.image_attrs(tag) is not None:
            return tag
        d = Path(tempfile.mkdtemp(prefix="gobuild-", dir=ctx_root))
        try:
            _link(_go_tar(tree), d / "go.tar")
            (d / "Dockerfile").write_text(f"FROM {driver.local_ref(cell_tag)}\nADD go.tar /usr/local/\n")
            proc = driver.build(context=str(d), dockerfile=str(d / "Dockerfile"), tag=tag, platform=arch,
                                labels={LABEL_MANAGED: "1", LABEL_CACHE: "1"}, build_args={}, timeout=timeout)
        finally:
            shutil.rmtree(d, ignore_errors=True)
        if proc.returncode != 0:
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-4:])
            raise images.ImageBuildError(f"baking {tag} (cell image + Go) failed: {tail}")
    return tag


def dockerfile(*, from_lines: str, b: Build, cid: str) -> str:
    """The build: FROM (a local image, or rootfs + Go), the sources, one RUN with the cache mounts."""
    cid = cid if b.cache == "main" else f"{cid}-{b.cache}"
    owner = f"uid={b.mount_uid},gid={b.mount_uid}," if b.mount_uid is not None else ""
    mounts = (f"--mount=type=bind,source=gcm,target=/opt/gcm "
              f"--mount=type=cache,id={cid}-gocache,target={GOCACHE},{owner}sharing={b.sharing} "
              f"--mount=type=cache,id={cid}-gomodcache,target={GOMODCACHE},{owner}sharing={b.sharing}")
    chown = f"--chown={b.user}:{b.user} " if b.user is not None else ""
    user = f"USER {b.user}:{b.user}\n" if b.user is not None else ""
    # marker() in the command text names the cell's mounts in BuildKit's cache records (for clean-up).
    return (f"{from_lines}"
            f"ENV PATH=/usr/local/go/bin:{BASE_PATH}\n"
            f"COPY {chown}src {SRC}\n"
            f"{user}"
            f"ARG GCM_BUILD\n"
            f"RUN {mounts} \\\n"
            f"    {marker(cid)} /opt/gcm/probe /opt/gcm/job.json /tmp/gcm-result.json; "
            f"echo {BEGIN}; base64 /tmp/gcm-result.json; echo {END}\n")


class Builds:
    """Runs one cell's builds; `close()` removes everything they left."""

    def __init__(self, env: BuildEnv, ctx_root: Path) -> None:
        self.env = env
        self.cid = cache_id(env.run_id, env.cell.id)
        self.root = ctx_root
        self.tags: list[str] = []
        self.from_lines: dict[Arch, tuple[str, Path | None, Path | None]] = {}
        self.contexts_before = known_contexts(env.driver)  # close() removes the ones this cell's builds add

    # ---------------------------------------------------------------- per arch: where builds start
    def prepare(self, arch: Arch, cell_tag: str | None = None, cell_image_id: str | None = None) -> None:
        """How builds of this arch start. Native, or a builder that finds a foreign-arch local image (buildah): FROM
        a local image baked from the cell image and Go. Otherwise (BuildKit resolves FROM <local tag> of another
        platform through the registry) the build starts from the rootfs (or the pulled base) and ADDs Go itself."""
        env, driver = self.env, self.env.driver
        tree = toolchains.ensure(env.cell.toolchain, arch)
        timeout = env.timeout(arch)
        if cell_tag is None:
            made = images.provision(driver, env.cell.distro, arch, env.images_dir, emulated=env.emulated(arch),
                                    mirror=env.registry_mirror)
            cell_tag, cell_image_id = made.tag, made.image_id
        if driver.builds_foreign_arch_from_local_image or not env.emulated(arch):
            tag = gobuild_image(driver, cell_tag, str(cell_image_id), tree, arch, self.root, timeout)
            self.from_lines[arch] = (f"FROM {driver.local_ref(tag)}\n", None, None)
            return
        base, _ = images.base_for_build(driver, env.cell.distro, arch, env.emulated(arch), env.registry_mirror)
        template = images.cell_dockerfile(env.images_dir, env.cell.distro)
        text, base_arg = images.render_dockerfile(template, base)
        text = text.replace("ARG BASE\n", f"ARG BASE={base_arg}\n", 1) + "ADD go.tar /usr/local/\n"
        self.from_lines[arch] = (text, _go_tar(tree), base.tar)

    # ---------------------------------------------------------------- one build
    def _context(self, b: Build, plan: list[Build], arch: Arch) -> Path:
        d = self.root / f"{b.name}"
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(self.env.workload_src / self.env.workload, d / "src")
        edits = [x.edit for x in plan if x.edit and (x.group < b.group or x is b)]
        with open(d / "src" / EDIT_FILE, "a") as fh:
            fh.writelines(f"{e}\n" for e in edits)
        gcm = d / "gcm"
        gcm.mkdir()
        _link(probe_build.ensure(self.env.host_tree, arch), gcm / "probe")
        shutil.copytree(self.env.proxy_dir, gcm / "proxy")
        (gcm / "job.json").write_text(json.dumps({"steps": self._job}, indent=1))
        from_text, go_tar, rootfs = self.from_lines[arch]
        if go_tar:
            _link(go_tar, d / "go.tar")
        if rootfs:
            _link(rootfs, d / "rootfs.tar")
        (d / "Dockerfile").write_text(dockerfile(from_lines=from_text, b=b, cid=self.cid))
        return d

    def build(self, b: Build, plan: list[Build], job: list[dict[str, Any]]) -> dict[str, Any]:
        """{"outcome": engine side, "probe": the probe's result or None}."""
        self._job = job
        arch = b.arch or self.env.cell.arch
        d = self._context(b, plan, arch)
        tag = f"gcm-bk/{self.cid}:{b.name}"
        self.tags.append(tag)
        extra = ["--no-cache"] if b.no_cache else []
        t0 = time.monotonic()
        outcome: dict[str, Any] = {}
        try:
            proc = self.env.driver.build(context=str(d), dockerfile=str(d / "Dockerfile"), tag=tag, platform=arch,
                                         labels=self.env.labels, build_args={"GCM_BUILD": f"{self.cid}-{b.name}"},
                                         timeout=self.env.timeout(arch), extra=extra)
        except subprocess.TimeoutExpired:
            outcome.update(error=f"the build exceeded {self.env.timeout(arch):.0f}s", exit_code=None)
            return {"outcome": outcome, "probe": None}
        outcome["build_sec"] = round(time.monotonic() - t0, 3)
        outcome["exit_code"] = proc.returncode
        log = (proc.stdout or "") + "\n" + (proc.stderr or "")
        probe, step_sec = parse_output(log)
        if step_sec is not None:
            outcome["step_sec"] = step_sec
        if proc.returncode != 0:
            outcome["error"] = _error_line(log)
        found = self.cache_mount_dir()
        if found:
            outcome["cache_dir"] = found
        if probe is not None and probe.get("machine") != arch.to_uname():
            outcome["error"] = f"the build ran on machine {probe.get('machine')!r}, expected {arch.to_uname()!r}"
            probe = None
        return {"outcome": outcome, "probe": probe}

    def prune(self) -> None:
        """What a user's prune does to this cell's build cache (only this cell's: never the host's)."""
        self.env.driver.prune_cell_builds(marker=marker(self.cid), labels={LABEL_CELL: self.env.cell.id})

    def cache_mount_dir(self) -> str | None:
        """Where the builder keeps this cell's cache mount on this host, if it keeps it as a host dir (buildah)."""
        return self.env.driver.cache_mount_dir(f"{self.cid}-gocache")

    def close(self) -> None:
        driver = self.env.driver
        for tag in self.tags:
            driver.remove_image(driver.local_ref(tag))
        with contextlib.suppress(docker.errors.DockerException, requests.exceptions.RequestException):
            # The cache mounts and the layers the RUN steps made, and the copies of the contexts the builds sent
            # (engine.forgetting_contexts says why those go too): one listing, one removal.
            records = driver.build_records()
            contexts = {r.id for r in records if r.type == "source.local"} - self.contexts_before \
                if self.contexts_before is not None else set()
            driver.remove_build_records([r.id for r in records if marker(self.cid) in r.description
                                         or r.id in contexts])
        cache = self.cache_mount_dir()
        if cache:
            for d in glob.glob(os.path.join(cache, f"{self.cid}-*")):
                shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(self.root, ignore_errors=True)


def _error_line(log: str) -> str:
    for ln in reversed(log.splitlines()):
        ln = _BUILDKIT_PREFIX.sub("", ln).strip()
        if ln.startswith(("Error", "error", "ERROR", "failed to")):
            # A builder error quotes the whole RUN line first; its own words come last.
            return ln if len(ln) <= 300 else "… " + ln[-300:]
    tail = [ln for ln in log.splitlines() if ln.strip()]
    return tail[-1][:400] if tail else "(no output)"


def run_builds(env: BuildEnv, plan: list[Build], job: list[dict[str, Any]], *, cell_tag: str, cell_image_id: str,
               arch_ok: Callable[[Arch], str | None]) -> dict[str, dict[str, Any]]:
    """Run the plan group by group (builds of one group at once); always clean up."""
    ctx_root = cache_dir() / "buildctx" / cache_id(env.run_id, env.cell.id)
    shutil.rmtree(ctx_root, ignore_errors=True)
    ctx_root.mkdir(parents=True)
    (ctx_root / "owner").write_text(owner_token())  # `clean` leaves a live run's build dirs alone
    runner = Builds(env, ctx_root)
    results: dict[str, dict[str, Any]] = {}
    try:
        for arch in dict.fromkeys(b.arch or env.cell.arch for b in plan):
            if arch is not env.cell.arch:
                why = arch_ok(arch)
                if why:
                    raise CellUnavailable(f"this variant also builds for {arch}: {why}")
            runner.prepare(arch, *((cell_tag, cell_image_id) if arch is env.cell.arch else ()))
        for group in sorted({b.group for b in plan}):
            members = [b for b in plan if b.group == group]
            if any(b.prune_before for b in members):
                runner.prune()
            with ThreadPoolExecutor(max_workers=len(members)) as pool:
                done = list(pool.map(lambda b: runner.build(b, plan, job), members))
            results.update({b.name: r for b, r in zip(members, done, strict=True)})
    finally:
        runner.close()
    return results
