"""What a cold build costs the machine, and which C library a row has: extra observations of `cold-warm` cells.

    cold.cpu_sec, cold.user_sec, cold.sys_sec, cold.maxrss_mb   the probe's rusage of the cold `go build`: wait4(2)
        on Linux reports the process and every child it waited for, so CPU time covers compile and link, and the
        peak RSS is the largest single process (not a sum of processes running at once)
    libc   {"name": "glibc" | "musl" | ..., "version", "raw"} from the container: the musl loader's own banner, else
        `getconf GNU_LIBC_VERSION`, else the first line of `ldd --version`

Q31 lists the figures per row (a measurement, never a yes/no); Q32 names the C library per row and, where
portability:binary cells of one Go version and arch ran on rows of different C libraries, whether their
CGO_ENABLED=0 binaries are byte-identical.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runner.answer import DEPENDS, NOT_MEASURED, VALUE, Answer, judged, listing, obs_of, pick, where
from runner.results import CellResult

LIBC_SCRIPT = """for f in /lib/ld-musl-*.so.1; do
  if [ -e "$f" ]; then "$f" 2>&1 | sed -n 's/^Version /musl /p'; exit 0; fi
done
getconf GNU_LIBC_VERSION 2>/dev/null && exit 0
ldd --version 2>&1 | head -n 1
"""


def rusage_obs(s: Mapping[str, Any] | None) -> dict[str, Any]:
    """CPU seconds and peak RSS of an exec step, from the probe's rusage ({} from an older probe)."""
    ru = (s or {}).get("rusage")
    if not isinstance(ru, Mapping):
        return {}
    user, sys_ = float(ru.get("user_sec", 0.0)), float(ru.get("sys_sec", 0.0))
    return {"user_sec": round(user, 2), "sys_sec": round(sys_, 2), "cpu_sec": round(user + sys_, 2),
            "maxrss_mb": round(int(ru.get("maxrss_kb", 0)) / 1024, 1)}


def parse_libc(s: Mapping[str, Any] | None) -> dict[str, str] | None:
    """'glibc 2.36', 'musl 1.2.5' or an ldd line such as 'ldd (Debian GLIBC 2.36-9+deb12u9) 2.36'."""
    line = next((ln.strip() for ln in str((s or {}).get("stdout") or "").splitlines() if ln.strip()), "")
    if not line:
        return None
    words = line.split()
    if words[0] in ("glibc", "musl") and len(words) == 2:
        return {"name": words[0], "version": words[1], "raw": line}
    name = "glibc" if "GLIBC" in line.upper() or "GNU LIBC" in line.upper() else "musl" if "musl" in line else "?"
    return {"name": name, "version": words[-1], "raw": line}


def answer_resources(cells: Sequence[CellResult]) -> Answer:
    """Q31: peak RSS and CPU time of each row's cold build (cold-warm cells), per workload."""
    basis = pick(cells, "cold-warm")
    found = []
    for c in judged(basis):
        cold = c.observations.get("cold")
        if isinstance(cold, Mapping) and "maxrss_mb" in cold:
            found.append(f"{where(c)} {c.cell.get('variant')}: {cold['maxrss_mb']:.0f} MB peak RSS, "
                         f"{cold['cpu_sec']:.1f} s CPU for {cold.get('sec', 0):.1f} s wall, "
                         f"{cold.get('compiled')} packages")
    if not found:
        return Answer(NOT_MEASURED, "", tuple(basis))
    qemu = any(c.cell.get("emulated") for c in judged(basis))
    builds = f"{len(found)} cold build{'' if len(found) == 1 else 's'}, one per cell"
    return Answer(VALUE, "; ".join(found), tuple(basis), figure=builds,
                  limits="one cold build per row (no spread); peak RSS is the largest single process"
                         + ("; under QEMU the figures are the emulator's" if qemu else ""))


def _libc(c: CellResult) -> str | None:
    name, version = obs_of(c, "libc", "name"), obs_of(c, "libc", "version")
    return None if name is None else f"{name} {version}"


def answer_libc(cells: Sequence[CellResult]) -> Answer:
    """Q32: the C library of each row, and whether CGO_ENABLED=0 binaries differ between rows of different C
    libraries (portability:binary sha256 per Go version and arch)."""
    basis = pick(cells, "cold-warm")
    libc: dict[tuple[str, str], str] = {}
    per: dict[str, list[str]] = {}
    for c in judged(basis):
        if (lc := _libc(c)) is not None:
            libc[(str(c.cell.get("distro")), str(c.cell.get("arch")))] = lc
            per.setdefault(lc, [])
            row = "/".join(c.id.split("/")[:2])
            if row not in per[lc]:
                per[lc].append(row)
    if not per:
        return Answer(NOT_MEASURED, "", tuple(basis))
    binaries = pick(cells, "portability", "binary")
    groups: dict[tuple[str, str], dict[str, set[str]]] = {}
    for c in judged(binaries):
        sha, lc = c.observations.get("sha256"), libc.get((str(c.cell.get("distro")), str(c.cell.get("arch"))))
        if sha and lc:
            key = (str(c.cell.get("toolchain")), str(c.cell.get("arch")))
            groups.setdefault(key, {}).setdefault(lc.split()[0], set()).add(str(sha))
    across = {k: g for k, g in groups.items() if len(g) > 1}
    if across:
        same = [f"{t}/{a}" for (t, a), g in across.items() if len(set().union(*g.values())) == 1]
        differ = [f"{t}/{a}" for (t, a), g in across.items() if len(set().union(*g.values())) > 1]
        matters = ("; a CGO_ENABLED=0 -trimpath binary is byte-identical across C libraries for "
                   f"{listing(same) or 'none'}" + (f", differs for {listing(differ)}" if differ else ""))
    else:
        matters = "; CGO_ENABLED=0 binaries were not compared across C libraries (no portability:binary cells " \
                  "on rows of two C libraries)"
    text = "; ".join(f"{lc} on {listing(rows_)}" for lc, rows_ in sorted(per.items()))
    verdict = DEPENDS if len(per) > 1 else VALUE
    return Answer(verdict, ("depends: " if verdict == DEPENDS else "") + text + matters,
                  tuple(basis + [c for c in binaries if c not in basis]))
