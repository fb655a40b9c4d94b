"""SELinux facts the `selinux` scenario and the guest VM target share: the cases, relabel options (only ever
inside the run) and AVC records.

`:z`/`:Z` on a bind mount makes the engine relabel the host directory (chcon -R). Done on a user's
own directory (a home, a source tree, ~/.cache/go-build) that changes its label for every other
program on the host, so this tool applies relabel options only to directories it created inside the
cell's data directory, and refuses anything else before an engine sees it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RELABEL = ("z", "Z")
AUDIT_LOG = Path("/var/log/audit/audit.log")
_AVC = re.compile(r"audit\((?P<ts>\d+\.\d+):\d+\): avc:\s+(?P<result>denied|granted)\s+\{ (?P<perms>[^}]*)\}")
_FIELD = re.compile(r"\b(scontext|tcontext|tclass|comm|name|permissive)=(\"[^\"]*\"|\S+)")


class RelabelRefused(ValueError):
    """A relabel option was asked for on a path outside the directory the run owns."""


def relabel_option(path: Path, owned: Path, relabel: str) -> str:
    """The mount option for `path` ("z" or "Z"), if `path` lies inside `owned` (symlinks resolved)."""
    if relabel not in RELABEL:
        raise RelabelRefused(f"relabel option {relabel!r}: expected one of {', '.join(RELABEL)}")
    real, root = path.resolve(), owned.resolve()
    if real == root or not real.is_relative_to(root):
        raise RelabelRefused(f"refusing :{relabel} on {path}: relabelling is only applied to directories the run "
                             f"created below {owned}, never to a user's own paths")
    return relabel


def parse_avc(line: str) -> dict[str, Any] | None:
    """One audit record `type=AVC ... avc: denied { write } ... scontext=... tcontext=... tclass=dir`."""
    m = _AVC.search(line)
    if not m:
        return None
    rec: dict[str, Any] = {"time": float(m["ts"]), "result": m["result"], "permissions": m["perms"].split()}
    for key, value in _FIELD.findall(line):
        rec[key] = value.strip('"')
    return rec


def avcs_since(since: float, log: Path = AUDIT_LOG) -> list[dict[str, Any]] | None:
    """AVC records logged at or after `since` (epoch seconds); None when the audit log is not readable."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return None
    return [r for r in map(parse_avc, text.splitlines()) if r is not None and r["time"] >= since]


# ---------------------------------------------------------------- the `selinux` cases: what each variant runs
@dataclass(frozen=True)
class Run:
    """One container run of a case.

    mount: "bind" (a directory the run created), "volume" (a named volume), "build" (an image build whose
    RUN step has GOCACHE on a `--mount=type=cache`); relabel: "" | "z" | "Z" on the bind mount;
    security_opt: the engine's --security-opt values.
    """

    name: str
    steps: tuple[str, ...]
    mount: str = "bind"
    relabel: str = ""
    security_opt: tuple[str, ...] = ()


LWB = ("label", "write", "build")
RB = ("reuse", "build")
CASES: dict[str, tuple[Run, ...]] = {
    "bind": (Run("first", LWB), Run("second", ("build",))),
    "bind-z": (Run("first", LWB, relabel="z"), Run("second", RB, relabel="z")),
    "bind-Z": (Run("first", LWB, relabel="Z"), Run("second", RB, relabel="Z")),
    # A directory relabelled by one container, then used by a new one without an option.
    "bind-Z-reused": (Run("first", ("label", "write"), relabel="Z"), Run("second", ("label", "write", *RB))),
    "bind-z-reused": (Run("first", ("label", "write"), relabel="z"), Run("second", ("label", "write", "reuse"))),
    "label-disable": (Run("first", ("label", "write"), security_opt=("label=disable",)),),
    "volume": (Run("first", LWB, mount="volume"), Run("second", RB, mount="volume")),
    "build-cache-mount": (Run("first", LWB, mount="build"), Run("second", RB, mount="build")),
}
VARIANTS = tuple(CASES)
WHAT = {
    "bind": "bind mount, no relabel option",
    "bind-z": "bind mount with :z",
    "bind-Z": "bind mount with :Z",
    "bind-Z-reused": ":Z dir, then a new container without an option",
    "bind-z-reused": ":z dir, then a new container without an option",
    "label-disable": "--security-opt label=disable, no relabel option",
    "volume": "named volume",
    "build-cache-mount": "image build, RUN --mount=type=cache",
}


def relabel(variant: str | None) -> str:
    """The relabel option of the case's first run ("" for none)."""
    runs = CASES.get(variant or "")
    return runs[0].relabel if runs else ""


def clean_label(text: Any) -> str:
    """/proc/self/attr/current ends in a NUL byte."""
    return str(text or "").strip("\x00\n ")
