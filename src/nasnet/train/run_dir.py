"""A training run's directory: every file `nasnet train` writes, and the checkpoint format, in one place.

docs/training.md, "Run directory and resume", lists the files and the checkpoint's keys. Here:
claiming a directory for one process (`claim_run_dir`, its lock; `release_run_dir` removes what a
failed start created), telling a new directory from one that holds a run, reading and writing
checkpoints (`FORMAT`, read with weights_only=True through `nasnet.weights.io.read_checkpoint`), and
`RunFiles`, the one writer of a run (rank 0 under data parallelism), which replaces every file
atomically (nasnet.atomic).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import torch

from ..atomic import write_bytes
from ..errors import NasnetError
from ..locking import RunLock
from ..paths import check_writable_dir
from ..weights.io import read_checkpoint

FORMAT = "nasnet-train/1"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.csv"
CHECKPOINT_FILE = "checkpoint.pt"
BEST_FILE = "best.pt"
RESULTS_FILE = "results.json"
TENSORBOARD_DIR = "tb"

METRIC_COLUMNS = ("epoch", "step", "lr", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5",
                  "epoch_seconds", "images_per_second", "wall_seconds")


def holds_run(run_dir: Path) -> bool:
    """Whether `run_dir` already holds a training run (a checkpoint or a written configuration)."""
    return (run_dir / CHECKPOINT_FILE).is_file() or (run_dir / CONFIG_FILE).is_file()


def check_new_run_dir(run_dir: Path) -> None:
    """A new run's directory: one this process can write, holding no run yet (checked before anything
    is loaded, and again under the lock by `TrainJob.new`)."""
    check_writable_dir(run_dir)
    if holds_run(run_dir):
        raise NasnetError(f"{run_dir} already holds a run; continue it with `resume` or choose another `run_dir`")


def completed_epochs_evidence(run_dir: Path) -> list[str]:
    """The files showing that a run finished at least one epoch (best.pt, metrics rows, results.json).

    A run stopped during its first epoch has only config.json (and maybe tb/): it resumes from its
    configuration. One that has any of these but no checkpoint.pt has lost its checkpoint."""
    found = [name for name in (BEST_FILE, RESULTS_FILE) if (run_dir / name).is_file()]
    try:
        rows = len((run_dir / METRICS_FILE).read_text().strip().splitlines()) - 1
    except (OSError, UnicodeDecodeError):
        rows = 0
    if rows > 0:
        found.append(f"{METRICS_FILE} with {rows} epoch{'s' if rows != 1 else ''}")
    return found


def claim_run_dir(run_dir: Path, new: bool) -> tuple[RunLock, list[Path]]:
    """Lock a run directory for this process (rank 0 under torchrun): (the lock, the folders created
    for it, outermost first). A new run's directory is created; a resumed one must exist. Nothing is
    created when the directory cannot be written (one line instead), and `release_run_dir` removes
    what a failed start created."""
    if not new and not run_dir.is_dir():
        raise NasnetError(f"{run_dir}: not a run directory (nothing to resume)")
    check_writable_dir(run_dir)
    created = [p for p in (run_dir, *run_dir.parents) if not p.exists()][::-1]
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise NasnetError(f"cannot create the run directory {run_dir}: {err.strerror or err}") from None
    lock = RunLock(run_dir, "nasnet train")
    try:
        lock.acquire()
    except NasnetError:
        release_run_dir(None, created, discard=True)
        raise
    return lock, created


def release_run_dir(lock: RunLock | None, created: list[Path], discard: bool = False) -> None:
    """Release the lock; with `discard` (a start that failed before writing anything) also remove the
    lock file and the folders this process created for the run, when they are empty."""
    if lock is not None:
        lock.remove() if discard else lock.release()
    if discard:
        for folder in reversed(created):
            try:
                folder.rmdir()
            except OSError:
                break


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buf)
    write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a training checkpoint file (or a run directory's checkpoint.pt)."""
    path = Path(path).expanduser()
    if path.is_dir():
        candidate = path / CHECKPOINT_FILE
        if not candidate.is_file():
            raise NasnetError(f"{path}: no {CHECKPOINT_FILE} in this folder (is it a `nasnet train` run directory?)")
        path = candidate
    state = read_checkpoint(path, map_location)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise NasnetError(f"{path}: not a nasnet training checkpoint (format {FORMAT} expected)")
    return state


def write_json(path: Path, data: Any) -> None:
    write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())


def metrics_csv(history: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=METRIC_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for row in history:
        w.writerow({k: ("" if row.get(k) is None else _fmt(row[k])) for k in METRIC_COLUMNS})
    return out.getvalue()


def _fmt(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


class RunFiles:
    def __init__(self, run_dir: str | Path, tensorboard: bool = False):
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tensorboard = tensorboard
        self._tb = None

    @property
    def checkpoint_path(self) -> Path:
        return self.dir / CHECKPOINT_FILE

    def write_config(self, config: dict[str, Any]) -> None:
        write_json(self.dir / CONFIG_FILE, config)

    def write_metrics(self, history: list[dict[str, Any]]) -> None:
        write_bytes(self.dir / METRICS_FILE, metrics_csv(history).encode())

    def save(self, state: dict[str, Any], best: bool = False) -> None:
        save_checkpoint(self.checkpoint_path, state)
        if best:
            save_checkpoint(self.dir / BEST_FILE, {k: v for k, v in state.items() if k not in ("optimizer",)})

    def write_results(self, results: dict[str, Any]) -> None:
        write_json(self.dir / RESULTS_FILE, results)

    # -- TensorBoard (optional) ---------------------------------------------------------------
    def open_tensorboard(self, completed_epochs: int) -> bool:
        if not self.tensorboard:
            return False
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            self.tensorboard = False
            return False
        # purge_step drops events of epochs that a resumed run is about to redo
        self._tb = SummaryWriter(log_dir=str(self.dir / TENSORBOARD_DIR), purge_step=completed_epochs + 1)
        return True

    def log_epoch(self, row: dict[str, Any]) -> None:
        if self._tb is None:
            return
        for k in METRIC_COLUMNS[2:]:
            if row.get(k) is not None:
                self._tb.add_scalar(k.replace("_", "/", 1) if k.startswith(("train_", "val_")) else k,
                                    row[k], row["epoch"])
        self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
