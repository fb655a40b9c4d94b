"""static-binary: the verdict on synthetic probe output, and Q13 from synthetic cells, agreeing and not."""

from __future__ import annotations

from typing import Any

from runner.answer import BREAKS, DEPENDS, NOT_MEASURED, VALUE, WORKS
from runner.model import Status
from runner.scenarios import SCRATCH_IMAGE, JobContext
from runner.scenarios.binary import EMPTY_ROOT, FLAVOURS, SHARED, StaticBinary, answer_static
from tests.unit.test_results import make
from tests.unit.test_scenarios import cell

CTX = JobContext(build_timeout=60)
D12, D13 = "debian-12/amd64/docker/go1.22", "debian-13/amd64/docker/go1.22"
OS12 = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n'
OS13 = 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nID=debian\n'
SIZES = "2272841 /tmp/gcm/bin/plain\n2268289 /tmp/gcm/bin/trimpath\n1491096 /tmp/gcm/bin/stripped\n"


def ok(name: str, stdout: str = "", **kw: Any) -> dict[str, Any]:
    return {"name": name, "ok": True, "exit_code": 0, "wall_sec": 0.01, "stdout": stdout, **kw}


def bad(name: str, stderr: str) -> dict[str, Any]:
    return {"name": name, "ok": False, "exit_code": 127, "wall_sec": 0.01, "stderr": stderr}


def image_probe(run: dict[str, Any] | None = None) -> dict[str, Any]:
    """The FROM scratch image's container: /bin, /lib, /usr absent, /etc the engine's three files."""
    du = {"bin": None, "lib": None, "usr": None, "etc": 3}
    return {"steps": [{"name": f"root-{d}", "ok": True, "usage": {"exists": n is not None, "files": n or 0}}
                      for d, n in du.items()] + [run or ok("scratch-image")]}


def binary_probes(scratch: dict[str, Any] | None = None, sizes: str = SIZES,
                  image: dict[str, Any] | None = None) -> dict[str, Any]:
    steps = [ok("copy-src"), ok("mod-download"), ok("mkdir"), *(ok(f"build-{n}") for n in FLAVOURS),
             ok("sizes", sizes), *(ok(f"run-{n}") for n in FLAVOURS),
             ok("empty-root", f"{EMPTY_ROOT}\n{EMPTY_ROOT}/app\n"), scratch or ok("scratch"), ok("keep"),
             {"name": "os", "ok": True, "content": OS12}]
    return {"main": {"steps": steps}, "scratch-image": image_probe(image)}


def from_probes(run: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"build": {"steps": [ok("copy-src"), ok("mod-download"), ok("build-plain"),
                                {"name": "os", "ok": True, "content": OS13}]},
            "main": {"steps": [run or ok("run-plain"), ok("empty-root", f"{EMPTY_ROOT}\n"), ok("scratch"),
                               {"name": "os", "ok": True, "content": OS12}]},
            "scratch-image": image_probe()}


def verdict(variant: str, p: dict[str, Any]) -> Any:
    return StaticBinary().evaluate(cell(f"{D12}/static-binary:{variant}"), p, CTX)


def scell(where: str, variant: str, p: dict[str, Any]) -> Any:
    v = StaticBinary().evaluate(cell(f"{where}/static-binary:{variant}"), p, CTX)
    return make(f"{where}/static-binary:{variant}", v.status, **v.observations)


def test_from_a_distro_builds_there_and_runs_here() -> None:
    phases = StaticBinary().phases(cell(f"{D12}/static-binary:from-debian-13"), CTX)
    assert [(p.name, p.distro, p.image) for p in phases] == [("build", "debian-13", None), ("main", None, None),
                                                             ("scratch-image", None, SCRATCH_IMAGE)]
    assert next(s for s in phases[2].steps if s["name"] == "scratch-image")["argv"] == [f"{SHARED}/app"]
    build = next(s for s in phases[0].steps if s["name"] == "build-plain")
    assert build["env"]["CGO_ENABLED"] == "0" and build["argv"][-2] == f"{SHARED}/app"
    scratch = next(s for s in phases[1].steps if s["name"] == "scratch")
    assert scratch["argv"] == ["chroot", EMPTY_ROOT, "/app"]


def test_binary_records_sizes_and_passes() -> None:
    v = verdict("binary", binary_probes())
    assert v.status is Status.PASS, v.reason
    assert v.observations["bytes"] == {"plain": 2272841, "trimpath": 2268289, "stripped": 1491096}
    assert v.observations["empty_root"] == [EMPTY_ROOT, f"{EMPTY_ROOT}/app"]
    assert StaticBinary.outcome(make(f"{D12}/static-binary:binary", **v.observations)).word == WORKS  # type: ignore[union-attr]


def test_binary_keeps_the_stripped_one_for_the_scratch_image() -> None:
    main, image = StaticBinary().phases(cell(f"{D12}/static-binary:binary"), CTX)
    keep = next(s for s in main.steps if s["name"] == "keep")
    assert keep["argv"][-1] == f"{SHARED}/app" and keep["argv"][-2].endswith("/stripped")
    assert image.image == SCRATCH_IMAGE and [m.target for m in image.mounts] == [SHARED]
    v = verdict("binary", binary_probes())
    assert v.observations["scratch_image"] == {"ok": True, "exit_code": 0, "stderr": "",
                                               "root": {"bin": None, "lib": None, "usr": None, "etc": 3}}
    assert "in an image FROM scratch" in v.reason


def test_a_binary_that_fails_in_the_scratch_image_is_a_fail_and_breaks() -> None:
    v = verdict("binary", binary_probes(image=bad("scratch-image", "exec /shared/app: no such file or directory")))
    assert v.status is Status.FAIL and "in an image FROM scratch: exit 127: exec /shared/app" in v.reason
    assert StaticBinary.outcome(make(f"{D12}/static-binary:binary", Status.FAIL,  # type: ignore[union-attr]
                                     **v.observations)).word == BREAKS
    a = answer_static([scell(D12, "binary", binary_probes()),
                       scell(D13, "binary", binary_probes(image=bad("scratch-image", "exec format error")))])
    assert a.verdict == DEPENDS and "fails on debian-13/amd64/docker/go1.22" in a.text


def test_a_binary_that_fails_alone_is_a_fail() -> None:
    v = verdict("binary", binary_probes(bad("scratch", "chroot: failed to run command '/app': No such file")))
    assert v.status is Status.FAIL and "alone" in v.reason and "exit 127" in v.reason
    assert StaticBinary.outcome(make(f"{D12}/static-binary:binary", Status.FAIL,  # type: ignore[union-attr]
                                     **v.observations)).word == BREAKS


def test_from_other_distro_records_both_systems() -> None:
    v = verdict("from-debian-13", from_probes())
    assert v.status is Status.PASS, v.reason
    assert v.observations["built_in"] == "Debian GNU/Linux 13 (trixie)"
    assert v.observations["run_in"] == "Debian GNU/Linux 12 (bookworm)"


def test_q13_agreeing_rows_give_the_size_range() -> None:
    cells = [scell(D12, "binary", binary_probes()), scell(D13, "binary", binary_probes()),
             scell(D12, "from-debian-13", from_probes())]
    a = answer_static(cells)
    assert a.verdict == VALUE
    assert a.text.startswith("-trimpath -s -w: 34.4 % smaller than plain (-trimpath alone: 0.2 %)")
    assert "alone in an empty root and FROM scratch: runs (2 rows)" in a.text
    assert "built in another distro's image: runs (1 row)" in a.text
    assert a.figure == "go1.22/amd64: 2272841 / 2268289 / 1491096 bytes"


def test_q13_disagreeing_rows_depend() -> None:
    cells = [scell(D12, "from-debian-13", from_probes()),
             scell(D13, "from-debian-12", from_probes(bad("run-plain", "exec format error")))]
    a = answer_static(cells)
    assert a.verdict == DEPENDS and "fails on debian-13/amd64/docker/go1.22" in a.text


def test_q13_without_runs_is_not_measured() -> None:
    assert answer_static([make(f"{D12}/static-binary:binary")]).verdict == NOT_MEASURED
