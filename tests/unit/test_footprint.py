"""cold-warm's extra observations: the probe's rusage of the cold build (Q31) and the row's C library (Q32)."""

from __future__ import annotations

from typing import Any

from runner.answer import DEPENDS, NOT_MEASURED, VALUE
from runner.scenarios.footprint import answer_libc, answer_resources, parse_libc, rusage_obs
from tests.unit.test_render import COLD
from tests.unit.test_results import make

D12, D13, ALP = "debian-12/amd64/docker/go1.22", "debian-13/amd64/docker/go1.22", "alpine-3.23/amd64/docker/go1.22"


def cw(where: str, libc: str | None = "glibc 2.36", **cold: Any) -> Any:
    obs: dict[str, Any] = {**COLD, "cold": {**COLD["cold"], **cold}}
    if libc:
        name, version = libc.split()
        obs["libc"] = {"name": name, "version": version, "raw": libc}
    return make(f"{where}/cold-warm:small", **obs)


def test_rusage_from_the_probe_and_from_an_older_probe() -> None:
    s = {"rusage": {"user_sec": 20.25, "sys_sec": 4.5, "maxrss_kb": 215552}}
    assert rusage_obs(s) == {"user_sec": 20.25, "sys_sec": 4.5, "cpu_sec": 24.75, "maxrss_mb": 210.5}
    assert rusage_obs({"ok": True}) == {} and rusage_obs(None) == {}


def test_libc_lines_of_glibc_musl_and_ldd() -> None:
    assert parse_libc({"stdout": "glibc 2.36\n"}) == {"name": "glibc", "version": "2.36", "raw": "glibc 2.36"}
    assert parse_libc({"stdout": "musl 1.2.5\n"})["name"] == "musl"  # type: ignore[index]
    ldd = parse_libc({"stdout": "ldd (Debian GLIBC 2.36-9+deb12u9) 2.36\n"})
    assert ldd is not None and (ldd["name"], ldd["version"]) == ("glibc", "2.36")
    assert parse_libc({"stdout": ""}) is None


def test_q31_lists_each_row_and_is_not_measured_without_rusage() -> None:
    a = answer_resources([cw(D12, maxrss_mb=210.6, cpu_sec=30.2), cw(D13, maxrss_mb=190.0, cpu_sec=28.0)])
    assert a.verdict == VALUE and "211 MB peak RSS, 30.2 s CPU for 11.5 s wall, 56 packages" in a.text
    assert D13 in a.text and a.figure == "2 cold builds, one per cell"
    assert answer_resources([cw(D12)]).verdict == NOT_MEASURED


def test_q32_one_libc_is_a_value_two_depend() -> None:
    a = answer_libc([cw(D12), cw(D13, "glibc 2.41")])
    assert a.verdict == DEPENDS and "glibc 2.36 on debian-12/amd64" in a.text and "glibc 2.41" in a.text
    same = answer_libc([cw(D12), cw("debian-12/arm64/docker/go1.22")])
    assert same.verdict == VALUE and same.text.startswith("glibc 2.36 on debian-12/amd64, debian-12/arm64")
    assert "not compared across C libraries" in same.text


def test_q32_says_whether_static_binaries_differ_across_c_libraries() -> None:
    cells = [cw(D12), cw(ALP, "musl 1.2.5"), make(f"{D12}/portability:binary", sha256="ab"),
             make(f"{ALP}/portability:binary", sha256="ab")]
    a = answer_libc(cells)
    assert a.verdict == DEPENDS and "musl 1.2.5 on alpine-3.23/amd64" in a.text
    assert "byte-identical across C libraries for go1.22/amd64" in a.text
    cells[-1] = make(f"{ALP}/portability:binary", sha256="cd")
    assert "differs for go1.22/amd64" in answer_libc(cells).text
    assert answer_libc([cw(D12, None)]).verdict == NOT_MEASURED
