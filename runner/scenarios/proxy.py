"""`offline-proxy`: with GOPROXY pointing at files, what does Go still try to contact, and does go.sum catch a
tampered module zip?

One container; each case is `go mod download` of the `lib` workload's module (it needs gcm.example/words) into an
empty GOMODCACHE of its own, from a copy of the module (with or without its go.sum). Every HTTP(S) request Go makes
goes to a closed local port (HTTPS_PROXY/HTTP_PROXY=http://127.0.0.1:9): the network is off as Go sees it, and its
error names the URL it wanted. The hosts are taken from those messages.

    sumdb-off             GOSUMDB=off, go.sum present
    sumdb-on              GOSUMDB as go.env sets it, go.sum present
    sumdb-on-no-gosum     GOSUMDB as go.env sets it, no go.sum
    gonosumdb-no-gosum    GONOSUMDB=gcm.example, no go.sum
    gonoproxy             GONOPROXY=gcm.example (GOSUMDB=off, go.sum present): fetched directly, not from the proxy
    tampered              the proxy's words v1.0.0 zip rewritten with one file changed (a valid zip), go.sum present
    tampered-no-gosum     the same zip, no go.sum, GOSUMDB=off

What Go documents (`go help module-auth`, `go help environment`): go.sum lines are checked first and the checksum
database is asked only about modules go.sum lacks; GONOSUMDB and GONOPROXY patterns skip the database and the proxy;
a download whose hash differs from go.sum is a SECURITY ERROR; with no go.sum line and GOSUMDB=off nothing can be
checked. The cell fails when a case differs from that; the exits, Go's words and the hosts are the observations.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from runner.answer import BREAKS, DEGRADED, WORKS, Answer, AnswerFn, Outcome, by_value, obs_of, pick
from runner.model import Cell, Status
from runner.results import CellResult
from runner.scenarios import (
    PROXY,
    SCRATCH,
    WORKLOADS,
    JobContext,
    Phase,
    Probes,
    Verdict,
    describe_failure,
    exec_step,
    setup_failure,
    step,
)
from runner.scenarios.base import Rows, Scenario
from runner.scenarios.rows import lead

CLOSED = "http://127.0.0.1:9"  # nothing listens on the discard port: every request fails at once, naming its URL
TAMPERED = f"{SCRATCH}/proxy-tampered"
ZIP = "gcm.example/words/@v/v1.0.0.zip"
# case -> (extra env, go.sum kept, proxy dir, documented: download succeeds, hosts Go should try)
CASES: dict[str, tuple[dict[str, str], bool, str, bool, tuple[str, ...]]] = {
    "sumdb-off": ({"GOSUMDB": "off"}, True, PROXY, True, ()),
    "sumdb-on": ({}, True, PROXY, True, ()),
    "sumdb-on-no-gosum": ({}, False, PROXY, False, ("<GOSUMDB>",)),
    "gonosumdb-no-gosum": ({"GONOSUMDB": "gcm.example"}, False, PROXY, True, ()),
    "gonoproxy": ({"GOSUMDB": "off", "GONOPROXY": "gcm.example"}, True, PROXY, False, ("gcm.example",)),
    "tampered": ({"GOSUMDB": "off"}, True, TAMPERED, False, ()),
    "tampered-no-gosum": ({"GOSUMDB": "off"}, False, TAMPERED, True, ()),
}
URL = re.compile(r"https?://([A-Za-z0-9.\-]+)")


def hosts(text: str) -> list[str]:
    """The hosts of the URLs in Go's messages, the closed proxy itself left out, in order of appearance."""
    return list(dict.fromkeys(h for h in URL.findall(text) if h not in ("127.0.0.1", "localhost")))


def _case_steps(case: str, ctx: JobContext) -> list[dict[str, Any]]:
    extra, gosum, proxy, _, _ = CASES[case]
    mod, cache = f"{SCRATCH}/mod-{case}", f"{SCRATCH}/gomodcache-{case}"
    env = {"GOPROXY": f"file://{proxy}", "GOMODCACHE": cache, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local",
           "HTTPS_PROXY": CLOSED, "HTTP_PROXY": CLOSED, "NO_PROXY": "", **extra}
    steps = [{"name": f"copy-{case}", "kind": "copytree", "path": f"{WORKLOADS}/{ctx.workload}", "dest": mod,
              "stop_on_error": True}]
    if not gosum:
        steps.append({"name": f"no-gosum-{case}", "kind": "rmtree", "path": f"{mod}/go.sum", "stop_on_error": True})
    steps.append(exec_step(case, ["go", "mod", "download", "gcm.example/words"], dir=mod, env=env,
                           unset=["GOSUMDB"] if "GOSUMDB" not in extra else [], timeout_sec=ctx.build_timeout))
    return steps


class OfflineProxy(Scenario):
    id = "offline-proxy"
    title = ("`go mod download` from a file:// proxy with the network off (requests to a closed port): GOSUMDB, "
             "GONOSUMDB, GONOPROXY and a tampered module zip; exit, hosts Go tried, Go's words")
    # What is contacted and what go.sum rejects do not depend on the build: the module download decides it.
    workload = "lib"

    def phases(self, cell: Cell, ctx: JobContext) -> list[Phase]:
        steps: list[dict[str, Any]] = [
            exec_step("gosumdb-default", ["go", "env", "GOSUMDB"], env={"GOTOOLCHAIN": "local"}, unset=["GOSUMDB"]),
            {"name": "copy-proxy", "kind": "copytree", "path": PROXY, "dest": TAMPERED, "stop_on_error": True},
            {"name": "tamper", "kind": "zipedit", "path": f"{PROXY}/{ZIP}", "dest": f"{TAMPERED}/{ZIP}",
             "member": "words.go", "data": "\n// tampered\n", "stop_on_error": True},
        ]
        for case in CASES:
            steps += _case_steps(case, ctx)
        return [Phase("main", steps)]

    def evaluate(self, cell: Cell, probes: Probes, ctx: JobContext) -> Verdict:
        probe = probes["main"]
        obs: dict[str, Any] = {"workload": ctx.workload}
        if problem := setup_failure(probe, ("copy-proxy", "tamper")):
            return Verdict(Status.ERROR, problem, obs)
        default = step(probe, "gosumdb-default") or {}
        obs["gosumdb_default"] = (default.get("stdout") or "").strip()
        sumdb_host = obs["gosumdb_default"].split()[0].split("+")[0] if obs["gosumdb_default"] else ""
        obs["cases"] = {}
        problems = []
        for case, (_, _, _, want_ok, want_hosts) in CASES.items():
            s = step(probe, case)
            if s is None or s.get("exit_code") is None:
                return Verdict(Status.ERROR, describe_failure(s, case), obs)
            text = f"{s.get('stderr') or ''}\n{s.get('stdout') or ''}"
            lines = [ln.strip() for ln in str(s.get("stderr") or "").splitlines() if ln.strip()]
            said = next((ln for ln in lines if "SECURITY ERROR" in ln or "checksum mismatch" in ln),
                        lines[-1] if lines else "")
            o: dict[str, Any] = {"ok": bool(s.get("ok")), "exit_code": s.get("exit_code"), "hosts": hosts(text),
                                 "said": said[:300]}
            obs["cases"][case] = o
            if "<GOSUMDB>" in want_hosts and sumdb_host in ("", "off"):
                want_ok, want_hosts = True, ()  # a go.env that turns the checksum database off: nothing to ask
            expected = [sumdb_host if h == "<GOSUMDB>" else h for h in want_hosts]
            if o["ok"] != want_ok:
                problems.append(f"{case}: {'succeeded' if o['ok'] else 'failed'} ({said or 'no message'}), "
                                f"documented: {'succeeds' if want_ok else 'fails'}")
            elif set(o["hosts"]) != set(expected):
                problems.append(f"{case}: tried {o['hosts'] or 'no host'}, documented: {expected or 'none'}")
        if problems:
            return Verdict(Status.FAIL, "; ".join(problems), obs)
        return Verdict(Status.PASS, "every case as documented: " + summary(obs), obs)

    @staticmethod
    def answers() -> dict[str, AnswerFn]:
        return {"Q23": answer_proxy}

    @staticmethod
    def outcome(c: CellResult) -> Outcome | None:
        cases = c.observations.get("cases") or {}
        if not cases:
            return None
        if (cases.get("tampered") or {}).get("ok"):
            return Outcome(BREAKS, "a tampered zip was accepted despite go.sum")
        if c.status is not Status.PASS:
            return Outcome(DEGRADED, c.reason)
        return Outcome(WORKS, "offline as configured; go.sum rejects the tampered zip")

    @staticmethod
    def parity(obs: Mapping[str, Any]) -> dict[str, Any]:
        return {k: (v.get("ok"), tuple(v.get("hosts") or ())) for k, v in (obs.get("cases") or {}).items()}

    def detail_rows(self, cells: Sequence[CellResult]) -> Rows:
        """One row per cell, one column per case: 'ok' or 'exit N', then the hosts Go tried."""
        headers = ["distro", "arch", "engine", "toolchain", *CASES, "tampered: Go's words", "status"]
        out = []
        for c in cells:
            cases = c.observations.get("cases") or {}

            def cell_of(o: Mapping[str, Any] | None) -> str:
                if not o:
                    return ""
                got = "ok" if o.get("ok") else f"exit {o.get('exit_code')}"
                return f"{got} · {', '.join(o.get('hosts') or []) or 'no host'}"

            out.append(lead(c) + [cell_of(cases.get(k)) for k in CASES]
                       + [(cases.get("tampered") or {}).get("said", ""), c.status.value])
        return headers, out


def summary(obs: Mapping[str, Any]) -> str:
    cases = obs.get("cases") or {}

    def one(case: str) -> str:
        o = cases.get(case) or {}
        got = "downloads" if o.get("ok") else "fails"
        return f"{case} {got}, contacts {', '.join(o.get('hosts') or []) or 'nothing'}"

    return "; ".join(one(c) for c in CASES if c in cases)


def _said(c: CellResult) -> str | None:
    cases = obs_of(c, "cases")
    if not isinstance(cases, Mapping) or not cases:
        return None
    tampered = cases.get("tampered") or {}
    verdict = ("a tampered zip is rejected by go.sum" if not tampered.get("ok") and "mismatch" in
               str(tampered.get("said")) else "a tampered zip is accepted" if tampered.get("ok")
               else f"a tampered zip fails: {tampered.get('said')}")
    return f"{verdict}; {summary(c.observations)}"


def answer_proxy(cells: Sequence[CellResult]) -> Answer:
    """Q23: per case, whether `go mod download` works offline and which hosts it tries; the tampered zip's fate."""
    basis = pick(cells, "offline-proxy")
    return by_value(basis, _said, limits="hosts are those Go's error messages name (it stops at the first failure); "
                                         "a real network was not observed; only `go mod download`") or Answer(
        "value", "", tuple(basis))
