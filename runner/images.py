"""Provision the image a cell runs in: a base (registry | rootfs) + the family Dockerfile.

    distro.sources, in order ──> the first one already cached here is used (pulled image, rootfs tar);
                                 else the first that can be obtained (pull / debootstrap);
                                 else ImageUnavailable with every source's reason.
    base ──(images/<family>.Dockerfile rendered from matrix.toml, BuildKit, --platform)──>
        gcm-cell/<distro>:<arch>-<content key>             (upstream toolchains: Go is mounted per cell)
        gcm-cell/<distro>:<arch>-distro-go-<content key>   (toolchain = "distro": the release's own Go)

Tags are content-addressed, so a second run finds everything and downloads nothing.

Why one module of ~520 lines: the source order, cache lookup, pull (with retries), debootstrap fallback and
build are one decision chain that reads top to bottom; engine differences live in runner.drivers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker.errors
import requests.exceptions

from runner import paths, pull_retry, refs
from runner.engine import LABEL_CACHE, LABEL_MANAGED, Driver, forgetting_contexts
from runner.errors import CellProblem
from runner.model import Arch, Distro, Family, ImageSource, Status
from runner.paths import cache_dir, locked, rmtree_unmounted, unmount_below

ROOTFS_RECIPE = "1"  # bump when the debootstrap recipe below changes: old images stop matching
DEBOOTSTRAP_TIMEOUT = 900.0


class ImageUnavailable(CellProblem):
    """No source could provide the base image here; the message carries each source's reason."""

    status = Status.UNAVAILABLE
    what = "image"


class ImageBuildError(CellProblem):
    """The family Dockerfile failed to build: a recipe or host problem, not a missing image."""

    status = Status.ERROR


class DistroGoBroken(ImageBuildError):
    """The release's Go package installed but gives no usable `go`: a finding about the distro (`fail`), not the
    tool."""

    status = Status.FAIL

    def observations(self) -> dict[str, Any]:
        return {"distro_go_broken": str(self)}


# The line a template's distro_go block prints before it stops the build (images/*.Dockerfile): the package
# manager's own words about why the release's Go could not be had (unavailable) or does not work (fail).
DISTRO_GO_STOP = re.compile(r"gcm-distro-go: (unavailable|fail): (.+)")


def distro_go_stop(output: str) -> tuple[str, str] | None:
    """(kind, message) of the last stop line in a build's output, or None. BuildKit prefixes each line of a
    step's output (`#8 3.21 `); the echoed RUN text holds `gcm-distro-go: $1: $2`, which does not match."""
    found = None
    for line in output.splitlines():
        m = DISTRO_GO_STOP.search(line)
        if m:
            found = (m.group(1), m.group(2).strip())
    return found


@dataclass
class CellImage:
    tag: str
    image_id: str
    source: str
    base: str  # the reference it came from (image@digest, or debootstrap suite)
    base_key: str  # image id of a pulled base, or the rootfs recipe key
    reused: bool  # everything was already provisioned
    seconds: float
    notes: list[str] = field(default_factory=list)
    # registry source: ref (as matrix.toml names it), mirror, pulled_ref, digest, image_id, platform
    registry: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"tag": self.tag, "id": self.image_id, "source": self.source, "base": self.base,
                "base_key": self.base_key, "reused": self.reused, "provision_sec": round(self.seconds, 3),
                "notes": self.notes, "registry": self.registry}


def _key(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def registry_ref(distro: Distro) -> str:
    return f"{distro.image}@{distro.digest}" if distro.digest else distro.image


def pull_ref(distro: Distro, mirror: str | None = None) -> str:
    """What the registry source pulls: registry_ref, through the registry mirror when one is set (refs.rewrite)."""
    return refs.rewrite(registry_ref(distro), mirror)


def base_tag(distro: Distro, arch: Arch, mirror: str | None = None) -> str:
    """Local tag of a pulled registry base image, keyed by what was pulled (a mirror's image is its own)."""
    return f"gcm-base/{distro.id}:{arch.value}-{_key(pull_ref(distro, mirror), arch.value)}"


def pulled_record(distro: Distro, arch: Arch, mirror: str | None) -> Path:
    """What the pull of base_tag recorded (the digest the engine reported), for runs that reuse the image."""
    return cache_dir() / "pulled" / f"{base_tag(distro, arch, mirror).replace('/', '-').replace(':', '-')}.json"


def _registry_facts(distro: Distro, arch: Arch, mirror: str | None, attrs: dict[str, Any],
                    digest: str | None = None) -> dict[str, Any]:
    ref, pulled = registry_ref(distro), pull_ref(distro, mirror)
    if digest is None:  # a reused image: what its pull recorded, else what the engine still knows
        with contextlib.suppress(OSError, ValueError):
            saved = json.loads(pulled_record(distro, arch, mirror).read_text())
            if saved.get("image_id") == attrs["Id"]:
                digest = saved.get("digest")
    return {"ref": ref, "mirror": refs.mirror_for(ref, mirror) if pulled != ref else None, "pulled_ref": pulled,
            "digest": digest or refs.parse(pulled).digest or refs.repo_digest(attrs.get("RepoDigests"), pulled),
            "image_id": str(attrs["Id"]), "platform": f"{attrs.get('Os')}/{attrs.get('Architecture')}"}


DEBOOTSTRAP = Path("/usr/sbin/debootstrap")
DEBOOTSTRAP_SCRIPTS = Path("/usr/share/debootstrap/scripts")
FALLBACK_SCRIPT = "sid"  # Debian's suites share one recipe: sid's script builds testing and a codename too new


def debootstrap_script(suite: str, scripts: Path | None = None) -> str | None:
    """The script to hand debootstrap for a suite it has no script for (a release newer than the host's
    debootstrap, e.g. forky on bookworm): sid's. None when debootstrap knows the suite itself (or is absent)."""
    scripts = scripts or DEBOOTSTRAP_SCRIPTS
    if not scripts.is_dir() or (scripts / suite).exists():
        return None
    return str(scripts / FALLBACK_SCRIPT)


def debootstrap_default_mirror(program: Path | None = None) -> str | None:
    """debootstrap's own default mirror (its DEF_MIRROR): a script argument needs a mirror before it, and the one
    debootstrap would use is the one to name, not a host written here."""
    with contextlib.suppress(OSError):
        m = re.search(r'^DEF_MIRROR="([^"]+)"', (program or DEBOOTSTRAP).read_text(errors="replace"), re.M)
        if m:
            return m.group(1)
    return None


def rootfs_key(distro: Distro, arch: Arch) -> str:
    assert distro.rootfs is not None
    r = distro.rootfs
    parts = [ROOTFS_RECIPE, r.suite, r.variant, r.mirror or "", arch.value]
    if debootstrap_script(r.suite):  # only then: the tarballs of suites debootstrap knows keep their key
        parts.append(FALLBACK_SCRIPT)
    return _key(*parts)


def rootfs_tar(distro: Distro, arch: Arch) -> Path:
    """Cached debootstrap tree as a tarball: the build context of rootfs-based cell images."""
    return cache_dir() / "rootfs" / f"{distro.id}-{arch.value}-{rootfs_key(distro, arch)}" / "rootfs.tar"


def platform_mismatch(attrs: dict[str, Any], arch: Arch) -> str | None:
    got = f"{attrs.get('Os', '?')}/{attrs.get('Architecture', '?')}"
    return None if got == arch.to_oci() else f"image config says {got}, wanted {arch.to_oci()}"


@dataclass(frozen=True)
class Base:
    """Where a cell image starts: a pulled image (FROM ref) or a rootfs tarball (FROM scratch + ADD)."""

    source: ImageSource
    origin: str  # what a reader is told: image@digest, or the debootstrap command
    key: str  # content key of the base, part of the cell image tag
    from_ref: str | None = None  # registry: local tag of the pulled, platform-checked image
    tar: Path | None = None  # rootfs: the tarball
    registry: dict[str, Any] | None = field(default=None, compare=False)  # registry: _registry_facts


def _release_digest_name(driver: Driver, pulled: str, arch: Arch) -> None:
    """docker keeps one image per name, digests included: once a multi-arch index digest was pulled for one arch,
    pulling it for another fails ("Cannot overwrite digest"). Drop that name first when it holds another arch;
    the image it named keeps its gcm-base tag."""
    r = refs.parse(pulled)
    if r.digest is None:
        return
    name = str(refs.Ref(r.domain, r.path, None, r.digest))
    held = driver.image_attrs(name)
    if held is not None and platform_mismatch(held, arch):
        driver.untag(name)


PULL_ERRORS = (docker.errors.APIError, requests.exceptions.RequestException)


def _error_text(e: Exception) -> str:
    """The engine's own words (APIError.explanation), not the SDK's wrapper around its HTTP 500."""
    return str(getattr(e, "explanation", None) or e)


def _pull(driver: Driver, distro: Distro, arch: Arch, mirror: str | None = None) -> Base:
    ref, pulled, tag = registry_ref(distro), pull_ref(distro, mirror), base_tag(distro, arch, mirror)
    named = pulled if pulled == ref else f"{pulled} (registry mirror for {ref})"
    # A local name holds one image: pull, check and tag under one lock, so a pull of the same repository for
    # another arch (another worker) cannot swap the image in between.
    with locked(f"pull-{driver.engine.value}-{_key(refs.parse(pulled).path)}"):
        _release_digest_name(driver, pulled, arch)
        attempts = []

        def pull() -> tuple[dict[str, Any], str | None]:
            attempts.append(1)
            return driver.pull(pulled, arch)

        try:  # a rate limit (429) or a registry's 5xx is tried again with backoff (runner.pull_retry)
            attrs, digest = pull_retry.with_retries(pull, _error_text, retry_on=PULL_ERRORS)
        except PULL_ERRORS as e:
            tries = f" (after {len(attempts)} attempts)" if len(attempts) > 1 else ""
            raise ImageUnavailable(f"pull {named} for {arch.to_oci()} failed{tries}: {_error_text(e)}") from None
        mismatch = platform_mismatch(attrs, arch)
        if mismatch:
            raise ImageUnavailable(f"pulled {named} but {mismatch}")
        driver.tag_image(str(attrs["Id"]), tag)
    facts = _registry_facts(distro, arch, mirror, attrs, digest)
    record = pulled_record(distro, arch, mirror)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(facts))
    return Base(ImageSource.REGISTRY, pulled, str(attrs["Id"]), from_ref=tag, registry=facts)


def _debootstrap_command(distro: Distro, arch: Arch, target: str) -> list[str]:
    """debootstrap [--variant --arch] SUITE TARGET [MIRROR [SCRIPT]]: the script only for a suite the host's
    debootstrap has none for, and then the mirror too (positional): matrix.toml's, else debootstrap's default."""
    r = distro.rootfs
    assert r is not None
    cmd = ["debootstrap", f"--variant={r.variant}", f"--arch={arch.to_go()}", r.suite, target]
    script = debootstrap_script(r.suite)
    mirror = r.mirror or (debootstrap_default_mirror() if script else None)
    if script and mirror:
        return [*cmd, mirror, script]
    return [*cmd, mirror] if mirror else cmd


def _rootfs_base(distro: Distro, arch: Arch) -> Base:
    tar = rootfs_tar(distro, arch)
    origin = " ".join(_debootstrap_command(distro, arch, "DIR"))
    return Base(ImageSource.ROOTFS, origin, rootfs_key(distro, arch), tar=tar)


def _debootstrap(distro: Distro, arch: Arch, emulated: bool) -> Base:
    if not shutil.which("debootstrap"):
        raise ImageUnavailable("rootfs: debootstrap is not installed (fix: `apt-get install debootstrap`)")
    if os.geteuid() != 0:
        raise ImageUnavailable("rootfs: debootstrap needs root (run as root, or use the registry source)")
    base = _rootfs_base(distro, arch)
    assert base.tar is not None
    work = base.tar.parent.parent
    work.mkdir(parents=True, exist_ok=True)
    # We hold this (distro, arch)'s lock: temp dirs with our prefix are leftovers of a killed run.
    prefix = f".{base.tar.parent.name}."
    for stale in work.glob(prefix + "*"):
        rmtree_unmounted(stale)
    tmp = Path(tempfile.mkdtemp(dir=work, prefix=prefix))
    cmd = _debootstrap_command(distro, arch, str(tmp / "root"))
    timeout = DEBOOTSTRAP_TIMEOUT * (3 if emulated else 1)
    try:
        with open(tmp / "debootstrap.log", "w") as log:
            try:
                proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
            except subprocess.TimeoutExpired:
                raise ImageUnavailable(f"rootfs: `{' '.join(cmd)}` timed out after {timeout:.0f}s") from None
        if proc.returncode != 0:
            tail = (tmp / "debootstrap.log").read_text(errors="replace").strip().splitlines()[-3:]
            raise ImageUnavailable(f"rootfs: `{' '.join(cmd)}` exited {proc.returncode}: {' | '.join(tail)}")
        unmount_below(tmp)
        (tmp / "ctx").mkdir()
        tar = subprocess.run(["tar", "-C", str(tmp / "root"), "--numeric-owner", "-cf", str(tmp / "ctx" / "rootfs.tar"),
                              "."], capture_output=True, text=True)
        if tar.returncode != 0:
            raise ImageUnavailable(f"rootfs: packing the tree failed: {tar.stderr.strip()}")
        if base.tar.parent.exists():
            shutil.rmtree(base.tar.parent)
        (tmp / "ctx").rename(base.tar.parent)
    finally:
        rmtree_unmounted(tmp)
    return base


def _base(driver: Driver, distro: Distro, arch: Arch, emulated: bool, mirror: str | None = None
          ) -> tuple[Base, bool]:
    """The base and whether it was already here. Cached sources first, then obtainable ones, in order."""
    for source in distro.sources:
        if source is ImageSource.REGISTRY:
            attrs = driver.image_attrs(base_tag(distro, arch, mirror))
            if attrs and platform_mismatch(attrs, arch) is None:
                return Base(source, pull_ref(distro, mirror), str(attrs["Id"]), from_ref=base_tag(distro, arch, mirror),
                            registry=_registry_facts(distro, arch, mirror, attrs)), True
        elif rootfs_tar(distro, arch).is_file():
            return _rootfs_base(distro, arch), True
    reasons = []
    for source in distro.sources:
        try:
            if source is ImageSource.REGISTRY:
                return _pull(driver, distro, arch, mirror), False
            return _debootstrap(distro, arch, emulated), False
        except ImageUnavailable as e:
            reasons.append(str(e))
    raise ImageUnavailable("; ".join(reasons))


# A rootfs base becomes the first stage, so a cell image never needs a registry lookup: a
# `FROM <local tag>` for a foreign platform makes the engine's BuildKit ask the registry anyway, and
# `docker import --platform` records the host's arch (both seen with docker 20.10).
ROOTFS_STAGE = "ARG BASE\nFROM scratch AS rootfs\nADD rootfs.tar /\n\n"


def base_for_build(driver: Driver, distro: Distro, arch: Arch, emulated: bool, mirror: str | None = None
                   ) -> tuple[Base, bool]:
    """The base of distro/arch (cached sources first), for builds that start from it themselves."""
    with locked(f"image-{driver.engine.value}-{distro.id}-{arch.value}"):
        return _base(driver, distro, arch, emulated, mirror)


def render_dockerfile(template: str, base: Base) -> tuple[str, str]:
    """(Dockerfile text, value of the BASE build arg)."""
    if base.source is ImageSource.ROOTFS:
        return ROOTFS_STAGE + template, "rootfs"
    assert base.from_ref is not None
    return template, base.from_ref


# ---------------------------------------------------------------- family templates (images/<family>.Dockerfile)
_BLOCK = re.compile(r"^#%\s*(if\s+(\w+)|endif)\s*$")
_VALUE = re.compile(r"\{\{\s*(\w+)\s*\}\}")


class TemplateError(ValueError):
    pass


def render_template(template: str, values: Mapping[str, str], flags: Mapping[str, bool], name: str = "template"
                    ) -> str:
    """`#% if FLAG` ... `#% endif` lines keep or drop a block; `{{ name }}` is replaced by values[name].
    Unknown flags or values, and unbalanced blocks, are errors (a typo must not render an empty block)."""
    out: list[str] = []
    stack: list[bool] = []
    for n, line in enumerate(template.splitlines(keepends=True), 1):
        m = _BLOCK.match(line.strip())
        if m:
            if m.group(2) is not None:
                if m.group(2) not in flags:
                    raise TemplateError(f"{name}:{n}: unknown flag {m.group(2)!r}")
                stack.append(flags[m.group(2)])
            elif not stack:
                raise TemplateError(f"{name}:{n}: `#% endif` without `#% if`")
            else:
                stack.pop()
            continue
        if all(stack):
            out.append(line)
    if stack:
        raise TemplateError(f"{name}: `#% if` without `#% endif`")

    def value(m: re.Match[str]) -> str:
        if m.group(1) not in values:
            raise TemplateError(f"{name}: unknown value {{{{ {m.group(1)} }}}}")
        return values[m.group(1)]

    return _VALUE.sub(value, "".join(out))


def template_path(images_dir: Path, family: Family) -> Path:
    return images_dir / f"{family.value}.Dockerfile"


def cell_dockerfile(images_dir: Path, distro: Distro, *, distro_go: bool = False) -> str:
    """The family template rendered for this distro: plain, or with the release's own Go package."""
    path = template_path(images_dir, distro.family)
    if not path.is_file():
        raise ImageBuildError(f"no recipe {path} for family {distro.family.value}")
    go = distro.go_package()
    try:
        return render_template(path.read_text(), {"go_package": go.package, "go_suite": go.suite or ""},
                               {"distro_go": distro_go}, name=path.name)
    except TemplateError as e:
        raise ImageBuildError(f"rendering {path.name}: {e}") from None


def render_all(images_dir: Path, distros: Mapping[str, Distro], dest: Path) -> list[Path]:
    """Every rendering a matrix can build (per distro: plain and with its own Go), FROM a placeholder base:
    what `nox -s lint` hands to hadolint and the unit tests parse."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for distro in distros.values():
        for distro_go in (False, True):
            text = cell_dockerfile(images_dir, distro, distro_go=distro_go)
            out = dest / f"{distro.id}{'-distro-go' if distro_go else ''}.Dockerfile"
            out.write_text(text)
            written.append(out)
    return written


DISTRO_GO_FACTS = "/usr/share/go-cache-matrix/distro-go"  # written by the template's distro_go block


def parse_facts(text: str) -> dict[str, str]:
    return {k.strip(): v.strip() for k, sep, v in (line.partition("=") for line in text.splitlines()) if sep}


def distro_go_facts(driver: Driver, image: CellImage, arch: Arch, labels: Mapping[str, str]) -> dict[str, str]:
    """What the image's Go package is (package, version, suite used, GOROOT, go version): read once per image
    from the facts file its build wrote, with a one-shot container, then cached by image id."""
    cache = cache_dir() / "distro-go" / f"{image.image_id.replace(':', '-')}.json"
    try:
        return dict(json.loads(cache.read_text()))
    except (OSError, ValueError):
        pass
    with driver.container(image=image.tag, command=["cat", DISTRO_GO_FACTS], mounts=[], env={},
                          labels=labels, platform=arch) as c:
        code, timed_out = driver.wait(c, 300)
        text = driver.logs(c)
    facts = parse_facts(text)
    if code != 0 or timed_out or not facts.get("go_version") or not facts.get("goroot"):
        # The recipe stops the build rather than write an empty file: this is an image made by another recipe.
        got = "timed out" if timed_out else f"exit {code}"
        raise ImageBuildError(f"{image.tag}: {DISTRO_GO_FACTS} names no go_version/goroot ({got}): "
                              f"{text.strip()[-300:] or '(empty)'}; fix: `go-cache-matrix clean --images` and run "
                              f"again to rebuild the image")
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(facts))
    return facts


def _raise_distro_go_stop(distro: Distro, output: str) -> None:
    """A build the distro_go block stopped: unavailable (the package cannot be had: ImageUnavailable, so a later
    run tries the mirror again) or fail (it installed but gives no usable go: DistroGoBroken)."""
    stop = distro_go_stop(output)
    if stop is None:
        return
    kind, message = stop
    what = f"{distro.name} {distro.release}'s Go package ({distro.go_package().package})"
    if kind == "unavailable":
        raise ImageUnavailable(f"{what} cannot be installed: {message}")
    raise DistroGoBroken(f"{what}: {message}")


def provision(driver: Driver, distro: Distro, arch: Arch, images_dir: Path, *, emulated: bool,
              distro_go: bool = False, mirror: str | None = None) -> CellImage:
    """The cell image of (distro, arch); distro_go: with the release's own Go package installed; mirror: the
    registry mirror Docker Hub references are pulled through (settings.registry_mirror, refs.rewrite)."""
    start = time.monotonic()
    template = cell_dockerfile(images_dir, distro, distro_go=distro_go)
    with locked(f"image-{driver.engine.value}-{distro.id}-{arch.value}"):
        base, reused = _base(driver, distro, arch, emulated, mirror)
        text, base_arg = render_dockerfile(template, base)
        flavour = "distro-go-" if distro_go else ""
        tag = f"gcm-cell/{distro.id}:{arch.value}-{flavour}{_key(text, base.key, arch.value)}"
        attrs = driver.image_attrs(tag)
        if attrs is None:
            reused = False
            with tempfile.TemporaryDirectory(prefix="gcm-build-") as tmp:
                dockerfile = Path(tmp) / "Dockerfile"
                dockerfile.write_text(text)
                context = str(base.tar.parent) if base.tar else tmp
                with forgetting_contexts(driver):  # the context is the rootfs tar's directory
                    proc = driver.build(context=context, dockerfile=str(dockerfile), tag=tag, platform=arch,
                                        labels={LABEL_MANAGED: "1", LABEL_CACHE: "1"},
                                        build_args={"BASE": base_arg}, timeout=1800 if emulated else 600)
            if proc.returncode != 0:
                _raise_distro_go_stop(distro, f"{proc.stdout}\n{proc.stderr}")
                tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-4:])
                raise ImageBuildError(f"building {tag} from {template_path(images_dir, distro.family).name} "
                                      f"failed: {tail}")
            attrs = driver.image_attrs(tag)
            if attrs is None:
                raise ImageBuildError(f"{tag} is missing after a successful build")
        mismatch = platform_mismatch(attrs, arch)
        if mismatch:
            raise ImageBuildError(f"{tag}: {mismatch}")
    return CellImage(tag=tag, image_id=str(attrs["Id"]), source=base.source.value, base=base.origin,
                     base_key=base.key, reused=reused, seconds=time.monotonic() - start, registry=base.registry)


def remove_cached(driver: Driver) -> int:
    """Remove every cached base and cell image (`clean --images`)."""
    return sum(driver.remove_image(i) for ref in ("gcm-base/*", "gcm-cell/*", "gcm-gobuild/*")
               for i in driver.image_ids(ref))


def main(argv: list[str] | None = None) -> int:
    """`python -m runner.images DIR [--matrix FILE]`: write every rendering of the family templates to DIR."""
    import argparse

    from runner import config

    p = argparse.ArgumentParser(prog="python -m runner.images", description=main.__doc__)
    p.add_argument("dest")
    p.add_argument("--matrix", default="matrix.toml")
    args = p.parse_args(argv)
    cfg = config.load(args.matrix)
    images_dir = paths.images_dir()
    # A family the matrix does not list is still rendered, with a stand-in distro of that family.
    distros = dict(cfg.distros)
    for family in Family:
        if not any(d.family is family for d in distros.values()):
            distros[f"any-{family.value}"] = Distro(id=f"any-{family.value}", name=family.value, release="any",
                                                    family=family, image="example/any", digest=None, eol="unknown",
                                                    sources=(ImageSource.REGISTRY,), arches=tuple(Arch))
    for path in render_all(images_dir, distros, Path(args.dest)):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
