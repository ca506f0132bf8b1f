"""An open search run: its lock, store, space and strategy, made whole when it opens (paper §3, A.3).

`Session(config, run_dir, say, on_update)` does everything that can refuse a run or must happen
before its first job: the start checks, the run directory's lock, the trial store (migrated), the
config written, the strategy restored from controller.pt and told, in their original order, the
results it had not seen, and the jobs a stopped driver left running queued again. What it opens it
closes (`close`, or `with`), also when opening fails half-way. Every stage of the search works on
one session; docs/search.md says why the order of these steps makes a SIGKILL harmless.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..arch.space import get_space
from ..errors import NasnetError
from ..weights.io import read_checkpoint
from . import run_dir as files
from .config import SearchConfig
from .executors import resolve
from .payloads import final_payload
from .records import Trial
from .store import TrialStore
from .strategies import make_strategy


class Session:
    """One search run directory, open: `store`, `space`, `strategy`, `resumed` (it held a run),
    `requeued` (jobs a stopped driver left running). `say` receives lines for the user; `on_update`
    each controller update's statistics once stored and checkpointed.

    Raises NasnetError for a run that cannot start or continue (nothing already saved is changed)."""

    def __init__(self, config: SearchConfig, run_dir: str | Path, say: Callable[[str], None],
                 on_update: Callable[[dict[str, Any]], None] | None = None):
        self.config, self.run_dir, self.say, self.on_update = config, Path(run_dir), say, on_update
        stored = files.check_start(config, self.run_dir)
        resolve(config.child.fn)          # fail now, not in every child, if it cannot be imported
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.lock = files.RunLock(self.run_dir)
        self.lock.acquire()
        self.store: TrialStore | None = None
        try:
            self.store = TrialStore(self.run_dir / files.STORE_FILE)
            self.space = get_space(config.space)
            self.resumed = stored is not None
            self._restore(self.store.count())
            self.requeued = self.store.requeue_interrupted()
        except BaseException:
            self.close()
            raise
        if config.executor.child_timeout and config.executor.name == "serial":
            say("note: --child-timeout does not apply to the serial executor; its children run to the end")

    def _restore(self, trials: int) -> None:
        """`strategy` as the run left it: its checkpoint, then every result it had not yet been told."""
        if trials > self.config.children:
            raise NasnetError(f"{self.run_dir} already holds {trials} trials; `children` must be at least {trials}")
        self._check_final_stage()
        files.write_config(self.run_dir, self.config)
        self.strategy = make_strategy(self.space.decision_sizes(), self.config.strategy, self.config.seed,
                                      self.space.decision_roles())
        self._load_checkpoint()
        last = self.strategy.last_update      # an update checkpointed by a stop before its row was stored
        if last and last["version"] > self.store.last_update_version():
            self.store.add_update(last)
        for trial, told in self.store.results_after(self.strategy.told):
            self.tell(trial, told)
        self.strategy.asked = max(self.strategy.asked, trials)

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

    def _load_checkpoint(self) -> None:
        path = self.run_dir / files.CHECKPOINT_FILE
        if not path.is_file():
            return
        state = read_checkpoint(path)
        try:
            self.strategy.load_state_dict(state)
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise NasnetError(f"{path}: cannot load the controller checkpoint ({err})") from None

    def save_checkpoint(self) -> None:
        """The strategy's state to controller.pt, atomically."""
        import torch

        from ..atomic import replacing

        with replacing(self.run_dir / files.CHECKPOINT_FILE) as tmp:
            torch.save(self.strategy.state_dict(), tmp)

    def tell(self, trial: Trial, told: float) -> None:
        """Tell the strategy a recorded result; an update it makes is stored, then checkpointed."""
        update = self.strategy.tell((trial.decisions, trial.log_prob), told)
        if update is not None:
            self.store.add_update(update)
            self.save_checkpoint()
            if self.on_update is not None:
                self.on_update(update)

    def failure_reward(self) -> float:
        """What the strategy is told for a failed or diverged child (the config's number, or "worst")."""
        rule = self.config.failure_reward
        if rule == "worst":
            worst = self.store.worst_reward()
            return 0.0 if worst is None else worst
        return float(rule)

    def stop(self) -> None:
        """End the session's work, however it ended: jobs still in flight back to the queue for the next
        run, trials.csv written, the strategy checkpointed."""
        self.store.requeue_interrupted()
        self.store.export_csv(self.run_dir / files.CSV_FILE)
        if self.strategy.told:
            self.save_checkpoint()

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None
        self.lock.release()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
