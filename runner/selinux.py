"""SELinux facts the `selinux` scenario needs: relabel options (only ever inside the run) and AVC records.

`:z`/`:Z` on a bind mount makes the engine relabel the host directory (chcon -R). Done on a user's
own directory (a home, a source tree, ~/.cache/go-build) that changes its label for every other
program on the host, so this tool applies relabel options only to directories it created inside the
cell's data directory, and refuses anything else before an engine sees it.
"""

from __future__ import annotations

import re
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
