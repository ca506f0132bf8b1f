"""A training run as a job: start a new one, resume a stopped one, run it in one process or in each of
the K processes torchrun started (paper A.6, A.7; docs/training.md).

    job = TrainJob.new("runs/x", resolve("digits"))     # refuses a directory that holds a run
    job = TrainJob.resume("runs/x")                      # the saved configuration and checkpoint
    results = job.run(log=print)                         # trains to the end; writes results.json

`nasnet train` is this module plus argument parsing. Under data parallelism (`run_worker`), rank 0
prepares the job (or reads the checkpoint) and sends it to the others, which load the dataset
from its spec themselves; rank 0 alone writes the run directory (nasnet.train.run_dir) and logs.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from ..data import Dataset, load_dataset
from ..errors import NasnetError, first_line
from ..locking import RunLock
from ..model.counting import count
from ..model.network import ModelConfig
from ..text import plural
from . import distributed
from .config import RunConfig, TrainConfig, check_classes
from .launch import LOST_PEER_STATUS
from .loop import Diverged, Trainer
from .run_dir import (CHECKPOINT_FILE, CONFIG_FILE, RunFiles, check_new_run_dir, claim_run_dir,
                      completed_epochs_evidence, load_checkpoint, release_run_dir)

Log = Callable[[str], None]


def _quiet(_msg: str) -> None:
    pass


@dataclass
class TrainJob:
    """What a run will do: resolved configs, the data, and the checkpoint to continue from (if any)."""

    run_dir: Path
    model_cfg: ModelConfig
    train_cfg: TrainConfig
    data_spec: str
    meta: dict
    state: dict | None
    params: int
    mult_adds: int
    note: str = ""
    dataset: Dataset | None = field(default=None, repr=False)
    lock: RunLock | None = field(default=None, repr=False, compare=False)   # held by rank 0 while it runs
    created: list[Path] = field(default_factory=list, repr=False, compare=False)  # folders a new run made

    def close(self) -> None:
        """Release the run directory (`run` does it when it ends)."""
        release_run_dir(self.lock, [])
        self.lock = None

    @classmethod
    def new(cls, run_dir: str | Path, run: RunConfig) -> "TrainJob":
        """A new run in `run_dir`, which must not hold one already. The directory is created and locked
        (`run` releases it; so does the end of the process); nothing else is written until `run`."""
        run_dir = Path(run_dir).expanduser()
        lock, created = claim_run_dir(run_dir, new=True)
        try:
            check_new_run_dir(run_dir)
            job = cls._make(run_dir, run.model, run.train, run.dataset, dict(run.meta), None)
        except BaseException:
            release_run_dir(lock, created, discard=True)
            raise
        job.lock, job.created = lock, created
        return job

    @classmethod
    def resume(cls, run_dir: str | Path, device: str | None = None, threads: int | None = None,
               note: str = "") -> "TrainJob":
        """The run in `run_dir`, from its last checkpoint (or its saved configuration, if it stopped
        during the first epoch). `device` and `threads` may change; nothing else does. The directory
        is locked until `run` ends."""
        run_dir = Path(run_dir).expanduser()
        lock, created = claim_run_dir(run_dir, new=False)
        try:
            job = cls._resumed(run_dir, device, threads)
        except BaseException:
            release_run_dir(lock, created)
            raise
        job.note, job.lock = note, lock
        return job

    @classmethod
    def _resumed(cls, run_dir: Path, device: str | None, threads: int | None) -> "TrainJob":
        ckpt = run_dir / CHECKPOINT_FILE
        if ckpt.is_file():
            state = load_checkpoint(ckpt)
            config = state["config"]
            meta = state.get("meta") or {}
        elif (run_dir / CONFIG_FILE).is_file():
            done = completed_epochs_evidence(run_dir)
            if done:  # epochs were trained, but their checkpoint is gone: starting over would overwrite them
                raise NasnetError(f"{run_dir}: {CHECKPOINT_FILE} is missing, but the run has completed epochs "
                                  f"({', '.join(done)}); it cannot continue without it: restore {CHECKPOINT_FILE} "
                                  "or start a new `run_dir`")
            state = None  # stopped during the first epoch
            try:
                config = json.loads((run_dir / CONFIG_FILE).read_text())
                meta = {k: config.get(k) for k in ("preset", "model_name")}
            except (OSError, ValueError, AttributeError) as err:
                raise NasnetError(f"{run_dir / CONFIG_FILE}: cannot read the run's configuration "
                                  f"({first_line(err)})") from None
        else:
            raise NasnetError(f"{run_dir}: nothing to resume (no {CHECKPOINT_FILE} or {CONFIG_FILE})")
        try:
            train_cfg = TrainConfig.from_dict(config["train"])
            model_cfg = ModelConfig.from_dict(config["model"])
            data = config["data"]
        except (KeyError, TypeError) as err:
            raise NasnetError(f"{run_dir}: the saved configuration is incomplete ({first_line(err)})") from None
        over = {k: v for k, v in (("device", device), ("threads", threads)) if v is not None}
        if over:
            train_cfg = train_cfg.replace(**over)
        dataset = load_dataset(data)
        check_classes(model_cfg, dataset)        # a saved model with fewer outputs than the data's labels
        return cls._make(run_dir, model_cfg, train_cfg, dataset, meta, state)

    @classmethod
    def _make(cls, run_dir, model_cfg, train_cfg, dataset, meta, state) -> "TrainJob":
        counts = count(model_cfg)
        return cls(run_dir=run_dir, model_cfg=model_cfg, train_cfg=train_cfg, data_spec=dataset.spec, meta=meta,
                   state=state, params=counts.params, mult_adds=counts.mult_adds, dataset=dataset)

    def shareable(self) -> "TrainJob":
        """The job without the dataset (which every process loads from the spec itself) and the lock."""
        return replace(self, dataset=None, lock=None, created=[])

    # -- running -----------------------------------------------------------------------------
    def run(self, ctx: distributed.DistContext | None = None, *, log: Log = _quiet, progress: bool = False,
            tensorboard: bool = True) -> dict[str, Any] | None:
        """Train to the end and return the final results (None on ranks other than 0).

        Raises NasnetError when training diverges (the last good checkpoint stays in the run directory)."""
        rank, world = (ctx.rank, ctx.world_size) if ctx else (0, 1)
        try:
            return self._run(ctx, rank, world, log if rank == 0 else _quiet, progress, tensorboard)
        finally:
            self.close()

    def _run(self, ctx, rank: int, world: int, log: Log, progress: bool, tensorboard: bool) -> dict[str, Any] | None:
        if self.dataset is None:
            self.dataset = load_dataset(self.data_spec)
        model_cfg, train_cfg, dataset, meta = self.model_cfg, self.train_cfg, self.dataset, self.meta
        fresh = rank == 0 and self.state is None and not (self.run_dir / CONFIG_FILE).is_file()
        files = RunFiles(self.run_dir, tensorboard=tensorboard) if rank == 0 else None
        try:  # everything that can refuse the run (device, sizes, memory) happens before a file is written
            trainer = Trainer(model_cfg, train_cfg, dataset, run_files=files, meta=meta,
                              progress=progress and rank == 0, log=log, rank=rank, world_size=world)
        except BaseException:
            if fresh:
                release_run_dir(self.lock, self.created, discard=True)
                self.lock = None
            raise
        if fresh:
            config = {"model": model_cfg.to_dict(), "train": train_cfg.to_dict(), "data": dataset.spec, **meta,
                      "params": self.params, "mult_adds": self.mult_adds}
            if ctx is not None:
                config["distributed"] = {"world_size": world, "backend": ctx.backend, "launch_id": ctx.run_id,
                                         "global_batch": train_cfg.batch_size * world}
            files.write_config(config)
        if self.state is not None:
            trainer.load_state_dict(self.state)
        self._log_header(trainer, log, ctx)
        try:
            trainer.fit()
        except Diverged as err:
            raise NasnetError(f"training diverged: {err}; lower `lr` or add `grad_clip=5` "
                              f"(the last good checkpoint is in {self.run_dir})") from None
        results = final_results(trainer, self)  # a collective under data parallelism
        if files is None:
            return None
        files.write_results(results)
        test = results.get("test")
        if test:
            log(f"test: top-1 {test['top1']:.2%}  top-5 {test['top5']:.2%}  loss {test['loss']:.4f}  "
                f"({plural(test['images'], 'image')}{', EMA weights' if trainer.ema else ''})")
        log(f"results in {self.run_dir}/results.json; weights in {self.run_dir}/{CHECKPOINT_FILE}")
        return results

    def _log_header(self, trainer: Trainer, log: Log, ctx) -> None:
        m, t, meta, world = self.model_cfg, self.train_cfg, self.meta, trainer.world_size
        log(f"{trainer.dataset.summary()}")
        log(f"model {meta.get('model_name')}: {m.skeleton} skeleton, {m.name} (N={m.normal_cells}, F0={m.filters}), "
            f"{self.params:,} params, {self.mult_adds / 1e6:,.1f}M mult-adds at {m.image_size}px")
        batch, lr = f"{t.batch_size}", f"{t.lr:g}"
        if world > 1:
            batch = f"{t.batch_size} per process x {world} processes = {trainer.global_batch}"
            if trainer.lr_scale != 1:
                lr = f"{t.lr * trainer.lr_scale:g} ({t.lr:g} x {trainer.lr_scale}, linear scaling)"
        log(f"recipe {meta.get('preset')}: {plural(t.epochs, 'epoch')} x {plural(trainer.steps_per_epoch, 'step')} "
            f"of {batch}, "
            f"{t.optimizer} lr {lr} {t.lr_schedule}, device {trainer.device}{' bf16' if trainer.bf16 else ''}"
            f"{f' ({ctx.backend})' if world > 1 else ''}; run dir {self.run_dir}")
        if trainer.resumed_from_world_size:
            log(f"note: the checkpoint was trained by {trainer.resumed_from_world_size} process(es), this run has "
                f"{world}: the global batch is now {trainer.global_batch} (not a bit-exact continuation)")
        if trainer.epoch:
            log(f"{self.note or 'resuming'} after epoch {trainer.epoch} (step {trainer.step})")


def final_results(trainer: Trainer, job: TrainJob) -> dict[str, Any]:
    """results.json: the run's facts and its validation and test metrics (EMA weights when kept)."""
    history = trainer.history
    out = {
        "data": trainer.dataset.spec, **job.meta,
        "epochs": trainer.epoch, "steps": trainer.step,
        "processes": trainer.world_size, "global_batch": trainer.global_batch,
        "params": job.params, "mult_adds": job.mult_adds,
        "wall_seconds": history[-1]["wall_seconds"] if history else 0.0,
        "best": trainer.best,
        "ema": trainer.ema is not None,
    }
    last = history[-1] if history else {}
    for split in ("val", "test"):
        images = len(trainer.data[split][1])
        if not images:
            continue
        if split == "val" and last.get("epoch") == trainer.epoch and last.get("val_top1") is not None:
            # the last epoch has just scored this model on the validation split: reuse it
            out[split] = {"loss": last["val_loss"], "top1": last["val_top1"], "top5": last["val_top5"],
                          "images": images}
        else:
            out[split] = trainer.evaluate(split)
    return out


def started_by_this_launch(run_dir: Path, ctx: distributed.DistContext | None) -> bool:
    """An elastic restart (torchrun --max-restarts) of the launch that started this run: resume it."""
    if ctx is None or ctx.restart_count == 0 or not (run_dir / CONFIG_FILE).is_file():
        return False
    try:
        started_by = json.loads((run_dir / CONFIG_FILE).read_text()).get("distributed", {}).get("launch_id")
    except (OSError, ValueError, AttributeError):
        return False
    return bool(started_by) and started_by == ctx.run_id


# -- one of the K processes torchrun started ----------------------------------------------------------
def run_worker(prepare: Callable[[distributed.DistContext], TrainJob], timeout_s: float, *, say: Log = _quiet,
               **run_kwargs: Any) -> int:
    """Join the process group, let rank 0 `prepare` the job, run it everywhere (`TrainJob.run` with
    `run_kwargs`); returns this process's exit status. timeout_s: how long a collective waits.

    Expected endings are handled here, so torchrun's `record` writes an error file only for a real
    crash (the launcher shows its first line): a user mistake is raised on rank 0 as a NasnetError
    (the other ranks pass `say` the line "error: [rank R] ..." and return 2), and a process that merely
    lost contact with a failed one passes `say` one line and returns LOST_PEER_STATUS, writing nothing
    (torchrun may stop it at any moment, and a half-written file would break torchrun).

    Raises NasnetError for a `timeout_s` that is not positive, and for rank 0's user mistakes."""
    from torch.distributed.elastic.multiprocessing.errors import record

    if timeout_s <= 0:
        raise NasnetError("`timeout_s` must be > 0 seconds")
    ctx = distributed.init_from_env(timeout_s)
    mistake: list[NasnetError] = []

    def guarded() -> int:
        try:
            return _worker(prepare, ctx, run_kwargs)
        except NasnetError as err:
            if ctx.rank == 0:
                mistake.append(err)  # raised below, outside `record`: the CLI prints it as one line
            else:
                say(f"error: [rank {ctx.rank}] {err}")
            return 2
        except Exception as err:
            if not distributed.lost_peer(err):
                raise
            reason = first_line(err)
            if reason.startswith("[") and "] " in reason:  # gloo's "[source.cc:553] Connection closed by peer"
                reason = reason.split("] ", 1)[1]
            say(f"[rank {ctx.rank}] lost contact with the other processes ({reason.split('. ')[0]})")
            return LOST_PEER_STATUS

    try:
        status = record(guarded)()
    except BaseException as err:
        # a crash (recorded) or Ctrl-C: its frames hold the model, whose DDP wrapper holds the process group;
        # let them go so that `shutdown` can release the group's threads (the traceback keeps its lines)
        traceback.clear_frames(err.__traceback__)
        raise
    finally:
        distributed.shutdown()
    if mistake:
        raise mistake[0]
    return status


def _worker(prepare: Callable[[distributed.DistContext], TrainJob], ctx: distributed.DistContext,
            run_kwargs: dict[str, Any]) -> int:
    job, error = None, None
    if ctx.rank == 0:
        try:
            job = prepare(ctx)
        except NasnetError as err:
            error = str(err)
    # rank 0's decision (a new run, a resume, or a mistake) for everybody
    error, shared = distributed.broadcast_object((error, job.shareable() if job else None))
    if error is not None:
        if ctx.rank == 0:
            raise NasnetError(error)
        return 2  # rank 0 reports it
    job = job or shared
    try:
        job.run(ctx, **run_kwargs)
    except NasnetError:
        if ctx.rank != 0:
            return 2  # every process stops at the same step; rank 0 reports it
        raise
    return 0
