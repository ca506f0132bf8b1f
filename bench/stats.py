"""Statistics the benchmarks share: a permutation test, Holm's correction, a bootstrap interval and the
smallest effect a permutation test would detect.

- `permutation_test(a, b)`: the two-sided p-value of the difference of the two groups' means under
  random relabelling. Exact (every split of the pooled values into groups of the two sizes is
  counted) when there are at most `n_resamples` splits, as for 5 seeds against 5 (252 splits);
  otherwise `n_resamples` random splits with the (count + 1) / (n_resamples + 1) estimate, which is
  never 0. The smallest exact p for groups of n and m is 2 / C(n + m, n).
- `holm(pvalues)`: Holm's step-down adjustment for a family of comparisons (controls the chance of
  any false rejection at the level used, under any dependence).
- `bootstrap_ci(x)`: a percentile bootstrap interval of the mean.
- `detectable_effect(n_a, n_b, sd)`: the shift of one group's mean that the permutation test finds
  (p <= alpha) with the given power, by simulation from normal data of that standard deviation; inf
  when no shift can reach alpha with these group sizes.

Plain numpy; inputs are sequences of floats without missing values.
"""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import numpy as np

_REL_TOL = 1e-9     # splits whose |difference| equals the observed one up to rounding count as "as extreme"


def _splits(n: int, k: int) -> np.ndarray:
    """All C(n, k) choices of k indices out of n, as a 0/1 matrix (one row a split)."""
    rows = list(itertools.combinations(range(n), k))
    mask = np.zeros((len(rows), n), dtype=bool)
    mask[np.repeat(np.arange(len(rows)), k), np.asarray(rows).ravel()] = True
    return mask


def _check(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim != 1 or b.ndim != 1 or len(a) < 1 or len(b) < 1:
        raise ValueError("permutation_test needs two non-empty 1-d samples")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("permutation_test: the samples must be finite (drop missing values first)")
    return a, b


def _diffs(values: np.ndarray, mask: np.ndarray, n_a: int) -> np.ndarray:
    """|mean(group a) - mean(group b)| for each split (rows of `mask` mark group a); `values` is one
    sample (n,) or several (sims, n), giving (splits,) or (splits, sims)."""
    v = np.atleast_2d(values)
    sum_a = mask.astype(float) @ v.T
    d = np.abs(sum_a / n_a - (v.sum(axis=1) - sum_a) / (mask.shape[1] - n_a))
    return d[:, 0] if np.ndim(values) == 1 else d


def permutation_test(a: Sequence[float], b: Sequence[float], n_resamples: int = 100_000, seed: int = 0) -> float:
    """Two-sided permutation p-value of mean(a) - mean(b) (see the module docstring)."""
    a, b = _check(a, b)
    pooled = np.concatenate([a, b])
    n, k = len(pooled), len(a)
    observed = abs(a.mean() - b.mean())
    threshold = observed - _REL_TOL * max(1.0, abs(observed))
    if math.comb(n, k) <= n_resamples:
        return float(np.mean(_diffs(pooled, _splits(n, k), k) >= threshold))
    rng = np.random.default_rng(seed)
    hits, done = 0, 0
    while done < n_resamples:
        m = min(10_000, n_resamples - done)
        order = np.argsort(rng.random((m, n)), axis=1)[:, :k]
        mask = np.zeros((m, n), dtype=bool)
        np.put_along_axis(mask, order, True, axis=1)
        hits += int((_diffs(pooled, mask, k) >= threshold).sum())
        done += m
    return (hits + 1) / (n_resamples + 1)


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm-adjusted p-values, in the order given (None stays None and does not count as a comparison):
    the i-th smallest of m becomes max over j <= i of min(1, (m - j + 1) p_(j))."""
    present = [(p, i) for i, p in enumerate(pvalues) if p is not None]
    m = len(present)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(present)):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def bootstrap_ci(x: Sequence[float], level: float = 0.95, n_resamples: int = 10_000,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `x` (resampling its values with replacement)."""
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or len(x) == 0 or not np.isfinite(x).all():
        raise ValueError("bootstrap_ci needs a non-empty 1-d sample of finite values")
    if not 0 < level < 1:
        raise ValueError(f"bootstrap_ci: level must lie in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), (n_resamples, len(x)))].mean(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def detectable_effect(n_a: int, n_b: int, sd: float, alpha: float = 0.05, power: float = 0.8,
                      n_sims: int = 2000, seed: int = 0) -> float:
    """The smallest shift of group a's mean (in the units of `sd`, the common standard deviation of
    normal data) that `permutation_test` detects at `alpha` in a fraction `power` of experiments.

    Found by bisection on simulated experiments (the same draws at every shift, so the power is
    monotone in the shift). Exact tests only: it needs C(n_a + n_b, n_a) <= 100,000 splits."""
    n = n_a + n_b
    if math.comb(n, n_a) > 100_000:
        raise ValueError("detectable_effect simulates exact tests only (at most 100,000 splits)")
    if 2 / math.comb(n, n_a) > alpha:
        return math.inf                 # even complete separation gives p = 2 / C(n, n_a) > alpha
    noise = np.random.default_rng(seed).standard_normal((n_sims, n)) * sd
    mask = _splits(n, n_a)
    shift = np.zeros(n)
    shift[:n_a] = 1.0

    def power_at(delta: float) -> float:
        data = noise + delta * shift
        diffs = _diffs(data, mask, n_a)                                   # splits x sims
        observed = diffs[0]                                               # the first split is the real one
        p = (diffs >= observed - _REL_TOL * np.maximum(1.0, observed)).mean(axis=0)
        return float((p <= alpha).mean())

    lo, hi = 0.0, sd
    while power_at(hi) < power:
        lo, hi = hi, 2 * hi
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if power_at(mid) >= power else (mid, hi)
    return hi
