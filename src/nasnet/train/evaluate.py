"""Scoring a trained model: top-1 / top-5 / loss of a training checkpoint on a dataset split.

`evaluate_checkpoint` is what `nasnet eval` runs: the model, its input pipeline and the dataset
come from the checkpoint's saved configuration (another `data` spec of the same shape and classes
may be given), and the weight EMA is used when the run kept one, as the paper evaluates its
ImageNet models (A.7). The checkpoint is read with weights_only=True: nothing in it is executed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..data import load_dataset
from ..errors import NasnetError
from ..zoo.factory import load_model
from .config import TrainConfig, training_data
from .loop import device_splits, evaluate_model, resolve_device, uses_bf16
from .run_dir import load_checkpoint


def evaluate_checkpoint(path: str | Path, data: str | None = None, split: str = "test", batch_size: int | None = None,
                        device: str = "auto", use_ema: bool = True) -> dict[str, Any]:
    """{"checkpoint", "data", "split", "epoch", "ema", "loss", "top1", "top5", "images"} for a checkpoint
    file (checkpoint.pt / best.pt) or a run directory."""
    dev = resolve_device(device)
    state = load_checkpoint(path)
    config = state["config"]
    train_cfg = TrainConfig.from_dict(config["train"])
    ema = use_ema and state.get("ema") is not None
    model = load_model(state, weights_key="ema" if ema else "model")
    cfg = model.config
    dataset = training_data(load_dataset(data or config["data"]), train_cfg)  # the splits the run used
    if dataset.num_classes != cfg.num_classes or dataset.channels != cfg.in_chans:
        raise NasnetError(f"{dataset.spec} has {dataset.num_classes} classes of {dataset.channels}-channel images; "
                          f"the checkpoint's model expects {cfg.num_classes} of {cfg.in_chans}")
    dataset.split(split)
    model = model.to(dev).to(memory_format=torch.channels_last)
    x, y = device_splits(dataset, dev)[split]
    metrics = evaluate_model(model, x, y, train_cfg.augment_for(cfg.image_size),
                             batch_size or train_cfg.eval_batch_size, dev, uses_bf16(train_cfg.precision, dev))
    return {"checkpoint": str(path), "data": dataset.spec, "split": split, "epoch": state.get("epoch"), "ema": ema,
            **metrics}
