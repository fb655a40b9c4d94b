"""`env`: what Go reports about itself in this cell, as root and as an arbitrary uid.

The unprivileged case is what `docker run -u 1234` produces: a uid with no passwd entry and HOME=/.
Records the variables SCENARIOS.md lists; `fail` only when `go env`/`go version` itself fails.
"""

from __future__ import annotations

import json
from typing import Any

from runner.model import Cell, Status
from runner.scenarios import GOROOT, JobContext, Phase, Probes, Verdict, describe_failure, exec_step, first_line, step

VARS = ("GOVERSION", "GOROOT", "GOCACHE", "GOMODCACHE", "GOPATH", "GOPROXY", "GOSUMDB", "GOTOOLCHAIN",
        "GOFLAGS", "CGO_ENABLED", "GOARCH", "GOAMD64", "GOARM64", "GOENV", "GOTELEMETRY")
OTHER_UID = 1234


class Env:
    id = "env"

    def phases(self, cell: Cell, ctx: JobContext) -> list[Phase]:
        return [Phase("main", self.steps(cell, ctx))]

    def steps(self, cell: Cell, ctx: JobContext) -> list[dict[str, Any]]:
        as_user = {"uid": OTHER_UID, "gid": OTHER_UID, "env": {"HOME": "/"}}
        return [
            exec_step("version-root", ["go", "version"], timeout_sec=ctx.build_timeout),
            exec_step("env-root", ["go", "env", "-json"], timeout_sec=ctx.build_timeout),
            {"name": "go.env", "kind": "read", "path": f"{GOROOT}/go.env"},
            exec_step("version-user", ["go", "version"], timeout_sec=ctx.build_timeout, dir="/", **as_user),
            exec_step("env-user", ["go", "env", "-json"], timeout_sec=ctx.build_timeout, dir="/", **as_user),
        ]

    def evaluate(self, cell: Cell, probes: Probes, ctx: JobContext) -> Verdict:
        probe = probes["main"]
        obs: dict[str, Any] = {"other_uid": OTHER_UID}
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
                except ValueError as err:
                    problems.append(f"go env -json ({who}) printed invalid JSON: {err}")
            else:
                problems.append(describe_failure(e, f"go env ({who})"))
        goenv = step(probe, "go.env")
        if goenv and goenv.get("ok"):
            obs["go.env"] = {
                k: v for k, _, v in (line.partition("=") for line in (goenv.get("content") or "").splitlines()
                                     if line.strip() and not line.lstrip().startswith("#"))
            }
        else:
            obs["go.env"] = None  # absent before Go 1.21; recorded, not a failure
        if problems:
            return Verdict(Status.FAIL, "; ".join(problems), obs)
        return Verdict(Status.PASS, f"{obs.get('go_version_root', '')}; GOCACHE root={obs['env_root'].get('GOCACHE')} "
                                    f"uid {OTHER_UID}={obs['env_user'].get('GOCACHE')}", obs)
