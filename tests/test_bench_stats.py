"""bench/stats.py against cases computed by hand."""

from __future__ import annotations

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
