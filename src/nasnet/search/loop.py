"""The search driver: a crash-safe work queue between a strategy and an executor (paper §3, SPEC §1.7).

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
paper's "top 250 trained to convergence") and records the best of them in best.json.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..atomic import replacing, write_text
from ..errors import NasnetError
from .config import IDENTITY_FIELDS, SearchConfig
from .store import TERMINAL, TrialStore

CONFIG_FILE = "config.json"
STORE_FILE = "trials.db"
CHECKPOINT_FILE = "controller.pt"
BEST_FILE = "best.json"
CSV_FILE = "trials.csv"
LOCK_FILE = ".lock"
RAY_RECORD = "ray_processes.json"


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
    final: list[dict] = field(default_factory=list)


def load_run_config(run_dir: str | Path) -> SearchConfig | None:
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        return None
    try:
        return SearchConfig.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError) as err:
        raise NasnetError(f"{path}: cannot read the run's config ({err})") from None


def check_resumable(stored: SearchConfig, config: SearchConfig, run_dir: Path) -> None:
    """A resumed run must keep what defines the search; the budget and resources may change."""
    a, b = stored.to_dict(), config.to_dict()
    for name in IDENTITY_FIELDS:
        pairs = [(f"{name}.{k}", v, b[name].get(k)) for k, v in a[name].items()] if isinstance(a[name], dict) \
            else [(name, a[name], b[name])]
        for field_name, old, new in pairs:
            if old != new:
                raise NasnetError(f"{run_dir} holds a search with {field_name}={old!r}; it cannot continue with "
                                  f"{new!r} (use a new --run-dir)")


def trial_seed(seed: int, trial_id: int) -> int:
    return (int(seed) * 1_000_003 + int(trial_id)) % (2**31 - 1)


def child_payload(config: SearchConfig, genotype: str, trial_id: int) -> dict[str, Any]:
    """The JSON payload a child receives (the contract of nasnet.child.train_child)."""
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

        with replacing(self.run_dir / CHECKPOINT_FILE) as tmp:
            torch.save(self.strategy.state_dict(), tmp)

    def _load_checkpoint(self) -> None:
        import torch

        path = self.run_dir / CHECKPOINT_FILE
        if not path.is_file():
            return
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            self.strategy.load_state_dict(state)
        except Exception as err:   # noqa: BLE001 - any unreadable checkpoint is a user-facing error
            raise NasnetError(f"{path}: cannot load the controller checkpoint ({err})") from None

    # -- setup -----------------------------------------------------------------------------
    def _open(self) -> None:
        from ..space import get_space
        from .executors import resolve
        from .strategies import make_strategy

        stored = load_run_config(self.run_dir)
        if stored is not None:
            check_resumable(stored, self.config, self.run_dir)
        resolve(self.config.child.fn)          # fail now, not in every child, if it cannot be imported
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._lock()
        self.space = get_space(self.config.space)
        self.store = TrialStore(self.run_dir / STORE_FILE)
        n = self.store.count()
        if n > self.config.children:
            raise NasnetError(f"{self.run_dir} already holds {n} trials; --children must be at least {n}")
        write_text(self.run_dir / CONFIG_FILE, self.config.to_json() + "\n")
        self.strategy = make_strategy(self.space.decision_sizes(), self.config.strategy, self.config.seed)
        self._load_checkpoint()
        # Results the checkpoint has not seen, in the order the controller first saw them.
        for row in self.store.results_after(self.strategy.told):
            self._tell(row)
        self.strategy.asked = max(self.strategy.asked, n)
        self.resumed = stored is not None
        self.requeued = self.store.requeue_interrupted()
        self.store.final_requeue_interrupted()
        if self.config.executor.child_timeout and self.config.executor.name == "serial":
            self.log("note: --child-timeout does not apply to the serial executor; its children run to the end")

    def _lock(self) -> None:
        """One driver per run directory (an flock, released by the kernel if the driver dies)."""
        self._lock_file = open(self.run_dir / LOCK_FILE, "a+")
        try:
            import fcntl

            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:        # not POSIX: no lock
            return
        except OSError:
            self._lock_file.close()
            raise NasnetError(f"{self.run_dir} is in use by another nasnet search; wait for it or stop it") from None

    def _unlock(self) -> None:
        lock = getattr(self, "_lock_file", None)
        if lock is not None:
            lock.close()
            self._lock_file = None

    def _tell(self, row) -> None:
        update = self.strategy.tell((json.loads(row["decisions"]), row["log_prob"]), row["policy_reward"])
        if update is not None:
            self.store.add_update(update)
            self._save_checkpoint()
            if self.on_update is not None:
                self.on_update(update)

    # -- the work queue --------------------------------------------------------------------
    def _propose(self) -> int:
        p = self.strategy.ask()
        text = str(self.space.decode(list(p.decisions)))
        return self.store.add(text, p.decisions, p.log_prob, p.entropy, p.policy_version,
                              lambda tid: child_payload(self.config, text, tid))

    def _dispatch(self, tid: int) -> None:
        row = self.store.get(tid)
        if self.config.dedupe:
            first = self.store.first_with_genotype(row["genotype"], before=tid)
            if first is not None:
                if first["status"] in TERMINAL:
                    self._finish_cached(tid, first)
                else:
                    self.waiting.setdefault(first["id"], []).append(tid)
                return
        self.store.mark_running(tid)
        self.executor.submit(tid, json.loads(row["payload"]))
        self.inflight.add(tid)

    def _finish_cached(self, tid: int, first) -> None:
        self._complete(tid, first["status"], first["reward"],
                       json.loads(first["metrics"]) if first["metrics"] else None, first["error"], "cache",
                       time.time(), time.time(), cached_from=first["id"])

    def _classify(self, outcome, attempts: int, history: str | None) -> tuple[str, float | None, str | None]:
        """(status, reward, error) of an outcome; status "retry" for an infrastructure failure to retry.

        `history` is the error text of earlier attempts; it is kept in front of any new error.
        """
        def with_history(error):
            return f"{history}\n{error}" if history else error

        if outcome.kind == "infra":
            history = with_history(f"attempt {attempts}: {outcome.error}")
            if attempts <= self.config.executor.max_retries:
                return "retry", None, history
            return "failed", None, f"infrastructure failure, gave up after {attempts} attempts:\n{history}"
        if outcome.kind == "error":
            return "failed", None, with_history(outcome.error)
        result = outcome.result or {}
        status = result.get("status", "done")
        if status == "done":
            reward = result.get("reward")
            if isinstance(reward, bool) or not isinstance(reward, (int, float)) or not math.isfinite(reward):
                return "failed", None, with_history(f"the child returned no finite reward ({reward!r})")
            return "done", float(reward), history
        if status == "diverged":
            return "diverged", None, with_history(result.get("error") or "the child's loss diverged")
        return "failed", None, with_history(result.get("error") or f"the child reported status {status!r}")

    def _handle(self, outcome) -> None:
        tid = outcome.key
        self.inflight.discard(tid)
        row = self.store.get(tid)
        status, reward, error = self._classify(outcome, row["attempts"], row["error"])
        if status == "retry":
            self.log(f"trial {tid}: {outcome.error.splitlines()[0]} (attempt {row['attempts']} of "
                     f"{self.config.executor.max_retries + 1}); retrying")
            self.store.requeue(tid, error)
            self.queue.appendleft(tid)
            return
        if status != "done" and error:
            self.log(f"trial {tid}: {status}: {error.strip().splitlines()[-1][:200]}")
        self._complete(tid, status, reward, outcome.result, error, outcome.worker, outcome.started_at,
                       outcome.finished_at)
        for dup in self.waiting.pop(tid, []):
            self._finish_cached(dup, self.store.get(tid))

    def _complete(self, tid, status, reward, metrics, error, worker, started_at, finished_at, cached_from=None):
        policy_reward = reward if status == "done" else self.config.failure_reward
        self.store.finish(tid, status, reward, policy_reward, metrics, error, worker, started_at, finished_at,
                          cached_from)
        self._tell(self.store.get(tid))
        self.finished += 1
        self.session_finished += 1
        if status == "done":
            self.recent.append(reward)
            if self.best is None or reward > self.best[0]:
                self.best = (reward, tid)
                self._write_best()
        if self._bar is not None:
            self._bar.update(1)
            self._set_postfix()

    def _set_postfix(self) -> None:
        hours = (time.monotonic() - self.t0) / 3600
        recent = list(self.recent)[-self.config.strategy.batch_size:]
        post = {"best": f"{self.best[0]:.4f}" if self.best else "-",
                "recent": f"{sum(recent) / len(recent):.4f}" if recent else "-",
                "children/h": f"{self.session_finished / hours:.0f}" if hours > 0 else "-"}
        failed = self.store.counts()
        if failed["failed"] or failed["diverged"]:
            post["failed"] = failed["failed"] + failed["diverged"]
        self._bar.set_postfix(post, refresh=False)

    def _write_best(self, final: dict | None = None) -> None:
        if final is not None:
            data = final
        else:
            reward, tid = self.best
            row = self.store.get(tid)
            data = {"genotype": row["genotype"], "reward": reward, "trial": tid, "stage": "search",
                    "metrics": json.loads(row["metrics"]) if row["metrics"] else None}
        write_text(self.run_dir / BEST_FILE, json.dumps(data, indent=2) + "\n")

    def _search(self) -> None:
        cfg = self.config
        width = self.executor.capacity
        self.queue = deque(self.store.queued())
        while True:
            while len(self.inflight) + sum(map(len, self.waiting.values())) < width:
                if self.queue:
                    tid = self.queue.popleft()
                elif self.store.count() < cfg.children:
                    tid = self._propose()
                else:
                    break
                self._dispatch(tid)
            if not self.inflight:
                if self.waiting:       # cannot happen: every waiting trial waits on an in-flight one
                    raise RuntimeError(f"search: trials {sorted(self.waiting)} wait on nothing")
                if self.queue or self.store.count() < cfg.children:
                    continue
                break
            for outcome in self.executor.wait(timeout=1.0):
                self._handle(outcome)
            if self._bar is not None and time.monotonic() - self._refreshed > 5:
                self._refreshed = time.monotonic()     # keep children/h current while children run
                self._set_postfix()
                self._bar.refresh()

    # -- the top-k stage -------------------------------------------------------------------
    def _final_stage(self) -> list[dict]:
        cfg = self.config
        for row in self.store.top(cfg.top_k):
            payload = json.loads(row["payload"])
            if cfg.final_epochs:
                payload["train"] = {**payload.get("train", {}), "epochs": cfg.final_epochs}
            self.store.add_final(row, cfg.final_epochs, payload)
        todo = deque(r["trial_id"] for r in self.store.finals() if r["status"] not in TERMINAL)
        if todo:
            self.log(f"top-{cfg.top_k} stage: retraining {len(todo)} architecture(s)"
                     + (f" for {cfg.final_epochs} epochs" if cfg.final_epochs else ""))
        rows = {r["trial_id"]: r for r in self.store.finals()}
        inflight: set[int] = set()
        while todo or inflight:
            while todo and len(inflight) < self.executor.capacity:
                tid = todo.popleft()
                self.store.final_mark_running(tid)
                self.executor.submit(("final", tid), json.loads(rows[tid]["payload"]))
                inflight.add(tid)
            for o in self.executor.wait(timeout=1.0):
                tid = o.key[1]
                inflight.discard(tid)
                row = self.store.final(tid)
                status, reward, error = self._classify(o, row["attempts"], row["error"])
                if status == "retry":
                    self.store.final_requeue(tid, error)
                    todo.appendleft(tid)
                    continue
                self.store.final_finish(tid, status, reward, o.result, error, o.worker, o.started_at, o.finished_at)
                self.log(f"top-k: trial {tid}: {status}" + (f", reward {reward:.4f}" if reward is not None else ""))
        finals = [dict(r) for r in self.store.finals()]
        done = [r for r in finals if r["status"] == "done"]
        if done:
            best = max(done, key=lambda r: (r["reward"], -r["trial_id"]))
            self._write_best({"genotype": best["genotype"], "reward": best["reward"], "trial": best["trial_id"],
                              "stage": "final", "search_reward": best["search_reward"], "epochs": best["epochs"],
                              "metrics": json.loads(best["metrics"]) if best["metrics"] else None})
        return finals

    # -- the whole run ---------------------------------------------------------------------
    def run(self) -> SearchSummary:
        try:
            return self._run()
        finally:
            store = getattr(self, "store", None)
            if store is not None:
                store.close()
            self._unlock()

    def _run(self) -> SearchSummary:
        from .executors import make_executor

        self._open()
        self.t0 = time.monotonic()
        self.inflight: set[int] = set()
        self.waiting: dict[int, list[int]] = {}
        self.recent: deque[float] = deque(maxlen=100)
        top = self.store.top(1)
        self.best = (top[0]["reward"], top[0]["id"]) if top else None
        counts = self.store.counts()
        self.finished = sum(counts[s] for s in TERMINAL)
        self.session_finished = 0
        if self.resumed:
            self.log(f"resuming {self.run_dir}: {self.finished} of {self.config.children} children finished, "
                     f"{self.requeued} re-queued, controller at update {self.strategy.version}")
        final: list[dict] = []
        self.executor = None
        try:
            self.executor = make_executor(self.config.executor, record=self.run_dir / RAY_RECORD)
            if self.progress:
                from tqdm import tqdm

                self._bar = tqdm(total=self.config.children, initial=self.finished, desc="search", unit="child",
                                 file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
            self._search()
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
            self.store.final_requeue_interrupted()
            self.store.export_csv(self.run_dir / CSV_FILE)
            if self.strategy.told:
                self._save_checkpoint()
        best = json.loads((self.run_dir / BEST_FILE).read_text()) if (self.run_dir / BEST_FILE).is_file() else None
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
