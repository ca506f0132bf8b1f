"""The search's objective: a child's reward from its result, and the accuracy-cost front.

Without a cost the reward is the child's own ("reward": validation accuracy for the training
child); with one it is MnasNet's soft-constrained reward, accuracy x (cost / target) ** weight
(Tan et al., CVPR 2019), computed in log space and held within +-REWARD_LIMIT (`cost_reward`).
The rule and the reasons for its bounds are written once, in docs/search.md ("The objective").
Every stage's results (search rungs, top-k stage, the pick's retraining) are ranked by it.
`pareto_front` gives the architectures no other beats on both accuracy and cost, what best.json
and the report show as the accuracy-cost front. Importing this module does not import torch.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

from .config import CostConfig
from .records import Status


def objective(result: dict[str, Any], cost: CostConfig) -> tuple[float, float, float | None]:
    """(reward, accuracy, cost value) of a child's successful result; ValueError when it lacks what is needed."""
    accuracy = result.get("reward")
    if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)) or not math.isfinite(accuracy):
        raise ValueError(f"the child returned no finite reward ({accuracy!r})")
    if not cost.active:
        return float(accuracy), float(accuracy), None
    value = result.get(cost.name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"the child reported no positive {cost.name!r} ({value!r}), which the cost objective "
                         f"({cost.name}) needs")
    return cost_reward(float(accuracy), float(value), cost.target, cost.weight), float(accuracy), float(value)


# The largest reward magnitude the objective gives: the strategies compute in float32 (largest 3.4e38), and
# a minibatch's sums and squares of rewards must stay finite there.
REWARD_LIMIT = 1e30


def cost_reward(accuracy: float, cost: float, target: float, weight: float) -> float:
    """accuracy x (cost / target) ** weight, computed in log space so that no input overflows: the
    logarithm ln|accuracy| + weight x (ln cost - ln target) is finite or -inf for any positive finite cost
    and target (no OverflowError), and the reward is held within +-REWARD_LIMIT (a factor that small or
    large means the target or the weight is far from the children's costs: docs/search.md); a factor
    that underflows gives 0."""
    if accuracy == 0 or weight == 0:
        return accuracy
    log_reward = math.log(abs(accuracy)) + weight * (math.log(cost) - math.log(target))
    return math.copysign(REWARD_LIMIT if log_reward >= _LOG_LIMIT else math.exp(log_reward), accuracy)


_LOG_LIMIT = math.log(REWARD_LIMIT)


def pareto_front(points: Iterable[tuple[Any, float, float]]) -> list[tuple[Any, float, float]]:
    """The (key, accuracy, cost) points no other point dominates (at least as accurate and at most as
    costly, better in one), cheapest first; of equal points the first given is kept."""
    front: list[tuple[Any, float, float]] = []
    best = -math.inf
    for key, acc, cost in sorted(points, key=lambda p: (p[2], -p[1])):
        if acc > best:
            front.append((key, acc, cost))
            best = acc
    return front


def front_rows(trials: Sequence) -> list[dict[str, Any]]:
    """The accuracy-cost front of done trials (`nasnet.search.store.Trial` with accuracy and cost) as JSON rows."""
    points = [(t, t.accuracy, t.cost) for t in trials
              if t.status == Status.DONE and t.cached_from is None and t.accuracy is not None and t.cost is not None]
    return [{"trial": t.id, "accuracy": acc, "cost": cost, "reward": t.reward, "genotype": t.genotype}
            for t, acc, cost in pareto_front(points)]
