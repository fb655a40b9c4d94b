"""runner.stats: the interval, noise floor and rate bounds the Findings print."""

from __future__ import annotations

import math

import pytest

from runner import stats


def test_median_interval_n5_is_min_to_max_at_94_percent() -> None:
    iv = stats.median_interval([5.0, 1.0, 3.0, 2.0, 4.0])
    assert iv is not None
    assert (iv.median, iv.low, iv.high, iv.n) == (3.0, 1.0, 5.0, 5)
    assert iv.confidence == pytest.approx(1 - 2 / 32)  # below 95 %: said, not hidden
    assert "94 %" in iv.text()


def test_median_interval_n20_uses_the_6th_and_15th_values() -> None:
    iv = stats.median_interval([float(x) for x in range(1, 21)])
    assert iv is not None
    assert (iv.low, iv.high) == (6.0, 15.0)
    assert iv.confidence >= 0.95


def test_median_interval_edge_cases() -> None:
    assert stats.median_interval([]) is None
    one = stats.median_interval([2.0])
    assert one is not None and one.confidence == 0 and "no interval" in one.text()


@pytest.mark.parametrize(("ratio", "words"), [(1.5, "1.50× slower"), (0.8, "1.25× faster"), (1.0, "1.00× (the same)")])
def test_direction_in_words(ratio: float, words: str) -> None:
    assert stats.direction(ratio) == words


def test_noisy_timings_are_no_measurable_difference() -> None:
    # The example: a median of 1.5 with a 0.71 to 1.92 spread is noise.
    c = stats.compare([0.71, 1.5, 1.92, 1.2, 1.6], [0.9, 1.1, 1.05, 0.95, 1.0])
    assert c is not None and c.verdict == stats.SAME
    assert c.short().startswith("no measurable difference")


def test_a_difference_beyond_the_a_a_floor_has_a_direction() -> None:
    slower = stats.compare([1.4, 1.5, 1.45, 1.6, 1.55], [0.97, 1.03, 1.0, 1.02, 0.99])
    faster = stats.compare([0.7, 0.72, 0.69, 0.75, 0.71], [0.97, 1.03, 1.0, 1.02, 0.99])
    assert slower is not None and slower.verdict == stats.SLOWER and "1.50× slower" in slower.short()
    assert faster is not None and faster.verdict == stats.FASTER and "faster" in faster.short()
    assert "few reps" in slower.short()


def test_an_interval_inside_the_floor_is_no_difference_even_when_it_excludes_1() -> None:
    c = stats.compare([1.03, 1.04, 1.05, 1.03, 1.04], [0.9, 1.1, 1.0, 1.0, 1.0])
    assert c is not None and c.verdict == stats.SAME


def test_without_a_a_reps_the_floor_is_1x_and_said_so() -> None:
    c = stats.compare([1.03, 1.04, 1.05, 1.03, 1.04])
    assert c is not None and c.verdict == stats.SLOWER and "no A/A floor" in c.short()


def test_a_single_value_claims_nothing() -> None:
    c = stats.compare([9.0])
    assert c is not None and c.verdict == stats.SINGLE and "no claim" in c.short()


def test_rate_upper_bounds() -> None:
    assert stats.rate_upper_bound(0, 16) == pytest.approx(1 - 0.05 ** (1 / 16), abs=1e-6)  # ≈ 17 %
    assert stats.rate_text(0, 16) .startswith("0 of 16 failed: at most 17 % at 95 % confidence")
    assert stats.rate_upper_bound(3, 3) == 1.0
    assert 0.5 < stats.rate_upper_bound(1, 3) < 1
    assert "no attempts" in stats.rate_text(0, 0)


def test_binom_cdf_sums_to_one() -> None:
    assert math.isclose(stats.binom_cdf(10, 10, 0.3), 1.0)
    assert stats.binom_cdf(-1, 5, 0.5) == 0.0
