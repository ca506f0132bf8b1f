"""The search driver: a crash-safe work queue between a strategy and an executor (paper §3, A.3).

    ask -> trial (queued, in the store) -> executor (running) -> result (done / failed / diverged)
        -> tell -> controller update every minibatch -> checkpoint

W children are kept in flight. Each result is committed to the trial store as it arrives and then
told to the strategy; the controller's state is checkpointed atomically after every update. That
order makes a SIGKILL of the driver harmless at any moment: on resume the checkpoint is loaded, the
results it had not yet seen are told again in their original order (`result_seq`), jobs left
queued or running are run again with the same architecture and payload, and sampling continues
with a fresh RNG stream (keyed by the number of samples made), until `children` trials have
finished (or the epoch budget is spent).

Faults: a child that raises is recorded `failed` with its error; one that reports a NaN loss is
`diverged`; an infrastructure failure (dead worker, lost result, out of memory) is retried up to
`max_retries` times, then recorded `failed`. The controller is told `failure_reward` for either (a
number, or "worst": the lowest reward of any finished child so far, 0 before there is one).
With `dedupe` (the default) an architecture sampled again is not retrained: the new trial reuses the
first one's result (worker "cache", `cached_from` set), waiting for it if it is still running. A
repeat counts as a child of the budget (`--children`) but costs no child-epochs.

Early stopping (`early_stop`, nasnet.search.asha): with ASHA a worker asking for work gets a
promotion when a rung has one to give, else a new trial; a promoted trial continues from its own
checkpoint in RUN_DIR/checkpoints/. Every rung result is committed (the `rungs` table) before it is
acted on; the child writes its checkpoint atomically at the end of each rung, so a child killed
mid-rung restarts that rung from the previous rung's checkpoint and a rung whose result was lost
with the driver is reported again without training.

The objective (nasnet.search.objective) turns each result into the reward: the child's accuracy,
or with a cost MnasNet's accuracy x (cost / target) ** weight.

After the search, the top-k stage retrains the K best architectures with a fresh seed and the final
budget (the paper's "top 250 architectures are then chosen to train until convergence", A.3) and
records the best of them in best.json; with `pick_seeds` the pick (that winner, or the search's best)
is retrained with further fresh seeds and best.json reports their mean. Every stage goes through one
drain loop (`_drain`): fill the executor up to its capacity, wait for outcomes, retry infrastructure
failures, record everything else.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..arch.space import get_space
from ..errors import NasnetError
from ..weights.io import read_checkpoint
from . import run_dir as files
from .asha import next_promotion, recentred
from .config import SearchConfig
from .executors import Outcome, make_executor, resolve
from .objective import front_rows, objective
from .payloads import child_payload, final_payload, promotion_payload, trial_seed, with_checkpoint
from .store import TERMINAL, FinalTrial, Job, Stage, Status, Trial, TrialStore
from .strategies import make_strategy

__all__ = ["Search", "SearchSummary", "child_payload", "run_search", "trial_seed"]


@dataclass
class SearchSummary:
    run_dir: Path
    best_genotype: str | None
    best_reward: float | None
    best_trial: int | None
    counts: dict[str, int]
    wall_seconds: float
    updates: int
    stage: str = "search"
    final: list[FinalTrial] = field(default_factory=list)
    strategy: str = "ppo"
    policy_entropy: float | None = None     # mean entropy of the last minibatch's proposals (nats)
    uniform_entropy: float | None = None    # the uniform policy's entropy over the same decisions
    epochs: int = 0                         # child-epochs trained by the search stage
    promotions: int = 0                     # ASHA promotions made
    pick: dict | None = None                # the pick retrained with further seeds (best.json's "pick")
    test_accuracy: float | None = None      # the best's test accuracy, when its child reports one (never selected on)

    def controller_note(self) -> str:
        """One line: whether the strategy learned (the policy's entropy against the uniform policy's)."""
        if self.strategy == "random":
            return "strategy: random search (every decision uniform)"
        if self.strategy == "evolution":
            return "strategy: regularized evolution (tournaments and mutations; no policy to learn)"
        if self.strategy == "local":
            return "strategy: local search (first-improvement climbs over one-decision neighbours, random restarts)"
        if self.policy_entropy is None or not self.uniform_entropy:
            return f"controller: {self.updates} updates"
        drop = (self.uniform_entropy - self.policy_entropy) / self.uniform_entropy
        head = (f"controller: {self.updates} updates, policy entropy {self.policy_entropy:.2f} nats against "
                f"{self.uniform_entropy:.2f} for the uniform policy")
        if drop < 0.01:
            return (head + ": it has not moved from uniform, so this was effectively random search (more children "
                    "or a larger --lr let it learn)")
        return head + f": it learned ({100 * drop:.1f}% less entropy than uniform)"


@dataclass(frozen=True)
class _Result:
    """A classified outcome: status ("retry" for an infrastructure failure to retry) and what was measured."""

    status: Status | str
    reward: float | None = None
    accuracy: float | None = None
    cost: float | None = None
    error: str | None = None


def _epochs_of(metrics: Any, default: int | None) -> int | None:
    e = metrics.get("epochs_completed") if isinstance(metrics, dict) else None
    return e if isinstance(e, int) and not isinstance(e, bool) else default


class Search:
    """One search run in a run directory; `run()` starts it or continues it."""

    def __init__(self, config: SearchConfig, run_dir: str | Path, progress: bool = True,
                 log: Callable[[str], None] | None = None,
                 on_update: Callable[[dict[str, Any]], None] | None = None):
        self.config = config
        self.run_dir = Path(run_dir)
        self.progress = progress
        self._log = log
        self.on_update = on_update     # called after each controller update is stored and checkpointed
        self._bar = None
        self._refreshed = 0.0
        self._lock = files.RunLock(self.run_dir)
        self.asha = config.early_stop if config.early_stop.active else None

    # -- small helpers ---------------------------------------------------------------------
    def log(self, message: str) -> None:
        if self._log is not None:
            self._log(message)
        elif self._bar is not None:
            self._bar.write(message, file=sys.stderr)
        elif self.progress:
            print(message, file=sys.stderr)

    def _save_checkpoint(self) -> None:
        import torch

        from ..atomic import replacing

        with replacing(self.run_dir / files.CHECKPOINT_FILE) as tmp:
            torch.save(self.strategy.state_dict(), tmp)

    def _load_checkpoint(self) -> None:
        path = self.run_dir / files.CHECKPOINT_FILE
        if not path.is_file():
            return
        state = read_checkpoint(path)
        try:
            self.strategy.load_state_dict(state)
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise NasnetError(f"{path}: cannot load the controller checkpoint ({err})") from None

    # -- setup -----------------------------------------------------------------------------
    def _open(self) -> None:
        stored = files.check_start(self.config, self.run_dir)
        resolve(self.config.child.fn)          # fail now, not in every child, if it cannot be imported
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        self.space = get_space(self.config.space)
        self.store = TrialStore(self.run_dir / files.STORE_FILE)
        n = self.store.count()
        if n > self.config.children:
            raise NasnetError(f"{self.run_dir} already holds {n} trials; --children must be at least {n}")
        self._check_final_stage()
        files.write_config(self.run_dir, self.config)
        self.strategy = make_strategy(self.space.decision_sizes(), self.config.strategy, self.config.seed,
                                      self.space.decision_roles())
        self._load_checkpoint()
        last = self.strategy.last_update      # an update checkpointed by a stop before its row was stored
        if last and last["version"] > self.store.last_update_version():
            self.store.add_update(last)
        # Results the checkpoint has not seen, in the order the controller first saw them.
        for trial, told in self.store.results_after(self.strategy.told):
            self._tell(trial, told)
        self.strategy.asked = max(self.strategy.asked, n)
        self.resumed = stored is not None
        self.requeued = self.store.requeue_interrupted()
        if self.config.executor.child_timeout and self.config.executor.name == "serial":
            self.log("note: --child-timeout does not apply to the serial executor; its children run to the end")

    def _check_final_stage(self) -> None:
        """Retrainings already made must match the final budget asked for now (their rewards are compared)."""
        for f in self.store.finals():
            trial = self.store.get(f.trial_id)
            want = final_payload(self.config, trial.payload or {}, f.trial_id, f.repeat)
            have = f.payload or {}
            for key in ("train", "model"):
                if have.get(key) != want.get(key):
                    raise NasnetError(f"{self.run_dir} retrained its top-k with {key} {have.get(key)}; it cannot "
                                      f"continue with {want.get(key)} (use a new --run-dir, or the same --final-* "
                                      "flags)")

    def _tell(self, trial: Trial, told: float) -> None:
        update = self.strategy.tell((trial.decisions, trial.log_prob), told)
        if update is not None:
            self.store.add_update(update)
            self._save_checkpoint()
            if self.on_update is not None:
                self.on_update(update)

    def _failure_reward(self) -> float:
        rule = self.config.failure_reward
        if rule == "worst":
            worst = self.store.worst_reward()
            return 0.0 if worst is None else worst
        return float(rule)

    # -- the drain loop, shared by every stage ----------------------------------------------
    def _drain(self, queue: deque, propose: Callable[[], Job | None], dispatch: Callable[[Job], None],
               record: Callable[[Job, Outcome, _Result], None]) -> None:
        """Keep the executor full until nothing is left: `queue` holds jobs to run (retries go back to
        its front), `propose` makes a new one (or None), `dispatch` hands a job to the executor (or
        completes it at once, e.g. from the cache), `record` stores a terminal outcome."""
        inflight, waiting = self.inflight, self.waiting
        while True:
            while len(inflight) + sum(map(len, waiting.values())) < self.executor.capacity:
                job = queue.popleft() if queue else propose()
                if job is None:
                    break
                dispatch(job)
            if not inflight:
                if waiting:       # cannot happen: every waiting trial waits on an in-flight one
                    raise RuntimeError(f"search: trials {sorted(waiting)} wait on nothing")
                if queue:
                    continue
                return
            for outcome in self.executor.wait(timeout=1.0):
                job = outcome.key
                inflight.discard(job)
                row = self.store.job(job)
                result = self._classify(outcome, row.attempts, row.error)
                if result.status == "retry":
                    self.log(f"{job}: {outcome.error.splitlines()[0]} (attempt {row.attempts} of "
                             f"{self.config.executor.max_retries + 1}); retrying")
                    self.store.requeue(job, result.error)
                    queue.appendleft(job)
                    continue
                record(job, outcome, result)
            if self._bar is not None and time.monotonic() - self._refreshed > 5:
                self._refreshed = time.monotonic()     # keep children/h current while children run
                self._set_postfix()
                self._bar.refresh()

    def _submit(self, job: Job, payload: dict) -> None:
        self.store.mark_running(job)
        self.executor.submit(job, payload)
        self.inflight.add(job)

    def _classify(self, outcome: Outcome, attempts: int, history: str | None) -> _Result:
        """What an outcome means: its status ("retry": an infrastructure failure to retry), reward and error.

        `history` is the error text of earlier attempts; it is kept in front of any new error.
        """
        def with_history(error):
            return f"{history}\n{error}" if history else error

        if outcome.kind == "infra":
            history = with_history(f"attempt {attempts}: {outcome.error}")
            if attempts <= self.config.executor.max_retries:
                return _Result("retry", error=history)
            return _Result(Status.FAILED,
                           error=f"infrastructure failure, gave up after {attempts} attempts:\n{history}")
        if outcome.kind == "error":
            return _Result(Status.FAILED, error=with_history(outcome.error))
        result = outcome.result or {}
        status = result.get("status", "done")
        if status == "done":
            try:
                reward, accuracy, cost = objective(result, self.config.cost)
            except ValueError as err:
                return _Result(Status.FAILED, error=with_history(str(err)))
            return _Result(Status.DONE, reward, accuracy, cost, history)
        if status == "diverged":
            return _Result(Status.DIVERGED, error=with_history(result.get("error") or "the child's loss diverged"))
        error = result.get("error") or f"the child reported status {status!r}"
        return _Result(Status.FAILED, error=with_history(error))

    # -- the search stage -------------------------------------------------------------------
    def _fits(self, epochs: int) -> bool:
        """Whether a job of `epochs` child-epochs fits the epoch budget, with every job started or finished."""
        budget = self.config.epoch_budget
        return budget is None or self.config.committed_epochs(self.store.uncached(),
                                                              self.store.promotions()) + epochs <= budget

    def _propose(self) -> Job | None:
        if self.asha:
            promotion = next_promotion(self.store.rung_standings(), len(self.asha.rungs), self.asha.eta)
            if promotion is not None:
                tid, rung = promotion
                if self._fits(self.asha.rungs[rung] - self.asha.rungs[rung - 1]):
                    first = self.store.get(tid).payload or {}
                    return self.store.add_promotion(tid, rung, self.asha.rungs[rung],
                                                    promotion_payload(self.config, first, tid, rung, self.run_dir))
        if self.store.count() >= self.config.children:
            return None
        if self.config.epoch_budget is not None and not self._fits(self.config.first_job_epochs):
            return None
        p = self.strategy.ask()
        text = str(self.space.decode(list(p.decisions)))
        tid = self.store.add(text, p.decisions, p.log_prob, p.entropy, p.policy_version,
                             lambda tid: child_payload(self.config, text, tid, self.run_dir))
        return Job(Stage.SEARCH, tid)

    def _dispatch(self, job: Job) -> None:
        if job.stage is Stage.RUNG:
            row = self.store.job(job)
            self._submit(job, with_checkpoint(row.payload, job.trial_id, self.run_dir))
            return
        trial = self.store.get(job.trial_id)
        if self.config.dedupe:
            first = self.store.first_with_genotype(trial.genotype, before=trial.id)
            if first is not None:
                if first.status.terminal:
                    self._finish_cached(trial.id, first)
                else:
                    self.waiting.setdefault(first.id, []).append(trial.id)
                return
        self._submit(job, with_checkpoint(trial.payload, trial.id, self.run_dir))

    def _record(self, job: Job, outcome: Outcome, result: _Result) -> None:
        if result.status != Status.DONE and result.error:
            self.log(f"{job}: {result.status}: {result.error.strip().splitlines()[-1][:200]}")
        if job.stage is Stage.RUNG:
            self._record_rung(job, outcome, result)
            return
        self._complete(job.trial_id, result, outcome.result, outcome.worker, outcome.started_at, outcome.finished_at)
        first = self.store.get(job.trial_id)
        for dup in self.waiting.pop(job.trial_id, []):
            self._finish_cached(dup, first)

    def _finish_cached(self, tid: int, first: Trial) -> None:
        """Trial `tid` repeats trial `first`'s architecture: it gets first's first result (ASHA: its first rung's)."""
        source: Any = self.store.rung(first.id, 0) if self.asha else None
        source = source or first
        now = time.time()
        result = _Result(source.status, source.reward, source.accuracy, source.cost, source.error)
        self._complete(tid, result, source.metrics, "cache", now, now, cached_from=first.id)

    def _complete(self, tid: int, result: _Result, metrics: Any, worker: str | None, started_at, finished_at,
                  cached_from: int | None = None) -> None:
        done = result.status == Status.DONE
        told = result.reward if done else self._failure_reward()
        first_rung = self.asha.rungs[0] if self.asha else None
        epochs = 0 if cached_from is not None else _epochs_of(metrics, first_rung if done else None)
        self.store.finish(tid, result.status, result.reward, metrics, result.error, worker, started_at, finished_at,
                          policy_reward=told, cached_from=cached_from, accuracy=result.accuracy, cost=result.cost,
                          epochs=epochs, rung_epochs=first_rung if cached_from is None else None)
        trial = self.store.get(tid)
        self._tell(trial, told)
        self.finished += 1
        self.session_finished += 1
        if done:
            self.recent.append(result.reward)
            self._update_best()
        if self._bar is not None:
            self._bar.update(1)
            self._set_postfix()

    def _record_rung(self, job: Job, outcome: Outcome, result: _Result) -> None:
        tid, rung = job.trial_id, job.index
        told = None
        if self.asha.tell == "every":
            if result.status == Status.DONE:
                standings = [s for s in self.store.rung_standings() if (s[0], s[1]) != (tid, rung)]
                told = recentred(standings + [(tid, rung, "done", result.reward)], rung, result.reward)
            else:
                told = self._failure_reward()
        self.store.finish_rung(tid, rung, result.status, result.reward, outcome.result, result.error, outcome.worker,
                               outcome.started_at, outcome.finished_at, accuracy=result.accuracy, cost=result.cost,
                               policy_reward=told)
        if told is not None:
            self._tell(self.store.get(tid), told)
        if result.status == Status.DONE:
            self._update_best()
        if self._bar is not None:
            self._set_postfix()

    def _update_best(self) -> None:
        top = self.store.top(1)
        if not top:
            return
        t = top[0]
        key = (t.id, t.reward, t.rung)
        if key == self._best_key:
            return
        self._best_key = key
        self.best_reward = t.reward
        files.write_best(self.run_dir, self._best_record(t))

    def _best_record(self, t: Trial) -> dict[str, Any]:
        best = {"genotype": t.genotype, "reward": t.reward, "trial": t.id, "stage": "search", "metrics": t.metrics}
        if self.asha:
            best.update(rung=t.rung, epochs=t.epochs)
        if self.config.cost.active:
            best.update(accuracy=t.accuracy, cost=t.cost, cost_name=self.config.cost.name)
        return best

    def _set_postfix(self) -> None:
        hours = (time.monotonic() - self.t0) / 3600
        recent = list(self.recent)[-self.config.strategy.batch_size:]
        post = {"best": f"{self.best_reward:.4f}" if self.best_reward is not None else "-",
                "recent": f"{sum(recent) / len(recent):.4f}" if recent else "-",
                "children/h": f"{self.session_finished / hours:.0f}" if hours > 0 else "-"}
        if self.asha:
            post["promoted"] = len(self.store.promotions())
        counts = self.store.counts()
        if counts["failed"] or counts["diverged"]:
            post["failed"] = counts["failed"] + counts["diverged"]
        self._bar.set_postfix(post, refresh=False)

    # -- the top-k stage and the pick ---------------------------------------------------------
    def _final_stage(self) -> list[FinalTrial]:
        cfg = self.config
        epochs = cfg.final_epochs or cfg.search_epochs
        for trial in self.store.top(cfg.top_k):
            self.store.add_final(trial, epochs, final_payload(cfg, trial.payload or {}, trial.id, 0), 0)
        self._retrain(f"top-{cfg.top_k} stage")
        winner = self._winner()
        if winner is not None and cfg.pick_seeds:
            trial = self.store.get(winner.trial_id if isinstance(winner, FinalTrial) else winner.id)
            for repeat in range(1, cfg.pick_seeds + 1):
                self.store.add_final(trial, epochs, final_payload(cfg, trial.payload or {}, trial.id, repeat), repeat)
            self._retrain(f"the pick (trial {trial.id}) with {cfg.pick_seeds} more seed(s)")
        if isinstance(winner, FinalTrial):
            files.write_best(self.run_dir, {
                "genotype": winner.genotype, "reward": winner.reward, "trial": winner.trial_id, "stage": "final",
                "search_reward": winner.search_reward, "epochs": winner.epochs,
                "seed": (winner.payload or {}).get("seed"), "metrics": winner.metrics,
                **({"accuracy": winner.accuracy, "cost": winner.cost, "cost_name": cfg.cost.name}
                   if cfg.cost.active else {})})
        return self.store.finals()

    def _winner(self) -> FinalTrial | Trial | None:
        """The top-k stage's best retraining, else (no top-k stage) the search's best trial."""
        done = [f for f in self.store.finals() if f.repeat == 0 and f.status == Status.DONE]
        if done:
            return max(done, key=lambda f: (f.reward, -f.trial_id))
        if self.config.top_k:
            return None
        top = self.store.top(1)
        return top[0] if top else None

    def _retrain(self, what: str) -> None:
        todo = deque(self.store.queued(Stage.FINAL))
        if todo:
            epochs = self.config.final_epochs or self.config.search_epochs
            self.log(f"{what}: retraining {len(todo)} architecture(s) with fresh seeds"
                     + (f" for {epochs} epochs" if epochs else ""))

        def record(job: Job, outcome: Outcome, result: _Result) -> None:
            self.store.finish_final(job.trial_id, job.index, result.status, result.reward, outcome.result,
                                    result.error, outcome.worker, outcome.started_at, outcome.finished_at,
                                    accuracy=result.accuracy, cost=result.cost)
            self.log(f"{job}: {result.status}" + (f", reward {result.reward:.4f}" if result.reward is not None else ""))

        def dispatch(job: Job) -> None:
            self._submit(job, self.store.final(job.trial_id, job.index).payload)

        self._drain(todo, lambda: None, dispatch, record)

    def _pick_record(self) -> dict[str, Any] | None:
        """The pick's retrainings with further seeds (best.json's "pick"), if it has any."""
        winner = self._winner()
        if winner is None:
            return None
        trial = winner.trial_id if isinstance(winner, FinalTrial) else winner.id
        runs = [f for f in self.store.finals() if f.repeat > 0 and f.trial_id == trial]
        if not runs:
            return None
        rewards = [f.reward for f in runs if f.status == Status.DONE]
        return {"trial": trial, "genotype": runs[0].genotype, "seeds": len(runs), "epochs": runs[0].epochs,
                "rewards": rewards, "failed": len(runs) - len(rewards),
                "mean": statistics.fmean(rewards) if rewards else None,
                "std": statistics.stdev(rewards) if len(rewards) > 1 else None}

    def _finish_best(self) -> dict | None:
        """best.json's closing additions: the accuracy-cost front and the pick's retraining."""
        best = files.read_best(self.run_dir)
        if best is None:
            return None
        if self.config.cost.active:
            best["front"] = front_rows(self.store.trials())
        pick = self._pick_record()
        if pick is not None:
            best["pick"] = pick
        files.write_best(self.run_dir, best)
        return best

    # -- the whole run ---------------------------------------------------------------------
    def run(self) -> SearchSummary:
        try:
            return self._run()
        finally:
            store = getattr(self, "store", None)
            if store is not None:
                store.close()
            self._lock.release()

    def _run(self) -> SearchSummary:
        self._open()
        self.t0 = time.monotonic()
        self.inflight: set[Job] = set()
        self.waiting: dict[int, list[int]] = {}
        self.recent: deque[float] = deque(maxlen=100)
        top = self.store.top(1)
        self._best_key = (top[0].id, top[0].reward, top[0].rung) if top else None
        self.best_reward = top[0].reward if top else None
        counts = self.store.counts()
        self.finished = sum(counts[s.value] for s in TERMINAL)
        self.session_finished = 0
        if self.resumed:
            self.log(f"resuming {self.run_dir}: {self.finished} of {self.config.children} children finished, "
                     f"{self.requeued} re-queued, controller at update {self.strategy.version}")
        final: list[FinalTrial] = []
        self.executor = None
        try:
            self.executor = make_executor(self.config.executor, record=self.run_dir / files.RAY_RECORD)
            if self.progress:
                from tqdm import tqdm

                self._bar = tqdm(total=self.config.children, initial=self.finished, desc="search", unit="child",
                                 file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
            self._drain(deque(self.store.queued()), self._propose, self._dispatch, self._record)
            if self._bar is not None:
                self._bar.close()
                self._bar = None
            if self.config.top_k or self.config.pick_seeds:
                final = self._final_stage()
        finally:
            if self._bar is not None:
                self._bar.close()
                self._bar = None
            if self.executor is not None:
                self.executor.close()
            # Jobs still in flight (Ctrl-C, an error) go back to the queue for the next run.
            self.store.requeue_interrupted()
            self.store.export_csv(self.run_dir / files.CSV_FILE)
            if self.strategy.told:
                self._save_checkpoint()
        best = self._finish_best()
        return self._summary(best, final)

    def _summary(self, best: dict | None, final: list[FinalTrial]) -> SearchSummary:
        trials = self.store.trials()
        recent = [t.entropy for t in trials[-self.config.strategy.batch_size:] if t.entropy is not None]
        return SearchSummary(
            run_dir=self.run_dir,
            best_genotype=best["genotype"] if best else None,
            best_reward=best["reward"] if best else None,
            best_trial=best["trial"] if best else None,
            counts=self.store.counts(),
            wall_seconds=time.monotonic() - self.t0,
            updates=self.strategy.version,
            stage=best["stage"] if best else "search",
            final=final,
            strategy=self.config.strategy.name,
            policy_entropy=sum(recent) / len(recent) if recent else None,
            uniform_entropy=sum(math.log(n) for n in self.space.decision_sizes()),
            epochs=sum(t.epochs or 0 for t in trials),
            promotions=len(self.store.promotions()),
            pick=(best or {}).get("pick"),
            test_accuracy=((best or {}).get("metrics") or {}).get("test_accuracy"),
        )


def run_search(config: SearchConfig, run_dir: str | Path, progress: bool = False,
               log: Callable[[str], None] | None = None) -> SearchSummary:
    """Start or continue the search in `run_dir` (see `Search`)."""
    return Search(config, run_dir, progress=progress, log=log).run()
