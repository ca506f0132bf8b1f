"""The search driver: a crash-safe work queue between a strategy and an executor (paper §3, A.3).

    ask -> trial (queued, in the store) -> executor (running) -> result (done / failed / diverged)
        -> tell -> controller update every minibatch -> checkpoint

W children are kept in flight. Each result is committed to the trial store as it arrives and then
told to the strategy; the controller's state is checkpointed atomically after every update. That
order makes a SIGKILL of the driver harmless at any moment: on resume the checkpoint is loaded, the
results it had not yet seen are told again in their original order (`result_seq`), trials left
queued or running are run again with the same architecture and payload, and sampling continues
with a fresh RNG stream (keyed by the number of samples made), until `children` trials have
finished.

Faults: a child that raises is recorded `failed` with its error; one that reports a NaN loss is
`diverged`; an infrastructure failure (dead worker, lost result, out of memory) is retried up to
`max_retries` times, then recorded `failed`. The controller is told `failure_reward` for either.
With `dedupe` (the default) an architecture sampled again is not retrained: the new trial reuses the
first one's result (worker "cache", `cached_from` set), waiting for it if it is still running.

After the search, the top-k stage retrains the K best architectures with `final_epochs` (the
paper's "top 250 architectures are then chosen to train until convergence", A.3) and records the
best of them in best.json. Both stages go through one drain loop (`_drain`): fill the executor up
to its capacity, wait for outcomes, retry infrastructure failures, record everything else.
"""

from __future__ import annotations

import math
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..arch.space import get_space
from ..errors import NasnetError
from ..seeding import CHILD, derive_seed
from ..weights.io import read_checkpoint
from . import run_dir as files
from .config import SearchConfig
from .executors import Outcome, make_executor, resolve
from .store import TERMINAL, FinalTrial, Stage, Status, Trial, TrialStore
from .strategies import make_strategy


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


def trial_seed(seed: int, trial_id: int) -> int:
    """The seed of trial `trial_id`'s child (31 bits: any child function can take it)."""
    return derive_seed(seed, trial_id, CHILD, bits=31)


def child_payload(config: SearchConfig, genotype: str, trial_id: int) -> dict[str, Any]:
    """The JSON payload a child receives (the contract of nasnet.search.children.train.train_child)."""
    c = config.child
    payload = {**c.options, "fn": c.fn, "genotype": genotype, "model": dict(c.model), "train": dict(c.train),
               "data": c.data, "seed": trial_seed(config.seed, trial_id)}
    if c.device:
        payload["device"] = c.device
    return payload


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
        stored = files.load_run_config(self.run_dir)
        if stored is not None:
            files.check_resumable(stored, self.config, self.run_dir)
        resolve(self.config.child.fn)          # fail now, not in every child, if it cannot be imported
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        self.space = get_space(self.config.space)
        self.store = TrialStore(self.run_dir / files.STORE_FILE)
        n = self.store.count()
        if n > self.config.children:
            raise NasnetError(f"{self.run_dir} already holds {n} trials; --children must be at least {n}")
        files.write_config(self.run_dir, self.config)
        self.strategy = make_strategy(self.space.decision_sizes(), self.config.strategy, self.config.seed)
        self._load_checkpoint()
        # Results the checkpoint has not seen, in the order the controller first saw them.
        for trial in self.store.results_after(self.strategy.told):
            self._tell(trial)
        self.strategy.asked = max(self.strategy.asked, n)
        self.resumed = stored is not None
        self.requeued = self.store.requeue_interrupted()
        if self.config.executor.child_timeout and self.config.executor.name == "serial":
            self.log("note: --child-timeout does not apply to the serial executor; its children run to the end")

    def _tell(self, trial: Trial) -> None:
        update = self.strategy.tell((trial.decisions, trial.log_prob), trial.policy_reward)
        if update is not None:
            self.store.add_update(update)
            self._save_checkpoint()
            if self.on_update is not None:
                self.on_update(update)

    # -- the drain loop, shared by both stages ------------------------------------------------
    def _drain(self, stage: Stage, queue: deque, propose: Callable[[], int | None], dispatch: Callable[[int], None],
               record: Callable[[int, Outcome, Status, float | None, str | None], None]) -> None:
        """Keep the executor full until nothing is left: `queue` holds keys to run (retries go back to
        its front), `propose` makes a new one (or None), `dispatch` hands a key to the executor (or
        completes it at once, e.g. from the cache), `record` stores a terminal outcome."""
        inflight, waiting = self.inflight, self.waiting
        while True:
            while len(inflight) + sum(map(len, waiting.values())) < self.executor.capacity:
                key = queue.popleft() if queue else propose()
                if key is None:
                    break
                dispatch(key)
            if not inflight:
                if waiting:       # cannot happen: every waiting trial waits on an in-flight one
                    raise RuntimeError(f"search: trials {sorted(waiting)} wait on nothing")
                if queue:
                    continue
                return
            for outcome in self.executor.wait(timeout=1.0):
                key = outcome.key[1] if stage is Stage.FINAL else outcome.key
                inflight.discard(key)
                trial = self.store.get_stage(key, stage)
                status, reward, error = self._classify(outcome, trial.attempts, trial.error)
                if status == "retry":
                    self.log(f"trial {key}: {outcome.error.splitlines()[0]} (attempt {trial.attempts} of "
                             f"{self.config.executor.max_retries + 1}); retrying")
                    self.store.requeue(key, error, stage)
                    queue.appendleft(key)
                    continue
                record(key, outcome, status, reward, error)
            if self._bar is not None and time.monotonic() - self._refreshed > 5:
                self._refreshed = time.monotonic()     # keep children/h current while children run
                self._set_postfix()
                self._bar.refresh()

    def _submit(self, key: int, stage: Stage, payload: dict) -> None:
        self.store.mark_running(key, stage)
        self.executor.submit(("final", key) if stage is Stage.FINAL else key, payload)
        self.inflight.add(key)

    def _classify(self, outcome: Outcome, attempts: int, history: str | None
                  ) -> tuple[str, float | None, str | None]:
        """(status, reward, error) of an outcome; status "retry" for an infrastructure failure to retry.

        `history` is the error text of earlier attempts; it is kept in front of any new error.
        """
        def with_history(error):
            return f"{history}\n{error}" if history else error

        if outcome.kind == "infra":
            history = with_history(f"attempt {attempts}: {outcome.error}")
            if attempts <= self.config.executor.max_retries:
                return "retry", None, history
            return Status.FAILED, None, f"infrastructure failure, gave up after {attempts} attempts:\n{history}"
        if outcome.kind == "error":
            return Status.FAILED, None, with_history(outcome.error)
        result = outcome.result or {}
        status = result.get("status", "done")
        if status == "done":
            reward = result.get("reward")
            if isinstance(reward, bool) or not isinstance(reward, (int, float)) or not math.isfinite(reward):
                return Status.FAILED, None, with_history(f"the child returned no finite reward ({reward!r})")
            return Status.DONE, float(reward), history
        if status == "diverged":
            return Status.DIVERGED, None, with_history(result.get("error") or "the child's loss diverged")
        return Status.FAILED, None, with_history(result.get("error") or f"the child reported status {status!r}")

    # -- the search stage -------------------------------------------------------------------
    def _propose(self) -> int | None:
        if self.store.count() >= self.config.children:
            return None
        p = self.strategy.ask()
        text = str(self.space.decode(list(p.decisions)))
        return self.store.add(text, p.decisions, p.log_prob, p.entropy, p.policy_version,
                              lambda tid: child_payload(self.config, text, tid))

    def _dispatch(self, tid: int) -> None:
        trial = self.store.get(tid)
        if self.config.dedupe:
            first = self.store.first_with_genotype(trial.genotype, before=tid)
            if first is not None:
                if first.status.terminal:
                    self._finish_cached(tid, first)
                else:
                    self.waiting.setdefault(first.id, []).append(tid)
                return
        self._submit(tid, Stage.SEARCH, trial.payload)

    def _finish_cached(self, tid: int, first: Trial) -> None:
        now = time.time()
        self._complete(tid, first.status, first.reward, first.metrics, first.error, "cache", now, now,
                       cached_from=first.id)

    def _record_search(self, tid: int, outcome: Outcome, status: Status, reward, error) -> None:
        if status != Status.DONE and error:
            self.log(f"trial {tid}: {status}: {error.strip().splitlines()[-1][:200]}")
        self._complete(tid, status, reward, outcome.result, error, outcome.worker, outcome.started_at,
                       outcome.finished_at)
        first = self.store.get(tid)
        for dup in self.waiting.pop(tid, []):
            self._finish_cached(dup, first)

    def _complete(self, tid, status, reward, metrics, error, worker, started_at, finished_at, cached_from=None):
        policy_reward = reward if status == Status.DONE else self.config.failure_reward
        self.store.finish(tid, status, reward, metrics, error, worker, started_at, finished_at,
                          policy_reward=policy_reward, cached_from=cached_from)
        self._tell(self.store.get(tid))
        self.finished += 1
        self.session_finished += 1
        if status == Status.DONE:
            self.recent.append(reward)
            if self.best is None or reward > self.best[0]:
                self.best = (reward, tid)
                trial = self.store.get(tid)
                files.write_best(self.run_dir, {"genotype": trial.genotype, "reward": reward, "trial": tid,
                                                "stage": "search", "metrics": trial.metrics})
        if self._bar is not None:
            self._bar.update(1)
            self._set_postfix()

    def _set_postfix(self) -> None:
        hours = (time.monotonic() - self.t0) / 3600
        recent = list(self.recent)[-self.config.strategy.batch_size:]
        post = {"best": f"{self.best[0]:.4f}" if self.best else "-",
                "recent": f"{sum(recent) / len(recent):.4f}" if recent else "-",
                "children/h": f"{self.session_finished / hours:.0f}" if hours > 0 else "-"}
        counts = self.store.counts()
        if counts["failed"] or counts["diverged"]:
            post["failed"] = counts["failed"] + counts["diverged"]
        self._bar.set_postfix(post, refresh=False)

    # -- the top-k stage -------------------------------------------------------------------
    def _final_stage(self) -> list[FinalTrial]:
        cfg = self.config
        for trial in self.store.top(cfg.top_k):
            payload = dict(trial.payload or {})
            if cfg.final_epochs:
                payload["train"] = {**payload.get("train", {}), "epochs": cfg.final_epochs}
            self.store.add_final(trial, cfg.final_epochs, payload)
        todo = deque(f.trial_id for f in self.store.finals() if not f.status.terminal)
        if todo:
            self.log(f"top-{cfg.top_k} stage: retraining {len(todo)} architecture(s)"
                     + (f" for {cfg.final_epochs} epochs" if cfg.final_epochs else ""))

        def record(tid: int, outcome: Outcome, status: Status, reward, error) -> None:
            self.store.finish(tid, status, reward, outcome.result, error, outcome.worker, outcome.started_at,
                              outcome.finished_at, stage=Stage.FINAL)
            self.log(f"top-k: trial {tid}: {status}" + (f", reward {reward:.4f}" if reward is not None else ""))

        self._drain(Stage.FINAL, todo, lambda: None,
                    lambda tid: self._submit(tid, Stage.FINAL, self.store.final(tid).payload), record)
        finals = self.store.finals()
        done = [f for f in finals if f.status == Status.DONE]
        if done:
            best = max(done, key=lambda f: (f.reward, -f.trial_id))
            files.write_best(self.run_dir, {"genotype": best.genotype, "reward": best.reward, "trial": best.trial_id,
                                            "stage": "final", "search_reward": best.search_reward,
                                            "epochs": best.epochs, "metrics": best.metrics})
        return finals

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
        self.inflight: set[int] = set()
        self.waiting: dict[int, list[int]] = {}
        self.recent: deque[float] = deque(maxlen=100)
        top = self.store.top(1)
        self.best = (top[0].reward, top[0].id) if top else None
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
            self._drain(Stage.SEARCH, deque(self.store.queued()), self._propose, self._dispatch, self._record_search)
            if self._bar is not None:
                self._bar.close()
                self._bar = None
            if self.config.top_k:
                final = self._final_stage()
        finally:
            if self._bar is not None:
                self._bar.close()
                self._bar = None
            if self.executor is not None:
                self.executor.close()
            # Trials still in flight (Ctrl-C, an error) go back to the queue for the next run.
            self.store.requeue_interrupted()
            self.store.export_csv(self.run_dir / files.CSV_FILE)
            if self.strategy.told:
                self._save_checkpoint()
        best = files.read_best(self.run_dir)
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
        )


def run_search(config: SearchConfig, run_dir: str | Path, progress: bool = False,
               log: Callable[[str], None] | None = None) -> SearchSummary:
    """Start or continue the search in `run_dir` (see `Search`)."""
    return Search(config, run_dir, progress=progress, log=log).run()
