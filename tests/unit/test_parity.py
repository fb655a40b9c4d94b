"""runner.parity on synthetic runs: equal decisive observations agree; a changed one, or a status, does not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runner import parity
from runner.model import Status
from runner.results import CellResult, RunResults
from runner.scenarios import build_argv, registry


def _cell(cid: str, scenario: str, status: Status, obs: dict[str, Any], wall: float) -> CellResult:
    return CellResult(cell={"id": cid, "scenario": scenario}, status=status, reason="", observations=obs,
                      timings={"cell_wall_sec": wall})


def _run(*cells: CellResult) -> RunResults:
    return RunResults(run_dir=Path("/nonexistent"), meta={}, cells=list(cells), problems=[])


LOC = {"exit_code": 1, "stderr_first_line": "go: GOCACHE is not an absolute path", "go_env_gocache": "rel",
       "compiled": 0}


def test_same_decisive_observations_agree_and_other_scenarios_are_left_out() -> None:
    cheap = _run(_cell("d/amd64/docker/go1.22/location:x", "location", Status.PASS, {**LOC, "workload": "lib"}, 1.0),
                 _cell("d/amd64/docker/go1.22/env", "env", Status.PASS, {}, 1.0))
    full = _run(_cell("d/amd64/docker/go1.22/location:x", "location", Status.PASS, {**LOC, "workload": "small"}, 30.0),
                _cell("d/amd64/docker/go1.22/env", "env", Status.PASS, {}, 1.0))
    rows = parity.compare(cheap, full)
    assert [r.cell for r in rows] == ["d/amd64/docker/go1.22/location:x"]
    assert rows[0].equal and rows[0].workloads == ("lib", "small")
    assert "1 of 1 cells agree" in parity.markdown(rows) and "30.0x" in parity.markdown(rows)


def test_a_different_message_or_hit_or_status_is_a_difference() -> None:
    base = {"fs_type": "tmpfs", "cold": {"ok": True, "compiled": 2}, "warm": {"compiled": 0},
            "restart": {"survived": False}, "recreate": {"survived": False}}
    changed = {**base, "restart": {"survived": True}}
    rows = parity.compare(_run(_cell("c", "storage", Status.PASS, base, 1.0)),
                          _run(_cell("c", "storage", Status.PASS, changed, 9.0)))
    assert not rows[0].equal and rows[0].differences == {"restart_survived": (False, True)}
    rows = parity.compare(_run(_cell("c", "location", Status.PASS, LOC, 1.0)),
                          _run(_cell("c", "location", Status.FAIL, LOC, 9.0)))
    assert not rows[0].equal and not rows[0].differences
    rows = parity.compare(_run(_cell("c", "readonly", Status.PASS, {"readonly": {"compiled": 0}}, 1.0)),
                          _run(_cell("c", "readonly", Status.PASS, {"readonly": {"compiled": 5}}, 1.0)))
    assert rows[0].differences == {"compiled_any": (False, True)}


def test_lib_is_built_without_an_output_file() -> None:
    assert build_argv("lib", "/tmp/x") == ["go", "build", "-v", "."]
    assert build_argv("small", "/tmp/x") == ["go", "build", "-v", "-o", "/tmp/x", "."]


def test_parity_cli_rejects_a_non_run_dir(tmp_path: Path, capsys: Any) -> None:
    assert parity.main([str(tmp_path), str(tmp_path)]) == 2
    assert "fix:" in capsys.readouterr().err


def test_missing_undecided_or_wrong_workload_never_count_as_agreement() -> None:
    lib, small = {**LOC, "workload": "lib"}, {**LOC, "workload": "small"}
    rows = {r.cell: r for r in parity.compare(
        _run(_cell("only-cheap", "location", Status.PASS, lib, 1.0),
             _cell("both-error", "location", Status.ERROR, {}, 0.1),
             _cell("wrong", "location", Status.PASS, small, 1.0)),
        _run(_cell("only-full", "location", Status.PASS, small, 9.0),
             _cell("both-error", "location", Status.ERROR, {}, 0.1),
             _cell("wrong", "location", Status.PASS, small, 9.0)))}
    assert rows["only-cheap"].problem == "only in the cheap run" and rows["only-full"].problem == "only in the full run"
    assert rows["both-error"].problem.startswith("undecided in both")
    assert rows["wrong"].problem == "built small / small, not lib / small"
    assert not any(r.equal for r in rows.values())
    assert "0 of 4 cells agree" in parity.markdown(list(rows.values()))


def test_a_cell_n_a_in_both_for_the_same_reason_is_left_out_not_agreed(tmp_path: Path) -> None:
    why = "GOCACHEPROG needs Go 1.24 or newer; this toolchain is go1.22.10"
    na = _cell("d/amd64/docker/go1.22/remote", "remote", Status.NA, {}, 0.3)
    na = CellResult(cell=na.cell, status=Status.NA, reason=why, observations={}, timings=na.timings)
    loc = _cell("d/amd64/docker/go1.22/location:x", "location", Status.PASS, {**LOC, "workload": "lib"}, 1.0)
    loc_full = _cell("d/amd64/docker/go1.22/location:x", "location", Status.PASS, {**LOC, "workload": "small"}, 9.0)
    rows = parity.compare(_run(loc, na), _run(loc_full, na))
    assert [(r.equal, r.na) for r in rows] == [(True, None), (False, why)]
    text = parity.markdown(rows)
    assert "1 of 1 cells agree (1 n/a in both, left out)" in text and f"n/a in both: {why}" in text
    other = CellResult(cell=na.cell, status=Status.NA, reason="another reason", observations={}, timings=na.timings)
    assert parity.compare(_run(na), _run(other))[0].problem.startswith("undecided in both")




def test_only_n_a_cells_are_a_usage_error(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    import json
    na = CellResult(cell={"id": "d/amd64/docker/go1.22/remote", "scenario": "remote"}, status=Status.NA,
                    reason="GOCACHEPROG needs Go 1.24 or newer", observations={}, timings={"cell_wall_sec": 0.3})
    for name in ("a", "b"):
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "run.json").write_text(json.dumps({"schema_version": 1, "run_id": name}))
    monkeypatch.setattr(parity, "load_run", lambda run_dir: _run(na))  # the reading is runner.results' own test
    assert parity.main([str(tmp_path / "runs" / "a"), str(tmp_path / "runs" / "b")]) == 2
    assert "every shared cell is n/a" in capsys.readouterr().err


def test_the_parity_session_selects_every_scenario_with_a_cheap_workload() -> None:
    """A scenario that declares a cheap workload and is left out of `nox -s parity` is never checked."""
    import ast

    tree = ast.parse((Path(__file__).resolve().parents[2] / "noxfile.py").read_text())
    session = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "parity")
    picked = next(n.value for n in ast.walk(session) if isinstance(n, ast.Assign)
                  and getattr(n.targets[0], "id", "") == "scenarios")
    names = {ast.literal_eval(e).split("/")[1].split(":")[0] for e in picked.elts}  # type: ignore[attr-defined]
    cheap = {sid for sid, s in registry().items() if s.workload}
    assert cheap <= names, f"not in the parity session: {sorted(cheap - names)}"


SHARED = {"shared_container": {"leader": "d/amd64/docker/go1.22/location:y", "members": ["x", "y"]}}


def test_alone_compares_cells_that_shared_a_container_with_the_same_cells_alone() -> None:
    """--alone: location by its parity(); toolchain (no parity()) by every observation but steps and times."""
    tc = {"switch": {"ok": True, "go_version": "go1.27.1"}, "landed": {"files": 9}, "load_sec": 0.3}
    shared = _run(_cell("d/l:x", "location", Status.PASS, {**LOC, "workload": "lib", **SHARED}, 0.1),
                  _cell("d/t:auto", "toolchain", Status.PASS, {**tc, **SHARED, "steps": [1]}, 9.0),
                  _cell("d/env", "env", Status.PASS, {}, 1.0))
    alone = _run(_cell("d/l:x", "location", Status.PASS, {**LOC, "workload": "lib"}, 0.5),
                 _cell("d/t:auto", "toolchain", Status.PASS, {**tc, "load_sec": 0.9, "steps": [2]}, 9.5),
                 _cell("d/env", "env", Status.PASS, {}, 1.0))
    rows = parity.compare(shared, alone, alone=True)
    assert [r.cell for r in rows] == ["d/l:x", "d/t:auto"], "only scenarios that share containers"
    assert all(r.equal for r in rows), [r.problem or r.differences for r in rows]
    assert "status (shared / alone)" in parity.markdown(rows, alone=True)
    moved = {**tc, "landed": {"files": 10}}
    rows = parity.compare(shared, _run(_cell("d/t:auto", "toolchain", Status.PASS, moved, 9.0)), alone=True)
    assert rows[1].differences == {"landed": ({"files": 9}, {"files": 10})}


def test_alone_does_not_count_a_cell_that_did_not_share() -> None:
    same = _cell("d/l:x", "location", Status.PASS, {**LOC, "workload": "lib"}, 0.5)
    (row,) = parity.compare(_run(same), _run(same), alone=True)
    assert not row.equal and row.problem == "did not share a container in the shared run"
