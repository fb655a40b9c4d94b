"""`bench-steps`: the steps a user's bare `docker run` loop would run, for `go-cache-matrix bench`.

Not part of matrix.toml: the benchmark runs it through the normal cell pipeline so the runner's
cost can be compared with the same `go build` commands run one `docker run` each.
"""

from __future__ import annotations

from runner.model import Cell, Status
from runner.scenarios import JobContext, MountSpec, Phase, Probes, Verdict, describe_failure, exec_step, step
from runner.scenarios.base import Scenario

BUILD = ["go", "build", "-o", "/tmp/gofmt", "cmd/gofmt"]  # the bare loop runs exactly this
CACHE = "/root/.cache"  # a named volume on both sides, as in `docker run -v cache:/root/.cache`


class BenchSteps(Scenario):
    id = "bench-steps"

    def phases(self, cell: Cell, ctx: JobContext) -> list[Phase]:
        steps = [exec_step(name, BUILD, dir="/", env={"GOTOOLCHAIN": "local"}, timeout_sec=ctx.build_timeout,
                           stop_on_error=True) for name in ("cold", "warm")]
        return [Phase("main", steps, mounts=(MountSpec("volume", CACHE, name="cache"),))]

    def evaluate(self, cell: Cell, probes: Probes, ctx: JobContext) -> Verdict:
        obs = {}
        for name in ("cold", "warm"):
            s = step(probes["main"], name)
            if not (s and s.get("ok")):
                return Verdict(Status.FAIL, describe_failure(s, name))
            obs[name] = round(float(s["wall_sec"]), 3)
        return Verdict(Status.PASS, f"cold {obs['cold']:.2f}s, warm {obs['warm']:.2f}s", obs)
