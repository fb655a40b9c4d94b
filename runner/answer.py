"""What a scenario gives the report besides its verdict: an answer per question it decides, and two words per
cell for people. Scenarios import this module; runner.findings collects and renders what they return.

    scenario.answers() -> {"Q14": fn, ...}      fn(every cell of the run) -> Answer (not measured: nothing judged)
    scenario.outcome(cell) -> Outcome            works | degraded | breaks, with the message

An Answer is computed from observations only: no answer is written in advance anywhere. Its `basis` is every
cell the question looked at (unavailable and n/a included), so the coverage and the command that reproduces it
follow from the cells, not from the function.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from runner.model import Status
from runner.results import CellResult

# Answer verdicts: `value` is a measured value that is the same on every row measured (e.g. a path).
YES, NO, DEPENDS, NO_DIFFERENCE, VALUE, NOT_MEASURED = (
    "yes", "no", "depends", "no measurable difference", "value", "not measured here")
VERDICTS = (YES, NO, DEPENDS, NO_DIFFERENCE, VALUE, NOT_MEASURED)

# What happened in a cell, for people (the status says whether Go behaved as documented).
WORKS, DEGRADED, BREAKS = "works", "degraded", "breaks"
JUDGED = (Status.PASS, Status.FAIL, Status.KNOWN)


@dataclass(frozen=True)
class Answer:
    verdict: str
    text: str  # the answer in words, verdict first
    basis: tuple[CellResult, ...] = ()  # every cell the question looked at
    figure: str = ""  # the number with its spread, n and method, or ""
    limits: str = ""  # what part of the question these cells do not cover


@dataclass(frozen=True)
class Outcome:
    word: str  # WORKS, DEGRADED or BREAKS
    message: str = ""


AnswerFn = Callable[[Sequence[CellResult]], Answer]


def pick(cells: Iterable[CellResult], scenario: str, *variants: str) -> list[CellResult]:
    """The cells of one scenario (any of `variants` when given), every status included."""
    return [c for c in cells if c.cell.get("scenario") == scenario
            and (not variants or c.cell.get("variant") in variants)]


def judged(cells: Iterable[CellResult]) -> list[CellResult]:
    """Cells that ran and were judged (pass, fail, known): what an answer may be computed from."""
    return [c for c in cells if c.status in JUDGED]


def where(c: CellResult) -> str:
    """The row a cell belongs to: distro/arch/engine/toolchain, marked when QEMU ran it."""
    parts = c.id.split("/")
    return "/".join(parts[:4]) + (" (QEMU)" if c.cell.get("emulated") else "")


def rows(n: int) -> str:
    return f"{n} row" + ("" if n == 1 else "s")


def brief(text: str, limit: int = 120) -> str:
    """One line of at most `limit` characters: long Go messages stay readable in a table cell."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def listing(items: Sequence[str], limit: int = 4) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def split(cells: Iterable[CellResult], key: Callable[[CellResult], str | None]) -> dict[str, list[str]]:
    """value -> the rows (where) that showed it; cells whose key is None are left out."""
    out: dict[str, list[str]] = {}
    for c in cells:
        value = key(c)
        if value is not None:
            rows = out.setdefault(value, [])
            if where(c) not in rows:
                rows.append(where(c))
    return out


def by_value(basis: Sequence[CellResult], key: Callable[[CellResult], str | None], *, same: str = VALUE,
             prefix: str = "", figure: str = "", limits: str = "") -> Answer | None:
    """`same` with the one value when every judged row agrees, else `depends` naming the rows per value."""
    groups = split(judged(basis), key)
    if not groups:
        return None
    if len(groups) == 1:
        (value,) = groups
        return Answer(same, f"{prefix}{value} (every row measured: {rows(len(groups[value]))})", tuple(basis), figure,
                      limits)
    text = "; ".join(f"{v} on {listing(where_)}" for v, where_ in sorted(groups.items()))
    return Answer(DEPENDS, f"depends: {prefix}{text}", tuple(basis), figure, limits)


def yes_no(basis: Sequence[CellResult], test: Callable[[CellResult], bool | None], yes: str, no: str,
           figure: str = "", limits: str = "") -> Answer | None:
    """yes/no when every judged row agrees (test None: the cell cannot tell), else `depends` naming the rows."""
    groups = split(judged(basis), lambda c: None if (t := test(c)) is None else (YES if t else NO))
    if not groups:
        return None
    if len(groups) == 1:
        (verdict,) = groups
        return Answer(verdict, f"{verdict}: {yes if verdict == YES else no} ({rows(len(groups[verdict]))})",
                      tuple(basis), figure, limits)
    return Answer(DEPENDS, f"depends: yes ({yes}) on {listing(groups[YES])}; no ({no}) on {listing(groups[NO])}",
                  tuple(basis), figure, limits)


def obs_of(c: CellResult, *path: str) -> object:
    """observations[path[0]][path[1]]...; None when any level is missing."""
    cur: object = c.observations
    for p in path:
        cur = cur.get(p) if isinstance(cur, Mapping) else None
    return cur


def default_outcome(c: CellResult) -> Outcome | None:
    """For scenarios whose status is honest about what happened: pass works, fail breaks; nothing ran: None."""
    if c.status is Status.PASS:
        return Outcome(WORKS, "")
    if c.status in (Status.FAIL, Status.KNOWN):
        return Outcome(BREAKS, c.reason)
    return None


@dataclass
class Tally:
    """Counts for a rate: k of n (never a bare percentage)."""

    k: int = 0
    n: int = 0
    rows: list[str] = field(default_factory=list)

    def add(self, k: int, n: int, row: str) -> None:
        self.k, self.n = self.k + k, self.n + n
        if row not in self.rows:
            self.rows.append(row)


def per_case(basis: Sequence[CellResult], key: Callable[[CellResult], str | None], *, figure: str = "",
             limits: str = "") -> Answer:
    """One by_value per variant (cases differ by construction): `depends` when rows disagree within a case."""
    variants = sorted({str(c.cell.get("variant") or "") for c in basis})
    found = [a for v in variants if (a := by_value([c for c in basis if str(c.cell.get("variant") or "") == v],
                                                   key)) is not None]
    if not found:
        return Answer(NOT_MEASURED, "", tuple(basis))
    verdict = DEPENDS if any(a.verdict == DEPENDS for a in found) else VALUE
    text = "; ".join(a.text.removeprefix("depends: ") for a in found)
    return Answer(verdict, ("depends: " if verdict == DEPENDS else "") + text, tuple(basis), figure, limits)
