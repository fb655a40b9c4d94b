"""offline-proxy: hosts from Go's messages, the verdict on synthetic probe output, and Q23 agreeing and not."""

from __future__ import annotations

from typing import Any

from runner.answer import BREAKS, DEPENDS, VALUE, WORKS
from runner.model import Status
from runner.scenarios import PROXY, JobContext
from runner.scenarios.proxy import CASES, CLOSED, TAMPERED, ZIP, OfflineProxy, answer_proxy, hosts
from tests.unit.test_results import make
from tests.unit.test_scenarios import cell

CTX = JobContext(build_timeout=60, workload="lib")
D12, D13 = "debian-12/amd64/docker/go1.22", "debian-13/amd64/docker/go1.22"
SUMDB = ('go: gcm.example/words@v1.0.0: verifying go.mod: Get "https://sum.golang.org/lookup/gcm.example/words@v1.0.0"'
         ': proxyconnect tcp: dial tcp 127.0.0.1:9: connect: connection refused')
DIRECT = 'go: unrecognized import path "gcm.example/words": https fetch: Get "https://gcm.example/words?go-get=1": x'
MISMATCH = "verifying gcm.example/words@v1.0.0: checksum mismatch\n\tdownloaded: h1:a\n\tgo.sum: h1:b\nSECURITY ERROR"
STDERR = {"sumdb-on-no-gosum": SUMDB, "gonoproxy": DIRECT, "tampered": MISMATCH}


def ok(name: str, stdout: str = "") -> dict[str, Any]:
    return {"name": name, "ok": True, "exit_code": 0, "wall_sec": 0.01, "stdout": stdout}


def probes(stderr: dict[str, str] | None = None, accepted: tuple[str, ...] = ()) -> dict[str, Any]:
    err = STDERR if stderr is None else stderr
    steps = [ok("gosumdb-default", "sum.golang.org\n"), ok("copy-proxy"), ok("tamper")]
    for case in CASES:
        failed = case in err and case not in accepted
        steps.append({"name": case, "ok": not failed, "exit_code": 1 if failed else 0, "wall_sec": 0.1,
                      "stderr": err.get(case, "")})
    return {"main": {"steps": steps}}


def verdict(p: dict[str, Any]) -> Any:
    return OfflineProxy().evaluate(cell(f"{D12}/offline-proxy"), p, CTX)


def pcell(where: str, **kw: Any) -> Any:
    v = verdict(probes(**kw))
    return make(f"{where}/offline-proxy", v.status, **v.observations)


def test_hosts_leave_the_closed_proxy_out() -> None:
    assert hosts(SUMDB) == ["sum.golang.org"] and hosts(DIRECT) == ["gcm.example"]
    assert hosts(f"proxyconnect {CLOSED}") == []


def test_steps_send_every_request_to_the_closed_port_and_tamper_a_copy() -> None:
    steps = {s["name"]: s for s in OfflineProxy().phases(cell(f"{D12}/offline-proxy"), CTX)[0].steps}
    assert steps["tamper"]["path"] == f"{PROXY}/{ZIP}" and steps["tamper"]["dest"] == f"{TAMPERED}/{ZIP}"
    for case in CASES:
        env = steps[case]["env"]
        assert env["HTTPS_PROXY"] == CLOSED and env["GOMODCACHE"].endswith(case)
    assert steps["sumdb-on"]["unset"] == ["GOSUMDB"] and "GOSUMDB" not in steps["sumdb-on"]["env"]
    assert "no-gosum-tampered-no-gosum" in steps and "no-gosum-tampered" not in steps


def test_documented_behaviour_passes() -> None:
    v = verdict(probes())
    assert v.status is Status.PASS, v.reason
    c = v.observations["cases"]
    assert c["sumdb-on-no-gosum"]["hosts"] == ["sum.golang.org"] and c["gonoproxy"]["hosts"] == ["gcm.example"]
    assert c["tampered"]["said"] == "verifying gcm.example/words@v1.0.0: checksum mismatch"
    assert OfflineProxy.outcome(make(f"{D12}/offline-proxy", **v.observations)).word == WORKS  # type: ignore[union-attr]


def test_an_accepted_tampered_zip_fails_and_breaks() -> None:
    v = verdict(probes(accepted=("tampered",)))
    assert v.status is Status.FAIL and "tampered: succeeded" in v.reason
    assert OfflineProxy.outcome(make(f"{D12}/offline-proxy", Status.FAIL,  # type: ignore[union-attr]
                                     **v.observations)).word == BREAKS


def test_a_host_contacted_where_none_should_be_fails() -> None:
    v = verdict(probes({**STDERR, "sumdb-on": SUMDB}))
    assert v.status is Status.FAIL and "sumdb-on: failed" in v.reason


def test_q23_agreeing_and_disagreeing_rows() -> None:
    a = answer_proxy([pcell(D12), pcell(D13)])
    assert a.verdict == VALUE and a.text.startswith("a tampered zip is rejected by go.sum; sumdb-off downloads")
    assert "sumdb-on-no-gosum fails, contacts sum.golang.org" in a.text
    b = answer_proxy([pcell(D12), pcell(D13, accepted=("tampered",))])
    assert b.verdict == DEPENDS and "a tampered zip is accepted" in b.text
