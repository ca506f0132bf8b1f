"""The top-k stage, the pick, and what best.json says (paper A.3: "the top 250 architectures are then
chosen to train until convergence").

After the search stage, `run_final_stage` retrains the K best distinct architectures with fresh
seeds and the final budget, then (with `pick_seeds`) the pick, its winner or else the search's best,
with further fresh seeds, all through the session's work queue. best.json holds the best so far:
`search_best` while the search runs, `final_best` once the top-k stage has a winner, and
`close_best` adds the accuracy-cost front and the pick's retraining at the end. docs/search.md says
why the stage exists and how the pick is judged; docs/formats.md lists best.json's keys.
"""

from __future__ import annotations

import statistics
from collections import deque
from typing import Any

from . import run_dir as files
from .config import SearchConfig
from .objective import front_rows
from .payloads import final_payload
from .records import FinalTrial, Job, Result, Stage, Status, Trial
from .session import Session
from .store import TrialStore
from .workqueue import WorkQueue


def run_final_stage(session: Session, queue: WorkQueue) -> list[FinalTrial]:
    """Retrain the top-k, then the pick with further seeds; best.json names the top-k winner. Returns
    every retraining of the run (this session's and earlier ones')."""
    cfg, store = session.config, session.store
    epochs = cfg.final_epochs or cfg.search_epochs
    for trial in store.top(cfg.top_k):
        store.enqueue(Job(Stage.FINAL, trial.id, 0), epochs, final_payload(cfg, trial.payload or {}, trial.id, 0))
    _retrain(session, queue, f"top-{cfg.top_k} stage")
    best = winner(store, cfg)
    if best is not None and cfg.pick_seeds:
        trial = store.get(best.trial_id)
        for repeat in range(1, cfg.pick_seeds + 1):
            store.enqueue(Job(Stage.FINAL, trial.id, repeat), epochs,
                          final_payload(cfg, trial.payload or {}, trial.id, repeat))
        _retrain(session, queue, f"the pick (trial {trial.id}) with {cfg.pick_seeds} more seed(s)")
    if isinstance(best, FinalTrial):
        files.write_best(session.run_dir, final_best(best, cfg))
    return store.finals()


def _retrain(session: Session, queue: WorkQueue, what: str) -> None:
    store, cfg = session.store, session.config
    todo = deque(store.queued(Stage.FINAL))
    if todo:
        epochs = cfg.final_epochs or cfg.search_epochs
        session.say(f"{what}: retraining {len(todo)} architecture(s) with fresh seeds"
                    + (f" for {epochs} epochs" if epochs else ""))

    def record(job: Job, result: Result) -> None:
        store.finish(job, result)
        session.say(f"{job}: {result.status}" + (f", reward {result.reward:.4f}" if result.reward is not None else ""))

    def dispatch(job: Job) -> None:
        queue.submit(job, store.job(job).payload)

    queue.drain(todo, lambda: None, dispatch, record)


def winner(store: TrialStore, config: SearchConfig) -> FinalTrial | Trial | None:
    """The top-k stage's best retraining, else (no top-k stage) the search's best trial."""
    done = [f for f in store.finals() if f.repeat == 0 and f.status == Status.DONE]
    if done:
        return max(done, key=lambda f: (f.reward, -f.trial_id))
    if config.top_k:
        return None
    top = store.top(1)
    return top[0] if top else None


def pick_record(store: TrialStore, config: SearchConfig) -> dict[str, Any] | None:
    """The pick's retrainings with further seeds (best.json's "pick"), if it has any."""
    best = winner(store, config)
    if best is None:
        return None
    runs = [f for f in store.finals() if f.repeat > 0 and f.trial_id == best.trial_id]
    if not runs:
        return None
    rewards = [f.reward for f in runs if f.status == Status.DONE]
    return {"trial": best.trial_id, "genotype": runs[0].genotype, "seeds": len(runs), "epochs": runs[0].epochs,
            "rewards": rewards, "failed": len(runs) - len(rewards),
            "mean": statistics.fmean(rewards) if rewards else None,
            "std": statistics.stdev(rewards) if len(rewards) > 1 else None}


def _cost_keys(record: Trial | FinalTrial, config: SearchConfig) -> dict[str, Any]:
    if not config.cost.active:
        return {}
    return {"accuracy": record.accuracy, "cost": record.cost, "cost_name": config.cost.name}


def search_best(trial: Trial, config: SearchConfig) -> dict[str, Any]:
    """best.json for the search stage's best trial."""
    best = {"genotype": trial.genotype, "reward": trial.reward, "trial": trial.id, "stage": "search",
            "metrics": trial.metrics}
    if config.early_stop.active:
        best.update(rung=trial.rung, epochs=trial.epochs)
    return {**best, **_cost_keys(trial, config)}


def final_best(f: FinalTrial, config: SearchConfig) -> dict[str, Any]:
    """best.json for the top-k stage's winner."""
    return {"genotype": f.genotype, "reward": f.reward, "trial": f.trial_id, "stage": "final",
            "search_reward": f.search_reward, "epochs": f.epochs, "seed": (f.payload or {}).get("seed"),
            "metrics": f.metrics, **_cost_keys(f, config)}


def close_best(session: Session) -> dict | None:
    """best.json's closing additions: the accuracy-cost front and the pick's retraining. Returns it."""
    best = files.read_best(session.run_dir)
    if best is None:
        return None
    if session.config.cost.active:
        best["front"] = front_rows(session.store.trials())
    pick = pick_record(session.store, session.config)
    if pick is not None:
        best["pick"] = pick
    files.write_best(session.run_dir, best)
    return best
