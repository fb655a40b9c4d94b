"""Small, pure statistics for the Findings: medians with a stated interval, a noise floor from A/A reps,
and failure counts with an upper bound. No numpy/scipy: the runner must install anywhere pip works.

    per-rep ratios ──median_interval──> MedianInterval(median, low, high, n, confidence)
    A/A ratios ─────noise_band────────> (1/f, f): how far two runs of the same thing drift apart
    both ───────────compare───────────> Comparison: "1.50x slower" | "1.20x faster" | no measurable difference

A difference is claimed only when the whole interval lies outside the noise band (or outside 1x when no
A/A reps exist): a median alone never decides.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

MEDIAN_METHOD = "sign-test (order-statistic) interval for the median"
RATE_METHOD = "one-sided Clopper–Pearson"
SLOWER, FASTER, SAME = "slower", "faster", "no measurable difference"
SINGLE = "a single value"  # n = 1: no interval, no claim either way


def binom_pmf(i: int, n: int, p: float) -> float:
    """P(X = i) for X ~ Binomial(n, p), in log space: comb(n, i) * p**i overflows a float from n of about 1000."""
    if p <= 0.0 or p >= 1.0:
        return 1.0 if i == (0 if p <= 0.0 else n) else 0.0
    return math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                    + i * math.log(p) + (n - i) * math.log1p(-p))


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return min(1.0, sum(binom_pmf(i, n, p) for i in range(k + 1)))


@dataclass(frozen=True)
class MedianInterval:
    median: float
    low: float
    high: float
    n: int
    confidence: float  # achieved coverage of [low, high]; with few values it is below what was asked

    def text(self, unit: str = "×") -> str:
        if self.n < 2:
            return f"n={self.n}: a single value, no interval"
        level = f"{self.confidence * 100:.0f} %"
        return f"n={self.n}, {level} interval {self.low:.2f}–{self.high:.2f}{unit} ({MEDIAN_METHOD})"


def median_interval(values: Sequence[float], confidence: float = 0.95) -> MedianInterval | None:
    """The median and the order statistics [x_(k), x_(n+1-k)] that cover it with at least `confidence`.

    Distribution-free: the number of values below the true median is Binomial(n, 1/2), so that interval covers
    it with probability 1 - 2·P(B <= k-1). With n <= 5 even [min, max] covers less than 95 % (n=5: 93.75 %):
    the achieved level is returned, never the asked one."""
    xs = sorted(values)
    n = len(xs)
    if n == 0:
        return None
    mid = (xs[(n - 1) // 2] + xs[n // 2]) / 2
    # P(B <= k-1) and P(B <= k), grown one term at a time: one pass, also for thousands of values.
    k, below, upto = 1, binom_pmf(0, n, 0.5), binom_cdf(1, n, 0.5)
    while k + 1 <= (n + 1) // 2 and 1 - 2 * upto >= confidence:
        k += 1
        below, upto = upto, upto + binom_pmf(k, n, 0.5)
    achieved = 1 - 2 * below if n > 1 else 0.0
    return MedianInterval(median=mid, low=xs[k - 1], high=xs[n - k], n=n, confidence=max(achieved, 0.0))


def direction(ratio: float) -> str:
    """A ratio of times (new ÷ reference) in words: 1.5 -> '1.50x slower', 0.8 -> '1.25x faster'."""
    if ratio <= 0 or math.isclose(ratio, 1.0, abs_tol=0.005):
        return "1.00× (the same)"
    return f"{ratio:.2f}× slower" if ratio > 1 else f"{1 / ratio:.2f}× faster"


def noise_band(aa_ratios: Sequence[float]) -> tuple[float, float] | None:
    """(1/f, f) with f the largest drift of an A/A ratio (the same placement twice) from 1x in either direction."""
    good = [r for r in aa_ratios if r > 0]
    if not good:
        return None
    f = max(max(r, 1 / r) for r in good)
    return 1 / f, f


@dataclass(frozen=True)
class Comparison:
    verdict: str  # SLOWER, FASTER, SAME or SINGLE
    interval: MedianInterval
    band: tuple[float, float] | None  # the A/A noise band, None when the cell had no A/A reps

    def short(self) -> str:
        """'1.29x slower (94 % interval 0.88-1.80x, n=5; A/A floor 0.95-1.05x)': the method is stated once elsewhere."""
        iv = self.interval
        if self.verdict == SINGLE:
            return f"{direction(iv.median)} (a single value: no interval, no claim)"
        head = SAME if self.verdict == SAME else direction(iv.median)
        spread = (f"median {iv.median:.2f}×, {iv.confidence * 100:.0f} % interval {iv.low:.2f}–{iv.high:.2f}×, "
                  f"n={iv.n}" if iv.n >= 2 else f"a single value {iv.median:.2f}×")
        floor = f"A/A floor {self.band[0]:.2f}–{self.band[1]:.2f}×" if self.band else "no A/A floor"
        few = "; few reps: wide" if iv.n < 6 else ""
        return f"{head} ({spread}; {floor}{few})"

    def text(self) -> str:
        iv = self.interval
        head = SAME if self.verdict == SAME else direction(iv.median)
        parts = [f"{head} (median {iv.median:.2f}×; {iv.text()})"]
        if self.band:
            parts.append(f"A/A noise floor {self.band[0]:.2f}–{self.band[1]:.2f}×")
        else:
            parts.append("no A/A reps: noise floor not measured")
        if iv.n < 6:
            parts.append(f"only {iv.n} reps: the interval is wide, it rules out large effects only")
        return "; ".join(parts)


def compare(ratios: Sequence[float], aa_ratios: Sequence[float] = ()) -> Comparison | None:
    """Per-rep time ratios (B ÷ A) against the A/A noise band: slower or faster only when the whole interval
    lies beyond the band (or beyond 1x without A/A reps), else no measurable difference."""
    iv = median_interval(ratios)
    if iv is None:
        return None
    band = noise_band(aa_ratios)
    lo, hi = band or (1.0, 1.0)
    if iv.n < 2:
        verdict = SINGLE
    elif iv.low > hi:
        verdict = SLOWER
    elif iv.high < lo:
        verdict = FASTER
    else:
        verdict = SAME
    return Comparison(verdict, iv, band)


def rate_upper_bound(k: int, n: int, confidence: float = 0.95) -> float:
    """The one-sided Clopper-Pearson upper bound of a rate seen k times in n: the p at which seeing <= k would
    happen with probability 1 - confidence. 0 of n gives 1 - (1 - confidence)^(1/n) (about 3/n)."""
    if n <= 0:
        return 1.0
    if k >= n:
        return 1.0
    alpha = 1 - confidence
    lo, hi = k / n, 1.0
    for _ in range(60):  # bisection: binom_cdf(k, n, p) falls as p grows
        mid = (lo + hi) / 2
        if binom_cdf(k, n, mid) > alpha:
            lo = mid
        else:
            hi = mid
    return hi


def rate_text(k: int, n: int, what: str = "failed", confidence: float = 0.95) -> str:
    """'0 of 16 failed: at most 17 % at 95 % confidence (one-sided Clopper-Pearson)'; never a bare percentage."""
    if n <= 0:
        return f"nothing {what}: no attempts"
    bound = rate_upper_bound(k, n, confidence)
    return (f"{k} of {n} {what}: at most {bound * 100:.0f} % at {confidence * 100:.0f} % confidence "
            f"({RATE_METHOD})")
