"""Everything a training run writes to its directory, in one place (rank 0 only under data parallelism).

    config.json      the resolved model, training and data configuration (written at the start)
    metrics.csv      one row per completed epoch (rewritten whole from the checkpoint's history, so
                     after a resume every epoch appears exactly once)
    checkpoint.pt    the last completed epoch (model, optimizer, EMA, step, RNG, config, history)
    best.pt          the weights with the best validation top-1 so far (same format)
    results.json     final validation and test metrics
    tb/              TensorBoard events, when tensorboard is installed and enabled
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from ..atomic import write_bytes
from .checkpoint import save_checkpoint

METRIC_COLUMNS = ("epoch", "step", "lr", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5",
                  "epoch_seconds", "images_per_second", "wall_seconds")


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
        return self.dir / "checkpoint.pt"

    def write_config(self, config: dict[str, Any]) -> None:
        write_json(self.dir / "config.json", config)

    def write_metrics(self, history: list[dict[str, Any]]) -> None:
        write_bytes(self.dir / "metrics.csv", metrics_csv(history).encode())

    def save(self, state: dict[str, Any], best: bool = False) -> None:
        save_checkpoint(self.checkpoint_path, state)
        if best:
            save_checkpoint(self.dir / "best.pt", {k: v for k, v in state.items() if k not in ("optimizer",)})

    def write_results(self, results: dict[str, Any]) -> None:
        write_json(self.dir / "results.json", results)

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
        self._tb = SummaryWriter(log_dir=str(self.dir / "tb"), purge_step=completed_epochs + 1)
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
