"""The drain loop every stage of a search runs through: keep the executor full, sort outcomes (paper §3, A.3).

`WorkQueue.drain` fills the executor up to its capacity with jobs (retries first, then new ones a
stage proposes), waits for outcomes, sends an infrastructure failure back to the queue (`Retry`,
up to `max_retries` times) and hands everything else, as a `Result`, to the stage to record.
`classify` says what an outcome means: docs/search.md ("Faults") has the rules.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable

from .config import SearchConfig
from .contract import OutcomeKind, result_status
from .executors import Executor, Outcome
from .objective import objective
from .records import Job, Result, Status
from .session import Session


@dataclass(frozen=True)
class Retry:
    """An infrastructure failure to run again; `error` holds every attempt's error so far."""

    error: str


def classify(outcome: Outcome, attempts: int, history: str | None, config: SearchConfig) -> Result | Retry:
    """What an outcome of a job's `attempts`-th attempt means: a Retry, or the Result to record (the
    reward by the config's objective; worker and times from the outcome, its result as the metrics).
    `history`: the error text of earlier attempts, kept in front of any new error."""
    def with_history(error):
        return f"{history}\n{error}" if history else error

    def result(status: Status, error: str | None, *measured) -> Result:
        return Result(status, *measured, metrics=outcome.result, error=error, worker=outcome.worker,
                      started_at=outcome.started_at, finished_at=outcome.finished_at)

    if outcome.kind is OutcomeKind.INFRA:
        history = with_history(f"attempt {attempts}: {outcome.error}")
        if attempts <= config.executor.max_retries:
            return Retry(history)
        return result(Status.FAILED, f"infrastructure failure, gave up after {attempts} attempts:\n{history}")
    if outcome.kind is OutcomeKind.ERROR:
        return result(Status.FAILED, with_history(outcome.error))
    child = outcome.result or {}
    status = result_status(child)
    if status is Status.DONE:
        try:
            return result(Status.DONE, history, *objective(child, config.cost))
        except ValueError as err:
            return result(Status.FAILED, with_history(str(err)))
    if status is Status.DIVERGED:
        return result(status, with_history(child.get("error") or "the child's loss diverged"))
    return result(Status.FAILED, with_history(child.get("error") or "the child reported failure"))


class WorkQueue:
    """An executor kept full for one session: `inflight` (jobs handed to it) and `waiting` (a trial ->
    the trials that repeat its architecture and wait for its result, counted against the capacity)."""

    def __init__(self, session: Session, executor: Executor, tick: Callable[[], None] | None = None):
        self.session, self.executor = session, executor
        self.inflight: set[Job] = set()
        self.waiting: dict[int, list[int]] = {}
        self.tick = tick           # called after every wait for outcomes (a progress display's clock)

    def submit(self, job: Job, payload: dict) -> None:
        """Mark the job running in the store, then hand it to the executor."""
        self.session.store.mark_running(job)
        self.executor.submit(job, payload)
        self.inflight.add(job)

    def drain(self, queue: deque, propose: Callable[[], Job | None], dispatch: Callable[[Job], None],
              record: Callable[[Job, Result], None]) -> None:
        """Keep the executor full until nothing is left: `queue` holds jobs to run (retries go back to
        its front), `propose` makes a new one (or None), `dispatch` hands a job to the executor (or
        completes it at once, e.g. from the cache), `record` stores a job's Result."""
        store, config = self.session.store, self.session.config
        while True:
            while len(self.inflight) + sum(map(len, self.waiting.values())) < self.executor.capacity:
                job = queue.popleft() if queue else propose()
                if job is None:
                    break
                dispatch(job)
            if not self.inflight:
                if self.waiting:       # cannot happen: every waiting trial waits on an in-flight one
                    raise RuntimeError(f"search: trials {sorted(self.waiting)} wait on nothing")
                if queue:
                    continue
                return
            for outcome in self.executor.wait(timeout=1.0):
                job = outcome.key
                self.inflight.discard(job)
                row = store.job(job)
                result = classify(outcome, row.attempts, row.error, config)
                if isinstance(result, Retry):
                    self.session.say(f"{job}: {outcome.error.splitlines()[0]} (attempt {row.attempts} of "
                                     f"{config.executor.max_retries + 1}); retrying")
                    store.requeue(job, result.error)
                    queue.appendleft(job)
                    continue
                record(job, result)
            if self.tick is not None:
                self.tick()
