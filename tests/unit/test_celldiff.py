"""scripts/celldiff.py's comparison: what it ignores, and that it still sees a change of behaviour."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("celldiff", ROOT / "scripts" / "celldiff.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["celldiff"] = mod
    spec.loader.exec_module(mod)
    return mod


celldiff = _load()


def cell(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "debian-12/amd64/docker/go1.22/storage:volume",
        "status": "pass",
        "reason": "warm 0 compiled in 0.017s",
        "observations": {"cold": {"compiled": 3, "sec": 0.078}, "ratio": 4.5,
                         "steps": [{"name": "cold", "wall_sec": 0.1, "stderr": "a\nb\n"}]},
        "timings": {"cell_wall_sec": 1.3},
        "image": {"id": "sha256:1", "tag": "t1", "source": "rootfs"},
        "run_id": "r1", "started": "2026-12-06T07:00:00+00:00",
    }
    for k, v in over.items():
        base[k] = v
    return base


def test_noise_is_ignored() -> None:
    a = cell()
    b = cell(reason="warm 0 compiled in 0.021s", run_id="r2", started="2026-12-06T08:00:00+00:00",
             timings={"cell_wall_sec": 9.9}, image={"id": "sha256:2", "tag": "t2", "source": "rootfs"},
             observations={"cold": {"compiled": 3, "sec": 0.5}, "ratio": 3.9,
                           "steps": [{"name": "cold", "wall_sec": 0.3, "stderr": "b\na"}]})
    assert celldiff.compare({a["id"]: a}, {b["id"]: b}) == []


@pytest.mark.parametrize("change", [
    {"status": "fail"},
    {"reason": "warm 3 compiled in 0.017s, the cache was lost"},
    {"observations": {"cold": {"compiled": 4, "sec": 0.078}, "ratio": 4.5,
                      "steps": [{"name": "cold", "wall_sec": 0.1, "stderr": "a\nb\n"}]}},
    {"observations": {"cold": {"compiled": 3, "sec": 0.078}, "ratio": None,
                      "steps": [{"name": "cold", "wall_sec": 0.1, "stderr": "a\nb\n"}]}},
    {"image": {"id": "sha256:1", "tag": "t1", "source": "registry"}},
])
def test_a_change_of_behaviour_is_seen(change: dict[str, Any]) -> None:
    a, b = cell(), cell(**change)
    diffs = celldiff.compare({a["id"]: a}, {b["id"]: b})
    assert diffs and all(d[0] == a["id"] for d in diffs)


def test_a_cell_missing_on_one_side_is_a_difference() -> None:
    a = cell()
    assert celldiff.compare({a["id"]: a}, {}) == [(a["id"], "(cell)", "present", "missing")]


def test_compare_reads_run_dirs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name, c in (("before", cell()), ("after", cell(status="fail"))):
        d = tmp_path / name / "cells"
        d.mkdir(parents=True)
        (d / "x.json").write_text(json.dumps(c))
    assert celldiff.main(["compare", str(tmp_path / "before"), str(tmp_path / "before")]) == 0
    assert celldiff.main(["compare", str(tmp_path / "before"), str(tmp_path / "after")]) == 1
    assert "status" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        celldiff.main(["compare", str(tmp_path / "nowhere"), str(tmp_path / "after")])


def test_random_labels_ids_and_package_order_are_not_behaviour() -> None:
    a = cell(observations={"label": "system_u:system_r:container_t:s0:c367,c639", "packages": ["a", "b"],
                           "log": ["--> 342ea387f7c"], "sample": ["664 1002 /c/21/21f83c22d82530f7e5da-a"]})
    b = cell(observations={"label": "system_u:system_r:container_t:s0:c87,c937", "packages": ["b", "a"],
                           "log": ["--> 51c5ed19e65"], "sample": ["664 1002 /c/08/088ab206f7a28da2f6c9-d"]})
    assert celldiff.compare({a["id"]: a}, {b["id"]: b}) == []
    c = cell(observations={"label": "system_u:system_r:spc_t:s0", "packages": ["a", "c"],
                           "log": ["--> 342ea387f7c"], "sample": ["600 1002 /c/21/21f83c22d82530f7e5da-a"]})
    assert {d[1] for d in celldiff.compare({a["id"]: a}, {c["id"]: c})} == {
        "observations.label", "observations.packages[]", "observations.sample[0]"}


def test_race_outcomes_are_left_out_only_where_builds_race_on_purpose() -> None:
    racing = "debian-12/amd64/docker/go1.22/concurrent:same"
    a = cell(id=racing, observations={"builds": [{"compiled": 46}], "failures": 0})
    b = cell(id=racing, observations={"builds": [{"compiled": 29}], "failures": 0})
    assert celldiff.compare({racing: a}, {racing: b}) == []
    assert celldiff.compare({racing: a}, {racing: {**b, "status": "fail"}}) != []
    calm = "debian-12/amd64/docker/go1.22/storage:volume"
    assert celldiff.compare({calm: {**a, "id": calm}}, {calm: {**b, "id": calm}}) != []


def test_a_reason_keeps_exit_codes_and_go_versions_and_masks_measured_figures() -> None:
    a = cell(reason="go1.22: exit 1 after 3.25s, 12 MiB")
    assert celldiff.compare({a["id"]: a}, {a["id"]: cell(reason="go1.22: exit 1 after 4.5s, 13 MiB")}) == []
    assert celldiff.compare({a["id"]: a}, {a["id"]: cell(reason="go1.22: exit 2 after 3.25s, 12 MiB")}) != []
    assert celldiff.compare({a["id"]: a}, {a["id"]: cell(reason="go1.27: exit 1 after 3.25s, 12 MiB")}) != []


def test_a_barrier_not_met_is_behaviour() -> None:
    a = cell(observations={"across": {"barrier": ["start at 1796547408.97"], "barrier_met": True}})
    b = cell(observations={"across": {"barrier": ["start at 1796548205.64"], "barrier_met": True}})
    assert celldiff.compare({a["id"]: a}, {b["id"]: b}) == []
    c = cell(observations={"across": {"barrier": ["start at 1796548205.64"], "barrier_met": False}})
    assert celldiff.compare({a["id"]: a}, {c["id"]: c}) != []
