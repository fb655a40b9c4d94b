"""portability: the verdict rules on synthetic probe output, and its variants' validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runner import config
from runner.model import Status
from runner.scenarios import JobContext
from runner.scenarios.portability import Portability
from tests.unit.test_scenarios import cell

ROOT = Path(__file__).resolve().parents[2]
CTX = JobContext(build_timeout=60)


def ok(name: str, compiled: list[str] | None = None, stdout: str = "") -> dict[str, Any]:
    return {"name": name, "ok": True, "exit_code": 0, "wall_sec": 1.0, "compiled": compiled or [], "stdout": stdout}


def probes(same: list[str], other: list[str], trim: list[str]) -> dict[str, Any]:
    return {"populate": {"steps": [ok("plain", ["fmt"]), ok("trimpath", ["fmt"]), ok("export")]},
            "reuse": {"steps": [ok("import"), ok("same-path", same), ok("other-path", other),
                                ok("other-path-trimpath", trim)]}}


@pytest.mark.parametrize(("same", "other", "trim", "status"), [
    ([], ["gcm.example/small", "gcm.example/small/internal/count"], [], Status.PASS),
    (["fmt"], [], [], Status.FAIL),  # the same path missed: the cache did not carry over
    ([], [], ["gcm.example/small"], Status.FAIL),  # -trimpath at another path missed
    ([], ["gcm.example/small", "gcm.example/greet"], [], Status.FAIL),  # a dependency recompiled too
])
def test_copy_rules(same: list[str], other: list[str], trim: list[str], status: Status) -> None:
    c = cell("debian-13/amd64/docker/go1.22/portability:from-debian-12")
    v = Portability().evaluate(c, probes(same, other, trim), CTX)
    assert v.status is status, v.reason
    assert v.observations["source"] == "debian-12" and v.observations["target"] == "debian-13"


def test_phases_run_the_populate_step_in_the_source_distro() -> None:
    phases = Portability().phases(cell("debian-13/amd64/docker/go1.22/portability:from-debian-12"), CTX)
    assert [(p.name, p.distro) for p in phases] == [("populate", "debian-12"), ("reuse", None)]


def test_binary_records_the_digest() -> None:
    c = cell("debian-12/amd64/docker/go1.22/portability:binary")
    v = Portability().evaluate(c, {"binary": {"steps": [ok("build"), ok("sha256", stdout="ab12  /tmp/gcm/bin/app\n")]}},
                               CTX)
    assert v.status is Status.PASS and v.observations["sha256"] == "ab12"


def test_unknown_source_distro_is_one_config_error(tmp_path: Path) -> None:
    text = (ROOT / "matrix.toml").read_text().replace('"from-debian-13"]', '"from-debain-13"]')
    (tmp_path / "m.toml").write_text(text)
    with pytest.raises(config.ConfigError, match=r"scenarios\.portability\.variants: portability has no variant "
                                                 r"'from-debain-13'"):
        config.load(tmp_path / "m.toml")
