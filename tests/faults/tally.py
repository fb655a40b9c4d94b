"""The reliability suite's figures: one summary line at the end of the test session.

    faults: 7 injected, 7 survived; bad inputs tried: 41; leaked resources: 0; results lost: 0

Loaded for every run of the suite (tests/conftest.py lists it in pytest_plugins), so the line also appears when
the fault tests run on xdist workers: the figures travel as user_properties of the test reports, which xdist
sends to the controller.

- A fault test calls `fault.inject(what)` (tests/faults/conftest.py) when it injects the fault and
  `fault.done(outcome, leaked=N, lost=M)` when it has measured the result; a fault survived when its test passed.
- Bad inputs: a test may add the user property ("bad_inputs_tried", N) (e.g. the examples a fuzz test tried), and
  ("bad_inputs_by_verb", json {verb: N}) for the per-verb figures; every test of a `test_bad_input.py` file
  named test_bad_* or test_debug_* counts as one more bad input tried.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

FAULT = "gcm_fault"  # user property: json {"what"}
FAULT_DONE = "gcm_fault_done"  # user property: json {"what", "outcome", "leaked", "lost"}
BAD_INPUTS = "bad_inputs_tried"
BAD_BY_VERB = "bad_inputs_by_verb"  # user property: json {verb: N, ..., "tracebacks": N}


class Tally:
    def __init__(self) -> None:
        self.faults: list[dict[str, Any]] = []
        self.bad_explicit: int | None = None
        self.bad_counted = 0
        self.by_verb: dict[str, int] = {}

    def add(self, report: pytest.TestReport) -> None:
        if report.when != "call" and not (report.when == "setup" and report.failed):
            return
        done = {}
        for name, value in report.user_properties:
            if name == FAULT_DONE:
                d = json.loads(str(value))
                done[d["what"]] = d
            elif name == BAD_INPUTS:
                self.bad_explicit = (self.bad_explicit or 0) + int(str(value))
            elif name == BAD_BY_VERB:
                for verb, n in json.loads(str(value)).items():
                    self.by_verb[verb] = self.by_verb.get(verb, 0) + int(n)
        for name, value in report.user_properties:
            if name == FAULT:
                what = json.loads(str(value))["what"]
                d = done.get(what, {})
                self.faults.append({"what": what, "outcome": d.get("outcome") or f"test {report.outcome}",
                                    "survived": report.passed and what in done,
                                    "leaked": int(d.get("leaked", 0)), "lost": int(d.get("lost", 0))})
        path, _, name = report.nodeid.partition("::")
        if path.endswith("test_bad_input.py") and name.startswith(("test_bad_", "test_debug")):
            self.bad_counted += 1

    def line(self) -> str | None:
        # Explicit counts (a fuzz test's examples) add to the table-driven cases counted one per test.
        bad = (self.bad_explicit or 0) + self.bad_counted
        if not self.faults and not bad:
            return None
        parts = [f"faults: {len(self.faults)} injected, {sum(f['survived'] for f in self.faults)} survived"]
        if bad:
            parts.append(f"bad inputs tried: {bad}")
        parts.append(f"leaked resources: {sum(f['leaked'] for f in self.faults)}")
        parts.append(f"results lost: {sum(f['lost'] for f in self.faults)}")
        return "; ".join(parts)


class TallyPlugin:
    """Registered once per session (pytest_configure below): collects the figures, prints them at the end."""

    def __init__(self) -> None:
        self.tally = Tally()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.tally.add(report)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        tally = self.tally
        if (line := tally.line()) is None:
            return
        tr = terminalreporter
        tr.section("reliability")
        for f in tally.faults:
            tr.write_line(f"fault: {f['what']} -> {f['outcome']}" + ("" if f["survived"] else "  [NOT SURVIVED]"))
        if tally.by_verb:
            verbs = {k: n for k, n in tally.by_verb.items() if k != "tracebacks"}
            tr.write_line("fuzzed inputs by verb: " + ", ".join(f"{k} {n}" for k, n in sorted(verbs.items()))
                          + f"; tracebacks: {tally.by_verb.get('tracebacks', 0)}")
        bad = not all(f["survived"] for f in tally.faults) or any(f["leaked"] or f["lost"] for f in tally.faults)
        tr.write_line(line, bold=True, red=bad, green=not bad)


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("gcm-tally"):
        config.pluginmanager.register(TallyPlugin(), "gcm-tally")
