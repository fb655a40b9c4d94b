"""selinux: relabel options only inside the run, AVC parsing, n/a off enforcing hosts, the verdicts."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from runner import host
from runner.model import Cell, Engine, Status
from runner.resources import CellResources
from runner.scenarios import JobContext
from runner.scenarios.selinux import MOUNT, Selinux
from runner.selinux import RelabelRefused, avcs_since, parse_avc, relabel_option
from tests.unit.test_scenarios import cell

CTX = JobContext(build_timeout=60)
AVC = ('type=AVC msg=audit(1764320000.123:812): avc:  denied  { write } for  pid=4242 comm="probe" '
       'name="gocache" dev="vda1" ino=131 scontext=system_u:system_r:container_t:s0:c12,c345 '
       'tcontext=unconfined_u:object_r:user_home_t:s0 tclass=dir permissive=0')


def se_cell(variant: str) -> Cell:
    return dataclasses.replace(cell("debian-12/amd64/docker/go1.22/env"), scenario="selinux", variant=variant,
                               engine=Engine.PODMAN)


def test_relabel_only_below_the_owned_directory(tmp_path: Path) -> None:
    owned = tmp_path / "run" / "work" / "cell" / "data"
    (owned / "gocache").mkdir(parents=True)
    assert relabel_option(owned / "gocache", owned, "z") == "z"
    assert relabel_option(owned / "gocache", owned, "Z") == "Z"
    for outside in (tmp_path, owned, Path.home(), owned / ".." / ".." / "elsewhere"):
        with pytest.raises(RelabelRefused, match="only applied to directories the run"):
            relabel_option(outside, owned, "z")
    (owned / "escape").symlink_to(tmp_path)  # a symlink inside that points outside is outside
    with pytest.raises(RelabelRefused):
        relabel_option(owned / "escape", owned, "Z")
    with pytest.raises(RelabelRefused, match="expected one of"):
        relabel_option(owned / "gocache", owned, "shared")


@pytest.mark.parametrize(("variant", "option"), [("bind", ""), ("bind-z", "z"), ("bind-Z", "Z")])
def test_the_enforcing_branch_builds_mount_options_inside_the_cell_data_dir(tmp_path: Path, variant: str,
                                                                             option: str) -> None:
    """What run_cell does with the scenario's phases on an enforcing host, up to the engine call."""
    data = tmp_path / "run" / "work" / "cell" / "data"
    with contextlib.ExitStack() as stack:
        res = CellResources(driver=None, data_dir=data, labels={}, stack=stack)  # type: ignore[arg-type]
        for phase in Selinux().phases(se_cell(variant), CTX):
            (spec,) = phase.mounts
            m = res.mount(spec)
            assert m.target == MOUNT and m.relabel == option
            assert Path(m.source).resolve().is_relative_to(data.resolve())


def test_parse_avc() -> None:
    rec = parse_avc(AVC)
    assert rec is not None
    assert rec["result"] == "denied" and rec["permissions"] == ["write"] and rec["tclass"] == "dir"
    assert rec["scontext"].split(":")[2] == "container_t" and rec["tcontext"].endswith("user_home_t:s0")
    assert parse_avc("type=SYSCALL msg=audit(1.2:3): arch=c000003e") is None


def test_avcs_since_filters_by_time_and_handles_an_unreadable_log(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text(AVC.replace("1764320000.123", "1764310000.000") + "\n" + AVC + "\n")
    assert [r["time"] for r in avcs_since(1764315000.0, log) or []] == [1764320000.123]
    assert avcs_since(0, tmp_path / "missing.log") is None


def test_not_enforcing_is_na_with_the_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host, "selinux_mode", lambda: "disabled")
    status, reason = Selinux().precondition(se_cell("bind-z")) or (None, "")
    assert status is Status.NA and "mode: disabled" in reason
    monkeypatch.setattr(host, "selinux_mode", lambda: "enforcing")
    assert Selinux().precondition(se_cell("bind-z")) is None


def _phase(write_ok: bool, compiled: int, build_ok: bool = True) -> dict[str, Any]:
    return {"steps": [
        {"name": "label", "ok": True, "content": "system_u:system_r:container_t:s0:c1,c2\x00"},
        {"name": "write", "ok": write_ok, "error": "" if write_ok else "open /gocache/x: permission denied"},
        {"name": "reuse-read", "ok": write_ok}, {"name": "reuse-write", "ok": write_ok},
        {"name": "build", "ok": build_ok, "exit_code": 0 if build_ok else 1, "wall_sec": 3.0,
         "compiled": ["p"] * compiled, "stderr": "" if build_ok else "go: could not create build cache\n"}]}


def test_verdicts_come_from_observations() -> None:
    s = Selinux()
    v = s.evaluate(se_cell("bind"), {"first": _phase(False, 0, False), "second": _phase(False, 0, False)}, CTX)
    assert v.status is Status.PASS and "denied" in v.reason and ":z" in v.reason
    assert v.observations["process_label"].endswith("c1,c2")
    v = s.evaluate(se_cell("bind"), {"first": _phase(True, 50), "second": _phase(True, 0)}, CTX)
    assert v.status is Status.FAIL and "not confined" in v.reason
    v = s.evaluate(se_cell("bind-z"), {"first": _phase(True, 50), "second": _phase(True, 0)}, CTX)
    assert v.status is Status.PASS
    v = s.evaluate(se_cell("bind-Z"), {"first": _phase(True, 50), "second": _phase(True, 3)}, CTX)
    assert v.status is Status.FAIL and "compiled 3" in v.reason
    for variant in ("bind", "bind-z"):
        v = s.evaluate(se_cell(variant), {}, CTX)  # lost output never passes
        assert v.status is Status.ERROR and "lost" in v.reason
