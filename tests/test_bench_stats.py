"""bench/stats.py against cases computed by hand."""

from __future__ import annotations

import math
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))

import stats  # noqa: E402


def test_the_exact_permutation_test_by_hand():
    # 3 against 3, completely separated: of the C(6,3) = 20 relabellings, only the observed one and its mirror
    # reach |difference of means| = 3, so the two-sided p is 2/20
    assert stats.permutation_test([1, 2, 3], [4, 5, 6]) == pytest.approx(0.1)
    # x = (1, 2, 4), y = (3, 5, 6): |difference| = 7/3. Relabellings with a group summing to 7 or less, or 14
    # or more: {1,2,3} 6, {1,2,4} 7, and their complements {4,5,6} 15, {3,5,6} 14 -> 4 of 20
    assert stats.permutation_test([1, 2, 4], [3, 5, 6]) == pytest.approx(0.2)
    # equal samples: every relabelling is at least as extreme
    assert stats.permutation_test([1, 1], [1, 1]) == pytest.approx(1.0)


def test_the_random_permutation_test_agrees_with_the_exact_one():
    x, y = [0.1, 0.4, 0.35, 0.8, 0.6, 0.2, 0.9], [0.5, 0.7, 1.1, 0.95, 1.2, 0.65, 0.85]
    exact = stats.permutation_test(x, y)                     # C(14, 7) = 3432 relabellings: enumerated
    sampled = stats.permutation_test(x, y, permutations=40_000, exact_limit=0)
    assert sampled == pytest.approx(exact, abs=0.004)
    assert 0 < exact < 0.05


def test_holm_by_hand():
    # sorted: 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04 -> raised to 0.06 (monotone)
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])         # capped at 1
    assert stats.holm([0.002]) == pytest.approx([0.002])


def test_bootstrap_interval_and_spread_by_hand():
    # two values a < b: a resample's mean is a (prob 1/4), (a+b)/2 (1/2) or b (1/4), so the 2.5 % and 97.5 %
    # quantiles of the bootstrap means are a and b
    assert stats.bootstrap_ci([1.0, 3.0]) == pytest.approx((1.0, 3.0))
    assert stats.bootstrap_ci([2.0, 2.0, 2.0]) == pytest.approx((2.0, 2.0))
    assert stats.mean_std([1.0, 2.0, 3.0, 4.0]) == pytest.approx((2.5, (5 / 3) ** 0.5))


def test_more_exact_permutation_p_values_by_hand():
    # 3 against 3 completely separated: of the C(6,3) = 20 splits only the observed one and its mirror
    # image reach |difference of means| = 3, so p = 2/20
    assert stats.permutation_test([1, 2, 3], [4, 5, 6]) == pytest.approx(0.1)
    # 5 against 5 completely separated: 2 / C(10,5) = 2/252, the smallest p five seeds against five give
    assert stats.permutation_test([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) == pytest.approx(2 / 252)
    # a = {0, 0}, b = {1, 2}: observed |0 - 1.5| = 1.5. The 6 splits of {0, 0, 1, 2} give a-group means
    # 0 (|0 - 1.5|), 0.5, 1 (twice each: |0.5 - 1| = 0.5, |1 - 0.5| = 0.5) and 1.5 (|1.5 - 0|):
    # differences 1.5, 0.5, 0.5, 0.5, 0.5, 1.5, so p = 2/6
    assert stats.permutation_test([0, 0], [1, 2]) == pytest.approx(1 / 3)
    # identical samples: every split is as extreme as the observed difference 0
    assert stats.permutation_test([0.5, 0.5, 0.5], [0.5, 0.5]) == 1.0
    # rounding must not split ties: 0.1 + 0.2 != 0.3 in floating point
    assert stats.permutation_test([0.1, 0.2], [0.3, 0.0]) == pytest.approx(1.0)


def test_sampled_permutation_p_value_approaches_the_exact_one():
    a, b = [0.1, 0.4, 0.35, 0.2, 0.5, 0.45, 0.3], [0.6, 0.55, 0.3, 0.7, 0.65, 0.5, 0.4]
    exact = stats.permutation_test(a, b)                          # C(14,7) = 3432 splits: exact
    sampled = stats.permutation_test(a, b, permutations=3000, seed=1, exact_limit=0)
    assert sampled == pytest.approx(exact, abs=0.01) and sampled > 0
    # the sampled estimate is never 0: (hits + 1) / (n + 1) at complete separation
    # (a random relabelling hits the observed split or its mirror with chance 2 / C(20, 10) ~ 1e-5 each)
    p = stats.permutation_test(list(range(10)), list(range(20, 30)), permutations=999, exact_limit=0)
    assert p in (1 / 1000, 2 / 1000)


def test_holm_skips_missing_comparisons():
    # sorted 0.005, 0.01, 0.03, 0.04 of m = 4: 4 x 0.005 = 0.02, 3 x 0.01 = 0.03, 2 x 0.03 = 0.06,
    # 1 x 0.04 = 0.04 -> raised to 0.06 to keep the order; None is no comparison
    assert stats.holm([0.01, 0.04, 0.03, None, 0.005]) == pytest.approx([0.03, 0.06, 0.06, None, 0.02])
    assert stats.holm([0.6, 0.5]) == [1.0, 1.0]
    assert stats.holm([]) == []


def test_bootstrap_interval_by_hand():
    # resampling {0, 0, 0, 1}: the mean is k/4 with k ~ Binomial(4, 1/4): P(k <= 0) = 0.316,
    # P(k <= 2) = 0.949, P(k <= 3) = 0.996, so the 2.5th percentile is 0 and the 97.5th is 3/4
    assert stats.bootstrap_ci([0, 0, 0, 1]) == (0.0, 0.75)
    lo, hi = stats.bootstrap_ci([0.2, 0.4, 0.6], level=0.5, resamples=20_000)
    assert lo < 0.4 < hi
    with pytest.raises(ValueError):
        stats.bootstrap_ci([])


def test_detectable_effect_matches_the_t_test_formula():
    # 5 against 5 at alpha 0.05 and 80 % power: (t_0.975,8 + t_0.8,8) * sqrt(2/5) = (2.306 + 0.889)
    # * 0.632 = 2.02 standard deviations for the t-test; the permutation test needs about as much
    assert stats.detectable_effect(5, 5, sd=1.0) == pytest.approx(2.02, abs=0.12)
    assert stats.detectable_effect(5, 5, sd=0.01) == pytest.approx(0.0202, abs=0.0012)
    # with Holm over 9 comparisons the first step needs p <= 0.05/9 = 0.0056 < 2/252: nothing is detectable
    assert stats.detectable_effect(5, 5, sd=1.0, alpha=0.05 / 9) == math.inf
    # 10 against 10 (C(20, 10) = 184,756 relabellings, sampled): (t_0.975,18 + t_0.8,18) * sqrt(2/10) =
    # (2.101 + 0.862) * 0.447 = 1.33 standard deviations
    assert stats.detectable_effect(10, 10, sd=1.0) == pytest.approx(1.33, abs=0.1)
