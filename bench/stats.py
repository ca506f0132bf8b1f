"""Statistics for comparing search strategies over seeds: mean, spread, a bootstrap interval, a permutation
test and Holm's correction for several comparisons.

* `bootstrap_ci(x)`: the percentile bootstrap interval of the mean (resample the seeds with replacement,
  take the mean, read the 2.5 % and 97.5 % quantiles of those means).
* `permutation_test(x, y)`: the two-sided p-value of the difference of means under the hypothesis
  that the labels "x" and "y" are exchangeable: the share of relabellings whose |mean difference| is
  at least the observed one. Exact (every relabelling enumerated) when there are at most `exact_limit`
  of them, else estimated from `permutations` random relabellings as (1 + hits) / (1 + permutations),
  which is never 0 and never below the exact p-value's expectation (Phipson & Smyth, 2010).
* `holm(p)`: Holm's step-down adjustment, which keeps the chance of any false rejection among the
  comparisons at most alpha: sort the m p-values, multiply the i-th smallest by (m - i + 1), make the
  sequence non-decreasing, cap at 1.
"""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import numpy as np


def mean_std(x: Sequence[float]) -> tuple[float, float]:
    """The mean and the sample standard deviation (n - 1)."""
    a = np.asarray(x, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def bootstrap_ci(x: Sequence[float], level: float = 0.95, resamples: int = 10_000, seed: int = 0
                 ) -> tuple[float, float]:
    """The percentile bootstrap interval of the mean of `x` (see the module doc)."""
    a = np.asarray(x, dtype=float)
    rng = np.random.default_rng(seed)
    means = a[rng.integers(0, len(a), size=(resamples, len(a)))].mean(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def permutation_test(x: Sequence[float], y: Sequence[float], permutations: int = 100_000, seed: int = 0,
                     exact_limit: int = 200_000) -> float:
    """Two-sided p-value of mean(x) - mean(y) by relabelling (see the module doc)."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    pooled, n = np.concatenate([a, b]), len(a)
    observed = abs(a.mean() - b.mean())
    tolerance = 1e-12 * max(1.0, float(np.abs(pooled).max()))
    total = pooled.sum()
    m = len(pooled) - n
    if math.comb(len(pooled), n) <= exact_limit:
        hits = count = 0
        for chosen in itertools.combinations(range(len(pooled)), n):
            s = pooled[list(chosen)].sum()
            hits += abs(s / n - (total - s) / m) >= observed - tolerance
            count += 1
        return hits / count
    rng = np.random.default_rng(seed)
    hits, done = 0, 0
    while done < permutations:
        k = min(10_000, permutations - done)
        sums = rng.permuted(np.tile(pooled, (k, 1)), axis=1)[:, :n].sum(axis=1)
        hits += int((np.abs(sums / n - (total - sums) / m) >= observed - tolerance).sum())
        done += k
    return (1 + hits) / (1 + permutations)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given (see the module doc)."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted
