"""Reward curves of a search: best, top-5 mean and top-25 mean against children sampled (Figure 6).

The paper compares RL with random search by, for every number of models sampled so far, the best
accuracy and the mean of the top 5 and top 25. Failed and diverged children count as sampled but
add no reward; an architecture sampled again (a cached trial) is counted once.
"""

from __future__ import annotations

import bisect
from typing import Iterable, Sequence

DEFAULT_KS = (1, 5, 25)


def top_k_curves(rewards: Iterable[float | None], ks: Sequence[int] = DEFAULT_KS) -> list[dict]:
    """For n = 1, 2, ...: {"children": n, "top1": ..., "top5": ..., ...}; None until k rewards exist."""
    ranked: list[float] = []       # ascending
    rows = []
    for n, r in enumerate(rewards, start=1):
        if r is not None:
            bisect.insort(ranked, float(r))
        row: dict = {"children": n}
        for k in ks:
            row[f"top{k}"] = sum(ranked[-k:]) / k if len(ranked) >= k else None
        rows.append(row)
    return rows


def sampled_rewards(trials: Iterable) -> list[float | None]:
    """Rewards of trials (`nasnet.search.store.Trial`) in sampling order; None for failed, diverged and repeats."""
    ordered = sorted(trials, key=lambda t: t.id)
    return [t.reward if t.status == "done" and t.cached_from is None else None for t in ordered]
