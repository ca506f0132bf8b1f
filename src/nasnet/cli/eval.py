"""`nasnet eval CHECKPOINT`: top-1 / top-5 of a trained model on a dataset's test split.

CHECKPOINT is a `nasnet train` checkpoint (checkpoint.pt or best.pt) or a run directory. It is read
with torch.load(weights_only=True): nothing in it is executed. The model, its preprocessing and
the dataset come from the checkpoint's saved configuration; `--data` evaluates on other data of
the same shape and classes. The weight EMA is used when the run kept one (as the paper evaluates
its ImageNet models), unless `--no-ema`.
"""

from __future__ import annotations

import argparse
import json

from ..errors import NasnetError

COMMAND = "eval"
HELP = "report top-1/top-5 of a trained checkpoint on the test split"
ORDER = 31


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint.pt / best.pt, or a run directory")
    p.add_argument("--data", default=None, metavar="SPEC", help="data spec (default: the run's)")
    p.add_argument("--split", default="test", choices=("test", "val", "train"))
    p.add_argument("--batch-size", type=int, default=None, help="evaluation batch size (default: the run's)")
    p.add_argument("--device", default="auto", help="auto (default) | cpu | cuda")
    p.add_argument("--no-ema", action="store_true", help="evaluate the raw weights even if the run kept an EMA")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def evaluate_checkpoint(path: str, data: str | None = None, split: str = "test", batch_size: int | None = None,
                        device: str = "auto", use_ema: bool = True) -> dict:
    import torch

    from ..augment import Augment
    from ..data import load_dataset
    from ..network import ModelConfig, NASNet
    from ..train.checkpoint import load_checkpoint
    from ..train.config import TrainConfig
    from ..train.loop import device_splits, evaluate_model, resolve_device, uses_bf16

    dev = resolve_device(device)
    state = load_checkpoint(path, map_location=dev)
    config = state["config"]
    model_cfg = ModelConfig.from_dict(config["model"])
    train_cfg = TrainConfig.from_dict(config["train"])
    dataset = load_dataset(data or config["data"])
    if dataset.num_classes != model_cfg.num_classes or dataset.channels != model_cfg.in_chans:
        raise NasnetError(f"{dataset.spec} has {dataset.num_classes} classes of {dataset.channels}-channel images; "
                          f"the checkpoint's model expects {model_cfg.num_classes} of {model_cfg.in_chans}")
    dataset.split(split)
    ema = state.get("ema") if use_ema else None
    model = NASNet(model_cfg)
    model.load_state_dict(ema["module"] if ema else state["model"])
    model = model.to(dev).to(memory_format=torch.channels_last)
    size = model_cfg.image_size
    augment = Augment(kind=train_cfg.augment, normalize=train_cfg.normalize, image_size=size,
                      pad=train_cfg.pad_for(size), eval_crop=train_cfg.eval_crop)
    x, y = device_splits(dataset, dev)[split]
    bf16 = uses_bf16(train_cfg.precision, dev)
    metrics = evaluate_model(model, x, y, augment, batch_size or train_cfg.eval_batch_size, dev, bf16)
    return {"checkpoint": str(path), "data": dataset.spec, "split": split, "epoch": state.get("epoch"),
            "ema": bool(ema), **metrics}


def run(args: argparse.Namespace) -> int:
    r = evaluate_checkpoint(args.checkpoint, args.data, args.split, args.batch_size, args.device, not args.no_ema)
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print(f"{r['split']}: top-1 {r['top1']:.2%}  top-5 {r['top5']:.2%}  loss {r['loss']:.4f}  "
              f"({r['images']:,} images of {r['data']}; epoch {r['epoch']}{', EMA weights' if r['ema'] else ''})")
    return 0
