"""ASHA, asynchronous successive halving across the work queue (Li et al., MLSys 2020).

Early stopping is the work queue's decision, not a strategy's: which job runs next (a promotion or a
new trial) and for how long. The rules (the promotion rule, the schedule that spans the last rung,
what the strategy is told with `first` and `every`) are written once, in docs/search.md ("ASHA");
this module holds them as two pure functions of the store's `rung_standings()` (trial, rung, status,
reward), so a resumed run makes the same decisions as an uninterrupted one.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from .records import Status

Standing = tuple[int, int, Status, "float | None"]    # (trial_id, rung, status, reward)


def next_promotion(standings: Iterable[Standing], num_rungs: int, eta: int) -> tuple[int, int] | None:
    """(trial_id, rung to continue to) of the next promotion by ASHA's rule, or None when no rung has one to
    give. `num_rungs`: the rungs' count; `eta`: the reduction factor."""
    standings = list(standings)
    present = {(tid, rung) for tid, rung, _, _ in standings}
    for k in reversed(range(num_rungs - 1)):
        done = sorted(((-reward, tid) for tid, rung, status, reward in standings
                       if rung == k and status == Status.DONE and reward is not None))
        for _, tid in done[:len(done) // eta]:
            if (tid, k + 1) not in present:
                return tid, k + 1
    return None


def recentred(standings: Sequence[Standing], rung: int, reward: float) -> float:
    """A rung result re-centred on the first rung's scale (what `every` tells the strategy); the reward itself
    at rung 0, or when no other trial is done at both rungs."""
    if rung == 0:
        return reward
    at_rung = {tid: r for tid, k, status, r in standings if k == rung and status == Status.DONE and r is not None}
    first = {tid: r for tid, k, status, r in standings if k == 0 and status == Status.DONE and r is not None}
    peers = [tid for tid in at_rung if tid in first]
    if not peers:
        return reward
    return reward - sum(at_rung[t] for t in peers) / len(peers) + sum(first[t] for t in peers) / len(peers)
