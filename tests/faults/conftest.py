"""Fixtures of the fault tests: the `fault` recorder behind the suite's summary line (tests/faults/tally.py)."""

from __future__ import annotations

import json

import pytest

from tests.faults.tally import FAULT, FAULT_DONE


class Fault:
    """One injected fault: inject() when it is injected, done() with the measured outcome (before asserting on it,
    so the summary's figures are what was measured even when the test then fails)."""

    def __init__(self, node: pytest.Item) -> None:
        self.node, self.what = node, ""

    def inject(self, what: str) -> None:
        self.what = what
        self.node.user_properties.append((FAULT, json.dumps({"what": what})))

    def done(self, outcome: str, *, leaked: int = 0, lost: int = 0) -> None:
        print(f"fault: {self.what} -> {outcome}" + (f" (leaked {leaked}, lost {lost})" if leaked or lost else ""))
        self.node.user_properties.append((FAULT_DONE, json.dumps({"what": self.what, "outcome": outcome,
                                                                  "leaked": leaked, "lost": lost})))


@pytest.fixture
def fault(request: pytest.FixtureRequest) -> Fault:
    assert isinstance(request.node, pytest.Item)
    return Fault(request.node)
