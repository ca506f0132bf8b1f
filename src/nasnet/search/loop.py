"""The search driver: a crash-safe work queue between a strategy and an executor (paper §3, A.3).

    ask -> trial (queued, in the store) -> executor (running) -> result (done / failed / diverged)
        -> tell -> controller update every minibatch -> checkpoint

`Search.run` opens a `Session` (nasnet.search.session), runs the search stage here (`SearchStage`:
proposals, ASHA promotions, reuse of a repeated architecture's result, best.json) through the
session's `WorkQueue` (nasnet.search.workqueue), then the top-k stage and the pick
(nasnet.search.final_stage), and returns a `SearchSummary`. Progress goes to a `SearchProgress`
the caller supplies (nasnet.search.progress). The rules — faults, deduplication, ASHA, budgets,
crash safety — are written once, in docs/search.md.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import run_dir as files
from .asha import next_promotion, recentred
from .config import SearchConfig
from .executors import make_executor
from .final_stage import close_best, run_final_stage, search_best
from .payloads import child_payload, promotion_payload, trial_seed, with_checkpoint
from .progress import ProgressBar, SearchProgress, SearchStatus
from .records import TERMINAL, FinalTrial, Job, Record, Result, Stage, Status, Trial
from .session import Session
from .workqueue import WorkQueue

__all__ = ["Search", "SearchSummary", "child_payload", "run_search", "trial_seed"]

REFRESH_SECONDS = 5.0     # how often the progress hears the clock (children/h) while children run


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
    samples: dict | None = None             # the first and the last children's mean reward (`sample_trend`)

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

    def samples_note(self) -> str | None:
        """One line: whether later children scored better than the first ones (None without `samples`).
        A rise says the strategy concentrated on better cells, which random search's samples do not on
        average; it does not say the pick is better (docs/figure6.md measures both)."""
        s = self.samples
        if not s:
            return None
        diff = s["last"] - s["first"]
        head = f"samples: the first {s['window']} children averaged {s['first']:.4f}, the last {s['window']} {s['last']:.4f}"
        if diff > 0:
            return head + f" ({diff:+.4f}): the strategy moved to better cells"
        return head + f" ({diff:+.4f}): later children were no better, so this run did not learn from its rewards"


def sample_trend(trials: list[Trial], window: int = 20) -> dict | None:
    """The mean reward of the first and of the last `window` finished children in sampling order (fewer
    when there are under 2 x window, None under 10): does the strategy sample better cells as it goes?"""
    rewards = [t.reward for t in trials if t.status == Status.DONE and t.reward is not None]
    k = min(window, len(rewards) // 2)
    if k < 5:
        return None
    return {"window": k, "first": sum(rewards[:k]) / k, "last": sum(rewards[-k:]) / k}


def _epochs_of(metrics: Any, default: int | None) -> int | None:
    e = metrics.get("epochs_completed") if isinstance(metrics, dict) else None
    return e if isinstance(e, int) and not isinstance(e, bool) else default


class SearchStage:
    """The search stage of one session: propose trials (or ASHA promotions), dispatch them (a repeated
    architecture reuses its first trial's result), record results, tell the strategy, keep best.json
    and the progress current. Built whole from the session's store."""

    def __init__(self, session: Session, queue: WorkQueue, progress: SearchProgress):
        self.session, self.queue, self.progress = session, queue, progress
        self.config, self.store = session.config, session.store
        self.asha = self.config.early_stop if self.config.early_stop.active else None
        self.started = self.clock = time.monotonic()
        self.recent: deque[float] = deque(maxlen=100)
        counts = self.store.counts()
        self.finished = sum(counts[s.value] for s in TERMINAL)
        self.session_finished = 0
        top = self.store.top(1)
        self.best = (top[0].id, top[0].reward, top[0].rung) if top else None
        self.reporting = type(progress).update is not SearchProgress.update    # worth computing a status for

    def run(self) -> None:
        """Drain the queue until the budget is spent; the progress is closed however it ends."""
        try:
            self._report()
            self.queue.drain(deque(self.store.queued()), self.propose, self.dispatch, self.record)
        finally:
            self.progress.close()

    def tick(self) -> None:
        """Keep children/h current while children run."""
        if time.monotonic() - self.clock > REFRESH_SECONDS:
            self._report()

    def _report(self) -> None:
        self.clock = time.monotonic()
        if not self.reporting:
            return
        hours = (self.clock - self.started) / 3600
        recent = list(self.recent)[-self.config.strategy.batch_size:]
        counts = self.store.counts()
        self.progress.update(SearchStatus(
            finished=self.finished, total=self.config.children, best=self.best[1] if self.best else None,
            recent=sum(recent) / len(recent) if recent else None,
            per_hour=self.session_finished / hours if hours > 0 and self.session_finished else None,
            promotions=len(self.store.promotions()) if self.asha else None,
            failed=counts[Status.FAILED.value] + counts[Status.DIVERGED.value]))

    def _fits(self, epochs: int) -> bool:
        """Whether a job of `epochs` child-epochs fits the epoch budget, with every job started or finished."""
        budget = self.config.epoch_budget
        return budget is None or self.config.committed_epochs(self.store.uncached(),
                                                              self.store.promotions()) + epochs <= budget

    def propose(self) -> Job | None:
        """The next job: an ASHA promotion when a rung has one to give (and it fits), else a new trial."""
        if self.asha:
            promotion = next_promotion(self.store.rung_standings(), len(self.asha.rungs), self.asha.eta)
            if promotion is not None:
                tid, rung = promotion
                if self._fits(self.asha.rungs[rung] - self.asha.rungs[rung - 1]):
                    first = self.store.get(tid).payload or {}
                    payload = promotion_payload(self.config, first, tid, rung, self.session.run_dir)
                    return self.store.enqueue(Job(Stage.RUNG, tid, rung), self.asha.rungs[rung], payload)
        if self.store.count() >= self.config.children:
            return None
        if self.config.epoch_budget is not None and not self._fits(self.config.first_job_epochs):
            return None
        p = self.session.strategy.ask()
        text = str(self.session.space.decode(list(p.decisions)))
        tid = self.store.add(text, p.decisions, p.log_prob, p.entropy, p.policy_version,
                             lambda tid: child_payload(self.config, text, tid, self.session.run_dir))
        return Job(Stage.SEARCH, tid)

    def dispatch(self, job: Job) -> None:
        """Hand a job to the executor; a repeated architecture takes its first trial's result (now, or
        when it arrives)."""
        row = self.store.job(job)
        if job.stage is Stage.SEARCH and self.config.dedupe:
            first = self.store.first_with_genotype(row.genotype, before=row.id)
            if first is not None:
                if first.status.terminal:
                    self._reuse(row.id, first)
                else:
                    self.queue.waiting.setdefault(first.id, []).append(row.id)
                return
        self.queue.submit(job, with_checkpoint(row.payload, job.trial_id, self.session.run_dir))

    def record(self, job: Job, result: Result) -> None:
        if result.status != Status.DONE and result.error:
            self.session.say(f"{job}: {result.status}: {result.error.strip().splitlines()[-1][:200]}")
        if job.stage is Stage.RUNG:
            self._record_rung(job, result)
            return
        self._complete(job.trial_id, result)
        first = self.store.get(job.trial_id)
        for repeat in self.queue.waiting.pop(job.trial_id, []):
            self._reuse(repeat, first)

    def _reuse(self, tid: int, first: Trial) -> None:
        """Trial `tid` repeats trial `first`'s architecture: it gets first's first result (ASHA: its first rung's)."""
        source: Record = first
        if self.asha:
            try:
                source = self.store.job(Job(Stage.RUNG, first.id, 0))
            except KeyError:
                pass
        now = time.time()
        self._complete(tid, dataclasses.replace(source.result, worker="cache", started_at=now, finished_at=now,
                                                cached_from=first.id, epochs=0))

    def _complete(self, tid: int, result: Result) -> None:
        """Record a trial's first result, tell it, count it."""
        done = result.status == Status.DONE
        told = result.reward if done else self.session.failure_reward()
        first_rung = self.asha.rungs[0] if self.asha else None
        if result.cached_from is None:
            result = dataclasses.replace(result, epochs=_epochs_of(result.metrics, first_rung if done else None))
        self.store.finish(Job(Stage.SEARCH, tid), dataclasses.replace(result, policy_reward=told),
                          first_rung=first_rung if result.cached_from is None else None)
        self.session.tell(self.store.get(tid), told)
        self.finished += 1
        self.session_finished += 1
        if done:
            self.recent.append(result.reward)
            self._update_best()
        self._report()

    def _record_rung(self, job: Job, result: Result) -> None:
        tid, rung = job.trial_id, job.index
        told = None
        if self.asha.tell == "every":
            if result.status == Status.DONE:
                standings = [s for s in self.store.rung_standings() if (s[0], s[1]) != (tid, rung)]
                told = recentred(standings + [(tid, rung, Status.DONE, result.reward)], rung, result.reward)
            else:
                told = self.session.failure_reward()
        self.store.finish(job, dataclasses.replace(result, policy_reward=told))
        if told is not None:
            self.session.tell(self.store.get(tid), told)
        if result.status == Status.DONE:
            self._update_best()
        self._report()

    def _update_best(self) -> None:
        top = self.store.top(1)
        if not top:
            return
        t = top[0]
        if (t.id, t.reward, t.rung) != self.best:
            self.best = (t.id, t.reward, t.rung)
            files.write_best(self.session.run_dir, search_best(t, self.config))


class Search:
    """One search run in a run directory; `run()` starts it or continues it.

    progress: a SearchProgress to report to (True: a ProgressBar on stderr; False: nothing); log:
    receives the run's notes instead of the progress; on_update: called with each controller
    update's statistics once stored and checkpointed. `run` raises NasnetError for a run that cannot
    start or continue; Ctrl-C (KeyboardInterrupt) stops it with everything saved."""

    def __init__(self, config: SearchConfig, run_dir: str | Path, progress: bool | SearchProgress = True,
                 log: Callable[[str], None] | None = None,
                 on_update: Callable[[dict[str, Any]], None] | None = None):
        self.config = config
        self.run_dir = Path(run_dir)
        self.progress = progress if isinstance(progress, SearchProgress) else \
            ProgressBar() if progress else SearchProgress()
        self.log = log or self.progress.note
        self.on_update = on_update

    def run(self) -> SearchSummary:
        with Session(self.config, self.run_dir, self.log, self.on_update) as session:
            started = time.monotonic()
            if session.resumed:
                counts = session.store.counts()
                self.log(f"resuming {self.run_dir}: {sum(counts[s.value] for s in TERMINAL)} of "
                         f"{self.config.children} children finished, {session.requeued} re-queued, controller at "
                         f"update {session.strategy.version}")
            final: list[FinalTrial] = []
            try:
                with make_executor(self.config.executor, record=self.run_dir / files.RAY_RECORD,
                                   log=self.log) as executor:
                    queue = WorkQueue(session, executor)
                    stage = SearchStage(session, queue, self.progress)
                    queue.tick = stage.tick
                    stage.run()
                    if self.config.top_k or self.config.pick_seeds:
                        queue.tick = None
                        final = run_final_stage(session, queue)
            finally:
                session.stop()
            return _summary(session, close_best(session), final, time.monotonic() - started)


def _summary(session: Session, best: dict | None, final: list[FinalTrial], seconds: float) -> SearchSummary:
    store, config = session.store, session.config
    trials = store.trials()
    recent = [t.entropy for t in trials[-config.strategy.batch_size:] if t.entropy is not None]
    best = best or {}
    return SearchSummary(
        run_dir=session.run_dir, best_genotype=best.get("genotype"), best_reward=best.get("reward"),
        best_trial=best.get("trial"), counts=store.counts(), wall_seconds=seconds, updates=session.strategy.version,
        stage=best.get("stage", "search"), final=final, strategy=config.strategy.name,
        policy_entropy=sum(recent) / len(recent) if recent else None,
        uniform_entropy=sum(math.log(n) for n in session.space.decision_sizes()),
        epochs=sum(t.epochs or 0 for t in trials), promotions=len(store.promotions()), pick=best.get("pick"),
        test_accuracy=(best.get("metrics") or {}).get("test_accuracy"),
        samples=None if config.early_stop.active else sample_trend(trials))


def run_search(config: SearchConfig, run_dir: str | Path, progress: bool | SearchProgress = False,
               log: Callable[[str], None] | None = None) -> SearchSummary:
    """Start or continue the search in `run_dir` (see `Search`)."""
    return Search(config, run_dir, progress=progress, log=log).run()
