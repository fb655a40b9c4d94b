"""Image references: Docker Hub normalisation and the registry mirror rewrite. Pure: no engine, no I/O.

    docker.io/library/debian:12@sha256:…  ──(registry mirror "host:port/prefix")──>
        host:port/prefix/library/debian:12@sha256:…        (tag and digest kept)

`debian:12`, `library/debian:12`, `index.docker.io/library/debian:12` name the same image as
`docker.io/library/debian:12` (docker's rules); `docker.io/rockylinux/rockylinux:9` becomes
`<mirror>/rockylinux/rockylinux:9`.

A mirror setting is one text (matrix.toml, GCM_REGISTRY_MIRROR, --registry-mirror, and what a run records):
comma-separated items, each `HOST[:PORT][/PREFIX]` (a mirror for Docker Hub, the form from before there were
others) or `REGISTRY=HOST[:PORT][/PREFIX]` (a mirror for that registry host):

    "m.example.com:5000/hub,quay.io=m.example.com:5000/quay"
        quay.io/centos/centos:stream9 ──> m.example.com:5000/quay/centos/centos:stream9

A reference to a registry the setting names no mirror for is left as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

DOCKER_HUB = "docker.io"
HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
MIRROR_FIX = ('write host[:port][/prefix] without a scheme for Docker Hub, e.g. "mirror.example.com:5000/dockerhub" '
              '(pulls docker.io/library/debian:12 as mirror.example.com:5000/dockerhub/library/debian:12), and '
              'REGISTRY=host[:port][/prefix] for another registry, e.g. quay.io=mirror.example.com:5000/quay; '
              'several comma-separated, or --registry-mirror once per registry')

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = re.compile(rf"^(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{{1,5}}))?$")
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")  # docker's path-component grammar


@dataclass(frozen=True)
class Ref:
    domain: str  # "docker.io" for Docker Hub under any of its names
    path: str  # "library/debian"
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        return self.repository + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


def _is_domain(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


def parse(ref: str) -> Ref:
    """NAME[:TAG][@DIGEST] with docker's defaults: no domain is Docker Hub, a one-part Hub name is library/."""
    name, _, digest = ref.strip().partition("@")
    tag = None
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        name, tag = name[:colon], name[colon + 1:]
    first, sep, rest = name.partition("/")
    domain, path = (first, rest) if sep and _is_domain(first) else (DOCKER_HUB, name)
    if domain in HUB_ALIASES:
        domain = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    return Ref(domain, path, tag or None, digest or None)


def _items(spec: str) -> list[tuple[str, str]]:
    """[(registry, mirror)] of a setting as written: `HOST…` is Docker Hub's; a registry alias of Hub is docker.io."""
    out = []
    for item in spec.split(","):
        registry, sep, target = item.strip().partition("=")
        registry = registry.strip().lower() if sep else DOCKER_HUB  # references' registries come out lower-case
        out.append((DOCKER_HUB if registry in HUB_ALIASES else registry, (target if sep else item).strip()))
    return out


def mirror_problem(spec: str) -> str | None:
    """Why `spec` cannot be a mirror setting (comma-separated HOST[:PORT][/PREFIX] or REGISTRY=HOST[:PORT][/PREFIX]
    items), or None."""
    if not spec.strip():
        return "empty registry mirror"
    seen: set[str] = set()
    for registry, target in _items(spec):
        if not target:
            return f"{spec!r} has an empty item: write a mirror in each, separated by commas"
        m = _HOST.match(registry)
        if not m or not _is_domain(registry) or (m.group("port") is not None and not 0 < int(m.group("port")) < 65536):
            return (f"{registry!r} before '=' is not a registry host (e.g. quay.io, registry.access.redhat.com, "
                    f"localhost:5000)")
        if registry in seen:
            return f"{spec!r} names a mirror for {registry} twice"
        seen.add(registry)
        if problem := _target_problem(target):
            return problem if registry == DOCKER_HUB else f"{registry}: {problem}"
    return None


def _target_problem(mirror: str) -> str | None:
    """Why `mirror` cannot be one registry's mirror (host[:port][/prefix]), or None."""
    if not mirror:
        return "empty registry mirror"
    if "://" in mirror:
        return f"{mirror!r} has a scheme: a registry mirror is host[:port][/prefix]"
    if any(c.isspace() for c in mirror) or "@" in mirror:
        return f"{mirror!r} is not host[:port][/prefix]"
    host, _, prefix = mirror.rstrip("/").partition("/")
    m = _HOST.match(host)
    if not m or (m.group("port") is not None and not 0 < int(m.group("port")) < 65536):
        return f"{host!r} in {mirror!r} is not a registry host[:port]"
    if not _is_domain(host):
        return (f"{host!r} has no dot and no port, so docker would read {host}/library/… as a Docker Hub "
                f"repository, not as a registry")
    for part in prefix.split("/") if prefix else ():
        if not _COMPONENT.match(part):
            return f"{part!r} in {mirror!r} is not a repository path component (lower-case letters, digits, . _ -)"
    return None


def mirrors(spec: str | None) -> dict[str, str]:
    """{registry: mirror} of a checked setting (mirror_problem), mirrors without trailing slashes."""
    if spec is None or not spec.strip():
        return {}
    return {registry: target.rstrip("/") for registry, target in _items(spec)}


def _spec(by_registry: dict[str, str]) -> str | None:
    """The canonical text: Docker Hub's mirror first and bare (as a setting of Hub alone always read), then
    REGISTRY=MIRROR items by registry."""
    items = [by_registry[DOCKER_HUB]] if DOCKER_HUB in by_registry else []
    items += [f"{r}={m}" for r, m in sorted(by_registry.items()) if r != DOCKER_HUB]
    return ",".join(items) or None


def normalise_mirror(spec: str | None) -> str | None:
    """'' and None: no mirror; else the checked setting in its canonical text (blanks and trailing slashes gone,
    Docker Hub's mirror first)."""
    return _spec(mirrors(spec))


def merge_mirrors(*specs: str | None) -> str | None:
    """Settings in precedence order (file, environment, command line): a later one's mirror for a registry wins,
    the others' mirrors for other registries stay."""
    merged: dict[str, str] = {}
    for spec in specs:
        merged.update(mirrors(spec))
    return _spec(merged)


def describe_mirrors(spec: str | None) -> str:
    """'docker.io through m.example.com/hub, quay.io through m.example.com/quay' for messages."""
    return ", ".join(f"{r} through {m}" for r, m in mirrors(normalise_mirror(spec)).items())


def mirror_for(ref: str, spec: str | None) -> str | None:
    """The mirror `ref`'s registry is pulled through under `spec`, or None."""
    return mirrors(spec).get(parse(ref).domain) if spec else None


def rewrite(ref: str, spec: str | None) -> str:
    """`ref` as pulled through the setting: a reference to a registry it names a mirror for moves to
    <mirror>/<path>, keeping tag and digest. Without a mirror for its registry, `ref` itself."""
    mirror = mirror_for(ref, spec)
    if mirror is None:
        return ref
    r = parse(ref)
    return str(Ref(mirror, r.path, r.tag, r.digest))


def repo_digest(repo_digests: Iterable[str] | None, ref: str) -> str | None:
    """The digest an image's RepoDigests give for `ref`'s repository (the manifest or index it was pulled by)."""
    want = parse(ref).repository
    for item in repo_digests or ():
        name, sep, digest = item.partition("@")
        if sep and parse(name).repository == want:
            return digest
    return None


# The reference grammar docker and podman parse (github.com/distribution/reference, regexp.go):
#   reference := name [ ":" tag ] [ "@" digest ];  name := [domain "/"] path;  domain := host [":" port]
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?"
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_NAME = re.compile(rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*", re.ASCII)
NAME_MAX = 255
IMAGE_REF_RULE = ("[domain[:port]/]path[:tag][@digest]: path components lower-case letters and digits joined by "
                  "'.', '_', '__' or '-'; tag [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}; digest ALGO:HEX")
IMAGE_REF_FIX = "e.g. docker.io/library/debian:12 or docker.io/library/debian:12@sha256:<64 hex digits>"


def image_ref_problem(ref: str) -> str | None:
    """Why `ref` is not an image reference as the engines parse it, naming the rule it breaks; None when it is.
    Checked at load time, so `;`, `$(...)`, spaces, newlines and upper-case paths fail here with the grammar
    instead of at pull time (a rootfs suite form of --distro has its own rule elsewhere)."""
    if not ref:
        return "empty image reference"
    if bad := sorted({c for c in ref if not (c.isascii() and (c.isalnum() or c in "._-/:@[]"))}):
        return f"{ref!r} has {', '.join(map(repr, bad))}, which no image reference may contain ({IMAGE_REF_RULE})"
    name, at, digest = ref.partition("@")
    if at and not _DIGEST_RE.fullmatch(digest):
        return f"{digest!r} in {ref!r} is not a digest (ALGO:HEX, e.g. sha256:<64 hex digits>)"
    tag = None
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        name, tag = name[:colon], name[colon + 1:]
    if tag is not None and not _TAG.fullmatch(tag):
        return f"tag {tag!r} in {ref!r} is not [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}"
    if len(name) > NAME_MAX:
        return f"the name in {ref!r} is longer than {NAME_MAX} characters"
    if not _NAME.fullmatch(name):
        first, sep, _ = name.partition("/")
        lower = name if not (sep and _is_domain(first)) else name[len(first) + 1:]
        if lower != lower.lower():
            return f"{ref!r}: repository path components must be lower-case ({IMAGE_REF_RULE})"
        return f"{ref!r} is not [domain[:port]/]path[:tag][@digest] ({IMAGE_REF_RULE})"
    return None
