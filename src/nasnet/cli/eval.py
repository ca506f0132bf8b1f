"""`nasnet eval CHECKPOINT`: top-1 / top-5 of a trained model on a dataset's test split.

CHECKPOINT is a `nasnet train` checkpoint (checkpoint.pt or best.pt) or a run directory. It is read
with torch.load(weights_only=True): nothing in it is executed. The model, its preprocessing and
the dataset come from the checkpoint's saved configuration; `--data` evaluates on other data of
the same shape and classes. The weight EMA is used when the run kept one (as the paper evaluates
its ImageNet models), unless `--no-ema`. Other weights (a model file, a safetensors file, a plain
state dict with `--model NAME`, ...) are scored on the `--data` given.
"""

from __future__ import annotations

import argparse
import json

from ..paths import input_path
from ..registry import names_of
from ..text import plural
from ._parse import add_data_flag, count
from ._train_flags import flag_words

COMMAND = "eval"
HELP = "report top-1/top-5 of a trained checkpoint on the test split"
ORDER = 31


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", metavar="CHECKPOINT",
                   help="checkpoint.pt / best.pt, a run directory, or other weights (with --data)")
    p.add_argument("--model", help="the zoo model the weights are (needed for a plain state dict)")
    add_data_flag(p, "the data (default: the run's; other data needs the same channels and classes, and images of "
                  "another side are resized to the model's)", default=None)
    p.add_argument("--split", default="test", choices=names_of("nasnet.data.core:SPLITS"), metavar="SPLIT",
                   help="%(choices)s (default %(default)s)")
    p.add_argument("--batch-size", type=count(), default=None, help="evaluation batch size (default: the run's)")
    p.add_argument("--device", default="auto", help="auto (default) | cpu | cuda")
    p.add_argument("--no-ema", action="store_true", help="evaluate the raw weights even if the run kept an EMA")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from ..train.evaluate import evaluate_checkpoint

    input_path(args.checkpoint, "file or folder")
    with flag_words(args):
        r = evaluate_checkpoint(args.checkpoint, args.data, args.split, args.batch_size, args.device,
                                not args.no_ema, args.model)
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        side, model_side = r["data_image_size"], r["model_image_size"]
        resized = f", {side}x{side} images resized to the model's {model_side}x{model_side}" * (side != model_side)
        print(f"{r['split']}: top-1 {r['top1']:.2%}  top-5 {r['top5']:.2%}  loss {r['loss']:.4f}  "
              f"({plural(r['images'], 'image')} of {r['data']}{resized}"
              + (f"; epoch {r['epoch']}" if r["epoch"] is not None else "") + f"{', EMA weights' if r['ema'] else ''})")
    return 0
