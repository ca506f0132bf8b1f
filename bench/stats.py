"""Statistics the benchmarks share for comparing configurations over seeds: mean and spread, a bootstrap
interval, a permutation test, Holm's correction and the smallest effect a permutation test detects.

* `bootstrap_ci(x)`: the percentile bootstrap interval of the mean (resample the seeds with replacement,
  take the mean, read the 2.5 % and 97.5 % quantiles of those means).
* `permutation_test(x, y)`: the two-sided p-value of the difference of means under the hypothesis
  that the labels "x" and "y" are exchangeable: the share of relabellings whose |mean difference| is
  at least the observed one. Exact (every relabelling enumerated) when there are at most `exact_limit`
  of them, as for 5 seeds against 5 (252) or 10 against 10 (184,756); else estimated from
  `permutations` random relabellings as (1 + hits) / (1 + permutations), which is never 0 and never
  below the exact p-value's expectation (Phipson & Smyth, 2010). The smallest exact p for groups of
  n and m is 2 / C(n + m, n).
* `holm(p)`: Holm's step-down adjustment, which keeps the chance of any false rejection among the
  comparisons at most alpha under any dependence: sort the m p-values, multiply the i-th smallest by
  (m - i + 1), make the sequence non-decreasing, cap at 1. None is no comparison.
* `detectable_effect(n_a, n_b, sd)`: the shift of one group's mean that the permutation test
  finds (p <= alpha) with the given power, by simulation from normal data of that standard
  deviation; inf when no shift can reach alpha with these group sizes.

Plain numpy; samples are sequences of finite floats (drop missing values first).
"""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import numpy as np


def _sample(x: Sequence[float], what: str) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim != 1 or len(a) == 0 or not np.isfinite(a).all():
        raise ValueError(f"{what} needs a non-empty 1-d sample of finite values")
    return a


def mean_std(x: Sequence[float]) -> tuple[float, float]:
    """The mean and the sample standard deviation (n - 1; 0 for one value)."""
    a = _sample(x, "mean_std")
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def bootstrap_ci(x: Sequence[float], level: float = 0.95, resamples: int = 10_000, seed: int = 0
                 ) -> tuple[float, float]:
    """The percentile bootstrap interval of the mean of `x` (see the module doc)."""
    a = _sample(x, "bootstrap_ci")
    if not 0 < level < 1:
        raise ValueError(f"bootstrap_ci: level must lie in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    means = a[rng.integers(0, len(a), size=(resamples, len(a)))].mean(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def _splits(n: int, k: int) -> np.ndarray:
    """All C(n, k) choices of k indices out of n, as a 0/1 matrix (one row a relabelling)."""
    rows = list(itertools.combinations(range(n), k))
    mask = np.zeros((len(rows), n), dtype=bool)
    mask[np.repeat(np.arange(len(rows)), k), np.asarray(rows).ravel()] = True
    return mask


def _diffs(values: np.ndarray, mask: np.ndarray, n_a: int) -> np.ndarray:
    """|mean(group a) - mean(group b)| for each relabelling (rows of `mask` mark group a); `values` is
    one sample (n,) or several (sims, n), giving (splits,) or (splits, sims)."""
    v = np.atleast_2d(values)
    sum_a = mask.astype(float) @ v.T
    d = np.abs(sum_a / n_a - (v.sum(axis=1) - sum_a) / (mask.shape[1] - n_a))
    return d[:, 0] if np.ndim(values) == 1 else d


def permutation_test(x: Sequence[float], y: Sequence[float], permutations: int = 100_000, seed: int = 0,
                     exact_limit: int = 200_000) -> float:
    """Two-sided p-value of mean(x) - mean(y) by relabelling (see the module doc)."""
    a, b = _sample(x, "permutation_test"), _sample(y, "permutation_test")
    pooled, n = np.concatenate([a, b]), len(a)
    observed = abs(a.mean() - b.mean())
    tolerance = 1e-12 * max(1.0, float(np.abs(pooled).max()))   # ties up to rounding count as "as extreme"
    if math.comb(len(pooled), n) <= exact_limit:
        return float(np.mean(_diffs(pooled, _splits(len(pooled), n), n) >= observed - tolerance))
    total, m = pooled.sum(), len(pooled) - n
    rng = np.random.default_rng(seed)
    hits, done = 0, 0
    while done < permutations:
        k = min(10_000, permutations - done)
        sums = rng.permuted(np.tile(pooled, (k, 1)), axis=1)[:, :n].sum(axis=1)
        hits += int((np.abs(sums / n - (total - sums) / m) >= observed - tolerance).sum())
        done += k
    return (1 + hits) / (1 + permutations)


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values, in the order given (see the module doc; None stays None)."""
    present = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m = len(present)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def detectable_effect(n_a: int, n_b: int, sd: float, alpha: float = 0.05, power: float = 0.8,
                      sims: int = 2000, seed: int = 0, relabellings: int = 5000) -> float:
    """The smallest shift of group a's mean (in the units of `sd`, the common standard deviation of
    normal data) that the permutation test detects at `alpha` in a fraction `power` of experiments;
    found by bisection on simulated experiments (the same draws at every shift, so the power is
    monotone in the shift). Each simulated test uses every relabelling when there are at most
    `relabellings` of them (5 seeds against 5: 252), else the real one and `relabellings` - 1 drawn
    at random (10 against 10: C(20, 10) = 184,756), the sampled test's p-value."""
    n = n_a + n_b
    total = math.comb(n, n_a)
    if 2 / total > alpha:
        return math.inf                 # even complete separation gives p = 2 / C(n, n_a) > alpha
    rng = np.random.default_rng(seed)
    if total <= relabellings:
        mask = _splits(n, n_a)          # its first row is the real labelling: group a = the first n_a
    else:
        order = np.argsort(rng.random((relabellings, n)), axis=1)[:, :n_a]
        mask = np.zeros((relabellings, n), dtype=bool)
        np.put_along_axis(mask, order, True, axis=1)
        mask[0] = np.arange(n) < n_a
    noise = rng.standard_normal((sims, n)) * sd
    shift = np.zeros(n)
    shift[:n_a] = 1.0

    def power_at(delta: float) -> float:
        diffs = _diffs(noise + delta * shift, mask, n_a)                  # relabellings x sims
        observed = diffs[0]
        p = (diffs >= observed - 1e-9 * np.maximum(1.0, observed)).mean(axis=0)
        return float((p <= alpha).mean())

    lo, hi = 0.0, sd
    while power_at(hi) < power:
        lo, hi = hi, 2 * hi
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if power_at(mid) >= power else (mid, hi)
    return hi
