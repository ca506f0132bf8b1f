"""ASHA, asynchronous successive halving across the work queue (Li et al., MLSys 2020).

Early stopping is not a strategy: it is the work queue's decision which job runs next and for how
long. With rungs E_0 < E_1 < ... < E_n (cumulative epochs) and a reduction factor eta, every new
trial trains to E_0 and reports; whenever a worker asks for work, it gets a promotion if some rung
k < n holds a trial among its top floor(m_k / eta) results (m_k: successful results at rung k so
far) that has not been promoted yet, looking at the highest such rung first; otherwise it gets a
new trial. No rung waits to fill, so workers never idle for a synchronisation point. A promoted
trial continues from its own checkpoint (`nasnet.search.run_dir.trial_checkpoint`) to E_{k+1}.

The learning-rate schedule of every ASHA child spans the last rung, so a trial stopped at rung k
has run the first E_k / E_n of the same schedule as one trained straight through, and a trial that
reaches the top rung has been trained exactly as a child of E_n epochs (see docs/search.md for why
this and not a schedule per rung).

What the strategy is told (`EarlyStopConfig.tell`):
* "first": each trial's first-rung result, once, when it arrives. Every architecture is judged at
  the same fidelity, as soon as possible, and exactly once.
* "every": that, and every later rung result too, re-centred within its rung
  (`recentred`): r - mean(rung k) + mean(rung 0 results of the same trials), so a promoted
  architecture is told how it ranks among its peers at the higher fidelity, on the first rung's
  scale, instead of being rewarded for the extra epochs themselves.

These functions are pure: the loop passes the store's `rung_standings()` (trial, rung, status,
reward), so a resumed run makes the same decisions as an uninterrupted one.
"""

from __future__ import annotations

from typing import Iterable, Sequence

Standing = tuple[int, int, str, "float | None"]    # (trial_id, rung, status, reward)


def next_promotion(standings: Iterable[Standing], num_rungs: int, eta: int) -> tuple[int, int] | None:
    """(trial_id, rung to continue to) of the next promotion, or None when no rung has one to give."""
    standings = list(standings)
    present = {(tid, rung) for tid, rung, _, _ in standings}
    for k in reversed(range(num_rungs - 1)):
        done = sorted(((-reward, tid) for tid, rung, status, reward in standings
                       if rung == k and status == "done" and reward is not None))
        for _, tid in done[:len(done) // eta]:
            if (tid, k + 1) not in present:
                return tid, k + 1
    return None


def recentred(standings: Sequence[Standing], rung: int, reward: float) -> float:
    """A rung result on the first rung's scale: reward - mean(rung) + mean of the same trials' rung-0 results."""
    if rung == 0:
        return reward
    at_rung = {tid: r for tid, k, status, r in standings if k == rung and status == "done" and r is not None}
    first = {tid: r for tid, k, status, r in standings if k == 0 and status == "done" and r is not None}
    peers = [tid for tid in at_rung if tid in first]
    if not peers:
        return reward
    return reward - sum(at_rung[t] for t in peers) / len(peers) + sum(first[t] for t in peers) / len(peers)
