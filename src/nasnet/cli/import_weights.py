"""`nasnet import-weights SRC --model NAME -o OUT`: published NASNet-A weights -> a nasnet model file."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from ..errors import NasnetError

COMMAND = "import-weights"
HELP = "convert published NASNet-A weights (pretrainedmodels / timm layout) into a nasnet model file"
DESCRIPTION = (
    "Read a NASNet-A Large or Mobile checkpoint in the key layout of timm's nasnetalarge or the "
    "pretrainedmodels package's nasnetalarge / nasnetamobile, map every key onto our model (none left "
    "over, none missing, shapes checked) and write a model file (config + weights + preprocessing) that "
    "`nasnet export`, `create_model(name, checkpoint=...)` and transfer learning read. A 1001-class "
    "checkpoint loses its background class 0 unless --keep-background. The file is read with "
    "torch.load(weights_only=True): nothing in it is executed."
)
ORDER = 40


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="the published checkpoint (.pth)")
    p.add_argument("--model", choices=["nasnet_a_large", "nasnet_a_mobile"],
                   help="which model the checkpoint holds (checked; detected from the stem when omitted)")
    p.add_argument("-o", "--output", required=True, help="the model file to write (.pt)")
    p.add_argument("--keep-background", action="store_true",
                   help="keep a 1001-class head's background class (default: drop class 0, leaving ImageNet's 1000)")
    p.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run(args: argparse.Namespace) -> int:
    from ..weights.io import read_checkpoint
    from ..weights.model_file import save_model_file
    from ..zoo import import_reference_model

    out = Path(args.output)
    if out.exists() and not args.force:
        raise NasnetError(f"{str(out)!r} exists; pass --force to overwrite it")
    src = Path(args.source)
    state = read_checkpoint(src)
    model, info = import_reference_model(state, args.model, keep_background=args.keep_background)
    source = {"path": str(src), "sha256": _sha256(src), "import": info.to_dict()}
    save_model_file(model, out, source=source)
    summary = {"output": str(out), **info.to_dict(), "sha256": source["sha256"],
               "preprocessing": model.preprocessing.to_dict()}
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    head = (f"{info.source_classes} -> {info.num_classes} classes (background class 0 dropped)"
            if info.dropped_background else f"{info.num_classes} classes")
    print(f"{info.model}: {info.keys} checkpoint keys mapped, none left over or missing; {head}")
    if info.counters_missing:
        print(f"  ({info.counters_missing} BatchNorm num_batches_tracked counters absent from the file, set to 0)")
    p = model.preprocessing
    print(f"  preprocessing: {p.input_size}x{p.input_size}, resize {p.resize_size} ({p.interpolation}) + center crop, "
          f"mean {list(p.mean)}, std {list(p.std)}")
    print(f"wrote {out}")
    return 0
