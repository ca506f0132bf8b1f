"""Training (paper A.6 for CIFAR and the search's children, A.7 for ImageNet; docs/training.md).

config (TrainConfig, the recipes, and `resolve`: recipe + model + data -> the configs of a run),
job (TrainJob: a new, resumed or torchrun-restarted run), loop (the Trainer), evaluate (scoring a
model or a checkpoint), device (where and how a run computes), run_dir (every file of a run
directory and the checkpoint format), schedule, optim, ema, and distributed / launch (data
parallelism over torchrun).
"""

from .config import PRESETS, RunConfig, TrainConfig, preset, resolve
from .schedule import lr_at

__all__ = ["PRESETS", "RunConfig", "TrainConfig", "lr_at", "preset", "resolve"]
