"""Reward curves of a search: best, top-5 mean and top-25 mean against children sampled (Figure 6), and
against child-epochs spent (comparing strategies with and without early stopping at equal compute).

The paper compares RL with random search by, for every number of models sampled so far, the best
accuracy and the mean of the top 5 and top 25. Failed and diverged children count as sampled but
add no reward; an architecture sampled again (a cached trial) is counted once.

With ASHA a trial reports several times (once per rung it reaches), so the fair x-axis is compute:
`budget_curve` walks a run's results in the order they arrived, adds each result's epochs to the
child-epochs spent, keeps each trial's latest successful result (its highest rung) as its reward,
and reports best / top-k means over distinct architectures, plus the mean of the last 20 first
results (what the strategy is sampling now, at the first rung's fidelity).
"""

from __future__ import annotations

import bisect
from collections import deque
from typing import Iterable, Sequence

from .records import Status

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
    return [t.reward if t.status == Status.DONE and t.cached_from is None else None for t in ordered]


def budget_curve(events: Iterable[dict], ks: Sequence[int] = DEFAULT_KS, last: int = 20) -> list[dict]:
    """One row per result, in arrival order: {"results", "children", "epochs", "top1", ..., "last20"}.

    `events`: dicts with "trial", "reward" (None unless done), "epochs" (child-epochs the result
    cost), "first" (a trial's first result) and "repeat" (a cached result: counted as sampled, not as
    a distinct architecture)."""
    current: dict[int, float] = {}
    recent: deque[float] = deque(maxlen=last)
    rows, spent, children = [], 0, 0
    for n, e in enumerate(events, start=1):
        spent += int(e.get("epochs") or 0)
        reward = e.get("reward")
        if e.get("first"):
            children += 1
            if reward is not None:
                recent.append(float(reward))
        if reward is not None and not e.get("repeat"):
            current[e["trial"]] = float(reward)
        ranked = sorted(current.values(), reverse=True)
        row = {"results": n, "children": children, "epochs": spent}
        for k in ks:
            row[f"top{k}"] = sum(ranked[:k]) / k if len(ranked) >= k else None
        row[f"last{last}"] = sum(recent) / len(recent) if recent else None
        rows.append(row)
    return rows
